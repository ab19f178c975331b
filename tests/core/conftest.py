"""Helpers shared by the core tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def jit_and_numpy(monkeypatch: pytest.MonkeyPatch, fn: Callable[[], Any]) -> tuple[Any, Any]:
    """`fn()` on the compiled kernels, then again on the numpy paths (`QUANT_INSPECTOR_NO_JIT`)."""
    fast = fn()
    monkeypatch.setenv("QUANT_INSPECTOR_NO_JIT", "1")
    slow = fn()
    monkeypatch.delenv("QUANT_INSPECTOR_NO_JIT")
    return fast, slow
