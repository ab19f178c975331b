"""Dev-time: the measured table of docs/repair.md (plan, bytes, accuracy / output SQNR, before
and after each repair). Not part of pytest; runs in the project's environment:

    PYTHONPATH=. python tests/engine/transforms/measure_repair.py [--quick]

Every number is the quantized model (weights as the TF.js export stores them) against the
ORIGINAL float model. Bias correction is fitted on one half of the data and every row of that
model is measured on the other half. `--quick` leaves out the nsfwjs MobileNetV2 (224×224,
slow in the numpy executor).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from check_repair_loaders import smooth_images  # noqa: E402

from inspector.core.plan import Plan  # noqa: E402
from inspector.core.preview import run_preview  # noqa: E402
from inspector.core.transform_spec import Transforms  # noqa: E402
from inspector.engine.arith import iter_arith  # noqa: E402
from inspector.engine.evaluate import EvalData, Evaluator, drain, make_executor  # noqa: E402
from inspector.engine.transforms import transform_model  # noqa: E402
from inspector.formats import open_model  # noqa: E402
from inspector.formats.registry import get_target  # noqa: E402

SHARED = REPO / ".." / "shared" / "models"
TFJS = get_target("tfjs")


def _cases(quick: bool) -> list[tuple[str, Path, np.ndarray, np.ndarray | None, list]]:
    res = REPO / "resources"
    out = []
    for name in ("digits_depthwise", "digits_convnet", "diabetes_mlp"):
        s = np.load(res / name / "sample.npz")
        plans = ["uint8", "affine4"] if name != "digits_depthwise" else ["uint8", "int8"]
        out.append((name, res / name / f"{name}.h5", s["x"].astype(np.float32), s["y"], plans))
    chain = np.load(HERE / "data" / "bn_chain.npz")["x"]
    out.append(("bn_chain fixture", HERE / "data" / "bn_chain_k2.h5", chain, None, ["uint8"]))
    fer = np.random.default_rng(0).uniform(0, 1, (64, 64, 64, 1)).astype(np.float32)
    out.append(
        (
            "fer mini-Xception",
            SHARED / "keras-h5-fer-emotion" / "emotion_model.hdf5",
            fer,
            None,
            ["uint8"],
        )
    )
    if not quick:
        nsfw = SHARED / "tfjs-layers-nsfwjs-mobilenet_v2-u8" / "model.json"
        out.append(("nsfwjs MobileNetV2", nsfw, smooth_images(16, 224, seed=0), None, ["uint8"]))
    return out


TRANSFORMS = [
    ("-", Transforms()),
    ("fold-bn", Transforms(fold_bn=True)),
    ("equalize", Transforms(equalize=True)),
    ("equalize + BC data-free", Transforms(equalize=True, bias_correction="data-free")),
    ("equalize + BC empirical", Transforms(equalize=True, bias_correction="empirical")),
]


def _row(model, label, transforms, spec, x, y, reference) -> str | None:
    n = len(x)
    fit, held = x[: n // 2], x[n // 2 :]
    plan = Plan(default=spec, transforms=transforms)
    result = transform_model(model, transforms, plan, TFJS, [fit])
    if (
        (transforms.fold_bn and not result.folds)
        or (transforms.equalize and not result.chains)
        or (transforms.bias_correction != "none" and not result.bias)
    ):
        return None  # the step would do nothing on this model
    data = EvalData((held,), None if y is None else y[n // 2 :], "file")
    ev = Evaluator(result.model, data, make_executor(result.model), TFJS, reference=reference)
    m = ev.evaluate(plan).metrics
    floats = drain(
        Evaluator(result.float_model, data, None, TFJS, reference=reference).iter_measure({})
    )
    size = run_preview(result.model, plan, TFJS).total["quantized_bytes"]
    score = "" if m.quantized_score is None else f"{m.metric} {m.quantized_score:.4f}"
    agree = "" if m.top1_agreement is None else f"{100 * m.top1_agreement:.1f} %"
    return (
        f"| {label} | {spec} | {transforms.describe() if transforms.any else '-'} | {size} | "
        f"{_db(floats.sqnr_db)} | {_db(m.sqnr_db)} | {agree} | {score} |"
    )


def _db(value: float) -> str:
    return "exact" if math.isinf(value) and value > 0 else f"{value:.1f} dB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    print(
        "| model | plan | transforms | TF.js bytes | float change | output SQNR "
        "| top-1 agree | score |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, path, x, y, specs in _cases(args.quick):
        with open_model(path) as model:
            reference = make_executor(model)
            for spec in specs:
                for _, transforms in TRANSFORMS:
                    line = _row(model, label, transforms, spec, x, y, reference)
                    if line:
                        print(line, flush=True)
    print()
    _arith_rows()
    return 0


def _arith_rows() -> None:
    print(
        "| model | plan | arithmetic | first overflow | overflow / underflow values "
        "| vs float32 arithmetic |"
    )
    print("|---|---|---|---|---|---|")
    res = REPO / "resources"
    cases = [
        ("digits_depthwise", res / "digits_depthwise" / "digits_depthwise.h5", None),
        ("digits_convnet", res / "digits_convnet" / "digits_convnet.h5", None),
        ("overflow fixture", HERE / "data" / "overflow_k2.h5", HERE / "data" / "overflow.npz"),
    ]
    for label, path, data in cases:
        with open_model(path) as model:
            ev = Evaluator.open(model, data)
            for spec in ("float32", "uint8"):
                for dtype in ("float16", "bfloat16"):
                    r = drain(iter_arith(ev, Plan(default=spec), dtype))
                    t = r.to_json()["total"]
                    print(
                        f"| {label} | {spec} | {dtype} | {r.first_overflow or '-'} | "
                        f"{t['overflow']} / {t['underflow']} | {_db(r.vs_float32.sqnr_db)} |"
                    )


if __name__ == "__main__":
    sys.exit(main())
