"""Make the engine's fixtures with REAL Keras: small models plus their inputs and real outputs.

DEV-TIME ONLY (needs /work/venvs/tf: tensorflow 2.19, tf_keras 2.19, keras 3.15); tests never
import this file. Run from the repository root (fixed seeds, overwrites tests/engine/data/):

    /work/venvs/tf/bin/python tests/engine/make_fixtures.py

Writes, for each model NAME, `NAME.h5` (tf_keras legacy HDF5) or `NAME.keras` (Keras 3) and
`NAME.npz` holding `x0`, `x1`, … (one per model input) and `y0`, `y1`, … (real Keras outputs,
inference mode). When the bundled demo models exist under resources/, also writes
`<demo>_keras_outputs.npz` with `y0` = real Keras outputs on the demo's sample.npz `x`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # Keras 3
import numpy as np
import tf_keras

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
SEED = 20240


def randomize(model, rng: np.random.Generator) -> None:
    """Seeded random weights with non-trivial BatchNormalization statistics."""
    values = []
    for w in model.weights:
        name = (getattr(w, "path", None) or w.name).split("/")[-1].split(":")[0]
        shape = tuple(int(d) for d in w.shape)
        if name in ("moving_variance", "variance"):
            v = rng.uniform(0.3, 2.0, shape)
        elif name == "gamma":
            v = rng.uniform(0.5, 1.5, shape)
        elif name == "count":
            v = np.asarray(w.numpy())
        elif name == "alpha":
            v = rng.uniform(0.05, 0.5, shape)
        else:
            fan_in = max(1, int(np.prod(shape[:-1]))) if len(shape) > 1 else 4
            v = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
        values.append(np.asarray(v, dtype=w.dtype if isinstance(w.dtype, str) else "float32"))
    model.set_weights(values)


def image_branch(L, x):
    """Convolutions, BN, pooling, padding, merges on a 12x12x3 image."""
    c = L.Conv2D(8, 3, padding="same", activation="relu", name="conv_same")(x)
    c = L.BatchNormalization(name="bn")(c)
    c = L.ReLU(max_value=6.0, name="relu_max6")(c)
    d = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, name="dw")(c)
    d = L.ReLU(negative_slope=0.1, threshold=0.05, name="relu_leaky_thr")(d)
    s = L.SeparableConv2D(16, 3, strides=2, padding="same", activation="tanh", name="sep")(c)
    a = L.Add(name="add")([d, s])
    a = L.BatchNormalization(center=False, epsilon=0.01, name="bn_nocenter")(a)
    p = L.MaxPooling2D(2, padding="same", name="maxpool_same")(a)
    e = L.Conv2D(6, 2, dilation_rate=2, padding="same", activation="elu", name="conv_dil")(a)
    e = L.Conv2D(6, (3, 2), strides=(2, 1), use_bias=False, name="conv_valid_nobias")(e)
    z = L.ZeroPadding2D(((1, 0), (0, 1)), name="zpad")(e)
    z = L.Cropping2D(((0, 1), (1, 0)), name="crop")(z)
    u = L.UpSampling2D(2, name="up")(p)
    u = L.AveragePooling2D(3, strides=2, padding="same", name="avgpool_same")(u)
    u = L.AveragePooling2D(2, name="avgpool")(u)
    u = L.SpatialDropout2D(0.3, name="sdrop")(u)
    g1 = L.GlobalAveragePooling2D(name="gap")(u)
    g2 = L.GlobalMaxPooling2D(name="gmp")(z)
    g3 = L.GlobalAveragePooling2D(keepdims=True, name="gap_keep")(z)
    g3 = L.Flatten(name="flat_keep")(g3)
    return L.Concatenate(name="cat_img")([g1, g2, g3])


def seq_branch(L, x, leaky):
    """1-D convolutions and pooling, LayerNormalization, PReLU on a (10, 4) sequence."""
    c = L.Conv1D(6, 3, padding="causal", dilation_rate=2, activation="swish", name="c1_causal")(x)
    c = L.LayerNormalization(name="ln")(c)
    c = L.PReLU(name="prelu")(c)
    v = L.Conv1D(5, 2, strides=2, name="c1_valid")(c)
    v = leaky(v)
    m = L.MaxPooling1D(2, padding="same", name="mp1")(v)
    q = L.AveragePooling1D(2, strides=1, name="ap1")(c)
    g = L.GlobalMaxPooling1D(name="gmp1")(m)
    h = L.GlobalAveragePooling1D(name="gap1")(q)
    p = L.Permute((2, 1), name="perm")(c)
    p = L.Reshape((6, 5, 2), name="reshape")(p)
    p = L.Flatten(name="flat_p")(p)
    return L.Concatenate(name="cat_seq")([g, h, p])


def activation_bank(L, x, activations):
    """One small Dense per activation, and the Activation layer forms, merged."""
    outs = [L.Dense(3, activation=a, name=f"dense_{a}")(x) for a in activations]
    outs.append(L.Activation("softmax", name="act_softmax")(outs[0]))
    outs.append(L.Activation("sigmoid", name="act_sigmoid")(outs[1]))
    outs.append(L.ELU(alpha=0.7, name="elu_layer")(outs[2]))
    outs.append(L.Softmax(name="softmax_layer")(outs[3]))
    return L.Concatenate(name="cat_act")(outs)


def every_layer_model(K, L, activations, leaky):
    """A Functional model with three inputs that uses every layer the engine supports."""
    img = K.Input((12, 12, 3), name="img")
    seq = K.Input((10, 4), name="seq")
    tok = K.Input((5,), name="tok")
    i = image_branch(L, L.GaussianNoise(0.5, name="noise")(img))
    s = seq_branch(L, seq, leaky)
    t = L.Embedding(20, 4, name="emb")(tok)
    t = L.Flatten(name="flat_emb")(t)
    t = L.Dense(8, name="dense_emb")(t)
    h = L.Concatenate(name="cat_all")([i, s, t])
    h = L.Rescaling(0.5, offset=0.1, name="rescale")(h)
    h = L.Normalization(mean=0.2, variance=1.5, name="norm")(h)
    h = L.Dropout(0.5, name="drop")(h)
    a = L.Dense(6, name="da")(h)
    b = L.Dense(6, name="db")(h)
    merged = [
        L.Subtract(name="sub")([a, b]),
        L.Multiply(name="mul")([a, b]),
        L.Average(name="avg")([a, b]),
        L.Maximum(name="max")([a, b]),
        L.Minimum(name="min")([a, b]),
    ]
    m = L.Concatenate(name="cat_merge")(merged)
    head = L.Dense(5, activation="softmax", name="head_cls")(m)
    reg = L.Dense(2, name="head_reg")(activation_bank(L, m, activations))
    return K.Model([img, seq, tok], [head, reg], name="every_layer")


def sequential_cnn(K, L):
    """A plain Sequential CNN, the throughput benchmark of the engine."""
    return K.Sequential(
        [
            K.Input((16, 16, 1)),
            L.Conv2D(8, 3, activation="relu", name="conv1"),
            L.BatchNormalization(name="bn1"),
            L.MaxPooling2D(2, name="pool1"),
            L.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
            L.MaxPooling2D(2, name="pool2"),
            L.Flatten(name="flat"),
            L.Dropout(0.25, name="drop"),
            L.Dense(32, activation="relu", name="fc1"),
            L.Dense(10, activation="softmax", name="fc2"),
        ],
        name="seq_cnn",
    )


def inputs_for(model, rng: np.random.Generator, n: int = 8) -> list[np.ndarray]:
    xs = []
    for inp in model.inputs:
        shape = (n, *[int(d) for d in inp.shape[1:]])
        if inp.name.startswith("tok"):
            xs.append(rng.integers(0, 20, shape).astype(np.float32))
        else:
            xs.append(rng.normal(0.0, 1.0, shape).astype(np.float32))
    return xs


def save_io(name: str, model, xs: list[np.ndarray]) -> None:
    ys = model(xs if len(xs) > 1 else xs[0], training=False)
    ys = ys if isinstance(ys, list | tuple) else [ys]
    arrays = {f"x{i}": x for i, x in enumerate(xs)}
    arrays.update({f"y{i}": np.asarray(y, dtype=np.float32) for i, y in enumerate(ys)})
    np.savez_compressed(DATA / f"{name}.npz", **arrays)


def save_layer_outputs(name: str, K, model, xs: list[np.ndarray], n: int = 2) -> None:
    """Every layer's output on the first n samples, keyed by layer name (per-layer checks)."""
    layers = [la for la in model.layers if la.__class__.__name__ != "InputLayer"]
    probe = K.Model(model.inputs, [la.output for la in layers])
    outs = probe([x[:n] for x in xs], training=False)
    arrays = {la.name: np.asarray(o, dtype=np.float32) for la, o in zip(layers, outs, strict=True)}
    np.savez_compressed(DATA / f"{name}_layers.npz", **arrays)


def nested_model(K, L):
    """A Functional model that calls a Sequential sub-model twice (shared weights)."""
    inner = K.Sequential(
        [K.Input((6,)), L.Dense(5, activation="relu", name="inner_a"), L.Dense(4, name="inner_b")],
        name="inner",
    )
    a, b = K.Input((6,), name="a"), K.Input((6,), name="b")
    out = L.Add(name="sum")([inner(a), inner(b)])
    return K.Model([a, b], L.Dense(3, name="top")(out), name="nested")


def keras2_fixtures(rng: np.random.Generator) -> None:
    K, L = tf_keras, tf_keras.layers
    acts = ["relu", "sigmoid", "tanh", "softmax", "linear", "elu", "selu", "softplus"]
    acts += ["softsign", "swish", "gelu", "hard_sigmoid", "exponential", "mish"]
    model = every_layer_model(K, L, acts, lambda v: L.LeakyReLU(0.15, name="leaky")(v))
    randomize(model, rng)
    model.save(DATA / "every_layer_k2.h5", include_optimizer=False)
    xs = inputs_for(model, rng)
    save_io("every_layer_k2", model, xs)
    save_layer_outputs("every_layer_k2", K, model, xs)

    cnn = sequential_cnn(K, L)
    randomize(cnn, rng)
    cnn.save(DATA / "seq_cnn_k2.h5", include_optimizer=False)
    save_io("seq_cnn_k2", cnn, inputs_for(cnn, rng, n=32))

    nested = nested_model(K, L)
    randomize(nested, rng)
    nested.save(DATA / "nested_k2.h5", include_optimizer=False)
    save_io("nested_k2", nested, inputs_for(nested, rng))


def keras3_fixtures(rng: np.random.Generator) -> None:
    K, L = keras, keras.layers
    acts = ["relu", "relu6", "sigmoid", "tanh", "softmax", "linear", "elu", "selu"]
    acts += ["softplus", "softsign", "silu", "gelu", "hard_sigmoid", "exponential"]
    acts += ["leaky_relu", "mish", "hard_silu"]
    model = every_layer_model(K, L, acts, lambda v: L.LeakyReLU(0.15, name="leaky")(v))
    randomize(model, rng)
    model.save(DATA / "every_layer_k3.keras")
    xs = inputs_for(model, rng)
    save_io("every_layer_k3", model, xs)
    save_layer_outputs("every_layer_k3", K, model, xs)

    cnn = sequential_cnn(K, L)
    randomize(cnn, rng)
    cnn.save(DATA / "seq_cnn_k3.keras")
    save_io("seq_cnn_k3", cnn, inputs_for(cnn, rng, n=16))

    nested = nested_model(K, L)
    randomize(nested, rng)
    nested.save(DATA / "nested_k3.keras")
    save_io("nested_k3", nested, inputs_for(nested, rng))


def demo_fixtures() -> None:
    """Real tf_keras outputs on each bundled demo's sample.npz x."""
    for h5 in sorted((ROOT / "resources").glob("*/*.h5")):
        sample = h5.parent / "sample.npz"
        if not sample.exists():
            continue
        model = tf_keras.models.load_model(h5, compile=False)
        with np.load(sample, allow_pickle=False) as f:
            x = np.asarray(f["x"], dtype=np.float32)
        y = np.asarray(model(x, training=False), dtype=np.float32)
        np.savez_compressed(DATA / f"{h5.parent.name}_keras_outputs.npz", y0=y)
        print(f"{h5.parent.name}: x {x.shape} -> y {y.shape}")


SHARED = ROOT.parent / "shared" / "models"
THIRD_PARTY = {
    "fer_emotion": SHARED / "keras-h5-fer-emotion" / "emotion_model.hdf5",
    "nsfwjs_mobilenet_v2": SHARED / "tfjs-layers-nsfwjs-mobilenet_v2-u8" / "model.json",
}


def probe_input(shape: tuple[int, ...], n: int = 2) -> np.ndarray:
    """A deterministic input the tests rebuild bit for bit (no RNG stream involved)."""
    size = n * int(np.prod(shape))
    return np.sin(np.arange(size, dtype=np.float64) * 0.0137).astype(np.float32).reshape(n, *shape)


def third_party_fixtures() -> None:
    """Real third-party files: Keras 2.0.5 .h5 (tf_keras) and a uint8 TF.js MobileNetV2
    (loaded into tf_keras by the official tensorflowjs package)."""
    import tensorflowjs

    for name, path in THIRD_PARTY.items():
        if not path.exists():
            continue
        if path.suffix == ".json":
            model = tensorflowjs.converters.load_keras_model(str(path))
        else:
            model = tf_keras.models.load_model(path, compile=False)
        x = probe_input(tuple(int(d) for d in model.inputs[0].shape[1:]))
        y = np.asarray(model(x, training=False), dtype=np.float32)
        np.savez_compressed(DATA / f"{name}_keras_outputs.npz", y0=y)
        print(f"{name}: x {x.shape} -> y {y.shape}")


def main() -> int:
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    keras2_fixtures(rng)
    keras3_fixtures(rng)
    demo_fixtures()
    third_party_fixtures()
    for p in sorted(DATA.iterdir()):
        print(f"{p.name}: {p.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
