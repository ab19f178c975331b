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

Every bar is identifiable: each gets a row of `ROW_PX` pixels with its own label (the chart
scrolls when they do not fit), long names are elided in the middle, hovering a bar shows its
full name and value, and `highlight(units)` marks (and scrolls to) the table's selection.
Before a run, and when no unit changes the chosen measure, a sentence says so instead of an
empty pair of axes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFontMetrics
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from inspector.core.budget import FrontPoint, TensorLadder, plan_for
from inspector.engine.sensitivity import SensitivityResult, SensitivityRow
from inspector.ui.plot_style import apply_plot_style

__all__ = ["SensitivityPanel", "elide_middle"]

MEASURES = ("score impact", "output noise (dB)")
ROW_PX = 18
"""Height of one bar's row: every bar keeps a readable label (the chart scrolls)."""
LABEL_PX = 170
"""Width of the bar labels' axis; longer names are elided in the middle."""
REDRAW_MS = 100
"""Partial rows arriving within this many ms are drawn once (a burst of 74 redraws of 107
bars stalled the event loop for 230 ms)."""
BAR = QColor(52, 101, 164)
BAR_SELECTED = QColor(230, 120, 0)


def elide_middle(text: str, metrics: QFontMetrics, width: int) -> str:
    """`text` shortened to `width` pixels with "…" in the middle (layer names differ at both
    ends: `block_13_expand_BN` vs `block_13_project_BN`)."""
    return metrics.elidedText(text, Qt.TextElideMode.ElideMiddle, width)


def _placeholder(text: str) -> QLabel:
    label = QLabel(text)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    label.setStyleSheet("color: #666; padding: 12px")
    return label


class SensitivityPanel(QWidget):
    """Ranked sensitivity bars (top) and the Pareto front of the budget solver (bottom)."""

    plan_chosen = Signal(object)
    unit_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._result: SensitivityResult | None = None
        self._rows: list[SensitivityRow] = []
        self._shown: list[SensitivityRow] = []
        self._expected = 0
        self._highlight: set[str] = set()
        self._front: list[FrontPoint] = []
        self._ladders: list[TensorLadder] = []
        self._redraw = QTimer(self, singleShot=True, interval=REDRAW_MS)
        self._redraw.timeout.connect(self._draw_bars)
        self.measure = QComboBox()
        self.measure.addItems(MEASURES)
        self.measure.currentIndexChanged.connect(self._draw_bars)
        self.title = QLabel("Sensitivity: not measured")
        self.title.setWordWrap(True)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.title, 1)
        top.addWidget(self.measure)
        self.bars_plot = pg.PlotWidget()
        apply_plot_style(self.bars_plot.getPlotItem(), MEASURES[0], "")
        self.bars_plot.invertY(True)
        self.bars_plot.setMouseEnabled(x=False, y=False)
        self.bars_plot.hideButtons()
        self.bars_plot.getAxis("left").setWidth(LABEL_PX)
        self.bars_plot.scene().sigMouseClicked.connect(self._bar_clicked)
        self.bars_plot.scene().sigMouseMoved.connect(self._bar_hovered)
        self.bars_scroll = QScrollArea()
        self.bars_scroll.setWidget(self.bars_plot)
        self.bars_scroll.setWidgetResizable(True)
        self.bars_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.bars_note = _placeholder(
            "Run sensitivity to rank the layers: each one is quantized alone with the chosen "
            "scheme and the model's outputs are compared with the float model's. Bars fill in "
            "as layers are measured."
        )
        self.bars_stack = QStackedWidget()
        self.bars_stack.addWidget(self.bars_note)
        self.bars_stack.addWidget(self.bars_scroll)
        self.front_plot = pg.PlotWidget()
        apply_plot_style(self.front_plot.getPlotItem(), "tensor bytes", "noise")
        self.front_plot.setLabel("bottom", "tensor bytes", units="B")
        self.front_plot.getAxis("bottom").enableAutoSIPrefix(True)
        self.front_plot.setLogMode(y=True)
        self.front_points = pg.ScatterPlotItem(size=8, pxMode=True)
        self.front_points.sigClicked.connect(self._front_clicked)
        self.front_plot.addItem(self.front_points)
        self.front_line = self.front_plot.plot([], [], pen=pg.mkPen(width=1))
        self.current_line = pg.InfiniteLine(angle=90, movable=False)
        self.front_plot.addItem(self.current_line)
        self.current_line.hide()
        self.front_note = _placeholder(
            "Build the size/error front to see the smallest error reachable at each size; "
            "click a point to load its plan."
        )
        self.front_stack = QStackedWidget()
        self.front_stack.addWidget(self.front_note)
        self.front_stack.addWidget(self.front_plot)
        self.bars_stack.setMinimumHeight(120)
        self.front_stack.setMinimumHeight(110)
        upper = QWidget()
        upper_layout = QVBoxLayout(upper)
        upper_layout.setContentsMargins(0, 0, 0, 0)
        upper_layout.addLayout(top)
        upper_layout.addWidget(self.bars_stack, 1)
        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addWidget(QLabel("Size / error front (click a point to load its plan)"))
        lower_layout.addWidget(self.front_stack, 1)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("sensitivity_splitter")
        self.splitter.addWidget(upper)
        self.splitter.addWidget(lower)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([300, 200])
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    # ------------------------------------------------------------------ sensitivity

    def expect(self, count: int) -> None:
        """A run started that will measure `count` units (for the "k of n" title)."""
        self._result, self._rows, self._expected = None, [], count
        self.title.setText(f"Sensitivity: measuring {count} units…")
        self._draw_bars()

    def add_row(self, row: SensitivityRow) -> None:
        """Live progress: one more measured unit, ranked among those measured so far. Rows
        that arrive together (cached or unchanged units) are drawn once, `REDRAW_MS` later."""
        self._rows.append(row)
        of = f" of {self._expected}" if self._expected else ""
        self.title.setText(f"Sensitivity: {len(self._rows)}{of} measured, ranked so far…")
        self._redraw.start()

    def _flush(self) -> None:
        if self._redraw.isActive():
            self._redraw.stop()
            self._draw_bars()

    def set_sensitivity(self, result: SensitivityResult | None) -> None:
        """Show a finished analysis ranked most sensitive first (None clears it)."""
        self._result = result
        self._expected = 0
        self._rows = [] if result is None else list(result.rows)
        if result is None:
            self.title.setText("Sensitivity: not measured")
        else:
            what = "only this" if result.mode == "only" else "all but this"
            samples = result.reference.samples
            self.title.setText(
                f"Sensitivity at {result.scheme} ({what} {result.per}), {len(result.rows)} "
                f"units on {samples} samples"
            )
        self._draw_bars()

    def ranked_units(self) -> list[str]:
        """Units in the order the bars show them (most sensitive first)."""
        self._flush()
        return [r.unit for r in self._shown]

    def bar_values(self) -> list[float]:
        self._flush()
        return [self._value(r) for r in self._shown]

    def _by_score(self) -> bool:
        """Bars show accuracy points when chosen, labels exist and some unit changes them."""
        if self.measure.currentIndex() != 0:
            return False
        rows = self._rows
        return any(r.impact_score is not None for r in rows) and any(
            (r.impact_score or 0.0) != 0.0 for r in rows
        )

    def _value(self, row: SensitivityRow) -> float:
        if self._by_score() and row.impact_score is not None:
            return 100.0 * row.impact_score
        noise, signal = row.metrics.noise_energy, row.metrics.signal_energy
        if self._result is not None and self._result.mode == "keep":
            noise = max(row.impact_noise, 0.0)
        if noise <= 0 or signal <= 0:
            return 0.0
        return max(0.0, 10.0 * math.log10(noise / signal) + 100.0)

    def _rank_key(self, row: SensitivityRow) -> tuple[float, float]:
        return (-self._value(row), -row.impact_noise)

    def _draw_bars(self) -> None:
        self._redraw.stop()
        rows = list(self._rows)
        self._shown = sorted(rows, key=self._rank_key)
        self.bars_plot.clear()
        by_score = self._by_score()
        label = "accuracy points lost" if by_score else "output noise, dB re signal + 100"
        self.bars_plot.setLabel("bottom", label)
        if not self._shown:
            self.bars_stack.setCurrentWidget(self.bars_note)
            return
        self.bars_stack.setCurrentWidget(self.bars_scroll)
        note = ""
        if self.measure.currentIndex() == 0 and not by_score:
            has_labels = any(r.impact_score is not None for r in rows)
            note = (
                "No unit changes the accuracy: ranked by output noise instead."
                if has_labels
                else "No labels in the evaluation data: ranked by output noise."
            )
        if self._result is not None:
            first = self.title.text().split("\n")[0]
            self.title.setText(f"{first}\n{note}" if note else first)
        values = np.array(self.bar_values(), dtype=float)
        y = np.arange(len(values), dtype=float)
        brushes = [
            pg.mkBrush(BAR_SELECTED if r.unit in self._highlight else BAR) for r in self._shown
        ]
        self.bars_plot.addItem(
            pg.BarGraphItem(x0=0, y=y, width=values, height=0.7, brushes=brushes, pen=None)
        )
        if not np.any(values > 0):
            text = pg.TextItem("every bar is 0: no unit adds output noise", color=(90, 90, 90))
            text.setPos(0, -0.5)
            self.bars_plot.addItem(text)
        high = float(values.max()) if values.size and values.max() > 0 else 1.0
        self.bars_plot.setXRange(0, high * 1.05, padding=0)
        self.bars_plot.setYRange(-0.6, len(values) - 0.4, padding=0)
        # Rows that do not fit scroll (every bar keeps its label); a few fill the height.
        self.bars_plot.setMinimumHeight(len(values) * ROW_PX + 45 if len(values) > 6 else 0)
        metrics = QFontMetrics(self.bars_plot.getAxis("left").style.get("tickFont") or self.font())
        ticks = [
            (float(i), elide_middle(r.unit, metrics, LABEL_PX - 12))
            for i, r in enumerate(self._shown)
        ]
        self.bars_plot.getAxis("left").setTicks([ticks, []])

    def highlight(self, units: Iterable[str]) -> None:
        """Mark the bars of `units` (the table's selection) and scroll the first into view."""
        self._highlight = set(units)
        if not self._shown:
            return
        self._draw_bars()
        index = next((i for i, r in enumerate(self._shown) if r.unit in self._highlight), None)
        if index is not None:
            y = int(self.bars_plot.getPlotItem().vb.mapViewToScene(pg.Point(0, index)).y())
            self.bars_scroll.ensureVisible(0, y, 0, 2 * ROW_PX)

    def _row_at(self, pos: object) -> int | None:
        if not self.bars_plot.sceneBoundingRect().contains(pos):  # type: ignore[arg-type]
            return None
        y = self.bars_plot.getPlotItem().vb.mapSceneToView(pos).y()
        index = round(y)
        return index if 0 <= index < len(self._shown) else None

    def _bar_hovered(self, pos: object) -> None:
        index = self._row_at(pos)
        if index is None:
            QToolTip.hideText()
            return
        row = self._shown[index]
        value = self._value(row)
        unit = "points" if self._by_score() else "dB + 100"
        text = f"{row.unit}\n{value:.3g} {unit} · {row.parameters:,} parameters"
        text += f"\noutput SQNR {row.metrics.sqnr_db:.1f} dB"
        view_pos = self.bars_plot.mapFromScene(pos)  # type: ignore[arg-type]
        QToolTip.showText(self.bars_plot.mapToGlobal(QPoint(view_pos.x(), view_pos.y())), text)

    def _bar_clicked(self, event: object) -> None:
        index = self._row_at(event.scenePos())  # type: ignore[attr-defined]
        if index is not None:
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
        self.front_stack.setCurrentWidget(self.front_plot if self._front else self.front_note)
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
        self._highlight = set()
        self.set_sensitivity(None)
        self.set_front([], [])
