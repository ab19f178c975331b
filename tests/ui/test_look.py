"""Plot details the screenshots showed: the uint8 level rug keeps the count axis at 0."""

from __future__ import annotations


def test_level_rug_sits_above_the_bars(qtbot, window, demo_path, open_and_wait):
    open_and_wait(window, demo_path("digits_convnet"))
    name = next(t.name for t in window.state.model if t.info.is_float and len(t.info.shape) == 4)
    window.state.set_selection([name], name)
    view = window.histogram
    qtbot.waitUntil(lambda: view.detail is not None and view.detail.name == name, timeout=20_000)
    _, ys = view.level_item.getData()
    top = float(view.detail.hist_counts.max())
    assert ys is not None and len(ys) and ys.min() > top  # ticks above the tallest bar
    qtbot.wait(50)
    assert view.plot.getViewBox().viewRange()[1][0] >= 0.0
