"""A 7B GGUF through llama-quantize and through our CLI export, same machine, same run (issue 13:
our Q4_K export of a 7B F16 GGUF at most 1.5x llama-quantize's time).

Run: PYTHONPATH=. python benchmarks/gguf_7b.py --workdir /work/bench-data [--ftype Q4_K_M]
     [--repeat 1] [--keep]
Needs llama-quantize ($LLAMA_BIN, default /work/tools/build/bin) and the gguf package.

Input: a synthetic F16 GGUF with LLaMA-2-7B's tensor names, shapes and hyper-parameters
(291 tensors, 6.74B values, 13.5 GB; F16 matrices of Student-t(5)·0.02 values with a few
large columns, F32 norms), written by gguf-py in llama-quantize's tensor order. Timed, wall
clock and CPU (user+sys of the child, from wait4), alternately:
- `llama-quantize IN OUT FTYPE` (its default threads: every core);
- `python -m inspector export IN -o OUT --plan PLAN` with PLAN the file type as a plan
  (`inspector.formats.gguf.presets.mixture_plan`, made before the timing; its own time is
  printed) — a fresh process, so the time includes Python's start and the imports.
Then every tensor's bytes are compared by name, and the files deleted (unless --keep).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BIN = Path(os.environ.get("LLAMA_BIN", "/work/tools/build/bin"))
ROOT = Path(__file__).resolve().parents[1]
DIM, FF, VOCAB, LAYERS = 4096, 11008, 32000, 32
BLOCK = {  # name: row-major shape (rows, ne0)
    "attn_q.weight": (DIM, DIM),
    "attn_k.weight": (DIM, DIM),
    "attn_v.weight": (DIM, DIM),
    "attn_output.weight": (DIM, DIM),
    "ffn_gate.weight": (FF, DIM),
    "ffn_up.weight": (FF, DIM),
    "ffn_down.weight": (DIM, FF),
    "attn_norm.weight": (DIM,),
    "ffn_norm.weight": (DIM,),
}


def llama7b_tensors() -> list[tuple[str, tuple[int, ...]]]:
    """LLaMA-2-7B's GGUF tensors in llama-quantize's order (block number, then name)."""
    top = {
        "token_embd.weight": (VOCAB, DIM),
        "output.weight": (VOCAB, DIM),
        "output_norm.weight": (DIM,),
    }
    out = sorted(top.items())
    for i in range(LAYERS):
        out += sorted((f"blk.{i}.{n}", s) for n, s in BLOCK.items())
    return out


def make_input(path: Path) -> int:
    """Write the F16 GGUF; returns its number of values."""
    import gguf

    rng = np.random.default_rng(0)
    base = (rng.standard_t(5, VOCAB * DIM) * 0.02).astype(np.float16)
    base[:: DIM * 37] *= 8  # a few large weights, as trained LLMs have
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("synthetic llama-2-7b shapes")
    w.add_context_length(4096)
    w.add_embedding_length(DIM)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FF)
    w.add_rope_dimension_count(128)
    w.add_head_count(32)
    w.add_head_count_kv(32)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(VOCAB)
    w.add_file_type(1)
    tensors = llama7b_tensors()
    for name, shape in tensors:
        dtype = np.float16 if len(shape) == 2 else np.float32
        n = int(np.prod(shape))
        w.add_tensor_info(name, shape, np.dtype(dtype), n * np.dtype(dtype).itemsize)
    w.write_header_to_file(path)
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    total = 0
    for k, (_name, shape) in enumerate(tensors):
        n = int(np.prod(shape))
        total += n
        if len(shape) == 1:
            w.write_tensor_data((1 + 0.1 * rng.standard_normal(n)).astype(np.float32))
            continue
        start = (k * 7_654_321) % (base.size - n + 1)
        w.write_tensor_data(base[start : start + n].reshape(shape))
    w.close()
    return total


def timed(cmd: list[str], log: Path) -> dict[str, float]:
    """Wall seconds, CPU seconds (user+sys) and peak RSS (GB) of one child process."""
    t0 = time.perf_counter()
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"{cmd[0]} failed ({status}); see {log}")
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss_gb": ru.ru_maxrss / 2**20}


def compare(ours: Path, theirs: Path) -> tuple[int, int, list[str]]:
    """(tensors with equal type and bytes, tensors, names that differ)."""
    import gguf

    mine = {t.name: t for t in gguf.GGUFReader(str(ours)).tensors}
    diff: list[str] = []
    ref = gguf.GGUFReader(str(theirs)).tensors
    for t in ref:
        o = mine.get(t.name)
        if o is None or o.tensor_type != t.tensor_type or o.data.tobytes() != t.data.tobytes():
            diff.append(t.name)
    return len(ref) - len(diff), len(ref), diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/work/bench-data"))
    parser.add_argument("--ftype", default="Q4_K_M")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the files")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    src = work / "llama7b_f16.gguf"
    if not src.exists():
        t0 = time.perf_counter()
        n = make_input(src)
        print(f"wrote {src} ({n / 1e9:.2f}B values, {src.stat().st_size / 1e9:.2f} GB) "
              f"in {time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    plan, ref_out, our_out = work / "plan.json", work / "llama.gguf", work / "ours.gguf"
    py = sys.executable
    t_plan = timed([py, "-m", "inspector.formats.gguf.presets", str(src), args.ftype,
                    "-o", str(plan)], work / "plan.log")  # fmt: skip
    print(f"plan {args.ftype}: {t_plan['wall']:.1f} s", flush=True)
    runs: dict[str, list[dict[str, float]]] = {"llama": [], "ours": []}
    for _ in range(args.repeat):  # alternately, so both meet the same machine load
        runs["llama"].append(timed([str(BIN / "llama-quantize"), str(src), str(ref_out),
                                    args.ftype], work / "llama.log"))  # fmt: skip
        print(f"  llama-quantize {runs['llama'][-1]}", flush=True)
        runs["ours"].append(timed([py, "-m", "inspector", "export", str(src), "-o", str(our_out),
                                   "--plan", str(plan), "--force"], work / "ours.log"))  # fmt: skip
        print(f"  ours           {runs['ours'][-1]}", flush=True)
    best = {k: min(v, key=lambda r: r["wall"]) for k, v in runs.items()}
    equal, total, diff = compare(our_out, ref_out)
    sizes = {k: p.stat().st_size for k, p in (("llama", ref_out), ("ours", our_out))}
    result = {
        "ftype": args.ftype,
        "input_bytes": src.stat().st_size,
        "llama": best["llama"],
        "ours": best["ours"],
        "ratio_wall": best["ours"]["wall"] / best["llama"]["wall"],
        "ratio_cpu": best["ours"]["cpu"] / best["llama"]["cpu"],
        "sizes": sizes,
        "tensors_equal": equal,
        "tensors": total,
        "differ": diff[:10],
        "load": os.getloadavg(),
    }
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if not args.keep:
        for p in (src, plan, ref_out, our_out, work / "ours.llama-quantize.txt"):
            p.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
