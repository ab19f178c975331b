"""Layer builders: (layer spec, bound weights) -> a function from input arrays to the output.

Each supported Keras / TF.js class registers a builder and the canonical order of its weights.
Weights are bound by the weight name's last component (`dense/kernel:0` -> `kernel`) and, when
a name says nothing (Keras 3 `vars/0`), by position in that canonical order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from inspector.engine import conv as cv
from inspector.engine.activations import activation, elu, softmax
from inspector.engine.errors import EvaluationUnavailable
from inspector.engine.graph import LayerSpec

__all__ = [
    "Op",
    "bind_weights",
    "build_layer",
    "canonical",
    "is_supported",
    "register",
    "weight_roles",
]

Op = Callable[[list[np.ndarray]], np.ndarray]
Builder = Callable[[LayerSpec, dict[str, np.ndarray], bool], Op]

_BUILDERS: dict[str, Builder] = {}
_WEIGHT_ORDER: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {}
_ALIASES = {
    "Convolution1D": "Conv1D",
    "Convolution2D": "Conv2D",
    "MaxPool1D": "MaxPooling1D",
    "MaxPool2D": "MaxPooling2D",
    "AvgPool1D": "AveragePooling1D",
    "AvgPool2D": "AveragePooling2D",
    "GlobalMaxPool1D": "GlobalMaxPooling1D",
    "GlobalMaxPool2D": "GlobalMaxPooling2D",
    "GlobalAvgPool1D": "GlobalAveragePooling1D",
    "GlobalAvgPool2D": "GlobalAveragePooling2D",
    "SeparableConvolution2D": "SeparableConv2D",
}
_NAME_ALIASES = {"depthwise": "depthwise_kernel", "pointwise": "pointwise_kernel"}


def _no_weights(config: Mapping[str, Any]) -> list[str]:
    return []


def register(*class_names: str, weights: Callable[[Mapping[str, Any]], list[str]] = _no_weights):
    """Class decorator-style registration of a builder for one or more class names."""

    def wrap(builder: Builder) -> Builder:
        for name in class_names:
            _BUILDERS[name] = builder
            _WEIGHT_ORDER[name] = weights
        return builder

    return wrap


def canonical(class_name: str) -> str:
    return _ALIASES.get(class_name, class_name)


def is_supported(class_name: str) -> bool:
    return canonical(class_name) in _BUILDERS


def weight_roles(spec: LayerSpec, names: Sequence[str]) -> list[str]:
    """The canonical role (`kernel`, `bias`, `depthwise_kernel`, …) of each of a layer's weight
    names in file order: by the name's last component, else (Keras 3 `vars/0`) by position."""
    order = _WEIGHT_ORDER.get(canonical(spec.class_name), _no_weights)(spec.config)
    roles: list[str] = []
    for position, name in enumerate(names):
        key = name.rsplit("/", 1)[-1].split(":", 1)[0]
        key = _NAME_ALIASES.get(key, key)
        if key == "kernel" and "kernel" not in order and order:
            key = order[0]
        if key not in order or key in roles:
            if position >= len(order):
                raise EvaluationUnavailable(
                    f"layer {spec.name!r} of class {spec.class_name} has an unexpected "
                    f"weight {name!r}"
                )
            key = order[position]
        roles.append(key)
    missing = [k for k in order if k not in roles]
    if missing:
        raise EvaluationUnavailable(
            f"layer {spec.name!r} of class {spec.class_name} is missing weights {missing}"
        )
    return roles


def bind_weights(
    spec: LayerSpec, weights: Sequence[tuple[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Map a layer's (weight name, array) list, in file order, to its canonical weight names."""
    roles = weight_roles(spec, [name for name, _ in weights])
    return {
        role: np.asarray(value, dtype=np.float32)
        for role, (_, value) in zip(roles, weights, strict=True)
    }


def build_layer(spec: LayerSpec, weights: Sequence[tuple[str, np.ndarray]], keras3: bool) -> Op:
    """The forward function of one layer; EvaluationUnavailable when it cannot run."""
    builder = _BUILDERS.get(canonical(spec.class_name))
    if builder is None:
        raise EvaluationUnavailable(
            f"layer {spec.name!r} of class {spec.class_name} is not supported"
        )
    return builder(spec, bind_weights(spec, weights), keras3)


# ----------------------------------------------------------------------------- helpers


def ints(value: Any, n: int) -> tuple[int, ...]:
    """A Keras int-or-list setting as n ints."""
    if isinstance(value, int | float):
        return (int(value),) * n
    return tuple(int(v) for v in value)


def channels_last(config: Mapping[str, Any], op: Op, name: str) -> Op:
    """Run a channels-last op on channels_first data by moving the channel axis around it."""
    fmt = config.get("data_format") or config.get("dataFormat") or "channels_last"
    if fmt in ("channels_last", "channelsLast"):
        return op
    if fmt not in ("channels_first", "channelsFirst"):
        raise EvaluationUnavailable(f"layer {name!r}: data_format {fmt!r} is not supported")

    def run(xs: list[np.ndarray]) -> np.ndarray:
        y = op([np.moveaxis(x, 1, -1) for x in xs])
        return np.moveaxis(y, -1, 1) if y.ndim > 2 else y

    return run


def _act(spec: LayerSpec, keras3: bool) -> Callable[[np.ndarray], np.ndarray]:
    return activation(spec.config.get("activation"), keras3, f"layer {spec.name!r}: ")


def _kernel_bias(config: Mapping[str, Any], kernel: str = "kernel") -> list[str]:
    return [kernel, "bias"] if config.get("use_bias", True) else [kernel]


def _bias(w: dict[str, np.ndarray]) -> np.ndarray | float:
    return w.get("bias", np.float32(0.0))


# ----------------------------------------------------------------------------- core layers


@register("Dense", weights=_kernel_bias)
def _dense(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    act, kernel, bias = _act(spec, keras3), w["kernel"], _bias(w)
    return lambda xs: act(xs[0] @ kernel + bias)


@register("Conv1D", "Conv2D", weights=_kernel_bias)
def _conv(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    c, kernel, bias, act = spec.config, w["kernel"], _bias(w), _act(spec, keras3)
    nd = kernel.ndim - 2
    strides, dilation = ints(c.get("strides", 1), nd), ints(c.get("dilation_rate", 1), nd)
    padding, groups = str(c.get("padding", "valid")), int(c.get("groups", 1) or 1)

    def run(xs: list[np.ndarray]) -> np.ndarray:
        return act(cv.conv(xs[0], kernel, strides, dilation, padding, groups) + bias)

    return channels_last(c, run, spec.name)


@register(
    "DepthwiseConv1D", "DepthwiseConv2D", weights=lambda c: _kernel_bias(c, "depthwise_kernel")
)
def _depthwise(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    c, kernel, bias, act = spec.config, w["depthwise_kernel"], _bias(w), _act(spec, keras3)
    nd = kernel.ndim - 2
    strides, dilation = ints(c.get("strides", 1), nd), ints(c.get("dilation_rate", 1), nd)
    padding = str(c.get("padding", "valid"))

    def run(xs: list[np.ndarray]) -> np.ndarray:
        return act(cv.depthwise_conv(xs[0], kernel, strides, dilation, padding) + bias)

    return channels_last(c, run, spec.name)


def _separable_weights(config: Mapping[str, Any]) -> list[str]:
    return ["depthwise_kernel", *_kernel_bias(config, "pointwise_kernel")]


@register("SeparableConv1D", "SeparableConv2D", weights=_separable_weights)
def _separable(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    c, dw, bias, act = spec.config, w["depthwise_kernel"], _bias(w), _act(spec, keras3)
    pw = w["pointwise_kernel"].reshape(-1, w["pointwise_kernel"].shape[-1])
    nd = dw.ndim - 2
    strides, dilation = ints(c.get("strides", 1), nd), ints(c.get("dilation_rate", 1), nd)
    padding = str(c.get("padding", "valid"))

    def run(xs: list[np.ndarray]) -> np.ndarray:
        return act(cv.depthwise_conv(xs[0], dw, strides, dilation, padding) @ pw + bias)

    return channels_last(c, run, spec.name)


def _axes(value: Any, ndim: int) -> tuple[int, ...]:
    values = [value] if isinstance(value, int) else list(value)
    return tuple(sorted(int(a) % ndim for a in values))


def _broadcast(v: np.ndarray, axes: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Reshape a per-axis parameter (e.g. (C,)) to broadcast against an array of `shape`."""
    if v.size == 1:
        return v.reshape(())
    target = [shape[i] if i in axes else 1 for i in range(len(shape))]
    return v.reshape(target)


def _bn_weights(config: Mapping[str, Any]) -> list[str]:
    names = ["gamma"] if config.get("scale", True) else []
    names += ["beta"] if config.get("center", True) else []
    return [*names, "moving_mean", "moving_variance"]


@register("BatchNormalization", weights=_bn_weights)
def _batchnorm(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    eps = np.float32(spec.config.get("epsilon", 1e-3))
    inv = np.float32(1.0) / np.sqrt(w["moving_variance"] + eps)
    inv = inv * w.get("gamma", np.float32(1.0))
    shift = w.get("beta", np.float32(0.0)) - w["moving_mean"] * inv

    def run(xs: list[np.ndarray]) -> np.ndarray:
        x = xs[0]
        axes = _axes(spec.config.get("axis", -1), x.ndim)
        return x * _broadcast(inv, axes, x.shape) + _broadcast(shift, axes, x.shape)

    return run


def _ln_weights(config: Mapping[str, Any]) -> list[str]:
    names = ["gamma"] if config.get("scale", True) else []
    return names + (["beta"] if config.get("center", True) else [])


@register("LayerNormalization", weights=_ln_weights)
def _layernorm(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    c = spec.config
    eps, rms = np.float32(c.get("epsilon", 1e-3)), bool(c.get("rms_scaling", False))

    def run(xs: list[np.ndarray]) -> np.ndarray:
        x = xs[0]
        axes = _axes(c.get("axis", -1), x.ndim)
        if rms:
            y = x / np.sqrt(np.mean(x * x, axis=axes, keepdims=True) + eps)
        else:
            mean = np.mean(x, axis=axes, keepdims=True)
            var = np.mean(np.square(x - mean), axis=axes, keepdims=True)
            y = (x - mean) / np.sqrt(var + eps)
        if "gamma" in w:
            y = y * _broadcast(w["gamma"], axes, x.shape)
        if "beta" in w:
            y = y + _broadcast(w["beta"], axes, x.shape)
        return y

    return run


@register("Embedding", weights=lambda c: ["embeddings"])
def _embedding(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    table = w["embeddings"]

    def run(xs: list[np.ndarray]) -> np.ndarray:
        idx = xs[0].astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= table.shape[0]):
            raise EvaluationUnavailable(
                f"layer {spec.name!r}: token index out of range 0..{table.shape[0] - 1}"
            )
        return table[idx]

    return run


@register("Activation")
def _activation(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    act = _act(spec, keras3)
    return lambda xs: act(xs[0])


@register("ReLU")
def _relu(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    c = spec.config
    max_value = c.get("max_value", c.get("maxValue"))
    slope = np.float32(c.get("negative_slope", 0.0) or 0.0)
    threshold = np.float32(c.get("threshold", 0.0) or 0.0)

    def run(xs: list[np.ndarray]) -> np.ndarray:
        x = xs[0]
        y = np.where(x >= threshold, x, slope * (x - threshold))
        return y if max_value is None else np.minimum(y, np.float32(max_value))

    return run


@register("LeakyReLU")
def _leaky(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    c = spec.config
    slope = np.float32(c.get("negative_slope", c.get("alpha", 0.3)))
    return lambda xs: np.where(xs[0] > 0, xs[0], slope * xs[0])


@register("ELU")
def _elu(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    alpha = float(spec.config.get("alpha", 1.0))
    return lambda xs: elu(xs[0], alpha)


@register("ThresholdedReLU")
def _thresholded(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    theta = np.float32(spec.config.get("theta", 1.0))
    return lambda xs: np.where(xs[0] > theta, xs[0], np.float32(0))


@register("Softmax")
def _softmax(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    axis = spec.config.get("axis", -1)
    axis = tuple(axis) if isinstance(axis, list) else int(axis)
    return lambda xs: softmax(xs[0], axis)


@register("PReLU", weights=lambda c: ["alpha"])
def _prelu(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    alpha = w["alpha"]
    return lambda xs: np.maximum(xs[0], 0) + alpha * np.minimum(xs[0], 0)
