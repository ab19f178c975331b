"""safetensors: one memory-mapped file, JSON header then the raw buffer."""

from __future__ import annotations

from inspector.formats.base import FormatSpec, Probe

__all__ = ["FORMAT"]


def _sniff(probe: Probe) -> str | None:
    if probe.is_dir or len(probe.head) < 9:
        return None
    n = probe.u64(0)
    return "safetensors" if 2 <= n <= probe.size - 8 and probe.head[8:9] == b"{" else None


FORMAT = FormatSpec(
    name="safetensors",
    label="safetensors",
    readers={"safetensors": "inspector.formats.safetensors.reader:read_safetensors"},
    sniff=_sniff,
    suffixes={".safetensors": "safetensors"},
    open_patterns=("*.safetensors",),
    writer="inspector.formats.safetensors.writer:write",
    target="inspector.formats.safetensors.writer:SAFETENSORS",
    export_fields=frozenset({"dequantized"}),
    export_suffix=".safetensors",
    menu_rank=30,
)
