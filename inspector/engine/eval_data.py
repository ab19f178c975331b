"""Evaluation data: a user's `.npz`, a demo model's bundled sample, or a synthetic probe batch.

A user's file holds `x` (or `x0`, `x1`, … one per model input) and optional labels `y`; it is read
with `allow_pickle=False`, never unpickled. The bundled `sample.npz` sits in a demo model's folder
(or its parent, for a TF.js export one folder down). Without either, a seeded synthetic batch
measures output drift only, and says so: it has no labels and is no substitute for real data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import FormatError
from inspector.engine.errors import EvaluationUnavailable
from inspector.formats.npz.reader import load_npy_arrays

__all__ = [
    "BUNDLED_NAME",
    "MAX_INPUT_VALUES",
    "EvalData",
    "check_input_size",
    "choose_data",
    "find_bundled_data",
    "load_data",
    "synthetic_data",
]

BUNDLED_NAME = "sample.npz"
SYNTHETIC_SAMPLES = 64
UNKNOWN_DIM = 16
MAX_INPUT_VALUES = 1 << 26
"""Most values one model input may take in one run (256 MiB of float32): a graph input declared
(10^6, 10^6, 4) is refused before a synthetic batch or a padded batch of it is allocated; a large
but real input gets fewer synthetic samples instead."""

Shapes = Sequence[tuple[int | None, ...]]


@dataclass(frozen=True, eq=False)
class EvalData:
    """Model inputs (batch first, one array per model input), optional labels, and where they
    came from: `source` is "file", "bundled" or "synthetic"."""

    inputs: tuple[np.ndarray, ...]
    labels: np.ndarray | None
    source: str
    path: Path | None = None

    @property
    def samples(self) -> int:
        return int(self.inputs[0].shape[0]) if self.inputs else 0

    @property
    def synthetic(self) -> bool:
        return self.source == "synthetic"

    def describe(self) -> str:
        if self.synthetic:
            return f"synthetic probe batch ({self.samples} seeded samples, no labels)"
        labels = "with labels" if self.labels is not None else "no labels"
        return f"{self.source} data {self.path} ({self.samples} samples, {labels})"

    def head(self, n: int | None) -> EvalData:
        """The first `n` samples (all when `n` is None or larger)."""
        if n is None or n >= self.samples:
            return self
        labels = None if self.labels is None else self.labels[:n]
        return replace(self, inputs=tuple(x[:n] for x in self.inputs), labels=labels)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "path": str(self.path) if self.path else None,
            "samples": self.samples,
            "labels": self.labels is not None,
        }


def find_bundled_data(model_path: str | Path) -> Path | None:
    """`sample.npz` in the model's folder or its parent (a TF.js export sits one folder down)."""
    path = Path(model_path)
    folder = path if path.is_dir() else path.parent
    for candidate in (folder / BUNDLED_NAME, folder.parent / BUNDLED_NAME):
        if candidate.is_file():
            return candidate
    return None


def load_data(path: str | Path, input_shapes: Shapes, source: str = "file") -> EvalData:
    """Read `x` (or `x0`, `x1`, …) and optional `y` from an .npz, without unpickling.

    Every member's header is checked before anything is decompressed (the npz reader's rules:
    a header declaring 10^12 elements in a small member, or a deflate bomb, is refused), and
    only the arrays used are read. Raises `FormatError` naming the file and the array when
    something does not fit the model.
    """
    path = Path(path)
    n_in = len(input_shapes)
    used = {"x", "y", *(f"x{i}" for i in range(n_in))}
    names, arrays = load_npy_arrays(path, used.__contains__)
    keys = ["x"] if n_in == 1 and "x" in arrays else [f"x{i}" for i in range(n_in)]
    missing = [k for k in keys if k not in arrays]
    if missing and n_in == 1:
        raise FormatError(path, f"no array 'x' (found {', '.join(sorted(names)[:20]) or 'none'})")
    if missing:
        want = "'x'" if n_in == 1 else f"'x0' … 'x{n_in - 1}'"
        raise FormatError(
            path, f"no array {missing[0]!r}: the model takes {n_in} input(s) ({want})"
        )
    inputs = tuple(
        _checked_input(path, k, arrays[k], s) for k, s in zip(keys, input_shapes, strict=True)
    )
    labels = arrays.get("y")
    counts = {x.shape[0] for x in inputs} | ({labels.shape[0]} if labels is not None else set())
    if labels is not None and (labels.ndim == 0 or labels.dtype.kind not in "biuf"):
        raise FormatError(path, "labels 'y' must be a numeric array with one row per sample")
    if len(counts) > 1:
        raise FormatError(path, f"arrays have different sample counts {sorted(counts)}")
    return EvalData(inputs, labels, source, path)


def _checked_input(
    path: Path, key: str, x: np.ndarray, shape: tuple[int | None, ...]
) -> np.ndarray:
    if x.dtype.kind not in "biuf":
        raise FormatError(path, f"array {key!r} has dtype {x.dtype}, not numbers")
    want = tuple(shape[1:])
    if x.ndim != len(shape) or any(
        w is not None and w != d for w, d in zip(want, x.shape[1:], strict=True)
    ):
        shown = tuple("N" if d is None else d for d in shape)
        raise FormatError(path, f"array {key!r} has shape {x.shape}, the model expects {shown}")
    if x.shape[0] == 0:
        raise FormatError(path, f"array {key!r} has no samples")
    return x


def check_input_size(model_path: str | Path, name: str, dims: Sequence[int | None]) -> None:
    """Refuse a model input whose `dims` (None: unknown, counted as `UNKNOWN_DIM`) hold more
    than `MAX_INPUT_VALUES` values: running it would allocate that much before failing."""
    count = math.prod(UNKNOWN_DIM if d is None else max(int(d), 0) for d in dims)
    if count > MAX_INPUT_VALUES:
        shown = [("N" if d is None else d) for d in dims]
        raise EvaluationUnavailable(
            f"{Path(model_path).name}: input {name!r} of shape {shown} takes {count} values "
            f"per run (at most {MAX_INPUT_VALUES}): too large to evaluate"
        )


def synthetic_data(
    input_shapes: Shapes,
    samples: int = SYNTHETIC_SAMPLES,
    seed: int = 0,
    dtypes: Sequence[np.dtype] | None = None,
) -> EvalData:
    """Seeded standard-normal inputs (integer inputs: small non-negative integers); unknown
    dimensions become 16. Measures output drift only: there are no labels."""
    rng = np.random.default_rng(seed)
    inputs = []
    for i, shape in enumerate(input_shapes):
        dims = (samples, *(UNKNOWN_DIM if d is None else d for d in shape[1:]))
        dtype = np.dtype(dtypes[i]) if dtypes else np.dtype(np.float32)
        if dtype.kind in "biu":
            inputs.append(rng.integers(0, 2, size=dims).astype(dtype))
        else:
            inputs.append(rng.standard_normal(dims).astype(dtype))
    return EvalData(tuple(inputs), None, "synthetic")


def choose_data(
    model_path: str | Path,
    input_shapes: Shapes,
    data_path: str | Path | None = None,
    max_samples: int | None = None,
    input_dtypes: Sequence[np.dtype] | None = None,
) -> EvalData:
    """The user's file when given; else the bundled sample when it fits the model; else a
    synthetic probe batch. `max_samples` keeps the first N samples (for speed)."""
    if data_path is not None:
        return load_data(data_path, input_shapes).head(max_samples)
    bundled = find_bundled_data(model_path)
    if bundled is not None:
        try:
            return load_data(bundled, input_shapes, source="bundled").head(max_samples)
        except FormatError:
            pass
    samples = min(SYNTHETIC_SAMPLES, max_samples or SYNTHETIC_SAMPLES)
    for shape in input_shapes:
        per_sample = math.prod(UNKNOWN_DIM if d is None else max(d, 0) for d in shape[1:])
        samples = max(1, min(samples, MAX_INPUT_VALUES // max(per_sample, 1)))
    for i, shape in enumerate(input_shapes):
        check_input_size(model_path, f"input {i}", (samples, *shape[1:]))
    return synthetic_data(input_shapes, samples, dtypes=input_dtypes)
