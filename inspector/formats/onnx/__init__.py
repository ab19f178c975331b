"""ONNX: initializers, `Constant` nodes and `DequantizeLinear` weights; QDQ export."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inspector.formats.base import FormatSpec, Probe

if TYPE_CHECKING:
    from inspector.core.model import Model

__all__ = ["FORMAT"]


def _sniff(probe: Probe) -> str | None:
    if probe.is_dir:
        return None
    from inspector.formats.onnx.reader import looks_like_onnx

    return "onnx" if looks_like_onnx(probe.path) else None


def _exports_from(model: Model) -> str:
    if model.format == "onnx":
        return ""
    return "ONNX export needs an ONNX input (the graph comes from the input file)"


FORMAT = FormatSpec(
    name="onnx",
    label="ONNX",
    readers={"onnx": "inspector.formats.onnx.reader:read_onnx"},
    sniff=_sniff,
    suffixes={".onnx": "onnx"},
    open_patterns=("*.onnx",),
    writer="inspector.formats.onnx.writer:write",
    target="inspector.formats.onnx.writer:ONNX_TARGET",
    exports_from=_exports_from,
    export_suffix=".onnx",
    menu_rank=40,
)
