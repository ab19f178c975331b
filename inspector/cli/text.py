"""Plain-text tables and JSON documents for the CLI's `info` and `preview` (no Qt, no I/O)."""

from __future__ import annotations

from typing import Any

from inspector.core.formatting import format_bytes
from inspector.core.model import Model
from inspector.core.preview import Preview, TensorPreview

__all__ = ["info_json", "info_table", "preview_table"]


def info_json(model: Model) -> dict[str, Any]:
    """`info --json`: the model and every tensor with shape, dtype, layer, stored scheme."""
    rows = []
    for t in model:
        i = t.info
        row: dict[str, Any] = {
            "name": i.name,
            "layer": i.layer,
            "shape": list(i.shape),
            "dtype": i.dtype,
            "parameters": i.size,
            "original_bytes": i.nbytes,
            "optimizer": i.optimizer,
            "channel_axis": i.channel_axis,
            "stored": None,
        }
        if i.stored is not None:
            row["stored"] = {"scheme": i.stored.scheme, "params": dict(i.stored.params)}
        rows.append(row)
    return {
        "model": {
            **model.describe(),
            "original_bytes": sum(t.info.nbytes for t in model.weights),
            "has_topology": "keras_config" in model.metadata,
        },
        "tensors": rows,
    }


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    out = []
    for r in [header, *rows]:
        cells = [r[c].rjust(w) if c in right else r[c].ljust(w) for c, w in enumerate(widths)]
        out.append("  ".join(cells).rstrip())
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def info_table(model: Model) -> str:
    rows = []
    for t in model:
        i = t.info
        stored = i.stored.scheme if i.stored else ""
        flags = "optimizer" if i.optimizer else ""
        shape = "×".join(map(str, i.shape)) or "scalar"
        rows.append([i.name, shape, i.dtype, f"{i.size:,}", stored, flags])
    head = ["tensor", "shape", "dtype", "params", "stored as", ""]
    total = f"{model.parameter_count:,}"
    weights_bytes = format_bytes(sum(t.info.nbytes for t in model.weights))
    return (
        f"{model.path}  ({model.format}, {len(model)} tensors, {total} parameters, "
        f"{weights_bytes})\n\n" + _table(head, rows, {3})
    )


def _sqnr_text(v: float) -> str:
    return "exact" if v == float("inf") else f"{v:.1f}"


def _preview_row(t: TensorPreview) -> list[str]:
    ros = "" if t.rmse_over_scale is None else f"{t.rmse_over_scale:.3f}"
    status = t.skipped or t.note or ""
    return [
        t.name,
        t.stored if t.stored != t.scheme and not t.skipped else t.scheme,
        format_bytes(t.original_bytes),
        format_bytes(t.quantized_bytes),
        "" if t.skipped else _sqnr_text(t.sqnr_db),
        ros,
        status,
    ]


def preview_table(model: Model, preview: Preview, target: str) -> str:
    head = ["tensor", "scheme", "before", "after", "SQNR dB", "RMSE/scale", "note"]
    rows = [_preview_row(t) for t in preview.tensors]
    tot = preview.total
    lines = [
        f"{model.path}  ({model.format} → {target})",
        "",
        _table(head, rows, {2, 3, 4, 5}),
        "",
        f"parameters      {tot['parameters']:,}",
        f"size            {format_bytes(tot['original_bytes'])} → "
        f"{format_bytes(tot['quantized_bytes'])}  "
        f"(×{tot['compression_ratio']:.2f}, {tot['bits_per_weight']:.2f} bits/weight)",
        f"gzip ratio      {tot['gzip_ratio']:.3f}  (total bytes ÷ gzipped bytes)",
        f"entropy bound   {tot['entropy_bits_per_weight']:.2f} bits/weight; Huffman-coded "
        f"{format_bytes(tot['huffman_bytes'])}, gzip {format_bytes(tot['gzip_bytes'])}",
        f"global SQNR     {_sqnr_text(tot['sqnr_db'])} dB",
    ]
    if tot["worst"]:
        lines.append(f"worst tensors   {', '.join(tot['worst'])}")
    for name in tot["nonfinite_tensors"]:
        lines.append(f"warning: tensor '{name}' holds NaN/Inf values and is kept as it is")
    return "\n".join(lines)
