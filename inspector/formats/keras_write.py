"""Keras writers: `.h5` and `.keras` with the source's exact layout and dequantized weights.

Keras has no quantized weight storage that every Keras loads, so a Keras export holds each
tensor's *decoded* values — the values the preview measured — as float32 (float16 datasets for
the float16 scheme), and real Keras loads and evaluates the quantized model as it is.

`.h5` (legacy, from a legacy `.h5` input): the source file is copied object by object (root
attributes, `model_config`, `training_config`, `layer_names` order with weightless layers,
dataset paths and attributes), then each weight dataset's values are replaced. Optimizer state
(`optimizer_weights`) is dropped: its moments belong to the unquantized weights, and Keras
builds a fresh optimizer when it compiles. `.keras` (from a `.keras` input): the zip's members
in their order, stored uncompressed as Keras writes them, with `model.weights.h5` rewritten the
same way. The plan is recorded as root attribute `quant_inspector_plan` (Plan JSON); every
weight dataset gets `quant_inspector_scheme` (the requested spec) and `quant_inspector_params`
(JSON: min/scale, or per-channel scales / palette up to 4096 values).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from inspector.core.errors import FormatError
from inspector.core.model import Model
from inspector.core.plan import Plan
from inspector.core.preview import QuantizedTensor
from inspector.core.target import Target
from inspector.formats._write_common import dequantized_storage
from inspector.formats.targets import register_target

__all__ = ["KERAS", "stored_values", "write"]

_MAX_PARAM_VALUES = 4096


def stored_values(q: QuantizedTensor) -> np.ndarray:
    """The values a Keras file holds for one tensor (its dequantized values)."""
    if q.encoded is None:
        return np.asarray(q.original)
    if q.encoded.scheme.name == "float16":
        return np.asarray(q.encoded.codes, dtype=np.float16).reshape(q.info.shape)
    return np.asarray(q.decoded, dtype=np.float32).reshape(q.info.shape)


def _params_json(q: QuantizedTensor) -> str:
    first = q.first
    if first is None:
        return "{}"
    out: dict[str, Any] = {"stored": q.storage.stored.spec if q.storage.stored else ""}
    for key, value in first.params.items():
        arr = np.asarray(value) if value is not None else None
        if arr is None or arr.ndim == 0:
            out[key] = None if arr is None else arr.item()
        elif arr.size <= _MAX_PARAM_VALUES:
            out[key] = arr.astype(np.float64).tolist()
    return json.dumps(out)


def _replace(f: h5py.File, path: str, q: QuantizedTensor) -> None:
    values = stored_values(q)
    ds = f[path]
    if ds.dtype == values.dtype and ds.shape == values.shape:
        ds[...] = values
    else:  # rare: a tensor kept as is (non-finite values) where float16 was planned
        attrs = dict(ds.attrs)
        del f[path]
        ds = f.create_dataset(path, data=values)
        for k, v in attrs.items():
            ds.attrs[k] = v
    if q.encoded is not None:
        ds.attrs["quant_inspector_scheme"] = q.scheme.spec
        ds.attrs["quant_inspector_params"] = _params_json(q)


def _planned_dtypes(model: Model, plan: Plan) -> dict[str, np.dtype]:
    """Dataset path → dtype the export will store (float16 for the float16 scheme)."""
    out = {}
    for t in model:
        path = (model.metadata.get("h5_paths") or {}).get(t.name)
        if path and not t.info.optimizer and plan.scheme_for(t.info).name == "float16":
            out[path] = np.dtype("<f2")
    return out


def _copy(src: h5py.Group, dst: h5py.Group, dtypes: dict[str, np.dtype]) -> None:
    """Copy a tree, creating datasets that change dtype fresh (no dead space left behind)."""
    for key, value in src.attrs.items():
        dst.attrs[key] = value
    for key in src:
        obj = src[key]
        if src.name == "/" and key == "optimizer_weights":
            continue
        if isinstance(obj, h5py.Group):
            _copy(obj, dst.create_group(key), dtypes)
        elif obj.name in dtypes and obj.dtype != dtypes[obj.name]:
            ds = dst.create_dataset(key, shape=obj.shape, dtype=dtypes[obj.name])
            for k, v in obj.attrs.items():
                ds.attrs[k] = v
        else:
            src.copy(obj, dst, name=key)


def _fill(
    f: h5py.File, model: Model, stream: Iterable[QuantizedTensor], plan_json: str, dest: Path
) -> None:
    paths = model.metadata.get("h5_paths") or {}
    for q in stream:
        if q.info.optimizer:
            continue
        path = paths.get(q.info.name)
        if path is None or path not in f:
            raise FormatError(dest, "weight has no dataset in the Keras file", q.info.name)
        _replace(f, path, q)
    f.attrs["quant_inspector_plan"] = plan_json


def _rewrite(
    src_path: Path | Any, model: Model, stream: Iterable[QuantizedTensor], dest: Path, plan: Plan
) -> None:
    with h5py.File(src_path, "r") as src, h5py.File(dest, "w") as dst:
        _copy(src, dst, _planned_dtypes(model, plan))
        _fill(dst, model, stream, plan.dumps(), dest)


def _write_keras(model: Model, stream: Iterable[QuantizedTensor], dest: Path, plan: Plan) -> None:
    member = model.metadata.get("weights_member")
    members = model.metadata.get("keras_zip_members") or []
    if not member:
        raise FormatError(model.path, "the .keras file holds no weights member")
    weights = dest.with_name(dest.name + ".src.weights.h5")
    built = dest.with_name(dest.name + ".weights.h5")
    try:
        with zipfile.ZipFile(model.path) as zin:
            with zin.open(member) as fh, open(weights, "wb") as out:
                shutil.copyfileobj(fh, out, 16 << 20)
            _rewrite(weights, model, stream, built, plan)
            with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as zout:
                for name in members:
                    if name == member:
                        zout.write(built, arcname=name)
                    else:
                        zout.writestr(zin.getinfo(name), zin.read(name))
    finally:
        weights.unlink(missing_ok=True)
        built.unlink(missing_ok=True)


def write(model: Model, stream: Iterable[QuantizedTensor], dest: Path, opts: Any) -> list[Path]:
    """Write a Keras file of the input's own kind (`.h5` from `.h5`, `.keras` from `.keras`)."""
    plan = opts.plan
    out = Path(getattr(opts, "out", dest))
    if model.format == "keras-h5" and model.metadata.get("keras_weights_layout") == "legacy":
        if out.suffix.lower() == ".keras":
            raise FormatError(out, "a legacy .h5 input exports as .h5, not .keras")
        _rewrite(model.path, model, stream, dest, plan)
    elif model.format == "keras":
        if out.suffix.lower() in (".h5", ".hdf5"):
            raise FormatError(out, "a .keras input exports as .keras, not .h5")
        _write_keras(model, stream, dest, plan)
    else:
        raise FormatError(
            model.path,
            f"Keras export needs a Keras .h5 or .keras input (this is {model.format}); "
            "use --format tfjs, safetensors or npz",
        )
    return [dest]


def keras_overhead(model: Model, previews: Sequence[Any]) -> bytes:
    """An estimate of the container bytes (HDF5/zip structure, configs): the source file's
    size minus its tensors' bytes. HDF5 layout is not predictable to the byte."""
    try:
        size = model.path.stat().st_size
    except OSError:
        return b""
    data = sum(t.info.nbytes for t in model)
    config = json.dumps(model.metadata.get("keras_config") or {}).encode()
    n = max(0, size - data)
    return (config + bytes(n))[:n]


KERAS = Target("keras", dequantized_storage, keras_overhead)
register_target(KERAS)
