"""The name a user knows a model by, for window titles, default output names and the graph id
of exported metrics: the file's stem, or for a TF.js folder the folder's name (the folder above
when the folder itself is named after the format, e.g. `digits_convnet/tfjs/model.json`)."""

from __future__ import annotations

from pathlib import Path

from inspector.core.model import Model

__all__ = ["model_name"]

_GENERIC = frozenset({"tfjs", "model", "models", "web_model", "tfjs_model", "js", "web", "export"})
"""Folder names that say how a model is stored rather than which model it is."""


def model_name(model: Model) -> str:
    """`digits_convnet` for `digits_convnet.h5`, `…/digits_convnet/tfjs/model.json`, a
    `model.safetensors.index.json` in folder `digits_convnet`, or a folder of that name."""
    p = Path(model.path)
    if p.is_dir():
        folder = p
    elif p.name == "model.json" or p.name.endswith(".index.json") or p.stem in _GENERIC:
        folder = p.parent
    else:
        return p.stem or p.name
    if folder.name.lower() in _GENERIC and folder.parent.name:
        folder = folder.parent
    return folder.name or p.stem
