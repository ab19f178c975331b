"""Model-level transforms in the window: the Fold BN / Equalize toggles and their before/after.

The toggles edit the plan (`Plan.transforms`, one undo step, saved with the plan); the
`TransformController` notices a plan whose transforms differ from the ones applied, runs
`transform_model` on the model as opened (off the GUI thread) and swaps the result in
(`AppState.swap_model`), so the table, the plots, the evaluation and the export all work on
the transformed model. A bias correction asked for by a loaded plan is applied too, and
re-applied when the plan changes (it depends on the quantized weights). "Before" is the
untransformed model under the same plan: its preview totals (`TransformBar`) and each tensor's
per-channel ranges (`before_ranges`, drawn by the Error view).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QWidget

from inspector.core.formatting import format_bytes, format_db
from inspector.core.preview import PreviewCache, run_preview
from inspector.core.transform_spec import Transforms
from inspector.ui.controllers import resolve_target
from inspector.ui.state import AppState
from inspector.ui.tasks import BackgroundTask

__all__ = ["BEFORE_RANGE_LIMIT", "TransformBar", "TransformController"]

BEFORE_RANGE_LIMIT = 4 << 20
"""Elements up to which the Error view draws a tensor's per-channel ranges before the
transforms (a min/max over the original values, computed when the tensor is shown)."""


class TransformController(QObject):
    """Keeps the shown model in step with the plan's transforms (see the module docstring)."""

    applied = Signal(object)  # TransformResult, or None when back to the model as opened
    before_ready = Signal(object)  # the untransformed model's preview totals (dict)
    failed = Signal(str)

    def __init__(self, state: AppState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.task = BackgroundTask("Transforms", self)
        self.task.done.connect(self._on_done)
        self.task.failed.connect(self.failed)
        self.result: Any = None
        self._applied = Transforms()
        self._applied_plan: Any = None
        self._cache = PreviewCache()
        self._ranges: dict[tuple[str, int], tuple[np.ndarray, np.ndarray] | None] = {}
        state.plan_changed.connect(self._on_plan)
        state.target_changed.connect(self._on_plan)

    @property
    def original(self) -> Any:
        return self.state.original_model or self.state.model

    def reset(self) -> None:
        """A new model is about to be shown: nothing is applied to it yet."""
        self.task.cancel()
        self.result, self._applied, self._applied_plan = None, Transforms(), None
        self._cache, self._ranges = PreviewCache(), {}

    def set_toggles(self, fold_bn: bool, equalize: bool) -> None:
        """The plan with these transforms (one undo step)."""
        plan = self.state.plan
        wanted = replace(plan.transforms, fold_bn=fold_bn, equalize=equalize)
        self.state.set_plan(plan.with_transforms(wanted))

    def _on_plan(self) -> None:
        model, plan = self.original, self.state.plan
        if model is None:
            return
        wanted = plan.transforms
        redo_bias = wanted.bias_correction != "none" and plan != self._applied_plan
        if wanted != self._applied or redo_bias:
            self._start(model, plan, wanted)
        elif wanted.any:
            self._start_before(model, plan)

    def _start(self, model: Any, plan: Any, wanted: Transforms) -> None:
        from inspector.engine.transforms import transform_model

        target, cache = resolve_target(self.state.target_name), self._cache
        base = plan.with_transforms(Transforms())

        def job(cancelled: Any, report: Any) -> Any:
            result = transform_model(model, wanted, plan, target) if wanted.any else None
            before = run_preview(model, base, target, cache).total if wanted.any else None
            return wanted, plan, result, before

        self.task.start(job)

    def _start_before(self, model: Any, plan: Any) -> None:
        target, cache = resolve_target(self.state.target_name), self._cache
        base = plan.with_transforms(Transforms())
        self.task.start(lambda c, r: ("before", run_preview(model, base, target, cache).total))

    def _on_done(self, answer: Any) -> None:
        if answer is None:
            return
        if answer[0] == "before":
            self.before_ready.emit(answer[1])
            return
        wanted, plan, result, before = answer
        original = self.original
        self._applied, self._applied_plan, self.result = wanted, plan, result
        self._ranges = {}
        if result is None:
            self.state.swap_model(original, None)
        else:
            self.state.swap_model(result.model, original)
        self.applied.emit(result)
        if before is not None:
            self.before_ready.emit(before)

    def before_ranges(self, name: str, axis: int | None) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-channel (min, max) of tensor `name` before the transforms along `axis`, when it
        was changed by them and has the same shape (else None)."""
        original, model = self.state.original_model, self.state.model
        if original is None or model is None or axis is None or name not in original.tensors:
            return None
        key = (name, axis)
        if key not in self._ranges:
            self._ranges[key] = _channel_ranges(original[name], model[name], axis)
        return self._ranges[key]


def _channel_ranges(before: Any, after: Any, axis: int) -> tuple[np.ndarray, np.ndarray] | None:
    if after is before:  # a tensor the transforms left alone is the input's own
        return None
    if before.info.shape != after.info.shape or before.info.size > BEFORE_RANGE_LIMIT:
        return None
    x = np.moveaxis(np.asarray(before.load(), dtype=np.float64), axis, 0)
    flat = x.reshape(x.shape[0], -1)
    return flat.min(axis=1), flat.max(axis=1)


class TransformBar(QWidget):
    """Fold BN / Equalize check boxes and one line of before → after (bytes, weight SQNR)."""

    def __init__(self, state: AppState, controller: TransformController, parent: Any = None):
        super().__init__(parent)
        self.state, self.controller = state, controller
        self.fold_box = QCheckBox("Fold batch norms")
        self.fold_box.setToolTip("Merge each BatchNormalization into the conv/dense before it")
        self.equalize_box = QCheckBox("Equalize")
        self.equalize_box.setToolTip(
            "Cross-layer equalization (folds batch norms first; a ReLU6 between equalized "
            "layers becomes a ReLU: the float model changes a little)"
        )
        for box in (self.fold_box, self.equalize_box):
            box.clicked.connect(self._on_clicked)
        self.label = QLabel("Model transforms: none")
        self.label.setStyleSheet("color: #555")
        self.before: dict[str, Any] | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.fold_box)
        layout.addWidget(self.equalize_box)
        layout.addWidget(self.label, 1)
        state.plan_changed.connect(self._sync_boxes)
        state.preview_updated.connect(self._show)
        controller.applied.connect(self._on_applied)
        controller.before_ready.connect(self._on_before)
        controller.failed.connect(lambda text: self.label.setText(f"⚠ transforms: {text}"))

    def _on_clicked(self) -> None:
        self.controller.set_toggles(self.fold_box.isChecked(), self.equalize_box.isChecked())

    def _sync_boxes(self) -> None:
        t = self.state.plan.transforms
        for box, on in ((self.fold_box, t.fold_bn), (self.equalize_box, t.equalize)):
            box.blockSignals(True)
            box.setChecked(on)
            box.blockSignals(False)
        if not t.any:
            self.before = None
            self.label.setText("Model transforms: none")

    def _on_applied(self, result: Any) -> None:
        if result is None:
            self.before = None
        self._show()

    def _on_before(self, total: dict[str, Any]) -> None:
        self.before = total
        self._show()

    def _show(self) -> None:
        result = self.controller.result
        if result is None or not self.state.plan.transforms.any:
            return
        what = describe(result)
        after = getattr(self.state.preview, "total", None)
        if self.before is None or after is None:
            self.label.setText(f"{what}; computing before/after…")
            return
        self.label.setText(
            f"{what} · before: {format_bytes(self.before['quantized_bytes'])}, weight SQNR "
            f"{format_db(self.before['sqnr_db'])} → after: "
            f"{format_bytes(after['quantized_bytes'])}, {format_db(after['sqnr_db'])}"
        )


def describe(result: Any) -> str:
    """One line on what the transforms did."""
    parts = []
    if result.folds:
        parts.append(f"{len(result.folds)} BN folded")
    if result.chains:
        parts.append(f"{len(result.chains)} chains equalized")
    if result.lifted:
        parts.append(f"{len(result.lifted)} ReLU6 → ReLU")
    if result.bias:
        parts.append(f"{len(result.bias)} biases corrected")
    return ", ".join(parts) or "nothing to transform in this model"
