"""Scheme editor for the selected tensors: preset, bits and the scheme's options.

The option widgets are built from the scheme families' option declarations (`Family.options`:
kind, range, default), so a new family's options appear here without an edit. The widgets build
a spec (shown and editable as text); "Apply to selection" writes per-tensor overrides, "Set as
default" the plan's default, "Add rule" a glob rule — each one undo step. Spin edits are
debounced (~150 ms) before the spec is rebuilt or, with "Live", applied.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer
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
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from inspector.core.errors import InspectorError
from inspector.core.schemes import (
    COMMON_OPTIONS,
    Option,
    Scheme,
    families,
    parse_scheme,
    scheme_names,
)
from inspector.ui.state import AppState

__all__ = ["SchemeEditor"]

_DEFAULT = "default"


class _OptionWidget(QWidget):
    """One option's control, built from its declaration; `value()` None means the default."""

    def __init__(self, option: Option, changed: Any) -> None:
        super().__init__()
        self.option = option
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.main: QWidget
        self.percentile: QDoubleSpinBox | None = None
        if option.kind == "clip":
            combo = QComboBox()
            combo.addItems(["minmax", "percentile", "mse"])
            self.percentile = QDoubleSpinBox(minimum=50.01, maximum=100.0, decimals=2, value=99.9)
            self.percentile.setSuffix(" %")
            self.percentile.valueChanged.connect(changed)
            combo.currentIndexChanged.connect(changed)
            combo.currentIndexChanged.connect(self._enable_percentile)
            row.addWidget(combo, 1)
            row.addWidget(self.percentile)
            self.main = combo
        elif option.kind == "int" and option.default is None:
            combo = QComboBox()
            combo.addItems([_DEFAULT, *(str(i) for i in range(-1, 6))])
            combo.setEditable(True)
            combo.currentTextChanged.connect(changed)
            self.main = combo
        elif option.kind == "int":
            spin = QSpinBox(minimum=int(option.minimum or 0), maximum=int(option.maximum or 2**30))
            spin.valueChanged.connect(changed)
            self.main = spin
        elif option.kind == "float":
            fspin = QDoubleSpinBox(decimals=3, singleStep=0.05)
            fspin.setRange(option.minimum or 0.0, (option.maximum or 1e9) - 1e-3)
            fspin.valueChanged.connect(changed)
            self.main = fspin
        elif option.kind == "choice":
            choice = QComboBox()
            choice.addItems(list(option.choices))
            choice.currentIndexChanged.connect(changed)
            self.main = choice
        else:
            line = QLineEdit(placeholderText=str(option.default or ""))
            line.editingFinished.connect(changed)
            self.main = line
        if option.kind != "clip":
            row.addWidget(self.main, 1)
        self.setToolTip(option.help)

    def _enable_percentile(self) -> None:
        if self.percentile is not None:
            on = self.isEnabled() and self.main.currentText() == "percentile"  # type: ignore[attr-defined]
            self.percentile.setEnabled(on)

    def set_value(self, value: Any) -> None:
        o, w = self.option, self.main
        if o.kind == "clip":
            head, _, pct = str(value).partition(":")
            w.setCurrentText(head)  # type: ignore[attr-defined]
            if pct and self.percentile is not None:
                self.percentile.setValue(float(pct))
        elif o.kind == "int" and o.default is None:
            w.setCurrentText(_DEFAULT if value is None else str(value))  # type: ignore[attr-defined]
        elif isinstance(w, QSpinBox | QDoubleSpinBox):
            w.setValue(value if value is not None else o.default)
        elif isinstance(w, QComboBox):
            w.setCurrentText(str(value))
        elif isinstance(w, QLineEdit):
            w.setText("" if value in (None, o.default) else str(value))
        self._enable_percentile()

    def value(self) -> Any:
        o, w = self.option, self.main
        if o.kind == "clip":
            head = w.currentText()  # type: ignore[attr-defined]
            pct = self.percentile.value() if self.percentile is not None else 99.9
            return f"percentile:{pct:g}" if head == "percentile" else head
        if o.kind == "int" and o.default is None:
            text = w.currentText().strip()  # type: ignore[attr-defined]
            return None if text in ("", _DEFAULT) else int(text)
        if isinstance(w, QSpinBox | QDoubleSpinBox):
            return w.value()
        if isinstance(w, QComboBox):
            return w.currentText()
        text = w.text().strip()  # type: ignore[attr-defined]
        return text or None


def _all_options() -> list[Option]:
    """Every option some family declares (first declaration wins), then the common ones."""
    seen: dict[str, Option] = {}
    for family in families():
        for name in family.names():
            for option in family.options(name):
                seen.setdefault(option.key, option)
    return [*seen.values(), *COMMON_OPTIONS]


class SchemeEditor(QGroupBox):
    """Builds a scheme spec from widgets and applies it to the selection, default or a glob."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__("Scheme for the selection", parent)
        self.state = state
        self._loading = False
        self.preset = QComboBox()
        self.preset.addItems(list(scheme_names()))
        self.bits = QSpinBox(minimum=1, maximum=32, suffix=" bits")
        self.options = {o.key: _OptionWidget(o, self._schedule) for o in _all_options()}
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

    @property
    def clip(self) -> QComboBox:
        return self.options["clip"].main  # type: ignore[return-value]

    @property
    def percentile(self) -> QDoubleSpinBox:
        spin = self.options["clip"].percentile
        assert spin is not None
        return spin

    def _build_layout(self) -> None:
        # The options scroll; the spec line and the buttons stay below them in view, so a
        # short window never hides "Apply" below a fold.
        fields = QWidget()
        form = QFormLayout(fields)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Preset", self.preset)
        form.addRow("Bits", self.bits)
        for widget in self.options.values():
            form.addRow(widget.option.label, widget)
        self.fields_scroll = QScrollArea()
        self.fields_scroll.setWidget(fields)
        self.fields_scroll.setWidgetResizable(True)
        self.fields_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.fields_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.fields_scroll.setMinimumHeight(90)
        spec_row = QHBoxLayout()
        spec_row.addWidget(QLabel("Spec"))
        spec_row.addWidget(self.spec_edit, 1)
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
        layout.addWidget(self.fields_scroll, 1)
        layout.addLayout(spec_row)
        layout.addWidget(self.error)
        layout.addWidget(self.live)
        layout.addLayout(buttons)
        layout.addWidget(self.clear_button)
        layout.addLayout(rule_row)

    def _connect(self) -> None:
        self.preset.currentIndexChanged.connect(self._preset_changed)
        self.bits.valueChanged.connect(self._schedule)
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
            takes = self._taken(scheme)
            for key, widget in self.options.items():
                widget.setEnabled(key in takes)
                if key in takes:
                    widget.set_value(scheme.option(key))
            self.bits.setEnabled(len(scheme.family.bit_choices(scheme.name)) > 1)
            self.spec_edit.setText(scheme.spec)
            self.error.setText("")
        finally:
            self._loading = False

    @staticmethod
    def _taken(scheme: Scheme) -> set[str]:
        return {o.key for o in (*scheme.family.options(scheme.name), *COMMON_OPTIONS)}

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

    def build_scheme(self) -> Scheme:
        """The scheme the widgets describe; options a scheme does not take are left out."""
        name = self.preset.currentText()
        name = Scheme(name).family.name_for_bits(name, self.bits.value())
        takes = self._taken(Scheme(name))
        return Scheme.build(name, {k: w.value() for k, w in self.options.items() if k in takes})

    def _widgets_changed(self) -> None:
        try:
            scheme = self.build_scheme()
        except (InspectorError, ValueError) as exc:
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
