"""TF.js reader: `model.json` + binary shards (layers and graph models) and bare weights manifests.

A manifest group's weights are concatenated in manifest order with no padding and then cut into
shard files, so a weight may span shards; shard paths are relative to the manifest and must stay
inside its folder. Opening reads the JSON and the shard sizes only (string weights excepted: their
byte length is only known by reading their length prefixes, in 1 MiB blocks). The JSON is
bounded (`formats/_json.py`: ≤ 32 MiB, ≤ 128 levels); a model lists at most `MAX_WEIGHTS`
weights and `MAX_SHARDS` shards, which must be regular files (a FIFO would block the read).
Quantized entries decode exactly as
stock TF.js `decodeWeights` does: `float32(q * scale + min)` computed in float64, int32 weights
`Math.round`-ed, float16 via half → float32.

Metadata keys (`Model.metadata`):
- `model_json`: the whole parsed model.json (weightsManifest included); for graph models this
  holds everything needed to re-emit (modelTopology, signature, userDefinedMetadata,
  modelInitializer, …). Bare manifests: `{"weightsManifest": [...]}`.
- `tfjs_format`: the file's `"format"` value (`"layers-model"`, `"graph-model"`), None when
  absent.
- `tfjs_model_type`: `"layers-model"`, `"graph-model"` or None, inferred from the topology when
  the `format` key is missing (older converters, e.g. nsfwjs).
- `weights_manifest`: the manifest list as parsed.
- `keras_config` (layers models): `modelTopology["model_config"]` if present, else modelTopology.
- `keras_version`, `backend`: from modelTopology when present.
- `training_config`: modelTopology's training_config when present.
"""

from __future__ import annotations

import bisect
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import FormatError
from inspector.core.model import Model, StoredQuantization, Tensor, TensorInfo
from inspector.formats._common import (
    check_shape,
    check_unique,
    contained_path,
    keras_channel_axis,
    layer_of,
    read_range,
    wrap_loader,
)
from inspector.formats._json import MAX_MODEL_JSON_BYTES, file_kind, read_json

__all__ = ["decode_quantized", "read_tfjs", "read_tfjs_weights"]

# Logical dtype → (numpy storage dtype, bytes per element) for unquantized entries.
_PLAIN = {
    "float32": ("<f4", 4),
    "int32": ("<i4", 4),
    "bool": ("u1", 1),
    "uint8": ("u1", 1),
    "float16": ("<f2", 2),
}
_QUANT = {"uint8": ("u1", 1), "uint16": ("<u2", 2), "float16": ("<f2", 2)}


@dataclass(frozen=True)
class _Entry:
    info: TensorInfo
    offset: int
    nbytes: int
    storage: str
    quant: dict[str, Any] | None


class _Group:
    """One manifest group: its shard files seen as one contiguous byte stream."""

    def __init__(self, files: list[Path], sizes: list[int]) -> None:
        self.files = files
        self.starts = [int(s) for s in np.cumsum([0, *sizes])]

    @property
    def total(self) -> int:
        return self.starts[-1]

    def segments(self, offset: int, nbytes: int) -> list[tuple[Path, int, int]]:
        """(file, offset in it, length) pieces of the group's bytes `[offset, offset+nbytes)`,
        found by bisection (a scan of every shard per weight was quadratic)."""
        out = []
        end = offset + nbytes
        i = max(bisect.bisect_right(self.starts, offset) - 1, 0)
        while i < len(self.files) and self.starts[i] < end:
            lo, hi = self.starts[i], self.starts[i + 1]
            if hi > offset:
                a, b = max(lo, offset), min(hi, end)
                out.append((self.files[i], a - lo, b - a))
            i += 1
        return out

    def read(self, offset: int, nbytes: int, tensor: str) -> np.ndarray:
        return read_range(self.segments(offset, nbytes), self.files[0], tensor)


def decode_quantized(q: np.ndarray, quant: dict[str, Any], dtype: str) -> np.ndarray:
    """Decode stored codes exactly as TF.js `decodeWeights`: float64 `q*scale+min` cast to
    float32 (int32 weights: JavaScript `Math.round`, i.e. floor(x + 0.5)); float16 → float32."""
    if quant["dtype"] == "float16":
        return q.astype(np.float32)
    values = q.astype(np.float64) * float(quant["scale"]) + float(quant["min"])
    if dtype == "int32":
        return np.floor(values + 0.5).astype(np.int32)
    return values.astype(np.float32)


def read_tfjs(path: str | os.PathLike[str]) -> Model:
    """Open a TF.js `model.json` (or a folder holding one) with its shards, headers only."""
    p = Path(path)
    if p.is_dir():
        p = p / "model.json"
    doc = read_json(p, "TF.js model JSON", MAX_MODEL_JSON_BYTES)
    if not isinstance(doc, dict):
        raise FormatError(p, "model.json must be a JSON object")
    manifest = doc.get("weightsManifest", [])
    tensors, closers = _read_manifest(p, manifest)
    meta: dict[str, Any] = {
        "model_json": doc,
        "tfjs_format": doc.get("format"),
        "tfjs_model_type": _model_type(doc),
        "weights_manifest": manifest,
    }
    topo = doc.get("modelTopology")
    if meta["tfjs_model_type"] == "layers-model" and isinstance(topo, dict):
        config = topo.get("model_config", topo)
        if isinstance(config, dict):
            meta["keras_config"] = config
        for key in ("keras_version", "backend", "training_config"):
            if key in topo:
                meta[key] = topo[key]
    return Model(p, "tfjs", tensors, meta, closers)


def read_tfjs_weights(path: str | os.PathLike[str]) -> Model:
    """Open a bare TF.js weights manifest (a JSON list of groups, no topology)."""
    p = Path(path)
    manifest = read_json(p, "weights manifest", MAX_MODEL_JSON_BYTES)
    tensors, closers = _read_manifest(p, manifest)
    meta = {
        "model_json": {"weightsManifest": manifest},
        "tfjs_format": None,
        "tfjs_model_type": None,
        "weights_manifest": manifest,
    }
    return Model(p, "tfjs-weights", tensors, meta, closers)


def _model_type(doc: dict[str, Any]) -> str | None:
    fmt = doc.get("format")
    if fmt in ("layers-model", "graph-model"):
        return fmt
    topo = doc.get("modelTopology")
    if isinstance(topo, dict):
        if "node" in topo or "library" in topo:
            return "graph-model"
        if "model_config" in topo or "class_name" in topo:
            return "layers-model"
    return None


MAX_WEIGHTS = 1 << 14
"""Weights one TF.js model may list (real models: a few hundred to a few thousand; each costs
~2 ms of preview on the 2-core machine, so 16,384 is about half a minute)."""
MAX_SHARDS = 1 << 14
"""Weight files one TF.js model may list (real models: 1-500 at 4 MiB per shard)."""
MAX_STRING_RECORDS = 1 << 22
"""Records one string weight may hold (each becomes a Python bytes object at load)."""


def _read_manifest(source: Path, manifest: Any) -> tuple[list[Tensor], list[Callable[[], None]]]:
    if not isinstance(manifest, list):
        raise FormatError(source, "weightsManifest must be a list of groups")
    tensors: list[Tensor] = []
    shards = 0
    for gi, group in enumerate(manifest):
        if not isinstance(group, dict):
            raise FormatError(source, f"weightsManifest[{gi}] must be an object")
        files = _group_files(source, group.get("paths"), gi)
        shards += len(files)
        if shards > MAX_SHARDS:
            raise FormatError(source, f"the manifest lists more than {MAX_SHARDS} weight files")
        g = _Group(files, [_shard_size(f, source) for f in files])
        entries = _layout_group(source, group.get("weights"), g, gi)
        tensors.extend(Tensor(e.info, _loader(source, g, e)) for e in entries)
        if len(tensors) > MAX_WEIGHTS:
            raise FormatError(source, f"the manifest lists more than {MAX_WEIGHTS} weights")
    check_unique(source, (t.name for t in tensors))
    return tensors, []


def _shard_size(f: Path, source: Path) -> int:
    try:
        st = f.stat()
    except OSError as exc:
        raise FormatError(f, f"cannot read weight file listed in {source.name}: {exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise FormatError(f, f"weight file listed in {source.name} is {file_kind(st.st_mode)}")
    return st.st_size


def _group_files(source: Path, paths: Any, gi: int) -> list[Path]:
    if not isinstance(paths, list):
        raise FormatError(source, f"weightsManifest[{gi}].paths must be a list")
    if len(paths) > MAX_SHARDS:
        raise FormatError(source, f"the manifest lists more than {MAX_SHARDS} weight files")
    files = [contained_path(source.parent, rel, source) for rel in paths]
    for f in files:
        if not f.exists():
            raise FormatError(f, f"weight file listed in {source.name} is missing")
    return files


def _layout_group(source: Path, weights: Any, g: _Group, gi: int) -> list[_Entry]:
    if not isinstance(weights, list):
        raise FormatError(source, f"weightsManifest[{gi}].weights must be a list")
    if len(weights) > MAX_WEIGHTS:
        raise FormatError(source, f"the manifest lists more than {MAX_WEIGHTS} weights")
    entries: list[_Entry] = []
    offset = 0
    for spec in weights:
        entry = _parse_entry(source, spec, offset, g)
        entries.append(entry)
        offset += entry.nbytes
    if offset != g.total:
        where = g.files[-1] if g.files else source
        if offset > g.total:
            first = next(e for e in entries if e.offset + e.nbytes > g.total)
            raise FormatError(
                where,
                f"weight files hold {g.total} bytes but the manifest declares {offset}",
                first.info.name,
            )
        raise FormatError(
            where, f"weight files hold {g.total - offset} bytes more than the manifest declares"
        )
    return entries


def _parse_entry(source: Path, spec: Any, offset: int, g: _Group) -> _Entry:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise FormatError(source, f"manifest entry must have a string name: {spec!r:.100}")
    name = spec["name"]
    dtype = spec.get("dtype")
    quant = spec.get("quantization")
    remaining = max(g.total - offset, 0)
    if dtype == "string":
        shape = check_shape(source, name, spec.get("shape"), remaining // 4)
        nbytes = _string_nbytes(source, g, offset, int(np.prod(shape, dtype=np.int64)), name)
        info = TensorInfo(name, shape, "string", layer_of(name, "/"))
        return _Entry(info, offset, nbytes, "string", None)
    if not isinstance(dtype, str) or dtype not in _PLAIN:  # a list/dict is not hashable
        raise FormatError(source, f"unsupported dtype {dtype!r}", name)
    stored = None
    if quant is not None:
        storage, itemsize, stored = _parse_quant(source, name, dtype, quant)
    else:
        storage, itemsize = _PLAIN[dtype]
    shape = check_shape(source, name, spec.get("shape"))
    count = 1
    for d in shape:
        count *= d
    channel_axis = keras_channel_axis(len(shape), name)
    info = TensorInfo(name, shape, dtype, layer_of(name, "/"), False, stored, channel_axis)
    return _Entry(info, offset, count * itemsize, storage, quant)


def _parse_quant(
    source: Path, name: str, dtype: str, quant: Any
) -> tuple[str, int, StoredQuantization]:
    if not isinstance(quant, dict) or not isinstance(quant.get("dtype"), str):
        raise FormatError(source, f"unknown quantization {quant!r:.100}", name)
    if quant["dtype"] not in _QUANT:
        raise FormatError(source, f"unknown quantization {quant!r:.100}", name)
    qd = quant["dtype"]
    storage, itemsize = _QUANT[qd]
    original = quant.get("original_dtype", dtype)
    if qd == "float16":
        if dtype != "float32":
            raise FormatError(source, f"float16 quantization of a {dtype} weight", name)
        return storage, itemsize, StoredQuantization("float16", {"original_dtype": original})
    if dtype not in ("float32", "int32"):
        raise FormatError(source, f"{qd} quantization of a {dtype} weight", name)
    mn, scale = quant.get("min"), quant.get("scale")
    for key, v in (("min", mn), ("scale", scale)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
            raise FormatError(source, f"quantization {key} must be a finite number", name)
    return storage, itemsize, StoredQuantization(qd, {"min": mn, "scale": scale})


def _string_nbytes(source: Path, g: _Group, offset: int, count: int, name: str) -> int:
    """Walk the `uint32 length + bytes` records of a string weight to find its byte size,
    reading the shards in 1 MiB blocks (one read per record was a file open per record)."""
    if count > MAX_STRING_RECORDS:
        raise FormatError(
            source, f"string weight holds {count} records (limit {MAX_STRING_RECORDS})", name
        )
    pos = offset
    buf, buf_start = b"", offset
    for _ in range(count):
        if pos + 4 > g.total:
            raise FormatError(source, "string weight runs past the end of its weight files", name)
        if pos + 4 > buf_start + len(buf):
            buf_start = pos
            buf = g.read(pos, min(1 << 20, g.total - pos), name).tobytes()
        at = pos - buf_start
        pos += 4 + int.from_bytes(buf[at : at + 4], "little")
        if pos > g.total:
            raise FormatError(source, "string weight runs past the end of its weight files", name)
    return pos - offset


def _loader(source: Path, g: _Group, e: _Entry) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        try:
            raw = g.read(e.offset, e.nbytes, e.info.name)
            return _decode(raw, e)
        except Exception as exc:
            raise wrap_loader(source, e.info.name, exc) from None

    return load


def _decode(raw: np.ndarray, e: _Entry) -> np.ndarray:
    shape = e.info.shape
    if e.storage == "string":
        out, pos = [], 0
        for _ in range(int(np.prod(shape, dtype=np.int64))):
            n = int(raw[pos : pos + 4].view("<u4")[0])
            out.append(bytes(raw[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        arr = np.empty(len(out), dtype=object)
        arr[:] = out
        return arr.reshape(shape)
    stored = raw.view(e.storage).reshape(shape)
    if e.quant is not None:
        return decode_quantized(stored, e.quant, e.info.dtype)
    if e.info.dtype == "bool":
        return stored != 0
    return stored.astype(stored.dtype.newbyteorder("="), copy=False)
