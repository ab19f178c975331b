"""Output-level work for the window: evaluate the plan, per-layer sensitivity, the size/error
front and the automatic plan for a size budget (issue 5). Views live in `output_panel.py`.

Engine work runs on two `BackgroundTask`s (evaluation; analysis = sensitivity or front), each
with its own `Evaluator` sharing the model's executor and data, so an auto re-evaluation never
cancels a sensitivity run. When the engine cannot run the model, `unavailable(reason)` says why
and weight-level work (the front with weight error) keeps going.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from inspector.core import budget
from inspector.core.errors import InspectorError, PlanError
from inspector.core.preview import PreviewCache
from inspector.core.totals import input_bytes
from inspector.ui.controllers import state_target
from inspector.ui.state import AppState
from inspector.ui.tasks import BackgroundTask

__all__ = [
    "AUTO_LADDER",
    "EvaluationController",
    "budget_bytes",
    "sensitivity_values",
]

AUTO_LADDER = ("float32", "float16", "uint8", "affine4")
"""Candidate schemes per tensor for the front and the auto plan."""
PROBE_SAMPLES = 100
"""Samples used for sensitivity and the front's output errors (the full data for Evaluate)."""
_BITS = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(?:bits?|b/w|bpw|bits?/weight)\s*$", re.IGNORECASE)


def budget_bytes(text: str, original_bytes: int, parameters: int) -> tuple[int, bool]:
    """(bytes, is_whole_file) for "25%", "0.25" (of `original_bytes`, the input file), "40kB",
    "40000" (the whole export file) or "4 bits" (bits per weight: tensor bytes only)."""
    m = _BITS.match(text)
    if m:
        return int(float(m.group(1)) * parameters / 8), False
    return budget.parse_size(text, original_bytes), True


def sensitivity_values(result: Any) -> dict[str, tuple[float, str]]:
    """Tensor name → (sort value, text) for the table: accuracy points lost, else noise dB."""
    import math

    out = {}
    for row in result.rows:
        if row.impact_score is not None:
            value, text = 100.0 * row.impact_score, f"{100.0 * row.impact_score:+.1f} pts"
        else:
            m = row.metrics
            noise = max(m.noise_energy, 0.0)
            ratio = noise / m.signal_energy if m.signal_energy > 0 else 0.0
            value = 10 * math.log10(ratio) if ratio > 0 else -math.inf
            text = "–" if ratio <= 0 else f"{value:.1f} dB"
        for name in row.tensors:
            out[name] = (value, text)
    return out


REPORT_EVERY = 0.1
"""Seconds between progress reports to the GUI thread (items come every layer, ~10-50 ms)."""


def _throttled(report: Callable[[Any], None]) -> Callable[[Any], None]:
    """`report` for progress tuples at most every `REPORT_EVERY` s; partial results (tuples of
    three) and the last item always go through."""
    import time

    last = [0.0]

    def send(payload: Any) -> None:
        now = time.monotonic()
        if len(payload) > 2 or payload[0] >= payload[1] or now - last[0] >= REPORT_EVERY:
            last[0] = now
            report(payload)

    return send


def _drain(gen: Any, cancelled: Callable[[], bool], on_item: Callable[[Any], None]) -> Any:
    """Run `gen` until it returns (its value) or `cancelled()` (None); the check comes between
    items, which the engine yields after every layer of every batch."""
    while not cancelled():
        try:
            on_item(next(gen))
        except StopIteration as stop:
            return stop.value
    gen.close()
    return None


class EvaluationController(QObject):
    """Evaluation, sensitivity and front jobs; results come back as signals."""

    evaluated = Signal(object)
    arith_done = Signal(object)  # ArithResult, or None for float32 arithmetic
    unavailable = Signal(str)
    sensitivity_done = Signal(object)
    sensitivity_started = Signal(int)  # units the run will measure
    front_done = Signal(object, object, object)
    failed = Signal(str)

    def __init__(self, state: AppState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.data_path: str | None = None
        self.auto_evaluate = False
        self.arith = "float32"
        """Activation arithmetic of the next evaluation (`inspector.engine.arith`)."""
        self.ladder = AUTO_LADDER
        self.eval_task = BackgroundTask("Evaluation", self)
        self.analysis = BackgroundTask("Sensitivity", self)
        self.eval_task.done.connect(self._on_evaluated)
        self.analysis.done.connect(self._on_analysis)
        for task in (self.eval_task, self.analysis):
            task.failed.connect(self.failed)
        self.ladders: list[Any] = []
        self.cache = PreviewCache()
        self._full: Any = None
        self._probe: Any = None
        self._unavailable: str | None = None
        self._timer = QTimer(self, singleShot=True, interval=500)
        self._timer.timeout.connect(self.evaluate)
        state.model_changed.connect(self.reset)
        state.target_changed.connect(self.reset)
        state.plan_changed.connect(self._on_plan)

    @property
    def tasks(self) -> list[BackgroundTask]:
        return [self.eval_task, self.analysis]

    def reset(self) -> None:
        """Forget evaluators and results (new model, target or data)."""
        for task in self.tasks:
            task.cancel()
        self._full = self._probe = self._unavailable = None
        self.ladders = []
        self.cache = PreviewCache()

    def set_data_path(self, path: str | None) -> None:
        self.data_path = path
        self.reset()
        if self.auto_evaluate:
            self.evaluate()

    def _on_plan(self) -> None:
        if self.auto_evaluate and self.state.model is not None:
            self._timer.start()

    # -- evaluators (built on the worker: the executor reads every weight) --------------------
    def _evaluators(self) -> tuple[Any, Any]:
        """(full, probe) evaluators; raises EvaluationUnavailable when the model cannot run."""
        from inspector.engine.errors import EvaluationUnavailable
        from inspector.engine.evaluate import Evaluator

        if self._unavailable is not None:
            raise EvaluationUnavailable(self._unavailable)
        if self._full is None:
            model, target = self.state.model, state_target(self.state)
            try:
                full = Evaluator.open(model, self.data_path, target)  # type: ignore[arg-type]
            except EvaluationUnavailable as exc:
                self._unavailable = str(exc)
                raise
            original = self.state.original_model
            if original is not None:  # a transformed model is judged against the original
                from inspector.engine.evaluate import make_executor

                full.reference = make_executor(original)
            probe_data = full.data.head(PROBE_SAMPLES)
            self._probe = Evaluator(model, probe_data, full.runner, target)  # type: ignore[arg-type]
            self._full = full
        return self._full, self._probe

    def probe(self) -> Any:
        """The probe evaluator (few samples, built on first use: call it on a worker);
        raises EvaluationUnavailable when the model cannot run."""
        return self._evaluators()[1]

    def _unavailable_text(self, exc: BaseException) -> str | None:
        from inspector.engine.errors import EvaluationUnavailable

        return str(exc) if isinstance(exc, EvaluationUnavailable) else None

    # -- evaluate ---------------------------------------------------------------------------
    def evaluate(self) -> None:
        """Run the original and the quantized model on the evaluation data."""
        if self.state.model is None:
            return
        plan, arith = self.state.plan, self.arith

        def job(cancelled: Any, report: Any) -> Any:
            from inspector.engine.arith import iter_arith

            try:
                full, _ = self._evaluators()
            except InspectorError as exc:
                if self._unavailable_text(exc):
                    return exc
                raise

            send = _throttled(report)

            def on_item(p: Any) -> None:
                send((p.done, p.total))

            evaluation = _drain(full.iter_evaluate(plan), cancelled, on_item)
            if evaluation is None or arith == "float32":
                return evaluation, None
            try:
                return evaluation, _drain(iter_arith(full, plan, arith), cancelled, on_item)
            except InspectorError as exc:
                return evaluation, str(exc)

        self.eval_task.start(job, "Evaluation")

    def _on_evaluated(self, result: Any) -> None:
        if isinstance(result, BaseException):
            self.unavailable.emit(str(result))
        elif result is not None and result[0] is not None:
            self.evaluated.emit(result[0])
            self.arith_done.emit(result[1])

    # -- sensitivity ------------------------------------------------------------------------
    def run_sensitivity(self, scheme: str, per: str = "layer", mode: str = "only") -> None:
        """Rank layers by the output damage of quantizing only them with `scheme`; rows arrive
        as `analysis.partial` while the analysis runs."""
        from inspector.engine.sensitivity import (
            SensitivityRow,
            iter_sensitivity_progress,
            model_units,
        )

        if self.state.model is None:
            return
        self.sensitivity_started.emit(len(model_units(self.state.model, per)))

        def job(cancelled: Any, report: Any) -> Any:
            try:
                _, probe = self._evaluators()
            except InspectorError as exc:
                if self._unavailable_text(exc):
                    return exc
                raise
            send = _throttled(report)
            last = [0, 1]

            def on_item(item: Any) -> None:
                if isinstance(item, SensitivityRow):
                    send((last[0], last[1], item))
                else:
                    last[:] = [item.done, item.total]
                    send((item.done, item.total))

            gen = iter_sensitivity_progress(probe, scheme, per, mode)
            return ("sensitivity", _drain(gen, cancelled, on_item))

        self.analysis.start(job, "Sensitivity")

    # -- front and auto plan ----------------------------------------------------------------
    def build_front(self) -> None:
        """Measure each tensor's output error per ladder scheme, then the size/error front."""
        from inspector.engine.sensitivity import iter_output_errors

        model = self.state.model
        if model is None:
            return
        target, ladder, cache = state_target(self.state), self.ladder, self.cache

        def job(cancelled: Any, report: Any) -> Any:
            errors = None
            try:
                _, probe = self._evaluators()
            except InspectorError as exc:
                if not self._unavailable_text(exc):
                    raise
                probe = None
            weights = [t for t in model.weights if t.info.is_float and t.info.size]
            if probe is not None:
                specs = {t.name: list(ladder) for t in weights}
                count = [0]
                send = _throttled(report)

                def on_name(item: Any) -> None:
                    if isinstance(item, str):
                        count[0] += 1
                        send((count[0], 2 * len(weights)))

                gen = iter_output_errors(probe, specs, progress=True)
                errors = _drain(gen, cancelled, on_name)
                if errors is None:
                    return None
            gen = budget.build_ladders(model, ladder, target, cache, errors)
            ladders = _drain(gen, cancelled, lambda _n: None)
            return ("front", ladders, errors is not None)

        self.analysis.start(job, "Size/error front")

    def _on_analysis(self, result: Any) -> None:
        if isinstance(result, BaseException):
            self.unavailable.emit(str(result))
        elif result is None or result[1] is None:
            return
        elif result[0] == "sensitivity":
            self.state.set_sensitivity(sensitivity_values(result[1]))
            self.sensitivity_done.emit(result[1])
        else:
            self.ladders = list(result[1])
            front = budget.pareto_front(self.ladders)
            self.front_done.emit(front, self.ladders, result[2])

    def auto_plan(self, text: str) -> Any:
        """The least-error plan within the budget `text` (see `budget_bytes`); needs the front.
        Raises PlanError with the reason when the budget cannot be met."""
        model = self.state.model
        if model is None or not self.ladders:
            raise PlanError("build the size/error front first")
        weights = model.weights
        original = input_bytes(model)
        params = sum(t.info.size for t in weights)
        limit, whole = budget_bytes(text, original, params)
        target = state_target(self.state)
        if whole:
            return budget.solve_total(model, self.ladders, limit, target, self.cache)
        return budget.solve_size(self.ladders, limit)
