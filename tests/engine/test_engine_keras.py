"""The executor against REAL Keras outputs (fixtures made by make_fixtures.py with tf_keras 2.19
and Keras 3.15). Tolerance: max |ours - keras| <= 1e-5 * max |keras|, per output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from engine_keras_files import read_h5, read_keras3

from inspector.engine import EvaluationUnavailable, Executor
from inspector.formats import open_model

DATA = Path(__file__).parent / "data"
RTOL = 1e-5
FIXTURES = [
    ("seq_cnn_k2", ".h5"),
    ("every_layer_k2", ".h5"),
    ("seq_cnn_k3", ".keras"),
    ("every_layer_k3", ".keras"),
]


def relative_error(ours: np.ndarray, ref: np.ndarray) -> float:
    assert ours.shape == ref.shape
    assert ours.dtype == np.float32
    return float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))


def load_io(name: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    with np.load(DATA / f"{name}.npz", allow_pickle=False) as f:
        xs = [f[f"x{i}"] for i in range(sum(k.startswith("x") for k in f.files))]
        ys = [f[f"y{i}"] for i in range(sum(k.startswith("y") for k in f.files))]
    return xs, ys


@pytest.mark.parametrize(("name", "ext"), FIXTURES)
def test_matches_keras_via_open_model(name: str, ext: str) -> None:
    xs, ys = load_io(name)
    with open_model(DATA / f"{name}{ext}") as model:
        executor = Executor.from_model(model)
    assert executor.output_count == len(ys)
    assert [s[1:] for s in executor.input_shapes] == [x.shape[1:] for x in xs]
    outs = executor.run(xs, batch_size=3)
    for ours, ref in zip(outs, ys, strict=True):
        assert relative_error(ours, ref) <= RTOL


@pytest.mark.parametrize(("name", "ext"), FIXTURES)
def test_matches_keras_via_from_config(name: str, ext: str) -> None:
    xs, ys = load_io(name)
    config, weights = (read_h5 if ext == ".h5" else read_keras3)(DATA / f"{name}{ext}")
    outs = Executor.from_config(config, weights).run(xs)
    for ours, ref in zip(outs, ys, strict=True):
        assert relative_error(ours, ref) <= RTOL


def test_batching_does_not_change_results() -> None:
    xs, _ = load_io("every_layer_k2")
    with open_model(DATA / "every_layer_k2.h5") as model:
        executor = Executor.from_model(model)
    whole = executor.run(xs, batch_size=256)
    pieces = executor.run(xs, batch_size=1)
    for a, b in zip(whole, pieces, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_a_wrong_weight_is_detected() -> None:
    """The comparison can fail: perturb one BN statistic and the outputs leave tolerance."""
    xs, ys = load_io("seq_cnn_k2")
    with open_model(DATA / "seq_cnn_k2.h5") as model:
        executor = Executor.from_model(model)
        mean = model["bn1/moving_mean:0"].load()
    changed = executor.with_weights({"bn1/moving_mean:0": mean + 0.05})
    assert relative_error(changed.run(xs)[0], ys[0]) > 1e-3
    assert relative_error(executor.run(xs)[0], ys[0]) <= RTOL
    by_layer = executor.with_weights({("bn1", "moving_mean"): mean + 0.05})
    np.testing.assert_array_equal(by_layer.run(xs)[0], changed.run(xs)[0])


def test_overrides_in_from_model_match_with_weights() -> None:
    xs, _ = load_io("seq_cnn_k3")
    with open_model(DATA / "seq_cnn_k3.keras") as model:
        kernel = model["fc1/kernel"].load()
        half = np.float16(kernel).astype(np.float32)
        a = Executor.from_model(model, overrides={"fc1/kernel": half}).run(xs)[0]
        b = Executor.from_model(model).with_weights({"fc1/kernel": half}).run(xs)[0]
    np.testing.assert_array_equal(a, b)


def test_unknown_override_and_bad_inputs_are_clear() -> None:
    with open_model(DATA / "seq_cnn_k2.h5") as model:
        executor = Executor.from_model(model)
    with pytest.raises(EvaluationUnavailable, match="no weight"):
        executor.with_weights({"nope/kernel:0": np.zeros(3)})
    with pytest.raises(EvaluationUnavailable, match="shape"):
        executor.with_weights({"fc1/bias:0": np.zeros(3)})
    with pytest.raises(EvaluationUnavailable, match=r"input 0 has shape \(2, 8, 8, 1\)"):
        executor.run([np.zeros((2, 8, 8, 1), np.float32)])
    with pytest.raises(EvaluationUnavailable, match="2 arrays given"):
        executor.run([np.zeros((2, 16, 16, 1))] * 2)


@pytest.mark.parametrize(("name", "ext"), [("every_layer_k2", ".h5"), ("every_layer_k3", ".keras")])
def test_every_layer_matches_keras(name: str, ext: str) -> None:
    """Layer by layer, so no layer's error hides behind a saturating one downstream."""
    xs, _ = load_io(name)
    with open_model(DATA / f"{name}{ext}") as model:
        executor = Executor.from_model(model)
    ours = executor.trace([x[:2] for x in xs])
    with np.load(DATA / f"{name}_layers.npz", allow_pickle=False) as f:
        assert set(f.files) == set(ours)
        for layer in f.files:
            ref = f[layer]
            scale = max(float(np.max(np.abs(ref))), 1e-12)
            err = float(np.max(np.abs(ours[layer] - ref))) / scale
            assert err <= RTOL, f"layer {layer}: {err:.2e}"


@pytest.mark.parametrize(("name", "ext"), [("nested_k2", ".h5"), ("nested_k3", ".keras")])
def test_nested_sequential_inside_functional(name: str, ext: str) -> None:
    xs, ys = load_io(name)
    with open_model(DATA / f"{name}{ext}") as model:
        outs = Executor.from_model(model).run(xs)
    assert relative_error(outs[0], ys[0]) <= RTOL


DEMOS = ["digits_convnet", "diabetes_mlp", "digits_depthwise"]
RESOURCES = Path(__file__).resolve().parents[2] / "resources"


@pytest.mark.parametrize("demo", DEMOS)
@pytest.mark.parametrize("form", ["h5", "tfjs", "keras"])
def test_demo_models_match_keras(demo: str, form: str) -> None:
    """The bundled demos, through every file form they ship in, against real Keras outputs."""
    path = {
        "h5": RESOURCES / demo / f"{demo}.h5",
        "tfjs": RESOURCES / demo / "tfjs" / "model.json",
        "keras": RESOURCES / demo / f"{demo}.keras",
    }[form]
    if not path.exists():
        pytest.skip(f"{path.name} is not bundled for {demo}")
    with np.load(RESOURCES / demo / "sample.npz", allow_pickle=False) as f:
        x = f["x"]
    with np.load(DATA / f"{demo}_keras_outputs.npz", allow_pickle=False) as f:
        ref = f["y0"]
    with open_model(path) as model:
        out = Executor.from_model(model).run([x])[0]
    assert relative_error(out, ref) <= RTOL


SHARED = Path(__file__).resolve().parents[3] / "shared" / "models"
THIRD_PARTY = {
    "fer_emotion": SHARED / "keras-h5-fer-emotion" / "emotion_model.hdf5",
    "nsfwjs_mobilenet_v2": SHARED / "tfjs-layers-nsfwjs-mobilenet_v2-u8" / "model.json",
}


def probe_input(shape: tuple[int, ...], n: int = 2) -> np.ndarray:
    """Same deterministic input as make_fixtures.probe_input."""
    size = n * int(np.prod(shape))
    return np.sin(np.arange(size, dtype=np.float64) * 0.0137).astype(np.float32).reshape(n, *shape)


@pytest.mark.parametrize("name", sorted(THIRD_PARTY))
def test_third_party_models_match_keras(name: str) -> None:
    """Files nobody on this project wrote: a Keras 2.0.5 mini-Xception .h5 and the nsfwjs
    uint8 TF.js MobileNetV2 (Keras 2.2.4 topology), against tf_keras / tensorflowjs."""
    path = THIRD_PARTY[name]
    if not path.exists():
        pytest.skip(f"{path} is not available")
    with open_model(path) as model:
        executor = Executor.from_model(model)
    x = probe_input(tuple(executor.input_shapes[0][1:]))
    with np.load(DATA / f"{name}_keras_outputs.npz", allow_pickle=False) as f:
        ref = f["y0"]
    assert relative_error(executor.run([x])[0], ref) <= RTOL
