"""SensitivityPanel: bars follow the ranking, front clicks emit the point's plan."""

from __future__ import annotations

import math

import pytest

from inspector.core.budget import Option, TensorLadder, pareto_front, plan_for
from inspector.engine.evaluate import OutputMetrics
from inspector.engine.sensitivity import SensitivityResult, SensitivityRow

pytest.importorskip("pyqtgraph")

from inspector.ui.sensitivity_panel import SensitivityPanel


def _metrics(noise: float, score: float) -> OutputMetrics:
    sqnr = math.inf if noise == 0 else 10 * math.log10(100.0 / noise)
    return OutputMetrics(10, sqnr, noise, 100.0, 1.0, "accuracy", 0.99, score)


def _result() -> SensitivityResult:
    rows = tuple(
        SensitivityRow(name, (f"{name}/kernel",), 10, _metrics(noise, 0.99 - loss), loss, noise)
        for name, noise, loss in [("conv", 0.01, 0.0), ("dw", 80.0, 0.8), ("dense", 1.0, 0.05)]
    )
    return SensitivityResult("uint8", "only", "layer", rows, _metrics(0.0, 0.99))


def _ladders() -> list[TensorLadder]:
    opts = (Option("float32", 40, 0.0), Option("uint8", 10, 1.0), Option("affine4", 5, 9.0))
    return [TensorLadder("a", opts), TensorLadder("b", opts)]


@pytest.fixture
def panel(qtbot):
    widget = SensitivityPanel()
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_bars_are_ranked_most_sensitive_first(panel):
    panel.set_sensitivity(_result())
    assert panel.ranked_units() == ["dw", "dense", "conv"]
    assert panel.bar_values() == pytest.approx([80.0, 5.0, 0.0])
    assert "uint8" in panel.title.text()
    panel.measure.setCurrentIndex(1)
    values = panel.bar_values()
    assert values[0] > values[1] > values[2]


def test_live_rows_are_ranked_as_they_arrive_then_clear(panel):
    panel.expect(3)
    rows = _result().rows
    panel.add_row(rows[0])
    panel.add_row(rows[2])
    assert panel.ranked_units() == ["dense", "conv"] and "2 of 3" in panel.title.text()
    panel.add_row(rows[1])
    assert panel.ranked_units() == ["dw", "dense", "conv"]
    panel.clear()
    assert panel.ranked_units() == [] and "not measured" in panel.title.text()


def test_front_click_emits_that_points_plan(panel, qtbot):
    ladders = _ladders()
    front = pareto_front(ladders)
    panel.set_front(front, ladders, current_bytes=20)
    with qtbot.waitSignal(panel.plan_chosen) as sig:
        panel.choose(2)
    assert sig.args[0] == plan_for(ladders, front[2].choice)
    points = panel.front_points.points()
    assert len(points) == len(front)
    with qtbot.waitSignal(panel.plan_chosen) as sig:
        panel.front_points.sigClicked.emit(panel.front_points, [points[0]], None)
    assert sig.args[0] == plan_for(ladders, front[0].choice)


def test_placeholder_before_a_run_and_a_sentence_when_no_unit_loses_accuracy(panel):
    assert panel.bars_stack.currentWidget() is panel.bars_note
    assert panel.front_stack.currentWidget() is panel.front_note
    rows = tuple(
        SensitivityRow(n, (f"{n}/kernel",), 10, _metrics(noise, 0.99), 0.0, noise)
        for n, noise in [("a", 0.5), ("b", 2.0)]
    )
    panel.set_sensitivity(SensitivityResult("uint8", "only", "layer", rows, _metrics(0.0, 0.99)))
    assert panel.bars_stack.currentWidget() is panel.bars_scroll
    assert "No unit changes the accuracy" in panel.title.text()
    assert panel.ranked_units() == ["b", "a"] and panel.bar_values()[0] > 0  # by noise


def test_every_bar_keeps_its_own_labelled_row(panel):
    rows = tuple(
        SensitivityRow(
            f"block_{i}_expand_BN_long_layer_name",
            (f"t{i}",),
            10,
            _metrics(1.0 + i, 0.9),
            0.01 * i,
            1.0 + i,
        )
        for i in range(60)
    )
    panel.set_sensitivity(SensitivityResult("uint8", "only", "layer", rows, _metrics(0.0, 0.99)))
    ticks = panel.bars_plot.getAxis("left")._tickLevels[0]
    assert len(ticks) == 60  # one label per bar, none skipped
    assert panel.bars_plot.minimumHeight() >= 60 * 18
    assert all("…" in text for _, text in ticks)  # elided in the middle, full in the tooltip
    panel.highlight({rows[0].unit})
    assert panel.ranked_units()[-1] == rows[0].unit
