"""Model summary, always visible: totals in the target format, worst tensors, per-layer bars.

The numbers are the `Preview.total` of the last finished whole-model preview, i.e. exactly what
`quant-inspector preview --json` prints for the same plan and format.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from inspector.core.collapse import COLLAPSE_FIX, collapse_text
from inspector.core.formatting import format_bytes, format_count, format_db, format_ratio
from inspector.core.preview import summarize
from inspector.ui.plot_style import CURVE_COLORS, apply_plot_style
from inspector.ui.state import AppState

__all__ = [
    "SummaryPanel",
    "format_gzip",
    "format_total",
    "size_notes",
    "target_choices",
    "weights_text",
]


def target_choices() -> tuple[str, ...]:
    """The summary's "sizes as written by" menu: every writable format, then "native"."""
    from inspector.formats.registry import export_choices

    return (*export_choices(), "native")


_FIELDS = (
    ("parameters", "Parameters"),
    ("file_bytes_before", "File before"),
    ("quantized_bytes", "File after"),
    ("compression_ratio", "Compression"),
    ("original_bytes", "Weights"),
    ("gzip_ratio", "gzip ratio"),
    ("sqnr_db", "Global SQNR"),
    ("bits_per_weight", "Bits / weight"),
    ("entropy_bits_per_weight", "Entropy bound"),
)

_FIELD_TIPS = {
    "file_bytes_before": "Every file of the input as it is on disk (an already-quantized input "
    "counts its stored codes)",
    "quantized_bytes": "What the chosen export format writes: weights as that format stores "
    "them, plus its topology, headers and padding",
    "compression_ratio": "File before ÷ file after (whole files, like for like)",
    "original_bytes": "The weights alone: as the input stores them → as the export stores them "
    "(optimizer state left out)",
}


def weights_text(total: dict[str, Any]) -> str:
    """The weights' bytes before → after with their ratio."""
    before, after = total.get("original_bytes"), total.get("weight_bytes_after")
    if before is None or after is None:
        return "–"
    ratio = total.get("weight_ratio", before / after if after else 1.0)
    return f"{format_bytes(before)} → {format_bytes(after)}  ({format_ratio(ratio)})"


def size_notes(total: dict[str, Any], tensors: Sequence[Any] = ()) -> list[str]:
    """What the figures do not say by themselves: a format that cannot store the plan's savings
    (with a link to the one that would), tensors whose channels collapse (with a link to the
    per-channel scheme), optimizer state the export leaves out."""
    notes = []
    if total.get("savings_note"):
        better = total.get("better_format", "")
        notes.append(
            f"⚠ {html.escape(total['savings_note'])} — "
            f"<a href='target:{html.escape(better)}'>use {html.escape(better)}</a>"
        )
    collapsed = total.get("collapsed_tensors") or []
    if collapsed:
        rows = {t.name: t for t in tensors}
        shown = []
        for name in collapsed[:3]:
            tp = rows.get(name)
            if tp is not None:
                text = collapse_text(tp.collapsed_channels, tp.channels)
                shown.append(f"{html.escape(name)}: {text}")
        more = f" (+{len(collapsed) - 3} more)" if len(collapsed) > 3 else ""
        notes.append(
            f"⚠ Channels collapse in {len(collapsed)} tensor{'s' if len(collapsed) != 1 else ''}"
            f" — {'; '.join(shown)}{more} — <a href='collapse:{COLLAPSE_FIX}'>use "
            f"{COLLAPSE_FIX} (per-channel scales) for them</a>"
        )
    if total.get("optimizer_tensors"):
        notes.append(
            f"Optimizer state ({total['optimizer_tensors']} tensors, "
            f"{format_bytes(total.get('optimizer_bytes', 0))}) is in the input, not the export"
        )
    return notes


def format_gzip(total: dict[str, Any]) -> str:
    """The gzip ratio with its 1-sigma band while it is an estimate, or marked exact."""
    ratio = total.get("gzip_ratio")
    if ratio is None:
        return "–"
    if total.get("gzip_exact"):
        return f"{format_ratio(ratio)}  (exact)"
    band = ratio * float(total.get("gzip_uncertainty") or 0.0)
    return f"{format_ratio(ratio)} ± {band:.2f}  (estimate)"


def format_total(key: str, value: Any) -> str:
    """The summary's text for one `Preview.total` entry."""
    if key == "parameters":
        return format_count(value)
    if "_bytes" in key:
        return f"{format_bytes(value)}  ({format_count(value)} B)"
    if key == "sqnr_db":
        return format_db(value)
    if key in ("bits_per_weight", "entropy_bits_per_weight"):
        return f"{value:.2f} bits"
    return format_ratio(value)


class SummaryPanel(QWidget):
    """Totals (left), five worst tensors (middle), per-layer bar chart (right)."""

    tensor_clicked = Signal(str)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.shown_total: dict[str, Any] = {}
        self.values: dict[str, QLabel] = {}
        self.target_combo = QComboBox()
        self.target_combo.setToolTip("Export format whose storage rules the sizes and errors use")
        self.target_combo.activated.connect(self._on_target)
        self.target_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        totals = QGroupBox("Model summary")
        grid = QGridLayout(totals)
        grid.setVerticalSpacing(4)
        grid.addWidget(QLabel("Export format"), 0, 0, Qt.AlignmentFlag.AlignRight)
        grid.addWidget(self.target_combo, 0, 1)
        self.status = QLabel("")
        self.status.setStyleSheet("color: #666")
        grid.addWidget(self.status, 0, 2, 1, 4)
        rows = (len(_FIELDS) + 2) // 3
        for i, (key, text) in enumerate(_FIELDS):
            label = QLabel("–")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.values[key] = label
            row, col = 1 + i % rows, 2 * (i // rows)
            name = QLabel(text)
            if key in _FIELD_TIPS:
                name.setToolTip(_FIELD_TIPS[key])
                label.setToolTip(_FIELD_TIPS[key])
            grid.addWidget(name, row, col, Qt.AlignmentFlag.AlignRight)
            grid.addWidget(label, row, col + 1)
        self.notes = QLabel("")
        self.notes.setWordWrap(True)
        self.notes.setTextFormat(Qt.TextFormat.RichText)
        self.notes.setStyleSheet("color: #8a4b00")
        self.notes.linkActivated.connect(self._on_note_link)
        self.notes.hide()
        grid.addWidget(self.notes, rows + 1, 0, 1, 6)
        grid.setRowStretch(rows + 2, 1)

        worst_box = QGroupBox("Worst tensors (lowest SQNR)")
        self.worst = QListWidget()
        self.worst.itemClicked.connect(self._on_worst)
        QVBoxLayout(worst_box).addWidget(self.worst)

        chart_box = QGroupBox("Per layer")
        self.chart_combo = QComboBox()
        self.chart_combo.addItems(["SQNR (dB)", "Bytes after (KiB)"])
        self.chart_combo.currentIndexChanged.connect(self._draw_chart)
        self.chart = pg.PlotWidget()
        self.chart.setMinimumHeight(120)
        self.chart.invertY(True)
        self.chart.getViewBox().sigResized.connect(self._update_ticks)
        self.chart.scene().sigMouseMoved.connect(self._chart_hovered)
        self.chart.scene().sigMouseClicked.connect(self._chart_clicked)
        apply_plot_style(self.chart.getPlotItem(), "SQNR (dB)", "")
        chart_layout = QVBoxLayout(chart_box)
        chart_layout.addWidget(self.chart_combo)
        chart_layout.addWidget(self.chart, 1)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(totals, 0)
        layout.addWidget(worst_box, 1)
        layout.addWidget(chart_box, 2)
        state.preview_updated.connect(self.refresh)
        state.model_changed.connect(self._on_model)
        state.plan_changed.connect(self._on_plan)
        state.target_changed.connect(self._fill_targets)
        self._fill_targets()

    def _fill_targets(self) -> None:
        own = self.state.model.format if self.state.model is not None else None
        self.target_combo.blockSignals(True)
        self.target_combo.clear()
        names = list(target_choices())
        if own is not None and own not in names:
            names.insert(0, own)
        for name in names:
            text = f"{name} (input)" if name == own else name
            self.target_combo.addItem(text, name)
        self.target_combo.setCurrentIndex(
            max(0, self.target_combo.findData(self.state.target_name))
        )
        self.target_combo.blockSignals(False)

    def _on_target(self, index: int) -> None:
        self.state.set_target(self.target_combo.itemData(index))

    def _on_note_link(self, link: str) -> None:
        if link.startswith("target:"):
            self.state.set_target(link.removeprefix("target:"))
        elif link.startswith("collapse:") and self.shown_total.get("collapsed_tensors"):
            self.state.override(self.shown_total["collapsed_tensors"], link.split(":", 1)[1])

    def _on_model(self) -> None:
        self._fill_targets()
        self.shown_total = {}
        for label in self.values.values():
            label.setText("–")
        self.worst.clear()
        self.chart.clear()
        self.notes.hide()
        self.status.setText("computing…")

    def _on_plan(self) -> None:
        if self.state.preview_plan != self.state.plan:
            self.status.setText("updating…")

    def refresh(self) -> None:
        """Show the last finished preview's totals (state → view)."""
        preview = self.state.preview
        if preview is None:
            return
        self.shown_total = dict(preview.total)  # type: ignore[attr-defined]
        for key, label in self.values.items():
            value = self.shown_total.get(key)
            label.setText("–" if value is None else format_total(key, value))
        self.values["original_bytes"].setText(weights_text(self.shown_total))
        notes = size_notes(self.shown_total, preview.tensors)  # type: ignore[attr-defined]
        self.notes.setText("<br>".join(notes))
        self.notes.setVisible(bool(notes))
        self.values["gzip_ratio"].setText(format_gzip(self.shown_total))
        self.values["gzip_ratio"].setToolTip(
            "Measured on the whole export stream (tar of model.json + shards for TF.js)"
            if self.shown_total.get("gzip_exact")
            else "Estimated from sampled blocks (± one standard deviation); the exact size is "
            "being measured in the background"
        )
        huffman = self.shown_total.get("huffman_bytes")
        if huffman is not None:
            self.values["entropy_bits_per_weight"].setToolTip(
                "Empirical entropy of the stored codes, bits per weight (the bound of any coder "
                f"coding each weight alone); a Huffman coding of them: {format_bytes(huffman)}"
            )
        self.status.setText(f"{self.shown_total.get('tensors', 0)} weight tensors")
        self._fill_worst()
        self._draw_chart()

    def show_gzip_progress(self, done: int, total: int) -> None:
        """Progress of the background exact gzip measurement (0, 0: not running)."""
        if total <= 0 or not self.shown_total:
            return
        base = format_gzip(self.shown_total).removesuffix("  (estimate)")
        self.values["gzip_ratio"].setText(f"{base}  (exact: {100 * done // total} %…)")

    def _fill_worst(self) -> None:
        self.worst.clear()
        rows = {t.name: t for t in self.state.preview.tensors}  # type: ignore[union-attr]
        for name in self.shown_total.get("worst", []):
            tp = rows.get(name)
            text = f"{format_db(tp.sqnr_db) if tp else '–':>9}   {name}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setToolTip(f"{name}: {tp.scheme if tp else ''} — click to select")
            self.worst.addItem(item)

    def _on_worst(self, item: QListWidgetItem) -> None:
        self.tensor_clicked.emit(item.data(Qt.ItemDataRole.UserRole))

    def layer_values(self) -> list[tuple[str, float]]:
        """(layer, value) in file order for the chart: SQNR dB or stored KiB per layer."""
        groups: dict[str, list[Any]] = defaultdict(list)
        for tp in self.state.preview.tensors if self.state.preview else ():  # type: ignore[attr-defined]
            if not tp.optimizer:
                groups[tp.layer or tp.name].append(tp)
        use_sqnr = self.chart_combo.currentIndex() == 0
        out = []
        for layer, tps in groups.items():
            total = summarize(tps)
            value = total["sqnr_db"] if use_sqnr else total["quantized_bytes"] / 1024
            out.append((layer, value))
        return out

    def _update_ticks(self) -> None:
        """Label every layer when they fit (~14 px per label), else every k-th one."""
        names = getattr(self, "_names", [])
        if not names:
            return
        room = max(1, int(self.chart.getViewBox().height()) // 14)
        step = max(1, math.ceil(len(names) / room))
        ticks = [
            (float(i), n if len(n) <= 18 else n[:8] + "…" + n[-9:]) for i, n in enumerate(names)
        ]
        self.chart.getAxis("left").setTicks([ticks[::step]])

    def _draw_chart(self) -> None:
        self.chart.clear()
        values = self.layer_values()
        if not values:
            return
        use_sqnr = self.chart_combo.currentIndex() == 0
        finite = [v for _, v in values if math.isfinite(v)]
        cap = (max(finite) if finite else 1.0) * 1.05 or 1.0
        widths = np.array([v if math.isfinite(v) else cap for _, v in values], dtype=np.float64)
        y = np.arange(len(values), dtype=np.float64)
        bars = pg.BarGraphItem(
            x0=0, y=y, width=widths, height=0.7, brush=pg.mkBrush(CURVE_COLORS["16"]), pen=None
        )
        self.chart.addItem(bars)
        self._names = [name for name, _ in values]
        self._update_ticks()
        bottom = "SQNR (dB)" if use_sqnr else "stored size (KiB)"
        if self.chart.getAxis("bottom").labelText != bottom:
            self.chart.getAxis("bottom").setLabel(bottom, **{"font-size": "10pt"})
        if use_sqnr:
            line = pg.InfiniteLine(
                self.state.sqnr_threshold_db,
                angle=90,
                pen=pg.mkPen(CURVE_COLORS["8"], style=Qt.PenStyle.DashLine),
            )
            self.chart.addItem(line)

    def _chart_row(self, pos: Any) -> int | None:
        """The per-layer bar under scene position `pos` (None off the bars)."""
        names = getattr(self, "_names", [])
        if not names or not self.chart.sceneBoundingRect().contains(pos):
            return None
        index = round(self.chart.getPlotItem().vb.mapSceneToView(pos).y())
        return index if 0 <= index < len(names) else None

    def _chart_hovered(self, pos: Any) -> None:
        """Every bar is identifiable even when only every k-th is labelled: hover names it."""
        index = self._chart_row(pos)
        if index is None:
            QToolTip.hideText()
            return
        name, value = self.layer_values()[index]
        unit = "dB" if self.chart_combo.currentIndex() == 0 else "KiB"
        at = self.chart.mapFromScene(pos)
        QToolTip.showText(
            self.chart.mapToGlobal(QPoint(int(at.x()), int(at.y()))), f"{name}\n{value:.4g} {unit}"
        )

    def _chart_clicked(self, event: Any) -> None:
        """A click on a bar selects that layer's tensors in the table (selection sync)."""
        index = self._chart_row(event.scenePos())
        model = self.state.model
        if index is None or model is None:
            return
        layer = self.layer_values()[index][0]
        names = [t.name for t in model if (t.info.layer or t.name) == layer]
        if names:
            self.state.set_selection(names, names[0])
