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
Nothing is read from another file: every path is resolved link by link (`resolve`: soft links
followed, external and user-defined links refused, each object checked to lie in this file) and
the whole file is checked for links, external raw storage and virtual datasets leading out
(`check_contained`), because the Keras writer copies every object. Groups nest at most
`MAX_PATH_DEPTH` deep. A compressed dataset may declare at most `MAX_RATIO` x its stored bytes
(plus `MAX_INFLATE_SLACK` per file). libhdf5 returns zeros for bytes past the end of a file and
fill values for unwritten chunks, so each load checks the file's current size before and after
the read and refuses datasets with unwritten chunks: a file cut by another process fails,
naming the tensor, instead of exporting zeros.

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

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from inspector.core.errors import FormatError
from inspector.core.model import Model, Tensor, TensorInfo
from inspector.formats._common import keras_channel_axis
from inspector.formats._json import MAX_CONFIG_BYTES, parse_json
from inspector.formats.keras.h5probe import probe_hdf5

__all__ = [
    "MAX_INFLATE_SLACK",
    "MAX_PATH_DEPTH",
    "MAX_RATIO",
    "H5Source",
    "attr_list",
    "attr_str",
    "check_contained",
    "check_depth",
    "clip",
    "damaged",
    "dataset_tensor",
    "open_h5",
    "read_keras_h5",
    "resolve",
    "safe_dataset",
]


def read_keras_h5(path: str | os.PathLike[str]) -> Model:
    """Open a Keras HDF5 file (legacy or Keras 3 weights layout), headers only."""
    p = Path(path)
    probe_hdf5(p)
    f = open_h5(p, p)
    try:
        src = H5Source.for_path(f, p)
        check_depth(f, src)
        if "layer_names" in f.attrs or "layer_names0" in f.attrs or "model_weights" in f:
            tensors, meta = _read_legacy(f, src)
        elif "layers" in f or "vars" in f:
            from inspector.formats.keras.zip_reader import keras3_weights

            tensors, meta = keras3_weights(f, src, None)
        else:
            raise FormatError(p, "HDF5 file holds no Keras weights (no layer_names attribute)")
        check_contained(f, src)
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
    return FormatError(source, f"damaged HDF5 structure: {_short(str(exc), 300)}")


def open_h5(source: Path, fileobj: Any) -> h5py.File:
    """Open HDF5 read-only from a path or file-like; failures become `FormatError`."""
    try:
        return h5py.File(fileobj, "r")
    except (OSError, ValueError) as exc:
        raise FormatError(source, f"not a readable HDF5 file: {_short(str(exc), 300)}") from None


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
            raise FormatError(
                source, f"attribute {name!r} of {_short(obj.name)} is not a list of names"
            )
        out.extend(attr_str(v) for v in arr.reshape(-1))
    return out


class H5Source:
    """What the tensor loaders of one open HDF5 file share: the user's file (for messages),
    its size when opened, how to learn its size now (another process may truncate it while it
    is previewed: libhdf5 then returns zeros for the missing bytes instead of failing), the
    file's identity (objects reached through a link into another file have another), and the
    budget of bytes that compressed datasets may declare beyond `MAX_RATIO` × what they
    store."""

    def __init__(self, f: h5py.File, source: Path, size_now: Callable[[], int]) -> None:
        self.source = source
        self.size = f.id.get_filesize()
        self.size_now = size_now
        self.fileno = f.id.fileno
        self.slack = MAX_INFLATE_SLACK

    @classmethod
    def for_path(cls, f: h5py.File, source: Path) -> H5Source:
        """A file libhdf5 opened by path (its sec2 driver exposes the descriptor)."""
        try:
            fd = int(f.id.get_vfd_handle())
        except (OSError, RuntimeError, TypeError, ValueError):
            return cls(f, source, lambda: os.stat(source).st_size)
        return cls(f, source, lambda: os.fstat(fd).st_size)


MAX_RATIO = 32
"""Declared bytes per stored byte a compressed dataset may have (real weights compress 1-3x;
deflate reaches ~1000x on zeros, which would let a few MB of file claim GBs at preview)."""
MAX_INFLATE_SLACK = 16 << 20
"""Bytes beyond `MAX_RATIO` x storage all the compressed datasets of one file may declare in
total (small all-zero biases compress far better than `MAX_RATIO`)."""
_MAX_SOFT_HOPS = 32
MAX_PATH_DEPTH = 128
"""Group levels a Keras HDF5 file may have (a Keras 3 file adds two per nested model; the
writer copies the tree recursively)."""


def _short(text: str, limit: int = 120) -> str:
    """A name from the file cut to `limit` characters (a hostile name can be megabytes)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(text: str, limit: int = 120) -> str:
    """`text` (a name or library message from a hostile file) cut to `limit` characters, so
    an error stays one readable line."""
    return _short(text, limit)


def resolve(
    group: h5py.Group, rel: str, src: H5Source, tensor: str | None = None, hops: int = 0
) -> h5py.Group | h5py.Dataset | None:
    """The object at `rel` under `group`, following hard and soft links one component at a
    time (a soft link's target is resolved the same way, so a soft link to an external link
    is caught) and refusing external and user-defined links; None when a component is
    missing or a soft link dangles."""
    node: Any = group
    for part in (s for s in rel.split("/") if s and s != "."):
        where = f"{node.name.rstrip('/')}/{part}"
        if not isinstance(node, h5py.Group):
            raise FormatError(src.source, f"{_short(node.name)} is not a group", tensor)
        link = node.get(part, getlink=True)
        if link is None:
            return None
        if isinstance(link, h5py.SoftLink):
            if hops >= _MAX_SOFT_HOPS:
                raise FormatError(
                    src.source, f"soft links at {_short(where)} loop or nest too deep", tensor
                )
            base = node.file if link.path.startswith("/") else node
            node = resolve(base, link.path, src, tensor, hops + 1)
            if node is None:
                return None
        elif isinstance(link, h5py.HardLink):
            node = node[part]
        elif isinstance(link, h5py.ExternalLink):
            target = _short(f"{link.filename}:{link.path}", 80)
            raise FormatError(
                src.source,
                f"{_short(where)} is an external link: it reads another file ({target!r})",
                tensor,
            )
        else:
            raise FormatError(src.source, f"{_short(where)} is a user-defined link", tensor)
    if node.id.fileno != src.fileno:
        raise FormatError(src.source, f"{_short(node.name)} lies in another file", tensor)
    return node


def check_contained(f: h5py.File, src: H5Source) -> None:
    """Refuse a file any of whose links leaves it or any of whose datasets stores its data in
    other files (external raw storage, virtual datasets mapping other files). Run on the
    whole file, not only the weights: the Keras writer copies every object."""
    check_depth(f, src)
    bad: list[bytes] = []

    def visit(name: bytes, info: Any) -> int | None:
        if info.type not in (h5py.h5l.TYPE_HARD, h5py.h5l.TYPE_SOFT):
            bad.append(name)
            return 1
        return None

    f.id.links.visit(visit, info=True)
    if bad:
        name = bad[0].decode("utf-8", "replace")
        link = f.get(name, getlink=True)
        target = (
            _short(f"{link.filename}:{link.path}", 80)
            if isinstance(link, h5py.ExternalLink)
            else ""
        )
        what = (
            f"an external link: it reads another file ({target!r})"
            if target
            else "a user-defined link (it may read another file)"
        )
        raise FormatError(src.source, f"/{_short(name)} is {what}")
    outside: list[str] = []

    def visit_obj(name: str, obj: Any) -> int | None:
        if isinstance(obj, h5py.Dataset) and _reads_outside(obj):
            outside.append(name)
            return 1
        return None

    f.visititems(visit_obj)
    if outside:
        raise FormatError(src.source, f"/{_short(outside[0])} stores its data in other files")


def check_depth(f: h5py.File, src: H5Source) -> None:
    """Refuse groups nested deeper than `MAX_PATH_DEPTH` before anything walks the tree by
    object (h5py's `visititems` reopens each object by its full path: a 2,000-deep chain
    took 13 s; the writer's recursive copy would overflow the stack)."""
    deep: list[bytes] = []

    def visit(name: bytes) -> int | None:
        if name.count(b"/") >= MAX_PATH_DEPTH:
            deep.append(name)
            return 1
        return None

    f.id.links.visit(visit)
    if deep:
        where = _short(deep[0].decode("utf-8", "replace"))
        raise FormatError(src.source, f"groups nest more than {MAX_PATH_DEPTH} deep (/{where})")


def _reads_outside(ds: h5py.Dataset) -> bool:
    if ds.external:
        return True
    return bool(ds.is_virtual and any(vs.file_name != "." for vs in ds.virtual_sources()))


def safe_dataset(group: h5py.Group, rel: str, src: H5Source, tensor: str) -> h5py.Dataset:
    """The dataset at `rel` under `group`, refusing links and storage outside the file."""
    if not [s for s in rel.split("/") if s and s != "."]:
        raise FormatError(src.source, "empty weight path", tensor)
    obj = resolve(group, rel, src, tensor)
    if obj is None:
        raise FormatError(src.source, f"missing dataset {_short(group.name + '/' + rel)}", tensor)
    if not isinstance(obj, h5py.Dataset):
        raise FormatError(src.source, f"{_short(obj.name)} is not a dataset", tensor)
    if obj.external:
        raise FormatError(
            src.source, f"{_short(obj.name)} stores its data in external files", tensor
        )
    if obj.is_virtual:
        raise FormatError(
            src.source, f"{_short(obj.name)} is a virtual dataset (Keras never writes one)", tensor
        )
    return obj


def dataset_tensor(ds: h5py.Dataset, src: H5Source, info_fields: dict[str, Any]) -> Tensor:
    """A lazy `Tensor` for a validated dataset; `info_fields` gives name, layer, optimizer."""
    name = info_fields["name"]
    source = src.source
    shape = ds.shape
    if shape is None:
        raise FormatError(source, "dataset has no shape (null dataspace)", name)
    dtype = ds.dtype
    if dtype.kind not in "fiub" or dtype.itemsize > 8:
        raise FormatError(source, f"unsupported dtype {dtype}", name)
    native = dtype.newbyteorder("=")
    _check_storage(ds, src, name, int(np.prod(shape, dtype=object)) * native.itemsize)
    channel_axis = keras_channel_axis(len(shape), name, ds.name or "")
    info = TensorInfo(
        shape=tuple(shape), dtype=native.name, channel_axis=channel_axis, **info_fields
    )
    return Tensor(info, _loader(ds, src, name, native))


def _check_storage(ds: h5py.Dataset, src: H5Source, name: str, nbytes: int) -> None:
    source = src.source
    storage = ds.id.get_storage_size()
    if nbytes > storage and ds.id.get_create_plist().get_nfilters():
        excess = nbytes - MAX_RATIO * storage
        if excess > src.slack:
            raise FormatError(
                source,
                f"compressed dataset declares {nbytes} bytes but stores {storage} "
                f"(more than {MAX_RATIO}x: a decompression bomb; re-save it uncompressed)",
                name,
            )
        src.slack -= max(excess, 0)
    elif nbytes > 1024 * storage + (1 << 20):
        raise FormatError(source, f"dataset declares {nbytes} bytes but stores {storage}", name)
    try:
        offset = ds.id.get_offset()
    except (OSError, RuntimeError):
        offset = None
    if offset is not None and offset + storage > src.size:
        raise FormatError(source, "file is truncated: dataset runs past its end", name)


def _data_end(ds: h5py.Dataset, nbytes: int) -> int:
    """The file offset the dataset's stored bytes end at (0 when they live in its header).
    Raises ValueError when part of it is not stored at all: libhdf5 would return fill values
    (zeros) for that part instead of failing."""
    layout = ds.id.get_create_plist().get_layout()
    if layout == h5py.h5d.COMPACT or nbytes == 0:
        return 0
    if layout == h5py.h5d.CONTIGUOUS:
        offset = ds.id.get_offset()
        if offset is None:
            raise ValueError("no values stored (they would all read as the fill value)")
        return int(offset) + max(nbytes, int(ds.id.get_storage_size()))
    if layout == h5py.h5d.CHUNKED and ds.chunks is not None:
        found = [0, 0]

        def chunk(info: Any) -> None:
            found[0] += 1
            found[1] = max(found[1], int(info.byte_offset) + int(info.size))

        try:
            ds.id.chunk_iter(chunk)
        except (AttributeError, NotImplementedError):  # h5py built against HDF5 < 1.12.3
            for i in range(ds.id.get_num_chunks()):
                chunk(ds.id.get_chunk_info(i))
        expected = 1
        for dim, size in zip(ds.shape, ds.chunks, strict=True):
            expected *= -(-dim // size)
        if found[0] < expected:
            raise ValueError(
                f"only {found[0]} of its {expected} chunks are stored (the rest would read "
                "as the fill value)"
            )
        return found[1]
    raise ValueError("unsupported storage layout")


def _loader(
    ds: h5py.Dataset, src: H5Source, name: str, dtype: np.dtype
) -> Callable[[], np.ndarray]:
    source = src.source
    end: list[int] = []

    def check(out: np.ndarray, when: str) -> None:
        if not end:
            end.append(_data_end(ds, out.nbytes))
        now = src.size_now()
        if now < end[0]:
            raise FormatError(
                source,
                f"file shrank to {now} bytes {when} (another program is changing it); "
                f"this tensor's data ends at byte {end[0]}",
                name,
            )

    def load() -> np.ndarray:
        try:
            out = np.empty(ds.shape, dtype=dtype)
            if out.size:
                check(out, "before the read")
                ds.read_direct(out)
                check(out, "during the read")
            return out
        except FormatError:
            raise
        except Exception as exc:
            raise FormatError(
                source, f"cannot read values: {_short(str(exc), 300)}", name
            ) from None

    return load


def _json_attr(f: h5py.File, key: str, source: Path) -> dict[str, Any] | None:
    if key not in f.attrs:
        return None
    text = f.attrs[key]
    if isinstance(text, np.ndarray) and text.shape != ():
        raise FormatError(source, f"root attribute {key} is not a JSON string")
    data = attr_str(text).encode("utf-8", "surrogateescape")
    if len(data) > MAX_CONFIG_BYTES:
        raise FormatError(source, f"root attribute {key} is {len(data)} bytes (a config is < 5 MB)")
    value = parse_json(source, data, f"root attribute {key}")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FormatError(source, f"root attribute {key} is not a JSON object")
    return value


def _read_legacy(f: h5py.File, src: H5Source) -> tuple[list[Tensor], dict[str, Any]]:
    source = src.source
    root_name = "model_weights" if "model_weights" in f else "/"
    root = resolve(f, root_name, src)
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
    tensors, layout, paths = _legacy_layers(root, layer_names, src)
    opt_names, opt_tensors = _legacy_optimizer(f, src, paths)
    meta.update(h5_layout=layout, optimizer_weight_names=opt_names, h5_paths=paths)
    return tensors + opt_tensors, meta


def _legacy_layers(
    root: h5py.Group, layer_names: list[str], src: H5Source
) -> tuple[list[Tensor], list[tuple[str, list[str]]], dict[str, str]]:
    source = src.source
    tensors: list[Tensor] = []
    layout: list[tuple[str, list[str]]] = []
    paths: dict[str, str] = {}
    for layer in layer_names:
        group = resolve(root, layer, src) if layer.strip("/.") else None
        if not isinstance(group, h5py.Group):
            raise FormatError(
                source, f"layer group {_short(layer)!r} listed in layer_names is missing"
            )
        weight_names = attr_list(group, "weight_names", source) or []
        seen: set[str] = set()
        for w in weight_names:
            if w in seen:
                raise FormatError(source, "duplicate tensor name", f"{layer}/{w}")
            seen.add(w)
        layout.append((layer, weight_names))
        for wname in weight_names:
            name = wname if wname not in paths else f"{layer}/{wname}"
            if name in paths:
                raise FormatError(source, "duplicate tensor name", name)
            ds = safe_dataset(group, wname, src, name)
            paths[name] = ds.name
            tensors.append(dataset_tensor(ds, src, {"name": name, "layer": layer}))
    return tensors, layout, paths


def _legacy_optimizer(
    f: h5py.File, src: H5Source, paths: dict[str, str]
) -> tuple[list[str], list[Tensor]]:
    source = src.source
    group = resolve(f, "optimizer_weights", src)
    if group is None:
        return [], []
    if not isinstance(group, h5py.Group):
        raise FormatError(source, "optimizer_weights is not a group")
    names = attr_list(group, "weight_names", source)
    if names is None:
        names = []
        group.visititems(lambda n, obj: names.append(n) if isinstance(obj, h5py.Dataset) else None)
    tensors = []
    for wname in names:
        name = f"optimizer_weights/{wname}"
        if name in paths:
            raise FormatError(source, "duplicate tensor name", name)
        ds = safe_dataset(group, wname, src, name)
        paths[name] = ds.name
        fields = {"name": name, "layer": "optimizer_weights", "optimizer": True}
        tensors.append(dataset_tensor(ds, src, fields))
    return names, tensors
