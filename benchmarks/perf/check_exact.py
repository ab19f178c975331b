"""Exactness checks behind the fast paths (run: python benchmarks/perf/check_exact.py).

1. affine codes (uint8, uint16, affine2/4) equal the converter's float64 maths
   (`round((clip(w, lo, hi) - lo) / scale)`) on millions of random values over 60 decades,
   exact half-way points of every grid, subnormals and ±float32 max;
   `affine_error_sums` equals `error_sums` of the decoded array to 1e-9 relative.
   Runs the compiled kernels when numba is there (QUANT_INSPECTOR_NO_JIT=1: the numpy path).
2. the pigz-style parallel gzip is a valid stream and its size is within 0.02 % of one
   zlib stream on weight-like uint8 codes.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from inspector.core import jit, metrics
from inspector.core.metrics import affine_error_sums, error_sums
from inspector.core.schemes import parse_scheme


def converter_codes(x: np.ndarray, bits: int) -> np.ndarray:
    x64, qmax = x.astype(np.float64), (1 << bits) - 1
    mn, mx = x64.min(), x64.max()
    if mn == mx:
        return np.zeros(x.size)
    scale = (mx - mn) / qmax
    if mn <= 0 <= mx:
        lo = -np.round(-mn / scale) * scale
        hi = qmax * scale + lo
    else:
        lo, hi = mn, mx
    return np.round((np.clip(x64, lo, hi) - lo) / scale)


def cases() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    out = []
    for k in range(-30, 31, 3):
        out.append(rng.standard_normal(1_000_003).astype(np.float32) * np.float32(10.0**k))
        out.append((rng.random(300_000) * 3 + 0.5).astype(np.float32) * np.float32(10.0**k))
        out.append(-(rng.random(300_000) * 3 + 0.5).astype(np.float32) * np.float32(10.0**k))
    f32 = np.finfo(np.float32)
    out.append(np.array([-f32.max, f32.max, 0, 1e-45, -1e-45, f32.tiny], np.float32))
    out.append(np.array([1e-45, 3e-45, 0, 2e-44], np.float32))
    for bits in (2, 4, 8, 16):
        q = (1 << bits) - 1
        out.append(np.concatenate([[0.0, 1.0], (np.arange(q) + 0.5) / q]).astype(np.float32))
        out.append(np.concatenate([[-1.0, 2.0], -1 + 3 * (np.arange(q) + 0.5) / q]).astype("f4"))
    return out


def check_affine() -> int:
    bad = values = 0
    for bits, name in ((8, "uint8"), (16, "uint16"), (4, "affine4"), (2, "affine2")):
        scheme = parse_scheme(name)
        for x in cases():
            x = x[np.isfinite(x)]
            enc = scheme.encode(x)
            values += x.size
            if not np.array_equal(enc.codes.astype(np.float64), converter_codes(x, bits)):
                bad += 1
                print("codes differ:", name, x[:3])
            a = error_sums(x, scheme.decode(enc))
            b = affine_error_sums(x, enc.codes, enc.params["min"], enc.params["scale"])
            for k in ("signal", "noise", "decoded", "max_abs"):
                va, vb = getattr(a, k), getattr(b, k)
                if not (va == vb or abs(va - vb) <= 1e-9 * abs(va)):
                    bad += 1
                    print("sums differ:", name, k, va, vb)
    print(f"affine: {values:,} values checked, {bad} differences")
    return bad


def check_parallel_gzip() -> int:
    rng = np.random.default_rng(0)
    codes = np.clip(np.rint(rng.standard_normal(12 << 20) * 20 + 128), 0, 255).astype(np.uint8)
    data = codes.tobytes()
    parts, window = [], b""
    blocks = [data[i : i + metrics.PARALLEL_BLOCK] for i in range(0, len(data), 1 << 20)]
    for i, block in enumerate(blocks):
        last = i == len(blocks) - 1
        comp = zlib.compressobj(6, zlib.DEFLATED, -15, 8, 0, window) if window else None
        comp = comp or zlib.compressobj(6, zlib.DEFLATED, -15)
        parts.append(comp.compress(block) + comp.flush(zlib.Z_FINISH if last else 2))
        window = block[-32768:]
    raw = b"".join(parts)
    ok = zlib.decompress(raw, -15) == data
    gen = metrics.parallel_gzip_nbytes([data])
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            size = stop.value
            break
    single = metrics.gzip_nbytes([data])
    print(f"parallel gzip: valid={ok}, {size} vs single {single} ({size / single - 1:+.4%})")
    return int(not ok or size != len(raw) + 18 or abs(size / single - 1) > 2e-4)


if __name__ == "__main__":
    # QUANT_INSPECTOR_NO_JIT=1 checks the numpy path; otherwise the compiled kernels
    print("compiled kernels:", jit.wait() is not None)
    sys.exit(check_affine() + check_parallel_gzip())
