"""Test-only loaders: Executor inputs straight from Keras files, read with h5py.

Used while (or where) `inspector.formats.open_model` is not available; they follow DESIGN §5.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np

__all__ = ["read_h5", "read_keras3"]


def _strings(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def read_h5(path: Path) -> tuple[dict, dict[str, list[tuple[str, np.ndarray]]]]:
    """(model_config dict, layer -> [(weight name, array)] in file order) of a legacy .h5."""
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        group = f["model_weights"]
        weights = {}
        for layer in _strings(group.attrs["layer_names"]):
            names = _strings(group[layer].attrs["weight_names"])
            weights[layer] = [(n, np.asarray(group[layer][n])) for n in names]
    return config, weights


def read_keras3(path: Path) -> tuple[dict, dict[str, list[tuple[str, np.ndarray]]]]:
    """(config.json dict, layer -> [(vars/i, array)]) of a Keras 3 .keras zip."""
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
        blob = z.read("model.weights.h5")
    weights = {}
    with h5py.File(io.BytesIO(blob), "r") as f:
        for key, layer in f["layers"].items():
            var_group = layer["vars"]
            name = str(var_group.attrs.get("name", key))
            order = sorted(var_group, key=int)
            weights[name] = [(f"{key}/vars/{i}", np.asarray(var_group[i])) for i in order]
    return config, weights
