"""Make c_dequant.npz: random blocks of the types the gguf wheel cannot decode (q1_0, q2_0, q8_k)
and their values as llama.cpp's `dequantize_row_*` computes them (dev time only: calls
libggml-base of the llama.cpp build through tests/core/ggml/c_oracle.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import c_oracle  # noqa: E402

SIZES = {"q1_0": (128, 18), "q2_0": (64, 18), "q8_k": (256, 292)}


def main() -> None:
    rng = np.random.default_rng(11)
    arrays = {}
    for name, (block, size) in SIZES.items():
        n_blocks = 24
        raw = rng.integers(0, 256, size=n_blocks * size, dtype=np.uint8)
        if name == "q8_k":  # finite float32 scales
            blocks = raw.reshape(n_blocks, size)
            blocks[:, :4] = np.frombuffer(
                rng.standard_normal(n_blocks).astype("<f4").tobytes(), np.uint8
            ).reshape(n_blocks, 4)
        arrays[f"{name}_raw"] = raw
        arrays[f"{name}_values"] = c_oracle.dequantize(raw, name, n_blocks * block)
    np.savez_compressed(HERE / "c_dequant.npz", **arrays)


if __name__ == "__main__":
    main()
