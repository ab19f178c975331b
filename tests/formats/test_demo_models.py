"""Readers on the demo models in resources/ (written by real tf_keras, Keras 3 and the official
TF.js converter): every tensor checked against h5py/json directly, and the same weights read
from each format agree bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from inspector.formats import open_model

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
DEMOS = sorted(p for p in RESOURCES.glob("*") if (p / "tfjs" / "model.json").is_file())


def _s(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


@pytest.mark.skipif(not DEMOS, reason="no demo models in resources/")
@pytest.mark.parametrize("demo", DEMOS, ids=lambda p: p.name)
def test_demo_model_formats_agree(demo: Path) -> None:
    h5_path = demo / f"{demo.name}.h5"
    with h5py.File(h5_path, "r") as f, open_model(h5_path) as h5m:
        mw = f.get("model_weights", f)
        expected = [
            (_s(w), mw[_s(ln)][_s(w)])
            for ln in mw.attrs["layer_names"]
            for w in mw[_s(ln)].attrs["weight_names"]
        ]
        assert [t.name for t in h5m.weights] == [n for n, _ in expected]
        for t, (_, ds) in zip(h5m.weights, expected, strict=True):
            assert (t.info.shape, t.info.dtype) == (ds.shape, ds.dtype.name)
            assert np.array_equal(t.load(), ds[()])
        assert h5m.metadata["keras_config"] == json.loads(f.attrs["model_config"])
        by_name = {t.name.removesuffix(":0"): t.load() for t in h5m.weights}

    doc = json.loads((demo / "tfjs" / "model.json").read_text())
    with open_model(demo / "tfjs") as tm:
        entries = [w for g in doc["weightsManifest"] for w in g["weights"]]
        assert [(t.name, list(t.info.shape), t.info.dtype) for t in tm] == [
            (w["name"], w["shape"], w["dtype"]) for w in entries
        ]
        assert tm.metadata["tfjs_model_type"] == "layers-model"
        for t in tm:
            assert np.array_equal(t.load(), by_name[t.name]), t.name
        assert tm.parameter_count == sum(v.size for v in by_name.values())

    keras_path = demo / f"{demo.name}.keras"
    if keras_path.is_file():
        with open_model(keras_path) as km:
            assert km.format == "keras"
            assert {t.name for t in km.weights} == set(by_name)
            for t in km.weights:
                assert np.array_equal(t.load(), by_name[t.name]), t.name
