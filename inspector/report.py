"""Export reports: per-tensor and total metrics (DESIGN §4 names) and the plan, as JSON, CSV
or one self-contained HTML page: sizes in one format (the export's), the evaluation, warnings,
per-layer SQNR and sensitivity charts with axes and values, per-channel ranges and histograms
of the worst tensors, the plan and the tensor table; readable when printed (print CSS).

Charts are inline SVG written here (no plotting library, no network, nothing to fetch), so the
page opens anywhere and prints sharp. `encode_png` stays for callers wanting a raster image.
Written atomically; an existing report is replaced only with `force`.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import struct
import zlib
from collections.abc import Mapping
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


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:980px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse}td,th{padding:2px 8px;text-align:right;border-bottom:1px solid #eee}
td:first-child,th:first-child{text-align:left}.note{color:#8a4b00}.warn{color:#b00020}
.kv th{text-align:left;font-weight:normal;color:#555}figure{margin:0.5em 0}
figcaption{font-size:12px;color:#555}svg text{font:11px system-ui,sans-serif;fill:#222}
pre{background:#f6f6f6;padding:6px;overflow:auto}.tensors{font-size:12px}
@media print{body{margin:0;max-width:none;font-size:10pt}section,figure{break-inside:avoid}
h2{break-after:avoid}.tensors{font-size:7.5pt}pre{white-space:pre-wrap}a{color:inherit}}
"""
_BLUE, _RED, _GREY = "#3465a4", "#cc503e", "#888"
_WIDTH = 760
_WORST_DETAIL = 6
"""Tensors whose per-channel ranges and histograms the report draws: the worst by SQNR plus
those whose channels collapse."""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _elide(name: str, n: int = 36) -> str:
    """Middle elision keeps the distinguishing tail (`…/moving_mean`) visible."""
    return name if len(name) <= n else name[: n // 2 - 1] + "…" + name[-(n // 2) :]


def _nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round tick values covering [lo, hi] (steps of 1, 2 or 5 × 10^k)."""
    if not hi > lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, count - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks, v = [first], first
    while v < hi - step * 1e-9:
        v += step
        ticks.append(round(v, 12))
    return ticks


def _num(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        return f"{v:.2g}"
    return f"{v:.4g}"


def hbar_svg(
    rows: list[tuple[str, float, bool]],
    unit: str,
    threshold: float | None = None,
    cap: float | None = None,
) -> str:
    """A horizontal bar chart, one labelled bar per row (name, value, flagged), the value
    printed at each bar, an x axis with ticks and `unit`; `threshold` is a dashed line.
    Values above `cap` (e.g. an exact tensor's infinite SQNR) are drawn at the cap, marked ≥."""
    label_w, value_w, row_h, top, bottom = 250, 70, 16, 22, 34
    plot_w = _WIDTH - label_w - value_w
    shown = [(n, min(v, cap) if cap is not None and v > cap else v, f) for n, v, f in rows]
    values = [v for _, v, _ in shown if math.isfinite(v)] or [0.0]
    lo, hi = min(0.0, *values), max(0.0, *values, threshold or 0.0)
    ticks = _nice_ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])

    def x(v: float) -> float:
        return label_w + (v - lo) / (hi - lo) * plot_w

    height = top + row_h * len(rows) + bottom
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" role="img">'
    ]
    axis_y = top + row_h * len(rows)
    for t in ticks:
        out.append(
            f'<line x1="{x(t):.1f}" y1="{top - 4}" x2="{x(t):.1f}" y2="{axis_y}" '
            f'stroke="#e4e4e4"/><text x="{x(t):.1f}" y="{axis_y + 14}" '
            f'text-anchor="middle">{_num(t)}</text>'
        )
    out.append(
        f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + plot_w}" y2="{axis_y}" stroke="#444"/>'
        f'<text x="{label_w + plot_w / 2:.0f}" y="{axis_y + 29}" text-anchor="middle">'
        f"{_e(unit)}</text>"
    )
    zero = x(0.0)
    for i, ((name, v, flag), (_, raw, _)) in enumerate(zip(shown, rows, strict=True)):
        y = top + i * row_h
        color = _RED if flag else _BLUE
        text = "exact" if math.isinf(raw) and raw > 0 else _num(raw)
        if cap is not None and raw > cap and math.isfinite(raw):
            text = f"≥{_num(cap)}"
        out.append(
            f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end"><title>{_e(name)}</title>'
            f"{_e(_elide(name))}</text>"
        )
        if math.isfinite(v):
            x0, x1 = sorted((zero, x(v)))
            out.append(
                f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(0.5, x1 - x0):.1f}" '
                f'height="{row_h - 5}" fill="{color}">'
                f"<title>{_e(name)}: {text} {_e(unit)}</title></rect>"
            )
        out.append(f'<text x="{label_w + plot_w + 6}" y="{y + 12}">{_e(text)}</text>')
    if threshold is not None:
        out.append(
            f'<line x1="{x(threshold):.1f}" y1="{top - 8}" x2="{x(threshold):.1f}" y2="{axis_y}" '
            f'stroke="{_RED}" stroke-dasharray="4 3"/><text x="{x(threshold):.1f}" '
            f'y="{top - 10}" text-anchor="middle" fill="{_RED}">{_num(threshold)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def ranges_svg(lows: np.ndarray, highs: np.ndarray, step: float | None, height: int = 200) -> str:
    """Per-channel value ranges: one vertical segment per output channel (min to max), a y
    axis in the tensor's units; channels narrower than two steps of the per-tensor grid (they
    keep ≤ 2 levels) in red."""
    n = len(lows)
    left, right, top, bottom = 60, 10, 10, 34
    plot_w, plot_h = _WIDTH - left - right, height - top - bottom
    lo = float(np.min(lows)) if n else 0.0
    hi = float(np.max(highs)) if n else 1.0
    ticks = _nice_ticks(lo, hi, 8)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])

    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" role="img">'
    ]
    for t in ticks:
        out.append(
            f'<line x1="{left}" y1="{y(t):.1f}" x2="{left + plot_w}" y2="{y(t):.1f}" '
            f'stroke="#e4e4e4"/><text x="{left - 4}" y="{y(t) + 4:.1f}" '
            f'text-anchor="end">{_num(t)}</text>'
        )
    dx = plot_w / max(1, n)
    width = max(1.0, min(6.0, dx * 0.7))
    for c in range(n):
        xc = left + (c + 0.5) * dx
        narrow = step is not None and highs[c] - lows[c] < 2 * step
        out.append(
            f'<line x1="{xc:.1f}" y1="{y(float(highs[c])):.1f}" x2="{xc:.1f}" '
            f'y2="{y(float(lows[c])) + 0.5:.1f}" stroke="{_RED if narrow else _BLUE}" '
            f'stroke-width="{width:.1f}"><title>channel {c}: {_num(float(lows[c]))} … '
            f"{_num(float(highs[c]))}</title></line>"
        )
    for c in sorted({0, n // 2, n - 1}) if n else []:
        xc = left + (c + 0.5) * dx
        out.append(f'<text x="{xc:.1f}" y="{top + plot_h + 14}" text-anchor="middle">{c}</text>')
    out.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        f'stroke="#444"/><text x="{left + plot_w / 2:.0f}" y="{height - 4}" '
        f'text-anchor="middle">output channel</text></svg>'
    )
    return "".join(out)


def histogram_svg(values: np.ndarray, bins: int = 64, height: int = 150) -> str:
    """Value histogram, log-scaled counts, x axis in the tensor's units, y axis in counts."""
    finite = values[np.isfinite(values)]
    counts, edges = (
        np.histogram(finite, bins=bins) if finite.size else (np.zeros(bins), np.linspace(0, 1, 65))
    )
    left, right, top, bottom = 60, 10, 8, 32
    plot_w, plot_h = _WIDTH - left - right, height - top - bottom
    peak = math.log10(1 + float(counts.max())) if counts.size and counts.max() > 0 else 1.0
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" role="img">'
    ]
    for decade in range(math.ceil(peak) + 1):
        if decade > peak:
            break
        yy = top + plot_h - decade / peak * plot_h
        out.append(
            f'<line x1="{left}" y1="{yy:.1f}" x2="{left + plot_w}" y2="{yy:.1f}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{yy + 4:.1f}" text-anchor="end">{10**decade:g}</text>'
        )
    bw = plot_w / bins
    for i, c in enumerate(counts):
        if c <= 0:
            continue
        h = math.log10(1 + float(c)) / peak * plot_h
        out.append(
            f'<rect x="{left + i * bw:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{max(0.5, bw - 0.5):.1f}" height="{h:.1f}" fill="{_BLUE}">'
            f"<title>{_num(float(edges[i]))} … "
            f"{_num(float(edges[i + 1]))}: {int(c)}</title></rect>"
        )
    lo, hi = float(edges[0]), float(edges[-1])
    for t in _nice_ticks(lo, hi, 6):
        if lo <= t <= hi:
            xx = left + (t - lo) / (hi - lo or 1.0) * plot_w
            out.append(
                f'<line x1="{xx:.1f}" y1="{top + plot_h}" x2="{xx:.1f}" y2="{top + plot_h + 4}" '
                f'stroke="#444"/><text x="{xx:.1f}" y="{top + plot_h + 15}" '
                f'text-anchor="middle">{_num(t)}</text>'
            )
    out.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        f'stroke="#444"/><text x="{left + plot_w / 2:.0f}" y="{height - 2}" '
        f'text-anchor="middle">value (counts on a log scale)</text></svg>'
    )
    return "".join(out)


def _channel_ranges(values: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray] | None:
    if axis is None or values.ndim < 2:
        return None
    rows = np.moveaxis(np.asarray(values, np.float32), axis % values.ndim, 0)
    rows = rows.reshape(rows.shape[0], -1)
    return rows.min(axis=1), rows.max(axis=1)


def _kv_table(items: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in items)
    return f'<table class="kv">{cells}</table>'


def _layer_rows(preview: Preview) -> list[tuple[str, float, bool]]:
    from inspector.core.totals import summarize

    groups: dict[str, list[Any]] = {}
    for t in preview.tensors:
        if not t.optimizer and t.skipped is None:
            groups.setdefault(t.layer or t.name, []).append(t)
    rows = []
    for layer, tps in groups.items():
        total = summarize(tps)
        rows.append((layer, float(total["sqnr_db"]), bool(total["collapsed_tensors"])))
    return rows


def _html_text(
    model: Model,
    plan: Plan,
    preview: Preview,
    result: Any,
    target: str = "",
    evaluation: Mapping[str, str] | None = None,
    sensitivity: Mapping[str, float] | None = None,
    sensitivity_unit: str = "",
    threshold_db: float = 30.0,
) -> str:
    from inspector.core.collapse import collapse_flagged, collapse_text
    from inspector.core.formatting import format_bytes

    tot = preview.total
    rows = preview.tensors
    title = f"Quantization report: {model.path.name}"
    parts = [
        f"<!doctype html><html lang='en'><meta charset='utf-8'><title>{_e(title)}</title>",
        f"<style>{_CSS}</style><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p>{_e(model.path)} ({_e(model.format)}) · sizes and errors as "
        f"<b>{_e(target or 'stored by each scheme')}</b> stores them · "
        f"{tot.get('parameters', 0):,} parameters in {tot.get('tensors', 0)} weight tensors</p>",
        "<section><h2>Sizes</h2>",
        _kv_table(
            [
                ("File before (on disk)", f"{format_bytes(tot['file_bytes_before'])} "
                 f"({tot['file_bytes_before']:,} B)"),
                ("File after (as written)", f"{format_bytes(tot['file_bytes_after'])} "
                 f"({tot['file_bytes_after']:,} B)"),
                ("Compression (files)", f"{tot['compression_ratio']:.2f}×"),
                ("Weights before → after", f"{format_bytes(tot['original_bytes'])} → "
                 f"{format_bytes(tot['weight_bytes_after'])} ({tot['weight_ratio']:.2f}×)"),
                ("Bits per weight", f"{tot['bits_per_weight']:.2f}"),
                ("gzip ratio", f"{tot['gzip_ratio']:.3f}"
                 + ("" if tot.get("gzip_exact") else " (estimate)")),
                ("Global weight SQNR", f"{_num(tot['sqnr_db'])} dB"),
            ]
        ),
    ]  # fmt: skip
    if tot.get("savings_note"):
        parts.append(f"<p class='note'>⚠ {_e(tot['savings_note'])}.</p>")
    if tot.get("optimizer_tensors"):
        parts.append(
            f"<p class='note'>Optimizer state ({tot['optimizer_tensors']} tensors, "
            f"{_e(format_bytes(tot['optimizer_bytes']))}) is in the input, not the export.</p>"
        )
    if result is not None:
        files = "".join(f"<li>{_e(p)}: {n:,} bytes</li>" for p, n in result.files)
        parts.append(f"<p>Written as {_e(result.format)}:</p><ul>{files}</ul>")
    parts.append("</section><section><h2>Evaluation</h2>")
    if evaluation:
        parts.append(_kv_table(list(evaluation.items())))
    else:
        parts.append("<p>Not evaluated (the model was not run on sample data).</p>")
    parts.append("</section>")
    collapsed = [t for t in rows if collapse_flagged(t.collapsed_channels, t.channels)]
    if collapsed:
        items = "".join(
            f"<li><b>{_e(t.name)}</b>: {_e(collapse_text(t.collapsed_channels, t.channels))} "
            f"under {_e(t.scheme)}</li>"
            for t in collapsed
        )
        parts.append(
            "<section><h2>Warnings</h2><p class='warn'>Channels collapse: a per-tensor grid "
            "leaves these output channels with one or two levels; a per-channel scheme "
            f"(int8) fixes it.</p><ul>{items}</ul></section>"
        )
    layer_rows = _layer_rows(preview)
    if layer_rows:
        finite = [v for _, v, _ in layer_rows if math.isfinite(v)]
        cap = max(finite) * 1.1 if finite else None
        parts += [
            "<section><h2>Per-layer weight SQNR</h2><figure>",
            hbar_svg(layer_rows, "SQNR (dB), higher is better", threshold_db, cap=cap),
            f"<figcaption>One bar per layer (its tensors' noise over their energy). Dashed: "
            f"{threshold_db:g} dB, below which a tensor is marked. Red: a tensor of the layer "
            "has collapsed channels.</figcaption></figure></section>",
        ]
    if sensitivity:
        ranked = sorted(sensitivity.items(), key=lambda kv: -kv[1])
        srows = [(n, float(v), False) for n, v in ranked]
        parts += [
            "<section><h2>Sensitivity</h2><figure>",
            hbar_svg(srows, sensitivity_unit or "damage when only this is quantized"),
            "<figcaption>Most sensitive first: the output damage when only this unit is "
            "quantized.</figcaption></figure></section>",
        ]
    ranked = sorted((t for t in rows if t.skipped is None), key=lambda t: t.sqnr_db)
    detail = list(dict.fromkeys([*collapsed, *ranked[:_WORST_DETAIL]]))[: 2 * _WORST_DETAIL]
    if detail:
        parts.append("<section><h2>Worst tensors: per-channel ranges and histograms</h2>")
    for t in detail:
        tensor = model.tensors.get(t.name)
        if tensor is None:
            continue
        values = tensor.load()
        step = t.stored_params[1] if len(t.stored_params) == 2 else None
        head = (
            f"<h3>{_e(t.name)}</h3><p>{_e(t.scheme)}"
            + (f" stored as {_e(t.stored)}" if t.stored != t.scheme else "")
            + f" · SQNR {_num(t.sqnr_db)} dB"
            + (f" · grid step {_num(step)}" if step else "")
            + (
                f" · <span class='warn'>{_e(collapse_text(t.collapsed_channels, t.channels))}"
                "</span>"
                if t in collapsed
                else ""
            )
            + "</p>"
        )
        parts.append(head)
        ranges = _channel_ranges(values, tensor.info.channel_axis)
        if ranges is not None:
            parts.append(
                "<figure>" + ranges_svg(*ranges, step) + "<figcaption>Per output channel: "
                "minimum to maximum value; red channels span less than two grid steps."
                "</figcaption></figure>"
            )
        parts.append("<figure>" + histogram_svg(tensor.sample(200_000)) + "</figure>")
    if detail:
        parts.append("</section>")
    parts += [
        "<section><h2>Plan</h2><pre>" + _e(plan.dumps()) + "</pre></section>",
        "<section><h2>Tensors</h2><table class='tensors'><tr>"
        + "".join(f"<th>{f}</th>" for f in _COLUMNS)
        + "</tr>",
    ]
    for t in rows:
        data = t.to_json()
        cells = "".join(f"<td>{_fmt(data.get(f))}</td>" for f in _COLUMNS)
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</table></section></body></html>")
    return "\n".join(parts)


def write_report(
    path: str | Path,
    model: Model,
    plan: Plan,
    preview: Preview | None,
    result: Any = None,
    *,
    force: bool = False,
    target: str = "",
    evaluation: Mapping[str, str] | None = None,
    sensitivity: Mapping[str, float] | None = None,
    sensitivity_unit: str = "",
) -> Path:
    """Write the report; the format follows the suffix (.html, .json, .csv).

    `target` is the export format the preview's sizes are for; an export `result` written in
    another format is left out, so one report speaks of one format. `evaluation` (label →
    text) and `sensitivity` (unit name → damage, larger is worse, in `sensitivity_unit`) go
    into the HTML page when known."""
    from inspector.formats.export import input_paths

    out = check_output(path, input_paths(model), force)
    if preview is None:
        raise InspectorError("a report needs the preview (export with_preview=True)")
    if result is not None and target and _format_of(result.format) != _format_of(target):
        result = None
    suffix = out.suffix.lower()
    if suffix == ".json":
        text = json.dumps(report_json(model, plan, preview, result), indent=2)
    elif suffix == ".csv":
        text = _csv_text(preview)
    elif suffix in (".html", ".htm"):
        text = _html_text(
            model,
            plan,
            preview,
            result,
            target=_format_of(target) if target else "",
            evaluation=evaluation,
            sensitivity=sensitivity,
            sensitivity_unit=sensitivity_unit,
        )
    else:
        raise InspectorError(f"{out}: report must end in .html, .json or .csv")
    with atomic_file(out) as fh:
        fh.write(text.encode("utf-8"))
    return out


def _format_of(name: str) -> str:
    """The export format a format name or input kind stands for ("keras-h5" → "keras")."""
    from inspector.formats.registry import get_target

    try:
        return get_target(name).name
    except InspectorError:
        return name


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
