"""The bundled demo models: every file is there, well formed, and small (numpy/h5py/json only)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
MODELS = ("digits_convnet", "diabetes_mlp", "digits_depthwise")
KERAS3 = ("digits_convnet",)
MAX_TOTAL_BYTES = 5 * 1024 * 1024
DTYPE_BYTES = {"float32": 4, "int32": 4, "float16": 2, "uint8": 1, "uint16": 2}


def _meta(name: str) -> dict:
    return json.loads((RESOURCES / name / "meta.json").read_text())


@pytest.mark.parametrize("name", MODELS)
def test_demo_files_exist(name: str) -> None:
    folder = RESOURCES / name
    expected = [f"{name}.h5", "tfjs/model.json", "sample.npz", "meta.json"]
    if name in KERAS3:
        expected.append(f"{name}.keras")
    for rel in expected:
        assert (folder / rel).is_file(), f"missing {folder / rel}"


@pytest.mark.parametrize("name", MODELS)
def test_meta_fields(name: str) -> None:
    meta = _meta(name)
    assert meta["task"] in ("classification", "regression")
    assert meta["metric"] == {"classification": "accuracy", "regression": "mae"}[meta["task"]]
    assert isinstance(meta["float_score"], float)
    assert all(isinstance(d, int) and d > 0 for d in meta["input_shape"])
    assert meta["description"]


@pytest.mark.parametrize("name", MODELS)
def test_h5_is_a_full_keras2_model(name: str) -> None:
    with h5py.File(RESOURCES / name / f"{name}.h5", "r") as f:
        config = json.loads(f.attrs["model_config"])
        layer_names = [
            n.decode() if isinstance(n, bytes) else n
            for n in f["model_weights"].attrs["layer_names"]
        ]
        assert "optimizer_weights" not in f
        n_weights = 0
        for layer in layer_names:
            group = f["model_weights"][layer]
            for wname in group.attrs["weight_names"]:
                wname = wname.decode() if isinstance(wname, bytes) else wname
                assert wname.endswith(":0"), wname
                assert group[wname].dtype == np.float32
                n_weights += 1
    assert config["class_name"] in ("Sequential", "Functional", "Model")
    assert [layer["config"]["name"] for layer in config["config"]["layers"]][-1] == layer_names[-1]
    assert n_weights > 0


@pytest.mark.parametrize("name", MODELS)
def test_tfjs_manifest_matches_shards(name: str) -> None:
    folder = RESOURCES / name / "tfjs"
    model = json.loads((folder / "model.json").read_text())
    assert model["format"] == "layers-model"
    h5_names = _h5_weight_names(RESOURCES / name / f"{name}.h5")
    for group in model["weightsManifest"]:
        shard_bytes = sum((folder / p).stat().st_size for p in group["paths"])
        manifest_bytes = 0
        for entry in group["weights"]:
            assert "quantization" not in entry
            manifest_bytes += int(np.prod(entry["shape"])) * DTYPE_BYTES[entry["dtype"]]
        assert shard_bytes == manifest_bytes
    names = [e["name"] for g in model["weightsManifest"] for e in g["weights"]]
    assert sorted(names) == sorted(h5_names)


def _h5_weight_names(path: Path) -> list[str]:
    """tf_keras dataset names `layer/var:0` as the converter writes them: `layer/var`."""
    names = []
    with h5py.File(path, "r") as f:
        for layer in f["model_weights"].attrs["layer_names"]:
            for wname in f["model_weights"][layer].attrs["weight_names"]:
                wname = wname.decode() if isinstance(wname, bytes) else wname
                names.append(wname.removesuffix(":0"))
    return names


@pytest.mark.parametrize("name", MODELS)
def test_sample_matches_meta(name: str) -> None:
    meta = _meta(name)
    with np.load(RESOURCES / name / "sample.npz", allow_pickle=False) as data:
        x, y = data["x"], data["y"]
    assert x.dtype == np.float32
    assert list(x.shape[1:]) == meta["input_shape"]
    assert 0 < len(x) <= 500 and len(y) == len(x)
    assert np.isfinite(x).all()
    if meta["task"] == "classification":
        assert np.issubdtype(y.dtype, np.integer)
        assert set(np.unique(y)) <= set(range(meta["num_classes"]))
    else:
        assert np.issubdtype(y.dtype, np.floating)


def test_keras3_file_is_a_zip_with_weights() -> None:
    import zipfile

    for name in KERAS3:
        with zipfile.ZipFile(RESOURCES / name / f"{name}.keras") as z:
            assert {"metadata.json", "config.json", "model.weights.h5"} <= set(z.namelist())
            assert json.loads(z.read("metadata.json"))["keras_version"].startswith("3.")


def test_resources_stay_small() -> None:
    total = sum(p.stat().st_size for p in RESOURCES.rglob("*") if p.is_file())
    assert total < MAX_TOTAL_BYTES, f"resources/ holds {total} bytes"
