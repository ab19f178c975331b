"""Plain-text tables and JSON documents for the CLI's `info` and `preview` (no Qt, no I/O)."""

from __future__ import annotations

from typing import Any

from inspector.core.formatting import format_bytes
from inspector.core.model import Model
from inspector.core.preview import Preview, TensorPreview

__all__ = ["file_metadata", "info_json", "info_table", "preview_table"]


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
            "kept": i.kept,
            "stored": None,
        }
        if i.stored is not None:
            row["stored"] = {"scheme": i.stored.scheme, "params": dict(i.stored.params)}
        rows.append(row)
    doc: dict[str, Any] = {
        "model": {
            **model.describe(),
            "original_bytes": sum(t.info.nbytes for t in model.weights),
            "has_topology": "keras_config" in model.metadata,
        },
        "tensors": rows,
    }
    meta = file_metadata(model)
    if meta:
        doc["metadata"] = meta
    return doc


_SHOWN_METADATA = ("gguf_metadata", "safetensors_metadata", "safetensors_index", "torch_extra")


def file_metadata(model: Model) -> dict[str, Any]:
    """The file's own key/values for people (GGUF keys with arrays summarised, safetensors
    `__metadata__` and index metadata, a checkpoint's non-tensor entries); {} when none."""
    out: dict[str, Any] = {}
    for key in _SHOWN_METADATA:
        value = model.metadata.get(key)
        if isinstance(value, dict):
            out.update(value)
    return out


def _metadata_lines(model: Model, width: int = 100) -> list[str]:
    lines = []
    for key, value in file_metadata(model).items():
        text = repr(value) if isinstance(value, str) else str(value)
        text = text if len(text) <= width else text[: width - 1] + "…"
        name = key if key.isprintable() else repr(key)[1:-1]
        lines.append(f"  {name:.60} = {text}")
    return lines


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
        flags = "optimizer" if i.optimizer else (i.kept or "")
        shape = "×".join(map(str, i.shape)) or "scalar"
        rows.append([i.name, shape, i.dtype, f"{i.size:,}", stored, flags])
    head = ["tensor", "shape", "dtype", "params", "stored as", ""]
    total = f"{model.parameter_count:,}"
    weights_bytes = format_bytes(sum(t.info.nbytes for t in model.weights))
    meta = _metadata_lines(model)
    head_text = f"{model.path}  ({model.format}, {len(model)} tensors, {total} parameters, "
    head_text += f"{weights_bytes})\n\n"
    if meta:
        head_text += "metadata:\n" + "\n".join(meta) + "\n\n"
    return head_text + _table(head, rows, {3})


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
