"""TF-Lite test helpers: files the official converter wrote (data/make_tflite.py) and helpers.

Every `data/<name>.tflite` has `data/<name>.npz` beside it: what the LiteRT interpreter's
`get_tensor` reported for each constant tensor (dequantized with its own scales as TF-Lite does),
and for the demo models the outputs on the first 64 samples.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inspector.core.model import Model
from inspector.core.plan import Plan
from inspector.core.preview import Preview, quantize_tensor, run_preview
from inspector.formats.atomic import atomic_path
from inspector.formats.tflite.writer import TFLITE_TARGET, write

DATA = Path(__file__).resolve().parent / "data"
REPO = Path(__file__).resolve().parents[3]
RESOURCES = REPO / "resources"
MODES = ("float32", "float16", "dynamic", "int8")
DEMOS = ("digits_convnet", "digits_depthwise")


def shared_nmp() -> Path:
    """The basic-pitch model of ../shared/models (beside the repository, or the checkout's)."""
    for base in (REPO / ".." / "shared" / "models", REPO / ".." / ".." / "shared" / "models"):
        path = base / "tflite-basic-pitch-nmp" / "nmp.tflite"
        if path.is_file():
            return path.resolve()
    pytest.skip("../shared/models/tflite-basic-pitch-nmp is absent")


def fixture(demo: str, mode: str) -> Path:
    return DATA / f"{demo}_{mode}.tflite"


def reference(npz: Path) -> tuple[dict[int, dict[str, Any]], Any]:
    """(tensor index → interpreter metadata, the npz) recorded for a fixture."""
    ref = np.load(npz)
    return {int(k): v for k, v in json.loads(bytes(ref["meta"]).decode()).items()}, ref


def export(model: Model, plan: Plan, out: Path) -> tuple[Preview, int]:
    """Write `model` under `plan` with the TF-Lite writer as the export does; returns the
    preview and the written size."""
    preview = run_preview(model, plan, TFLITE_TARGET)
    stream = (quantize_tensor(t, plan.scheme_for(t.info), TFLITE_TARGET) for t in model)
    with atomic_path(out) as tmp:
        write(model, stream, tmp, None)
    return preview, out.stat().st_size


def by_layer(model: Model) -> dict[tuple[str, tuple[int, ...]], Any]:
    """Tensors keyed by (consuming layer, shape): how two conversions of one model match up
    (the converter names constants differently in each mode)."""
    return {(t.info.layer, t.info.shape): t for t in model}


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, np.float32)).view(np.uint32)


def write_tree(model: Model, tree: dict[str, Any], out: Path) -> None:
    """Serialize a (modified) model tree of `model` to `out`, buffers read from its file."""
    from inspector.formats.tflite.edit import serialize
    from inspector.formats.tflite.flatbuild import Chunk

    src = model.metadata["tflite_source"]
    build = serialize(tree, lambda b: Chunk(b.length, lambda: src.read_exact(b.offset, b.length)))
    out.write_bytes(b"".join(bytes(p) for p in build.parts()))
