"""Sensitivity analysis time per layer on the demo models, as ratios of one evaluation pass.

Run: python benchmarks/sensitivity_bench.py. The baseline (one full evaluation of the uint8
plan on the bundled sample, original outputs already cached) is measured in the same run, so
the ratios compare like with like on whatever machine runs it.
"""

from __future__ import annotations

import time
from pathlib import Path

from inspector.core.plan import Plan
from inspector.engine.evaluate import Evaluator, drain
from inspector.engine.sensitivity import iter_sensitivity, units
from inspector.formats import open_model
from inspector.formats.registry import get_target

RES = Path(__file__).resolve().parents[1] / "resources"
MODELS = ["diabetes_mlp", "digits_convnet", "digits_depthwise"]


def bench(name: str) -> None:
    with open_model(RES / name / "tfjs" / "model.json") as model:
        ev = Evaluator.open(model, target=get_target("tfjs"))
        drain(ev.iter_original())
        t0 = time.perf_counter()
        ev.evaluate(Plan(default="uint8"))
        baseline = time.perf_counter() - t0
        n_layers = len(units(ev, "layer"))
        t0 = time.perf_counter()
        drain(iter_sensitivity(ev, "uint8", "layer", "only"))
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        drain(iter_sensitivity(ev, "uint8", "layer", "only"))
        cached = time.perf_counter() - t0
    per_layer = first / n_layers
    print(
        f"{name:18} {ev.data.samples:4d} samples {n_layers:3d} layers | one evaluation "
        f"{1e3 * baseline:7.1f} ms | per layer {1e3 * per_layer:7.1f} ms "
        f"({per_layer / baseline:4.2f}x an evaluation) | rerun (cached) "
        f"{1e3 * cached:6.2f} ms ({cached / first:.4f}x)"
    )


if __name__ == "__main__":
    for model_name in MODELS:
        bench(model_name)
