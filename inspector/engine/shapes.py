"""Weightless layers: merges, pooling, reshaping, padding, scaling, inference-time identities.

Importing this module registers them with `inspector.engine.layers`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from inspector.engine import conv as cv
from inspector.engine.errors import EvaluationUnavailable
from inspector.engine.graph import LayerSpec
from inspector.engine.layers import Op, channels_last, ints, register

__all__: list[str] = []

_IDENTITY = (
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
)


@register(*_IDENTITY)
def _identity(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    return lambda xs: xs[0]


_MERGES = {
    "Add": lambda xs: functools.reduce(np.add, xs),
    "Subtract": lambda xs: xs[0] - xs[1],
    "Multiply": lambda xs: functools.reduce(np.multiply, xs),
    "Average": lambda xs: functools.reduce(np.add, xs) / np.float32(len(xs)),
    "Maximum": lambda xs: functools.reduce(np.maximum, xs),
    "Minimum": lambda xs: functools.reduce(np.minimum, xs),
}


@register(*_MERGES)
def _merge(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    return _MERGES[spec.class_name]


@register("Concatenate")
def _concatenate(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    axis = int(spec.config.get("axis", -1))
    return lambda xs: np.concatenate(xs, axis=axis)


def _pool_op(spec: LayerSpec, nd: int, mode: str) -> Op:
    c = spec.config
    size = ints(c.get("pool_size", 2), nd)
    strides = ints(c.get("strides") or size, nd)
    padding = str(c.get("padding", "valid"))
    return channels_last(c, lambda xs: cv.pool(xs[0], size, strides, padding, mode), spec.name)


@register("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D")
def _pool(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    mode = "max" if spec.class_name.startswith("Max") else "avg"
    return _pool_op(spec, int(spec.class_name[-2]), mode)


@register(
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D"
)
def _global_pool(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    nd, keep = int(spec.class_name[-2]), bool(spec.config.get("keepdims", False))
    reduce = np.max if "Max" in spec.class_name else np.mean
    axes = tuple(range(1, nd + 1))
    return channels_last(spec.config, lambda xs: reduce(xs[0], axis=axes, keepdims=keep), spec.name)


@register("Flatten")
def _flatten(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    fmt = spec.config.get("data_format") or "channels_last"

    def run(xs: list[np.ndarray]) -> np.ndarray:
        x = xs[0]
        if fmt == "channels_first" and x.ndim > 2:
            x = np.moveaxis(x, 1, -1)
        return x.reshape(x.shape[0], -1)

    return run


@register("Reshape")
def _reshape(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    target = tuple(int(d) for d in spec.config.get("target_shape") or spec.config["targetShape"])
    return lambda xs: xs[0].reshape(xs[0].shape[0], *target)


@register("Permute")
def _permute(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    dims = tuple(int(d) for d in spec.config["dims"])
    return lambda xs: np.transpose(xs[0], (0, *dims))


@register("RepeatVector")
def _repeat_vector(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    n = int(spec.config["n"])
    return lambda xs: np.repeat(xs[0][:, None, :], n, axis=1)


def _pairs(value: Any, nd: int) -> list[tuple[int, int]]:
    """Keras padding/cropping: int, (a, b) per dim, or ((a0, b0), (a1, b1))."""
    if isinstance(value, int):
        return [(value, value)] * nd
    if nd == 1 and len(value) == 2 and isinstance(value[0], int):
        return [(int(value[0]), int(value[1]))]
    return [(v, v) if isinstance(v, int) else (int(v[0]), int(v[1])) for v in value]


@register("ZeroPadding1D", "ZeroPadding2D")
def _zero_padding(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    nd = int(spec.class_name[-2])
    pads = _pairs(spec.config.get("padding", 1), nd)
    return channels_last(spec.config, lambda xs: np.pad(xs[0], [(0, 0), *pads, (0, 0)]), spec.name)


@register("Cropping1D", "Cropping2D")
def _cropping(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    nd = int(spec.class_name[-2])
    crops = _pairs(spec.config.get("cropping", 1), nd)

    def run(xs: list[np.ndarray]) -> np.ndarray:
        x = xs[0]
        index = [slice(a, x.shape[i + 1] - b) for i, (a, b) in enumerate(crops)]
        return x[(slice(None), *index)]

    return channels_last(spec.config, run, spec.name)


@register("UpSampling1D", "UpSampling2D")
def _upsampling(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    nd = int(spec.class_name[-2])
    size = ints(spec.config.get("size", 2), nd)
    if spec.config.get("interpolation", "nearest") != "nearest":
        raise EvaluationUnavailable(
            f"layer {spec.name!r} of class {spec.class_name}: interpolation "
            f"{spec.config.get('interpolation')!r} is not supported"
        )

    def run(xs: list[np.ndarray]) -> np.ndarray:
        x = xs[0]
        for axis, s in enumerate(size, start=1):
            x = np.repeat(x, s, axis=axis)
        return x

    return channels_last(spec.config, run, spec.name)


@register("Rescaling")
def _rescaling(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    scale = np.asarray(spec.config.get("scale", 1.0), np.float32)
    offset = np.asarray(spec.config.get("offset", 0.0), np.float32)
    return lambda xs: xs[0] * scale + offset


def _normalization_weights(config: Mapping[str, Any]) -> list[str]:
    return [] if config.get("mean") is not None else ["mean", "variance", "count"]


@register("Normalization", weights=_normalization_weights)
def _normalization(spec: LayerSpec, w: dict[str, np.ndarray], keras3: bool) -> Op:
    c = spec.config
    mean = np.asarray(w.get("mean", c.get("mean", 0.0)), np.float32)
    std = np.maximum(
        np.sqrt(np.asarray(w.get("variance", c.get("variance", 1.0)), np.float32)), np.float32(1e-7)
    )
    axis, invert = c.get("axis", -1), bool(c.get("invert", False))

    def run(xs: list[np.ndarray]) -> np.ndarray:
        x = xs[0]
        axes = (
            ()
            if axis is None
            else tuple(int(a) % x.ndim for a in ([axis] if isinstance(axis, int) else axis))
        )
        shape = [x.shape[i] if i in axes else 1 for i in range(x.ndim)]
        m = mean.reshape(shape) if mean.size > 1 else mean
        s = std.reshape(shape) if std.size > 1 else std
        return m + x * s if invert else (x - m) / s

    return run
