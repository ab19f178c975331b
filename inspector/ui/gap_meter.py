"""How long the GUI thread goes without running its event loop (issue 8: no stall > 100 ms).

A 10 ms timer on the GUI thread records the time between its ticks; a tick can only be late
when the thread was busy (or waiting for the GIL). Used by the responsiveness test and by
`benchmarks/gui_stall.py`.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer

__all__ = ["GapMeter"]


class GapMeter(QObject):
    """`start()`, let the event loop run, `stop()`; then `gaps` (seconds) and `worst`."""

    def __init__(self, interval_ms: int = 10, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.gaps: list[float] = []
        self._last = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.gaps.clear()
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    @property
    def worst(self) -> float:
        """The longest time between two ticks (or since `start()`), in seconds."""
        return max(self.gaps, default=0.0)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now
