"""Keras 3 reader: `.keras` zips (`metadata.json`, `config.json`, `model.weights.h5`) and the
Keras 3 weights layout (`layers/<class_snake>[_N]/vars/<i>`, nested `layers/…/layers/…`) that
`.weights.h5` files hold.

Users know their layers by the names they gave them, not by the file's `dense_1`: a tensor is
named `<user layer name>[/<nested user name>…]/<var>` where the user's name comes from the
`vars` group's `name` attribute (Keras ≥ 3.x writes it) or, failing that, from the config in
layer order (the file names layers `to_snake_case(class)` with `_1`, `_2`, … in that order).
`<var>` is `kernel`, `bias`, `gamma`, … for common layers whose variable count leaves no doubt,
else the index. Optimizer and other training state (`optimizer/vars/<i>`, …) keep the file
path as name and have `optimizer=True`.

A stored inner HDF5 (what Keras writes) is read in place as a byte range of the zip; a
deflated one is extracted once to a temporary file, unlinked as soon as libhdf5 holds it open
(libhdf5 seeks back and forth, and each backward seek in a deflate stream re-inflates from the
start). Member names that would escape a folder and declared sizes far beyond the compressed
size (zip bombs) are refused; `config.json` and `metadata.json` are bounded JSON
(`formats/_json.py`: ≤ 16 MiB, ≤ 1 MiB + 50x their compressed size). Links are resolved and
checked as `h5_reader` does; a `vars` or layer entry that is not a group is an error (never a
layer silently without weights), and layers nest at most `MAX_LAYER_DEPTH` deep.

Metadata keys (`.keras` and `.weights.h5`):
- `keras_weights_layout`: `"keras3"`.
- `h5_paths`: `{tensor name: dataset path in the weights file}`.
- `keras3_layer_names`: `{layer group path: user layer name}` for every layer group.
`.keras` only: `keras_config` (config.json), `keras_version` (metadata.json), `keras_metadata`
(metadata.json dict), `keras_zip_members` (member names in zip order), `weights_member`.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import h5py

from inspector.core.errors import FormatError
from inspector.core.model import Model, Tensor
from inspector.formats._common import stored_member_offset
from inspector.formats._json import MAX_CONFIG_BYTES, parse_json
from inspector.formats.keras.h5_reader import (
    H5Source,
    attr_str,
    check_contained,
    check_depth,
    clip,
    damaged,
    dataset_tensor,
    open_h5,
    resolve,
    safe_dataset,
)
from inspector.formats.keras.h5probe import probe_hdf5

__all__ = ["keras3_weights", "read_keras_zip", "to_snake_case"]

_VAR_NAMES = {
    "dense": ("kernel", "bias"),
    "conv1d": ("kernel", "bias"),
    "conv2d": ("kernel", "bias"),
    "conv3d": ("kernel", "bias"),
    "conv1d_transpose": ("kernel", "bias"),
    "conv2d_transpose": ("kernel", "bias"),
    "conv3d_transpose": ("kernel", "bias"),
    "depthwise_conv1d": ("kernel", "bias"),
    "depthwise_conv2d": ("kernel", "bias"),
    "separable_conv1d": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "separable_conv2d": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "batch_normalization": ("gamma", "beta", "moving_mean", "moving_variance"),
    "layer_normalization": ("gamma", "beta"),
    "embedding": ("embeddings",),
}
MAX_LAYER_DEPTH = 64
"""Nested layer groups (`layers/a/layers/b/…`) beyond which a weights file is refused; real
models nest a few levels."""
_MAX_RATIO = 200  # declared/compressed size beyond which a deflated member is a zip bomb
_JSON_RATIO = 50  # the same for config.json/metadata.json (JSON deflates 5-20x), above 1 MiB


def to_snake_case(name: str) -> str:
    """Keras 3's class-name → file-name rule (`BatchNormalization` → `batch_normalization`)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def read_keras_zip(path: str | os.PathLike[str]) -> Model:
    """Open a Keras 3 `.keras` file, headers only, without extracting it."""
    p = Path(path)
    raw = _open_raw(p)
    closers: list[Callable[[], None]] = [raw.close]
    try:
        zf = _zipfile(raw, p)
        infos = _check_members(zf, p)
        config = _member_json(zf, infos, "config.json", p, required=True)
        metadata = _member_json(zf, infos, "metadata.json", p, required=False) or {}
        weights_member = next((n for n in infos if n.endswith(".weights.h5")), None)
        if weights_member is None:
            raise FormatError(p, "archive holds no model.weights.h5")
        f, src = _open_weights(raw, zf, infos[weights_member], p, closers)
        check_depth(f, src)
        tensors, meta = keras3_weights(f, src, config)
        check_contained(f, src)
    except (
        OSError,
        RuntimeError,
        KeyError,
        ValueError,
        TypeError,
        zlib.error,
        EOFError,
        NotImplementedError,
    ) as exc:
        for close in closers:
            close()
        raise damaged(p, exc) from None
    except BaseException:
        for close in closers:
            close()
        raise
    meta.update(
        keras_config=config,
        keras_metadata=metadata,
        keras_zip_members=list(infos),
        weights_member=weights_member,
    )
    if isinstance(metadata, dict) and "keras_version" in metadata:
        meta["keras_version"] = metadata["keras_version"]
    return Model(p, "keras", tensors, meta, closers)


def _open_raw(p: Path) -> io.BufferedReader:
    try:
        return open(p, "rb")
    except OSError as exc:
        raise FormatError(p, f"cannot read: {exc.strerror or exc}") from None


def _zipfile(raw: Any, p: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(raw)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise FormatError(p, f"not a readable zip archive: {clip(str(exc), 300)}") from None


def _check_members(zf: zipfile.ZipFile, p: Path) -> dict[str, zipfile.ZipInfo]:
    infos: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        name = info.filename
        pure = PurePosixPath(name.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts or ":" in name:
            raise FormatError(p, f"archive member {clip(name)!r} leaves the archive's folder")
        if (
            info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
            or info.flag_bits & 1
        ):
            raise FormatError(p, f"archive member {clip(name)!r} is encrypted or oddly compressed")
        if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > _MAX_RATIO * max(
            info.compress_size, 1 << 20
        ):
            raise FormatError(p, f"archive member {clip(name)!r} declares {info.file_size} bytes")
        if name in infos:
            raise FormatError(p, f"archive holds {clip(name)!r} twice")
        infos[name] = info
    return infos


def _member_json(
    zf: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], name: str, p: Path, required: bool
) -> Any:
    info = infos.get(name)
    if info is None:
        if required:
            raise FormatError(p, f"archive holds no {name}")
        return None
    limit = MAX_CONFIG_BYTES
    if info.compress_type != zipfile.ZIP_STORED:
        limit = min(limit, (1 << 20) + _JSON_RATIO * info.compress_size)
    if info.file_size > limit:
        raise FormatError(
            p,
            f"{name} declares {info.file_size} bytes from {info.compress_size} compressed "
            f"(more than {limit}: a config is < 5 MB and JSON deflates < {_JSON_RATIO}x)",
        )
    try:
        with zf.open(info) as fh:  # inflates at most the declared size (else a CRC error)
            data = fh.read(info.file_size)
    except (
        zipfile.BadZipFile,
        OSError,
        EOFError,
        RuntimeError,
        NotImplementedError,
        zlib.error,
    ) as exc:
        raise FormatError(p, f"cannot read {name}: {clip(str(exc), 300)}") from None
    doc = parse_json(p, data, name)
    if not isinstance(doc, dict):
        raise FormatError(p, f"{name} must be a JSON object")
    return doc


def _open_weights(
    raw: Any,
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    p: Path,
    closers: list[Callable[[], None]],
) -> tuple[h5py.File, H5Source]:
    """The weights member opened with libhdf5: a stored member in place (a byte range of the
    archive), a deflated one extracted to a temporary file first. libhdf5 seeks all over a
    file; seeking back in a deflated stream restarts the inflate from the member's start, so
    reading one in place costs time quadratic in its size (a valid 100 MB `.keras` took
    minutes). The extraction is bounded by the declared size, which `_check_members` already
    held to `_MAX_RATIO` x the compressed size."""
    if info.compress_type == zipfile.ZIP_STORED:
        probe_hdf5(p, info.filename)
        view = _member_file(raw, zf, info, p)
        f = open_h5(p, view)
        closers.insert(0, f.close)
        return f, H5Source(f, p, view.available)
    tmp = _extract(zf, info, p)
    try:
        probe_hdf5(tmp)
        f = open_h5(p, tmp)
    finally:
        tmp.unlink(missing_ok=True)  # libhdf5 keeps its descriptor: nothing left if killed
    closers.insert(0, f.close)
    return f, H5Source.for_path(f, p)


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, p: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=".quant-inspector-", suffix=".weights.h5")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, zf.open(info) as fh:
            shutil.copyfileobj(fh, out, 4 << 20)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        tmp.unlink(missing_ok=True)
        raise FormatError(
            p, f"archive member {clip(info.filename)} is damaged: {clip(str(exc), 300)}"
        ) from None
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise FormatError(
            p, f"cannot extract {info.filename} to {tmp.parent}: {exc.strerror or exc}"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _member_file(raw: Any, zf: zipfile.ZipFile, info: zipfile.ZipInfo, p: Path) -> _SliceFile:
    """A seekable byte-range view of a stored member."""
    start = stored_member_offset(raw, info, p)
    if start + info.file_size > os.fstat(raw.fileno()).st_size:
        raise FormatError(p, f"archive is truncated inside {info.filename}")
    return _SliceFile(raw, start, info.file_size)


class _SliceFile(io.RawIOBase):
    """Read-only window `[start, start+length)` of an open binary file. A read that ends
    short inside the window (the archive shrank) is an error, never a short answer that
    libhdf5 would pad with zeros."""

    def __init__(self, raw: Any, start: int, length: int) -> None:
        super().__init__()
        self._raw, self._start, self._len, self._pos = raw, start, length, 0

    def available(self) -> int:
        """How many of the window's bytes the archive holds now."""
        return max(0, min(self._len, os.fstat(self._raw.fileno()).st_size - self._start))

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._len}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        n = max(0, min(len(buffer), self._len - self._pos))
        if n == 0:
            return 0
        self._raw.seek(self._start + self._pos)
        got = self._raw.readinto(memoryview(buffer)[:n]) or 0
        if got < n:
            raise OSError(f"archive ends {n - got} bytes early (it shrank while being read)")
        self._pos += got
        return got


def keras3_weights(
    f: h5py.File, src: H5Source, config: dict[str, Any] | None
) -> tuple[list[Tensor], dict[str, Any]]:
    """Tensors of a Keras 3 weights file in model order, with the user's layer names."""
    walker = _Walker(src)
    walker.walk(f, [], _config_layers(config))
    for key in sorted(f.keys(), key=_natural):
        if key not in ("layers", "vars"):
            walker.training_state(resolve(f, key, src), key)
    meta = {
        "keras_weights_layout": "keras3",
        "h5_paths": walker.paths,
        "keras3_layer_names": walker.layer_names,
    }
    return walker.tensors, meta


def _natural(s: str) -> tuple[int | str, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s))


def _config_layers(config: Any) -> list[dict[str, Any]] | None:
    """The sub-layer configs of a model config in the order Keras saves them, or None."""
    if not isinstance(config, dict):
        return None
    inner = config.get("config")
    layers = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers, list):
        return None
    out = [c for c in layers if isinstance(c, dict)]
    if config.get("class_name") == "Sequential":
        out = [c for c in out if c.get("class_name") != "InputLayer"]
    return out


class _Walker:
    """Depth-first walk of `layers/…` groups collecting `vars` datasets in order. Every link
    is resolved by `resolve` (external links refused), and a `vars` or layer entry that is
    not a group is an error: a layer's weights never vanish silently."""

    def __init__(self, src: H5Source) -> None:
        self.src = src
        self.source = src.source
        self.tensors: list[Tensor] = []
        self.paths: dict[str, str] = {}
        self.layer_names: dict[str, str] = {}

    def _group(self, parent: h5py.Group, key: str) -> h5py.Group | None:
        obj = resolve(parent, key, self.src)
        if obj is not None and not isinstance(obj, h5py.Group):
            where = f"{parent.name.rstrip('/')}/{key}"
            raise FormatError(self.source, f"{where[:120]} is not a group")
        return obj

    def walk(self, group: h5py.Group, chain: list[str], configs: list[Any] | None) -> None:
        """Emit `group`'s own vars (named under `chain`), then its sub-layers."""
        if len(chain) > MAX_LAYER_DEPTH:
            raise FormatError(
                self.source, f"layers nest more than {MAX_LAYER_DEPTH} deep at {group.name[:120]}"
            )
        vars_group = self._group(group, "vars")
        if vars_group is not None:
            self._emit_vars(vars_group, chain, _snake_of(group.name))
        layers = self._group(group, "layers")
        if layers is not None:
            by_file = _map_configs(configs)
            present = set(layers.keys())
            ordered = [k for k in by_file if k in present]
            ordered += sorted(present - set(ordered), key=_natural)
            for key in ordered:
                child = self._group(layers, key)
                if child is not None:
                    self._child(child, chain, by_file.get(key))
        for key in sorted(group.keys(), key=_natural):
            if key in ("vars", "layers") or not chain:
                continue
            child = resolve(group, key, self.src)
            if isinstance(child, h5py.Group):
                self._child(child, chain, None)

    def _child(self, group: h5py.Group, chain: list[str], cfg: dict[str, Any] | None) -> None:
        vars_group = self._group(group, "vars")
        user = None
        if vars_group is not None and "name" in vars_group.attrs:
            user = attr_str(vars_group.attrs["name"])
        if not user and cfg is not None:
            inner = cfg.get("config")
            user = cfg.get("name") or (inner.get("name") if isinstance(inner, dict) else None)
        user = str(user or group.name.rsplit("/", 1)[-1])
        self.layer_names[group.name] = user
        self.walk(group, [*chain, user], _config_layers(cfg))

    def _emit_vars(self, vars_group: h5py.Group, chain: list[str], snake: str) -> None:
        keys = sorted(vars_group.keys(), key=_natural)
        labels = _var_labels(snake, len(keys))
        layer = "/".join(chain) or attr_str(vars_group.attrs.get("name", "model"))
        for key, label in zip(keys, labels, strict=True):
            name = f"{layer}/{label}"
            if name in self.paths:
                name = f"{vars_group.name.lstrip('/')}/{key}"
            self._add(vars_group, key, {"name": name, "layer": layer})

    def training_state(self, group: Any, key: str) -> None:
        if not isinstance(group, h5py.Group):
            return
        found: list[str] = []
        group.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) else None)
        for rel in sorted(found, key=_natural):
            name = f"{key}/{rel}"
            self._add(group, rel, {"name": name, "layer": key, "optimizer": True})

    def _add(self, group: h5py.Group, rel: str, fields: dict[str, Any]) -> None:
        name = fields["name"]
        if name in self.paths:
            raise FormatError(self.source, "duplicate tensor name", name)
        ds = safe_dataset(group, rel, self.src, name)
        self.paths[name] = ds.name
        self.tensors.append(dataset_tensor(ds, self.src, fields))


def _snake_of(group_path: str) -> str:
    """`/layers/dense_1` → `dense` (the class part of a file layer name)."""
    base = group_path.rsplit("/", 1)[-1]
    return re.sub(r"_\d+$", "", base)


def _var_labels(snake: str, count: int) -> list[str]:
    names = _VAR_NAMES.get(snake)
    if names and count == len(names):
        return list(names)
    if names and names[-1] == "bias" and count == len(names) - 1:
        return list(names[:-1])
    return [str(i) for i in range(count)]


def _map_configs(configs: list[Any] | None) -> dict[str, dict[str, Any]]:
    """File layer name (`dense_1`) → its config, replaying Keras's naming in layer order."""
    if not configs:
        return {}
    used: dict[str, int] = {}
    out: dict[str, dict[str, Any]] = {}
    for cfg in configs:
        snake = to_snake_case(str(cfg.get("class_name", "")))
        if snake in used:
            used[snake] += 1
            key = f"{snake}_{used[snake]}"
        else:
            used[snake] = 0
            key = snake
        out[key] = cfg
    return out
