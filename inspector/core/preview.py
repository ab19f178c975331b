"""The preview: what a plan does to every tensor, in the bytes the export will write.

Each tensor goes through `quantize_tensor` (quantize.py, shared with the writers: DESIGN §7
rule 7) and is measured here (sizes, error sums, gzip estimate). Computing a whole-model
preview is a generator yielding one `TensorPreview` per tensor: the unit of progress and
cancellation for the GUI. Totals are `totals.summarize`; the exact gzip size `gzip_size`.
The names callers use are re-exported here.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Generator, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from inspector.core.chunking import on_two_threads
from inspector.core.entropy import encoding_entropy
from inspector.core.gzip_size import EXACT_GZIP_BELOW, exact_gzip
from inspector.core.metrics import ErrorSums, error_sums, gzip_estimate, metrics_from_sums
from inspector.core.model import Model, Tensor
from inspector.core.plan import Plan
from inspector.core.quantize import QuantizedTensor, TensorCache, quantize_tensor
from inspector.core.schemes import Encoded, Scheme
from inspector.core.target import NATIVE, Target
from inspector.core.totals import summarize

__all__ = [
    "EXACT_GZIP_BELOW",
    "Preview",
    "PreviewCache",
    "QuantizedTensor",
    "TensorPreview",
    "drain",
    "exact_gzip",
    "iter_preview",
    "json_number",
    "preview_tensor",
    "quantize_tensor",
    "run_preview",
    "summarize",
]

_OVERLAP_FROM = 1 << 20
"""Elements from which one tensor's gzip estimate and error sums run side by side."""


@dataclass(frozen=True)
class TensorPreview:
    """Sizes and error of one tensor under its scheme, in DESIGN §4's metric names."""

    name: str
    layer: str
    shape: tuple[int, ...]
    dtype: str
    optimizer: bool
    scheme: str
    stored: str
    note: str
    skipped: str | None
    original_bytes: int
    quantized_bytes: int
    bits_per_weight: float
    mse: float
    rmse: float
    max_abs_error: float
    rmse_over_scale: float | None
    sqnr_db: float
    cosine: float
    overflow: int
    nonfinite: int
    gzip_bytes: int
    gzip_uncertainty: float
    signal_energy: float
    stored_params: tuple[float, ...] = ()  # affine (min, scale) as stored, for model.json
    entropy_bits_per_weight: float | None = None
    huffman_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["shape"] = list(self.shape)
        data["parameters"] = math.prod(self.shape)
        del data["signal_energy"], data["stored_params"]
        return {k: json_number(v) for k, v in data.items()}


def json_number(value: Any) -> Any:
    """JSON has no infinity: an exact tensor's SQNR is written as the string "inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def preview_tensor(tensor: Tensor, scheme: Scheme, target: Target = NATIVE) -> TensorPreview:
    """Quantize one tensor as the export would and measure it (all values, float64 sums)."""
    q = quantize_tensor(tensor, scheme, target)
    info = q.info
    nbytes = q.stored_nbytes
    entropy, huffman = encoding_entropy(q.encoded) if q.encoded is not None else (None, nbytes)
    if q.skipped is None:
        (gz, gz_err), sums = _gzip_and_sums(q)
        scale = q.first.scale if q.first is not None else None
        m: dict[str, Any] = dict(metrics_from_sums(sums, scale))
        energy = sums.signal
    else:
        gz, gz_err = _gzip_views(q)
        m = {"mse": 0.0, "rmse": 0.0, "max_abs_error": 0.0, "rmse_over_scale": None}
        m |= {"sqnr_db": math.inf, "cosine": 1.0}
        energy = 0.0
    return TensorPreview(
        name=info.name,
        layer=info.layer,
        shape=info.shape,
        dtype=info.dtype,
        optimizer=info.optimizer,
        scheme=scheme.spec,
        stored=q.storage.stored.spec if q.storage.stored is not None else info.dtype,
        note=q.note,
        skipped=q.skipped,
        original_bytes=info.nbytes,
        quantized_bytes=nbytes,
        bits_per_weight=8.0 * nbytes / info.size if info.size else 0.0,
        overflow=q.encoded.overflow if q.encoded is not None else 0,
        nonfinite=q.nonfinite,
        gzip_bytes=gz,
        gzip_uncertainty=gz_err,
        signal_energy=energy,
        stored_params=_affine_numbers(q.encoded),
        entropy_bits_per_weight=entropy,
        huffman_bytes=huffman,
        **m,
    )


def _gzip_and_sums(q: QuantizedTensor) -> tuple[tuple[int, float], ErrorSums]:
    """The gzip estimate and the error sums; for a large tensor the estimate (zlib releases
    the GIL) runs on a second thread meanwhile: one scheme change on a 4M tensor waits for
    the longer of the two instead of both."""
    if q.info.size < _OVERLAP_FROM:
        return _gzip_views(q), _error_sums(q)
    sums, gz = on_two_threads([lambda: _error_sums(q), lambda: _gzip_views(q)])
    return gz, sums


def _error_sums(q: QuantizedTensor) -> ErrorSums:
    """Error sums of the stored encoding, from the codes without a full decoded array where
    the family allows (`Family.error_sums`), else against the decoded values."""
    enc, stored = q.encoded, q.storage.stored
    fast = "decoded" not in q.__dict__ and enc is not None and stored is not None
    sums = enc.scheme.family.error_sums(q.original, enc) if fast and enc is not None else None
    return sums if sums is not None else error_sums(q.original, q.decoded)


def _gzip_views(q: QuantizedTensor) -> tuple[int, float]:
    """Estimated gzip size of the tensor's stored bytes, from views of its codes (no copy);
    tiny parameter blocks count as their raw size."""
    if q.encoded is not None:
        family = q.encoded.scheme.family
        views = family.packed_views(q.encoded) or q.encoded.byte_views()
    else:
        views = [np.ascontiguousarray(q.original).reshape(-1).view(np.uint8)]
    size, var = 0, 0.0
    for v in views:
        n = len(v)
        if n < 64:
            size += n
            continue
        est, rel = gzip_estimate(v)
        size, var = size + est, var + (rel * est) ** 2
    return size, math.sqrt(var) / size if size else 0.0


def _affine_numbers(enc: Encoded | None) -> tuple[float, ...]:
    if enc is None or "min" not in enc.params:
        return ()
    return (float(enc.params["min"]), float(enc.params["scale"]))


class PreviewCache(TensorCache[TensorPreview]):
    """Previews per (tensor, scheme spec, target), reused across plan edits."""

    def __init__(self) -> None:
        super().__init__(lambda t, s, target: preview_tensor(t, s, target))  # late-bound


@dataclass(frozen=True)
class Preview:
    """A whole-model preview: per-tensor rows in file order and model totals."""

    tensors: tuple[TensorPreview, ...]
    total: Mapping[str, Any]

    def to_json(self, model: Model) -> dict[str, Any]:
        return {
            "model": model.describe(),
            "total": {k: json_number(v) for k, v in self.total.items()},
            "tensors": [t.to_json() for t in self.tensors],
        }


def iter_preview(
    model: Model,
    plan: Plan,
    target: Target = NATIVE,
    cache: PreviewCache | None = None,
    exact_gzip_below: int = EXACT_GZIP_BELOW,
    workers: int | None = None,
) -> Generator[TensorPreview, None, Preview]:
    """Yield one tensor's preview at a time (file order); return the whole `Preview`.

    When the export would hold at most `exact_gzip_below` bytes, the gzip size is measured on
    the whole archive before returning (`exact_gzip`); larger models report the per-tensor
    estimate with its band, and the caller runs `exact_gzip` in the background if it wants
    the exact figure. The caller picks the thread and cancels by no longer iterating.

    `workers` threads (default: up to 2 CPUs) preview the next tensors while the caller
    handles this one: numpy's loops and zlib release the GIL, so two cores nearly halve the
    time. At most `workers + 1` tensors are in flight; closing the generator drops the rest.
    """
    rows: list[TensorPreview] = []
    for row in _rows_in_order(model, plan, target, cache, workers):
        rows.append(row)
        yield row
    overhead = target.overhead_bytes(model, rows) or b""
    exact = None
    if sum(r.quantized_bytes for r in rows if not r.optimizer) + len(overhead) <= exact_gzip_below:
        exact = drain(exact_gzip(model, plan, target, rows))
    return Preview(tuple(rows), summarize(rows, overhead, gzip_exact=exact))


def _rows_in_order(
    model: Model, plan: Plan, target: Target, cache: PreviewCache | None, workers: int | None
) -> Iterator[TensorPreview]:
    def one(tensor: Tensor) -> TensorPreview:
        scheme = plan.scheme_for(tensor.info)
        return (
            cache.get(tensor, scheme, target)
            if cache is not None
            else preview_tensor(tensor, scheme, target)
        )

    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    if workers <= 1:
        yield from map(one, model)
        return
    pending: deque[Future[TensorPreview]] = deque()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="preview")
    try:
        for tensor in model:
            pending.append(pool.submit(one, tensor))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def drain(gen: Generator[Any, None, Any]) -> Any:
    """Run a generator to its end and return its return value."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def run_preview(
    model: Model, plan: Plan, target: Target = NATIVE, cache: PreviewCache | None = None
) -> Preview:
    """Drain `iter_preview` and return the `Preview`."""
    return drain(iter_preview(model, plan, target, cache))
