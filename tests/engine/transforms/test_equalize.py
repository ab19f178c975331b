"""Cross-layer equalization on real files: the float function is kept (exactly up to float
rounding through ReLU/identity; a measured change where ReLU6 caps are lifted), the ranges are
balanced, and the depthwise demo survives all-uint8 per tensor in its TF.js export."""

from __future__ import annotations

import json

import numpy as np
import pytest
from repair_helpers import DATA, DEPTHWISE, FER, RESOURCES, need, outputs, rel

from inspector.core.plan import Plan
from inspector.core.transform_spec import Transforms
from inspector.engine.evaluate import Evaluator, drain, make_executor
from inspector.engine.transforms import transform_model
from inspector.engine.transforms.equalize import equalize
from inspector.engine.transforms.fold_bn import fold_batch_norms
from inspector.engine.transforms.graph_pairs import LayerIndex, chains, find_links
from inspector.engine.transforms.workspace import Workspace
from inspector.formats import open_model
from inspector.formats.export import export_model

EQUALIZE = Transforms(equalize=True)


def _sample(name: str) -> tuple[np.ndarray, np.ndarray]:
    data = np.load(RESOURCES / name / "sample.npz")
    return data["x"].astype(np.float32), data["y"]


@pytest.mark.parametrize("name", ["digits_convnet", "diabetes_mlp"])
def test_relu_models_keep_their_outputs(name):
    x, _ = _sample(name)
    with open_model(RESOURCES / name / f"{name}.h5") as model:
        result = transform_model(model, EQUALIZE)
        assert result.chains and not result.lifted
        assert rel(outputs(result.model, x), outputs(model, x)) <= 1e-5


def test_fer_keeps_its_outputs():
    x = np.random.default_rng(0).uniform(0, 1, (8, 64, 64, 1)).astype(np.float32)
    with open_model(need(FER)) as model:
        result = transform_model(model, EQUALIZE)
        assert len(result.chains) == 5 and len(result.folds) == 14
        assert rel(outputs(result.model, x), outputs(model, x)) <= 1e-5


def test_chains_through_relu6_lift_the_caps_and_report_the_change():
    x, y = _sample("digits_depthwise")
    with open_model(DEPTHWISE / "digits_depthwise.h5") as model:
        lifted = transform_model(model, EQUALIZE)
        skipped = transform_model(model, Transforms(equalize=True, relu6="skip"))
        base = outputs(model, x)
        got = outputs(lifted.model, x)
        kept = outputs(skipped.model, x)
    assert next(c.layers for c in lifted.chains) == (
        "stem",
        "block1_dw",
        "block1_project",
        "block2_expand",
        "block2_dw",
        "block2_project",
    )
    assert len(lifted.lifted) == 10 and any("ReLU6" in n for n in lifted.notes)
    config = json.dumps(lifted.model.metadata["keras_config"])
    assert '"max_value": 6.0' not in config
    change = rel(got, base)
    assert 1e-5 < change < 0.5  # a real but small change of the float model
    assert np.mean(got.argmax(1) == y) >= 0.99
    # without lifting, only the linear project → expand pair is left, and nothing changes
    assert [c.layers for c in skipped.chains] == [("block1_project", "block2_expand")]
    assert rel(kept, base) <= 1e-5


def test_scales_balance_each_pair():
    """After the sweeps, L's output range and M's input range are equal per channel."""
    with open_model(RESOURCES / "digits_convnet" / "digits_convnet.h5") as model:
        ws = Workspace(model)
        records = equalize(ws)
        index = LayerIndex(ws.config, [ws.infos[n] for n in ws])
        for link in chains(find_links(index))[0]:
            r1 = link.first.out_absmax(ws)
            r2 = link.second.in_absmax(ws, link.channels)
            assert np.allclose(r1, r2, rtol=1e-4)
    assert records[0].sweeps > 1


def test_cls_alone_is_exact_on_the_bn_chain():
    """Scaling alone (no high-bias absorption, ReLU6 pairs skipped) is a pure reparametrization;
    the high-bias absorption moves the float output a little (3σ rule) and says where."""
    x = np.load(DATA / "bn_chain.npz")["x"]
    with open_model(DATA / "bn_chain_k2.h5") as model:
        want = outputs(model, x)
        ws = Workspace(model)
        fold_batch_norms(ws)
        records = equalize(ws, relu6="skip", absorb=False)
        assert [r.layers for r in records] == [("head", "fc", "probs")]
        assert rel(outputs(ws.build([]), x), want) <= 1e-5
        result = transform_model(model, Transforms(equalize=True, relu6="skip"))
        assert result.chains[0].absorbed == ("head", "fc")
        assert rel(outputs(result.model, x), want) < 0.05


def test_target_depthwise_all_uint8_per_tensor_in_its_tfjs_export(tmp_path):
    """Issue 15's target: ≥ 0.99 accuracy in the executor on the exported TF.js files (stock
    TF.js: tests/engine/transforms/check_repair_loaders.py, 0.9956 at dev time)."""
    x, y = _sample("digits_depthwise")
    plan = Plan(default="uint8", transforms=EQUALIZE)
    for source in (DEPTHWISE / "digits_depthwise.h5", DEPTHWISE / "tfjs" / "model.json"):
        out = tmp_path / source.suffix[1:]
        with open_model(source) as model:
            assert np.mean(outputs(model, x).argmax(1) == y) > 0.99
            export_model(transform_model(model, plan.transforms, plan).model, plan, "tfjs", out)
            plain = tmp_path / f"{source.suffix[1:]}_plain"
            export_model(model, Plan(default="uint8"), "tfjs", plain)
        doc = json.loads((out / "model.json").read_text())
        quant = [
            w.get("quantization", {}).get("dtype") for w in doc["weightsManifest"][0]["weights"]
        ]
        assert set(quant) == {"uint8"}
        with open_model(out / "model.json") as exported:
            assert np.mean(outputs(exported, x).argmax(1) == y) >= 0.99
        with open_model(plain / "model.json") as exported:
            assert np.mean(outputs(exported, x).argmax(1) == y) < 0.2  # the README's 0.1022


def test_evaluation_compares_with_the_untransformed_original():
    with open_model(DEPTHWISE / "digits_depthwise.h5") as model:
        result = transform_model(model, EQUALIZE)
        ev = Evaluator.open(result.model)
        ev.reference = make_executor(model)
        float_change = drain(ev.iter_measure({}))
        quantized = ev.evaluate(Plan(default="uint8")).metrics
    assert 20 < float_change.sqnr_db < 80 and float_change.top1_agreement > 0.99
    assert quantized.original_score == pytest.approx(0.9956, abs=1e-4)
    assert quantized.quantized_score >= 0.99 and quantized.sqnr_db > 20
