"""Keras HDF5 reader: legacy full models and weights-only files (tf.keras 2, Keras 3 legacy
`.h5`) and Keras 3 `.weights.h5` files (delegated to `keras_zip`).

Legacy layout (DESIGN §5): root attrs `model_config`, `keras_version`, `backend`, optional
`training_config`; group `model_weights` (weights-only files: the root) with attr `layer_names`
(split into `layer_names0`, `layer_names1`, … when over 64 KiB); each layer group's
`weight_names` attr lists dataset paths under it. Tensors keep the file's weight names
(`conv2d_1_1/kernel:0`, `sequential/d1/kernel`); a name that two layers share is prefixed with
its layer group (`layer/name`). Optimizer state (`optimizer_weights`) is listed apart as
`optimizer_weights/<name>` with `optimizer=True`.

The file stays open (closed by `Model.close()`); `load()` reads one dataset with `read_direct`.
External links, external raw storage and virtual datasets pointing to other files are refused,
as are datasets declaring far more bytes than they store.

Metadata keys (legacy layout):
- `keras_weights_layout`: `"legacy"`.
- `keras_config`: `json.loads(model_config)` when present; `keras_version`, `backend` (str)
  when present (root attrs, else the weights group's); `training_config` (dict) when present.
- `weights_root`: `"model_weights"` or `"/"`.
- `h5_layout`: list of `(layer_name, [weight path relative to the layer group, …])` for every
  layer in `layer_names` order, weightless layers included.
- `optimizer_weight_names`: weight paths relative to `optimizer_weights` in file order ([] when
  absent).
- `h5_paths`: `{tensor name: absolute dataset path}`.
Keras 3 `.weights.h5` files: see `inspector.formats.keras.zip_reader`
(`keras_weights_layout` `"keras3"`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from inspector.core.errors import FormatError
from inspector.core.model import Model, Tensor, TensorInfo
from inspector.formats._common import keras_channel_axis
from inspector.formats.keras.h5probe import probe_hdf5

__all__ = [
    "attr_list",
    "attr_str",
    "damaged",
    "dataset_tensor",
    "open_h5",
    "read_keras_h5",
    "safe_dataset",
]


def read_keras_h5(path: str | os.PathLike[str]) -> Model:
    """Open a Keras HDF5 file (legacy or Keras 3 weights layout), headers only."""
    p = Path(path)
    probe_hdf5(p)
    f = open_h5(p, p)
    try:
        if "layer_names" in f.attrs or "layer_names0" in f.attrs or "model_weights" in f:
            tensors, meta = _read_legacy(f, p)
        elif "layers" in f or "vars" in f:
            from inspector.formats.keras.zip_reader import keras3_weights

            tensors, meta = keras3_weights(f, p, None)
        else:
            raise FormatError(p, "HDF5 file holds no Keras weights (no layer_names attribute)")
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        f.close()
        raise damaged(p, exc) from None
    except BaseException:
        f.close()
        raise
    return Model(p, "keras-h5", tensors, meta, [f.close])


def damaged(source: Path, exc: Exception) -> FormatError:
    """A `FormatError` for an HDF5 library failure while walking headers."""
    if isinstance(exc, FormatError):
        return exc
    return FormatError(source, f"damaged HDF5 structure: {exc}")


def open_h5(source: Path, fileobj: Any) -> h5py.File:
    """Open HDF5 read-only from a path or file-like; failures become `FormatError`."""
    try:
        return h5py.File(fileobj, "r")
    except (OSError, ValueError) as exc:
        raise FormatError(source, f"not a readable HDF5 file: {exc}") from None


def attr_str(value: Any) -> str:
    """An HDF5 string attribute as `str` (they come back as bytes or numpy strings)."""
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return attr_str(value[()])
    return str(value)


def attr_list(obj: h5py.Group, name: str, source: Path) -> list[str] | None:
    """A list-of-strings attribute, joining `name0`, `name1`, … chunks; None when absent."""
    attrs = obj.attrs
    first = attrs.get(name)
    if first is not None:
        chunks = [first]
    elif f"{name}0" in attrs:
        chunks, i = [], 0
        while f"{name}{i}" in attrs:
            chunks.append(attrs[f"{name}{i}"])
            i += 1
    else:
        return None
    out: list[str] = []
    for chunk in chunks:
        arr = np.asarray(chunk)
        if arr.size == 0:
            continue
        if arr.dtype.kind not in "SUO":
            raise FormatError(source, f"attribute {name!r} of {obj.name} is not a list of names")
        out.extend(attr_str(v) for v in arr.reshape(-1))
    return out


def safe_dataset(group: h5py.Group, rel: str, source: Path, tensor: str) -> h5py.Dataset:
    """The dataset at `rel` under `group`, refusing links and storage outside the file."""
    parts = [s for s in rel.split("/") if s]
    if not parts:
        raise FormatError(source, "empty weight path", tensor)
    links = group.id.links
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        try:
            kind = links.get_info(sub.encode()).type
        except (KeyError, ValueError, OSError, RuntimeError) as exc:
            reason = f"missing dataset {group.name}/{rel} ({exc})"
            raise FormatError(source, reason, tensor) from None
        if kind not in (h5py.h5l.TYPE_HARD, h5py.h5l.TYPE_SOFT):
            raise FormatError(source, f"{group.name}/{sub} is an external link", tensor)
    try:
        obj = group[rel]
    except (KeyError, ValueError, OSError, RuntimeError) as exc:
        raise FormatError(source, f"cannot open {group.name}/{rel}: {exc}", tensor) from None
    if not isinstance(obj, h5py.Dataset):
        raise FormatError(source, f"{obj.name} is not a dataset", tensor)
    if obj.external:
        raise FormatError(source, f"{obj.name} stores its data in external files", tensor)
    if obj.is_virtual and any(vs.file_name != "." for vs in obj.virtual_sources()):
        raise FormatError(source, f"{obj.name} is a virtual dataset reading other files", tensor)
    return obj


def dataset_tensor(
    ds: h5py.Dataset,
    source: Path,
    info_fields: dict[str, Any],
    file_size: int,
) -> Tensor:
    """A lazy `Tensor` for a validated dataset; `info_fields` gives name, layer, optimizer."""
    name = info_fields["name"]
    shape = ds.shape
    if shape is None:
        raise FormatError(source, "dataset has no shape (null dataspace)", name)
    dtype = ds.dtype
    if dtype.kind not in "fiub" or dtype.itemsize > 8:
        raise FormatError(source, f"unsupported dtype {dtype}", name)
    native = dtype.newbyteorder("=")
    _check_storage(ds, source, name, int(np.prod(shape, dtype=object)) * native.itemsize, file_size)
    channel_axis = keras_channel_axis(len(shape), name, ds.name or "")
    info = TensorInfo(
        shape=tuple(shape), dtype=native.name, channel_axis=channel_axis, **info_fields
    )
    return Tensor(info, _loader(ds, source, name, native))


def _check_storage(ds: h5py.Dataset, source: Path, name: str, nbytes: int, size: int) -> None:
    storage = ds.id.get_storage_size()
    if nbytes > 1024 * storage + (1 << 20):
        raise FormatError(source, f"dataset declares {nbytes} bytes but stores {storage}", name)
    try:
        offset = ds.id.get_offset()
    except (OSError, RuntimeError):
        offset = None
    if offset is not None and offset + storage > size:
        raise FormatError(source, "file is truncated: dataset runs past its end", name)


def _loader(ds: h5py.Dataset, source: Path, name: str, dtype: np.dtype) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        try:
            out = np.empty(ds.shape, dtype=dtype)
            if out.size:
                ds.read_direct(out)
            return out
        except Exception as exc:
            raise FormatError(source, f"cannot read values: {exc}", name) from None

    return load


def _json_attr(f: h5py.File, key: str, source: Path) -> dict[str, Any] | None:
    if key not in f.attrs:
        return None
    try:
        value = json.loads(attr_str(f.attrs[key]))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise FormatError(source, f"root attribute {key} is not valid JSON: {exc}") from None
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FormatError(source, f"root attribute {key} is not a JSON object")
    return value


def _read_legacy(f: h5py.File, source: Path) -> tuple[list[Tensor], dict[str, Any]]:
    root_name = "model_weights" if "model_weights" in f else "/"
    root = f[root_name]
    if not isinstance(root, h5py.Group):
        raise FormatError(source, "model_weights is not a group")
    meta: dict[str, Any] = {"keras_weights_layout": "legacy", "weights_root": root_name}
    for key, target in (("model_config", "keras_config"), ("training_config", "training_config")):
        value = _json_attr(f, key, source)
        if value is not None:
            meta[target] = value
    for key in ("keras_version", "backend"):
        holder = f if key in f.attrs else root
        if key in holder.attrs:
            meta[key] = attr_str(holder.attrs[key])
    layer_names = attr_list(root, "layer_names", source)
    if layer_names is None:
        raise FormatError(source, f"{root.name} has no layer_names attribute")
    size = f.id.get_filesize()
    tensors, layout, paths = _legacy_layers(root, layer_names, source, size)
    opt_names, opt_tensors = _legacy_optimizer(f, source, size, paths)
    meta.update(h5_layout=layout, optimizer_weight_names=opt_names, h5_paths=paths)
    return tensors + opt_tensors, meta


def _legacy_layers(
    root: h5py.Group, layer_names: list[str], source: Path, size: int
) -> tuple[list[Tensor], list[tuple[str, list[str]]], dict[str, str]]:
    tensors: list[Tensor] = []
    layout: list[tuple[str, list[str]]] = []
    paths: dict[str, str] = {}
    for layer in layer_names:
        try:
            group = root[layer]
        except (KeyError, ValueError, OSError, RuntimeError):
            group = None
        if not isinstance(group, h5py.Group):
            raise FormatError(source, f"layer group {layer!r} listed in layer_names is missing")
        weight_names = attr_list(group, "weight_names", source) or []
        if len(set(weight_names)) != len(weight_names):
            twice = next(w for w in weight_names if weight_names.count(w) > 1)
            raise FormatError(source, "duplicate tensor name", f"{layer}/{twice}")
        layout.append((layer, weight_names))
        for wname in weight_names:
            name = wname if wname not in paths else f"{layer}/{wname}"
            if name in paths:
                raise FormatError(source, "duplicate tensor name", name)
            ds = safe_dataset(group, wname, source, name)
            paths[name] = ds.name
            tensors.append(dataset_tensor(ds, source, {"name": name, "layer": layer}, size))
    return tensors, layout, paths


def _legacy_optimizer(
    f: h5py.File, source: Path, size: int, paths: dict[str, str]
) -> tuple[list[str], list[Tensor]]:
    group = f.get("optimizer_weights")
    if not isinstance(group, h5py.Group):
        return [], []
    names = attr_list(group, "weight_names", source)
    if names is None:
        names = []
        group.visititems(lambda n, obj: names.append(n) if isinstance(obj, h5py.Dataset) else None)
    tensors = []
    for wname in names:
        name = f"optimizer_weights/{wname}"
        if name in paths:
            raise FormatError(source, "duplicate tensor name", name)
        ds = safe_dataset(group, wname, source, name)
        paths[name] = ds.name
        fields = {"name": name, "layer": "optimizer_weights", "optimizer": True}
        tensors.append(dataset_tensor(ds, source, fields, size))
    return names, tensors
