"""TF.js Layers export checks the topology against what stock TF.js 4.22 registers: inference
equivalents are translated (silu → swish, SpatialDropout2D → Dropout, ReLU/LeakyReLU negative
slope → LeakyReLU alpha), the rest is refused before anything is written, naming each layer and
class; `weights_only` writes a bare weights manifest instead. `check_tfjs_translated.py` proves
in node that the translated model loads and predicts what the Keras layers compute."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from inspector.core.errors import FormatError
from inspector.core.plan import Plan
from inspector.core.preview import run_preview
from inspector.formats import open_model
from inspector.formats.export import export_model
from inspector.formats.keras.topology import TopologyError, tfjs_model_topology
from inspector.formats.registry import get_target

EVERY_LAYER = (
    Path(__file__).resolve().parents[2] / "tests" / "engine" / "data" / "every_layer_k2.h5"
)
RNG = np.random.default_rng(7)
WEIGHTS = {
    "conv": [RNG.normal(0, 0.5, (1, 1, 2, 3)), RNG.normal(0, 0.1, (3,))],
    "dense": [RNG.normal(0, 0.3, (48, 4)), RNG.normal(0, 0.1, (4,))],
}
LAYERS = [
    ("Conv2D", "conv", {"filters": 3, "kernel_size": [1, 1], "activation": "silu"}),
    ("SpatialDropout2D", "sdrop", {"rate": 0.3, "data_format": "channels_last"}),
    ("ReLU", "leaky", {"negative_slope": 0.2, "threshold": 0.0, "max_value": None}),
    ("LeakyReLU", "leaky3", {"negative_slope": 0.1}),
    ("Flatten", "flat", {}),
    ("Dense", "dense", {"units": 4, "activation": "softmax"}),
]


def translatable_h5(path: Path) -> Path:
    """A tf.keras-2-style legacy .h5 whose layers need translating for TF.js."""
    layers = [
        {
            "class_name": "InputLayer",
            "config": {"name": "inp", "batch_input_shape": [None, 4, 4, 2], "dtype": "float32"},
        }
    ]
    layers += [{"class_name": c, "config": {"name": n, **cfg}} for c, n, cfg in LAYERS]
    config = {"class_name": "Sequential", "config": {"name": "seq", "layers": layers}}
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.19.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [n.encode() for _, n, _ in LAYERS]
        for _, name, _ in LAYERS:
            lg = g.create_group(name)
            values = WEIGHTS.get(name, [])
            names = [f"{name}/{v}:0" for v in ("kernel", "bias")][: len(values)]
            lg.attrs["weight_names"] = [n.encode() for n in names]
            for n, v in zip(names, values, strict=True):
                lg.create_dataset(n, data=v.astype(np.float32))
    return path


def keras_reference(x: np.ndarray) -> np.ndarray:
    """What the Keras layers compute at inference (dropout off)."""
    k, b = (w.astype(np.float32) for w in WEIGHTS["conv"])
    h = x @ k[0, 0] + b
    h = h / (1 + np.exp(-h))
    h = np.where(h > 0, h, 0.2 * h)
    h = np.where(h > 0, h, 0.1 * h)
    z = h.reshape(len(x), -1) @ WEIGHTS["dense"][0] + WEIGHTS["dense"][1]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_every_layer_model_is_refused_naming_layers_and_classes(tmp_path: Path) -> None:
    out = tmp_path / "tfjs"
    with open_model(EVERY_LAYER) as model, pytest.raises(FormatError) as err:
        export_model(model, Plan(default="uint8"), "tfjs", out)
    msg = str(err.value)
    for piece in (
        "every_layer_k2.h5",
        "layer 'norm' (Normalization): TF.js has no such layer class",
        "layer 'sub' (Subtract)",
        "layer 'relu_leaky_thr' (ReLU): TF.js ReLU has no threshold",
        "layer 'dense_exponential' (Dense): activation 'exponential'",
        "--weights-only",
    ):
        assert piece in msg
    for translated in ("sdrop", "dense_swish", "dense_gelu", "dense_mish", "rescale"):
        assert f"'{translated}'" not in msg
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_every_layer_model_exports_weights_only_and_previews(tmp_path: Path) -> None:
    out = tmp_path / "tfjs"
    with open_model(EVERY_LAYER) as model:
        preview = run_preview(model, Plan(default="uint8"), get_target("tfjs"))
        export_model(model, Plan(default="uint8"), "tfjs", out, weights_only=True)
        count = sum(1 for t in model if not t.info.optimizer)
    assert preview.total["quantized_bytes"] > 0
    manifest = json.loads((out / "weights_manifest.json").read_text())
    assert len(manifest[0]["weights"]) == count
    assert not (out / "model.json").exists()


def test_translations_in_the_written_topology(tmp_path: Path) -> None:
    src = translatable_h5(tmp_path / "t.h5")
    out = tmp_path / "tfjs"
    with open_model(src) as model:
        export_model(model, Plan(default="float32"), "tfjs", out)
    doc = json.loads((out / "model.json").read_text())
    layers = {
        layer["config"]["name"]: layer
        for layer in doc["modelTopology"]["model_config"]["config"]["layers"]
    }
    assert layers["conv"]["config"]["activation"] == "swish"
    assert layers["sdrop"]["class_name"] == "Dropout"
    assert "data_format" not in layers["sdrop"]["config"]
    assert layers["leaky"]["class_name"] == "LeakyReLU"
    assert layers["leaky"]["config"]["alpha"] == 0.2
    assert layers["leaky3"]["config"] == {"name": "leaky3", "alpha": 0.1}
    names = [w["name"] for w in doc["weightsManifest"][0]["weights"]]
    assert names == ["conv/kernel", "conv/bias", "dense/kernel", "dense/bias"]


def test_keras3_hard_sigmoid_differs_from_tfjs() -> None:
    cfg = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {"class_name": "Dense", "config": {"name": "d", "activation": "hard_sigmoid"}}
            ],
        },
    }
    tfjs_model_topology(cfg, "2.19.0")
    with pytest.raises(TopologyError, match=r"layer 'd' \(Dense\): Keras 3 hard_sigmoid"):
        tfjs_model_topology(cfg, "3.15.1")
    assert tfjs_model_topology(cfg, "3.15.1", strict=False)["model_config"]
