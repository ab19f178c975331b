"""One kind of long user-started work (export, evaluation, sensitivity) with its status-bar
progress bar and Cancel button.

A `BackgroundTask` owns a `JobRunner` (generations, cancel flag, stale answers dropped): the job
is `fn(cancelled, report)` and reports `(done, total)` pairs (or `(done, total, partial)`, the
partial result arriving as `partial(object)`); `done(result)` or `failed(text)`
arrive on the GUI thread. Cancelling asks the job to stop at its next check and drops its answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QProgressBar, QPushButton

from inspector.ui.controllers import error_text
from inspector.ui.workers import JobRunner

__all__ = ["BackgroundTask"]


class BackgroundTask(QObject):
    """Runs one job at a time; a new `start` cancels the previous one."""

    done = Signal(object)
    failed = Signal(str)
    progress = Signal(int, int)
    partial = Signal(object)
    message = Signal(str)

    def __init__(self, label: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.label = label
        self.runner = JobRunner(1, self)
        self.bar = QProgressBar(maximumWidth=200, textVisible=True)
        self.bar.setFormat(f"{label} %p%")
        self.button = QPushButton(f"Cancel {label.lower()}")
        self.button.clicked.connect(self.cancel)
        self.bar.hide()
        self.button.hide()
        self.runner.item.connect(self._on_item)
        self.runner.done.connect(lambda _g, result: self.done.emit(result))
        self.runner.failed.connect(lambda _g, exc: self.failed.emit(error_text(exc)))
        self.runner.idle.connect(self._on_idle)

    @property
    def busy(self) -> bool:
        return self.runner.busy

    def start(self, fn: Callable[[Callable[[], bool], Callable[[Any], None]], Any]) -> int:
        """Run `fn(cancelled, report)` on the worker; returns its generation."""
        self.bar.setRange(0, 0)
        self.bar.show()
        self.button.show()
        return self.runner.submit(fn)

    def cancel(self) -> bool:
        """Stop the running job (its answer is dropped); True when one was running."""
        if not self.runner.busy:
            return False
        self.runner.cancel()
        self.runner.generation += 1
        self.message.emit(f"{self.label} cancelled")
        self._on_idle()
        return True

    def _on_item(self, _gen: int, payload: Any) -> None:
        done, total, *extra = payload
        if extra:
            self.partial.emit(extra[0])
        self.bar.setRange(0, max(int(total), 1))
        self.bar.setValue(int(done))
        self.progress.emit(int(done), int(total))

    def _on_idle(self) -> None:
        self.bar.hide()
        self.button.hide()
