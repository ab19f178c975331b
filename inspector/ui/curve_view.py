"""Discretization curves: original value → stored value, one staircase per ticked format.

An overview over the tensor's whole range carries a draggable zoom region; the lower plot shows
that region recomputed finely (so 8-bit steps are visible where 16-bit still looks straight).
The "sine demo" toggle swaps in the classic 16- vs 8-bit sine figure for teaching.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from inspector.ui.detail import BIT_LABELS, CurveSet, DetailController, TensorDetail, sine_demo
from inspector.ui.plot_style import CURVE_COLORS, apply_plot_style
from inspector.ui.state import AppState

__all__ = ["CurveView"]

_NAMES = {"16": "16-bit", "8": "8-bit", "4": "4-bit", "2": "2-bit", "scheme": "chosen scheme"}
_DEFAULT_ON = ("8", "4", "scheme")


class CurveView(QWidget):
    """Overview + zoom plots of staircases; tick boxes pick the formats."""

    def __init__(self, state: AppState, detail: DetailController, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.controller = detail
        self.detail: TensorDetail | None = None
        self.zoom: CurveSet | None = None
        self.boxes: dict[str, QCheckBox] = {}
        row = QHBoxLayout()
        row2 = QHBoxLayout()
        row.addWidget(QLabel("Grids:"))
        row2.addWidget(QLabel("Floats:"))
        for label in (*BIT_LABELS, "scheme"):
            box = QCheckBox(_NAMES.get(label, label), checked=label in _DEFAULT_ON)
            box.toggled.connect(self._redraw)
            self.boxes[label] = box
            (row if label.isdigit() else row2).addWidget(box)
        row.addStretch(1)
        row2.addStretch(1)
        self.sine_box = QCheckBox("Sine demo")
        self.sine_box.setToolTip("A unit sine stored at 16 and 8 bits: zoom in to see the steps")
        self.sine_box.toggled.connect(self._redraw)
        row.addWidget(self.sine_box)

        self.graphics = pg.GraphicsLayoutWidget()
        self.overview = self.graphics.addPlot(row=0, col=0)
        self.zoomed = self.graphics.addPlot(row=1, col=0)
        self.graphics.ci.layout.setRowStretchFactor(0, 2)
        self.graphics.ci.layout.setRowStretchFactor(1, 3)
        self.overview.addLegend(offset=(-10, -10), labelTextSize="9pt")
        self.region = pg.LinearRegionItem(brush=(255, 200, 0, 50))
        self.region.setZValue(10)
        self.overview.addItem(self.region, ignoreBounds=True)
        self._debounce = QTimer(self, singleShot=True, interval=150)
        self._debounce.timeout.connect(self._request_zoom)
        self.region.sigRegionChanged.connect(self._on_region)
        self._style()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addLayout(row2)
        layout.addWidget(self.graphics, 1)
        detail.detail_ready.connect(self.show_detail)
        detail.zoom_ready.connect(self._on_zoom)
        detail.detail_cleared.connect(self._clear)

    def _style(self) -> None:
        if self.sine_box.isChecked():
            apply_plot_style(
                self.overview, "time (periods)", "amplitude", "sin(2πt) stored at 16 and 8 bits"
            )
            apply_plot_style(self.zoomed, "time (periods), zoomed", "amplitude", "")
        else:
            apply_plot_style(
                self.overview,
                "original value",
                "stored value",
                "Overview: drag the yellow region to zoom",
            )
            apply_plot_style(self.zoomed, "original value (zoomed)", "stored value", "")

    def checked_labels(self) -> list[str]:
        return [k for k, b in self.boxes.items() if b.isChecked()]

    def show_detail(self, detail: TensorDetail) -> None:
        self.detail = detail
        self.zoom = None
        if not self.sine_box.isChecked():
            span = detail.hi - detail.lo or 1.0
            mid = detail.lo + 0.5 * span
            self.region.blockSignals(True)
            self.region.setRegion((mid - 0.04 * span, mid + 0.04 * span))
            self.region.blockSignals(False)
            self._debounce.start()
        self._redraw()

    def _clear(self) -> None:
        self.detail = None
        self.zoom = None
        self._redraw()

    def _on_region(self) -> None:
        lo, hi = self.region.getRegion()
        self.zoomed.setXRange(lo, hi, padding=0)
        if not self.sine_box.isChecked():
            self._debounce.start()

    def _request_zoom(self) -> None:
        if self.detail is not None and not self.sine_box.isChecked():
            lo, hi = self.region.getRegion()
            self.controller.request_zoom(float(lo), float(hi))

    def _on_zoom(self, curves: CurveSet) -> None:
        self.zoom = curves
        self._draw_zoom()

    def _redraw(self) -> None:
        self._style()
        self.overview.clear()
        self.overview.legend.clear()
        self.overview.addItem(self.region, ignoreBounds=True)
        if self.sine_box.isChecked():
            self._draw_sine()
            return
        d = self.detail
        if d is None:
            self.zoomed.clear()
            return
        ident = np.array([d.lo, d.hi])
        pen = pg.mkPen(CURVE_COLORS["original"], style=Qt.PenStyle.DashLine)
        self.overview.plot(ident, ident, pen=pen, name="exact (y = x)")
        for label in self.checked_labels():
            if label in d.curves.curves:
                x, y = d.curves.curves[label]
                self.overview.plot(x, y, pen=self._pen(label), name=self._name(label, d))
        self.overview.setXRange(d.lo, d.hi, padding=0.02)
        self._draw_zoom()

    def _draw_zoom(self) -> None:
        self.zoomed.clear()
        d = self.detail
        if d is None or self.sine_box.isChecked():
            return
        curves = self.zoom or d.curves
        ident = np.array([curves.lo, curves.hi])
        self.zoomed.plot(
            ident, ident, pen=pg.mkPen(CURVE_COLORS["original"], style=Qt.PenStyle.DashLine)
        )
        for label in self.checked_labels():
            if label in curves.curves:
                x, y = curves.curves[label]
                self.zoomed.plot(x, y, pen=self._pen(label))
        lo, hi = self.region.getRegion()
        self.zoomed.setXRange(lo, hi, padding=0)
        self.zoomed.enableAutoRange(axis="y")
        self.zoomed.setAutoVisible(y=True)

    def _draw_sine(self) -> None:
        t, x, stored = sine_demo()
        self.zoomed.clear()
        pen = pg.mkPen(CURVE_COLORS["original"], width=1, style=Qt.PenStyle.DashLine)
        self.overview.plot(t, x, pen=pen, name="float32 sine")
        for label in ("16", "8"):
            self.overview.plot(t, stored[label], pen=self._pen(label), name=_NAMES[label])
        self.zoomed.plot(t, x, pen=pen)
        for label in ("16", "8"):
            self.zoomed.plot(t, stored[label], pen=self._pen(label, 2))
        self.region.blockSignals(True)
        self.region.setRegion((0.22, 0.28))
        self.region.blockSignals(False)
        self.overview.setXRange(0, 1, padding=0.01)
        self.zoomed.setXRange(0.22, 0.28, padding=0)
        self.zoomed.setYRange(0.978, 1.001, padding=0)

    def _pen(self, label: str, width: float = 1.5) -> object:
        color = CURVE_COLORS.get(label, CURVE_COLORS["scheme"])
        if label == "scheme":  # dashed on top, so a same-grid bit-width curve shows beneath
            return pg.mkPen(color, width=width + 0.5, style=Qt.PenStyle.DashLine)
        return pg.mkPen(color, width=width)

    def _name(self, label: str, d: TensorDetail) -> str:
        return f"{d.spec} (chosen)" if label == "scheme" else _NAMES.get(label, label)
