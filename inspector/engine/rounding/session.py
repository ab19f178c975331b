"""`GptqRounding`: GPTQ codes for a model on calibration data, computed once and cached.

It implements `core.rounding.data.DataRounding`: attached to the export `Target`
(`target.with_rounding(...)`), it gives the preview, the exact gzip size, the evaluation and
every writer the same codes for a `round=gptq` stage — computed once per (tensor, scheme spec)
for this model and data, so what the preview measured is what the file holds.

The grid is the scheme's own, as `encode` fitted it (clip options included), element by element
from its family (`Family.grid`: affine min/scale per tensor, int8 per-channel scales, int4
per-group float16 scales as stored). GPTQ only chooses codes on it. The layers' Hessians come
from one forward pass over the data, on first use (see capture.py).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from inspector.core.errors import InspectorError
from inspector.core.model import Model, Tensor
from inspector.core.schemes import Encoded
from inspector.engine.errors import EvaluationUnavailable
from inspector.engine.rounding.capture import BATCH, Capture, capture_hessians
from inspector.engine.rounding.gptq import BLOCK, PERCDAMP, GptqError, Grid, gptq_codes

__all__ = ["GptqRounding"]


def _data_key(model: Model, inputs: Sequence[np.ndarray]) -> str:
    digest = hashlib.blake2b(str(model.path).encode(), digest_size=8)
    for x in inputs:
        arr = np.ascontiguousarray(x)
        digest.update(f"{arr.dtype}{arr.shape}".encode())
        digest.update(arr.tobytes())
    return "gptq:" + digest.hexdigest()


class GptqRounding:
    """GPTQ for one model and one calibration batch (`inputs`: one array per model input)."""

    def __init__(
        self,
        model: Model,
        inputs: Sequence[np.ndarray],
        *,
        block: int = BLOCK,
        percdamp: float = PERCDAMP,
        batch: int = BATCH,
    ) -> None:
        self._model = model
        self._inputs = tuple(np.asarray(x) for x in inputs)
        if not self._inputs or self._inputs[0].shape[0] == 0:
            raise InspectorError("GPTQ needs at least one calibration sample")
        self._block, self._percdamp, self._batch = block, percdamp, batch
        self._key = _data_key(model, self._inputs)
        self._captures: dict[str, Capture] | None = None
        self._failure = ""
        self._codes: dict[tuple[str, str], tuple[np.ndarray | None, str]] = {}
        self._lock = threading.Lock()
        self.capture_seconds = 0.0
        self.seconds: dict[str, float] = {}
        """Seconds GPTQ took per tensor name (the Hessian pass is `capture_seconds`)."""

    @property
    def key(self) -> str:
        return self._key

    @property
    def samples(self) -> int:
        return int(self._inputs[0].shape[0])

    def captures(self) -> dict[str, Capture]:
        """Every weight's view and Hessian (one forward pass over the data, on first use)."""
        with self._lock:
            if self._captures is None and not self._failure:
                start = time.perf_counter()
                try:
                    self._captures = capture_hessians(self._model, self._inputs, self._batch)
                except (EvaluationUnavailable, InspectorError) as exc:
                    self._failure = f"the model cannot run on the data ({exc})"
                self.capture_seconds = time.perf_counter() - start
        return self._captures or {}

    def choose(
        self, tensor: Tensor, enc: Encoded, values: np.ndarray
    ) -> tuple[np.ndarray | None, str]:
        key = (tensor.name, enc.scheme.spec)
        hit = self._codes.get(key)
        if hit is None:
            hit = self._codes[key] = self.compute(tensor, enc, values)
        codes, why = hit
        return (None, why) if codes is None else (codes.astype(enc.codes.dtype), "")

    def compute(
        self, tensor: Tensor, enc: Encoded, values: np.ndarray
    ) -> tuple[np.ndarray | None, str]:
        """GPTQ's codes (int64, the tensor's layout) for `enc`'s grid, or (None, why not);
        not cached (`choose` is the cached way)."""
        cap = self.captures().get(tensor.name)
        if cap is None:
            return None, self._failure or "no layer of the model reads this tensor"
        if cap.view is None or cap.hessian is None:
            return None, cap.reason
        if cap.hessian.n == 0:
            return None, "its layer did not run on the data"
        grid_of = enc.scheme.family.grid(enc)
        if grid_of is None:
            return None, f"{enc.scheme.name} has no grid of codes here (a constant tensor?)"
        step, offset, lo, hi = grid_of
        start = time.perf_counter()
        view = cap.view
        grid = Grid(view.to_matrix(step), view.to_matrix(offset), lo, hi)
        w = view.to_matrix(np.asarray(values, dtype=np.float64))
        try:
            codes = gptq_codes(
                w,
                cap.hessian.h,
                grid,
                block=self._block,
                percdamp=self._percdamp,
                act_order=enc.scheme.option("order") == "act",
            )
        except GptqError as exc:
            return None, str(exc)
        self.seconds[tensor.name] = time.perf_counter() - start
        return np.ascontiguousarray(view.from_matrix(codes)), ""

    def describe(self) -> dict[str, Any]:
        """Calibration facts for reports: samples, and the key the caches use."""
        return {"method": "gptq", "samples": self.samples, "key": self._key}
