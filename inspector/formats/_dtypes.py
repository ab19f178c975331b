"""numpy dtypes of the value types numpy lacks (bfloat16, float8), resolved on first use.

`ml_dtypes` costs 0.5-1 s to import on this project's machines, more than numpy itself, and
opening a model parses headers only: a header needs each element's width, never its type.
So readers validate with `storage_dtype` (an unsigned integer of the same width) and view the
loaded bytes as `value_dtype` when a value is actually touched.
"""

from __future__ import annotations

from functools import cache

import numpy as np

__all__ = ["ML_DTYPES", "storage_dtype", "value_dtype"]

ML_DTYPES: dict[str, str] = {
    "bfloat16": "<u2",
    "float8_e4m3fn": "u1",
    "float8_e5m2": "u1",
}
"""ml_dtypes type name → numpy dtype of the same width (little-endian) used for headers."""


def storage_dtype(name: str) -> np.dtype:
    """`name` as a numpy dtype for sizes and raw byte views: the type itself when numpy has
    it, an unsigned integer of the same width for ml_dtypes' types (no import)."""
    return np.dtype(ML_DTYPES.get(name, name))


@cache
def value_dtype(name: str) -> np.dtype:
    """The numpy dtype values of `name` load as; imports ml_dtypes for its types."""
    if name in ML_DTYPES:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, name))
    return np.dtype(name)
