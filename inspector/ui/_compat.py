"""Work around a PySide6 reference-count bug that crashes long sessions on CPython 3.11.

PySide6 6.12.0's `SignalInstance.emit()` returns `True` without taking a reference, so every
emit from Python (ours and pyqtgraph's) drops one reference to `True`; after a few hundred
emits CPython aborts with "bool_dealloc: deallocating True or False". From CPython 3.12 `True`
is immortal and the bug is harmless. We detect the leak with a probe and, only then, give the
singletons enough references that no session can use them up.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

__all__ = ["emit_leaks_true", "protect_singletons"]

_EXTRA_REFS = 1 << 40


class _Probe(QObject):
    ping = Signal()


def emit_leaks_true() -> bool:
    """True when a Python-side emit drops a reference to `True` (the PySide6 6.12.0 bug)."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(4):
        probe.ping.emit()
    return sys.getrefcount(True) < before


def protect_singletons() -> bool:
    """Add references to True/False/None when the bug is present; returns whether it did."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    if not emit_leaks_true():
        return False
    for obj in (True, False, None):
        ctypes.c_ssize_t.from_address(id(obj)).value += _EXTRA_REFS
    return True
