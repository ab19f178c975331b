"""Decoding speed of inspector.core.ggml.dequant against the gguf package (gguf.quants.dequantize,
llama.cpp's own Python decoder), per ggml type, measured in the same run.

Run: python benchmarks/ggml_dequant.py [--mb 64] [--types q4_k,iq4_xs]
Each type decodes random blocks worth `--mb` MB of float32 output (16M values at 64 MB); the
table gives MB/s of output for both and the ratio (ours / gguf: above 1 is faster). Best of 3.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from bench import best_of  # benchmarks/bench.py

from inspector.core.ggml.dequant import DECODABLE, dequantize
from inspector.core.ggml.types import ggml_type


def bench(name: str, mb: int) -> tuple[float, float]:
    import gguf

    t = ggml_type(name)
    values = mb * (1 << 20) // 4 // 4096 * 4096
    rows = values // 4096
    raw = np.random.default_rng(0).integers(
        0, 256, size=(rows, 4096 // t.block_size * t.type_size), dtype=np.uint8
    )
    qtype = gguf.GGMLQuantizationType[name.upper()]
    dequantize(raw[:1], name, (1, 4096))  # compile / load the kernel outside the timing
    ours = best_of(lambda: dequantize(raw, name, (rows, 4096)))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        ref = best_of(lambda: gguf.quants.dequantize(raw, qtype))
    return 4 * values / ours / 1e6, 4 * values / ref / 1e6


def main() -> None:
    import gguf

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64)
    parser.add_argument("--types", default="")
    args = parser.parse_args()
    known = {q.name.lower() for q in gguf.quants._type_traits} | {"f16"}
    names = args.types.split(",") if args.types else sorted(known & DECODABLE)
    print(f"{'type':8} {'ours MB/s':>10} {'gguf MB/s':>10} {'ours/gguf':>10}")
    ratios = []
    for name in names:
        ours, ref = bench(name, args.mb)
        ratios.append(ours / ref)
        print(f"{name:8} {ours:10.0f} {ref:10.0f} {ours / ref:9.1f}x", flush=True)
    print(
        f"slowest ratio {min(ratios):.1f}x, geometric mean {np.exp(np.mean(np.log(ratios))):.1f}x"
    )


if __name__ == "__main__":
    main()
