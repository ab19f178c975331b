"""The GUI thread keeps running while a whole model is previewed on workers: 12 large tensors
(kernel time) or 200 small ones (table updates while the workers hold the GIL).

Behaviour only: every tensor is quantized off the GUI thread and the event loop keeps ticking.
How long the longest stall is, in milliseconds, is measured by `benchmarks/gui_stall.py` (a
unit test asserting milliseconds fails on a busy machine, not on a defect)."""

from __future__ import annotations

import threading
import time

import pytest

from inspector.ui.gap_meter import GapMeter

MANY_SMALL = {
    f"block{i // 2}/{'kernel' if i % 2 == 0 else 'bias'}": (512, 512) if i % 2 == 0 else (512,)
    for i in range(200)
}
"""200 tensors in 100 layers (BERT-like counts): the table takes 200 updates."""


@pytest.mark.parametrize(
    ("shapes", "count"),
    [({f"layer{i}/kernel": (2048, 2048) for i in range(12)}, 50_000_000), (MANY_SMALL, 26_000_000)],
    ids=["12 large tensors", "200 tensors"],
)
def test_whole_model_preview_runs_off_the_gui_thread(
    qtbot, window, synthetic_model, shapes, count, monkeypatch
):
    from inspector.core import preview as core_preview

    real = core_preview.preview_tensor
    threads: set[int] = set()

    def recorded(*args, **kwargs):
        threads.add(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(core_preview, "preview_tensor", recorded)
    model = synthetic_model(shapes)
    assert model.parameter_count > count
    qtbot.waitExposed(window)
    qtbot.wait(300)  # the window's first paint is not part of the preview
    meter = GapMeter()
    meter.start()
    started = time.perf_counter()
    window.state.set_model(model, target="native")
    qtbot.waitUntil(lambda: window.state.preview is not None, timeout=240_000)
    elapsed = time.perf_counter() - started
    qtbot.wait(200)  # the totals, chart and table repaint after the last tensor count too
    meter.stop()
    assert len(window.state.tensor_previews) == len(shapes)
    assert window.summary.shown_total["parameters"] == model.parameter_count
    gaps = meter.gaps
    assert threads and threading.main_thread().ident not in threads
    assert len(gaps) > 5, f"preview took {elapsed:.1f} s with only {len(gaps)} ticks"
    millions = model.parameter_count / 1e6
    worst_ms = meter.worst * 1e3
    print(f"{millions:.0f}M preview {elapsed:.1f} s, {len(gaps)} ticks, gap {worst_ms:.0f} ms")


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
