"""The 7B case of benchmarks/perf/startup.py (`--big`): near the disk's speed?

A LLaMA-7B-shaped bf16 safetensors file (13.5 GB, benchmarks/perf/synth.py) is read plainly
(4 MiB `readv`s in a fresh process, like `dd bs=4M`), previewed (`preview --scheme uint8
--json`) and exported (`export --scheme uint8 --format safetensors`), each as a whole process:
first cold (the file's pages dropped with `posix_fadvise(DONTNEED)` just before; the machine
has no drop_caches), then warm (right after a plain read put the file in the page cache, when
it fits). Targets: preview ≤ 1.5× and export ≤ 2.5× the plain read of the same state, the
child's own peak RSS (`wait4`) bounded as before (README: 1.65 GB).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
READ = """
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
buf = memoryview(bytearray(4 << 20))
while os.readv(fd, [buf]):
    pass
"""


def evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def run(argv: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes) of one child process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    dt = time.perf_counter() - t
    err = proc.stderr.read().decode() if proc.stderr else ""
    if status != 0:
        raise RuntimeError(f"{' '.join(argv)}: {err[-400:]}")
    return dt, usage.ru_maxrss * 1024


def big_rows(work: Path, runs: int, rows: list) -> None:
    sys.path.insert(0, str(HERE))
    from synth import llm_shapes, write_safetensors

    big = work / "llm7b-bf16.safetensors"
    made = not big.exists()
    if made:
        t = time.perf_counter()
        write_safetensors(big, list(llm_shapes()), "bfloat16")
        print(f"  wrote {big.stat().st_size / 1e9:.1f} GB in {time.perf_counter() - t:.0f} s")
    out = work / "llm7b-uint8.safetensors"
    cli = [sys.executable, "-m", "inspector"]
    read = [sys.executable, "-c", READ, str(big)]
    preview = [*cli, "preview", str(big), "--scheme", "uint8", "--json"]
    export = [*cli, "export", str(big), "-o", str(out), "--scheme", "uint8", "--force"]
    export += ["--format", "safetensors"]
    try:
        for state in ("cold", "warm"):
            for _ in range(runs):
                got = {}
                for name, argv in (("read", read), ("preview", preview), ("export", export)):
                    if state == "cold":
                        evict(big)
                    else:
                        run(read)
                    got[name] = run(argv)
                    out.unlink(missing_ok=True)
                    print(f"  7B {state} {name}: {got[name][0]:.1f} s, peak RSS "
                          f"{got[name][1] / 1e9:.2f} GB, load {os.getloadavg()[0]:.1f}",
                          flush=True)  # fmt: skip
                base = got["read"][0]
                for name, limit in (("preview", 1.5), ("export", 2.5)):
                    t, rss = got[name]
                    rows.append((
                        f"7B bf16 uint8 {name}, {state} (peak RSS {rss / 1e9:.2f} GB)",
                        f"{t:.1f} s",
                        f"plain read {base:.1f} s ({big.stat().st_size / base / 1e9:.2f} GB/s)",
                        f"{t / base:.2f}×",
                        f"≤ {limit}×" + (" pass" if t <= limit * base else " FAIL"),
                    ))  # fmt: skip
    finally:
        out.unlink(missing_ok=True)
        if made:
            big.unlink(missing_ok=True)
