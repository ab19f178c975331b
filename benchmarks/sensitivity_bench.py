"""Sensitivity analysis: the old full forward pass per unit against the resumed pass, measured
in the same run, plus how long cancelling takes (issue 16).

    python benchmarks/sensitivity_bench.py [MODEL] [--samples N] [--old-units K]

Default model: the demo models, then MobileNetV2 from ../shared/models when present. For each:
- sensitivity at uint8, per layer, mode "only", on fresh evaluators (decoded tensors are
  quantized in every run): every unit run from the inputs (the behaviour before issue 16),
  resumed from the cached float pass (metrics must be identical), and resumed with tensors
  whose uint8 values equal their stored values skipped (an already-quantized input: this is
  where MobileNetV2-u8 gains most, and the reason it is reported apart);
- `--old-units K` times the old path on its first K units and extrapolates (each old unit is
  one whole forward pass, so its cost does not depend on which unit it is), for models where
  the full old run takes tens of minutes;
- cancel latency: a worker thread drains the analysis with a cancel check between items, the
  flag is set mid-run, and the time until the worker stops is recorded; the old figure is one
  whole forward pass at the old batch size (256), its cancellation unit.
Ratios are what to compare across machines.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

from inspector.engine.evaluate import Evaluator, drain
from inspector.engine.sensitivity import SensitivityRow, iter_sensitivity_progress, units
from inspector.formats import open_model

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT / "resources"
DEMOS = [RES / n / "tfjs" / "model.json" for n in ("digits_convnet", "digits_depthwise")]
MOBILENET = ROOT.parent / "shared" / "models" / "tfjs-layers-nsfwjs-mobilenet_v2-u8" / "model.json"


def _fresh(model, full: Evaluator, samples: int) -> Evaluator:
    ev = Evaluator(model, full.data.head(samples), full.runner, full.target)
    drain(ev.iter_original())
    return ev


def _cancel_latency(model, full: Evaluator, samples: int, after: float) -> float:
    """Seconds from setting the cancel flag (after `after` s of work) to the worker stopping."""
    ev = _fresh(model, full, samples)
    flag = threading.Event()
    stopped: list[float] = []

    def work() -> None:
        gen = iter_sensitivity_progress(ev, "uint8", "layer", "only")
        for _ in gen:
            if flag.is_set():
                gen.close()
                break
        stopped.append(time.perf_counter())

    thread = threading.Thread(target=work)
    thread.start()
    time.sleep(after)
    asked = time.perf_counter()
    flag.set()
    thread.join()
    return stopped[0] - asked


def _without_skip(ev: Evaluator) -> Evaluator:
    """The evaluator as before issue 16: every decoded tensor counts as a change, even one
    that reproduces the stored values exactly."""
    ev.alters = ev.decoded  # type: ignore[method-assign]
    return ev


def _timed(ev: Evaluator, resume: bool, limit: int | None = None) -> tuple[float, list]:
    """Seconds for sensitivity (uint8, per layer, "only") and its rows; with `limit`, stop
    after that many rows."""
    rows: list[SensitivityRow] = []
    t0 = time.perf_counter()
    gen = iter_sensitivity_progress(ev, "uint8", "layer", "only", resume=resume)
    for item in gen:
        if isinstance(item, SensitivityRow):
            rows.append(item)
            if limit is not None and len(rows) >= limit:
                gen.close()
                break
    return time.perf_counter() - t0, rows


def bench(path: Path, samples: int, old_units: int | None) -> None:
    with open_model(path) as model:
        full = Evaluator.open(model)
        n_units = len(units(full, "layer"))
        ev = _fresh(model, full, samples)
        batch = ev.step_batch(ev.runner)
        t0 = time.perf_counter()
        drain(ev.iter_run({}))
        forward = time.perf_counter() - t0
        t0 = time.perf_counter()
        full.runner.run(list(ev.data.inputs), batch_size=256)
        old_cancel = time.perf_counter() - t0

        limit = old_units if old_units and old_units < n_units else None
        old, old_rows = _timed(_without_skip(_fresh(model, full, samples)), False, limit)
        old *= n_units / len(old_rows)
        resumed, resumed_rows = _timed(_without_skip(_fresh(model, full, samples)), True)
        skipped, skipped_rows = _timed(_fresh(model, full, samples), True)
        by_unit = {r.unit: r.metrics for r in resumed_rows}
        same = all(by_unit[r.unit] == r.metrics for r in old_rows)
        by_unit = {r.unit: r.metrics.noise_energy for r in skipped_rows}
        same_skip = all(by_unit[r.unit] == r.metrics.noise_energy for r in resumed_rows)
        latency = max(_cancel_latency(model, full, samples, a) for a in (0.5, 2.0))
    how = "" if limit is None else f", extrapolated from the first {len(old_rows)} units"
    print(
        f"{path.parent.name}/{path.name}: {samples} samples ({batch} per batch), {n_units} "
        f"units, one forward {forward:.2f} s\n"
        f"  sensitivity, old full forward per unit: {old:.1f} s{how}\n"
        f"  resumed from the cached float pass:      {resumed:.1f} s = {old / resumed:.1f}x "
        f"faster (identical metrics: {same})\n"
        f"  resumed, unchanged tensors skipped:      {skipped:.1f} s = {old / skipped:.1f}x "
        f"faster (same noise: {same_skip})\n"
        f"  cancel latency: worst {1e3 * latency:.0f} ms (old: one forward at batch 256, "
        f"{1e3 * old_cancel:.0f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--old-units", type=int, default=None)
    args = parser.parse_args()
    paths = [Path(args.model)] if args.model else [*DEMOS] + ([MOBILENET] * MOBILENET.exists())
    for path in paths:
        bench(path, args.samples, args.old_units)


if __name__ == "__main__":
    main()
