"""Rounding A/B for the selected tensor: nearest against its `round=hqq|gptq`.

Weight error (usually a little worse with GPTQ: it trades weight error for output error),
output error with only this tensor quantized (on the evaluation probe batch), and a map of the
weights that rounded the other way. Numbers come from `core.rounding.compare` and the
evaluation engine; this module only runs them on a worker and draws them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from inspector.core.errors import InspectorError
from inspector.ui.controllers import state_target
from inspector.ui.evaluation import EvaluationController
from inspector.ui.plot_style import apply_plot_style
from inspector.ui.state import AppState
from inspector.ui.tasks import BackgroundTask

__all__ = ["RoundingView"]

_HINT = "Select a tensor whose scheme says round=hqq or round=gptq, then Compare."


def _db(value: float | None) -> str:
    if value is None:
        return "–"
    return "exact" if math.isinf(value) and value > 0 else f"{value:.2f} dB"


def _compare_job(state: AppState, evaluation: EvaluationController) -> Any:
    """The worker function comparing the current tensor's rounding with nearest."""
    from inspector.core.rounding.compare import compare_rounding
    from inspector.engine.evaluate import drain
    from inspector.engine.sensitivity import measure_changes

    tensor = state.tensor(state.current)
    if tensor is None:
        return None
    scheme = state.plan.scheme_for(tensor.info)
    target = state_target(state)

    def job(cancelled: Any, report: Any) -> Any:
        result = compare_rounding(tensor, scheme, target)
        if result is None or cancelled():
            return result, None, None
        try:
            probe = evaluation.probe()
        except InspectorError as exc:
            return result, None, str(exc)
        outputs = [
            drain(measure_changes(probe, {tensor.name: spec}))
            for spec in (result.nearest, result.method)
        ]
        return result, outputs, probe.data.describe()

    return job


class RoundingView(QWidget):
    """Compare button, the A/B numbers and the direction map."""

    def __init__(
        self, state: AppState, evaluation: EvaluationController, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.state, self.evaluation = state, evaluation
        self.task = BackgroundTask("Rounding A/B", self)
        self.task.done.connect(self.show_result)
        self.task.failed.connect(self.summary_text)
        self.button = QPushButton("Compare with nearest")
        self.button.clicked.connect(self.compare)
        self.summary = QLabel(_HINT, wordWrap=True)
        self.plot = pg.PlotWidget()
        apply_plot_style(self.plot.getPlotItem(), "output channel (last axis)", "row", "")
        self.plot.getPlotItem().invertY(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(_diverging())
        self.plot.addItem(self.image)
        self.placeholder = QLabel(
            "The map of weights rounded the other way appears here after Compare "
            "(the plan's scheme needs round=gptq or round=hqq on this tensor)."
        )
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setStyleSheet("color: #666; padding: 12px")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(self.plot)
        top = QHBoxLayout()
        top.addWidget(self.button)
        top.addWidget(self.summary, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.stack, 1)
        for signal in (state.selection_changed, state.plan_changed, state.target_changed):
            signal.connect(self.clear)

    def clear(self) -> None:
        self.task.cancel()
        self.summary.setText(_HINT)
        self.image.clear()
        self.stack.setCurrentWidget(self.placeholder)

    def summary_text(self, text: str) -> None:
        self.summary.setText(text)

    def compare(self) -> None:
        job = _compare_job(self.state, self.evaluation)
        if job is None:
            return
        self.summary.setText("Comparing…")
        self.task.start(job)

    def show_result(self, payload: Any) -> None:
        result, outputs, data = payload if payload is not None else (None, None, None)
        if result is None:
            self.summary.setText(_HINT)
            return
        share = 100.0 * result.flipped / max(result.size, 1)
        method = result.method.split("round=")[1].split(",")[0]
        lines = [
            f"<b>{result.nearest}</b> vs <b>{result.method}</b>"
            + (f" — {result.note}" if result.note else ""),
            f"weight SQNR: nearest {_db(result.nearest_sqnr_db)}, "
            f"{method} {_db(result.method_sqnr_db)}",
            f"{result.flipped:,} of {result.size:,} weights ({share:.1f} %) rounded the other "
            "way (map: red up, blue down, against nearest)",
        ]
        if outputs is not None and all(o is not None for o in outputs):
            same = " — GPTQ calibrated on this data too: optimistic" if method == "gptq" else ""
            lines.append(
                f"output SQNR, only this tensor quantized: nearest {_db(outputs[0].sqnr_db)}, "
                f"{method} {_db(outputs[1].sqnr_db)} ({data}{same})"
            )
        elif data:
            lines.append(f"output error unavailable: {data}")
        self.summary.setText("<br>".join(lines))
        self.image.setImage(result.direction_map, levels=(-1.0, 1.0))
        self.stack.setCurrentWidget(self.plot)


def _diverging() -> np.ndarray:
    """Blue (−1) → white (0) → red (+1), 255 steps."""
    t = np.linspace(-1.0, 1.0, 255)[:, None]
    blue, white, red = np.array([40, 90, 200]), np.array([255, 255, 255]), np.array([200, 40, 40])
    lut = np.where(t < 0, white + (blue - white) * -t, white + (red - white) * t)
    return lut.astype(np.uint8)
