"""Rounding (`round=nearest|hqq|gptq`): quality on real models and time per layer.

Run: python benchmarks/rounding.py [--models digits_convnet,digits_depthwise,rapidocr,fer]
[--timing]

Quality: for each model and plan, the weight SQNR (all weights the plan changes) and the output
SQNR on held-out inputs, nearest vs HQQ vs GPTQ (natural and act order). The demo models
calibrate GPTQ on the first half of their `sample.npz` (225 images) and are measured on the
second half (225 images, with labels: accuracy too). The fer model (Keras 2.0.5, from
../shared/models) has no data here: seeded standard-normal probes, 128 to calibrate (seed 0)
and 128 others to measure (seed 1), so its numbers are output drift, not accuracy; the ONNX
text-direction classifier likewise on 64 + 64 blocky probes (`_text_probes`).

Timing: GPTQ per layer against nearest rounding of the same tensor measured in the same run
(the ratio is what travels between machines), and the Hessian pass against one plain forward
pass over the same calibration inputs. Prints Markdown tables (docs/rounding.md holds a run).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inspector.core.model import Tensor
from inspector.core.plan import Plan
from inspector.core.preview import run_preview
from inspector.core.schemes import parse_scheme
from inspector.core.target import NATIVE
from inspector.engine.eval_data import EvalData, synthetic_data
from inspector.engine.evaluate import Evaluator, make_executor
from inspector.engine.rounding import GptqRounding
from inspector.formats import open_model

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared" / "models").resolve()
ROUNDINGS = ("nearest", "hqq", "gptq", "gptq,order=act")


@dataclass(frozen=True)
class Case:
    """A model, its calibration inputs and held-out data, and the plans to measure."""

    name: str
    path: Path
    data: Callable[[object], tuple[tuple[np.ndarray, ...], EvalData]]
    plans: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...]  # (label, default, rules)


def _halves(name: str) -> Callable[[object], tuple[tuple[np.ndarray, ...], EvalData]]:
    def split(runner: object) -> tuple[tuple[np.ndarray, ...], EvalData]:
        with np.load(REPO / "resources" / name / "sample.npz") as z:
            x, y = z["x"], z["y"]
        half = len(x) // 2
        return (x[:half],), EvalData((x[half:],), y[half:], "file")

    return split


def _probes(runner: object) -> tuple[tuple[np.ndarray, ...], EvalData]:
    shapes = runner.input_shapes  # type: ignore[attr-defined]
    return synthetic_data(shapes, 128, seed=0).inputs, synthetic_data(shapes, 128, seed=1)


def _text_probes(runner: object) -> tuple[tuple[np.ndarray, ...], EvalData]:
    """Structured probes for the text-line classifier (3×48×192, values in [0, 1]): blocky
    like glyphs, since white noise gives GPTQ nothing to learn (a diagonal Hessian)."""

    def probes(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        coarse = rng.random((64, 3, 12, 48)).repeat(4, axis=2).repeat(4, axis=3)
        return (0.8 * coarse + 0.2 * rng.random((64, 3, 48, 192))).astype(np.float32)

    return (probes(0),), EvalData((probes(1),), None, "synthetic")


def _every(scheme: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    return (f"all tensors {scheme}", scheme, ())


CASES = {
    "digits_convnet": Case(
        "digits_convnet",
        REPO / "resources/digits_convnet/digits_convnet.h5",
        _halves("digits_convnet"),
        tuple(_every(s) for s in ("int4", "affine3", "affine4", "int8", "uint8")),
    ),
    "digits_depthwise": Case(
        "digits_depthwise",
        REPO / "resources/digits_depthwise/digits_depthwise.h5",
        _halves("digits_depthwise"),
        (
            *(_every(s) for s in ("int4", "affine3", "int8", "uint8")),
            ("affine3, depthwise kernels int8", "affine3", (("*_dw/depthwise_kernel*", "int8"),)),
        ),
    ),
    "rapidocr": Case(
        "rapidocr text-direction classifier (ONNX, weights in Constant nodes)",
        SHARED / "onnx-rapidocr-cls-v2/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        _text_probes,
        tuple(
            (f"weights {s}, rest float32", "float32", (("*_weights", s), ("fc_0.w_0", s)))
            for s in ("int4", "affine4", "uint8", "int8")
        ),
    ),
    "fer": Case(
        "fer (keras-h5-fer-emotion)",
        SHARED / "keras-h5-fer-emotion/emotion_model.hdf5",
        _probes,
        (
            *(_every(s) for s in ("int4", "affine4", "int8", "uint8")),
            *(
                (f"kernels {s}, rest float32", "float32", (("*kernel*", s),))
                for s in ("int4", "affine3", "affine4", "uint8")
            ),
        ),
    ),
}


def _with(spec: str, rounding: str) -> str:
    if rounding == "nearest" or spec == "float32":
        return spec
    return f"{spec}{',' if ':' in spec else ':'}round={rounding}"


def _plan(default: str, rules: tuple[tuple[str, str], ...], rounding: str) -> Plan:
    plan = Plan(default=_with(default, rounding))
    for pattern, spec in rules:
        plan = plan.with_rule(pattern, _with(spec, rounding))
    return plan


def _db(value: float) -> str:
    return "exact" if math.isinf(value) and value > 0 else f"{value:.2f}"


def quality(case: Case) -> None:
    with open_model(case.path) as model:
        runner = make_executor(model)
        calibration, held = case.data(runner)
        rounding = GptqRounding(model, calibration)
        target = NATIVE.with_rounding(rounding)
        ev = Evaluator(model, held, runner, target)
        print(f"\n### {case.name}\n")
        print("| plan | rounding | weight SQNR dB | output SQNR dB | accuracy |")
        print("|---|---|---:|---:|---:|")
        for label, default, rules in case.plans:
            for r in ROUNDINGS:
                plan = _plan(default, rules, r)
                weights = run_preview(model, plan, target).total["sqnr_db"]
                m = ev.evaluate(plan).metrics
                acc = "" if m.quantized_score is None else f"{m.quantized_score:.4f}"
                print(f"| {label} | {r} | {_db(weights)} | {_db(m.sqnr_db)} | {acc} |")


def _best(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of `repeat` calls (the machine is shared: the best is the least noisy)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _time_tensor(rounding: GptqRounding, tensor: Tensor) -> tuple[float, float, float]:
    """Seconds for int4 nearest rounding, GPTQ's codes (Hessian ready) and HQQ's encode."""
    values, axis = np.asarray(tensor.load(), np.float32), tensor.info.channel_axis
    plain, hqq = parse_scheme("int4"), parse_scheme("int4:round=hqq")
    enc = parse_scheme("int4:round=gptq").encode(values, channel_axis=axis)
    near = _best(lambda: plain.encode(values, channel_axis=axis))
    gptq = _best(lambda: rounding.compute(tensor, enc, values))
    return near, gptq, _best(lambda: hqq.encode(values, channel_axis=axis))


def timing(case: Case) -> None:
    from inspector.core import jit

    jit.wait()
    with open_model(case.path) as model:
        runner = make_executor(model)
        calibration, _ = case.data(runner)
        forward = _best(lambda: runner.run(list(calibration)))
        rounding = GptqRounding(model, calibration)
        rounding.captures()
        print(f"\n### {case.name}: {len(calibration[0])} calibration samples\n")
        print(
            f"Hessian pass {rounding.capture_seconds:.2f} s = "
            f"{rounding.capture_seconds / forward:.1f}x one forward pass ({forward:.2f} s)\n"
        )
        print("| tensor | shape | nearest ms | GPTQ ms | ratio | HQQ ms | ratio |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for tensor in model.weights:
            cap = rounding.captures().get(tensor.name)
            if cap is None or cap.view is None:
                continue
            near, gptq, tuned = _time_tensor(rounding, tensor)
            print(
                f"| {tensor.name} | {tensor.info.shape} | {1e3 * near:.2f} | {1e3 * gptq:.1f} "
                f"| {gptq / near:.0f}x | {1e3 * tuned:.1f} | {tuned / near:.0f}x |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(CASES))
    parser.add_argument("--timing", action="store_true", help="time per layer instead")
    args = parser.parse_args()
    for key in args.models.split(","):
        case = CASES[key]
        if not case.path.is_file():
            print(f"\n{case.name}: {case.path} is absent, skipped")
            continue
        (timing if args.timing else quality)(case)


if __name__ == "__main__":
    main()
