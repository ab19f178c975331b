"""Histogram of the selected tensor's values with the quantization grid over it.

Draws: value histogram (seeded sample ≤ 1M values), the scheme's levels, the exact-zero marker
and a draggable clip region. Dragging the region (debounced) writes the scheme's `clip` option
for the selected tensors back into the plan (view → state); a new detail moves it (state → view).

Levels closer than `RUG_MIN_PX` pixels are thinned to what the screen can separate (256 uint8
levels in 400 px would draw a solid band) and the info line says how many are drawn. The clip
options are symmetric (`percentile:P` trims both tails by the same share), so dragging one edge
moves the other; the region's tooltip and the info line say so. Between a selection and its
detail the view says "Loading …", not "Select a tensor".
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from inspector.core.formatting import format_count
from inspector.ui.detail import MAX_LEVEL_LINES, DetailController, TensorDetail
from inspector.ui.plot_style import (
    CLIP_BRUSH,
    CLIP_EDGE,
    HIST_BRUSH,
    LEVEL_PEN,
    ZERO_PEN,
    apply_plot_style,
)
from inspector.ui.state import AppState

__all__ = ["RUG_MIN_PX", "HistogramView", "thin_levels"]

RUG_MIN_PX = 4.0
"""Smallest distance in pixels between two drawn level ticks."""
CLIP_NOTE = (
    "clip=percentile trims both tails by the same share of values, so dragging one edge "
    "moves the other to the matching percentile"
)


def thin_levels(levels: np.ndarray, lo: float, hi: float, pixels: float) -> np.ndarray:
    """The levels to draw when [lo, hi] spans `pixels`: walking up from the lowest, each level
    at least `RUG_MIN_PX` pixels from the last one kept (an even stride on a uniform grid, so
    the rug shows no beat pattern). At most `MAX_LEVEL_LINES` levels come in."""
    if levels.size == 0 or hi <= lo or pixels <= 0:
        return levels
    pos = (np.sort(levels) - lo) * (pixels / (hi - lo))
    keep = [0]
    for i in range(1, pos.size):
        if pos[i] - pos[keep[-1]] >= RUG_MIN_PX - 1e-9:
            keep.append(i)
    return np.sort(levels)[keep]


class HistogramView(QWidget):
    """Value histogram, levels, zero marker, clip region, log toggle, channel picker."""

    def __init__(self, state: AppState, detail: DetailController, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.controller = detail
        self.detail: TensorDetail | None = None
        self.log_box = QCheckBox("Log counts")
        self.log_box.toggled.connect(self._apply_log)
        self.levels_box = QCheckBox("Levels", checked=True)
        self.levels_box.toggled.connect(self._redraw)
        self.channel_combo = QComboBox()
        self.channel_combo.setMinimumContentsLength(10)
        self.channel_combo.activated.connect(self._on_channel)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.plot_widget = pg.PlotWidget()
        self.plot = self.plot_widget.getPlotItem()
        apply_plot_style(self.plot, "value (weight units)", "count")
        self.hist_item = pg.PlotDataItem(
            stepMode="center", fillLevel=0, brush=HIST_BRUSH, pen=pg.mkPen(HIST_BRUSH.darker(130))
        )
        self.level_item = pg.PlotDataItem(pen=pg.mkPen(LEVEL_PEN, width=1), connect="pairs")
        self.zero_line = pg.InfiniteLine(
            0.0,
            angle=90,
            pen=pg.mkPen(ZERO_PEN, style=pg.QtCore.Qt.PenStyle.DashLine),
        )
        self.zero_line.setToolTip("value 0 (the exact-zero count is on the info line)")
        self.clip_region = pg.LinearRegionItem(brush=CLIP_BRUSH, movable=True)
        self.clip_region.setZValue(-10)
        for line in self.clip_region.lines:
            line.setPen(pg.mkPen(CLIP_EDGE, width=2))
        self.clip_region.setToolTip(
            f"Clip range: drag an edge to clip outliers (sets clip=percentile:P). {CLIP_NOTE}."
        )
        for item in (self.clip_region, self.hist_item, self.level_item, self.zero_line):
            self.plot.addItem(item)
        self._debounce = QTimer(self, singleShot=True, interval=150)
        self._debounce.timeout.connect(self._commit_clip)
        self.clip_region.sigRegionChangeFinished.connect(self._on_region_finished)
        self._setting_region = False
        self._drawn_levels = 0
        self.plot.getViewBox().sigResized.connect(self._redraw_levels)
        self.plot.getViewBox().sigXRangeChanged.connect(self._redraw_levels)
        detail.busy.connect(self._on_busy)

        row = QHBoxLayout()
        row.addWidget(self.log_box)
        row.addWidget(self.levels_box)
        row.addWidget(QLabel("Channel:"))
        row.addWidget(self.channel_combo)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addWidget(self.info)
        layout.addWidget(self.plot_widget, 1)
        detail.detail_ready.connect(self.show_detail)
        detail.detail_cleared.connect(self.clear)

    def clear(self) -> None:
        self.detail = None
        self.hist_item.setData([], [])
        self.level_item.setData([], [])
        self.zero_line.hide()
        self.clip_region.hide()
        current = self.state.current
        if current and self.state.tensor(current) is not None:
            self.info.setText(f"Loading {current}…")
        else:
            self.info.setText("Select a tensor to see its values.")

    def _on_busy(self, busy: bool) -> None:
        """A detail is being computed: say so when the plot shows another tensor or none."""
        current = self.state.current
        if busy and current and (self.detail is None or self.detail.name != current):
            self.info.setText(f"Loading {current}…")

    def show_detail(self, detail: TensorDetail) -> None:
        """Draw `detail` (state → view)."""
        self.detail = detail
        self._fill_channels(detail)
        self._redraw()

    def _fill_channels(self, d: TensorDetail) -> None:
        self.channel_combo.blockSignals(True)
        self.channel_combo.clear()
        self.channel_combo.addItem("all values", None)
        if d.channel_axis is not None and d.channels <= 4096:
            for c in range(d.channels):
                self.channel_combo.addItem(f"{c} (axis {d.channel_axis})", c)
        self.channel_combo.setCurrentIndex(0 if d.channel is None else d.channel + 1)
        self.channel_combo.setEnabled(self.channel_combo.count() > 1)
        self.channel_combo.blockSignals(False)

    def _on_channel(self, index: int) -> None:
        self.controller.set_channel(self.channel_combo.itemData(index))

    def _redraw(self) -> None:
        d = self.detail
        if d is None:
            return
        self.hist_item.setData(d.hist_edges, d.hist_counts)
        top = float(d.hist_counts.max()) if d.hist_counts.size else 1.0
        self._draw_levels(d, top)
        self.zero_line.setVisible(d.lo <= 0.0 <= d.hi)
        self._setting_region = True
        lo, hi = d.clip if d.clip is not None else (d.lo, d.hi)
        self.clip_region.setRegion((lo, hi))
        self.clip_region.setVisible(d.clip is not None)
        self._setting_region = False
        pad = 0.03 * (d.hi - d.lo or 1.0)
        self.plot.setXRange(d.lo - pad, d.hi + pad, padding=0)
        self.plot.enableAutoRange(axis="y")
        self.plot.getViewBox().setLimits(yMin=-1e307 if self.log_box.isChecked() else 0.0)
        self.info.setText(self._info_text(d))

    def _redraw_levels(self) -> None:
        d = self.detail
        if d is None or d.levels is None:
            return
        before = self._drawn_levels
        top = float(d.hist_counts.max()) if d.hist_counts.size else 1.0
        self._draw_levels(d, top)
        if self._drawn_levels != before:
            self.info.setText(self._info_text(d))

    def _draw_levels(self, d: TensorDetail, top: float) -> None:
        show = self.levels_box.isChecked() and d.levels is not None
        self._drawn_levels = 0
        if not show or d.levels is None or d.levels.size > MAX_LEVEL_LINES:
            self.level_item.setData([], [])
            return
        (x0, x1), pixels = self.plot.getViewBox().viewRange()[0], self.plot.getViewBox().width()
        levels = thin_levels(d.levels, x0, x1, pixels) if d.levels.size > 40 else d.levels
        self._drawn_levels = int(levels.size)
        # Few levels: full-height lines; many: a rug of short ticks in a strip above the tallest
        # bar, so the bars stay readable and the count axis still starts at 0.
        if self.log_box.isChecked():
            t = np.log10(max(top, 1.0))
            y0, y1 = (0.0, t) if d.levels.size <= 40 else (t + 0.04, t + 0.14)
        else:
            y0, y1 = (0.0, top) if d.levels.size <= 40 else (1.03 * top, 1.10 * top)
        self.level_item.setData(np.repeat(levels, 2), np.tile([y0, y1], levels.size))

    def _info_text(self, d: TensorDetail) -> str:
        parts = [f"<b>{d.name}</b> · {d.spec}"]
        if d.stored != d.spec and d.skipped is None:
            parts.append(f"stored as {d.stored}")
        if d.skipped:
            parts.append(f"kept as is: {d.skipped}")
        parts.append(f"range [{d.lo:.4g}, {d.hi:.4g}]")
        if d.lo <= 0.0 <= d.hi:
            parts.append(f"{format_count(d.zeros)} exact zeros" if d.zeros else "no exact zeros")
        if d.n_levels is not None:
            if d.n_levels > MAX_LEVEL_LINES:
                dense = " (too dense to draw)"
            elif self.levels_box.isChecked() and 0 < self._drawn_levels < d.n_levels:
                dense = (
                    f" ({format_count(self._drawn_levels)} drawn: ticks {RUG_MIN_PX:g} px apart)"
                )
            else:
                dense = ""
            parts.append(f"{format_count(d.n_levels)} levels{dense}")
        if d.clip is not None and "percentile" in d.spec:
            parts.append("both clip edges move together (symmetric percentile)")
        if d.size > 1_000_000:
            parts.append("histogram of a 1M-value sample")
        if d.note:
            parts.append(d.note)
        return " · ".join(parts)

    def _apply_log(self, on: bool) -> None:
        self.plot.setLogMode(x=False, y=on)
        self.plot.getAxis("left").setLabel("count (log scale)" if on else "count")
        self._redraw()

    def _on_region_finished(self) -> None:
        if not self._setting_region:
            self._debounce.start()

    def _commit_clip(self) -> None:
        """View → state: the dragged region becomes the scheme's clip option."""
        d = self.detail
        if self._setting_region or d is None or self.state.current != d.name:
            return
        lo, hi = self.clip_region.getRegion()
        if d.clip is not None and np.allclose((lo, hi), d.clip, rtol=0, atol=1e-9 * (d.hi - d.lo)):
            return
        spec = self.controller.clip_spec(d, float(lo), float(hi))
        if spec is not None and spec != d.spec:
            names = [
                n
                for n in self.state.selection
                if n in (self.state.model.tensors if self.state.model else {})
            ]
            self.state.override(names or [d.name], spec)
