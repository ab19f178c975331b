"""Make the transforms' fixtures with REAL Keras: small models plus probes and real outputs.

DEV-TIME ONLY (needs /work/venvs/tf: tensorflow 2.19, tf_keras 2.19, keras 3.15); tests never
import this file. Run from the repository root (fixed seeds, overwrites this folder's files):

    /work/venvs/tf/bin/python tests/engine/transforms/data/make_fixtures.py

- `bn_chain_k2.h5` (tf_keras legacy HDF5) and `bn_chain_k3.keras` (Keras 3), the same weights:
  a MobileNet-like chain with BatchNormalization after every conv — Conv2D (no bias) → BN →
  ReLU6 → DepthwiseConv2D (no bias) → BN (ε = 1e-5; its channel 3 reads a dead channel, so
  its variance is 0 and folding multiplies that kernel by γ/√ε) → ReLU6 → 1×1 Conv2D → BN →
  Add (residual) → Conv2D → BN → ReLU → GlobalAveragePooling → Dense → BN → Dense softmax.
  BN statistics are calibrated on 256 random images (as training would leave them), two betas
  raised (so high-bias absorption has work).
  `bn_chain.npz`: `x` probes, `y_k2` and `y_k3` the real Keras outputs (inference mode).
- `overflow_k2.h5`: Dense(16, relu) → Dense "blowup" (|weights| ×30000: activations ~1e5-1e6,
  past float16's 65504) → Dense "shrink" (×1e-5) → Dense softmax; `overflow.npz`: `x` and
  `keras_y` (real Keras outputs; not named `y`, so evaluation does not take them as labels).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # Keras 3
import numpy as np
import tf_keras

DATA = Path(__file__).resolve().parent
SEED = 15


def bn_chain(K, L):
    x = K.Input((10, 10, 3), name="image")
    c = L.Conv2D(12, 3, padding="same", use_bias=False, name="stem")(x)
    c = L.BatchNormalization(name="stem_bn")(c)
    c = L.ReLU(max_value=6.0, name="stem_relu6")(c)
    d = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(c)
    d = L.BatchNormalization(epsilon=1e-5, name="dw_bn")(d)
    d = L.ReLU(max_value=6.0, name="dw_relu6")(d)
    p = L.Conv2D(12, 1, use_bias=False, name="project")(d)
    p = L.BatchNormalization(name="project_bn")(p)
    a = L.Add(name="add")([c, p])
    h = L.Conv2D(16, 3, strides=2, use_bias=False, name="head")(a)
    h = L.BatchNormalization(name="head_bn")(h)
    h = L.ReLU(name="head_relu")(h)
    g = L.GlobalAveragePooling2D(name="gap")(h)
    f = L.Dense(8, name="fc")(g)
    f = L.BatchNormalization(name="fc_bn")(f)
    f = L.Activation("relu", name="fc_relu")(f)
    out = L.Dense(5, activation="softmax", name="probs")(f)
    return K.Model(x, out, name="bn_chain")


def weights_for(model, rng: np.random.Generator) -> list[np.ndarray]:
    """Seeded weights (BN statistics are set by `calibrate`)."""
    values = []
    for w in model.weights:
        path = getattr(w, "path", None) or w.name
        name = path.split("/")[-1].split(":")[0]
        shape = tuple(int(d) for d in w.shape)
        if name == "moving_variance":
            v = np.ones(shape)
        elif name == "moving_mean":
            v = np.zeros(shape)
        elif name == "gamma":
            v = rng.uniform(0.5, 1.5, shape)
        elif name == "beta":
            v = rng.normal(0.2, 0.5, shape)
        else:
            fan_in = max(1, int(np.prod(shape[:-1]))) if len(shape) > 1 else 4
            v = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
        values.append(np.asarray(v, np.float32))
    return values


def calibrate(model, x: np.ndarray) -> None:
    """Set each BN's moving statistics to its input's batch statistics on `x` (what training
    converges to), in model order. stem_bn channel 3 gets β = −8, so after ReLU6 it is always 0
    (a dead channel: the depthwise conv's channel 3 then has zero variance, and folding dw_bn
    multiplies that kernel by γ/√ε); head_bn channel 2 and fc_bn channel 1 get a high bias
    (work for high-bias absorption)."""
    for layer in model.layers:
        if not isinstance(layer, tf_keras.layers.BatchNormalization):
            continue
        probe = tf_keras.Model(model.inputs, layer.input)
        h = probe.predict(x, verbose=0)
        axes = tuple(range(h.ndim - 1))
        gamma, beta, _, _ = layer.get_weights()
        if layer.name == "stem_bn":
            beta[3] = -8.0
        if layer.name == "head_bn":
            beta[2], gamma[2] = 4.0, 0.5
        if layer.name == "fc_bn":
            beta[1], gamma[1] = 3.0, 0.6
        layer.set_weights([gamma, beta, h.mean(axis=axes), h.var(axis=axes)])


def overflow(K, L):
    return K.Sequential(
        [
            K.Input((6,), name="features"),
            L.Dense(16, activation="relu", name="hidden"),
            L.Dense(16, activation="relu", name="blowup"),
            L.Dense(8, activation="relu", name="shrink"),
            L.Dense(3, activation="softmax", name="probs"),
        ],
        name="overflow",
    )


def main() -> None:
    rng = np.random.default_rng(SEED)
    k2 = bn_chain(tf_keras, tf_keras.layers)
    k2.set_weights(weights_for(k2, rng))
    x = rng.uniform(0.0, 1.0, (32, 10, 10, 3)).astype(np.float32)
    calibrate(k2, rng.uniform(0.0, 1.0, (256, 10, 10, 3)).astype(np.float32))
    k3 = bn_chain(keras, keras.layers)
    k3.set_weights(k2.get_weights())
    k2.save(DATA / "bn_chain_k2.h5", save_format="h5", include_optimizer=False)
    k3.save(DATA / "bn_chain_k3.keras")
    y2, y3 = k2.predict(x, verbose=0), k3.predict(x, verbose=0)
    np.savez_compressed(DATA / "bn_chain.npz", x=x, y_k2=y2, y_k3=y3)

    m = overflow(tf_keras, tf_keras.layers)
    w = [np.asarray(v) for v in m.get_weights()]
    w = [np.abs(v) * (30000.0 if i == 2 else 1e-5 if i == 4 else 1.0) for i, v in enumerate(w)]
    m.set_weights(w)
    xo = rng.uniform(0.5, 1.5, (16, 6)).astype(np.float32)
    m.save(DATA / "overflow_k2.h5", save_format="h5", include_optimizer=False)
    np.savez_compressed(DATA / "overflow.npz", x=xo, keras_y=m.predict(xo, verbose=0))
    for f in sorted(DATA.iterdir()):
        print(f.name, f.stat().st_size)


if __name__ == "__main__":
    main()
