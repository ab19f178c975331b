"""The two real third-party ONNX files of ../shared/models (README there): every scheme × every
ONNX-storable layout exports, passes the full checker, runs in ONNX Runtime on probes and equals
the tool's own evaluate, with the written size predicted exactly (tests/onnx/fidelity.py).

- rapidocr: Paddle2ONNX, opset 11, IR 7, all 308 weights in Constant nodes (so int8 per channel
  and int4 use the Cast/Mul fallbacks, bfloat16 the exponent tables), biases as Reshape + Add,
  BatchNormalization, Clip(0, 6) bounds, hard-swish constants;
- pitch: tf2onnx, opset 15 + ai.onnx.ml, front-end float initializers (Pad values, Mul/Add
  constants, an Equal/Where zero), shared Conv weights; int4/uint16 need the fallbacks.

CI runs a sample of the matrix (`CI_SCHEMES`); `QI_ONNX_FULL_MATRIX=1` runs all of
`ALL_SCHEMES` on both files (dev time, a few minutes).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from inspector.core.plan import Plan
from inspector.formats.onnx.reader import read_onnx
from tests.onnx.fidelity import check_export

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "models"
FILES = {
    "rapidocr": SHARED / "onnx-rapidocr-cls-v2" / "ch_ppocr_mobile_v2.0_cls_infer.onnx",
    "pitch": SHARED / "onnx-basic-pitch-nmp" / "nmp.onnx",
}
PROBES = {"rapidocr": (2, 3, 48, 192), "pitch": (1, 43844, 1)}
ALL_SCHEMES = (
    # floats
    "float16",
    "bfloat16",
    "float16:sparsity=0.3",
    "float32:sparsity=0.5",
    # per tensor (affine, TF.js rule), natively stored or baked to uint8/uint16
    "uint8",
    "uint16",
    *(f"affine{n}" for n in (2, 3, 4, 5, 6, 7, 8, 10, 12, 16)),
    "uint8:clip=mse",
    "uint8:sparsity=0.5",
    "affine4:clip=percentile:99.9",
    # per channel
    "int8",
    "int8:axis=1",
    "int8:clip=mse",
    "int8:clip=percentile:99.9",
    "int8:sparsity=0.5",
    # blocked
    "int4",
    "int4:group=8",
    "int4:group=16",
    "int4:group=64",
    "int4:group=128",
    "int4:axis=1,group=16",
    "int4:clip=mse",
    "int4:sparsity=0.3",
    # palettes (baked)
    *(f"kmeans{n}" for n in (1, 2, 4, 8)),
    "mixed",
)
CI_SCHEMES = {
    "rapidocr": ("int8", "int4", "bfloat16", "uint8", "mixed"),
    "pitch": ("int4:group=8", "int8:axis=1", "uint16", "float16", "kmeans3", "mixed"),
}
FULL = os.environ.get("QI_ONNX_FULL_MATRIX") == "1"
CASES = [(name, spec) for name in FILES for spec in (ALL_SCHEMES if FULL else CI_SCHEMES[name])]


def _plan(path: Path, spec: str) -> Plan:
    """`spec` as the default, or "mixed": int4 groups of 16 by default, uint8 overrides on the
    first five tensors an override may quantize (biases, normalization), int8 overrides on the
    first three structural ones (refused: they stay float)."""
    if spec != "mixed":
        return Plan(default=spec)
    with read_onnx(path) as model:
        kept = [t.info for t in model if t.info.is_float and t.info.kept]
    soft = [i.name for i in kept if i.kept_overridable][:5]
    hard = [i.name for i in kept if not i.kept_overridable][:3]
    assert soft and hard
    return Plan(default="int4:group=16").with_overrides(soft, "uint8").with_overrides(hard, "int8")


@pytest.mark.parametrize(("name", "spec"), CASES)
def test_real_onnx_export_equals_evaluate(name: str, spec: str, tmp_path: Path) -> None:
    path = FILES[name]
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    x = np.random.default_rng(0).normal(0, 0.3, PROBES[name]).astype(np.float32)
    checked = check_export(path, _plan(path, spec), [x], tmp_path / f"{name}.onnx")
    assert checked.quantized >= {"rapidocr": 54, "pitch": 9}[name]


@pytest.mark.parametrize("name", list(FILES))
def test_real_onnx_weights_and_kept_tensors(name: str) -> None:
    """Exactly the Conv/MatMul weights are weights; every other float tensor says why not."""
    path = FILES[name]
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    with read_onnx(path) as model:
        floats = [t.info for t in model if t.info.is_float]
    weights = [i for i in floats if i.kept is None]
    ops = {i.layer.rsplit("(", 1)[-1] for i in weights}
    assert ops == ({"Conv)", "MatMul)"} if name == "rapidocr" else {"Conv)"})
    assert len(weights) == {"rapidocr": 54, "pitch": 9}[name]
    assert all(i.channel_axis is not None for i in weights)
    reasons = {i.kept for i in floats if i.kept}
    if name == "rapidocr":
        assert "Clip min: not a weight" in reasons
        assert "BatchNormalization var: normalization, not a weight" in reasons
        assert "bias added to a Conv output: not a weight" in reasons
    else:
        assert "Conv bias: not a weight" in reasons
        assert any(r.startswith("Equal operand") for r in reasons)
