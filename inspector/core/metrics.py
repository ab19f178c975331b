"""Error metrics of DESIGN §4 and gzip sizes.

Errors accumulate in float64 over chunks of `CHUNK` elements (float32 accumulation of 20M
squared errors was measured 3.7 % off), so no full-size float64 temporary is made.

Conventions where a ratio is undefined (never a division by zero):
- `sqnr_db` = 10·log10(Σw² / Σ(w−w')²): `inf` when the decoded values are exact (this includes
  an all-zero tensor decoded exactly), `-inf` when the signal is all zero but the error is not.
- `cosine` = Σww' / (‖w‖‖w'‖): 1.0 when both are all zero, 0.0 when only one is.
- `rmse_over_scale` is None when no scale is given (floats, palettes) or the scale is 0.
- An empty tensor has mse = rmse = max_abs_error = 0, sqnr_db = inf, cosine = 1.
- A value decoded past float32's max (±inf, as a float32 runtime decodes it) makes mse
  inf, sqnr_db -inf and cosine 0.
"""

from __future__ import annotations

import math
import zlib
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import jit
from .bitpack import pack_codes, packed_nbytes
from .cancel import Cancelled
from .chunking import CHUNK, chunk_slices

__all__ = [
    "Cancelled",
    "ErrorSums",
    "PackedCodes",
    "affine_error_sums",
    "count_nonfinite",
    "error_metrics",
    "error_sums",
    "gzip_estimate",
    "gzip_nbytes",
    "lut_error_sums",
    "metrics_from_sums",
    "parallel_gzip_nbytes",
    "sqnr_db",
]

GZIP_EXACT_BELOW = 64 << 10
PARALLEL_BLOCK = 1 << 20
_GZIP_PIECE = 1 << 20
_GZIP_OVERHEAD = 18  # gzip header (10 bytes) + CRC32 and size trailer (8 bytes)


@dataclass(frozen=True)
class ErrorSums:
    """Float64 sums from which every error metric follows; they add across tensors, so the
    model-level SQNR is `sqnr_db(Σ signal, Σ noise)` over all weights."""

    count: int = 0
    signal: float = 0.0  # Σ w²
    noise: float = 0.0  # Σ (w − w')²
    decoded: float = 0.0  # Σ w'²
    cross: float = 0.0  # Σ w·w'
    max_abs: float = 0.0

    def __add__(self, other: ErrorSums) -> ErrorSums:
        return ErrorSums(
            self.count + other.count,
            self.signal + other.signal,
            self.noise + other.noise,
            self.decoded + other.decoded,
            self.cross + other.cross,
            max(self.max_abs, other.max_abs),
        )


def sqnr_db(signal_energy: float, noise_energy: float) -> float:
    """10·log10(signal/noise) in dB; inf when noise is 0, -inf when only the signal is 0 (or
    the noise is infinite: a value decoded to ±inf)."""
    if noise_energy <= 0:
        return math.inf
    ratio = signal_energy / noise_energy
    if ratio <= 0 or math.isnan(ratio):
        return -math.inf
    return 10.0 * math.log10(ratio)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Σ a·b in float64. einsum, not np.dot: OpenBLAS's threaded ddot measured 20-50x slower
    on cache-sized chunks on a busy 2-core machine."""
    return float(np.einsum("i,i->", a, b))


def error_sums(
    original: np.ndarray, decoded: np.ndarray, codes_lut: np.ndarray | None = None
) -> ErrorSums:
    """Float64 sums of a tensor's values and errors, in chunks; shapes must have equal size.

    With `codes_lut`, `decoded` holds integer codes and the decoded values are
    `codes_lut[codes]`, looked up one cache-sized chunk at a time: the sums are those of the
    full decoded array (same float64 arithmetic) without ever making it.
    """
    a = np.asarray(original).reshape(-1)
    b = np.asarray(decoded).reshape(-1)
    if a.size != b.size:
        raise ValueError(f"original has {a.size} values, decoded {b.size}")
    signal = noise = dec = cross = 0.0
    max_abs = 0.0
    o = np.empty(min(CHUNK, a.size), dtype=np.float64)
    d = np.empty_like(o)
    lut = None if codes_lut is None else np.asarray(codes_lut, dtype=np.float64)
    for s in chunk_slices(a.size):
        n = s.stop - s.start
        oc, dc = o[:n], d[:n]
        oc[...] = a[s]
        if lut is None:
            dc[...] = b[s]
        else:
            lut.take(b[s], out=dc)
        signal += _dot(oc, oc)
        dec += _dot(dc, dc)
        cross += _dot(oc, dc)
        np.subtract(oc, dc, out=dc)
        noise += _dot(dc, dc)
        max_abs = max(max_abs, float(dc.max()), -float(dc.min()))
    return ErrorSums(a.size, signal, noise, dec, cross, max_abs)


def affine_error_sums(
    original: np.ndarray, codes: np.ndarray, minimum: float, scale: float
) -> ErrorSums:
    """`error_sums(original, decoded)` for affine codes, `decoded = float32(q·scale + min)`
    computed in float64 as `affine_decode` does, one cache-sized chunk at a time.

    Three float64 dot products per chunk instead of four: Σw·w' follows exactly enough from
    Σw·w' = (Σw² + Σw'² − Σ(w − w')²)/2 (its rounding error is relative to Σw², which only
    moves the cosine by ~1e-16).
    """
    a = np.asarray(original).reshape(-1)
    c = np.asarray(codes).reshape(-1)
    if a.size != c.size:
        raise ValueError(f"original has {a.size} values, codes {c.size}")
    fast = jit.get()
    if fast is not None and a.dtype == np.float32 and a.flags.c_contiguous and c.flags.c_contiguous:
        signal, noise, dec, worst = fast.affine_sums(a, c, scale, minimum)
        with np.errstate(invalid="ignore"):
            cross = (signal + dec - noise) / 2
        return ErrorSums(a.size, signal, noise, dec, cross, worst)
    if c.dtype == np.uint8 or (c.dtype == np.uint16 and c.size >= 1 << 16):
        # every decoded value from a table of the codes' decodes (same float64 maths, then
        # float32): one gather instead of five passes per chunk (~20 % of these sums)
        levels = np.arange(1 << (8 * c.dtype.itemsize), dtype=np.float64) * scale + minimum
        with np.errstate(over="ignore"):
            table = levels.astype(np.float32).astype(np.float64)
        return _table_sums(a, c, table)
    d32 = np.empty(min(CHUNK, a.size), dtype=np.float32)

    def decode(s: slice, dc: np.ndarray) -> None:
        fc = d32[: dc.size]
        dc[...] = c[s]
        dc *= scale
        dc += minimum
        with np.errstate(over="ignore"):  # past float32's max decodes to ±inf, as in TF.js
            fc[...] = dc
        dc[...] = fc

    return _decoded_sums(a, decode)


def _table_sums(a: np.ndarray, codes: np.ndarray, table: np.ndarray) -> ErrorSums:
    """The three-dot error sums of `affine_error_sums` with decoded values `table[codes]`."""
    index = np.empty(min(CHUNK, a.size), dtype=np.intp)

    def decode(s: slice, dc: np.ndarray) -> None:
        ic = index[: dc.size]
        ic[...] = codes[s]
        table.take(ic, out=dc)

    return _decoded_sums(a, decode)


def _decoded_sums(a: np.ndarray, decode: Callable[[slice, np.ndarray], None]) -> ErrorSums:
    """Error sums of `a` against values `decode(chunk, out)` writes (float64) one cache-sized
    chunk at a time; three dot products per chunk, Σ w·w' derived from them."""
    signal = noise = dec = 0.0
    max_abs = 0.0
    o = np.empty(min(CHUNK, a.size), dtype=np.float64)
    d = np.empty_like(o)
    for s in chunk_slices(a.size):
        n = s.stop - s.start
        oc, dc = o[:n], d[:n]
        oc[...] = a[s]
        decode(s, dc)
        signal += _dot(oc, oc)
        dec += _dot(dc, dc)
        np.subtract(oc, dc, out=dc)
        noise += _dot(dc, dc)
        max_abs = max(max_abs, float(dc.max()), -float(dc.min()))
    with np.errstate(invalid="ignore"):
        cross = (signal + dec - noise) / 2
    return ErrorSums(a.size, signal, noise, dec, cross, max_abs)


def lut_error_sums(original: np.ndarray, codes: np.ndarray, lut: np.ndarray) -> ErrorSums:
    """`error_sums(original, lut[codes])` for unsigned integer codes and a float32 table of
    the decoded value of every code (affine levels, a palette, every float16/bfloat16 bit
    pattern): one fused pass when the compiled kernels are loaded, never a decoded array."""
    a = np.asarray(original).reshape(-1)
    c = np.asarray(codes).reshape(-1)
    if a.size != c.size:
        raise ValueError(f"original has {a.size} values, codes {c.size}")
    table = np.ascontiguousarray(lut, dtype=np.float32)
    fast = jit.get()
    fits = a.dtype == np.float32 and c.dtype in (np.uint8, np.uint16) and a.flags.c_contiguous
    if fast is None or not fits or not c.flags.c_contiguous:
        return error_sums(a, c, codes_lut=table)
    signal, noise, dec, worst = fast.lut_sums(a, c, table)
    with np.errstate(invalid="ignore"):
        cross = (signal + dec - noise) / 2
    return ErrorSums(a.size, signal, noise, dec, cross, worst)


def metrics_from_sums(sums: ErrorSums, scale: float | None = None) -> dict[str, float | None]:
    """The §4 error metrics (`mse`, `rmse`, `max_abs_error`, `rmse_over_scale`, `sqnr_db`,
    `cosine`) from accumulated sums; units are those of the values (dB for sqnr_db)."""
    mse = sums.noise / sums.count if sums.count else 0.0
    rmse = math.sqrt(mse)
    denom = math.sqrt(sums.signal) * math.sqrt(sums.decoded)
    if denom > 0:
        ratio = sums.cross / denom  # NaN when a value decoded to ±inf: no similarity claimed
        cosine = 0.0 if math.isnan(ratio) else max(-1.0, min(1.0, ratio))
    else:
        cosine = 1.0 if sums.signal == sums.decoded == 0 else 0.0
    return {
        "mse": mse,
        "rmse": rmse,
        "max_abs_error": sums.max_abs,
        "rmse_over_scale": rmse / scale if scale else None,
        "sqnr_db": sqnr_db(sums.signal, sums.noise),
        "cosine": cosine,
    }


def error_metrics(
    original: np.ndarray, decoded: np.ndarray, scale: float | None = None
) -> dict[str, float | None]:
    """Error metrics of `decoded` against `original` (see the module docstring for edge cases).

    `scale` is the quantization step (`Encoded.scale`); `rmse_over_scale` ≈ 0.289 is uniform
    rounding noise, above 0.7 something (clipping, outliers) is wrong. Non-finite originals are
    the caller's to skip (`count_nonfinite`).
    """
    return metrics_from_sums(error_sums(original, decoded), scale)


def count_nonfinite(x: np.ndarray) -> int:
    """How many values are NaN or ±inf (0 for integer arrays)."""
    flat = np.asarray(x).reshape(-1)
    if flat.dtype.kind in "biu":
        return 0
    total = 0
    with np.errstate(invalid="ignore"):
        for s in chunk_slices(flat.size, CHUNK * 4):
            part = flat[s]
            if np.isfinite(part.min()) and np.isfinite(part.max()):
                continue
            total += int(part.size - np.count_nonzero(np.isfinite(part)))
    return total


def _pieces(chunks: Iterable[bytes | memoryview]) -> Iterable[memoryview]:
    for chunk in chunks:
        view = memoryview(chunk).cast("B")
        for start in range(0, len(view), _GZIP_PIECE):
            yield view[start : start + _GZIP_PIECE]


def gzip_nbytes(
    chunks: Iterable[bytes | memoryview],
    level: int = 6,
    cancelled: Callable[[], bool] | None = None,
) -> int:
    """Exact size in bytes of the gzip stream (`gzip -<level>`) of the chunks concatenated.

    Streams through one deflate object (no output kept) and checks `cancelled()` every 1 MiB,
    raising `Cancelled` when it returns True.
    """
    comp = zlib.compressobj(level, zlib.DEFLATED, 31)
    total = 0
    for piece in _pieces(chunks):
        if cancelled is not None and cancelled():
            raise Cancelled("gzip size computation cancelled")
        total += len(comp.compress(piece))
    return total + len(comp.flush())


def _blocks(chunks: Iterable[bytes | memoryview], size: int) -> Iterator[bytes]:
    """The chunks' bytes cut into consecutive blocks of `size` bytes (the last may be short)."""
    buf = bytearray()
    for piece in _pieces(chunks):
        buf += piece
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


def _deflated_size(block: bytes, window: bytes, level: int, last: bool) -> int:
    """Raw-deflate bytes of one block primed with the previous 32 KiB (pigz's scheme): a sync
    flush byte-aligns it so the blocks' outputs concatenate into one valid stream."""
    if window:
        comp = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, window)
    else:
        comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    out = len(comp.compress(block))
    return out + len(comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH))


def parallel_gzip_nbytes(
    chunks: Iterable[bytes | memoryview],
    level: int = 6,
    workers: int = 2,
    block: int = PARALLEL_BLOCK,
) -> Generator[int, None, int]:
    """Size in bytes of a pigz-style gzip of the chunks concatenated, deflated on `workers`
    threads (zlib releases the GIL): `block`-byte blocks, each primed with the previous 32 KiB
    as preset dictionary and ended by a sync flush, the last one finished.

    The stream is a valid gzip file (what `pigz -6` writes), but not byte-identical to one
    zlib stream: at each block border deflate starts a new Huffman block and its lazy-match
    state, and the sync flush adds 4-5 bytes. Measured on uint8 weight codes and the demo
    models' archives with 1 MiB blocks: within +0.01 % of the single stream (see
    benchmarks/RESULTS.md). Yields the raw bytes consumed so far after every block, so the
    caller can report progress and cancel by closing the generator.
    """
    pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="gzip")
    pending: deque[Future[int]] = deque()
    size, done, window = _GZIP_OVERHEAD, 0, b""
    held: bytes | None = None
    try:
        for data in _blocks(chunks, block):
            if held is not None:
                pending.append(pool.submit(_deflated_size, held, window, level, False))
                window = held[-32768:]
            held = data
            while len(pending) > 2 * workers:
                size += pending.popleft().result()
            done += len(data)
            yield done
        if held is not None:
            pending.append(pool.submit(_deflated_size, held, window, level, True))
        else:
            size += 2  # the empty final block of an empty stream
        while pending:
            size += pending.popleft().result()
        return size
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


class PackedCodes:
    """The packed bit stream of unsigned codes (`bitpack.pack_codes`), sliced on demand:
    `gzip_estimate` packs only the blocks it samples, not the whole tensor (8 codes make
    `bits` bytes, so a byte range maps to a whole number of 8-code groups around it)."""

    def __init__(self, codes: np.ndarray, bits: int, offset: int = 0) -> None:
        self.codes, self.bits, self.offset = codes.reshape(-1), bits, offset

    def __len__(self) -> int:
        return packed_nbytes(self.codes.size, self.bits)

    def __getitem__(self, cut: slice) -> bytes:
        start, stop, _ = cut.indices(len(self))
        g0, g1 = start // self.bits, -(-stop // self.bits)
        codes = self.codes[g0 * 8 : g1 * 8]
        if self.offset:
            codes = (codes + self.offset).astype(np.uint8)
        packed = pack_codes(codes, self.bits)
        return packed[start - g0 * self.bits : stop - g0 * self.bits]


def gzip_estimate(
    data: bytes | memoryview | np.ndarray | PackedCodes,
    fraction: float = 0.01,
    block: int = 16384,
    seed: int = 0,
) -> tuple[int, float]:
    """Estimated gzip size (level 6) of `data` and its relative 1-sigma uncertainty.

    Below 64 KiB the size is exact (uncertainty 0). Above, `max(2, fraction)` of the
    `block`-byte blocks (8 KiB blocks below 1 MiB), chosen by a seeded RNG, are deflated
    independently and the compressed/raw ratio is scaled to the whole; the uncertainty is the
    standard error of that ratio estimator with the finite-population correction. Independent
    blocks lose the 32 KiB window across block borders, a small upward bias (measured +0.1 %
    at 16 KiB, +0.3 % at 8 KiB on weight-like codes). A whole 110M-parameter uint8 model
    deflates ~2 % of its bytes this way. `data` may be any contiguous buffer (no copy is made).
    """
    view = _byte_view(data)
    n = len(view)
    if n < GZIP_EXACT_BELOW:
        return gzip_nbytes([view[0:n]]), 0.0
    if n < 64 * block:
        block = max(1024, block // 2)
    nblocks = n // block
    m = min(nblocks, max(2, math.ceil(fraction * nblocks)))
    picks = np.sort(np.random.default_rng(seed).choice(nblocks, size=m, replace=False))
    sizes = np.empty(m, dtype=np.float64)
    for i, b in enumerate(picks):
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        piece = view[int(b) * block : (int(b) + 1) * block]
        sizes[i] = len(comp.compress(piece)) + len(comp.flush())
    ratio = float(sizes.mean()) / block
    estimate = round(ratio * n) + _GZIP_OVERHEAD
    if m < 2 or ratio == 0:
        return estimate, 0.0
    fpc = math.sqrt(max(0.0, 1.0 - m / nblocks))
    rel = float(sizes.std(ddof=1)) / math.sqrt(m) * fpc / float(sizes.mean())
    return estimate, rel


def _byte_view(data: Any) -> Any:
    """A sliceable byte buffer; objects other than buffers (`PackedCodes`) pass through."""
    if isinstance(data, PackedCodes):
        return data
    if isinstance(data, np.ndarray):
        return memoryview(np.ascontiguousarray(data).reshape(-1).view(np.uint8).data)
    return memoryview(data).cast("B")
