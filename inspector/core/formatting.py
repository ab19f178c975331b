"""Text for numbers the user reads: bytes with binary units, dB, ratios, shapes.

Pure functions (no Qt) so tables, the summary and tests print the same strings.
"""

from __future__ import annotations

import math

__all__ = ["format_bytes", "format_count", "format_db", "format_ratio", "format_shape"]

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_bytes(n: float | None) -> str:
    """`n` bytes as B/KiB/MiB/GiB (powers of 1024), three significant digits."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "–"
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
        value /= 1024
    return f"{value:.0f} {_UNITS[-1]}"


def format_count(n: int | None) -> str:
    """Element counts with thousands separators (`1,234,567`)."""
    return "–" if n is None else f"{int(n):,}"


def format_db(db: float | None) -> str:
    """A signal-to-noise ratio in dB; `∞` when the values are stored exactly."""
    if db is None or math.isnan(db):
        return "–"
    if math.isinf(db):
        return "∞ dB" if db > 0 else "−∞ dB"
    return f"{db:.1f} dB"


def format_ratio(r: float | None, suffix: str = "×") -> str:
    """A ratio such as a compression ratio (`3.98×`)."""
    if r is None or math.isnan(r):
        return "–"
    if math.isinf(r):
        return "∞"
    return f"{r:.2f}{suffix}"


def format_shape(shape: tuple[int, ...]) -> str:
    """`(3, 3, 1, 16)` as `3×3×1×16`; scalars as `scalar`."""
    return "×".join(str(d) for d in shape) if shape else "scalar"
