"""TF-Lite (`.tflite` FlatBuffers): constant tensors with their stored quantization; export
re-stores weights as the TF-Lite converter does (float16/int8 + DEQUANTIZE, hybrid int8)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inspector.formats.base import FormatSpec, Probe

if TYPE_CHECKING:
    from inspector.core.model import Model

__all__ = ["FORMAT"]


def _sniff(probe: Probe) -> str | None:
    """The FlatBuffer file identifier `TFL3` at bytes 4–8, whatever the file is called."""
    return "tflite" if not probe.is_dir and probe.head[4:8] == b"TFL3" else None


def _exports_from(model: Model) -> str:
    if model.format == "tflite":
        return ""
    return "TF-Lite export needs a TF-Lite input (the graph comes from the input file)"


FORMAT = FormatSpec(
    name="tflite",
    label="TF-Lite",
    readers={"tflite": "inspector.formats.tflite.reader:read_tflite"},
    sniff=_sniff,
    suffixes={".tflite": "tflite"},
    open_patterns=("*.tflite",),
    writer="inspector.formats.tflite.writer:write",
    target="inspector.formats.tflite.writer:TFLITE_TARGET",
    exports_from=_exports_from,
    export_suffix=".tflite",
    menu_rank=45,
)
