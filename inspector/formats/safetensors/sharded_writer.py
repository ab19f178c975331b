"""Sharded safetensors export: Hugging Face's `save_pretrained` folder layout.

An export to a folder (an existing folder, or a path without a suffix) writes
`model-00001-of-00003.safetensors`, … and `model.safetensors.index.json`
(`{"metadata": {"total_size": N}, "weight_map": {array: shard}}`, keys sorted, indented as
transformers writes it), or a single `model.safetensors` when everything fits in one shard.
Tensors fill shards in order; a shard is closed when the next tensor would take it past
`max_shard_bytes` (default 5 GB = 5·10⁹ bytes, `save_pretrained`'s "5GB"), and a tensor larger
than the limit gets a shard of its own, as huggingface_hub splits. A tensor's arrays (codes and
their `.scale`/`.min`/`.palette`) stay in one shard. `total_size` counts the arrays' bytes,
headers excluded.

Each shard is a safetensors file of this tool's layout (`writer.py`): its header
records the whole plan and the schemes of the tensors it holds, so each shard decodes alone.
`sharded_target(max)` predicts the headers and the index exactly for the preview.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from inspector.core.errors import FormatError
from inspector.core.model import Model, TensorInfo
from inspector.core.preview import QuantizedTensor
from inspector.core.schemes import Scheme, parse_scheme
from inspector.core.target import Target, native_storage
from inspector.formats.safetensors.writer import components, header_bytes, payload, stored_scheme

__all__ = [
    "DEFAULT_MAX_SHARD_BYTES",
    "INDEX_NAME",
    "index_bytes",
    "shard_names",
    "sharded_target",
    "wants_folder",
    "write_sharded",
]

DEFAULT_MAX_SHARD_BYTES = 5 * 10**9
INDEX_NAME = "model.safetensors.index.json"
_SINGLE = "model.safetensors"
Entry = tuple[TensorInfo, Scheme | None]


def wants_folder(out: Path) -> bool:
    """An output path asks for the sharded folder layout when it is a folder or has no suffix
    (`-o llama-7b-q8`); `model.safetensors`, `x.st` name single files."""
    return out.is_dir() or not out.suffix


def shard_names(count: int) -> list[str]:
    """File names of `count` shards, as transformers names them."""
    if count == 1:
        return [_SINGLE]
    return [f"model-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)]


def _entry_nbytes(entry: Entry) -> int:
    return sum(c[3] for c in components(*entry))


def _group(sizes: Sequence[int], max_bytes: int) -> list[list[int]]:
    """Indices per shard: start a new shard when the next item would pass `max_bytes`."""
    shards: list[list[int]] = [[]]
    current = 0
    for i, n in enumerate(sizes):
        if shards[-1] and current + n > max_bytes:
            shards.append([])
            current = 0
        shards[-1].append(i)
        current += n
    return shards


def index_bytes(shards: Sequence[Sequence[Entry]], names: Sequence[str]) -> bytes:
    """`model.safetensors.index.json` for these shards (empty for a single shard)."""
    if len(shards) == 1:
        return b""
    weight_map: dict[str, str] = {}
    total = 0
    for entries, name in zip(shards, names, strict=True):
        for entry in entries:
            for key, _, _, nbytes in components(*entry):
                weight_map[key] = name
                total += nbytes
    doc = {"metadata": {"total_size": total}, "weight_map": weight_map}
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _pairs(model: Model, opts: Any) -> list[tuple[str, str]]:
    return [(t.name, opts.plan.scheme_for(t.info).spec) for t in model if not t.info.optimizer]


class _Spool:
    """Shard bodies spooled to temporary files in the output folder while shards fill."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder, self.max_bytes = folder, max_bytes
        self.shards: list[list[Entry]] = []
        self.bodies: list[Path] = []
        self.fh: Any = None
        self.current = 0

    def add(self, entry: Entry, data: bytes) -> None:
        if self.fh is None or (self.shards[-1] and self.current + len(data) > self.max_bytes):
            self._next()
        self.fh.write(data)
        self.shards[-1].append(entry)
        self.current += len(data)

    def _next(self) -> None:
        self.close()
        self.bodies.append(self.folder / f".shard-{len(self.bodies) + 1}.body")
        self.fh = open(self.bodies[-1], "wb")  # noqa: SIM115 - closed by close()
        self.shards.append([])
        self.current = 0

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def write_sharded(
    model: Model, stream: Iterable[QuantizedTensor], folder: Path, opts: Any
) -> list[Path]:
    """Write the shards and the index into `folder` (a temporary folder renamed into place)."""
    max_bytes = int(getattr(opts, "max_shard_bytes", DEFAULT_MAX_SHARD_BYTES))
    dequantized = getattr(opts, "dequantized", False)
    pairs = _pairs(model, opts)
    spool = _Spool(folder, max_bytes)
    try:
        for q in stream:
            if q.info.optimizer:
                continue
            scheme = stored_scheme(q, dequantized)
            data = payload(q, scheme)
            if len(data) != _entry_nbytes((q.info, scheme)):
                raise FormatError(folder, f"{len(data)} bytes do not match the layout", q.info.name)
            spool.add((q.info, scheme), data)
        if spool.fh is None:
            spool._next()
        spool.close()
        return _finish(folder, spool, pairs)
    finally:
        spool.close()
        for body in spool.bodies:
            body.unlink(missing_ok=True)


def _finish(folder: Path, spool: _Spool, pairs: Sequence[tuple[str, str]]) -> list[Path]:
    names = shard_names(len(spool.shards))
    written = []
    for entries, body, name in zip(spool.shards, spool.bodies, names, strict=True):
        with open(folder / name, "wb") as out, open(body, "rb") as fh:
            out.write(header_bytes(entries, pairs))
            shutil.copyfileobj(fh, out, 16 << 20)
        body.unlink()
        written.append(folder / name)
    index = index_bytes(spool.shards, names)
    if index:
        (folder / INDEX_NAME).write_bytes(index)
        written.append(folder / INDEX_NAME)
    return written


def _row_entries(model: Model, previews: Sequence[Any]) -> tuple[list[Entry], list[str]]:
    entries: list[Entry] = []
    specs: list[str] = []
    for row in previews:
        if row.optimizer:
            continue
        stored = None if row.skipped is not None else parse_scheme(row.stored)
        entries.append((model[row.name].info, stored))
        specs.append(row.scheme)
    return entries, specs


def sharded_target(max_bytes: int = DEFAULT_MAX_SHARD_BYTES) -> Target:
    """The safetensors target whose overhead is every shard's header plus the index."""

    def overhead(model: Model, previews: Sequence[Any]) -> bytes:
        entries, specs = _row_entries(model, previews)
        pairs = [(e[0].name, s) for e, s in zip(entries, specs, strict=True)]
        groups = _group([_entry_nbytes(e) for e in entries], max_bytes)
        shards = [[entries[i] for i in g] for g in groups]
        names = shard_names(len(shards))
        return b"".join(header_bytes(s, pairs) for s in shards) + index_bytes(shards, names)

    return Target("safetensors", native_storage, overhead)
