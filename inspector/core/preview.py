"""The preview: what a plan does to every tensor, in the bytes the export will write.

One code path (`quantize_tensor`) produces the stored encoding and the decoded values for both
the preview and the writers (DESIGN §7 rule 7). Computing a whole-model preview is a generator
yielding one `TensorPreview` per tensor: the unit of progress and cancellation for the GUI.
"""

from __future__ import annotations

import math
import os
import zlib
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

from inspector.core.cancel import Cancelled
from inspector.core.chunking import finite_minmax, on_two_threads
from inspector.core.entropy import encoding_entropy
from inspector.core.metrics import (
    ErrorSums,
    error_sums,
    gzip_estimate,
    metrics_from_sums,
    parallel_gzip_nbytes,
    sqnr_db,
)
from inspector.core.model import Model, Tensor, TensorInfo
from inspector.core.plan import Plan
from inspector.core.rounding.data import NO_DATA
from inspector.core.rounding.options import rounding_of
from inspector.core.schemes import Encoded, Scheme
from inspector.core.target import NATIVE, Storage, Target

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

WORST_COUNT = 5
EXACT_GZIP_BELOW = 8 << 20
"""Stored bytes up to which `iter_preview` gzips the whole archive exactly (~0.2 s at most)."""
_GZIP_PIECE = 1 << 20
_OVERLAP_FROM = 1 << 20
"""Elements from which one tensor's gzip estimate and error sums run side by side."""


@dataclass(frozen=True, eq=False)
class QuantizedTensor:
    """A tensor after its storage stages: what is stored and what a runtime will decode."""

    info: TensorInfo
    scheme: Scheme
    storage: Storage
    encoded: Encoded | None
    first: Encoded | None
    original: np.ndarray
    decoded_values: np.ndarray | None
    skipped: str | None
    nonfinite: int = 0
    rounding_note: str = ""

    @cached_property
    def decoded(self) -> np.ndarray:
        """float32 values a runtime decodes (the last stage's decode, made on first use: the
        preview measures affine codes through a lookup table without this full array)."""
        if self.decoded_values is not None:
            return self.decoded_values
        assert self.encoded is not None and self.storage.stored is not None
        return self.storage.stored.decode(self.encoded)

    @property
    def stored_nbytes(self) -> int:
        """Bytes the file holds for this tensor (codes + parameters, or the raw values)."""
        return self.encoded.nbytes if self.encoded is not None else self.info.nbytes

    def stored_bytes(self) -> bytes:
        if self.encoded is not None:
            return self.encoded.to_bytes()
        return np.ascontiguousarray(self.original).tobytes()


def _skip_reason(info: TensorInfo, scheme: Scheme) -> str | None:
    if info.optimizer:
        return "optimizer state"
    if not info.is_float:
        return f"{info.dtype} tensor"
    if info.size == 0:
        return "empty tensor"
    if not scheme.applies_to(info):
        return f"fewer than {scheme.skip} elements" if scheme.skip else "kept as is"
    return None


def quantize_tensor(tensor: Tensor, scheme: Scheme, target: Target = NATIVE) -> QuantizedTensor:
    """Apply the target's storage stages for `scheme` to one tensor.

    Tensors holding NaN/Inf are kept as they are (and reported with the count) so the rest of
    the model still previews; integer tensors, optimizer state and tiny tensors are kept too.
    """
    info = tensor.info
    values = tensor.load()
    storage = target.storage(info, scheme)
    reason = _skip_reason(info, scheme) or (None if storage.stages else "kept as is")
    nonfinite = 0
    if reason is None:
        with np.errstate(over="ignore"):  # float64 beyond float32's range becomes ±inf
            x = np.asarray(values, dtype=np.float32)
        mn, mx, nonfinite = finite_minmax(x.reshape(-1))
        if nonfinite:
            reason = f"{nonfinite} non-finite values (NaN/Inf)"
    if reason is not None:
        return QuantizedTensor(
            info, scheme, Storage(()), None, None, values, values, reason, nonfinite
        )
    decoded, first, enc, note = x, None, None, ""
    for i, stage in enumerate(storage.stages):
        if i:
            decoded = storage.stages[i - 1].decode(enc)
            mn, mx, bad = finite_minmax(decoded.reshape(-1))
            if bad:
                # A value decoded past float32's max (±inf) cannot be re-stored by the next stage.
                why = f"{storage.stages[i - 1]} decodes values past the float32 range"
                return QuantizedTensor(info, scheme, Storage(()), None, None, values, values, why)
        known = (mn, mx) if decoded.size and decoded.dtype == np.float32 else None
        enc = stage.encode(decoded, channel_axis=info.channel_axis, value_range=known)
        if rounding_of(stage) == "gptq":
            enc, note = _data_rounded(tensor, enc, decoded, target)
        first = first or enc
    return QuantizedTensor(info, scheme, storage, enc, first, x, None, None, 0, note)


def _data_rounded(
    tensor: Tensor, enc: Encoded, values: np.ndarray, target: Target
) -> tuple[Encoded, str]:
    """`enc` with the codes the target's data rounding chooses, or as is with the reason."""
    if target.rounding is None:
        return enc, NO_DATA
    codes, why = target.rounding.choose(tensor, enc, values)
    if codes is None:
        return enc, f"round=gptq: {why}; nearest"
    return replace(enc, codes=codes), ""


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
        m = metrics_from_sums(sums, scale)
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
        note="; ".join(n for n in (q.storage.note, q.rounding_note) if n),
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


class PreviewCache:
    """Previews keyed by (tensor name, scheme spec, `target.cache_key`), reused across plan edits so
    changing one tensor's scheme recomputes one tensor. Not thread-safe for writers racing on
    the same key, which only costs a recomputation."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str, str], TensorPreview] = {}

    def get(self, tensor: Tensor, scheme: Scheme, target: Target) -> TensorPreview:
        key = (tensor.name, scheme.spec, target.cache_key(scheme))
        hit = self._items.get(key)
        if hit is None:
            hit = self._items[key] = preview_tensor(tensor, scheme, target)
        return hit

    def clear(self) -> None:
        self._items.clear()


def summarize(
    tensors: Sequence[TensorPreview],
    overhead: bytes = b"",
    overhead_gzip: int | None = None,
    gzip_exact: int | None = None,
) -> dict[str, Any]:
    """Model totals from per-tensor previews; optimizer state is left out.

    `overhead` is the container's own bytes (model.json, headers) that the export also writes;
    the gzip ratio is the TF.js example's: total bytes ÷ gzipped bytes of everything written.
    `gzip_exact` is that gzipped size measured on the whole archive (`exact_gzip`); without it
    the size is the sum of the per-tensor estimates, and `gzip_uncertainty` is its relative
    1-sigma band (the tensors' sampling errors, independent, added in quadrature).
    `entropy_bits_per_weight` and `huffman_bytes` are the entropy-coding bound and a real
    Huffman coding of the stored codes (core/entropy.py).
    """
    weights = [t for t in tensors if not t.optimizer]
    params = sum(math.prod(t.shape) for t in weights)
    original = sum(t.original_bytes for t in weights)
    quantized = sum(t.quantized_bytes for t in weights) + len(overhead)
    if overhead_gzip is None:
        overhead_gzip = gzip_estimate(memoryview(overhead))[0] if overhead else 0
    gz = sum(t.gzip_bytes for t in weights) + overhead_gzip
    band = math.sqrt(sum((t.gzip_uncertainty * t.gzip_bytes) ** 2 for t in weights))
    uncertainty = band / gz if gz else 0.0
    if gzip_exact is not None:
        gz, uncertainty = gzip_exact, 0.0
    signal = sum(t.signal_energy for t in weights)
    noise = sum(t.mse * math.prod(t.shape) for t in weights if t.skipped is None)
    ranked = sorted((t for t in weights if t.skipped is None), key=lambda t: t.sqnr_db)
    return {
        "parameters": params,
        "tensors": len(weights),
        "original_bytes": original,
        "quantized_bytes": quantized,
        "overhead_bytes": len(overhead),
        "compression_ratio": original / quantized if quantized else 1.0,
        "bits_per_weight": 8.0 * (quantized - len(overhead)) / params if params else 0.0,
        "mse": noise / params if params else 0.0,
        "sqnr_db": _sqnr(signal, noise),
        "gzip_bytes": gz,
        "gzip_ratio": quantized / gz if gz else 1.0,
        "gzip_uncertainty": uncertainty,
        "gzip_exact": gzip_exact is not None,
        "nonfinite_tensors": [t.name for t in weights if t.nonfinite],
        "worst": [t.name for t in ranked[:WORST_COUNT]],
        **_entropy_totals(weights, params, len(overhead)),
    }


def _entropy_totals(weights: Sequence[TensorPreview], params: int, overhead: int) -> dict[str, Any]:
    """The model's entropy bound (bits per weight: tensors without a code alphabet count at
    their stored size) and the bytes with every tensor's codes Huffman-coded, plus overhead."""
    bits = sum(
        t.entropy_bits_per_weight * math.prod(t.shape)
        if t.entropy_bits_per_weight is not None
        else 8.0 * t.quantized_bytes
        for t in weights
    )
    return {
        "entropy_bits_per_weight": bits / params if params else 0.0,
        "huffman_bytes": sum(t.huffman_bytes for t in weights) + overhead,
    }


def _sqnr(signal: float, noise: float) -> float:
    return sqnr_db(signal, noise)


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
            cache.get(tensor, scheme, target) if cache else preview_tensor(tensor, scheme, target)
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


def exact_gzip(
    model: Model,
    plan: Plan,
    target: Target,
    rows: Sequence[TensorPreview],
    cancelled: Callable[[], bool] | None = None,
    workers: int | None = None,
) -> Generator[tuple[int, int], None, int]:
    """The gzip size (level 6, bytes) of what the export writes: the target's archive stream
    (for TF.js the tar of model.json and the shards).

    Up to `EXACT_GZIP_BELOW` bytes, or with one worker, the stream goes through one deflate:
    exactly `gzip`'s zlib-6 size. Larger archives are deflated pigz-style on `workers` threads
    (default: up to 2 CPUs) in 1 MiB blocks primed with the previous 32 KiB
    (`parallel_gzip_nbytes`): a valid gzip stream whose size is within ~0.01 % of the single
    stream's (measured; see benchmarks/RESULTS.md), at about twice the speed on two cores.

    Tensors are quantized again one at a time by `quantize_tensor`, the export's own code
    path, so nothing but one tensor is held. Yields (bytes done, bytes in all) every 1 MiB and
    raises `Cancelled` when `cancelled()` turns True. `rows` are the plan's previews (they give
    model.json). zlib runs at ~40 MB/s per core.
    """
    overhead = target.overhead_bytes(model, rows) or b""
    stored = sum(r.quantized_bytes for r in rows if not r.optimizer)
    total = stored + len(overhead)
    stream = target.archive(overhead, stored, _stored_chunks(model, plan, target))
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    if workers > 1 and total > EXACT_GZIP_BELOW:
        blocks = parallel_gzip_nbytes(stream, 6, workers)
        try:
            while True:
                if cancelled is not None and cancelled():
                    raise Cancelled("exact gzip size cancelled")
                yield min(next(blocks), total), total
        except StopIteration as stop:
            return stop.value
        finally:
            blocks.close()
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    size = done = 0
    for chunk in stream:
        view = memoryview(chunk).cast("B")
        for start in range(0, len(view), _GZIP_PIECE):
            if cancelled is not None and cancelled():
                raise Cancelled("exact gzip size cancelled")
            piece = view[start : start + _GZIP_PIECE]
            size += len(comp.compress(piece))
            done += len(piece)
            yield min(done, total), total
    return size + len(comp.flush())


def _stored_chunks(model: Model, plan: Plan, target: Target) -> Iterator[bytes]:
    for tensor in model:
        if tensor.info.optimizer:
            continue
        q = quantize_tensor(tensor, plan.scheme_for(tensor.info), target)
        yield target.tensor_bytes(model, q)
