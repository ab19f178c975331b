"""Issue 17's whole-process figures, each against a baseline measured in the same run.

    python benchmarks/perf/startup.py [--runs N] [--workdir DIR] [--window] [--big]

- `info` of the 0.44 GB BERT-like safetensors file vs `python -c "import numpy"` (≤ 2×);
- `preview --scheme uint8 --json` of that 110M model vs the naive numpy reference process
  (benchmarks/perf/naive.py; ≥ 8× faster), with numba's cache cold (an empty NUMBA_CACHE_DIR:
  the run uses numpy alone) and warm (after `quant-inspector warmup` into that folder);
- `--window`: command → first paint of the window with the tensor list vs a bare PySide6 +
  pyqtgraph window (≤ 1.5×), both offscreen (benchmarks/perf/first_paint.py);
- `--big`: the 7B-shaped bf16 file (13.5 GB, written into --workdir, deleted afterwards):
  uint8 preview (≤ 1.5×) and safetensors export (≤ 2.5×) vs a plain sequential read of the
  file, each cold (pages dropped with posix_fadvise) and warm, with the child's peak RSS.

Every figure is the median of --runs whole processes, interleaved with its baseline so load
changes hit both; the load average is printed before and after. The machine is shared: the
ratios measured in one run are what count.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

ROWS: list[tuple[str, str, str, str, str]] = []
ENV = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
ENV.pop("QUANT_INSPECTOR_NO_JIT", None)
CLI = [sys.executable, "-m", "inspector"]


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Wall seconds of one whole process (stdout discarded); raises when it fails."""
    t = time.perf_counter()
    res = subprocess.run(argv, env=env or ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {res.stderr.decode()[-400:]}")
    return dt


def medians(runs: int, cases: dict[str, tuple[list[str], dict[str, str] | None]]) -> dict:
    """Median wall time of each case over `runs` rounds; the cases alternate inside a round."""
    got: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(runs):
        for name, (argv, env) in cases.items():
            got[name].append(timed(argv, env))
    return {k: statistics.median(v) for k, v in got.items()}


def row(
    what: str,
    measured: float,
    base_name: str,
    base: float,
    limit: str,
    ok: bool,
    faster: bool = False,
) -> None:
    """One result; `faster`: the ratio is baseline ÷ measured (how many times faster)."""
    ratio = f"{base / measured:.1f}× faster" if faster else f"{measured / base:.2f}×"
    verdict = limit + (" pass" if ok else " FAIL")
    ROWS.append((what, f"{measured:.2f} s", f"{base_name} {base:.2f} s", ratio, verdict))
    print(f"  {what}: {measured:.3f} s | {base_name} {base:.3f} s | {ratio}", flush=True)


def cli_rows(work: Path, runs: int, preview: bool = True) -> None:
    from synth import bert_shapes, write_safetensors

    st = work / "bert12.safetensors"
    if not st.exists():
        write_safetensors(st, list(bert_shapes()))
    numpy_cmd = [sys.executable, "-c", "import numpy"]
    m = medians(runs, {"numpy": (numpy_cmd, None), "info": ([*CLI, "info", str(st)], None)})
    row(
        "info 0.44 GB safetensors",
        m["info"],
        "import numpy",
        m["numpy"],
        "≤ 2×",
        m["info"] <= 2 * m["numpy"],
    )

    if not preview:
        return
    cache = Path(tempfile.mkdtemp(prefix="qi-numba-"))
    cold = dict(ENV, NUMBA_CACHE_DIR=str(cache))
    preview = [*CLI, "preview", str(st), "--scheme", "uint8", "--json"]
    naive = [sys.executable, str(HERE / "naive.py"), str(st)]
    try:
        m = medians(runs, {"naive": (naive, None), "cold": (preview, cold)})
        assert not any(cache.rglob("*.nbi")), "a one-shot run compiled"
        speed = m["naive"] / m["cold"]
        row(
            "preview uint8 110M, JIT cache cold",
            m["cold"],
            "naive",
            m["naive"],
            "≥ 8×",
            speed >= 8,
            faster=True,
        )
        t = time.perf_counter()
        subprocess.run([*CLI, "warmup", "--no-measure"], env=cold, check=True, capture_output=True)
        print(f"  warmup (compile all kernels): {time.perf_counter() - t:.1f} s")
        m = medians(runs, {"naive": (naive, None), "warm": (preview, cold)})
        speed = m["naive"] / m["warm"]
        row(
            "preview uint8 110M, JIT cache warm",
            m["warm"],
            "naive",
            m["naive"],
            "≥ 8×",
            speed >= 8,
            faster=True,
        )
        nojit = dict(ENV, QUANT_INSPECTOR_NO_JIT="1")
        m = medians(runs, {"naive": (naive, None), "nojit": (preview, nojit)})
        row(
            "preview uint8 110M, QUANT_INSPECTOR_NO_JIT=1",
            m["nojit"],
            "naive",
            m["naive"],
            "info",
            True,
            faster=True,
        )
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def window_rows(work: Path, runs: int) -> None:
    from synth import bert_shapes, write_safetensors

    st = work / "bert12.safetensors"
    if not st.exists():
        write_safetensors(st, list(bert_shapes()))
    probe = HERE / "first_paint.py"
    cases = {
        "bare": [sys.executable, str(probe), "--bare"],
        "app": [sys.executable, str(probe), str(st)],
        "full": [sys.executable, str(probe), "--full", str(st)],
    }
    got: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(runs):
        for name, argv in cases.items():
            res = subprocess.run(argv, env=ENV, capture_output=True, text=True, check=True)
            got[name].append(float(res.stdout.split()[-1]))
    b, a, f = (statistics.median(got[k]) for k in ("bare", "app", "full"))
    bare_name = "bare PySide6+pyqtgraph window"
    row("window: command → first paint with tensor list", a, bare_name, b, "≤ 1.5×", a <= 1.5 * b)
    row("window: command → full window painted", f, bare_name, b, "info", True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workdir", type=Path, help="keep generated models here (reused)")
    ap.add_argument("--window", action="store_true", help="add the window's first paint")
    ap.add_argument("--big", action="store_true", help="add the 7B bf16 case (13.5 GB)")
    ap.add_argument("--only", choices=("cli", "info", "window", "big"), help="run one part")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="qi-startup-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()}; {args.runs} runs, medians")
    try:
        if args.only in (None, "cli", "info"):
            cli_rows(work, args.runs, preview=args.only != "info")
        if args.window or args.only == "window":
            window_rows(work, args.runs)
        if args.big or args.only == "big":
            from big import big_rows

            big_rows(work, args.runs, ROWS)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nload after: {os.getloadavg()}")
    print("| what (whole process) | measured | baseline, same run | ratio | target |")
    print("|---|---|---|---|---|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")
    return 0 if all("FAIL" not in r[4] for r in ROWS) else 1


if __name__ == "__main__":
    sys.exit(main())
