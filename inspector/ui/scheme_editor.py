"""Scheme editor for the selected tensors: preset, bits, axis, group, clip, sparsity, skip.

The widgets build a spec (shown and editable as text); "Apply to selection" writes per-tensor
overrides, "Set as default" the plan's default, "Add rule" a glob rule — each one undo step.
Spin edits are debounced (~150 ms) before the spec is rebuilt or, with "Live", applied.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from inspector.core.errors import InspectorError
from inspector.core.schemes import SCHEME_NAMES, Scheme, parse_scheme
from inspector.ui.state import AppState

__all__ = ["SchemeEditor"]

_AXIS_DEFAULT = "layout's output axis"


class SchemeEditor(QGroupBox):
    """Builds a scheme spec from widgets and applies it to the selection, default or a glob."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__("Scheme for the selection", parent)
        self.state = state
        self._loading = False
        self.preset = QComboBox()
        self.preset.addItems(list(SCHEME_NAMES))
        self.bits = QSpinBox(minimum=1, maximum=32, suffix=" bits")
        self.axis = QComboBox()
        self.axis.addItems([_AXIS_DEFAULT, "0", "1", "2", "3"])
        self.group = QSpinBox(minimum=1, maximum=4096, value=32)
        self.clip = QComboBox()
        self.clip.addItems(["minmax", "percentile", "mse"])
        self.percentile = QDoubleSpinBox(minimum=50.01, maximum=100.0, decimals=2, value=99.9)
        self.percentile.setSuffix(" %")
        self.sparsity = QDoubleSpinBox(minimum=0.0, maximum=0.99, decimals=2, singleStep=0.05)
        self.skip = QSpinBox(minimum=0, maximum=1 << 30, singleStep=64)
        self.skip.setToolTip("Keep tensors with fewer elements than this as they are (0 = never)")
        self.spec_edit = QLineEdit()
        self.spec_edit.setToolTip("The scheme spec, DESIGN §3: NAME[:key=value,…]")
        self.error = QLabel("")
        self.error.setStyleSheet("color: #b00")
        self.error.setWordWrap(True)
        self.target_label = QLabel("")
        self.target_label.setWordWrap(True)
        self.live = QCheckBox("Live: apply edits to the selection")
        self.glob_edit = QLineEdit(placeholderText="glob, e.g. conv*/kernel*")
        self._build_layout()
        self._debounce = QTimer(self, singleShot=True, interval=150)
        self._debounce.timeout.connect(self._widgets_changed)
        self._connect()
        state.selection_changed.connect(self.load_selection)
        state.plan_changed.connect(self.load_selection)
        self.load_selection()

    def _build_layout(self) -> None:
        form = QFormLayout()
        form.addRow("Preset", self.preset)
        form.addRow("Bits", self.bits)
        form.addRow("Channel axis", self.axis)
        form.addRow("Group size", self.group)
        clip_row = QHBoxLayout()
        clip_row.addWidget(self.clip, 1)
        clip_row.addWidget(self.percentile)
        form.addRow("Clip", clip_row)
        form.addRow("Sparsity", self.sparsity)
        form.addRow("Skip below", self.skip)
        form.addRow("Spec", self.spec_edit)
        self.apply_button = QPushButton("Apply to selection")
        self.apply_button.setToolTip("Per-tensor override for every selected tensor (Ctrl+Return)")
        self.default_button = QPushButton("Set as default")
        self.clear_button = QPushButton("Clear overrides")
        self.rule_button = QPushButton("Add rule")
        buttons = QHBoxLayout()
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.default_button)
        rule_row = QHBoxLayout()
        rule_row.addWidget(self.glob_edit, 1)
        rule_row.addWidget(self.rule_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.target_label)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.live)
        layout.addLayout(buttons)
        layout.addWidget(self.clear_button)
        layout.addLayout(rule_row)
        layout.addStretch(1)

    def _connect(self) -> None:
        self.preset.currentIndexChanged.connect(self._preset_changed)
        for spin in (self.bits, self.group, self.skip):
            spin.valueChanged.connect(self._schedule)
        for spin in (self.percentile, self.sparsity):
            spin.valueChanged.connect(self._schedule)
        self.axis.currentIndexChanged.connect(self._schedule)
        self.clip.currentIndexChanged.connect(self._schedule)
        self.spec_edit.editingFinished.connect(self._spec_typed)
        self.apply_button.clicked.connect(self.apply)
        self.default_button.clicked.connect(self.set_default)
        self.clear_button.clicked.connect(self.clear_overrides)
        self.rule_button.clicked.connect(self.add_rule)

    # -- state → widgets --------------------------------------------------------------------
    def load_selection(self) -> None:
        """Show the current tensor's resolved scheme in the widgets."""
        n = len(self.state.selection)
        current = self.state.current
        if current is None:
            self.target_label.setText("No tensor selected: edits apply as default or rule.")
            spec = self.state.plan.default
        else:
            more = f" (+{n - 1} more)" if n > 1 else ""
            self.target_label.setText(f"<b>{current}</b>{more}")
            spec = self.state.spec_for(current)
            if not self.glob_edit.text():
                layer = self.state.model[current].info.layer if self.state.model else ""
                self.glob_edit.setPlaceholderText(f"{layer}/*" if layer else "glob, e.g. conv*")
        self.set_scheme(parse_scheme(spec))

    def set_scheme(self, scheme: Scheme) -> None:
        self._loading = True
        try:
            self.preset.setCurrentText(scheme.name)
            self.bits.setValue(scheme.bits)
            self.axis.setCurrentIndex(0 if scheme.axis is None else min(scheme.axis + 1, 4))
            self.group.setValue(scheme.group or 32)
            head, _, p = scheme.clip.partition(":")
            self.clip.setCurrentText(head)
            if p:
                self.percentile.setValue(float(p))
            self.sparsity.setValue(scheme.sparsity)
            self.skip.setValue(scheme.skip)
            self.spec_edit.setText(scheme.spec)
            self.error.setText("")
            self._enable(scheme)
        finally:
            self._loading = False

    def _enable(self, scheme: Scheme) -> None:
        family = scheme.family
        self.bits.setEnabled(family in ("affine", "kmeans"))
        self.axis.setEnabled(family in ("int8", "int4"))
        self.group.setEnabled(family == "int4")
        self.clip.setEnabled(family in ("affine", "int8", "int4"))
        self.percentile.setEnabled(
            self.clip.isEnabled() and self.clip.currentText() == "percentile"
        )

    # -- widgets → spec ---------------------------------------------------------------------
    def _preset_changed(self) -> None:
        if self._loading:
            return
        try:
            scheme = Scheme(self.preset.currentText())
        except InspectorError:
            return
        self._loading = True
        self.bits.setValue(scheme.bits)
        self._loading = False
        self._widgets_changed()

    def _schedule(self) -> None:
        if not self._loading:
            self._debounce.start()

    def _name_for_bits(self) -> str:
        name = self.preset.currentText()
        family, bits = Scheme(name).family, self.bits.value()
        if family == "affine" and Scheme(name).bits != bits:
            return {8: "uint8", 16: "uint16"}.get(bits, f"affine{min(max(bits, 2), 16)}")
        if family == "kmeans":
            return f"kmeans{min(max(bits, 1), 8)}"
        return name

    def build_scheme(self) -> Scheme:
        """The scheme the widgets describe; options a scheme does not take are left out."""
        scheme = Scheme(self._name_for_bits())
        family = scheme.family
        kw: dict[str, object] = {"sparsity": self.sparsity.value(), "skip": self.skip.value()}
        if family in ("int8", "int4") and self.axis.currentIndex() > 0:
            kw["axis"] = self.axis.currentIndex() - 1
        if family == "int4":
            kw["group"] = self.group.value()
        if family in ("affine", "int8", "int4"):
            clip = self.clip.currentText()
            kw["clip"] = f"percentile:{self.percentile.value():g}" if clip == "percentile" else clip
        return dataclasses.replace(scheme, **kw)

    def _widgets_changed(self) -> None:
        try:
            scheme = self.build_scheme()
        except InspectorError as exc:
            self.error.setText(str(exc))
            return
        self.set_scheme(scheme)
        if self.live.isChecked():
            self.apply()

    def _spec_typed(self) -> None:
        try:
            scheme = parse_scheme(self.spec_edit.text())
        except InspectorError as exc:
            self.error.setText(str(exc))
            return
        self.set_scheme(scheme)

    def current_spec(self) -> str | None:
        """The valid spec in the text field, or None (and an error shown)."""
        try:
            return parse_scheme(self.spec_edit.text()).spec
        except InspectorError as exc:
            self.error.setText(str(exc))
            return None

    # -- actions ----------------------------------------------------------------------------
    def apply(self) -> None:
        spec = self.current_spec()
        model = self.state.model
        if spec is None or model is None:
            return
        names = [n for n in self.state.selection if model[n].info.is_float]
        if names:
            self.state.override(names, spec)

    def set_default(self) -> None:
        spec = self.current_spec()
        if spec is not None:
            self.state.set_plan(self.state.plan.with_default(spec))

    def clear_overrides(self) -> None:
        if self.state.selection:
            self.state.override(self.state.selection, None)

    def add_rule(self) -> None:
        spec = self.current_spec()
        glob = self.glob_edit.text().strip() or self.glob_edit.placeholderText()
        if spec is None or not glob or glob.startswith("glob,"):
            self.error.setText("Type a glob for the rule, e.g. conv*/kernel*")
            return
        self.state.set_plan(self.state.plan.with_rule(glob, spec))
