"""Sharded safetensors (Hugging Face `save_pretrained`): an index plus shards, read as one model.

`model.safetensors.index.json` is `{"metadata": {"total_size": N}, "weight_map": {tensor:
shard file}}` with the shards beside it (`model-00001-of-00003.safetensors`, …). Opening the
index (or the folder holding exactly one `*.safetensors.index.json`) opens every shard it names
with the safetensors reader (headers only; values are memory-mapped on `load()`) and checks the
index against them: shard names must stay inside the folder, every shard must exist, every
tensor the index lists must be in the shard it names, and no tensor may be in two shards.
Tensors are listed shard by shard (shards in name order), each shard in its buffer order; a
tensor a shard holds but the index does not list is kept (transformers loads whole shards) and
named in `safetensors_unindexed`.

Metadata keys: `safetensors_index` (the index's `metadata`), `safetensors_shards` (shard file
names in order), `safetensors_metadata` (the first shard's `__metadata__`),
`safetensors_unindexed`, `source_files` (the index and every shard).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from inspector.core.errors import FormatError
from inspector.core.model import Model, Tensor
from inspector.formats._common import contained_path
from inspector.formats._json import read_json
from inspector.formats.safetensors.reader import read_safetensors

__all__ = ["INDEX_SUFFIX", "MAX_INDEX_BYTES", "find_index", "read_safetensors_index"]

INDEX_SUFFIX = ".safetensors.index.json"
MAX_INDEX_BYTES = 64 << 20
"""A weight map of a million tensors is ~100 MB of JSON in memory; real ones are < 1 MB."""
_MAX_SHARDS = 100_000


def find_index(path: Path) -> Path | None:
    """The index file `path` names: itself, or the one `*.safetensors.index.json` in a folder."""
    if path.is_file():
        return path if path.name.endswith(INDEX_SUFFIX) else None
    if not path.is_dir():
        return None
    found = sorted(path.glob("*" + INDEX_SUFFIX))
    return found[0] if len(found) == 1 else None


def _read_index(index: Path) -> dict[str, Any]:
    doc = read_json(index, "safetensors index", MAX_INDEX_BYTES)
    weight_map = doc.get("weight_map") if isinstance(doc, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise FormatError(index, "index has no weight_map object")
    bad = next(((k, v) for k, v in weight_map.items() if not isinstance(v, str)), None)
    if bad is not None:
        raise FormatError(
            index, f"weight_map entry must name a shard file, got {bad[1]!r:.60}", bad[0]
        )
    meta = doc.get("metadata", {})
    if not isinstance(meta, dict):
        raise FormatError(index, "index metadata must be an object")
    return {"weight_map": weight_map, "metadata": meta}


def _open_shards(index: Path, names: list[str]) -> list[Model]:
    if len(names) > _MAX_SHARDS:
        raise FormatError(index, f"index names {len(names)} shard files")
    shards: list[Model] = []
    try:
        for name in names:
            path = contained_path(index.parent, name, index)
            if not path.is_file():
                raise FormatError(index, f"shard {name!r} is missing")
            shards.append(read_safetensors(path))
    except BaseException:
        for m in shards:
            m.close()
        raise
    return shards


def _tensors(
    index: Path, weight_map: dict[str, str], shards: list[Model], names: list[str]
) -> tuple[list[Tensor], list[str]]:
    """Every tensor of every shard in order, after checking them against the index."""
    where: dict[str, str] = {}
    tensors: list[Tensor] = []
    unindexed: list[str] = []
    for name, shard in zip(names, shards, strict=True):
        for t in shard:
            if t.name in where:
                raise FormatError(shard.path, f"tensor is also in shard {where[t.name]!r}", t.name)
            where[t.name] = name
            tensors.append(t)
            if t.name not in weight_map:
                unindexed.append(t.name)
    for tensor, shard_name in weight_map.items():
        if where.get(tensor) != shard_name:
            found = f" (it is in {where[tensor]!r})" if tensor in where else ""
            raise FormatError(
                index, f"not in shard {shard_name!r} as the index says{found}", tensor
            )
    return tensors, unindexed


def read_safetensors_index(path: str | os.PathLike[str]) -> Model:
    """Open a sharded checkpoint through its index file or the folder holding it."""
    p = Path(path)
    index = find_index(p)
    if index is None:
        raise FormatError(p, f"no single *{INDEX_SUFFIX} here")
    doc = _read_index(index)
    names = sorted(set(doc["weight_map"].values()))
    shards = _open_shards(index, names)
    try:
        tensors, unindexed = _tensors(index, doc["weight_map"], shards, names)
    except BaseException:
        for m in shards:
            m.close()
        raise
    meta = {
        "safetensors_index": doc["metadata"],
        "safetensors_shards": names,
        "safetensors_metadata": shards[0].metadata.get("safetensors_metadata", {}),
        "safetensors_unindexed": unindexed,
        "source_files": [index, *(m.path for m in shards)],
    }
    return Model(index, "safetensors", tensors, meta, [m.close for m in shards])
