"""Engine unit checks that real-Keras fixtures cannot cover: error messages, topology variants,
channels_first, grouped convolutions and strided/dilated corners against a naive float64 loop."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from inspector.core.model import Model
from inspector.engine import EvaluationUnavailable, Executor
from inspector.engine.activations import activation
from inspector.engine.conv import conv, depthwise_conv, pad_amounts

RNG = np.random.default_rng(7)


def naive_conv(x, kernel, strides, dilation, padding, groups=1):
    """Direct 2-D convolution in float64, one output pixel at a time."""
    kh, kw, cin_g, filters = kernel.shape
    pads = pad_amounts(x.shape[1:3], (kh, kw), strides, dilation, padding)
    xp = np.pad(x.astype(np.float64), [(0, 0), *pads, (0, 0)])
    oh = (xp.shape[1] - (kh - 1) * dilation[0] - 1) // strides[0] + 1
    ow = (xp.shape[2] - (kw - 1) * dilation[1] - 1) // strides[1] + 1
    out = np.zeros((x.shape[0], oh, ow, filters))
    fg = filters // groups
    for i, j, f in itertools.product(range(oh), range(ow), range(filters)):
        g = f // fg
        for a, b in itertools.product(range(kh), range(kw)):
            pix = xp[:, i * strides[0] + a * dilation[0], j * strides[1] + b * dilation[1]]
            out[:, i, j, f] += pix[:, g * cin_g : (g + 1) * cin_g] @ kernel[a, b, :, f]
    return out


@pytest.mark.parametrize(
    ("size", "k", "strides", "dilation", "padding", "groups"),
    [
        ((6, 7), (3, 3), (2, 2), (1, 1), "same", 1),
        ((6, 6), (2, 3), (1, 2), (1, 1), "same", 1),
        ((7, 7), (3, 2), (1, 1), (2, 2), "same", 1),
        ((7, 5), (3, 3), (2, 1), (1, 1), "valid", 1),
        ((5, 5), (3, 3), (1, 1), (1, 1), "same", 2),
    ],
)
def test_conv_matches_naive_loop(size, k, strides, dilation, padding, groups) -> None:
    x = RNG.normal(size=(2, *size, 4)).astype(np.float32)
    kernel = RNG.normal(size=(*k, 4 // groups, 6)).astype(np.float32)
    ours = conv(x, kernel, strides, dilation, padding, groups)
    ref = naive_conv(x, kernel, strides, dilation, padding, groups)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


def test_depthwise_matches_grouped_conv() -> None:
    """Depthwise with multiplier M is a grouped conv with one group per input channel."""
    x = RNG.normal(size=(2, 7, 6, 3)).astype(np.float32)
    dw = RNG.normal(size=(3, 3, 3, 2)).astype(np.float32)
    ours = depthwise_conv(x, dw, (2, 1), (1, 1), "same")
    ref = naive_conv(x, dw.reshape(3, 3, 1, 6), (2, 1), (1, 1), "same", groups=3)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


def layer(name, cls, inbound, **config):
    return {
        "class_name": cls,
        "name": name,
        "config": {"name": name, **config},
        "inbound_nodes": [[[i, 0, 0, {}] for i in inbound]] if inbound else [],
    }


def functional(layers, inputs, outputs):
    return {
        "class_name": "Functional",
        "config": {
            "name": "m",
            "layers": layers,
            "input_layers": [[i, 0, 0] for i in inputs],
            "output_layers": [[o, 0, 0] for o in outputs],
        },
    }


def test_unsupported_layer_names_layer_and_class() -> None:
    cfg = functional(
        [
            layer("x", "InputLayer", [], batch_input_shape=[None, 5, 3]),
            layer("lstm_1", "LSTM", ["x"], units=4),
        ],
        ["x"],
        ["lstm_1"],
    )
    with pytest.raises(EvaluationUnavailable) as err:
        Executor.from_config(cfg, {"lstm_1": [("lstm_1/kernel:0", np.zeros((3, 16)))]})
    assert str(err.value) == (
        "evaluation unavailable: layer 'lstm_1' of class LSTM is not supported"
    )


def test_model_without_topology() -> None:
    with pytest.raises(EvaluationUnavailable, match="model has no layer topology"):
        Executor.from_model(Model("w.npz", "npz", []))


def test_channels_first_equals_transposed_channels_last() -> None:
    x = RNG.normal(size=(2, 3, 6, 6)).astype(np.float32)
    kernel = RNG.normal(size=(3, 3, 3, 4)).astype(np.float32)

    def model(fmt):
        return functional(
            [
                layer(
                    "x",
                    "InputLayer",
                    [],
                    batch_input_shape=[None, 3, 6, 6]
                    if fmt == "channels_first"
                    else [None, 6, 6, 3],
                ),
                layer(
                    "c",
                    "Conv2D",
                    ["x"],
                    kernel_size=[3, 3],
                    strides=[2, 2],
                    padding="same",
                    data_format=fmt,
                    activation="relu",
                    use_bias=False,
                ),
                layer(
                    "p", "MaxPooling2D", ["c"], pool_size=[2, 2], padding="valid", data_format=fmt
                ),
                layer("f", "Flatten", ["p"], data_format=fmt),
            ],
            ["x"],
            ["f"],
        )

    weights = {"c": [("c/kernel:0", kernel)]}
    first = Executor.from_config(model("channels_first"), weights).run([x])[0]
    last = Executor.from_config(model("channels_last"), weights).run([x.transpose(0, 2, 3, 1)])[0]
    np.testing.assert_array_equal(first, last)


def test_sequential_forms_and_positional_weights() -> None:
    """Keras 3 style: InputLayer with batch_shape in the layers, BN without beta bound by
    position (vars/0..2); Keras 2 style: batch_input_shape on the first layer."""
    gamma, mean, var = (
        np.array([1.5, 0.5], np.float32),
        np.array([0.1, -0.2], np.float32),
        np.array([2.0, 0.5], np.float32),
    )
    bn = {
        "class_name": "BatchNormalization",
        "config": {"name": "bn", "axis": -1, "epsilon": 0.001, "center": False, "scale": True},
        "registered_name": None,
    }
    k3 = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {"name": "in", "batch_shape": [None, 2]},
                    "registered_name": None,
                },
                bn,
            ],
        },
    }
    weights = {"bn": [("bn/vars/0", gamma), ("bn/vars/1", mean), ("bn/vars/2", var)]}
    x = np.array([[1.0, 2.0]], np.float32)
    expected = (x - mean) / np.sqrt(var + 0.001) * gamma
    np.testing.assert_allclose(Executor.from_config(k3, weights).run([x])[0], expected, 1e-6)
    k2 = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {
                    "class_name": "Dense",
                    "config": {
                        "name": "d",
                        "units": 2,
                        "activation": "hardSigmoid",
                        "batch_input_shape": [None, 2],
                    },
                }
            ],
        },
    }
    ex = Executor.from_config(
        k2, {"d": [("d/kernel", np.eye(2, dtype=np.float32)), ("d/bias", np.zeros(2, np.float32))]}
    )
    assert ex.input_shapes == [(None, 2)]
    np.testing.assert_allclose(ex.run([x])[0], np.clip(0.2 * x + 0.5, 0, 1), 1e-6)
    no_shape = {
        "class_name": "Sequential",
        "config": {"layers": [{"class_name": "Dense", "config": {"name": "d", "units": 2}}]},
    }
    with pytest.raises(EvaluationUnavailable, match="input shape"):
        Executor.from_config(no_shape, {})


def test_activation_spellings_and_versions() -> None:
    x = np.linspace(-4, 4, 17, dtype=np.float32)
    np.testing.assert_allclose(activation("hard_sigmoid", True)(x), np.clip(x / 6 + 0.5, 0, 1))
    np.testing.assert_allclose(activation("hardSigmoid", False)(x), np.clip(0.2 * x + 0.5, 0, 1))
    np.testing.assert_allclose(activation("leakyRelu", False)(x), np.where(x > 0, x, 0.2 * x))
    keras3_dict = {"module": "keras.activations", "class_name": "function", "config": "relu6"}
    np.testing.assert_allclose(activation(keras3_dict, True)(x), np.clip(x, 0, 6))
    exact, approx = (
        activation("gelu", True)(x),
        activation({"class_name": "gelu", "config": {"approximate": True}}, True)(x),
    )
    assert 1e-5 < np.max(np.abs(exact - approx)) < 1e-2
    with np.errstate(over="ignore"):
        assert activation("exponential", False)(np.float32([1000.0]))[0] == np.inf
    with pytest.raises(EvaluationUnavailable, match="activation 'crelu' is not supported"):
        activation("crelu", False)
