"""round=gptq in the window: calibrated on the bundled sample, and the Rounding A/B tab."""

from __future__ import annotations

import numpy as np


def test_gptq_preview_uses_the_bundled_sample(qtbot, window, demo_path, open_and_wait):
    open_and_wait(window, demo_path("digits_convnet"))
    state = window.state
    state.set_plan(state.plan.with_default("int4:round=gptq"))
    qtbot.waitUntil(
        lambda: state.preview is not None and state.preview_plan == state.plan, timeout=60_000
    )
    rows = {t.name: t for t in state.preview.tensors}
    assert rows["dense1/kernel:0"].note == ""
    assert "not a Dense/Conv" in rows["dense1/bias:0"].note
    assert "entropy_bits_per_weight" in state.preview.total


def test_rounding_ab_tab_compares_with_nearest(qtbot, window, demo_path, open_and_wait):
    open_and_wait(window, demo_path("digits_convnet"))
    state = window.state
    name = "conv2/kernel:0"
    state.set_plan(state.plan.with_default("float32").with_overrides([name], "affine3:round=gptq"))
    state.set_selection([name], name)
    view = window.rounding
    window.tabs.setCurrentWidget(view)
    view.compare()
    qtbot.waitUntil(lambda: "rounded the other way" in view.summary.text(), timeout=60_000)
    text = view.summary.text()
    assert "affine3</b> vs <b>affine3:round=gptq" in text
    assert "output SQNR, only this tensor quantized" in text
    image = view.image.image
    assert image is not None and image.shape == (3 * 3 * 16, 32)
    assert np.count_nonzero(image) > 0 and image.min() >= -1 and image.max() <= 1
    state.set_selection(["conv1/bias:0"], "conv1/bias:0")
    assert "Select a tensor" in view.summary.text()


def test_summary_shows_the_entropy_bound(qtbot, window, demo_path, open_and_wait):
    open_and_wait(window, demo_path("digits_convnet"))
    label = window.summary.values["entropy_bits_per_weight"]
    total = window.state.preview.total
    assert label.text() == f"{total['entropy_bits_per_weight']:.2f} bits"
    assert "Huffman" in label.toolTip()
