"""Keras weight-file layouts of a transformed model (layers removed, tensors added, config
changed), for the Keras writer and the transforms that describe them.

The Keras writer copies the input's HDF5 tree and replaces dataset values; a model whose
topology a transform changed (a folded BatchNormalization gone, a conv that gained a bias, a
ReLU6 whose cap was lifted) also needs the tree itself changed, in the rules real Keras loads by:
- legacy `.h5`: the root `model_config` attribute; `layer_names` (every layer, in order, split
  into `layer_names0`, … above 64 KiB as Keras does); a removed layer's group deleted; each
  layer group's `weight_names` and a dataset for each added tensor (values filled afterwards).
- Keras 3 `.keras`: weights live in `layers/<class_snake>[_N]/vars/<i>`, the group name
  replayed from the class names of the layer list in order; removing a layer renumbers the later
  layers of its class, so the `layers` group is rebuilt under the new names (subtrees copied,
  `vars/<i>` added for new tensors) and `config.json` is rewritten by the writer.
The metadata keys (`h5_layout`, `h5_paths`, `keras3_group_paths`, `keras_config`) are made by
`inspector.engine.transforms.workspace`; `h5_layout_changed` / `keras3_relayout` say a rebuild
is needed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import h5py
import numpy as np

from inspector.core.errors import FormatError
from inspector.core.model import Model, TensorInfo
from inspector.formats.keras.h5_reader import attr_list
from inspector.formats.keras.zip_reader import to_snake_case

__all__ = ["apply_layout", "keras3_group_paths", "keras3_relayout", "skipped_groups"]

_HEADER_LIMIT = 64512
"""Bytes above which Keras splits a list attribute into numbered chunks."""


def keras3_group_paths(keras_config: Mapping[str, Any]) -> dict[str, str]:
    """User layer name → `/layers/<class_snake>[_N]` for the top-level layers, replaying Keras
    3's naming (Sequential models leave their InputLayer out)."""
    inner = keras_config.get("config")
    layers = inner.get("layers") if isinstance(inner, Mapping) else inner
    if not isinstance(layers, list):
        return {}
    used: dict[str, int] = {}
    out: dict[str, str] = {}
    for entry in layers:
        if (
            keras_config.get("class_name") == "Sequential"
            and entry.get("class_name") == "InputLayer"
        ):
            continue
        snake = to_snake_case(str(entry.get("class_name", "")))
        count = used.get(snake, -1) + 1
        used[snake] = count
        name = entry.get("name") or (entry.get("config") or {}).get("name")
        out[str(name)] = f"/layers/{snake}" + (f"_{count}" if count else "")
    return out


def keras3_relayout(
    meta: Mapping[str, Any],
    old_config: Mapping[str, Any],
    new_config: Mapping[str, Any],
    infos: Mapping[str, TensorInfo],
    added: Mapping[str, str],
) -> dict[str, Any]:
    """Metadata updates for a `.keras` model whose layer list changed: new `h5_paths`, the
    `keras3_group_paths` old group → new group, `keras3_relayout`. Refuses (FormatError) when
    replaying Keras 3's naming does not reproduce the input file's own group names."""
    old_groups = keras3_group_paths(old_config)
    known = {path: user for path, user in (meta.get("keras3_layer_names") or {}).items()}
    top = {p: u for p, u in known.items() if p.count("/") == 2}
    if {old_groups.get(u) for u in top.values()} != set(top):
        raise FormatError(
            str(meta.get("transformed_from", "")),
            "cannot derive this .keras file's Keras 3 weight paths from its layer list, so a "
            "changed topology cannot be written as .keras (export --format tfjs instead)",
        )
    new_groups = keras3_group_paths(new_config)
    renames = {old_groups[u]: new_groups[u] for u in top.values() if u in new_groups}
    paths: dict[str, str] = {}
    for name, path in (meta.get("h5_paths") or {}).items():
        if name in infos:
            paths[name] = _renamed(path, renames)
    for name, anchor in added.items():
        group = paths[anchor].rsplit("/vars/", 1)[0]
        count = sum(1 for p in paths.values() if p.startswith(group + "/vars/"))
        paths[name] = f"{group}/vars/{count}"
    layer_names = {_renamed(p, renames): u for p, u in known.items() if _top(p) in renames}
    return {
        "h5_paths": paths,
        "keras3_layer_names": layer_names,
        "keras3_group_paths": renames,
        "keras3_relayout": True,
    }


def _top(path: str) -> str:
    return "/".join(path.split("/")[:3])


def _renamed(path: str, renames: Mapping[str, str]) -> str:
    top = _top(path)
    return renames[top] + path[len(top) :] if top in renames else path


# ----------------------------------------------------------------------------- writing


def skipped_groups(src: h5py.File, model: Model) -> frozenset[str]:
    """Groups of the input the copy leaves out: removed layers (legacy), the whole `layers`
    tree when it is rebuilt under new names (Keras 3)."""
    meta = model.metadata
    if meta.get("keras3_relayout"):
        return frozenset({"/layers"})
    if meta.get("keras_weights_layout") != "legacy":
        return frozenset()
    root_name = str(meta.get("weights_root", "/"))
    kept = {layer for layer, _ in meta.get("h5_layout", [])}
    before = attr_list(src[root_name], "layer_names", model.path) or []
    prefix = "/" + root_name.strip("/") if root_name.strip("/") else ""
    return frozenset(f"{prefix}/{layer}" for layer in before if layer not in kept)


def apply_layout(
    src: h5py.File, dst: h5py.File, model: Model, tensors: Sequence[TensorInfo]
) -> None:
    """Make the copy `dst` of `src` match `model`'s transformed layout (see the module
    docstring); `tensors` are the model's weights (for the shapes of added datasets)."""
    meta = model.metadata
    if meta.get("keras3_relayout"):
        _relayout_keras3(src, dst, meta)
    elif meta.get("keras_weights_layout") == "legacy":
        _relayout_legacy(dst, model)
    _add_datasets(dst, meta, tensors)


def _relayout_legacy(f: h5py.File, model: Model) -> None:
    meta = model.metadata
    root = f[str(meta.get("weights_root", "/"))]
    layout = [(layer, list(rels)) for layer, rels in meta.get("h5_layout", [])]
    _write_names(root, "layer_names", [layer for layer, _ in layout])
    for layer, rels in layout:
        group = root.require_group(layer)
        if rels or "weight_names" in group.attrs:
            _write_names(group, "weight_names", rels)
    if "model_config" in f.attrs:
        text = json.dumps(meta["keras_config"])
        old = f.attrs["model_config"]
        f.attrs["model_config"] = text.encode("utf-8") if isinstance(old, bytes) else text


def _write_names(group: h5py.Group, name: str, values: list[str]) -> None:
    """A list-of-names attribute as Keras writes it (fixed-length bytes, chunked if large)."""
    for key in [
        k for k in group.attrs if k == name or (k.startswith(name) and k[len(name) :].isdigit())
    ]:
        del group.attrs[key]
    data = np.array([v.encode("utf-8") for v in values]) if values else np.array([], "S1")
    chunks = max(1, -(-data.nbytes // _HEADER_LIMIT))
    if chunks == 1:
        group.attrs[name] = data
        return
    for i, part in enumerate(np.array_split(data, chunks)):
        group.attrs[f"{name}{i}"] = part


def _relayout_keras3(src: h5py.File, dst: h5py.File, meta: Mapping[str, Any]) -> None:
    if "layers" not in src:
        return
    layers = dst.require_group("layers")
    for old, new in meta["keras3_group_paths"].items():
        rel_old, rel_new = old[len("/layers/") :], new[len("/layers/") :]
        if rel_old in src["layers"]:
            src.copy(src["layers"][rel_old], layers, name=rel_new)


def _add_datasets(f: h5py.File, meta: Mapping[str, Any], tensors: Sequence[TensorInfo]) -> None:
    paths = meta.get("h5_paths") or {}
    for info in tensors:
        path = paths.get(info.name)
        if path is not None and path not in f:
            f.create_dataset(path, shape=info.shape, dtype=np.float32)
