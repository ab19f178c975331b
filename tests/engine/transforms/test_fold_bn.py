"""Batch-norm folding on real Keras / TF.js files: float outputs kept, BN gone from the
topology of the transformed model and of every export, exports load again."""

from __future__ import annotations

import json
import zipfile

import h5py
import numpy as np
import pytest
from repair_helpers import DATA, FER, NSFW, need, outputs, rel

from inspector.core.plan import Plan
from inspector.core.preview import run_preview
from inspector.core.transform_spec import Transforms
from inspector.engine.transforms import transform_model
from inspector.formats import open_model
from inspector.formats.export import export_model
from inspector.formats.registry import get_target

FOLD = Transforms(fold_bn=True)
PLAN = Plan(transforms=FOLD)


def _classes(model) -> list[str]:
    config = model.metadata["keras_config"]["config"]
    layers = config if isinstance(config, list) else config["layers"]
    return [entry["class_name"] for entry in layers]


@pytest.fixture(scope="module")
def chain():
    return np.load(DATA / "bn_chain.npz")


@pytest.mark.parametrize(
    ("name", "key"), [("bn_chain_k2.h5", "y_k2"), ("bn_chain_k3.keras", "y_k3")]
)
def test_fold_keeps_outputs_and_removes_bn(chain, name, key):
    with open_model(DATA / name) as model:
        result = transform_model(model, FOLD)
        assert [r.layer for r in result.folds] == ["stem", "dw", "project", "head", "fc"]
        assert "BatchNormalization" not in _classes(result.model)
        assert not any("gamma" in t.name or "moving" in t.name for t in result.model)
        # every folded layer had no bias (fc had one): the four others gained one
        assert sum(r.added_bias is not None for r in result.folds) == 4
        got = outputs(result.model, chain["x"])
        assert rel(got, outputs(model, chain["x"])) <= 1e-5
        assert rel(got, chain[key]) <= 1e-5  # real Keras on the unfolded model


def test_fold_shows_the_range_blow_up(chain):
    """The depthwise channel whose input variance is ~0 is multiplied by γ/√ε by folding."""
    with open_model(DATA / "bn_chain_k2.h5") as model:
        record = next(r for r in transform_model(model, FOLD).folds if r.layer == "dw")
    doc = record.to_json()
    before, after = doc["before"]["channel_absmax"], doc["after"]["channel_absmax"]
    assert after[3] / before[3] > 100  # the dead channel
    assert doc["after"]["spread"] > 20 * doc["before"]["spread"]


def test_folded_h5_export_is_a_keras_file_without_bn(chain, tmp_path):
    out = tmp_path / "folded.h5"
    with open_model(DATA / "bn_chain_k2.h5") as model:
        folded = transform_model(model, FOLD).model
        predicted = run_preview(folded, PLAN, get_target("keras")).total["quantized_bytes"]
        export_model(folded, PLAN, "keras", out)
        want = outputs(model, chain["x"])
    assert out.stat().st_size == predicted
    with h5py.File(out, "r") as f:
        names = [n.decode() for n in f["model_weights"].attrs["layer_names"]]
        assert not any(n.endswith("_bn") for n in names)
        assert not any(k.endswith("_bn") for k in f["model_weights"])
        assert list(f["model_weights/stem"].attrs["weight_names"]) == [
            b"stem/kernel:0",
            b"stem/bias:0",
        ]
        assert "BatchNormalization" not in f.attrs["model_config"]
    with open_model(out) as again:
        assert rel(outputs(again, chain["x"]), want) <= 1e-5


def test_folded_keras3_export_regroups_weights(chain, tmp_path):
    out = tmp_path / "folded.keras"
    with open_model(DATA / "bn_chain_k3.keras") as model:
        export_model(transform_model(model, FOLD).model, PLAN, "keras", out)
    with zipfile.ZipFile(out) as z:
        config = json.loads(z.read("config.json"))
        assert "BatchNormalization" not in json.dumps(config)
    with open_model(out) as again:
        paths = again.metadata["h5_paths"]
        assert paths["stem/bias"] == "/layers/conv2d/vars/1"
        assert paths["probs/kernel"] == "/layers/dense_1/vars/0"
        assert not any("batch_normalization" in p for p in paths.values())
        assert rel(outputs(again, chain["x"]), chain["y_k3"]) <= 1e-5


def test_folded_tfjs_export_from_h5(chain, tmp_path):
    out = tmp_path / "tfjs"
    with open_model(DATA / "bn_chain_k2.h5") as model:
        export_model(transform_model(model, FOLD).model, PLAN, "tfjs", out)
    doc = json.loads((out / "model.json").read_text())
    assert "BatchNormalization" not in json.dumps(doc["modelTopology"])
    names = [w["name"] for w in doc["weightsManifest"][0]["weights"]]
    assert "stem/bias" in names and not any("moving" in n for n in names)
    with open_model(out / "model.json") as again:
        assert rel(outputs(again, chain["x"]), chain["y_k2"]) <= 1e-5


def test_fer_model_folds_fourteen_batch_norms(tmp_path):
    """The fer mini-Xception (Keras 2.0.5, legacy names `conv2d_1_1/kernel:0`)."""
    x = np.random.default_rng(0).uniform(0, 1, (8, 64, 64, 1)).astype(np.float32)
    with open_model(need(FER)) as model:
        result = transform_model(model, FOLD)
        assert len(result.folds) == 14 and "BatchNormalization" not in _classes(result.model)
        want = outputs(model, x)
        assert rel(outputs(result.model, x), want) <= 1e-5
        export_model(result.model, PLAN, "keras", tmp_path / "fer.h5")
        export_model(result.model, PLAN, "tfjs", tmp_path / "fer_tfjs")
    for path in (tmp_path / "fer.h5", tmp_path / "fer_tfjs" / "model.json"):
        with open_model(path) as again:
            assert "BatchNormalization" not in _classes(again)
            assert rel(outputs(again, x), want) <= 1e-5
    with h5py.File(tmp_path / "fer.h5", "r") as f:
        assert "bias:0" in f["model_weights/conv2d_1/conv2d_1_1"]


def test_nsfwjs_folds_into_a_tfjs_model_without_bn(tmp_path):
    x = np.random.default_rng(1).uniform(0, 1, (2, 224, 224, 3)).astype(np.float32)
    with open_model(need(NSFW)) as model:
        result = transform_model(model, FOLD)
        assert len(result.folds) == 52
        changed = [t for t in result.model if t.info.stored is None]
        assert changed and all(not t.name.endswith("moving_mean") for t in result.model)
        export_model(result.model, PLAN, "tfjs", tmp_path / "nsfw")
        want = outputs(model, x)
    with open_model(tmp_path / "nsfw" / "model.json") as again:
        assert "BatchNormalization" not in _classes(again)
        assert rel(outputs(again, x), want) <= 1e-5


def test_no_transform_returns_the_model_itself():
    with open_model(DATA / "bn_chain_k2.h5") as model:
        assert transform_model(model, Transforms()).model is model


def test_models_without_a_layer_graph_are_refused(tmp_path):
    from inspector.engine.errors import TransformUnavailable

    path = tmp_path / "w.npz"
    np.savez(path, a=np.ones((2, 2), np.float32))
    with open_model(path) as model, pytest.raises(TransformUnavailable, match="layers model"):
        transform_model(model, FOLD)
