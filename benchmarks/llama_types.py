"""Every llama.cpp type we encode, against llama-quantize on the same small llama, same run:
bits/weight, file size, error (RMSE, SQNR) and time, and whether every tensor's bytes agree.

Run: PYTHONPATH=. python benchmarks/llama_types.py [--workdir DIR] [--dim 512] [--layers 4]
Needs llama-quantize ($LLAMA_BIN, default /work/tools/build/bin), the gguf package and the
llama-spm vocabulary GGUF of llama.cpp's source ($LLAMA_VOCAB, default: in the llama-cpp-python
sdist under /work/tools).

The model: a LLaMA-architecture GGUF written by gguf-py with llama.cpp's real LLaMA tokenizer
(32000 tokens, copied from `models/ggml-vocab-llama-spm.gguf`) and synthetic weights shaped as
a small LLaMA (`--layers` blocks of width `--dim`, feed-forward 3·dim, 8 heads, 4 KV heads):
Student-t(5) values, per-row scales spread log-normally and a few outlier columns — the
heavy tails that make LLM weights hard to quantize, not a trained network. llama.cpp runs it
(llama-completion), so it also proves that the exports load.

Per type: `llama-quantize [--pure] IN OUT TYPE` (wall clock, its default threads) and ours
in-process (`export_model` with the same per-tensor types as a plan, after a warm-up that loads
every numba kernel (compiled on a first run); no Python start-up counted — the 7B benchmark,
benchmarks/gguf_7b.py, times the whole CLI). Error over every quantized matrix, decoded with
gguf-py (the oracle) from llama-quantize's file, against the F16 input.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

BIN = Path(os.environ.get("LLAMA_BIN", "/work/tools/build/bin"))
VOCAB = Path(
    os.environ.get(
        "LLAMA_VOCAB",
        "/work/tools/llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf",
    )
)
PURE = ["Q8_0", "Q6_K", "Q5_K", "Q5_1", "Q5_0", "Q4_K", "Q4_1", "Q4_0", "IQ4_NL", "IQ4_XS",
        "Q3_K", "Q2_K"]  # fmt: skip
MIXTURES = ["Q5_K_M", "Q4_K_M", "Q4_K_S", "Q3_K_M"]


def make_model(path: Path, dim: int, layers: int) -> None:
    """The small LLaMA described in the module docstring, F16 matrices and F32 norms."""
    import gguf

    vocab = gguf.GGUFReader(str(VOCAB))
    rng = np.random.default_rng(1)
    ff, heads = 3 * dim, 8
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(f"synthetic llama {layers}x{dim} (llama-spm vocab)")
    w.add_context_length(512)
    w.add_embedding_length(dim)
    w.add_block_count(layers)
    w.add_feed_forward_length(ff)
    w.add_rope_dimension_count(dim // heads)
    w.add_head_count(heads)
    w.add_head_count_kv(heads // 2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(1)
    for key, field in vocab.fields.items():
        if key.startswith("tokenizer."):
            kinds = field.types
            sub = kinds[-1] if kinds[0] == gguf.GGUFValueType.ARRAY else None
            w.add_key_value(key, field.contents(), kinds[0], sub)
    n_vocab = len(vocab.fields["tokenizer.ggml.tokens"].data)
    w.add_vocab_size(n_vocab)
    shapes: dict[str, tuple[int, ...]] = {
        "token_embd.weight": (n_vocab, dim), "output.weight": (n_vocab, dim),
        "output_norm.weight": (dim,),
    }  # fmt: skip
    kv = dim // 2
    for i in range(layers):
        b = f"blk.{i}."
        shapes |= {
            b + "attn_q.weight": (dim, dim), b + "attn_k.weight": (kv, dim),
            b + "attn_v.weight": (kv, dim), b + "attn_output.weight": (dim, dim),
            b + "ffn_gate.weight": (ff, dim), b + "ffn_up.weight": (ff, dim),
            b + "ffn_down.weight": (dim, ff), b + "attn_norm.weight": (dim,),
            b + "ffn_norm.weight": (dim,),
        }  # fmt: skip
    for name in sorted(shapes, key=_llama_order):
        shape = shapes[name]
        if len(shape) == 1:
            w.add_tensor(name, (1 + 0.1 * rng.standard_normal(shape)).astype(np.float32))
            continue
        x = rng.standard_t(5, shape) * 0.02
        x *= np.exp(0.3 * rng.standard_normal((shape[0], 1)))
        cols = rng.choice(shape[1], max(1, shape[1] // 200), replace=False)
        x[:, cols] *= 6.0
        w.add_tensor(name, x.astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _llama_order(name: str) -> tuple[int, str]:
    return (int(name.split(".")[1]) if name.startswith("blk.") else -1), name


def _plan(model: object, ftype: str, pure: bool) -> object:
    from inspector.core.plan import KEEP, Plan
    from inspector.formats.gguf.presets import mixture_plan
    from inspector.formats.gguf.quantize_args import llama_quantizes

    if not pure:
        return mixture_plan(model, ftype)  # type: ignore[arg-type]
    plan = Plan(default=ftype.lower())
    for t in model:  # type: ignore[attr-defined]
        if not llama_quantizes(t.name, len(t.info.shape)):
            plan = plan.with_overrides([t.name], KEEP)
    return plan


def _error(src: Path, out: Path) -> tuple[float, float, int, int]:
    """(RMSE, SQNR dB, weight bytes, weights) over the quantized matrices of `out`."""
    import gguf

    ref = {t.name: t for t in gguf.GGUFReader(str(src)).tensors}
    err = sig = 0.0
    nbytes = count = 0
    for t in gguf.GGUFReader(str(out)).tensors:
        if len(t.shape) < 2 or t.name not in ref:
            continue
        x = np.asarray(ref[t.name].data, dtype=np.float32).reshape(-1)
        y = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        err += float(np.sum((x.astype(np.float64) - y) ** 2))
        sig += float(np.sum(x.astype(np.float64) ** 2))
        nbytes += int(t.n_bytes)
        count += x.size
    sqnr = 10 * math.log10(sig / err) if err else math.inf
    return math.sqrt(err / count), sqnr, nbytes, count


def _same(ours: Path, theirs: Path) -> tuple[int, int]:
    import gguf

    mine = {t.name: t for t in gguf.GGUFReader(str(ours)).tensors}
    ref = gguf.GGUFReader(str(theirs)).tensors
    same = sum(
        t.name in mine
        and mine[t.name].tensor_type == t.tensor_type
        and mine[t.name].data.tobytes() == t.data.tobytes()
        for t in ref
    )
    return same, len(ref)


def run(work: Path, dim: int, layers: int) -> list[dict[str, object]]:
    from inspector.formats import open_model
    from inspector.formats.export import export_model

    src = work / "small_f16.gguf"
    make_model(src, dim, layers)
    rows: list[dict[str, object]] = []
    with open_model(src) as model:
        from inspector.core.ggml.quant import quantize

        for ftype in PURE:  # numba compiles (or loads from its cache) each kernel once
            quantize(np.zeros((1, 256), np.float32), ftype.lower())
        export_model(model, _plan(model, "Q4_K", True), "gguf", work / "warm.gguf")  # type: ignore[arg-type]
        for ftype in PURE + MIXTURES:
            pure = ftype in PURE
            theirs, ours = work / f"llama-{ftype}.gguf", work / f"ours-{ftype}.gguf"
            cmd = [str(BIN / "llama-quantize"), *(["--pure"] if pure else [])]
            t0 = time.perf_counter()
            subprocess.run([*cmd, str(src), str(theirs), ftype], check=True, capture_output=True)
            t_llama = time.perf_counter() - t0
            plan = _plan(model, ftype, pure)
            t0 = time.perf_counter()
            export_model(model, plan, "gguf", ours)  # type: ignore[arg-type]
            t_ours = time.perf_counter() - t0
            rmse, sqnr, nbytes, count = _error(src, theirs)
            same, total = _same(ours, theirs)
            rows.append({
                "type": ftype + ("" if pure else " (mixture)"),
                "bpw": 8 * nbytes / count, "size": ours.stat().st_size,
                "llama_size": theirs.stat().st_size, "rmse": rmse, "sqnr": sqnr,
                "t_llama": t_llama, "t_ours": t_ours, "same": same, "tensors": total,
            })  # fmt: skip
            print(_row(rows[-1]), flush=True)
    return rows


def _row(r: dict[str, object]) -> str:
    return (
        f"| {r['type']} | {r['bpw']:.2f} | {r['size'] / 1e6:.1f} MB | {r['rmse']:.2e} | "
        f"{r['sqnr']:.1f} dB | {r['t_ours']:.2f} s / {r['t_llama']:.2f} s = "
        f"{r['t_ours'] / r['t_llama']:.2f}× | {r['same']}/{r['tensors']} |"  # type: ignore[operator]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--keep", type=Path, help="copy the F16 input and our Q4_K_M here")
    args = parser.parse_args()
    print("| type | bits/weight | size | RMSE | SQNR | time ours / llama-quantize | "
          "tensors byte-equal |\n|---|---|---|---|---|---|---|")  # fmt: skip
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        run(Path(tmp), args.dim, args.layers)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            for name in ("small_f16.gguf", "ours-Q4_K_M.gguf", "llama-Q4_K_M.gguf"):
                (Path(tmp) / name).replace(args.keep / name)


if __name__ == "__main__":
    main()
