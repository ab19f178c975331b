"""The "Output" tab: output-level error of the plan (Evaluate, auto re-evaluate), per-layer
sensitivity and the size/error front with the automatic plan for a budget.

Binds the `EvaluationController` (work) and the `SensitivityPanel` (charts) to the state:
clicking a bar selects that layer's tensors, clicking a front point or "Apply" loads a plan
through `state.set_plan` (one undo step).
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from inspector.core.errors import InspectorError
from inspector.core.formatting import format_bytes, format_count, format_db
from inspector.core.schemes import scheme_names
from inspector.core.totals import input_bytes
from inspector.ui.evaluation import EvaluationController
from inspector.ui.sensitivity_panel import SensitivityPanel
from inspector.ui.state import AppState

__all__ = ["OutputPanel", "arith_text", "describe_metrics"]


def describe_metrics(m: Any) -> dict[str, str]:
    """Label texts for an `OutputMetrics`."""
    out = {"sqnr": format_db(m.sqnr_db)}
    out["top1"] = "–" if m.top1_agreement is None else f"{100 * m.top1_agreement:.1f} %"
    if m.metric is None or m.original_score is None:
        out["score"] = "– (no labels)"
    elif m.metric == "accuracy":
        out["score"] = f"accuracy {100 * m.original_score:.1f} % → {100 * m.quantized_score:.1f} %"
    else:
        out["score"] = f"MAE {m.original_score:.4g} → {m.quantized_score:.4g}"
    return out


def arith_text(result: Any, limit: int = 8) -> str:
    """Lines for an `ArithResult`: error against float32 arithmetic, the layers hit."""
    return "\n".join([f"{result.dtype} arithmetic:", *result.lines(limit)])


class OutputPanel(QWidget):
    """Evaluate / sensitivity / budget controls above the `SensitivityPanel` charts."""

    def __init__(
        self, state: AppState, controller: EvaluationController, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.controller = controller
        self.solution: Any = None
        self.sensitivity = SensitivityPanel()
        self.sensitivity.plan_chosen.connect(state.set_plan)
        self.sensitivity.unit_clicked.connect(self.select_unit)
        controls = QWidget()
        controls_layout = QVBoxLayout(controls)
        controls_layout.setContentsMargins(0, 0, 0, 0)
        controls_layout.addWidget(self._build_eval_box())
        controls_layout.addWidget(self._build_analysis_box())
        controls_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(controls)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Controls, bars and front share one vertical splitter, its sizes remembered by the
        # window (QSettings): on an 800-px screen each keeps a readable height and the
        # controls scroll instead of squeezing the charts.
        self.splitter = self.sensitivity.splitter
        self.splitter.insertWidget(0, scroll)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setStretchFactor(2, 1)
        self.splitter.setSizes([190, 300, 200])
        scroll.setMinimumHeight(110)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.splitter)
        controller.evaluated.connect(self.show_evaluation)
        controller.arith_done.connect(self.show_arith)
        controller.unavailable.connect(self.show_unavailable)
        controller.sensitivity_done.connect(self.sensitivity.set_sensitivity)
        controller.analysis.partial.connect(self.sensitivity.add_row)
        controller.sensitivity_started.connect(self.sensitivity.expect)
        state.selection_changed.connect(self._on_selection)
        controller.front_done.connect(self.show_front)
        state.model_changed.connect(self.clear)
        state.target_changed.connect(self.clear)

    def _build_eval_box(self) -> QGroupBox:
        box = QGroupBox("Model output: original vs quantized (current plan)")
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip("Run both models on the evaluation data (Ctrl+E)")
        self.evaluate_button.clicked.connect(self.controller.evaluate)
        self.auto_box = QCheckBox("auto")
        self.auto_box.setToolTip("Re-evaluate on every plan change")
        self.auto_box.toggled.connect(self._on_auto)
        self.data_label = QLabel("data: bundled sample when there is one, else a synthetic batch")
        self.data_label.setWordWrap(True)
        self.data_label.setStyleSheet("color: #555")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.arith_combo = QComboBox()
        self.arith_combo.addItems(["float32", "float16", "bfloat16"])
        self.arith_combo.setToolTip(
            "Arithmetic of the quantized run: every activation rounded to this type after "
            "each layer (a float16 runtime); per-layer overflow counts below"
        )
        self.arith_combo.currentTextChanged.connect(self._on_arith)
        self.arith_label = QLabel("")
        self.arith_label.setWordWrap(True)
        self.arith_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.values = {k: QLabel("–") for k in ("sqnr", "top1", "score")}
        grid = QGridLayout(box)
        top = QHBoxLayout()
        top.addWidget(self.evaluate_button)
        top.addWidget(self.auto_box, 1)
        top.addWidget(QLabel("Arithmetic"))
        top.addWidget(self.arith_combo)
        grid.addLayout(top, 0, 0, 1, 4)
        names = (("sqnr", "Output SQNR"), ("top1", "Top-1 agreement"), ("score", "Score"))
        for i, (key, text) in enumerate(names):
            grid.addWidget(QLabel(text), 1 + i // 2, 2 * (i % 2), Qt.AlignmentFlag.AlignRight)
            grid.addWidget(self.values[key], 1 + i // 2, 2 * (i % 2) + 1)
            self.values[key].setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.values["sqnr"].setToolTip("10·log10(Σ original² / Σ (original − quantized)²)")
        self.values["score"].setWordWrap(True)
        grid.addWidget(self.data_label, 3, 0, 1, 4)
        grid.addWidget(self.message, 4, 0, 1, 4)
        grid.addWidget(self.arith_label, 5, 0, 1, 4)
        return box

    def _build_analysis_box(self) -> QGroupBox:
        box = QGroupBox("Sensitivity and size budget")
        self.scheme_combo = QComboBox(editable=True)
        self.scheme_combo.addItems(list(scheme_names()))
        self.scheme_combo.setCurrentText("uint8")
        self.sens_button = QPushButton("Run sensitivity")
        self.sens_button.setToolTip("Quantize one layer at a time with this scheme; rank layers")
        self.sens_button.clicked.connect(
            lambda: self.controller.run_sensitivity(self.scheme_combo.currentText().strip())
        )
        self.front_button = QPushButton("Build size/error front")
        self.budget_edit_min = 90
        self.front_button.clicked.connect(self.controller.build_front)
        self.budget_edit = QLineEdit(placeholderText="budget: 25%, 40kB, 4 bits")
        self.budget_edit.setMinimumWidth(self.budget_edit_min)
        self.budget_edit.setToolTip(
            'Size of the exported file, as written (the summary\'s "File after"): a percentage '
            'of the input file on disk ("File before"), or bytes (kB/MB/KiB/MiB); or bits '
            "per weight (the weights alone)"
        )
        self.budget_edit.returnPressed.connect(self.apply_budget)
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Load the least-error plan within the typed budget")
        self.apply_button.clicked.connect(self.apply_budget)
        self.budget_label = QLabel("")
        self.budget_label.setWordWrap(True)
        grid = QGridLayout(box)
        grid.addWidget(QLabel("Scheme"), 0, 0)
        grid.addWidget(self.scheme_combo, 0, 1)
        grid.addWidget(self.sens_button, 0, 2, 1, 2)
        grid.addWidget(self.front_button, 1, 0, 1, 2)
        grid.addWidget(self.budget_edit, 1, 2)
        grid.addWidget(self.apply_button, 1, 3)
        grid.addWidget(self.budget_label, 2, 0, 1, 4)
        grid.setColumnStretch(2, 1)
        return box

    def _on_arith(self, text: str) -> None:
        self.controller.arith = text
        self.arith_label.setText("")

    def show_arith(self, result: Any) -> None:
        """Per-layer overflow / underflow of the last evaluation's arithmetic run."""
        if result is None:
            self.arith_label.setText("")
        elif isinstance(result, str):
            self.arith_label.setText(f"⚠ {result}")
        else:
            self.arith_label.setText(arith_text(result))

    def _on_auto(self, on: bool) -> None:
        self.controller.auto_evaluate = on
        if on:
            self.controller.evaluate()

    # -- results ----------------------------------------------------------------------------
    def show_evaluation(self, evaluation: Any) -> None:
        texts = describe_metrics(evaluation.metrics)
        for key, label in self.values.items():
            label.setText(texts[key])
        data = evaluation.data
        prefix = "⚠ " if data.synthetic else ""
        self.data_label.setText(f"{prefix}data: {data.describe()}")
        self.message.setText("")

    def show_unavailable(self, reason: str) -> None:
        for label in self.values.values():
            label.setText("–")
        text = (
            reason
            if reason.startswith("evaluation unavailable")
            else f"evaluation unavailable: {reason}"
        )
        self.message.setText(f"{text}. Weight-level metrics (table, summary) still apply.")
        self.message.setStyleSheet("color: #b00020")

    def show_front(self, front: Any, ladders: Any, output_level: bool) -> None:
        preview = self.state.preview
        current = None
        if preview is not None:
            current = preview.total["quantized_bytes"] - preview.total.get("overhead_bytes", 0)
        self.sensitivity.set_front(front, ladders, current_bytes=current)
        level = "output" if output_level else "weight (the model cannot run)"
        sizes = f"{format_bytes(front[0].nbytes)} … {format_bytes(front[-1].nbytes)}"
        self.budget_label.setText(
            f"Front of {len(front)} plans, {sizes} of tensors, {level}-level error. "
            "Click a point to load its plan, or type a budget and Apply."
        )

    def apply_budget(self) -> None:
        """Solve for the typed budget and load the plan (one undo step)."""
        try:
            sol = self.controller.auto_plan(self.budget_edit.text())
        except (InspectorError, ValueError) as exc:
            self.budget_label.setText(f"⚠ {exc}")
            return
        self.solution = sol
        self.state.set_plan(sol.plan)
        err = "∞" if not math.isfinite(sol.error) else f"{sol.error:.3g}"
        before = input_bytes(self.state.model) if self.state.model is not None else 0
        share = f" = {100 * sol.total_bytes / before:.1f} % of the input's {format_bytes(before)}"
        self.budget_label.setText(
            f"Auto plan: a {format_bytes(sol.total_bytes)} ({format_count(sol.total_bytes)} B) "
            f"file as written{share if before else ''}, predicted error {err}; "
            f"{len(sol.plan.overrides)} overrides (Ctrl+Z undoes)"
        )

    def _on_selection(self) -> None:
        """Table → chart: mark the bars of the selected tensors' layers (or tensors)."""
        model = self.state.model
        if model is None:
            return
        marked = set()
        for name in self.state.selection:
            if name in model.tensors:
                marked.add(name)
                layer = model[name].info.layer
                if layer:
                    marked.add(layer)
        self.sensitivity.highlight(marked)

    def select_unit(self, unit: str) -> None:
        """A clicked bar: select the layer's (or the tensor's) tensors in the table."""
        model = self.state.model
        if model is None:
            return
        names = [t.name for t in model if t.info.layer == unit or t.name == unit]
        if names:
            self.state.set_selection(names, names[0])

    def clear(self) -> None:
        self.sensitivity.clear()
        for label in self.values.values():
            label.setText("–")
        self.message.setText("")
        self.arith_label.setText("")
        self.budget_label.setText("")
        self.solution = None
