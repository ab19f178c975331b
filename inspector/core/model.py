"""Lazy model and tensor types shared by readers, the preview, the writers and the UI.

Opening a model reads headers only: a `Tensor` carries its `TensorInfo` and a loader that reads
the bytes when `load()` is called, so the tensor list of a multi-gigabyte file appears at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = [
    "FLOAT_DTYPES",
    "Model",
    "StoredQuantization",
    "Tensor",
    "TensorInfo",
    "dtype_itemsize",
]

FLOAT_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64"})

_ITEMSIZE = {
    "float16": 2,
    "bfloat16": 2,
    "float32": 4,
    "float64": 8,
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "uint16": 2,
    "int32": 4,
    "uint32": 4,
    "int64": 8,
    "uint64": 8,
    "bool": 1,
    "complex64": 8,
    "string": 0,
}


def dtype_itemsize(dtype: str) -> int:
    """Bytes per element of a dtype name (numpy names plus `bfloat16`); 0 when unknown."""
    return _ITEMSIZE.get(dtype, 0)


@dataclass(frozen=True)
class StoredQuantization:
    """Quantization the file already holds for a tensor (e.g. a TF.js uint8 manifest entry).

    `scheme` is a scheme spec of DESIGN §3 (`uint8`, `uint16`, `float16`, `int8:axis=0`, …);
    `params` are the stored parameters as plain JSON values (`min`, `scale`, `zero_point`, …).
    """

    scheme: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TensorInfo:
    """What is known about a tensor from headers alone.

    `dtype` is the logical dtype the values decode to (a TF.js uint8-quantized float32 weight
    is `float32` with `stored` set). `channel_axis` is the layout's output-channel axis (last
    for Keras/TF.js kernels, first for ONNX/PyTorch), `None` when the format does not say.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    layer: str = ""
    optimizer: bool = False
    stored: StoredQuantization | None = None
    channel_axis: int | None = None
    kept: str | None = None
    """Why this float tensor is not a weight (e.g. "Resize scales: not a weight"): a plan's
    default and rules leave it as it is, and the preview says this reason. None for weights."""
    kept_overridable: bool = False
    """With `kept`: a per-tensor override may still quantize it, because only precision changes
    (a bias, a normalization parameter); False where quantizing would change shapes, indices,
    bounds or comparisons."""

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of the logical (unquantized) values: the 'before' of every size comparison."""
        return self.size * dtype_itemsize(self.dtype)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES


@dataclass(frozen=True, eq=False)
class Tensor:
    """A `TensorInfo` plus a loader; bytes are read only when asked for."""

    info: TensorInfo
    loader: Callable[[], np.ndarray] = field(repr=False)

    @property
    def name(self) -> str:
        return self.info.name

    def load(self) -> np.ndarray:
        """The tensor's values, read-only, shaped `info.shape` (floats decoded to float32
        when the file stores them quantized)."""
        arr = np.asarray(self.loader())
        if arr.shape != self.info.shape:
            arr = arr.reshape(self.info.shape)
        if arr.flags.writeable:
            arr = arr.view()
            arr.flags.writeable = False
        return arr

    def sample(self, n: int = 1_000_000, seed: int = 0) -> np.ndarray:
        """A seeded sample of at most `n` values, flattened, for plots (never for metrics)."""
        flat = self.load().reshape(-1)
        if flat.size <= n:
            return flat
        idx = np.random.default_rng(seed).choice(flat.size, size=n, replace=False)
        idx.sort()
        return flat[idx]


class Model:
    """Tensors in file order plus the format's own metadata, so a writer can re-emit it.

    A context manager: closing releases file handles and memory maps held by loaders.
    `metadata` is format-specific (Keras `model_config`, TF.js `modelTopology`, …).
    """

    def __init__(
        self,
        path: str | Path,
        format: str,
        tensors: list[Tensor],
        metadata: Mapping[str, Any] | None = None,
        closers: list[Callable[[], None]] | None = None,
    ) -> None:
        self.path = Path(path)
        self.format = format
        self._tensors: dict[str, Tensor] = {}
        for t in tensors:
            self._tensors[t.name] = t
        self.metadata: Mapping[str, Any] = MappingProxyType(dict(metadata or {}))
        self._closers = list(closers or [])

    @property
    def tensors(self) -> Mapping[str, Tensor]:
        return MappingProxyType(self._tensors)

    def __iter__(self) -> Iterator[Tensor]:
        return iter(self._tensors.values())

    def __len__(self) -> int:
        return len(self._tensors)

    def __getitem__(self, name: str) -> Tensor:
        return self._tensors[name]

    @property
    def weights(self) -> list[Tensor]:
        """Tensors that are model weights (optimizer state excluded)."""
        return [t for t in self._tensors.values() if not t.info.optimizer]

    @property
    def parameter_count(self) -> int:
        return sum(t.info.size for t in self.weights)

    def describe(self) -> dict[str, Any]:
        """The model's identity in the JSON documents the CLI prints (`info`, `preview`, …)."""
        return {
            "path": str(self.path),
            "format": self.format,
            "tensors": len(self),
            "parameters": self.parameter_count,
        }

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Model({str(self.path)!r}, format={self.format!r}, tensors={len(self)})"
