"""Export reports: per-tensor and total metrics (DESIGN §4 names) and the plan, as JSON, CSV
or a self-contained HTML page with the per-tensor chart and value histograms as PNG images.

Images are drawn with numpy and encoded by a tiny PNG writer (zlib + CRC), so reports need no
plotting library. Written atomically; an existing report is replaced only with `force`.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import InspectorError
from inspector.core.model import Model
from inspector.core.plan import Plan
from inspector.core.preview import Preview, json_number
from inspector.formats.atomic import atomic_file, check_output

__all__ = ["encode_png", "report_json", "write_node_data", "write_report"]

CSV_FIELDS = (
    "name", "layer", "shape", "dtype", "scheme", "stored", "note", "skipped", "parameters",
    "original_bytes", "quantized_bytes", "bits_per_weight", "mse", "rmse", "max_abs_error",
    "rmse_over_scale", "sqnr_db", "cosine", "overflow", "gzip_bytes",
)  # fmt: skip
_COLUMNS = CSV_FIELDS[:1] + CSV_FIELDS[4:]
_HIST_TENSORS = 24
_BAR = np.array([52, 101, 164], dtype=np.uint8)
_WARN = np.array([204, 80, 62], dtype=np.uint8)


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an `(h, w, 3)` uint8 image (8-bit RGB, no filtering)."""
    img = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = img.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), img.reshape(h, w * 3)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 9))
        + chunk(b"IEND", b"")
    )


def _bars(values: np.ndarray, height: int = 160, width: int = 8, warn: np.ndarray | None = None):
    """A bar chart image: one bar per value (scaled to the largest), warn bars in red."""
    n = max(1, len(values))
    img = np.full((height, n * width, 3), 255, np.uint8)
    top = float(np.max(values)) if len(values) and np.max(values) > 0 else 1.0
    for i, v in enumerate(values):
        h = round((height - 2) * max(0.0, float(v)) / top)
        color = _WARN if warn is not None and warn[i] else _BAR
        img[height - h :, i * width : (i + 1) * width - 1] = color
    return img


def _histogram(values: np.ndarray, bins: int = 64) -> np.ndarray:
    finite = values[np.isfinite(values)]
    counts = np.histogram(finite, bins=bins)[0] if finite.size else np.zeros(bins)
    return _bars(np.log1p(counts.astype(np.float64)), height=60, width=3)


def _png_tag(img: np.ndarray, alt: str) -> str:
    data = base64.b64encode(encode_png(img)).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def report_json(model: Model, plan: Plan, preview: Preview, result: Any = None) -> dict[str, Any]:
    """The report as one JSON document: the preview's `--json` shape plus plan and files."""
    doc = preview.to_json(model)
    doc["plan"] = plan.to_json()
    if result is not None:
        from inspector.formats.export import result_json

        doc["export"] = result_json(result)
    return doc


def _csv_text(preview: Preview) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in preview.tensors:
        data = row.to_json()
        data["shape"] = "x".join(str(d) for d in row.shape)
        writer.writerow(data)
    return buf.getvalue()


def _fmt(v: Any) -> str:
    v = json_number(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v if v is not None else ""))


def _html_text(model: Model, plan: Plan, preview: Preview, result: Any) -> str:
    rows = preview.tensors
    sqnr = np.array([min(t.sqnr_db, 120.0) if math.isfinite(t.sqnr_db) else 120.0 for t in rows])
    warn = np.array([(t.rmse_over_scale or 0) > 0.7 for t in rows])
    ratio = np.array([t.original_bytes / max(1, t.quantized_bytes) for t in rows])
    parts = [
        "<!doctype html><meta charset='utf-8'><title>Quantization report</title>",
        "<style>body{font:14px sans-serif;margin:2em}td,th{padding:2px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{image-rendering:pixelated}</style>",
        f"<h1>Quantization report: {html.escape(model.path.name)}</h1>",
        "<h2>Totals</h2><table>",
        *(
            f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>"
            for k, v in preview.total.items()
        ),
        "</table><h2>Plan</h2><pre>" + html.escape(plan.dumps()) + "</pre>",
    ]
    if result is not None:
        files = "".join(f"<li>{html.escape(str(p))}: {n} bytes</li>" for p, n in result.files)
        parts.append(f"<h2>Written ({html.escape(result.format)})</h2><ul>{files}</ul>")
    parts += [
        "<h2>Per tensor: SQNR (dB, capped at 120; red: RMSE/scale &gt; 0.7)</h2>",
        _png_tag(_bars(sqnr, warn=warn), "SQNR per tensor"),
        "<h2>Per tensor: compression ratio</h2>",
        _png_tag(_bars(ratio), "compression per tensor"),
        "<h2>Tensors</h2><table><tr>" + "".join(f"<th>{f}</th>" for f in _COLUMNS) + "</tr>",
    ]
    for t in rows:
        data = t.to_json()
        cells = "".join(f"<td>{_fmt(data.get(f))}</td>" for f in _COLUMNS)
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</table><h2>Value histograms (log counts)</h2>")
    for t in [t for t in model if t.info.is_float and t.info.size][:_HIST_TENSORS]:
        parts.append(
            f"<p>{html.escape(t.name)}<br>{_png_tag(_histogram(t.sample(100_000)), t.name)}"
        )
    return "\n".join(parts)


def write_report(
    path: str | Path,
    model: Model,
    plan: Plan,
    preview: Preview | None,
    result: Any = None,
    *,
    force: bool = False,
) -> Path:
    """Write the report; the format follows the suffix (.html, .json, .csv)."""
    from inspector.formats.export import input_paths

    out = check_output(path, input_paths(model), force)
    if preview is None:
        raise InspectorError("a report needs the preview (export with_preview=True)")
    suffix = out.suffix.lower()
    if suffix == ".json":
        text = json.dumps(report_json(model, plan, preview, result), indent=2)
    elif suffix == ".csv":
        text = _csv_text(preview)
    elif suffix in (".html", ".htm"):
        text = _html_text(model, plan, preview, result)
    else:
        raise InspectorError(f"{out}: report must end in .html, .json or .csv")
    with atomic_file(out) as fh:
        fh.write(text.encode("utf-8"))
    return out


def write_node_data(
    path: str | Path, doc: dict[str, Any], model: Model, *, force: bool = False
) -> Path:
    """Write Model Explorer node data (`core.explorer.node_data`) atomically; never over the
    input, an existing file only with `force`."""
    from inspector.formats.export import input_paths

    out = check_output(path, input_paths(model), force)
    with atomic_file(out) as fh:
        fh.write(json.dumps(doc, indent=2).encode("utf-8"))
    return out
