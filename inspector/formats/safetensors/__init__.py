"""safetensors: one memory-mapped file, JSON header then the raw buffer; or a sharded
checkpoint (`*.safetensors.index.json` plus shards, or the folder holding them) read as one
model (`sharded.py`) and written as one when the output is a folder (`sharded_writer.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inspector.formats.base import FormatSpec, Probe

if TYPE_CHECKING:
    from inspector.core.model import Model

__all__ = ["FORMAT"]


_INDEX_SUFFIX = ".safetensors.index.json"


def _sniff(probe: Probe) -> str | None:
    if probe.is_dir:
        single = len(list(probe.path.glob("*" + _INDEX_SUFFIX))) == 1
        return "safetensors-index" if single else None
    if probe.path.name.endswith(_INDEX_SUFFIX):
        return "safetensors-index"
    if len(probe.head) < 9:
        return None
    n = probe.u64(0)
    return "safetensors" if 2 <= n <= probe.size - 8 and probe.head[8:9] == b"{" else None


def _exports_from(model: Model) -> str:
    """`__metadata__` is the header's own key: a tensor of that name cannot be stored."""
    if any(t.name == "__metadata__" and not t.info.optimizer for t in model):
        return "tensor '__metadata__' has the name of the safetensors header's metadata entry"
    return ""


FORMAT = FormatSpec(
    name="safetensors",
    label="safetensors",
    readers={
        "safetensors": "inspector.formats.safetensors.reader:read_safetensors",
        "safetensors-index": "inspector.formats.safetensors.sharded:read_safetensors_index",
    },
    sniff=_sniff,
    suffixes={".safetensors": "safetensors"},
    open_patterns=("*.safetensors",),
    writer="inspector.formats.safetensors.writer:write",
    target="inspector.formats.safetensors.writer:SAFETENSORS",
    export_fields=frozenset({"dequantized", "max_shard_bytes"}),
    exports_from=_exports_from,
    export_suffix=".safetensors",
    menu_rank=30,
)
