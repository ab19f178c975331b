"""The GUI thread keeps running while a 50M-parameter model is previewed on a worker."""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer


def test_event_loop_never_blocks_during_whole_model_preview(qtbot, window, synthetic_model):
    model = synthetic_model({f"layer{i}/kernel": (2048, 2048) for i in range(12)})
    assert model.parameter_count > 50_000_000
    qtbot.waitExposed(window)
    qtbot.wait(300)  # the window's first paint is not part of the preview
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    started = time.perf_counter()
    window.state.set_model(model, target="native")
    last[0] = time.perf_counter()
    qtbot.waitUntil(lambda: window.state.preview is not None, timeout=240_000)
    elapsed = time.perf_counter() - started
    qtbot.wait(200)  # the totals, chart and table repaint after the last tensor count too
    timer.stop()
    assert len(window.state.tensor_previews) == 12
    assert window.summary.shown_total["parameters"] == model.parameter_count
    assert len(gaps) > 20, f"preview took {elapsed:.1f} s with only {len(gaps)} ticks"
    worst = max(gaps)
    print(f"50M preview {elapsed:.1f} s, {len(gaps)} ticks, longest gap {worst * 1000:.0f} ms")
    assert worst < 0.100, f"GUI thread blocked for {worst * 1000:.0f} ms"


def test_cancel_stops_the_preview(qtbot, window, synthetic_model, monkeypatch):
    from inspector.core import preview as core_preview

    real = core_preview.preview_tensor

    def slow(*args, **kwargs):
        time.sleep(0.1)  # the preview must still run when Esc arrives
        return real(*args, **kwargs)

    monkeypatch.setattr(core_preview, "preview_tensor", slow)
    model = synthetic_model({f"layer{i}/kernel": (1024, 1024) for i in range(8)})
    window.state.set_model(model, target="native")
    qtbot.waitUntil(lambda: len(window.state.tensor_previews) >= 1, timeout=60_000)
    window.cancel_action.trigger()
    assert "cancelled" in window.status_label.text()
    qtbot.waitUntil(lambda: not window.preview.runner.busy, timeout=60_000)
    assert window.state.preview is None
    assert len(window.state.tensor_previews) < 8
