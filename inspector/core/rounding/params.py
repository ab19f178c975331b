"""The `round=` option's values and HQQ applied to a scheme's fitted parameters.

`refine_hqq` takes the parameters `codecs.fit` produced (min/max, clip applied) and returns the
HQQ-optimised ones in the same form, so the codes that follow are ordinary nearest codes on a
grid every writer stores as it stores any other (see hqq.py for what is optimised per family).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from inspector.core import symmetric
from inspector.core.rounding.hqq import DEFAULT, HqqSettings, hqq_affine, hqq_symmetric

__all__ = ["ROUNDINGS", "refine_hqq"]

ROUNDINGS = ("nearest", "hqq", "gptq")


def refine_hqq(
    scheme: Any,
    x: np.ndarray,
    axis: int | None,
    params: dict[str, Any],
    state: Any,
    settings: HqqSettings = DEFAULT,
) -> tuple[dict[str, Any], Any]:
    """(params, state) of `scheme` on float32 `x` after HQQ; affine, int8 and int4 only."""
    if scheme.family == "affine":
        if state.constant or x.size == 0:
            return params, state
        lo, scale = hqq_affine(x, state.min, state.scale, state.qmax, settings)
        hi = state.qmax * scale + lo
        new = replace(state, min=lo, scale=scale, lo=lo, hi=hi)
        return {"min": lo, "scale": scale}, new
    if scheme.family in ("int8", "int4"):
        rows = symmetric.as_rows(x, axis)
        scales = np.asarray(params["scales"])
        channels = rows.shape[1]
        group = scheme.group if scheme.family == "int4" else max(1, rows.shape[0])
        qmax = 127 if scheme.family == "int8" else 7
        if rows.size == 0:
            return params, state
        tuned = hqq_symmetric(rows, scales.reshape(channels, -1), group, qmax, settings)
        return {**params, "scales": tuned.reshape(scales.shape)}, state
    raise ValueError(f"round=hqq does not apply to {scheme.name}")
