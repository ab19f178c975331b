"""GGUF, llama.cpp's model file: reader (`reader.read_gguf`), writer and export target
(`writer.py`). See `header.py` for the layout and its validation, `reader.py` for how tensors
appear (row-major shapes, blocks along the last axis), `writer.py` for what an export writes."""

from __future__ import annotations

from inspector.formats.base import FormatSpec, Probe

__all__ = ["FORMAT"]


def _sniff(probe: Probe) -> str | None:
    return "gguf" if not probe.is_dir and probe.head[:4] == b"GGUF" else None


FORMAT = FormatSpec(
    name="gguf",
    label="GGUF (llama.cpp)",
    readers={"gguf": "inspector.formats.gguf.reader:read_gguf"},
    sniff=_sniff,
    suffixes={".gguf": "gguf"},
    open_patterns=("*.gguf",),
    writer="inspector.formats.gguf.writer:write",
    target="inspector.formats.gguf.writer:GGUF",
    export_suffix=".gguf",
    menu_rank=35,
)
