"""Sensitivity bar chart and size/error Pareto chart; clicking a front point proposes its plan.

A self-contained view: it takes finished data objects, draws them and emits what the user
picked. It runs nothing and computes nothing beyond reshaping for the plots (DESIGN §7 rule 4).

Wiring (for the main window; the work runs on the app's `JobRunner`, the panel never blocks):

    panel = SensitivityPanel()
    # sensitivity: a job that drains `iter_sensitivity(evaluator, scheme, per, mode)`,
    #   reporting each `SensitivityRow` (panel.add_row(row) for live progress), then
    #   panel.set_sensitivity(result)  with the returned `SensitivityResult`.
    # front: a job that builds ladders (engine.sensitivity.iter_output_errors +
    #   core.budget.build_ladders) and calls, on the GUI thread,
    #   panel.set_front(budget.pareto_front(ladders), ladders, current_bytes=preview_total)
    panel.plan_chosen.connect(state.set_plan)        # undoable: AppState keeps a plan stack
    panel.unit_clicked.connect(select_layer_or_tensor)
    panel.clear()                                    # on model change

Signals: `plan_chosen(Plan)` when a front point is clicked; `unit_clicked(str)` with the layer
or tensor name of a clicked bar.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from inspector.core.budget import FrontPoint, TensorLadder, plan_for
from inspector.engine.sensitivity import SensitivityResult, SensitivityRow

__all__ = ["SensitivityPanel"]

MEASURES = ("score impact", "output noise (dB)")
MAX_BARS = 40


class SensitivityPanel(QWidget):
    """Ranked sensitivity bars (top) and the Pareto front of the budget solver (bottom)."""

    plan_chosen = Signal(object)
    unit_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._result: SensitivityResult | None = None
        self._rows: list[SensitivityRow] = []
        self._shown: list[SensitivityRow] = []
        self._front: list[FrontPoint] = []
        self._ladders: list[TensorLadder] = []
        self.measure = QComboBox()
        self.measure.addItems(MEASURES)
        self.measure.currentIndexChanged.connect(self._draw_bars)
        self.title = QLabel("Sensitivity: not measured")
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.measure)
        self.bars_plot = pg.PlotWidget()
        self.bars_plot.setLabel("bottom", MEASURES[0])
        self.bars_plot.invertY(True)
        self.bars_plot.getViewBox().sigResized.connect(self._update_ticks)
        self.bars_plot.scene().sigMouseClicked.connect(self._bar_clicked)
        self.front_plot = pg.PlotWidget()
        self.front_plot.setLabel("bottom", "tensor bytes", units="B")
        self.front_plot.setLabel("left", "output noise")
        self.front_plot.setLogMode(y=True)
        self.front_points = pg.ScatterPlotItem(size=8, pxMode=True)
        self.front_points.sigClicked.connect(self._front_clicked)
        self.front_plot.addItem(self.front_points)
        self.front_line = self.front_plot.plot([], [], pen=pg.mkPen(width=1))
        self.current_line = pg.InfiniteLine(angle=90, movable=False)
        self.front_plot.addItem(self.current_line)
        self.current_line.hide()
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.bars_plot, 1)
        layout.addWidget(QLabel("Size / error front (click a point to load its plan)"))
        layout.addWidget(self.front_plot, 1)

    # ------------------------------------------------------------------ sensitivity

    def add_row(self, row: SensitivityRow) -> None:
        """Live progress: one more measured unit (drawn in arrival order until the result)."""
        self._rows.append(row)
        self.title.setText(f"Sensitivity: {len(self._rows)} measured…")
        self._draw_bars()

    def set_sensitivity(self, result: SensitivityResult | None) -> None:
        """Show a finished analysis ranked most sensitive first (None clears it)."""
        self._result = result
        self._rows = [] if result is None else list(result.rows)
        if result is None:
            self.title.setText("Sensitivity: not measured")
        else:
            what = "only this" if result.mode == "only" else "all but this"
            self.title.setText(f"Sensitivity at {result.scheme} ({what} {result.per})")
        self._draw_bars()

    def ranked_units(self) -> list[str]:
        """Units in the order the bars show them (most sensitive first)."""
        return [r.unit for r in self._shown]

    def bar_values(self) -> list[float]:
        return [self._value(r) for r in self._shown]

    def _value(self, row: SensitivityRow) -> float:
        if self.measure.currentIndex() == 0 and row.impact_score is not None:
            return 100.0 * row.impact_score
        noise, signal = row.metrics.noise_energy, row.metrics.signal_energy
        if self._result is not None and self._result.mode == "keep":
            noise = max(row.impact_noise, 0.0)
        if noise <= 0 or signal <= 0:
            return 0.0
        return max(0.0, 10.0 * math.log10(noise / signal) + 100.0)

    def _draw_bars(self) -> None:
        rows = self._result.ranked() if self._result is not None else list(self._rows)
        self._shown = rows[:MAX_BARS]
        self.bars_plot.clear()
        label = "accuracy points lost" if self.measure.currentIndex() == 0 else "noise dB + 100"
        self.bars_plot.setLabel("bottom", label)
        if not self._shown:
            return
        values = np.array(self.bar_values(), dtype=float)
        y = np.arange(len(values), dtype=float)
        brush = pg.mkBrush(52, 101, 164)
        self.bars_plot.addItem(
            pg.BarGraphItem(x0=0, y=y, width=values, height=0.7, brush=brush, pen=None)
        )
        self._update_ticks()

    def _update_ticks(self) -> None:
        """Most sensitive at the top; every unit labelled when they fit (~14 px each)."""
        if not self._shown:
            return
        room = max(1, int(self.bars_plot.getViewBox().height()) // 14)
        step = max(1, math.ceil(len(self._shown) / room))
        ticks = [(float(i), r.unit) for i, r in enumerate(self._shown)]
        self.bars_plot.getAxis("left").setTicks([ticks[::step]])

    def _bar_clicked(self, event: object) -> None:
        pos = event.scenePos()  # type: ignore[attr-defined]
        if not self.bars_plot.sceneBoundingRect().contains(pos):
            return
        y = self.bars_plot.getPlotItem().vb.mapSceneToView(pos).y()
        index = round(y)
        if 0 <= index < len(self._shown):
            self.unit_clicked.emit(self._shown[index].unit)

    # ------------------------------------------------------------------ front

    def set_front(
        self,
        front: Sequence[FrontPoint],
        ladders: Sequence[TensorLadder],
        current_bytes: int | None = None,
    ) -> None:
        """Show the solver's front; `current_bytes` marks the current plan's size."""
        self._front, self._ladders = list(front), list(ladders)
        sizes = [p.nbytes for p in self._front]
        errors = [max(p.error, 1e-12) for p in self._front]
        self.front_points.setData(
            x=sizes, y=np.log10(errors) if errors else [], data=list(range(len(sizes)))
        )
        self.front_line.setData(sizes, errors)
        if current_bytes is None:
            self.current_line.hide()
        else:
            self.current_line.setValue(current_bytes)
            self.current_line.show()

    def plan_at(self, index: int):  # -> Plan
        """The plan of front point `index` (what a click emits)."""
        return plan_for(self._ladders, self._front[index].choice)

    def choose(self, index: int) -> None:
        """Emit `plan_chosen` for front point `index` (a click, or a keyboard/test action)."""
        if 0 <= index < len(self._front):
            self.plan_chosen.emit(self.plan_at(index))

    def _front_clicked(self, _item: object, points: Sequence[object]) -> None:
        if points:
            self.choose(int(points[0].data()))  # type: ignore[attr-defined]

    def clear(self) -> None:
        self.set_sensitivity(None)
        self.set_front([], [])
