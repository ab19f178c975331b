"""The interface of data-aware rounding (GPTQ) as the preview and the export see it.

`encode` alone has no data; a `DataRounding` (built in `inspector.engine.rounding` from a model
and calibration data) rides on the export `Target`, so the preview, the exact gzip size, the
evaluation and every writer obtain the same codes from one place for each stage whose scheme
says `round=gptq`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from inspector.core.model import Tensor
    from inspector.core.schemes import Encoded

__all__ = ["NEEDS_DATA", "NO_DATA", "DataRounding"]

NEEDS_DATA = "needs sample data (--data)"
NO_DATA = f"round=gptq: {NEEDS_DATA}; nearest"


class DataRounding(Protocol):
    """Chooses a tensor's codes on its fitted grid from the model's layer inputs."""

    @property
    def key(self) -> str:
        """Identifies the model and data (part of every cache key of a gptq scheme)."""
        ...

    def choose(
        self, tensor: Tensor, enc: Encoded, values: np.ndarray
    ) -> tuple[np.ndarray | None, str]:
        """(codes shaped and typed like `enc.codes`, "") — or (None, why not) to keep nearest.

        `values` are the float32 values `enc` encodes (the stage's input)."""
        ...
