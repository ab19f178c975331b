"""Make the GGUF test files (dev time; needs the `gguf` package and llama.cpp's tools).

    /work/main/.venv/bin/python tests/formats/gguf/data/make_gguf_fixtures.py [LLAMA_BIN]

- tiny_f16.gguf: a one-block llama written by gguf-py (F16 matrices of 256-value rows, F32
  norms; tensors in llama-quantize's order, so a re-export can match its files byte for byte),
  which llama-quantize accepts; llama-quantize then writes
- tiny_q8_0.gguf (`--pure Q8_0`) and tiny_q4_k_m.gguf (the Q4_K_M mixture: Q4_K, Q6_K, …),
- tiny_q4_k_m-0000N-of-00003.gguf: the latter cut by `llama-gguf-split --split-max-tensors 4`;
- kv_types.gguf (gguf-py): every metadata value type, string and nested arrays, alignment 64,
  tensors of F32/F16/BF16/F64/I8/I16/I32/I64 and Q8_0/Q4_0 (gguf.quants) with 1-4 dims.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np

HERE = Path(__file__).resolve().parent
BIN = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/tools/llbuild/bin")
MATRICES = {  # name: (rows, row length)
    "token_embd.weight": (32, 256),
    "output.weight": (32, 256),
    "blk.0.attn_q.weight": (32, 256),
    "blk.0.attn_k.weight": (16, 256),
    "blk.0.attn_v.weight": (16, 256),
    "blk.0.attn_output.weight": (32, 256),
    "blk.0.ffn_gate.weight": (48, 256),
    "blk.0.ffn_up.weight": (48, 256),
    "blk.0.ffn_down.weight": (32, 256),
}
NORMS = ("output_norm.weight", "blk.0.attn_norm.weight", "blk.0.ffn_norm.weight")


def llama_order(name: str) -> tuple[int, str]:
    """llama-quantize's tensor order (`weight_name_comparer`): block number, then name."""
    layer = int(name.split(".")[1]) if name.startswith("blk.") else -1
    return layer, name


def tiny_llama(path: Path) -> None:
    rng = np.random.default_rng(7)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny test llama")
    w.add_block_count(1)
    w.add_context_length(64)
    w.add_embedding_length(256)
    w.add_feed_forward_length(256)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(32)
    w.add_file_type(1)
    values = {}
    for name, shape in MATRICES.items():
        x = rng.standard_normal(shape) * 0.05
        x[0, :8] *= 40  # outliers, as real weights have
        values[name] = x.astype(np.float16)
    for name in NORMS:
        values[name] = (1 + 0.1 * rng.standard_normal(256)).astype(np.float32)
    for name in sorted(values, key=llama_order):
        w.add_tensor(name, values[name])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def kv_types(path: Path) -> None:
    rng = np.random.default_rng(3)
    w = gguf.GGUFWriter(str(path), "test")
    T = gguf.GGUFValueType
    w.add_uint32("general.alignment", 64)
    w.data_alignment = 64
    for vt, value in [
        (T.UINT8, 200), (T.INT8, -100), (T.UINT16, 60000), (T.INT16, -30000),
        (T.UINT32, 4_000_000_000), (T.INT32, -2_000_000_000), (T.FLOAT32, 0.25),
        (T.BOOL, True), (T.STRING, "héllo ✓"), (T.UINT64, 2**63 + 5),
        (T.INT64, -(2**62)), (T.FLOAT64, 1e-300),
    ]:  # fmt: skip
        w.add_key_value(f"test.scalar.{vt.name.lower()}", value, vt)
    w.add_key_value("test.array.int32", list(range(-5, 20)), T.ARRAY, T.INT32)
    w.add_key_value("test.array.float32", [0.5, 1.5, -2.0], T.ARRAY, T.FLOAT32)
    w.add_key_value("test.array.bool", [True, False, True], T.ARRAY, T.BOOL)
    w.add_key_value("test.array.string", [f"tok{i}" for i in range(40)], T.ARRAY, T.STRING)
    w.add_key_value("test.array.nested", [[1, 2, 3], [4, 5]], T.ARRAY, T.ARRAY)
    w.add_tensor("plain.f32", rng.standard_normal((3, 5)).astype(np.float32))
    w.add_tensor("plain.f16", rng.standard_normal((2, 3, 4)).astype(np.float16))
    w.add_tensor("plain.f64", rng.standard_normal(7))
    for dt in (np.int8, np.int16, np.int32, np.int64):
        w.add_tensor(f"int.{np.dtype(dt).name}", rng.integers(-100, 100, (2, 2, 2, 3)).astype(dt))
    bf = rng.standard_normal((4, 8)).astype(np.float32)
    bf16 = gguf.quants.quantize(bf, gguf.GGMLQuantizationType.BF16)
    w.add_tensor("block.bf16", bf16, raw_dtype=gguf.GGMLQuantizationType.BF16)
    for qt in (gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.Q4_0):
        x = rng.standard_normal((3, 64)).astype(np.float32)
        w.add_tensor(f"block.{qt.name.lower()}", gguf.quants.quantize(x, qt), raw_dtype=qt)
    w.add_tensor("empty", np.zeros((0, 4), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True)


def main() -> None:
    src = HERE / "tiny_f16.gguf"
    tiny_llama(src)
    run(BIN / "llama-quantize", "--pure", src, HERE / "tiny_q8_0.gguf", "Q8_0")
    run(BIN / "llama-quantize", src, HERE / "tiny_q4_k_m.gguf", "Q4_K_M")
    run(BIN / "llama-gguf-split", "--split-max-tensors", "4",
        HERE / "tiny_q4_k_m.gguf", HERE / "tiny_q4_k_m")  # fmt: skip
    kv_types(HERE / "kv_types.gguf")


if __name__ == "__main__":
    main()
