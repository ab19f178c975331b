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
same way. The plan is recorded as root attribute `quant_inspector_plan` (the resolved Plan
JSON: one override per quantized tensor); every weight dataset gets `quant_inspector_scheme`
(the requested spec) and `quant_inspector_params` (JSON: the stored spec and min/scale, or
per-channel scales / palette up to 4096 values, each number in a fixed 24-character field).

Size prediction (`keras_overhead`): with contiguous, uncompressed datasets the HDF5 file's size
depends on its layout, not on the values, and every value-dependent attribute has a fixed width.
So the preview runs this writer's own code on an in-memory HDF5 file (h5py `core` driver, no
backing store) with zero-valued datasets of the real shapes and dtypes and attributes of the
real lengths: its size is the written file's, byte for byte; a `.keras` adds the zip's local
headers, central directory and the other members, built the same way in memory. Above
256 MiB of tensor data the in-memory build is skipped and the overhead estimated from the
source file (its size minus its tensors' bytes).
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from inspector.core.errors import FormatError
from inspector.core.model import Model, TensorInfo
from inspector.core.preview import QuantizedTensor
from inspector.core.schemes import parse_scheme
from inspector.core.target import Target
from inspector.formats._write_common import (
    dequantized_storage,
    dry_params,
    plain_dtype,
    plain_values,
    resolved_plan_json,
)
from inspector.formats.base import ExportOptions
from inspector.formats.keras.h5_reader import H5Source, check_contained
from inspector.formats.keras.layout import apply_layout, skipped_groups

__all__ = ["EXACT_LIMIT", "KERAS", "keras_overhead", "params_json", "stored_values", "write"]

_MAX_PARAM_VALUES = 4096
_NUM_WIDTH = 24
EXACT_LIMIT = 256 << 20
"""Tensor bytes above which `keras_overhead` estimates instead of building the file in memory."""

Attrs = tuple[str, str] | None
"""(requested spec, params JSON) recorded on a weight dataset, or None for a tensor kept as is."""


def stored_values(q: QuantizedTensor) -> np.ndarray:
    """The values a Keras file holds for one tensor (its dequantized values)."""
    return plain_values(q)


def _num(value: Any) -> str:
    """One number in a fixed-width field, so attribute lengths never depend on values."""
    x = float(value)
    if np.isfinite(x):
        text = f"{x:.16e}"
    else:
        text = "NaN" if x != x else ("-Infinity" if x < 0 else "Infinity")
    return text.rjust(_NUM_WIDTH)


def _json_value(value: Any) -> str:
    if value is None:
        return "null"
    arr = np.asarray(value)
    if arr.ndim:
        return "[" + ",".join(_json_value(v) for v in arr) + "]"
    if arr.dtype.kind == "b":
        return "true" if bool(arr) else "false"
    if arr.dtype.kind in "iu":
        return str(int(arr))
    return _num(arr)


def params_json(stored: str, params: Any) -> str:
    """`quant_inspector_params`: the stored spec and the first stage's parameters (arrays of
    more than 4096 values left out), numbers in fixed 24-character fields."""
    parts = [f'"stored":{json.dumps(stored)}']
    for key, value in params.items():
        if value is not None and np.asarray(value).size > _MAX_PARAM_VALUES:
            continue
        parts.append(f"{json.dumps(key)}:{_json_value(value)}")
    return "{" + ",".join(parts) + "}"


def _attrs(q: QuantizedTensor) -> Attrs:
    if q.encoded is None or q.first is None:
        return None
    stored = q.storage.stored.spec if q.storage.stored else ""
    return q.scheme.spec, params_json(stored, q.first.params)


def _replace(f: h5py.File, path: str, values: np.ndarray, attrs: Attrs) -> None:
    ds = f[path]
    if ds.dtype == values.dtype and ds.shape == values.shape:
        ds[...] = values
    else:  # rare: a tensor kept as is (non-finite values) where float16 was planned
        old = dict(ds.attrs)
        del f[path]
        ds = f.create_dataset(path, data=values)
        for k, v in old.items():
            ds.attrs[k] = v
    if attrs is not None:
        ds.attrs["quant_inspector_scheme"] = attrs[0]
        ds.attrs["quant_inspector_params"] = attrs[1]


def _planned_dtypes(model: Model, specs: dict[str, str]) -> dict[str, np.dtype]:
    """Dataset path → dtype the export will store (float16 for the float16 scheme)."""
    out = {}
    paths = model.metadata.get("h5_paths") or {}
    for name, spec in specs.items():
        path = paths.get(name)
        if path and parse_scheme(spec).name == "float16":
            out[path] = np.dtype("<f2")
    return out


def _copy(
    src: h5py.Group, dst: h5py.Group, dtypes: dict[str, np.dtype], skip: frozenset[str]
) -> None:
    """Copy a tree, creating datasets that change dtype fresh (no dead space left behind) and
    leaving out the groups in `skip` (layers a model transform removed or rebuilds)."""
    for key, value in src.attrs.items():
        dst.attrs[key] = value
    for key in src:
        if not isinstance(src.get(key, getlink=True), h5py.HardLink | h5py.SoftLink):
            raise FormatError(src.file.filename, f"{src.name}/{key} is a link to another file")
        obj = src[key]
        if (src.name == "/" and key == "optimizer_weights") or obj.name in skip:
            continue
        if isinstance(obj, h5py.Group):
            _copy(obj, dst.create_group(key), dtypes, skip)
        elif obj.name in dtypes and obj.dtype != dtypes[obj.name]:
            ds = dst.create_dataset(key, shape=obj.shape, dtype=dtypes[obj.name])
            for k, v in obj.attrs.items():
                ds.attrs[k] = v
        else:
            src.copy(obj, dst, name=key)


Item = tuple[TensorInfo, np.ndarray, Attrs]


def _fill(f: h5py.File, model: Model, items: Iterable[Item], dest: Path) -> None:
    paths = model.metadata.get("h5_paths") or {}
    for info, values, attrs in items:
        path = paths.get(info.name)
        if path is None or path not in f:
            raise FormatError(dest, "weight has no dataset in the Keras file", info.name)
        _replace(f, path, values, attrs)


def _specs(model: Model, plan: Any) -> dict[str, str]:
    return {t.name: plan.scheme_for(t.info).spec for t in model if not t.info.optimizer}


def _items(stream: Iterable[QuantizedTensor]) -> Iterable[Item]:
    for q in stream:
        if not q.info.optimizer:
            yield q.info, stored_values(q), _attrs(q)


def _rewrite(
    src: Any, model: Model, items: Iterable[Item], dst: h5py.File, specs: dict[str, str]
) -> None:
    """The whole `.h5` build, shared by the writer and the in-memory size prediction."""
    with h5py.File(src, "r") as f:
        source = H5Source.for_path(f, model.path)
        check_contained(f, source)
        changed = bool(model.metadata.get("transforms"))
        skip = skipped_groups(f, model) if changed else frozenset()
        _copy(f, dst, _planned_dtypes(model, specs), skip)
        if changed:
            apply_layout(f, dst, model, [t.info for t in model.weights])
        if not isinstance(src, io.BytesIO) and source.size_now() < source.size:
            # libhdf5 copied zeros for whatever lay past the cut
            raise FormatError(model.path, "file shrank while its tree was being copied")
    _fill(dst, model, items, Path(dst.filename))
    dst.attrs["quant_inspector_plan"] = resolved_plan_json(specs.items())


def _zip(zin: zipfile.ZipFile, zout: zipfile.ZipFile, model: Model, weights: Any) -> None:
    """The `.keras` members in their order; `weights(zout, name)` adds the weights member."""
    member = str(model.metadata.get("weights_member"))
    for name in model.metadata.get("keras_zip_members") or []:
        if name == member:
            weights(zout, name)
        elif name == "config.json" and model.metadata.get("transforms"):
            zout.writestr(zin.getinfo(name), json.dumps(model.metadata["keras_config"]))
        else:
            zout.writestr(zin.getinfo(name), zin.read(name))


def _write_keras(model: Model, items: Iterable[Item], dest: Path, specs: dict[str, str]) -> None:
    member = str(model.metadata.get("weights_member"))
    if not member:
        raise FormatError(model.path, "the .keras file holds no weights member")
    weights = dest.with_name(dest.name + ".src.weights.h5")
    built = dest.with_name(dest.name + ".weights.h5")
    try:
        with zipfile.ZipFile(model.path) as zin:
            with zin.open(member) as fh, open(weights, "wb") as out:
                shutil.copyfileobj(fh, out, 16 << 20)
            with h5py.File(built, "w") as dst:
                _rewrite(weights, model, items, dst, specs)
            with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as zout:
                _zip(zin, zout, model, lambda z, name: z.write(built, arcname=name))
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # changed since it was opened
        raise FormatError(model.path, f"cannot read the archive again: {str(exc)[:300]}") from None
    finally:
        weights.unlink(missing_ok=True)
        built.unlink(missing_ok=True)


def _is_legacy_h5(model: Model) -> bool:
    return model.format == "keras-h5" and model.metadata.get("keras_weights_layout") == "legacy"


def write(
    model: Model, stream: Iterable[QuantizedTensor], dest: Path, opts: ExportOptions
) -> list[Path]:
    """Write a Keras file of the input's own kind (`.h5` from `.h5`, `.keras` from `.keras`)."""
    out = opts.out
    specs = _specs(model, opts.plan)
    if _is_legacy_h5(model):
        if out.suffix.lower() == ".keras":
            raise FormatError(out, "a legacy .h5 input exports as .h5, not .keras")
        with h5py.File(dest, "w") as dst:
            _rewrite(model.path, model, _items(stream), dst, specs)
    elif model.format == "keras":
        if out.suffix.lower() in (".h5", ".hdf5"):
            raise FormatError(out, "a .keras input exports as .keras, not .h5")
        _write_keras(model, _items(stream), dest, specs)
    else:
        raise FormatError(
            model.path,
            f"Keras export needs a Keras .h5 or .keras input (this is {model.format}); "
            "use --format tfjs, safetensors or npz",
        )
    return [dest]


def _dry_items(model: Model, rows: Sequence[Any]) -> Iterable[Item]:
    """Zero values of the dtype the writer stores and attributes of the real lengths."""
    for row in rows:
        info = model[row.name].info
        scheme = parse_scheme(row.scheme)
        if row.skipped is not None or scheme.is_identity:
            yield info, np.zeros(info.shape, np.dtype(info.dtype)), None
            continue
        dtype = plain_dtype(parse_scheme(row.stored))
        attrs = (row.scheme, params_json(row.stored, dry_params(info, scheme)))
        yield info, np.zeros(info.shape, dtype), attrs


def _dry_h5(model: Model, rows: Sequence[Any], src: Any) -> bytes:
    """The exported `.h5` built in memory with zero-valued tensors: the file's exact size."""
    specs = {r.name: r.scheme for r in rows}
    name = f"quant-inspector-dry-{id(rows)}.h5"
    with h5py.File(name, "w", driver="core", backing_store=False) as dst:
        _rewrite(src, model, _dry_items(model, rows), dst, specs)
        dst.flush()
        return bytes(dst.id.get_file_image())


def _dry_keras(model: Model, rows: Sequence[Any]) -> tuple[bytes, bytes]:
    """(zip bytes without the weights member's data, that member's `.h5` image)."""
    member = str(model.metadata.get("weights_member"))
    with zipfile.ZipFile(model.path) as zin:
        image = _dry_h5(model, rows, io.BytesIO(zin.read(member)))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zout:
            _zip(zin, zout, model, lambda z, name: z.writestr(zipfile.ZipInfo(name), b""))
    return buf.getvalue(), image


def _estimate(model: Model) -> int:
    try:
        size = model.path.stat().st_size
    except OSError:
        return 0
    return max(0, size - sum(t.info.nbytes for t in model))


def keras_overhead(model: Model, previews: Sequence[Any]) -> bytes:
    """The container bytes the Keras export adds around the tensors' `quantized_bytes`: exact
    (the writer's code run in memory, see the module docstring) up to 256 MiB of tensors, an
    estimate from the source file above. The bytes are the file's own structure (configs,
    headers), cut or zero-padded to that length, for the gzip estimate."""
    rows = [r for r in previews if not r.optimizer]
    counted = sum(r.quantized_bytes for r in rows)
    if counted > EXACT_LIMIT or not (_is_legacy_h5(model) or model.format == "keras"):
        n = _estimate(model)
        config = json.dumps(model.metadata.get("keras_config") or {}).encode()
        return (config + bytes(n))[:n]
    if model.format == "keras":
        head, image = _dry_keras(model, rows)
    else:
        head, image = b"", _dry_h5(model, rows, model.path)
    n = len(head) + len(image) - counted
    body = head + image.replace(b"\0" * 64, b"")
    return body[: max(n, 0)].ljust(max(n, 0), b"\0")


KERAS = Target("keras", dequantized_storage, keras_overhead)
