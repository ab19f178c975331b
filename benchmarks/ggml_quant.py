"""Q4_K encoding time of inspector.core.ggml.quant against llama-quantize on the same F16 data,
measured in the same run (issue 13's target: at most 1.5x llama-quantize's time).

Run: python benchmarks/ggml_quant.py [--gb 1.0] [--type Q4_K] [--repeat 2] [--workdir DIR]
Needs llama-quantize ($LLAMA_BIN, default /work/tools/llbuild/bin) and the gguf package.
Writes an F16 GGUF of `--gb` GB (4096-wide matrices of LLM-like weights), then times
- llama-quantize --pure IN OUT TYPE (its default thread count: all cores), wall clock;
- ours: each tensor memory-mapped, widened to float32, `quantize(…, threads=2)`, the bytes
  written to one file, wall clock;
alternately (`--repeat` times each, best of them), and checks that every tensor's bytes are equal.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from inspector.core.ggml.quant import quantize

BIN = Path(os.environ.get("LLAMA_BIN", "/work/tools/llbuild/bin"))


def make_input(path: Path, gb: float) -> int:
    """An F16 llama-shaped GGUF of about `gb` GB; returns its number of values."""
    import gguf

    rng = np.random.default_rng(0)
    n_tensors = max(1, round(gb * 2**30 / (2 * 4096 * 4096)))
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(n_tensors)
    for key, value in (("context_length", 128), ("embedding_length", 4096)):
        getattr(w, f"add_{key}")(value)
    w.add_feed_forward_length(4096)
    w.add_head_count(32)
    w.add_head_count_kv(8)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(1)
    base = (rng.standard_t(5, (4096, 4096)) * 0.02).astype(np.float16)
    for i in range(n_tensors):
        w.add_tensor(f"blk.{i}.ffn_up.weight", np.roll(base, 17 * i, axis=1))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return n_tensors * 4096 * 4096


def ours(src: Path, out: Path, type_name: str) -> float:
    import gguf

    t0 = time.perf_counter()
    reader = gguf.GGUFReader(str(src))
    with open(out, "wb") as fh:
        for t in reader.tensors:
            rows = np.asarray(t.data).astype(np.float32)
            fh.write(quantize(rows, type_name, threads=2).tobytes())
    return time.perf_counter() - t0


def llama(src: Path, out: Path, type_name: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [str(BIN / "llama-quantize"), "--pure", str(src), str(out), type_name.upper()],
        check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - t0


def same_bytes(ours_path: Path, llama_path: Path) -> bool:
    import gguf

    mine = np.fromfile(ours_path, dtype=np.uint8)
    pos = 0
    reader = gguf.GGUFReader(str(llama_path))
    for t in sorted(reader.tensors, key=lambda t: int(t.name.split(".")[1])):
        raw = np.asarray(t.data).reshape(-1).view(np.uint8)
        if not np.array_equal(mine[pos : pos + raw.size], raw):
            return False
        pos += raw.size
    return pos == mine.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--type", default="q4_k")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        src = work / "in_f16.gguf"
        n = make_input(src, args.gb)
        quantize(np.zeros((1, 256), np.float32), args.type)  # compile / load outside the timing
        ref_out, our_out = work / "llama.gguf", work / "ours.bin"
        print(f"{args.type} on {n / 1e6:.0f}M F16 values ({src.stat().st_size / 1e9:.2f} GB)")
        times: dict[str, list[float]] = {"llama": [], "ours": []}
        for _ in range(args.repeat):  # interleaved, so both see the same machine load
            times["llama"].append(llama(src, ref_out, args.type))
            times["ours"].append(ours(src, our_out, args.type))
            print(
                f"  llama-quantize {times['llama'][-1]:6.2f} s   ours {times['ours'][-1]:6.2f} s",
                flush=True,
            )
        t_llama, t_ours = min(times["llama"]), min(times["ours"])
        equal = same_bytes(our_out, ref_out)
        print(
            f"llama-quantize {t_llama:6.2f} s   ours {t_ours:6.2f} s   "
            f"ratio {t_ours / t_llama:.2f}x (target <= 1.5x)   bytes equal: {equal}"
        )
        if args.keep:
            print(f"files kept in {work}")
            input("press enter to delete them")


if __name__ == "__main__":
    main()
