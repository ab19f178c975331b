"""The one application state object: model, plan (with undo), selection, target, previews.

Widgets never talk to each other; they change this object and redraw on its signals (the
napari model/Qt split). Plans are immutable values, so undo is a stack of plans and "did the
plan change" is `==`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QObject, Signal

from inspector.core.collapse import collapse_advice, collapse_flagged, collapse_text
from inspector.core.model import Model, Tensor
from inspector.core.plan import Plan

__all__ = ["DEFAULT_SQNR_THRESHOLD_DB", "START_SPEC", "AppState", "poor_reasons"]

START_SPEC = "uint8"
"""Default scheme of a freshly opened model: the TF.js converter's usual choice, so the plots
show a quantization grid at once."""

DEFAULT_SQNR_THRESHOLD_DB = 30.0
"""Below this SQNR a tensor is marked; ~30 dB is where 8-bit affine on smooth weights sits."""

RMSE_OVER_SCALE_LIMIT = 0.7
"""TF-Lite quantization debugger rule of thumb: above 0.7 the rounding error is not uniform."""


def poor_reasons(tp: object, sqnr_threshold_db: float) -> list[str]:
    """Why a tensor preview counts as poor (empty list when it is fine)."""
    reasons = []
    ros = getattr(tp, "rmse_over_scale", None)
    if ros is not None and not math.isnan(ros) and ros > RMSE_OVER_SCALE_LIMIT:
        reasons.append(f"RMSE/scale {ros:.2f} > {RMSE_OVER_SCALE_LIMIT}")
    sqnr = getattr(tp, "sqnr_db", math.inf)
    if getattr(tp, "skipped", None) is None and not math.isnan(sqnr) and sqnr < sqnr_threshold_db:
        reasons.append(f"SQNR {sqnr:.1f} dB < {sqnr_threshold_db:g} dB")
    collapsed, channels = getattr(tp, "collapsed_channels", 0), getattr(tp, "channels", 0)
    if collapse_flagged(collapsed, channels):
        advice = collapse_advice(getattr(tp, "scheme", ""))
        reasons.append(f"{collapse_text(collapsed, channels)}: {advice}")
    if getattr(tp, "overflow", 0):
        reasons.append(f"{tp.overflow} values overflow")  # type: ignore[attr-defined]
    if getattr(tp, "nonfinite", 0):
        reasons.append(f"{tp.nonfinite} NaN/Inf values")  # type: ignore[attr-defined]
    return reasons


class AppState(QObject):
    """Everything the window shows, owned by the GUI thread."""

    model_changed = Signal()
    plan_changed = Signal()
    selection_changed = Signal()
    target_changed = Signal()
    tensor_previews_updated = Signal(list)  # names of tensors whose preview arrived
    preview_updated = Signal()
    history_changed = Signal()
    threshold_changed = Signal()
    sensitivity_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model: Model | None = None
        self.original_model: Model | None = None
        """The model as opened when `model` is a transformed version of it (`swap_model`)."""
        self.plan: Plan = Plan(default=START_SPEC)
        self.target_name: str = "native"
        self.calibration_path: str | None = None
        """The evaluation data `round=gptq` calibrates on (None: the bundled sample)."""
        self._rounding: tuple[Model, str | None, Any] | None = None
        self.selection: tuple[str, ...] = ()
        self.current: str | None = None
        self.tensor_previews: dict[str, object] = {}
        self.preview: object | None = None
        self.preview_plan: Plan | None = None
        self.sqnr_threshold_db: float = DEFAULT_SQNR_THRESHOLD_DB
        self.sensitivity: dict[str, tuple[float, str]] = {}
        """Tensor name → (sort value, text) of the last sensitivity analysis."""
        self._undo: list[Plan] = []
        self._redo: list[Plan] = []
        # Resolved spec per tensor for `_spec_plan`; table painting asks for it many times.
        self._spec_cache: dict[str, str] = {}
        self._spec_plan: Plan | None = None

    # -- model ------------------------------------------------------------------------------
    def set_model(self, model: Model, plan: Plan | None = None, target: str | None = None) -> None:
        """Show `model`; the plan starts fresh (undo history belongs to the previous model)."""
        self.model = model
        self.original_model = None
        self._spec_plan = None
        self.plan = plan if plan is not None else Plan(default=START_SPEC)
        if target is not None:
            self.target_name = target
        self._undo.clear()
        self._redo.clear()
        self.tensor_previews = {}
        self.preview = None
        self.preview_plan = None
        self.selection = ()
        self.current = None
        self.sensitivity = {}
        self.model_changed.emit()
        self.history_changed.emit()
        self.plan_changed.emit()
        self.selection_changed.emit()

    def swap_model(self, model: Model, original: Model | None) -> None:
        """Show a transformed version of the current model (`original` is the model as opened,
        None when `model` is it): plan, history and the selection's surviving names stay."""
        self.model = model
        self.original_model = original
        self._spec_plan = None
        self.tensor_previews = {}
        self.preview = None
        self.preview_plan = None
        self.selection = tuple(n for n in self.selection if n in model.tensors)
        self.current = self.current if self.current in model.tensors else None
        self.sensitivity = {}
        self.model_changed.emit()
        self.selection_changed.emit()

    def tensor(self, name: str | None) -> Tensor | None:
        if self.model is None or name is None or name not in self.model.tensors:
            return None
        return self.model[name]

    # -- plan and history -------------------------------------------------------------------
    def set_plan(self, plan: Plan) -> None:
        """Make `plan` current and remember the previous one for undo."""
        if plan == self.plan:
            return
        self._undo.append(self.plan)
        self._redo.clear()
        self.plan = plan
        self.history_changed.emit()
        self.plan_changed.emit()

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> None:
        if not self._undo:
            return
        self._redo.append(self.plan)
        self.plan = self._undo.pop()
        self.history_changed.emit()
        self.plan_changed.emit()

    def redo(self) -> None:
        if not self._redo:
            return
        self._undo.append(self.plan)
        self.plan = self._redo.pop()
        self.history_changed.emit()
        self.plan_changed.emit()

    def spec_for(self, name: str) -> str:
        """The scheme spec the current plan resolves for tensor `name`."""
        if self._spec_plan is not self.plan:
            self._spec_cache = {}
            self._spec_plan = self.plan
        spec = self._spec_cache.get(name)
        if spec is None:
            tensor = self.tensor(name)
            if tensor is None:
                return self.plan.default
            spec = self._spec_cache[name] = self.plan.scheme_for(tensor.info).spec
        return spec

    def override(self, names: Iterable[str], spec: str | None) -> None:
        """Set (or with `None` remove) per-tensor overrides, as one undo step."""
        self.set_plan(self.plan.with_overrides(list(names), spec))

    # -- selection, target, threshold -------------------------------------------------------
    def set_selection(self, names: Iterable[str], current: str | None = None) -> None:
        names = tuple(names)
        if current is None and names:
            current = names[0] if self.current not in names else self.current
        if names == self.selection and current == self.current:
            return
        self.selection = names
        self.current = current
        self.selection_changed.emit()

    def set_target(self, name: str) -> None:
        if name != self.target_name:
            self.target_name = name
            self.target_changed.emit()

    @property
    def rounding(self) -> Any:
        """The `DataRounding` GPTQ takes its codes from: calibrated on `calibration_path` (or
        the bundled sample) for the model shown now — a transformed model gets its own. Made
        on first use; it opens data and runs the model lazily, on a worker."""
        if self.model is None:
            return None
        held = self._rounding
        if held is None or held[0] is not self.model or held[1] != self.calibration_path:
            from inspector.engine.rounding.calibrate import LazyCalibration

            held = (
                self.model,
                self.calibration_path,
                LazyCalibration(self.model, self.calibration_path),
            )
            self._rounding = held
        return held[2]

    def set_calibration_path(self, path: str | None) -> None:
        """New evaluation data for `round=gptq`: results under the target are stale."""
        if path != self.calibration_path:
            self.calibration_path = path
            self.target_changed.emit()

    def set_sqnr_threshold(self, db: float) -> None:
        if db != self.sqnr_threshold_db:
            self.sqnr_threshold_db = db
            self.threshold_changed.emit()

    def set_sensitivity(self, values: dict[str, tuple[float, str]]) -> None:
        """Per-tensor sensitivity for the table column: name → (sort value, text)."""
        self.sensitivity = dict(values)
        self.sensitivity_changed.emit()

    # -- previews (written by the preview controller) ---------------------------------------
    def set_tensor_previews(self, previews: list[object]) -> None:
        """Store finished tensor previews; views hear one `tensor_previews_updated` per batch."""
        names = [tp.name for tp in previews]  # type: ignore[attr-defined]
        for name, tp in zip(names, previews, strict=True):
            self.tensor_previews[name] = tp
        self.tensor_previews_updated.emit(names)

    def set_preview(self, preview: object, plan: Plan) -> None:
        self.preview = preview
        self.preview_plan = plan
        for tp in preview.tensors:  # type: ignore[attr-defined]
            self.tensor_previews[tp.name] = tp
        self.preview_updated.emit()
