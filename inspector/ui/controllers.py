"""Controllers that turn state changes into background jobs and their answers into state.

`ModelOpener` opens files on a worker; `PreviewController` reruns the whole-model preview when
the plan, model or target changes (a `PreviewCache` makes that one tensor of work per edit);
both use generation numbers so stale answers are dropped (DESIGN §2).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from inspector.core.errors import InspectorError
from inspector.core.model import Model
from inspector.core.preview import PreviewCache, iter_preview
from inspector.core.target import NATIVE, Target
from inspector.ui.state import AppState
from inspector.ui.workers import JobRunner

__all__ = ["ModelOpener", "PreviewController", "resolve_target", "retire_model"]


def resolve_target(name: str) -> Target:
    """The export target for a format name; NATIVE when the formats package has none."""
    try:
        from inspector.formats.targets import get_target
    except ImportError:
        return NATIVE
    try:
        return get_target(name)
    except InspectorError:
        return NATIVE


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
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        if not isinstance(exc, InspectorError):
            reason = f"{type(exc).__name__}: {reason}"
        self.failed.emit(self.path, reason)


def retire_model(model: Model | None, runners: list[JobRunner]) -> None:
    """Close `model` once every runner that may still read it has gone idle."""
    if model is None:
        return
    busy = [r for r in runners if r.busy]
    if not busy:
        model.close()
        return
    QTimer.singleShot(50, lambda: retire_model(model, runners))


class PreviewController(QObject):
    """Keeps `state.tensor_previews` and `state.preview` in step with the plan."""

    progress = Signal(int, int)
    running = Signal(bool)
    message = Signal(str)

    def __init__(self, state: AppState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.cache = PreviewCache()
        self.runner = JobRunner(1, self)
        self.runner.item.connect(self._on_item)
        self.runner.done.connect(self._on_done)
        self.runner.failed.connect(self._on_failed)
        self.runner.idle.connect(lambda: self.running.emit(False))
        self._timer = QTimer(self, singleShot=True, interval=20)
        self._timer.timeout.connect(self.start)
        self._count = 0
        self._total = 0
        self._plan = state.plan
        self._started = time.monotonic()
        state.model_changed.connect(self._on_model)
        state.plan_changed.connect(self._timer.start)
        state.target_changed.connect(self._on_target)

    def _on_model(self) -> None:
        self.cache = PreviewCache()
        self._timer.start()

    def _on_target(self) -> None:
        self.state.tensor_previews.clear()
        self._timer.start()

    def start(self) -> None:
        """Run the whole-model preview for the current plan (cached tensors are free)."""
        model, plan = self.state.model, self.state.plan
        if model is None:
            return
        target, cache = resolve_target(self.state.target_name), self.cache
        self._count, self._total = 0, len(model)

        def job(cancelled: Callable[[], bool], report: Callable[[Any], None]) -> Any:
            gen = iter_preview(model, plan, target, cache)
            while not cancelled():
                try:
                    report(next(gen))
                except StopIteration as stop:
                    return stop.value
            return None

        self.runner.submit(job)
        self._started = time.monotonic()
        self._plan = plan
        self.running.emit(True)
        self.progress.emit(0, self._total)

    def cancel(self) -> None:
        if self.runner.busy:
            self.runner.cancel()
            self.runner.generation += 1
            self.message.emit("Preview cancelled: totals are out of date")

    def _on_item(self, gen: int, tp: Any) -> None:
        self._count += 1
        self.state.set_tensor_preview(tp)
        self.progress.emit(self._count, self._total)

    def _on_done(self, gen: int, preview: Any) -> None:
        if preview is not None:
            self.state.set_preview(preview, self._plan)
            seconds = time.monotonic() - self._started
            self.message.emit(f"Preview of {self._total} tensors up to date ({seconds:.2f} s)")

    def _on_failed(self, gen: int, exc: Any) -> None:
        self.message.emit(f"Preview failed: {exc}")
