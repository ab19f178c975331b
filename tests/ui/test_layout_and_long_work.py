"""Issue 16 in the window: long work that reports and stops, views that explain themselves."""

from __future__ import annotations

import numpy as np
import pytest

from inspector.ui.curve_view import STEPS_SHOWN, fit_window, step_window
from inspector.ui.histogram_view import RUG_MIN_PX, thin_levels
from inspector.ui.tasks import BackgroundTask, format_eta


def test_thinned_rug_keeps_ticks_apart_and_all_when_they_fit():
    levels = np.linspace(-1.0, 1.0, 256)
    drawn = thin_levels(levels, -1.0, 1.0, 400.0)
    assert 50 <= drawn.size <= 400 / RUG_MIN_PX + 1
    gaps = np.diff(drawn) * 400.0 / 2.0
    assert gaps.min() >= RUG_MIN_PX * 0.999
    assert thin_levels(levels, -1.0, 1.0, 4000.0).size == 256


def test_zoom_fits_the_varying_curves_and_names_a_flat_one_outside():
    x = np.linspace(0.0, 1.0, 1001)
    fine = np.round(x * 65535) / 65535
    coarse = np.full_like(x, 0.5)  # one 8-bit level across the whole window
    span, outside = fit_window([("16-bit", fine, fine), ("8-bit", x, coarse)], 0.10, 0.11)
    assert span == pytest.approx((0.10, 0.11), abs=2e-3)  # samples inside the window
    assert outside == [("8-bit", 0.5)]
    lo, hi = step_window(0.0, -1.0, 1.0, 8)
    assert hi - lo == pytest.approx(STEPS_SHOWN * 2.0 / 255)


def test_progress_is_determinate_with_time_left(qtbot, monkeypatch):
    import inspector.ui.tasks as tasks

    task = BackgroundTask("Sensitivity")
    task._started = 100.0
    monkeypatch.setattr(tasks.time, "monotonic", lambda: 110.0)
    assert task.eta(25, 100) == pytest.approx(30.0)
    assert task.eta(1, 100) is None  # too early to say
    task._on_item(1, (25, 100))
    assert task.bar.maximum() == tasks.BAR_STEPS and task.bar.value() == tasks.BAR_STEPS // 4
    assert "30 s left" in task.bar.format()
    assert format_eta(125) == "2 min 05 s" and format_eta(7300) == "2 h 01 min"


def test_cancel_names_the_job_that_ran_and_stops_between_layers(
    qtbot, window, demo_path, open_and_wait
):
    """Esc during sensitivity: the status line says "Sensitivity cancelled" (not Evaluation),
    no result arrives, and rows that arrived before were ranked partial results."""
    open_and_wait(window, demo_path("digits_depthwise"))
    ev = window.evaluation
    rows: list[object] = []
    ev.analysis.partial.connect(rows.append)
    finished: list[object] = []
    ev.sensitivity_done.connect(finished.append)
    ev.run_sensitivity("uint8")
    qtbot.waitUntil(lambda: len(rows) >= 2, timeout=120_000)
    assert window.output.sensitivity.ranked_units()  # bars fill in while it runs
    assert ev.analysis.bar.maximum() > 0  # determinate
    window.cancel_work()
    assert window.status_label.text() == "Sensitivity cancelled"
    qtbot.waitUntil(lambda: not ev.analysis.busy, timeout=10_000)
    assert finished == []


def test_splitters_are_remembered(qtbot, window, tmp_path):
    from PySide6.QtCore import QSettings

    from inspector.ui.main_window import MainWindow

    window.resize(1280, 800)
    window.show()
    window.output.splitter.setSizes([100, 400, 150])
    window.right_split.setSizes([300, 120])
    sizes = {k: s.sizes() for k, s in window.splitters().items()}
    window.close()
    again = MainWindow(window.settings)
    qtbot.addWidget(again)
    again.resize(1280, 800)
    again.show()
    for key, splitter in again.splitters().items():
        assert splitter.sizes() == pytest.approx(sizes[key], abs=3), key
    again.shutdown()
    assert isinstance(again.settings, QSettings)


def test_per_layer_bar_click_selects_that_layers_tensors(qtbot, window, demo_path, open_and_wait):
    open_and_wait(window, demo_path("digits_convnet"))
    summary = window.summary
    qtbot.waitUntil(lambda: bool(getattr(summary, "_names", [])), timeout=20_000)
    layer = summary._names[1]
    vb = summary.chart.getPlotItem().vb
    pos = vb.mapViewToScene(pg_point(0.5, 1.0))

    class Click:
        def scenePos(self):
            return pos

    summary._chart_clicked(Click())
    assert window.state.selection and all(
        window.state.model[n].info.layer == layer for n in window.state.selection
    )


def pg_point(x: float, y: float):
    from PySide6.QtCore import QPointF

    return QPointF(x, y)


def test_histogram_says_loading_while_the_selected_tensor_is_computed(
    qtbot, window, demo_path, open_and_wait
):
    open_and_wait(window, demo_path("digits_convnet"))
    names = [t.name for t in window.state.model if t.info.is_float]
    qtbot.waitUntil(lambda: window.histogram.detail is not None, timeout=20_000)
    other = next(n for n in names if n != window.histogram.detail.name)
    window.state.set_selection([other], other)
    window.detail.refresh()
    assert window.histogram.info.text() == f"Loading {other}…"
    qtbot.waitUntil(
        lambda: window.histogram.detail is not None and window.histogram.detail.name == other,
        timeout=20_000,
    )
    text = window.histogram.info.text()
    assert other in text and "Loading" not in text and "exact zeros" in text
