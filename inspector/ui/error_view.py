"""Error view: histogram of w′ − w, error against value, and per-channel value ranges.

The per-channel plot shows why one per-tensor scale fails a depthwise kernel: channels whose
range is a sliver of the tensor's range get only a few of the levels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from inspector.ui.detail import DetailController, TensorDetail
from inspector.ui.plot_style import CURVE_COLORS, HIST_BRUSH, apply_plot_style
from inspector.ui.state import AppState

__all__ = ["ErrorView"]


class ErrorView(QWidget):
    """Three plots of the selected tensor's quantization error."""

    def __init__(self, state: AppState, detail: DetailController, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.detail: TensorDetail | None = None
        self.before_ranges: Callable[[str, int | None], tuple[np.ndarray, np.ndarray] | None]
        self.before_ranges = lambda name, axis: None
        """Per-channel (min, max) of a tensor before the model transforms (set by the window)."""
        self.info = QLabel("")
        self.graphics = pg.GraphicsLayoutWidget()
        self.hist = self.graphics.addPlot(row=0, col=0)
        self.scatter = self.graphics.addPlot(row=0, col=1)
        self.ranges = self.graphics.addPlot(row=1, col=0, colspan=2)
        apply_plot_style(self.hist, "error w′ − w (weight units)", "count", "Error histogram")
        apply_plot_style(self.scatter, "value w", "error w′ − w", "Error against value")
        apply_plot_style(self.ranges, "output channel", "value range", "Per-channel min … max")
        self.hist_item = pg.PlotDataItem(stepMode="center", fillLevel=0, brush=HIST_BRUSH)
        self.hist.addItem(self.hist_item)
        self.scatter_item = pg.ScatterPlotItem(size=3, pen=None, brush=pg.mkBrush(214, 39, 40, 60))
        self.scatter.addItem(self.scatter_item)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.info)
        layout.addWidget(self.graphics, 1)
        detail.detail_ready.connect(self.show_detail)
        detail.detail_cleared.connect(self.clear)

    def clear(self) -> None:
        self.detail = None
        self.hist_item.setData([], [])
        self.scatter_item.setData([], [])
        self.ranges.clear()
        self.info.setText("")

    def show_detail(self, d: TensorDetail) -> None:
        self.detail = d
        if d.error_counts.size:
            self.hist_item.setData(d.error_edges, d.error_counts)
        else:
            self.hist_item.setData([], [])
        self.scatter_item.setData(d.scatter_values, d.scatter_errors)
        self._draw_ranges(d)
        if d.skipped:
            self.info.setText(f"{d.name} is kept as is ({d.skipped}): no error.")
        else:
            self.info.setText(f"{d.name} · {d.spec}: error of the values the export stores")

    def _draw_ranges(self, d: TensorDetail) -> None:
        self.ranges.clear()
        if d.channel_min is None or d.channel_max is None:
            self.ranges.setTitle("Per-channel min … max (tensor has no channel axis)", size="10pt")
            return
        self.ranges.setTitle(f"Per-channel min … max along axis {d.channel_axis}", size="10pt")
        x = np.arange(d.channel_min.size, dtype=np.float64)
        height = (d.channel_max - d.channel_min).astype(np.float64)
        bars = pg.BarGraphItem(
            x=x,
            y0=d.channel_min,
            height=height,
            width=0.7,
            brush=pg.mkBrush(CURVE_COLORS["16"]),
            pen=None,
        )
        self.ranges.addItem(bars)
        before = self.before_ranges(d.name, d.channel_axis)
        if before is not None and before[0].size == x.size:
            self.ranges.setTitle(
                f"Per-channel min … max along axis {d.channel_axis}: after (bars) and before "
                "the model transforms (outline)",
                size="10pt",
            )
            outline = pg.BarGraphItem(
                x=x,
                y0=before[0],
                height=before[1] - before[0],
                width=0.9,
                brush=None,
                pen=pg.mkPen(CURVE_COLORS["original"], width=1),
            )
            self.ranges.addItem(outline)
        pen = pg.mkPen(CURVE_COLORS["8"], style=Qt.PenStyle.DashLine)
        for v in (float(d.channel_min.min()), float(d.channel_max.max())):
            self.ranges.addItem(pg.InfiniteLine(v, angle=0, pen=pen))
        self.ranges.setXRange(-0.5, x.size - 0.5, padding=0.01)
