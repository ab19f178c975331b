"""Discretization curves: original value → stored value, one staircase per ticked format.

An overview over the tensor's whole range carries a draggable zoom region; the lower plot shows
that region recomputed finely (so 8-bit steps are visible where 16-bit still looks straight).
The "sine demo" toggle swaps in the classic 16- vs 8-bit sine figure for teaching.

The zoom's y-range follows its x-window: it fits the curves that vary inside the window, so a
coarse grid's flat step does not squash a fine grid's staircase (a flat curve outside the fit
is named in the zoom's title). The window can be typed (From/To) or set to a few steps of an
N-bit grid ("Zoom to N-bit steps"), since the region cannot be dragged narrower than a few
pixels. One legend with a background sits above both plots, where it covers no curve.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from inspector.ui.detail import BIT_LABELS, CurveSet, DetailController, TensorDetail, sine_demo
from inspector.ui.plot_style import CURVE_COLORS, apply_plot_style
from inspector.ui.state import AppState

__all__ = ["STEPS_SHOWN", "CurveView", "fit_window", "step_window"]

_NAMES = {"16": "16-bit", "8": "8-bit", "4": "4-bit", "2": "2-bit", "scheme": "chosen scheme"}
_DEFAULT_ON = ("8", "4", "scheme")
STEPS_SHOWN = 4
"""Steps of the chosen grid that "Zoom to N-bit steps" puts in the window."""


def fit_window(
    curves: list[tuple[str, np.ndarray, np.ndarray]], lo: float, hi: float
) -> tuple[tuple[float, float] | None, list[tuple[str, float]]]:
    """(y-range, flat curves left out) for the x-window [lo, hi]: the range of the curves that
    vary inside the window (all of them when none varies); a flat curve whose value lies
    outside that range is returned by name with its value, for the title."""
    spans = []
    for name, x, y in curves:
        inside = (x >= lo) & (x <= hi)
        if np.any(inside):
            ys = y[inside]
            spans.append((name, float(ys.min()), float(ys.max())))
    varying = [s for s in spans if s[2] > s[1]] or spans
    if not varying:
        return None, []
    y0 = min(s[1] for s in varying)
    y1 = max(s[2] for s in varying)
    if y1 <= y0:
        y0, y1 = y0 - 0.5 * (abs(y0) or 1.0), y1 + 0.5 * (abs(y1) or 1.0)
    outside = [(n, a) for n, a, b in spans if a == b and not y0 <= a <= y1]
    return (y0, y1), outside


def step_window(center: float, lo: float, hi: float, bits: int, slope: float = 1.0) -> tuple:
    """An x-window around `center` holding `STEPS_SHOWN` steps of an affine `bits`-bit grid
    over [lo, hi], for a curve rising `slope` stored units per x unit."""
    step = (hi - lo) / (2**bits - 1)
    half = 0.5 * STEPS_SHOWN * step / max(abs(slope), 1e-12)
    return center - half, center + half


class _Legend(pg.LegendItem):
    """A legend that stays where the layout puts it (pyqtgraph's can be dragged off)."""

    def mouseDragEvent(self, ev: object) -> None:
        ev.ignore()  # type: ignore[attr-defined]


class CurveView(QWidget):
    """Overview + zoom plots of staircases; tick boxes pick the formats."""

    def __init__(self, state: AppState, detail: DetailController, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.controller = detail
        self.detail: TensorDetail | None = None
        self.zoom: CurveSet | None = None
        self.boxes: dict[str, QCheckBox] = {}
        self._zoom_curves: list[tuple[str, np.ndarray, np.ndarray]] = []
        row = QHBoxLayout()
        row2 = QHBoxLayout()
        self.grids_label = QLabel("Grids:")
        self.floats_label = QLabel("Floats:")
        row.addWidget(self.grids_label)
        row2.addWidget(self.floats_label)
        for label in (*BIT_LABELS, "scheme"):
            box = QCheckBox(_NAMES.get(label, label), checked=label in _DEFAULT_ON)
            box.toggled.connect(self._redraw)
            self.boxes[label] = box
            (row if label.isdigit() else row2).addWidget(box)
        row.addStretch(1)
        row2.addStretch(1)
        self.sine_box = QCheckBox("Sine demo")
        self.sine_box.setToolTip("A unit sine stored at 16 and 8 bits: zoom in to see the steps")
        self.sine_box.toggled.connect(self._on_sine)
        row.addWidget(self.sine_box)

        self.from_spin = self._range_spin("Left edge of the zoom window")
        self.to_spin = self._range_spin("Right edge of the zoom window")
        self.bits_combo = QComboBox()
        self.bits_combo.addItems(["16", "12", "8", "4"])
        self.bits_combo.setCurrentText("8")
        self.step_button = QPushButton(f"{STEPS_SHOWN} steps of")
        self.step_button.setToolTip(
            f"Set the zoom window to {STEPS_SHOWN} steps of an affine grid of this many bits "
            "over the range, around the window's centre"
        )
        self.step_button.clicked.connect(self.zoom_to_steps)
        row3 = QHBoxLayout()
        row3.addWidget(QLabel("Zoom"))
        row3.addWidget(self.from_spin, 1)
        row3.addWidget(QLabel("…"))
        row3.addWidget(self.to_spin, 1)
        row3.addWidget(self.step_button)
        row3.addWidget(self.bits_combo)
        row3.addWidget(QLabel("bits"))
        row3.addStretch(0)

        self.graphics = pg.GraphicsLayoutWidget()
        self.legend = _Legend(
            brush=pg.mkBrush(255, 255, 255, 235), pen=pg.mkPen(180, 180, 180), labelTextSize="9pt"
        )
        self.legend.setColumnCount(4)
        self.graphics.addItem(self.legend, row=0, col=0)
        self.overview = self.graphics.addPlot(row=1, col=0)
        self.zoomed = self.graphics.addPlot(row=2, col=0)
        self.graphics.ci.layout.setRowStretchFactor(0, 0)
        self.graphics.ci.layout.setRowStretchFactor(1, 2)
        self.graphics.ci.layout.setRowStretchFactor(2, 3)
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
        layout.addLayout(row3)
        layout.addWidget(self.graphics, 1)
        detail.detail_ready.connect(self.show_detail)
        detail.zoom_ready.connect(self._on_zoom)
        detail.detail_cleared.connect(self._clear)

    def _range_spin(self, tip: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox(decimals=7, minimum=-1e30, maximum=1e30)
        spin.setMaximumWidth(120)
        spin.setToolTip(tip)
        spin.setKeyboardTracking(False)
        spin.valueChanged.connect(self._typed_range)
        return spin

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

    def _on_sine(self, on: bool) -> None:
        """The sine demo draws fixed 16- and 8-bit curves: the format boxes do not apply."""
        for widget in (*self.boxes.values(), self.grids_label, self.floats_label):
            widget.setEnabled(not on)
            widget.setToolTip("Not used by the sine demo (16 and 8 bits)" if on else "")
        self._redraw()

    def show_detail(self, detail: TensorDetail) -> None:
        self.detail = detail
        self.zoom = None
        if not self.sine_box.isChecked():
            span = detail.hi - detail.lo or 1.0
            mid = detail.lo + 0.5 * span
            self._set_region(mid - 0.04 * span, mid + 0.04 * span)
            self._debounce.start()
        self._redraw()

    def _set_region(self, lo: float, hi: float) -> None:
        self.region.blockSignals(True)
        self.region.setRegion((lo, hi))
        self.region.blockSignals(False)
        self._show_range(lo, hi)

    def _show_range(self, lo: float, hi: float) -> None:
        for spin, value in ((self.from_spin, lo), (self.to_spin, hi)):
            spin.blockSignals(True)
            spin.setSingleStep(max((hi - lo) / 10, 1e-12))
            spin.setValue(value)
            spin.blockSignals(False)

    def _typed_range(self) -> None:
        lo, hi = self.from_spin.value(), self.to_spin.value()
        if hi > lo:
            self.region.setRegion((lo, hi))

    def zoom_to_steps(self) -> None:
        """Window of `STEPS_SHOWN` steps of the chosen bit width around the current centre."""
        bits = int(self.bits_combo.currentText())
        lo, hi = self.region.getRegion()
        if self.sine_box.isChecked():  # steepest at the zero crossing: slope 2π per period
            lo, hi = step_window(0.5, -1.0, 1.0, bits, 2 * np.pi)
        elif self.detail is not None:
            d = self.detail
            lo, hi = step_window(0.5 * (lo + hi), d.lo, d.hi, bits)
        self.region.setRegion((lo, hi))

    def _clear(self) -> None:
        self.detail = None
        self.zoom = None
        self._redraw()

    def _on_region(self) -> None:
        lo, hi = self.region.getRegion()
        self._show_range(lo, hi)
        self.zoomed.setXRange(lo, hi, padding=0)
        self._fit_zoom()
        if not self.sine_box.isChecked():
            self._debounce.start()

    def _request_zoom(self) -> None:
        if self.detail is not None and not self.sine_box.isChecked():
            lo, hi = self.region.getRegion()
            self.controller.request_zoom(float(lo), float(hi))

    def _on_zoom(self, curves: CurveSet) -> None:
        self.zoom = curves
        if not self.sine_box.isChecked():
            self._draw_zoom()

    def _redraw(self) -> None:
        self._style()
        self.overview.clear()
        self.legend.clear()
        self.overview.addItem(self.region, ignoreBounds=True)
        if self.sine_box.isChecked():
            self._draw_sine()
            return
        d = self.detail
        if d is None:
            self.zoomed.clear()
            self._zoom_curves = []
            return
        ident = np.array([d.lo, d.hi])
        pen = pg.mkPen(CURVE_COLORS["original"], style=Qt.PenStyle.DashLine)
        self._legend_plot(ident, ident, pen, "exact (y = x)")
        for label in self.checked_labels():
            if label in d.curves.curves:
                x, y = d.curves.curves[label]
                self._legend_plot(x, y, self._pen(label), self._name(label, d))
        self.overview.setXRange(d.lo, d.hi, padding=0.02)
        self._draw_zoom()

    def _draw_zoom(self) -> None:
        if self.sine_box.isChecked():
            return
        self.zoomed.clear()
        self._zoom_curves = []
        d = self.detail
        if d is None:
            return
        curves = self.zoom or d.curves
        ident = np.array([curves.lo, curves.hi])
        self.zoomed.plot(
            ident, ident, pen=pg.mkPen(CURVE_COLORS["original"], style=Qt.PenStyle.DashLine)
        )
        self._zoom_curves.append(("exact", ident, ident))
        for label in self.checked_labels():
            if label in curves.curves:
                x, y = curves.curves[label]
                self.zoomed.plot(x, y, pen=self._pen(label))
                self._zoom_curves.append((self._name(label, d), x, y))
        lo, hi = self.region.getRegion()
        self.zoomed.setXRange(lo, hi, padding=0)
        self._fit_zoom()

    def _fit_zoom(self) -> None:
        """The zoom's y-range from the curves inside its x-window (see `fit_window`)."""
        lo, hi = self.region.getRegion()
        curves = self._zoom_curves
        if self.detail is not None and not self.sine_box.isChecked():
            # The exact line y = x is two points: sample it so the window holds some of it.
            curves = [("exact", np.array([lo, hi]), np.array([lo, hi])), *curves[1:]]
        span, outside = fit_window(curves, lo, hi)
        if span is not None:
            self.zoomed.setYRange(span[0], span[1], padding=0.08)
        note = "; ".join(f"{n} is flat at {v:.6g}, outside this window" for n, v in outside)
        if note:
            self.zoomed.setTitle(note, size="9pt", color="#a05000")
        else:
            self.zoomed.setTitle(None)

    def _draw_sine(self) -> None:
        t, x, stored = sine_demo()
        self.zoomed.clear()
        pen = pg.mkPen(CURVE_COLORS["original"], width=1, style=Qt.PenStyle.DashLine)
        self._legend_plot(t, x, pen, "float32 sine")
        for label in ("16", "8"):
            self._legend_plot(t, stored[label], self._pen(label), _NAMES[label])
        self.zoomed.plot(t, x, pen=pen)
        self._zoom_curves = [("float32 sine", t, x)]
        for label in ("16", "8"):
            self.zoomed.plot(t, stored[label], pen=self._pen(label, 2))
            self._zoom_curves.append((_NAMES[label], t, stored[label]))
        self._set_region(0.22, 0.28)
        self.overview.setXRange(0, 1, padding=0.01)
        self.zoomed.setXRange(0.22, 0.28, padding=0)
        self._fit_zoom()

    def _legend_plot(self, x: np.ndarray, y: np.ndarray, pen: object, name: str) -> None:
        """An overview curve with its legend entry (the legend serves both plots)."""
        self.legend.addItem(self.overview.plot(x, y, pen=pen, name=name), name)

    def _pen(self, label: str, width: float = 1.5) -> object:
        color = CURVE_COLORS.get(label, CURVE_COLORS["scheme"])
        if label == "scheme":  # dashed on top, so a same-grid bit-width curve shows beneath
            return pg.mkPen(color, width=width + 0.5, style=Qt.PenStyle.DashLine)
        return pg.mkPen(color, width=width)

    def _name(self, label: str, d: TensorDetail) -> str:
        return f"{d.spec} (chosen)" if label == "scheme" else _NAMES.get(label, label)
