"""One kind of long user-started work (export, evaluation, sensitivity) with its status-bar
progress bar and Cancel button.

A `BackgroundTask` owns a `JobRunner` (generations, cancel flag, stale answers dropped): the job
is `fn(cancelled, report)` and reports `(done, total)` pairs (or `(done, total, partial)`, the
partial result arriving as `partial(object)`); `done(result)` or `failed(text)`
arrive on the GUI thread. Cancelling asks the job to stop at its next check and drops its answer.

The bar is determinate as soon as the first `(done, total)` arrives and shows an estimate of the
time left (elapsed time scaled by the fraction done, once 3 % and 1 s are behind). One task may
run jobs of different kinds (sensitivity, front): `start(fn, label)` names the running one, and
the bar and the "… cancelled" message use that name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QProgressBar, QPushButton

from inspector.ui.controllers import error_text
from inspector.ui.workers import JobRunner

__all__ = ["BackgroundTask", "format_eta"]

BAR_STEPS = 1000
"""The bar's range: totals can be any size (values written, samples), QProgressBar is int32."""


def format_eta(seconds: float) -> str:
    """ "12 s", "3 min 05 s", "1 h 02 min": the time left, to the precision worth reading."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


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
        self.job_label = label
        self._started = 0.0
        self.runner = JobRunner(1, self)
        self.bar = QProgressBar(maximumWidth=300, minimumWidth=220, textVisible=True)
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

    def start(
        self,
        fn: Callable[[Callable[[], bool], Callable[[Any], None]], Any],
        label: str | None = None,
    ) -> int:
        """Run `fn(cancelled, report)` on the worker, named `label` (default: the task's
        label) in the bar and messages; returns its generation."""
        self.job_label = label or self.label
        self._started = time.monotonic()
        self.bar.setRange(0, 0)
        self.bar.setFormat(f"{self.job_label}…")
        self.bar.setToolTip("")
        self.bar.show()
        self.button.setText(f"Cancel {self.job_label.lower()}")
        self.button.show()
        return self.runner.submit(fn)

    def cancel(self) -> bool:
        """Stop the running job (its answer is dropped); True when one was running."""
        if not self.runner.busy:
            return False
        self.runner.cancel()
        self.runner.generation += 1
        self.message.emit(f"{self.job_label} cancelled")
        self._on_idle()
        return True

    def eta(self, done: int, total: int) -> float | None:
        """Seconds left by the rate so far; None until 3 % and one second are done."""
        elapsed = time.monotonic() - self._started
        fraction = done / total if total > 0 else 0.0
        if fraction < 0.03 or elapsed < 1.0 or fraction >= 1.0:
            return None
        return elapsed * (1.0 - fraction) / fraction

    def _on_item(self, _gen: int, payload: Any) -> None:
        done, total, *extra = payload
        if extra:
            self.partial.emit(extra[0])
        total = max(int(total), 1)
        left = self.eta(int(done), total)
        text = f"{self.job_label} %p%"
        if left is not None:
            text += f" · {format_eta(left)} left"
        self.bar.setFormat(text)
        self.bar.setRange(0, BAR_STEPS)
        self.bar.setValue(min(BAR_STEPS, int(BAR_STEPS * int(done) / total)))
        self.progress.emit(int(done), total)

    def _on_idle(self) -> None:
        self.bar.hide()
        self.button.hide()
