"""Python's cycle collector runs only in the GUI thread while the window exists.

The collector runs in whichever thread happens to allocate when a threshold is crossed. If that
is a worker (a preview, an evaluation, a transform) and the garbage holds Qt widgets — a menu or
a closed window kept alive by a reference cycle — the widgets are destroyed off the GUI thread
while the GUI thread destroys others: Qt and shiboken then wait on each other's locks forever
(seen: a worker collecting a QMenu inside `parse_topology` while the GUI thread's timer slot
deleted another). pyqtgraph's `GarbageCollector` disables automatic collection and collects on
a timer in the thread that created it; reference counting still frees everything acyclic at
once, so only cyclic garbage waits (at most `INTERVAL_S`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["INTERVAL_S", "collect_in_gui_thread"]

INTERVAL_S = 1.0
"""Seconds between the GUI thread's checks of the collector's thresholds."""

_GUARD: list[Any] = []


def collect_in_gui_thread() -> None:
    """Start collecting on the GUI thread's timer (once per process; call from that thread)."""
    if _GUARD:
        return
    from pyqtgraph.util.garbage_collector import GarbageCollector

    _GUARD.append(GarbageCollector(interval=INTERVAL_S))
