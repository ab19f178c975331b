"""Controllers that turn state changes into background jobs and their answers into state.

`ModelOpener` opens files on a worker; `PreviewController` reruns the whole-model preview when
the plan, model or target changes (a `PreviewCache` makes that one tensor of work per edit);
both use generation numbers so stale answers are dropped (DESIGN §2).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from inspector.core.errors import InspectorError
from inspector.core.model import Model
from inspector.core.preview import (
    EXACT_GZIP_BELOW,
    Preview,
    PreviewCache,
    exact_gzip,
    iter_preview,
    summarize,
)
from inspector.core.target import NATIVE, Target
from inspector.ui.state import AppState
from inspector.ui.workers import JobRunner

__all__ = [
    "ModelOpener",
    "PreviewController",
    "error_text",
    "resolve_target",
    "retire_model",
    "state_target",
]


FLUSH_MS = 250
"""Longest wait before finished tensor previews reach the table (one batch per interval)."""


def resolve_target(name: str) -> Target:
    """The export target for a format name; NATIVE when no format has that name."""
    from inspector.formats.registry import get_target

    try:
        return get_target(name)
    except InspectorError:
        return NATIVE


def state_target(state: AppState) -> Target:
    """The state's export target with its calibration data for `round=gptq` attached."""
    return resolve_target(state.target_name).with_rounding(state.rounding)


def _open(path: str) -> Model:
    from inspector.formats import open_model

    return open_model(path)


class ModelOpener(QObject):
    """Opens one file at a time on a worker; `opened(model)` or `failed(path, reason)`."""

    opened = Signal(object)
    failed = Signal(str, str)
    started = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = JobRunner(1, self)
        self.runner.done.connect(self._on_done)
        self.runner.failed.connect(self._on_failed)
        self.path = ""
        self.opener: Callable[[str], Model] = _open

    def open(self, path: str | Path) -> None:
        self.path = path = str(path)
        opener = self.opener
        self.started.emit(path)
        self.runner.submit(lambda cancelled, report: opener(path))

    def _on_done(self, gen: int, model: Any) -> None:
        self.opened.emit(model)

    def _on_failed(self, gen: int, exc: Any) -> None:
        self.failed.emit(self.path, error_text(exc))


def retire_model(model: Model | None, runners: list[JobRunner]) -> None:
    """Close `model` once every runner that may still read it has gone idle."""
    if model is None:
        return
    busy = [r for r in runners if r.busy]
    if not busy:
        model.close()
        return
    QTimer.singleShot(50, lambda: retire_model(model, runners))


EXACT_GZIP_DELAY_MS = 250
"""Pause between a finished preview and the start of the exact gzip measurement."""


def error_text(exc: BaseException) -> str:
    """A worker's exception as one line for the user: the reason, with the type when it is not
    one of ours (then it is a bug worth reporting)."""
    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    if not isinstance(exc, InspectorError):
        reason = f"{type(exc).__name__}: {reason}"
    return reason


def _exact_total(
    model: Model, preview: Preview, plan: Any, target: Target, cancelled: Callable[[], bool], report
) -> Preview:
    """`preview` with its gzip size measured on the whole export stream (runs on a worker)."""
    rows = preview.tensors
    gen = exact_gzip(model, plan, target, rows, cancelled)
    while True:
        try:
            report(next(gen))
        except StopIteration as stop:
            size = stop.value
            break
    overhead = target.overhead_bytes(model, rows) or b""
    total = summarize(rows, overhead, gzip_exact=size, file_bytes_before=model.file_bytes)
    from inspector.formats.compare import NOTE_KEYS

    total |= {k: preview.total[k] for k in NOTE_KEYS if k in preview.total}
    return dataclasses.replace(preview, total=total)


def with_savings_note(preview: Preview, model: Model, plan: Any, chosen: str) -> Preview:
    """`preview` with the totals saying when format `chosen` cannot store the plan's savings
    and which format would (`formats.compare`); runs on the worker (it reads shapes only)."""
    from inspector.formats.compare import annotate_total

    return dataclasses.replace(preview, total=annotate_total(preview.total, model, plan, chosen))


class PreviewController(QObject):
    """Keeps `state.tensor_previews` and `state.preview` in step with the plan.

    After a preview whose gzip size is an estimate, the exact size is measured on a second
    worker (`gzip_progress(done, total)` in bytes) and replaces the estimate; any new plan,
    model or target cancels that measurement.
    """

    progress = Signal(int, int)
    running = Signal(bool)
    message = Signal(str)
    failed = Signal(str)
    gzip_progress = Signal(int, int)

    def __init__(self, state: AppState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.cache = PreviewCache()
        resolve_target("tfjs")  # imports every format's writer now, not on the first preview
        self.runner = JobRunner(1, self)
        self.runner.item.connect(self._on_item)
        self.runner.done.connect(self._on_done)
        self.runner.failed.connect(self._on_failed)
        self.runner.idle.connect(lambda: self.running.emit(False))
        self.gzip_runner = JobRunner(1, self)
        self.gzip_runner.item.connect(lambda _g, p: self.gzip_progress.emit(*p))
        self.gzip_runner.done.connect(self._on_exact)
        self.gzip_runner.failed.connect(self._on_failed)
        self.exact_gzip_below = EXACT_GZIP_BELOW
        """Bytes up to which the preview itself measures gzip exactly (tests set 0)."""
        self._timer = QTimer(self, singleShot=True, interval=20)
        self._timer.timeout.connect(self.start)
        self._pending: list[Any] = []
        self._flush_timer = QTimer(self, singleShot=True, interval=FLUSH_MS)
        self._flush_timer.timeout.connect(self._flush)
        self._count = 0
        self._total = 0
        self._plan = state.plan
        self._model: Model | None = None
        self.stopped = False
        self._started = time.monotonic()
        state.model_changed.connect(self._on_model)
        state.plan_changed.connect(self._timer.start)
        state.target_changed.connect(self._on_target)

    def _on_model(self) -> None:
        self.cancel_exact()
        self.cache = PreviewCache()
        self._timer.start()

    def _on_target(self) -> None:
        self._pending.clear()
        self.state.tensor_previews.clear()
        self._timer.start()

    def start(self) -> None:
        """Run the whole-model preview for the current plan (cached tensors are free)."""
        model, plan = self.state.model, self.state.plan
        self.cancel_exact()
        self._flush_timer.stop()
        self._flush()  # the previous run's last tensors, as they were before this one started
        if model is None or self.stopped:
            return
        target, cache = state_target(self.state), self.cache
        self._count, self._total = 0, len(model)
        below = self.exact_gzip_below

        chosen = self.state.target_name

        def job(cancelled: Callable[[], bool], report: Callable[[Any], None]) -> Any:
            gen = iter_preview(model, plan, target, cache, exact_gzip_below=below)
            while not cancelled():
                try:
                    report(next(gen))
                except StopIteration as stop:
                    return with_savings_note(stop.value, model, plan, chosen)
            return None

        self.runner.submit(job)
        self._started = time.monotonic()
        self._plan, self._model = plan, model
        self.running.emit(True)
        self.progress.emit(0, self._total)

    def cancel(self) -> None:
        if self.runner.busy:
            self.runner.cancel()
            self.runner.generation += 1
            self.message.emit("Preview cancelled: totals are out of date")
        self.cancel_exact()

    def stop(self) -> None:
        """For shutdown: cancel, and start nothing any more (the model is about to close)."""
        self.stopped = True
        self._timer.stop()
        self.runner.cancel()
        self.cancel_exact()

    def cancel_exact(self) -> None:
        """Stop the exact gzip measurement; its answer will be dropped."""
        if self.gzip_runner.busy:
            self.gzip_runner.cancel()
            self.gzip_runner.generation += 1
            self.gzip_progress.emit(0, 0)

    def _start_exact(self, preview: Preview, plan: Any) -> None:
        model = None if self.stopped else self.state.model
        target = state_target(self.state)
        if model is None or plan != self.state.plan or self.state.preview is not preview:
            return
        self.gzip_runner.submit(
            lambda cancelled, report: _exact_total(model, preview, plan, target, cancelled, report)
        )

    def _on_exact(self, gen: int, preview: Any) -> None:
        if self.state.plan == self._plan and self.state.model is not None:
            self.state.set_preview(preview, self._plan)
            self.gzip_progress.emit(0, 0)

    def _on_item(self, gen: int, tp: Any) -> None:
        """Collect one tensor's preview; the table and the progress bar take them in batches
        (`FLUSH_MS`), so a fast preview of hundreds of tensors does not queue hundreds of
        repaints ahead of the user's input."""
        if self._model is not self.state.model:
            return
        self._pending.append(tp)
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch or self._model is not self.state.model:
            return
        self._count += len(batch)
        self.state.set_tensor_previews(batch)
        self.progress.emit(self._count, self._total)

    def _on_done(self, gen: int, preview: Any) -> None:
        self._flush_timer.stop()
        self._flush()
        if preview is not None and self._model is self.state.model:
            self.state.set_preview(preview, self._plan)
            seconds = time.monotonic() - self._started
            self.message.emit(f"Preview of {self._total} tensors up to date ({seconds:.2f} s)")
            if not preview.total.get("gzip_exact", True):
                # Let the totals repaint and quick follow-up edits arrive before zlib starts.
                plan = self._plan
                QTimer.singleShot(EXACT_GZIP_DELAY_MS, lambda: self._start_exact(preview, plan))

    def _on_failed(self, gen: int, exc: Any) -> None:
        text = error_text(exc)
        self.message.emit(f"Preview failed: {text}")
        self.failed.emit(text)
