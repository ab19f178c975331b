"""Keras / TF.js activation functions in float32 numpy, numerically stable (no overflow warnings).

Keras 2 and Keras 3 differ in two places, selected by `keras3`: `hard_sigmoid` is
clip(0.2·x + 0.5) in Keras 2 / TF.js and relu6(x + 3) / 6 in Keras 3; `leaky_relu`'s default
slope is 0.2 in both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from inspector.engine.errors import EvaluationUnavailable

__all__ = ["Activation", "activation", "elu", "gelu", "sigmoid", "softmax", "softplus"]

Activation = Callable[[np.ndarray], np.ndarray]

_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32, copy=False)


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(np.float32(0.0), x).astype(np.float32, copy=False)


def softmax(x: np.ndarray, axis: int | tuple[int, ...] = -1) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.where(x > 0, x, np.float32(alpha) * np.expm1(np.minimum(x, 0))).astype(np.float32)


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to ~1.2e-7 absolute (Numerical Recipes' erfc Chebyshev fit), computed in float64."""
    z = np.abs(x.astype(np.float64))
    t = 1.0 / (1.0 + 0.5 * z)
    coeffs = (
        -1.26551223,
        1.00002368,
        0.37409196,
        0.09678418,
        -0.18628806,
        0.27886807,
        -1.13520398,
        1.48851587,
        -0.82215223,
        0.17087277,
    )
    poly = np.zeros_like(t)
    for c in reversed(coeffs):
        poly = poly * t + c
    erfc = t * np.exp(-z * z + poly)
    return np.sign(x) * (1.0 - erfc)


def gelu(x: np.ndarray, approximate: bool = False) -> np.ndarray:
    """Gaussian error linear unit; `approximate` selects the tanh form."""
    if approximate:
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
        return (0.5 * x * (1.0 + np.tanh(inner))).astype(np.float32)
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))).astype(np.float32)


def _hard_sigmoid(keras3: bool) -> Activation:
    if keras3:
        return lambda x: np.clip(x / np.float32(6.0) + np.float32(0.5), 0, 1)
    return lambda x: np.clip(np.float32(0.2) * x + np.float32(0.5), 0, 1)


def _table(keras3: bool, approximate_gelu: bool) -> dict[str, Activation]:
    hard_sigmoid = _hard_sigmoid(keras3)
    return {
        "linear": lambda x: x,
        "relu": lambda x: np.maximum(x, np.float32(0)),
        "relu6": lambda x: np.clip(x, np.float32(0), np.float32(6)),
        "sigmoid": sigmoid,
        "tanh": np.tanh,
        "softmax": softmax,
        "logsoftmax": lambda x: (
            x
            - np.max(x, -1, keepdims=True)
            - np.log(np.sum(np.exp(x - np.max(x, -1, keepdims=True)), -1, keepdims=True))
        ),
        "elu": elu,
        "selu": lambda x: np.float32(_SELU_SCALE) * elu(x, _SELU_ALPHA),
        "softplus": softplus,
        "softsign": lambda x: x / (np.float32(1) + np.abs(x)),
        "swish": lambda x: x * sigmoid(x),
        "silu": lambda x: x * sigmoid(x),
        "gelu": lambda x: gelu(x, approximate_gelu),
        "hardsigmoid": hard_sigmoid,
        "hardsilu": lambda x: x * np.clip(x / np.float32(6.0) + np.float32(0.5), 0, 1),
        "hardswish": lambda x: x * np.clip(x / np.float32(6.0) + np.float32(0.5), 0, 1),
        "leakyrelu": lambda x: np.where(x > 0, x, np.float32(0.2) * x),
        "exponential": np.exp,
        "mish": lambda x: x * np.tanh(softplus(x)),
    }


def activation(spec: Any, keras3: bool, where: str = "") -> Activation:
    """The function a layer's `activation` config names (string, Keras 3 dict, or None).

    TF.js spellings (`hardSigmoid`, `leakyRelu`) are accepted: names compare without case or
    underscores. `where` names the layer for the error message.
    """
    approximate = False
    if isinstance(spec, Mapping):
        inner = spec.get("config")
        if isinstance(inner, Mapping):
            approximate = bool(inner.get("approximate", False))
            inner = inner.get("name") or spec.get("class_name")
        spec = inner if isinstance(inner, str) else spec.get("class_name")
    if spec is None:
        return lambda x: x
    key = str(spec).replace("_", "").lower()
    fn = _table(keras3, approximate).get(key)
    if fn is None:
        raise EvaluationUnavailable(f"{where}activation {spec!r} is not supported")
    return fn
