"""Train the bundled demo models with real Keras and write them in every file form the app reads.

DEV-TIME ONLY: needs TensorFlow 2.19, tf_keras 2.19, keras 3.15, tensorflowjs 4.22 and
scikit-learn (see /work/shared/TOOLING.md); the product and its tests never import them.

Run from the repository root (re-runnable, fixed seeds, overwrites resources/<name>/):

    TF_USE_LEGACY_KERAS=1 /work/venvs/tf/bin/python resources/make_demo_models.py

For each model it writes <name>.h5 (tf_keras legacy HDF5, no optimizer), tfjs/model.json + shard
(official converter, float32), sample.npz (held-out x, y) and meta.json; the convnet also gets a
Keras 3 <name>.keras. It then measures the held-out score with every weight replaced by its
float16 / uint8-per-tensor (TF.js converter math) / int8-per-channel value, with real Keras, and
writes the numbers to resources/measurements.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYTHONHASHSEED", "0")

import numpy as np
import tensorflow as tf
import tf_keras
from sklearn.datasets import load_diabetes, load_digits
from sklearn.model_selection import train_test_split
from tf_keras import layers

SEED = 1234
HERE = Path(__file__).resolve().parent
CONVERTER = Path(sys.executable).with_name("tensorflowjs_converter")
# PyTorch's BatchNorm epsilon (Keras uses 1e-3); with it, near-dead channels fold into huge
# depthwise weights, as in deployed MobileNets.
BN_EPS = 1e-5


def set_seeds(seed: int = SEED) -> None:
    """Make a training run repeatable (weights init, shuffling, dropout)."""
    tf_keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


# ----------------------------------------------------------------------------- data


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits, pixels scaled to [0, 1], stratified 75/25 split."""
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    y = d.target.astype(np.int64)
    return tuple(train_test_split(x, y, test_size=0.25, stratify=y, random_state=0))


def diabetes_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
    """Diabetes regression data, x standardised with the training split's mean/std.

    The sample data are the standardised x; the target y stays in its original units (disease
    progression one year after baseline) because the model's last layer un-scales it.
    """
    d = load_diabetes(scaled=False)
    x = d.data.astype(np.float64)
    y = d.target.astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=0)
    mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)
    scaling = {"x_mean": mean.tolist(), "x_std": std.tolist(), "features": list(d.feature_names)}
    x_tr = ((x_tr - mean) / std).astype(np.float32)
    x_te = ((x_te - mean) / std).astype(np.float32)
    return x_tr, x_te, y_tr, y_te, scaling


# ----------------------------------------------------------------------------- models


def build_convnet() -> tf_keras.Model:
    """Small MNIST-style convnet: two conv/pool stages, a hidden dense layer, softmax."""
    return tf_keras.Sequential(
        [
            layers.InputLayer(input_shape=(8, 8, 1), name="image"),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Flatten(name="flatten"),
            layers.Dense(64, activation="relu", name="dense1"),
            layers.Dense(10, activation="softmax", name="probs"),
        ],
        name="digits_convnet",
    )


def build_mlp() -> tf_keras.Model:
    """Small regressor: 10 standardised features -> 16 -> 8 -> 1 (wider nets overfit 331 rows)."""
    return tf_keras.Sequential(
        [
            layers.InputLayer(input_shape=(10,), name="features"),
            layers.Dense(16, activation="relu", name="dense1"),
            layers.Dense(8, activation="relu", name="dense2"),
            layers.Dense(1, name="progression"),
        ],
        name="diabetes_mlp",
    )


# MobileNetV2 inverted residual blocks: (expansion t, output channels c, stride s).
DW_BLOCKS = ((1, 16, 1), (6, 24, 2), (6, 24, 1), (6, 32, 1), (6, 32, 1))
STEM_CHANNELS = 32


def build_depthwise(folded: bool) -> tf_keras.Model:
    """MobileNetV2-style net: stem conv, inverted residual blocks, global pooling, softmax.

    Each block: 1x1 expand + ReLU6, 3x3 DepthwiseConv2D + ReLU6, linear 1x1 projection, and a
    residual Add when shapes allow. Trained with BatchNormalization after every conv
    (``folded=False``); deployed with each BN folded into the conv before it (``folded=True``:
    convs with bias, no BN layers), which gives depthwise kernels per-channel ranges that differ
    by orders of magnitude.
    """
    x = inp = layers.Input(shape=(16, 16, 1), name="image")
    x = _conv_bn(x, layers.Conv2D, "stem", folded, STEM_CHANNELS, 3, strides=2)
    for i, (t, c, s) in enumerate(DW_BLOCKS, start=1):
        x = _inverted_residual(x, f"block{i}", folded, t, c, s)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    out = layers.Dense(10, activation="softmax", name="probs")(x)
    return tf_keras.Model(inp, out, name="digits_depthwise")


def _inverted_residual(x, name: str, folded: bool, t: int, c: int, s: int):
    c_in = x.shape[-1]
    y = x
    if t != 1:
        y = _conv_bn(y, layers.Conv2D, f"{name}_expand", folded, c_in * t, 1)
    y = _conv_bn(y, layers.DepthwiseConv2D, f"{name}_dw", folded, 3, strides=s)
    y = _conv_bn(y, layers.Conv2D, f"{name}_project", folded, c, 1, relu6=False)
    if s == 1 and c == c_in:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def _conv_bn(x, cls, name: str, folded: bool, *args, relu6: bool = True, **kwargs):
    x = cls(*args, padding="same", use_bias=folded, name=name, **kwargs)(x)
    if not folded:
        x = layers.BatchNormalization(epsilon=BN_EPS, name=f"{name}_bn")(x)
    return layers.ReLU(max_value=6.0, name=f"{name}_relu6")(x) if relu6 else x


def fold_batchnorm(trained: tf_keras.Model, folded: tf_keras.Model) -> None:
    """Copy the trained weights into the folded model, each BN merged into the conv before it.

    y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta  ==  conv'(x) + b' with
    kernel' = kernel * s per output channel, b' = beta - mean * s, s = gamma / sqrt(var + eps).
    """
    for layer in folded.layers:
        if not layer.weights:
            continue
        src = trained.get_layer(layer.name)
        if not isinstance(layer, layers.DepthwiseConv2D | layers.Conv2D):
            layer.set_weights(src.get_weights())
            continue
        gamma, beta, mean, var = trained.get_layer(f"{layer.name}_bn").get_weights()
        s = gamma / np.sqrt(var + BN_EPS)
        (kernel,) = src.get_weights()
        if isinstance(layer, layers.DepthwiseConv2D):
            kernel = kernel * s.reshape(1, 1, -1, kernel.shape[3])
        else:
            kernel = kernel * s
        layer.set_weights([kernel.astype(np.float32), (beta - mean * s).astype(np.float32)])


def upsample16(x: np.ndarray) -> np.ndarray:
    """8x8 digits -> 16x16 by pixel repetition (the depthwise model's input)."""
    return np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)


# ----------------------------------------------------------------------------- training


def train_classifier(model, x_tr, y_tr, epochs: int, lr: float = 3e-3, cosine: bool = False):
    """Adam on sparse cross-entropy, batch 32; `cosine` decays the learning rate to 0."""
    if cosine:
        steps = epochs * int(np.ceil(len(x_tr) / 32))
        lr = tf_keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps)
    model.compile(
        optimizer=tf_keras.optimizers.Adam(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x_tr, y_tr, epochs=epochs, batch_size=32, verbose=0, shuffle=True)


def train_regressor(model, x_tr, y_tr, epochs: int) -> tuple[float, float]:
    """Fit on standardised y, then bake the y un-scaling into the last Dense layer."""
    y_mean, y_std = float(y_tr.mean()), float(y_tr.std())
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3), loss="mse")
    model.fit(x_tr, (y_tr - y_mean) / y_std, epochs=epochs, batch_size=16, verbose=0)
    last = model.layers[-1]
    kernel, bias = last.get_weights()
    last.set_weights([kernel * y_std, bias * y_std + y_mean])
    return y_mean, y_std


def score(model, x: np.ndarray, y: np.ndarray, task: str) -> float:
    """Held-out accuracy (classification, fraction) or MAE (regression, units of y)."""
    pred = model.predict(x, batch_size=256, verbose=0)
    if task == "classification":
        return float(np.mean(pred.argmax(axis=1) == y))
    return float(np.mean(np.abs(pred.reshape(-1) - y)))


# ----------------------------------------------------------------------------- quantization


def tfjs_affine(w: np.ndarray, bits: int = 8) -> np.ndarray:
    """Dequantized value of `w` after the TF.js converter's per-tensor affine quantization.

    float64 throughout; the zero point is nudged so 0.0 is exact; round half to even.
    """
    w64 = w.astype(np.float64)
    qmax = 2**bits - 1
    mn, mx = float(w64.min()), float(w64.max())
    if mn == mx:
        return w.astype(np.float32)
    scale = (mx - mn) / qmax
    if mn <= 0.0 <= mx:
        mn = -np.round(-mn / scale) * scale
    q = np.round((np.clip(w64, mn, qmax * scale + mn) - mn) / scale)
    return (q * scale + mn).astype(np.float32)


def int8_per_channel(w: np.ndarray, axis: int) -> np.ndarray:
    """Symmetric int8 per output channel: scale = max|w| / 127 along every slice of `axis`."""
    moved = np.moveaxis(w.astype(np.float64), axis, -1)
    amax = np.abs(moved.reshape(-1, moved.shape[-1])).max(axis=0)
    scale = np.where(amax > 0, amax / 127.0, 1.0)
    q = np.clip(np.round(moved / scale), -127, 127)
    return np.moveaxis(q * scale, -1, axis).astype(np.float32)


def channel_axis(layer, w: np.ndarray) -> int:
    """Output-channel axis of a weight: the last one, except depthwise kernels (kh, kw, C, mult).

    A depthwise kernel's last axis is the depth multiplier (1 here): per channel means axis 2.
    """
    if isinstance(layer, layers.DepthwiseConv2D) and w.ndim == 4:
        return 2
    return w.ndim - 1


def quantized_weights(model, scheme: str) -> list[list[np.ndarray]]:
    """Every layer's weights replaced by their dequantized value under `scheme`."""
    out = []
    for layer in model.layers:
        ws = layer.get_weights()
        if scheme == "float16":
            ws = [w.astype(np.float16).astype(np.float32) for w in ws]
        elif scheme == "uint8":
            ws = [tfjs_affine(w, 8) for w in ws]
        elif scheme == "uint16":
            ws = [tfjs_affine(w, 16) for w in ws]
        elif scheme == "int8":
            ws = [int8_per_channel(w, channel_axis(layer, w)) for w in ws]
        out.append(ws)
    return out


def score_schemes(model, x, y, task: str) -> dict[str, float]:
    """Held-out score with all weights at each scheme, measured with real Keras."""
    original = [layer.get_weights() for layer in model.layers]
    scores = {"float32": score(model, x, y, task)}
    for scheme in ("float16", "uint16", "uint8", "int8"):
        for layer, ws in zip(model.layers, quantized_weights(model, scheme), strict=True):
            layer.set_weights(ws)
        scores[scheme] = score(model, x, y, task)
        for layer, ws in zip(model.layers, original, strict=True):
            layer.set_weights(ws)
    return scores


def score_uint8_except_depthwise(model, x, y) -> float:
    """Accuracy with every weight at uint8 per tensor except the depthwise kernels (float32)."""
    original = [layer.get_weights() for layer in model.layers]
    for layer, ws in zip(model.layers, quantized_weights(model, "uint8"), strict=True):
        if isinstance(layer, layers.DepthwiseConv2D):
            ws = [w if w.ndim == 4 else q for w, q in zip(layer.get_weights(), ws, strict=True)]
        layer.set_weights(ws)
    result = score(model, x, y, "classification")
    for layer, ws in zip(model.layers, original, strict=True):
        layer.set_weights(ws)
    return result


def channel_range_report(model) -> dict[str, dict[str, float]]:
    """Per kernel: max|w| over channels, largest/smallest channel max|w| ratio."""
    report = {}
    for layer in model.layers:
        for w, var in zip(layer.get_weights(), layer.weights, strict=True):
            if w.ndim < 2:
                continue
            moved = np.moveaxis(np.abs(w), channel_axis(layer, w), -1)
            amax = moved.reshape(-1, moved.shape[-1]).max(axis=0)
            report[var.name] = {
                "max_abs": float(amax.max()),
                "channel_ratio": float(amax.max() / max(amax.min(), 1e-30)),
            }
    return report


# ----------------------------------------------------------------------------- saving


def save_all(model, name: str, x_te, y_te, meta: dict, keras3: bool = False) -> Path:
    """Write <name>.h5, tfjs/, sample.npz, meta.json (and <name>.keras) under resources/<name>/."""
    out = HERE / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    h5 = out / f"{name}.h5"
    model.save(h5, save_format="h5", include_optimizer=False)
    subprocess.run(
        [str(CONVERTER), "--input_format", "keras", str(h5), str(out / "tfjs")],
        check=True,
        capture_output=True,
    )
    np.savez_compressed(out / "sample.npz", x=x_te, y=y_te)
    if keras3:
        save_keras3(h5, out / f"{name}.keras", x_te, model.predict(x_te, verbose=0))
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


def save_keras3(h5: Path, target: Path, x: np.ndarray, expected: np.ndarray) -> None:
    """Re-save the tf_keras model as a Keras 3 `.keras` zip and check it predicts the same."""
    import keras

    k3 = keras.models.load_model(h5, compile=False)
    k3.save(target)
    again = keras.models.load_model(target, compile=False)
    got = np.asarray(again.predict(x, verbose=0))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def check_converter_uint8(model, h5: Path, tmp: Path) -> None:
    """Our numpy uint8 math must equal the official converter's decoded uint8 weights exactly."""
    if tmp.exists():
        shutil.rmtree(tmp)
    subprocess.run(
        [str(CONVERTER), "--input_format", "keras", str(h5), str(tmp), "--quantize_uint8"],
        check=True,
        capture_output=True,
    )
    manifest = json.loads((tmp / "model.json").read_text())["weightsManifest"]
    ours = {v.name.split(":")[0]: w for v, w in zip(model.weights, _uint8_flat(model), strict=True)}
    for group in manifest:
        buf = b"".join((tmp / p).read_bytes() for p in group["paths"])
        offset = 0
        for entry in group["weights"]:
            n = int(np.prod(entry["shape"]))
            q = np.frombuffer(buf, np.uint8, n, offset).astype(np.float64)
            offset += n
            qp = entry["quantization"]
            decoded = (q * qp["scale"] + qp["min"]).astype(np.float32).reshape(entry["shape"])
            np.testing.assert_array_equal(decoded, ours[entry["name"]], err_msg=entry["name"])
    shutil.rmtree(tmp)


def _uint8_flat(model) -> list[np.ndarray]:
    return [tfjs_affine(w.numpy(), 8) for w in model.weights]


def dir_sizes(out: Path) -> dict[str, int]:
    files = sorted(p for p in out.rglob("*") if p.is_file())
    return {str(p.relative_to(HERE)): p.stat().st_size for p in files}


# ----------------------------------------------------------------------------- the three models


def make_digits_convnet() -> dict:
    set_seeds()
    x_tr, x_te, y_tr, y_te = digits_split()
    model = build_convnet()
    train_classifier(model, x_tr, y_tr, epochs=40)
    scores = score_schemes(model, x_te, y_te, "classification")
    meta = {
        "task": "classification",
        "metric": "accuracy",
        "float_score": scores["float32"],
        "input_shape": [8, 8, 1],
        "num_classes": 10,
        "description": "Small convnet (2x Conv2D+MaxPooling, Dense 64, softmax) on scikit-learn's "
        "8x8 digits; x = pixels/16 in [0, 1], y = digit 0-9; held-out 25% stratified split.",
    }
    out = save_all(model, "digits_convnet", x_te, y_te.astype(np.int64), meta, keras3=True)
    check_converter_uint8(model, out / "digits_convnet.h5", HERE / "_tmp_uint8")
    return {"scores": scores, "files": dir_sizes(out)}


def make_diabetes_mlp() -> dict:
    set_seeds()
    x_tr, x_te, y_tr, y_te, scaling = diabetes_split()
    model = build_mlp()
    y_mean, y_std = train_regressor(model, x_tr, y_tr, epochs=60)
    scores = score_schemes(model, x_te, y_te, "regression")
    meta = {
        "task": "regression",
        "metric": "mae",
        "float_score": scores["float32"],
        "input_shape": [10],
        "description": "MLP regressor (Dense 16-8-1, ReLU) on scikit-learn's diabetes data; "
        "x = the 10 features standardised with the training split's mean/std (given below), "
        "y = disease progression in its original units (the last layer un-scales the "
        "standardised training target); held-out 25% split.",
        "x_scaling": scaling,
        "y_training_scaling": {"mean": y_mean, "std": y_std},
        "baseline_mae_predict_train_mean": float(np.mean(np.abs(y_te - y_mean))),
    }
    out = save_all(model, "diabetes_mlp", x_te, y_te.astype(np.float32), meta)
    return {"scores": scores, "files": dir_sizes(out)}


def make_digits_depthwise() -> dict:
    set_seeds()
    x_tr, x_te, y_tr, y_te = digits_split()
    x_tr, x_te = upsample16(x_tr), upsample16(x_te)
    trained = build_depthwise(folded=False)
    train_classifier(trained, x_tr, y_tr, epochs=80, lr=2e-2, cosine=True)
    folded = build_depthwise(folded=True)
    fold_batchnorm(trained, folded)
    diff = np.abs(trained.predict(x_te, verbose=0) - folded.predict(x_te, verbose=0)).max()
    assert diff < 1e-4, f"BN folding changed the outputs by {diff}"
    scores = score_schemes(folded, x_te, y_te, "classification")
    scores["float32_unfolded"] = score(trained, x_te, y_te, "classification")
    scores["uint8_depthwise_float32"] = score_uint8_except_depthwise(folded, x_te, y_te)
    meta = {
        "task": "classification",
        "metric": "accuracy",
        "float_score": scores["float32"],
        "input_shape": [16, 16, 1],
        "num_classes": 10,
        "description": "MobileNetV2-style net (stem Conv2D, 5 inverted residual blocks: 1x1 "
        "expand + ReLU6, 3x3 DepthwiseConv2D + ReLU6, linear 1x1 projection, Add; global "
        "average pooling, softmax) on scikit-learn's digits upsampled to 16x16 by pixel "
        "repetition; trained with BatchNormalization (epsilon 1e-5), saved with each BN folded "
        "into the conv before it (as deployed models are), so depthwise kernels have "
        "per-channel ranges that differ by orders of magnitude: uint8 per tensor collapses it, "
        "int8 per channel does not.",
        "max_abs_output_change_from_folding": float(diff),
    }
    out = save_all(folded, "digits_depthwise", x_te, y_te.astype(np.int64), meta)
    check_converter_uint8(folded, out / "digits_depthwise.h5", HERE / "_tmp_uint8")
    return {"scores": scores, "files": dir_sizes(out), "channels": channel_range_report(folded)}


MAKERS = {
    "digits_convnet": make_digits_convnet,
    "diabetes_mlp": make_diabetes_mlp,
    "digits_depthwise": make_digits_depthwise,
}


def main(names: list[str]) -> None:
    path = HERE / "measurements.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for name in names or list(MAKERS):
        results[name] = MAKERS[name]()
        print(name, json.dumps(results[name]["scores"]), flush=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
