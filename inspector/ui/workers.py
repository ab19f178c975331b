"""Background jobs on `QThreadPool` with cancellation and generation numbers (DESIGN §2).

A job is a plain callable `fn(cancelled, report) -> result` run on a pool thread: it calls
`cancelled()` between units of work (one tensor of `iter_preview`) and `report(item)` to hand a
partial result to the GUI thread. Every job carries the generation number its requester had when
it asked; the requester drops answers whose generation is no longer current, so a slow answer to
an old question never overwrites a newer one.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

__all__ = ["Job", "JobRunner", "JobSignals"]

JobFn = Callable[[Callable[[], bool], Callable[[Any], None]], Any]


class JobSignals(QObject):
    """Lives in the GUI thread; queued connections deliver the worker's emits there."""

    item = Signal(int, object)
    done = Signal(int, object)
    failed = Signal(int, object)
    finished = Signal(int)


class Job(QRunnable):
    """Runs `fn` once on a pool thread; always ends with `finished`, whatever happened."""

    def __init__(self, fn: JobFn, generation: int, signals: JobSignals) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.fn = fn
        self.generation = generation
        self.signals = signals
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self) -> None:
        gen = self.generation
        _yield_cpu_to_gui()
        try:
            result = self.fn(self.cancel_event.is_set, lambda x: self.signals.item.emit(gen, x))
        except BaseException as exc:  # reported to the GUI thread, which decides what to show
            self.signals.failed.emit(gen, exc)
        else:
            if not self.cancel_event.is_set():
                self.signals.done.emit(gen, result)
        finally:
            self.signals.finished.emit(gen)


def _yield_cpu_to_gui() -> None:
    """Lower this worker thread's CPU priority (Linux: nice is per thread and inherited by the
    threads it starts, such as the preview's pool), so on a busy 2-core machine the scheduler
    runs the GUI thread first and the window keeps repainting while a preview computes."""
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), 5))
    except OSError:
        pass


class JobRunner(QObject):
    """One kind of request (open, preview, tensor detail) with its own generation counter.

    `submit` cancels the jobs still running for older generations, so at most one answer is
    wanted at a time. `max_threads=1` makes jobs run one after another, which keeps caches that
    are not thread-safe consistent. `wait()` is for shutdown only.
    """

    item = Signal(int, object)
    done = Signal(int, object)
    failed = Signal(int, object)
    idle = Signal()

    def __init__(self, max_threads: int = 1, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self.generation = 0
        self._jobs: dict[int, Job] = {}
        # Finished jobs stay referenced a little longer: the pool thread may still be leaving run().
        self._recent: deque[Job] = deque(maxlen=8)

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    def submit(self, fn: JobFn) -> int:
        """Cancel older jobs, start `fn`, return its generation number."""
        self.cancel()
        self.generation += 1
        gen = self.generation
        signals = JobSignals()
        signals.item.connect(self._on_item)
        signals.done.connect(self._on_done)
        signals.failed.connect(self._on_failed)
        signals.finished.connect(self._on_finished)
        job = Job(fn, gen, signals)
        self._jobs[gen] = job
        self.pool.start(job)
        return gen

    def cancel(self) -> None:
        """Ask every running job to stop at its next check; their answers will be dropped."""
        for job in self._jobs.values():
            job.cancel()

    def wait(self, msecs: int = 30_000) -> bool:
        """Cancel and block until the pool is empty (window close)."""
        self.cancel()
        return self.pool.waitForDone(msecs)

    def is_current(self, generation: int) -> bool:
        return generation == self.generation and generation in self._jobs

    def _on_item(self, gen: int, payload: object) -> None:
        if self.is_current(gen) and not self._jobs[gen].cancel_event.is_set():
            self.item.emit(gen, payload)

    def _on_done(self, gen: int, payload: object) -> None:
        # A job cancelled after it finished still has its answer queued: drop it too.
        if self.is_current(gen) and not self._jobs[gen].cancel_event.is_set():
            self.done.emit(gen, payload)

    def _on_failed(self, gen: int, exc: object) -> None:
        if self.is_current(gen) and not self._jobs[gen].cancel_event.is_set():
            self.failed.emit(gen, exc)

    def _on_finished(self, gen: int) -> None:
        job = self._jobs.pop(gen, None)
        if job is not None:
            self._recent.append(job)
        if not self._jobs:
            self.idle.emit()
