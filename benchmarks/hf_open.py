"""Issue 13's open-and-preview target for Hugging Face checkpoints, against same-run baselines.

    PYTHONPATH=. /work/main/.venv/bin/python benchmarks/hf_open.py [--layers N] [--workdir DIR]

Writes a LLaMA-7B-shaped checkpoint (291 tensors, 6.7B float16 values, 13.5 GB) twice in a
temporary folder — as sharded safetensors (5 GB shards + index, as save_pretrained cuts them)
and as a PyTorch `.bin` (torch.save's zip layout, written without torch) — then measures:
- open time, warm (best of 5) and cold (page cache dropped), target ≤ 0.3 s; the baseline is
  the bare minimum in the same run: reading and JSON-parsing the index and shard headers, or
  listing the zip and reading data.pkl (no validation, no unpickling);
- previewing the first tensors (embedding + 3 blocks) with int8 in a child process: its peak
  RSS against the largest tensor's float32 size and the checkpoint's size (bounded memory means
  a few tensors' worth, not the file).
With less free disk than needed, `--layers` is lowered and the table says "scaled".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "perf"))
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
from synth import llm_shapes  # noqa: E402
from synth_hf import write_sharded, write_torch_zip  # noqa: E402

from inspector.formats import open_model  # noqa: E402

TARGET_S = 0.3
PREVIEW_TENSORS = 1 + 9 * 3


def evict(paths: list[Path]) -> None:
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def best(fn, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def cold(fn, files: list[Path]) -> float:
    evict(files)
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def open_all(path: Path) -> int:
    with open_model(path) as m:
        return len(m)


def raw_index(folder: Path) -> None:
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    for shard in sorted(set(index["weight_map"].values())):
        with open(folder / shard, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            json.loads(fh.read(n))


def raw_zip(path: Path) -> None:
    with zipfile.ZipFile(path) as zf:
        zf.read(next(n for n in zf.namelist() if n.endswith("/data.pkl")))


def tensors(layers: int):
    """LLaMA-shaped float16 tensors of normal values, each a slice of one 320 MiB pool at a
    tensor-dependent offset (writing 13.5 GB is then disk-bound, not RNG-bound)."""
    pool = np.random.default_rng(0).standard_normal(160 << 20, dtype=np.float32)
    pool = (pool * np.float32(0.02)).astype(np.float16)
    ones = np.ones(1 << 16, dtype=np.float16)
    for i, (name, shape) in enumerate(llm_shapes(layers=layers)):
        n = int(np.prod(shape))
        if len(shape) == 1:
            yield name, ones[:n]
            continue
        start = (i * 7919 * 4096) % (pool.size - n + 1)
        yield name, pool[start : start + n].reshape(shape)


def preview_rss(path: Path, count: int) -> dict[str, float]:
    """Peak RSS of a child that opens `path` and previews its first `count` tensors (int8),
    after the first tensor (the largest, the embedding) and after all of them."""
    code = f"""
import json, resource
from inspector.core.preview import preview_tensor
from inspector.core.schemes import parse_scheme
from inspector.formats import open_model
from inspector.formats.registry import get_target
scheme, target = parse_scheme("int8"), get_target("safetensors")
def peak():  # this process's own high-water mark (ru_maxrss would count the parent's at fork)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
largest, first = 0, 0
with open_model({str(path)!r}) as m:
    for i, t in enumerate(m):
        if i >= {count}:
            break
        preview_tensor(t, scheme, target)
        largest = max(largest, t.info.size * 4)
        first = first or peak()
print(json.dumps({{"first": first, "peak": peak(), "largest_f32": largest}}))
"""
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def rss_line(what: str, rss: dict[str, float], size: int) -> None:
    mib = 2**20
    print(
        f"preview int8, first {PREVIEW_TENSORS} tensors of the {what}: peak RSS "
        f"{rss['first'] / mib:.0f} MiB after the first, {rss['peak'] / mib:.0f} MiB after all "
        f"(largest tensor as float32 {rss['largest_f32'] / mib:.0f} MiB; file(s) "
        f"{size / 2**30:.1f} GiB)",
        flush=True,
    )


def row(what: str, measured: float, baseline: float, ok: bool) -> None:
    verdict = "pass" if ok else "FAIL"
    print(f"| {what} | {measured * 1000:.0f} ms | {baseline * 1000:.1f} ms | "
          f"{measured / baseline:.1f}× | {verdict} |", flush=True)  # fmt: skip


def measure(what: str, path: Path, files: list[Path], raw, note: str) -> None:
    """Warm and cold open of `path` against `raw` (the bare header reads), then the preview's
    peak RSS."""
    n = open_all(path)
    warm = best(lambda: open_all(path))
    row(f"open {what}, {n} tensors, warm{note}", warm, best(lambda: raw(path)), warm <= TARGET_S)
    c = cold(lambda: open_all(path), files)
    row(f"open {what}, cold{note}", c, cold(lambda: raw(path), files), c <= TARGET_S)
    rss_line(what, preview_rss(path, PREVIEW_TENSORS), sum(f.stat().st_size for f in files))


def run(work: Path, layers: int, scaled: bool) -> None:
    folder, binary = work / "sharded", work / "pytorch_model.bin"
    folder.mkdir(exist_ok=True)
    t = time.perf_counter()
    files = write_sharded(folder, tensors(layers))
    size = sum(f.stat().st_size for f in files)
    print(f"wrote {len(files) - 1} shards, {size / 1e9:.1f} GB in {time.perf_counter() - t:.0f} s")
    note = f" (scaled: {layers} blocks)" if scaled else ""
    print("| case | measured | baseline | ratio | ≤ 0.3 s |\n|---|---|---|---|---|")
    measure("sharded safetensors", folder, files, raw_index, note)
    shutil.rmtree(folder)
    write_torch_zip(binary, tensors(layers))
    measure("PyTorch .bin", binary, [binary], raw_zip, note)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=32, help="decoder blocks (32: LLaMA-7B)")
    ap.add_argument("--workdir", type=Path, help="where to write (default: a temporary folder)")
    args = ap.parse_args()
    base = args.workdir or Path(tempfile.gettempdir())
    per_layer = 2 * (4 * 4096 * 4096 + 3 * 4096 * 11008)
    need = lambda n: 2 * 32000 * 4096 * 2 + n * per_layer  # noqa: E731
    layers = args.layers
    free = shutil.disk_usage(base).free
    while layers > 1 and 2 * need(layers) * 1.1 > free:  # shards and .bin coexist briefly
        layers //= 2
    work = Path(tempfile.mkdtemp(prefix="hf_open.", dir=base))
    try:
        run(work, layers, layers != args.layers)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
