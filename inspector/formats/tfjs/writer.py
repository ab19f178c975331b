"""TF.js writer: `model.json` + `group1-shardKofM.bin`, loadable by stock TF.js 4.x.

Storage (DESIGN §5): uint8/uint16 codes with `{"dtype", "min", "scale", "original_dtype"}`,
float16 with `{"dtype": "float16", "original_dtype": "float32"}`, float32 as is.
- `affineN` is the same affine rule with a smaller top code: N ≤ 8 stores its codes one per byte
  as TF.js uint8 with its own min/scale, 8 < N ≤ 16 as uint16 — exact, no baking.
- Schemes TF.js cannot store are *baked*: their decoded values are re-quantized per tensor to
  uint16 (int8 per channel, int4 groups, kmeans palettes: adds at most half a uint16 step of the
  tensor's range, ~1/131070 of it, far below the scheme's own error; uint16 keeps the few
  distinct values of a palette or grid, so it gzips like the scheme) and bfloat16 to float16
  (exact for |v| ≥ 2^-17 ≈ 7.6e-6 and below 65504, since float16 has more fraction bits).
  The preview applies the same stages, so its error is the error after baking.
Weights are concatenated in manifest order with no padding and cut into shards of at most
`shard_bytes` (a weight may span shards). Shards hold codes only: min/scale live in model.json,
so each tensor's `quantized_bytes` is exactly its share of the shards and model.json is the
overhead. Numbers in the manifest are written with 17 significant digits in a fixed 24-character
field (`-1.0196078817000000e-01`, exact doubles), so the model.json the preview predicts from
its rows has exactly the written length.

Inputs: TF.js layers/graph models keep their topology (and signature, metadata); Keras `.h5` /
`.keras` become a layers-model whose topology is translated for TF.js (`keras_topology`) and
whose weights are named `<layer>/<variable>` (never the legacy `conv2d_1_1/kernel:0`);
weights-only inputs (safetensors, npz) become a bare `weights_manifest.json` (a JSON list of
groups, read by `tf.io.loadWeights`) plus shards, and so does any input with the
`weights_only` option (for Keras models whose layers stock TF.js lacks: the topology check
refuses them otherwise, see docs/tfjs-layers.md; the preview then still counts model.json).
Optimizer state is not exported.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.archive import TarMember, tar_stream
from inspector.core.errors import FormatError
from inspector.core.model import Model, TensorInfo
from inspector.core.preview import QuantizedTensor
from inspector.core.schemes import Encoded, Scheme, StoredArray, parse_scheme
from inspector.core.schemes.affine import AFFINE
from inspector.core.target import Storage, Target
from inspector.formats.base import ExportOptions
from inspector.formats.keras.topology import (
    TopologyError,
    tfjs_model_topology,
    tfjs_weight_name,
)

__all__ = [
    "TFJS",
    "TfjsAffine",
    "manifest_names",
    "tfjs_archive",
    "tfjs_storage",
    "tfjs_tensor_bytes",
    "write",
]

CONVERTED_BY = "quant-inspector 0.1"
SHARD_BYTES = 4 << 20
_NUM_WIDTH = 24
_MARK = "\ue000q"


@dataclass(frozen=True)
class TfjsAffine(Scheme):
    """An affine scheme as TF.js stores it: one code per uint8 (N ≤ 8) or uint16, min and scale
    in model.json. Same codes and decoded values as the scheme; only the byte layout differs."""

    def encode(
        self,
        x: np.ndarray,
        channel_axis: int | None = None,
        value_range: tuple[float, float] | None = None,
        tensor: str = "",
    ) -> Encoded:
        enc = super().encode(x, channel_axis, value_range, tensor)
        return _TfjsEncoded(self, enc.shape, enc.codes, enc.params, enc.overflow)

    @property
    def storage_dtype(self) -> str:
        return "uint8" if self.bits <= 8 else "uint16"


@dataclass(frozen=True, eq=False)
class _TfjsEncoded(Encoded):
    def to_bytes(self) -> bytes:
        dtype = "<u1" if self.scheme.bits <= 8 else "<u2"
        return np.ascontiguousarray(self.codes, dtype=dtype).tobytes()

    def byte_views(self) -> list[np.ndarray | bytes]:
        dtype = np.dtype("<u1" if self.scheme.bits <= 8 else "<u2")
        if self.codes.dtype == dtype and self.codes.flags.c_contiguous:
            return [self.codes.reshape(-1).view(np.uint8)]
        return [self.to_bytes()]

    def arrays(self) -> tuple[StoredArray, ...]:
        """The codes alone, one per uint8/uint16 (min and scale live in model.json)."""
        dtype = "uint8" if self.scheme.bits <= 8 else "uint16"
        nbytes = int(np.prod(self.shape, dtype=np.int64)) * (1 if self.scheme.bits <= 8 else 2)
        return (StoredArray("codes", dtype, self.shape, nbytes),)

    @property
    def nbytes(self) -> int:
        return self.arrays()[0].nbytes


def _as_tfjs(scheme: Scheme) -> TfjsAffine:
    return TfjsAffine(
        scheme.name,
        scheme.bits,
        clip=scheme.clip,
        sparsity=scheme.sparsity,
        skip=scheme.skip,
        extra=scheme.extra,
    )


_UINT16 = _as_tfjs(parse_scheme("uint16"))
_FLOAT16 = parse_scheme("float16")
_FLOAT32 = parse_scheme("float32")


def tfjs_storage(info: TensorInfo, scheme: Scheme) -> Storage:
    """How TF.js holds `scheme` for `info` (see the module docstring for the choices)."""
    if scheme.is_identity:
        return Storage((_FLOAT32,)) if info.dtype not in ("float32", "float16") else Storage(())
    if scheme.family is AFFINE:
        return Storage((_as_tfjs(scheme),))
    if scheme.stores_values and scheme.exact_dtype in ("float16", "float32"):
        return Storage((scheme,))
    if scheme.stores_values:
        note = (
            f"{scheme.name} re-stored as float16 (TF.js has no {scheme.name}; "
            "exact for |v| ≥ 7.6e-6)"
        )
        return Storage((scheme, _FLOAT16), note)
    note = (
        f"{scheme.name} baked: its decoded values re-stored as uint16 per tensor "
        "(TF.js stores only uint8/uint16/float16/float32 per tensor)"
    )
    return Storage((scheme, _UINT16), note)


def _num(x: float) -> str:
    return f"{float(x):.16e}".rjust(_NUM_WIDTH)


def _placeholder(name: str, which: int) -> float:
    """A stand-in number for a row without its min/scale: 17 digits as random as a real one's
    (a fraction like n/7e9 repeats its digits and gzips ~1 % smaller on a small model)."""
    h = zlib.crc32(f"{name}/{which}".encode()) | zlib.crc32(f"{which}/{name}".encode()) << 32
    return -((h >> 11) + 1) / 2.0**55


def manifest_names(model: Model) -> dict[str, str]:
    """Tensor name → the name TF.js looks the weight up by (`layer/variable` for Keras)."""
    names = {t.name: t.name for t in model if not t.info.optimizer}
    meta = model.metadata
    if model.format == "keras-h5" and meta.get("h5_layout") and meta.get("h5_paths"):
        root = str(meta.get("weights_root", "/")).strip("/")
        where = {}
        for layer, paths in meta["h5_layout"]:
            for rel in paths:
                full = "/".join(p for p in (root, layer, rel) if p)
                where["/" + full] = (layer, rel)
        for name, path in meta["h5_paths"].items():
            if name in names and "/" + str(path).strip("/") in where:
                names[name] = tfjs_weight_name(*where["/" + str(path).strip("/")])
    seen: dict[str, str] = {}
    for tensor, mname in names.items():
        if mname in seen:
            raise FormatError(model.path, f"two weights map to TF.js name {mname!r}", tensor)
        seen[mname] = tensor
    return names


@dataclass
class _Entry:
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: str | None  # "uint8", "uint16", "float16" or None
    numbers: tuple[float, float] = field(default=(0.0, 0.0))


def _entry(model: Model, mname: str, info: TensorInfo, stored: Scheme | None) -> _Entry:
    if stored is None:
        if info.dtype == "float16":
            return _Entry(mname, info.shape, "float32", "float16")
        dtype = "float32" if info.is_float else _int_dtype(model, info)
        return _Entry(mname, info.shape, dtype, None)
    if isinstance(stored, TfjsAffine):
        return _Entry(mname, info.shape, "float32", stored.storage_dtype)
    quant = "float16" if stored.exact_dtype == "float16" else None
    return _Entry(mname, info.shape, "float32", quant)


def _int_dtype(model: Model, info: TensorInfo) -> str:
    if info.dtype in ("int32", "bool"):
        return info.dtype
    if info.dtype in ("int8", "uint8", "int16", "uint16", "int64", "uint32", "uint64"):
        return "int32"
    raise FormatError(model.path, f"TF.js cannot store a {info.dtype} weight", info.name)


def _entry_json(e: _Entry, index: int) -> dict[str, Any]:
    out: dict[str, Any] = {"name": e.name, "shape": list(e.shape), "dtype": e.dtype}
    if e.quant in ("uint8", "uint16"):
        out["quantization"] = {
            "dtype": e.quant,
            "min": f"{_MARK}{index}a",
            "scale": f"{_MARK}{index}b",
            "original_dtype": "float32",
        }
    elif e.quant == "float16":
        out["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
    return out


def _document(
    model: Model, entries: Sequence[_Entry], paths: list[str], strict: bool, bare: bool = False
) -> tuple[str, bool]:
    """(JSON text, is a full model.json) — a bare manifest list for weights-only inputs or
    when `bare` asks for one."""
    manifest = [{"paths": paths, "weights": [_entry_json(e, i) for i, e in enumerate(entries)]}]
    base = None if bare else _base_document(model, strict)
    doc: Any = manifest if base is None else _with_manifest(base, manifest)
    text = json.dumps(doc, separators=(",", ":"))
    # One pass over the text (a replace per entry was quadratic: 8,000 weights took 42 s).
    marked = re.compile('"(min|scale)":"' + re.escape(json.dumps(_MARK)[1:-1]) + r'(\d+)[ab]"')

    def number(m: re.Match[str]) -> str:
        i = int(m.group(2))
        if i >= len(entries) or entries[i].quant not in ("uint8", "uint16"):
            return m.group(0)
        return f'"{m.group(1)}":{_num(entries[i].numbers[m.group(1) == "scale"])}'

    return marked.sub(number, text), base is not None


def _with_manifest(base: dict[str, Any], manifest: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in base.items():
        out[key] = value
        if key == "modelTopology":
            out["weightsManifest"] = manifest
    out.setdefault("weightsManifest", manifest)
    return out


def _base_document(model: Model, strict: bool) -> dict[str, Any] | None:
    meta = model.metadata
    if model.format == "tfjs" and isinstance(meta.get("model_json"), Mapping):
        src = dict(meta["model_json"])
        src.pop("weightsManifest", None)
        head = {k: src.pop(k) for k in ("format", "generatedBy") if k in src}
        return {**head, "convertedBy": CONVERTED_BY, **src}
    config = meta.get("keras_config")
    if model.format in ("keras-h5", "keras") and isinstance(config, Mapping) and config:
        version = str(meta.get("keras_version") or "2.19.0")
        try:
            topology = tfjs_model_topology(config, version, meta.get("backend"), strict)
        except TopologyError as exc:
            raise FormatError(
                model.path,
                f"{exc} — see docs/tfjs-layers.md; export the weights alone with "
                "--weights-only (weights_manifest.json + shards), or use --format keras",
            ) from None
        return {
            "format": "layers-model",
            "generatedBy": f"keras v{version}",
            "convertedBy": CONVERTED_BY,
            "modelTopology": topology,
        }
    return None


def _shard_names(total: int, shard_bytes: int) -> list[str]:
    count = max(1, -(-total // shard_bytes))
    return [f"group1-shard{k}of{count}.bin" for k in range(1, count + 1)]


def tfjs_tensor_bytes(model: Model, q: QuantizedTensor) -> bytes:
    """The bytes the shards hold for one tensor: its codes, or its kept values as TF.js stores
    them (float32, float16, int32, bool)."""
    return q.encoded.to_bytes() if q.encoded is not None else _kept_bytes(model, q)


def _kept_bytes(model: Model, q: QuantizedTensor) -> bytes:
    arr = np.asarray(q.original)
    if q.info.dtype == "float16":
        return np.ascontiguousarray(arr, dtype="<f2").tobytes()
    if q.info.is_float:
        return np.ascontiguousarray(arr, dtype="<f4").tobytes()
    if q.info.dtype == "bool":
        return np.ascontiguousarray(arr, dtype="u1").tobytes()
    wide = np.asarray(arr, dtype=np.int64)
    if wide.size and (wide.min() < -(2**31) or wide.max() >= 2**31):
        raise FormatError(model.path, "integer values do not fit TF.js int32", q.info.name)
    return np.ascontiguousarray(arr, dtype="<i4").tobytes()


class _Shards:
    """Cuts one byte stream into numbered part files of at most `limit` bytes."""

    def __init__(self, folder: Path, limit: int) -> None:
        self.folder, self.limit = folder, limit
        self.parts: list[Path] = []
        self.total = 0
        self._fh: Any = None
        self._room = 0

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while len(view):
            if self._room == 0:
                self._next()
            n = min(self._room, len(view))
            self._fh.write(view[:n])
            view, self._room, self.total = view[n:], self._room - n, self.total + n

    def _next(self) -> None:
        self.close()
        self.parts.append(self.folder / f".part{len(self.parts) + 1}")
        self._fh = open(self.parts[-1], "wb")  # noqa: SIM115 - closed by close()
        self._room = self.limit

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def finish(self) -> list[Path]:
        self.close()
        if not self.parts:
            self._next()
            self.close()
        names = _shard_names(max(self.total, 1), self.limit)[: len(self.parts)]
        final = [self.folder / n for n in names]
        for part, dest in zip(self.parts, final, strict=True):
            part.rename(dest)
        return final


def write(
    model: Model, stream: Iterable[QuantizedTensor], dest: Path, opts: ExportOptions
) -> list[Path]:
    """Write model.json (or weights_manifest.json) and the shards into folder `dest`."""
    names = manifest_names(model)
    bare = opts.weights_only
    if not bare:
        _base_document(model, strict=True)  # refuse an unloadable topology before writing
    shards = _Shards(dest, opts.shard_bytes)
    entries: list[_Entry] = []
    try:
        for q in stream:
            if q.info.optimizer:
                continue
            stored = q.encoded.scheme if q.encoded is not None else None
            entry = _entry(model, names[q.info.name], q.info, stored)
            if entry.quant in ("uint8", "uint16") and q.encoded is not None:
                entry.numbers = (q.encoded.params["min"], q.encoded.params["scale"])
            shards.write(tfjs_tensor_bytes(model, q))
            entries.append(entry)
    finally:
        shards.close()
    files = shards.finish()
    text, full = _document(model, entries, [f.name for f in files], True, bare)
    doc_path = dest / ("model.json" if full else "weights_manifest.json")
    doc_path.write_text(text, encoding="ascii")
    return [doc_path, *files]


def _row_stored(row: Any) -> Scheme | None:
    if row.skipped is not None:
        return None
    stored = parse_scheme(row.stored)
    return _as_tfjs(stored) if stored.family is AFFINE else stored


def tfjs_overhead(model: Model, previews: Sequence[Any]) -> bytes:
    """model.json (or weights_manifest.json) exactly as `write` emits it for these rows (4 MiB
    shards assumed): byte for byte when the rows carry their stored min/scale, else with
    stand-in numbers of the same width."""
    names = manifest_names(model)
    entries, total = [], 0
    for row in previews:
        if row.optimizer:
            continue
        entry = _entry(model, names[row.name], model[row.name].info, _row_stored(row))
        numbers = tuple(getattr(row, "stored_params", ()))
        if len(numbers) == 2:
            entry.numbers = (numbers[0], numbers[1])
        else:
            entry.numbers = (_placeholder(row.name, 0), -_placeholder(row.name, 1))
        entries.append(entry)
        total += row.quantized_bytes
    paths = _shard_names(max(total, 1), SHARD_BYTES)
    return _document(model, entries, paths, strict=False)[0].encode("ascii")


def tfjs_archive(
    overhead: bytes, stored_total: int, chunks: Iterable[bytes | memoryview]
) -> Iterator[bytes | memoryview]:
    """The tar stream of the exported folder (4 MiB shards in order, then model.json or
    weights_manifest.json), whose gzip size defines the TF.js example's gzip ratio."""
    names = _shard_names(max(stored_total, 1), SHARD_BYTES)
    source = _Cutter(chunks)
    members: list[TarMember] = []
    for k, name in enumerate(names):
        size = min(SHARD_BYTES, stored_total - k * SHARD_BYTES)
        members.append((name, size, source.take(size)))
    doc = "weights_manifest.json" if overhead[:1] == b"[" else "model.json"
    members.append((doc, len(overhead), [overhead]))
    return tar_stream(members)


class _Cutter:
    """Hands out consecutive byte ranges of a chunk stream, splitting chunks at the borders."""

    def __init__(self, chunks: Iterable[bytes | memoryview]) -> None:
        self._chunks = iter(chunks)
        self._rest = memoryview(b"")

    def take(self, size: int) -> Iterator[memoryview]:
        while size > 0:
            if not len(self._rest):
                chunk = next(self._chunks, None)
                if chunk is None:
                    return
                self._rest = memoryview(chunk).cast("B")
            piece, self._rest = self._rest[:size], self._rest[size:]
            size -= len(piece)
            yield piece


TFJS = Target("tfjs", tfjs_storage, tfjs_overhead, tfjs_tensor_bytes, tfjs_archive)
