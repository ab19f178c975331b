"""The window's model transforms (Equalize / Fold BN toggles, before/after) and the Output
tab's arithmetic choice, on the depthwise demo and the BN fixture."""

from __future__ import annotations

from pathlib import Path

from inspector.core.transform_spec import Transforms

CHAIN = Path(__file__).resolve().parents[1] / "engine" / "transforms" / "data" / "bn_chain_k2.h5"


def _wait_idle(qtbot, window, timeout=60_000):
    qtbot.waitUntil(
        lambda: (
            not window.transforms.task.busy
            and window.state.preview is not None
            and not window.preview.runner.busy
        ),
        timeout=timeout,
    )


def test_equalize_toggle_swaps_the_model_and_undo_restores_it(
    qtbot, window, demo_path, open_and_wait
):
    open_and_wait(window, demo_path("digits_depthwise"))
    state, bar = window.state, window.transform_bar
    opened = state.model
    with qtbot.waitSignal(window.transforms.applied, timeout=60_000):
        bar.equalize_box.click()
    _wait_idle(qtbot, window)
    assert state.plan.transforms == Transforms(equalize=True)
    assert state.original_model is opened and state.model is not opened
    assert state.model.metadata["transforms"] == [{"equalize": True, "relu6": "lift"}]
    qtbot.waitUntil(lambda: "before:" in bar.label.text(), timeout=30_000)
    assert "4 chains equalized" in bar.label.text() and "10 ReLU6" in bar.label.text()
    # the per-channel view gets the depthwise kernel's ranges before equalization
    name = "block1_dw/depthwise_kernel:0"
    before = window.transforms.before_ranges(name, 2)
    assert before is not None and before[0].size == 32
    assert window.transforms.before_ranges("probs/bias:0", 0) is None  # untouched tensor
    state.set_selection([name], name)
    with qtbot.waitSignal(window.evaluation.evaluated, timeout=60_000) as blocker:
        window.output.evaluate_button.click()
    metrics = blocker.args[0].metrics
    assert metrics.quantized_score >= 0.99 and metrics.original_score > 0.99
    with qtbot.waitSignal(window.transforms.applied, timeout=60_000):
        state.undo()
    _wait_idle(qtbot, window)
    assert state.model is opened and state.original_model is None
    assert not bar.equalize_box.isChecked()


def test_fold_toggle_on_the_bn_fixture(qtbot, window, open_and_wait):
    open_and_wait(window, CHAIN)
    with qtbot.waitSignal(window.transforms.applied, timeout=60_000):
        window.transform_bar.fold_box.click()
    _wait_idle(qtbot, window)
    names = set(window.state.model.tensors)
    assert "stem/bias:0" in names and not any("_bn/" in n for n in names)
    qtbot.waitUntil(lambda: "5 BN folded" in window.transform_bar.label.text(), timeout=30_000)


def test_float16_arithmetic_in_the_output_tab(qtbot, window, demo_path, open_and_wait):
    open_and_wait(window, demo_path("digits_convnet"))
    out = window.output
    out.arith_combo.setCurrentText("float16")
    with qtbot.waitSignal(window.evaluation.arith_done, timeout=60_000) as blocker:
        out.evaluate_button.click()
    result = blocker.args[0]
    assert result.dtype == "float16" and result.first_overflow is None
    assert "vs float32 arithmetic" in out.arith_label.text()
    assert "underflow to 0" in out.arith_label.text()
