"""A weight tensor seen as the linear maps GPTQ works on, and its layer's inputs as columns.

GPTQ needs W as `(G, rows, columns)` — rows are outputs, columns are input features, G
independent maps for grouped and depthwise convolutions — and the layer's inputs as vectors
`(n, G, columns)` in the same column order. For a convolution a column is one (tap, input
channel) pair, so the inputs are the im2col patches laid out as the kernel flattens: Keras
`(*k, C_in/g, F)` flattens taps then channels; ONNX `(F, C_in/g, *k)` channels then taps.
A `LinearView` holds both conversions for one tensor; building one is where a layer that GPTQ
cannot treat is refused (with the reason, which the preview shows).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from inspector.engine import conv as cv
from inspector.engine.layers import canonical, ints

__all__ = ["LinearView", "NotLinear", "keras_view", "onnx_view"]

_COLUMN_ELEMENTS = 1 << 22
"""im2col elements per chunk handed to the Hessian (~32 MB of float64)."""


class NotLinear(ValueError):
    """The tensor is not a weight GPTQ can treat; the message says why."""


Columns = Callable[[Sequence[np.ndarray]], Iterator[np.ndarray]]


@dataclass(frozen=True)
class LinearView:
    """One tensor as `groups` maps of `rows` × `columns`; `to_matrix`/`from_matrix` convert
    arrays of the tensor's shape, `columns(inputs)` yields the layer's inputs as chunks of
    `(n, groups, columns)` column vectors."""

    shape: tuple[int, ...]
    groups: int
    rows: int
    columns: int
    to_matrix: Callable[[np.ndarray], np.ndarray]
    from_matrix: Callable[[np.ndarray], np.ndarray]
    inputs: Columns


def _matrix(shape: tuple[int, ...], out_first: bool, inputs: Columns) -> LinearView:
    """A 2-D weight: `(in, out)` (Keras Dense, MatMul B) or `(out, in)` (Gemm transB=1)."""
    n_out, n_in = (shape[0], shape[1]) if out_first else (shape[1], shape[0])
    if out_first:
        return LinearView(shape, 1, n_out, n_in, lambda a: a[None], lambda m: m[0], inputs)
    return LinearView(shape, 1, n_out, n_in, lambda a: a.T[None], lambda m: m[0].T, inputs)


def _flat_inputs(width: int) -> Columns:
    def columns(xs: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
        x = np.asarray(xs[0])
        if x.shape[-1] != width:
            raise NotLinear(f"the layer's input has {x.shape[-1]} features, not {width}")
        yield x.reshape(-1, 1, width)

    return columns


def _patches(
    to_last: Callable[[np.ndarray], np.ndarray],
    ksize: tuple[int, ...],
    strides: tuple[int, ...],
    dilation: tuple[int, ...],
    padding: str | list[tuple[int, int]],
    arrange: Callable[[np.ndarray], np.ndarray],
) -> Columns:
    """im2col chunks: `arrange` turns windows `(n, *out, C, *k)` into `(m, G, columns)`."""

    def columns(xs: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
        x = to_last(np.asarray(xs[0], dtype=np.float32))
        per_sample = max(1, x[:1].size * math.prod(ksize))
        step = max(1, _COLUMN_ELEMENTS // per_sample)
        for start in range(0, x.shape[0], step):
            part = x[start : start + step]
            yield arrange(cv.padded_windows(part, ksize, strides, dilation, padding))

    return columns


def _keras_to_last(config: Mapping[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    fmt = config.get("data_format") or config.get("dataFormat") or "channels_last"
    if fmt in ("channels_first", "channelsFirst"):
        return lambda x: np.moveaxis(x, 1, -1)
    return lambda x: x


def _conv_geometry(config: Mapping[str, Any], nd: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return ints(config.get("strides", 1), nd), ints(config.get("dilation_rate", 1), nd)


def _keras_conv(shape: tuple[int, ...], config: Mapping[str, Any]) -> LinearView:
    """Keras Conv1D/2D kernel `(*k, C/g, F)`: map g is W_g[f, (tap, c)] = kernel[tap, c, g·F/g + f]
    (the executor's grouped convolution splits channels and filters the same way)."""
    nd = len(shape) - 2
    ksize, cin_g, filters = shape[:nd], shape[-2], shape[-1]
    g = int(config.get("groups", 1) or 1)
    taps, fg = math.prod(ksize), filters // g
    strides, dilation = _conv_geometry(config, nd)

    def arrange(win: np.ndarray) -> np.ndarray:
        order = (0, *range(1, nd + 1), *range(nd + 2, 2 * nd + 2), nd + 1)
        cols = win.transpose(order).reshape(-1, taps, g, cin_g)
        return cols.transpose(0, 2, 1, 3).reshape(-1, g, taps * cin_g)

    return LinearView(
        shape,
        g,
        fg,
        taps * cin_g,
        lambda a: a.reshape(taps, cin_g, g, fg).transpose(2, 3, 0, 1).reshape(g, fg, -1),
        lambda m: m.reshape(g, fg, taps, cin_g).transpose(2, 3, 0, 1).reshape(shape),
        _patches(_keras_to_last(config), ksize, strides, dilation, _padding(config), arrange),
    )


def _padding(config: Mapping[str, Any]) -> str:
    return str(config.get("padding", "valid"))


def _keras_depthwise(shape: tuple[int, ...], config: Mapping[str, Any]) -> LinearView:
    """Depthwise kernel `(*k, C, M)`: channel c is its own map W_c[m, tap] = kernel[tap, c, m]."""
    nd = len(shape) - 2
    ksize, channels, mult = shape[:nd], shape[-2], shape[-1]
    taps = math.prod(ksize)
    strides, dilation = _conv_geometry(config, nd)
    return LinearView(
        shape,
        channels,
        mult,
        taps,
        lambda a: a.reshape(taps, channels, mult).transpose(1, 2, 0),
        lambda m: m.transpose(2, 0, 1).reshape(shape),
        _patches(
            _keras_to_last(config),
            ksize,
            strides,
            dilation,
            _padding(config),
            lambda win: win.reshape(-1, channels, taps),
        ),
    )


def _pointwise_inputs(config: Mapping[str, Any], depthwise: np.ndarray) -> Columns:
    """A separable conv's pointwise kernel reads the depthwise result (float weights)."""
    nd = depthwise.ndim - 2
    strides, dilation = _conv_geometry(config, nd)
    to_last, padding = _keras_to_last(config), _padding(config)
    width = depthwise.shape[-2] * depthwise.shape[-1]

    def columns(xs: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
        x = to_last(np.asarray(xs[0], dtype=np.float32))
        y = cv.depthwise_conv(x, depthwise, strides, dilation, padding)
        yield y.reshape(-1, 1, width)

    return columns


def keras_view(
    class_name: str,
    config: Mapping[str, Any],
    role: str,
    shape: tuple[int, ...],
    weights: Mapping[str, np.ndarray],
) -> LinearView:
    """The view of a Keras / TF.js layer's weight with `role` (`kernel`, `depthwise_kernel`,
    `pointwise_kernel`); `weights` are the layer's float weights by role (a separable conv's
    pointwise map needs its depthwise kernel). Raises `NotLinear` with the reason otherwise."""
    cls = canonical(class_name)
    if cls == "Dense" and role == "kernel" and len(shape) == 2:
        return _matrix(shape, False, _flat_inputs(shape[0]))
    if cls in ("Conv1D", "Conv2D") and role == "kernel" and len(shape) >= 3:
        return _keras_conv(shape, config)
    depthwise = ("DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D")
    if cls in depthwise and role == "depthwise_kernel" and len(shape) >= 3:
        return _keras_depthwise(shape, config)
    if cls in ("SeparableConv1D", "SeparableConv2D") and role == "pointwise_kernel":
        dw = weights["depthwise_kernel"]
        flat = (math.prod(shape[:-1]), shape[-1])
        view = _matrix(flat, False, _pointwise_inputs(config, dw))
        return LinearView(
            shape,
            1,
            view.rows,
            view.columns,
            lambda a: view.to_matrix(a.reshape(flat)),
            lambda m: view.from_matrix(m).reshape(shape),
            view.inputs,
        )
    raise NotLinear(f"not a Dense/Conv/DepthwiseConv kernel ({class_name} {role})")


# --------------------------------------------------------------------------- ONNX


def _onnx_pads(
    attrs: Mapping[str, Any],
    x: np.ndarray,
    ksize: tuple[int, ...],
    strides: tuple[int, ...],
    dilation: tuple[int, ...],
) -> list[tuple[int, int]]:
    """Explicit (before, after) pads per spatial dim from ONNX `pads` / `auto_pad`."""
    nd = len(ksize)
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = cv.pad_amounts(x.shape[1:-1], ksize, strides, dilation, "same")
        return pads if auto == "SAME_UPPER" else [(b, a) for a, b in pads]
    if auto == "VALID":
        return [(0, 0)] * nd
    p = list(attrs.get("pads", [0] * (2 * nd)))
    return [(int(p[i]), int(p[i + nd])) for i in range(nd)]


def _onnx_conv(shape: tuple[int, ...], attrs: Mapping[str, Any]) -> LinearView:
    """ONNX Conv weight `(F, C/g, *k)`: W_g[f, (c, tap)] = weight[g·F/g + f, c, tap]."""
    nd = len(shape) - 2
    filters, cin_g, ksize = shape[0], shape[1], tuple(shape[2:])
    g = int(attrs.get("group", 1))
    fg, taps = filters // g, math.prod(ksize)
    strides = tuple(int(s) for s in attrs.get("strides", [1] * nd))
    dilation = tuple(int(d) for d in attrs.get("dilations", [1] * nd))

    def columns(xs: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
        x = np.moveaxis(np.asarray(xs[0], dtype=np.float32), 1, -1)
        pads = _onnx_pads(attrs, x, ksize, strides, dilation)

        def arrange(win: np.ndarray) -> np.ndarray:
            return win.reshape(-1, g, cin_g * taps)

        yield from _patches(lambda a: a, ksize, strides, dilation, pads, arrange)([x])

    return LinearView(
        shape,
        g,
        fg,
        cin_g * taps,
        lambda a: a.reshape(g, fg, cin_g * taps),
        lambda m: m.reshape(shape),
        columns,
    )


def onnx_view(
    op_type: str, index: int, attrs: Mapping[str, Any], shape: tuple[int, ...]
) -> LinearView:
    """The view of the weight read as input `index` of an ONNX node; `NotLinear` otherwise."""
    if op_type == "Conv" and index == 1 and len(shape) >= 3:
        return _onnx_conv(shape, attrs)
    if op_type == "Gemm" and index == 1 and len(shape) == 2 and not attrs.get("transA", 0):
        trans = bool(attrs.get("transB", 0))
        return _matrix(shape, trans, _flat_inputs(shape[1] if trans else shape[0]))
    if op_type == "MatMul" and index == 1 and len(shape) == 2:
        return _matrix(shape, False, _flat_inputs(shape[0]))
    raise NotLinear(f"not a Conv/Gemm/MatMul weight (input {index} of {op_type})")
