"""Shared paths and helpers for the transform tests (real files only; imported by name, not a
conftest: another folder's conftest.py would shadow it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inspector.core.model import Model
from inspector.engine.evaluate import make_executor

REPO = Path(__file__).resolve().parents[3]
RESOURCES = REPO / "resources"
DATA = Path(__file__).resolve().parent / "data"
SHARED = REPO / ".." / "shared" / "models"
FER = SHARED / "keras-h5-fer-emotion" / "emotion_model.hdf5"
NSFW = SHARED / "tfjs-layers-nsfwjs-mobilenet_v2-u8" / "model.json"
DEPTHWISE = RESOURCES / "digits_depthwise"


def outputs(model: Model, x: np.ndarray) -> np.ndarray:
    """The executor's first output for one input array."""
    return make_executor(model).run([x])[0]


def rel(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b| / max |b|."""
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path
