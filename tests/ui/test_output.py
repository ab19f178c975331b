"""Output tab on the depthwise demo: evaluation, sensitivity ranking, front and auto plan."""

from __future__ import annotations

from inspector.core.plan import Plan
from inspector.core.preview import run_preview
from inspector.formats.registry import get_target
from inspector.ui import dialogs
from inspector.ui.tensor_table import COL_SENS


def _evaluate(qtbot, window):
    with qtbot.waitSignal(window.evaluation.evaluated, timeout=60_000) as blocker:
        window.output.evaluate_button.click()
    return blocker.args[0]


def _open_depthwise(qtbot, window, demo_path, open_and_wait):
    open_and_wait(window, demo_path("digits_depthwise"))
    window.state.set_target("safetensors")
    qtbot.waitUntil(
        lambda: window.state.preview is not None and not window.preview.runner.busy,
        timeout=20_000,
    )


def test_sensitivity_ranks_depthwise_and_auto_plan_beats_uint8(
    qtbot, window, demo_path, open_and_wait, monkeypatch
):
    shown = []
    monkeypatch.setattr(dialogs, "show_error", lambda *a: shown.append(a))
    _open_depthwise(qtbot, window, demo_path, open_and_wait)
    state, out = window.state, window.output

    uint8 = _evaluate(qtbot, window)
    acc_uint8 = uint8.metrics.quantized_score
    assert uint8.metrics.metric == "accuracy" and acc_uint8 < 0.5
    assert "→" in out.values["score"].text() and "dB" in out.values["sqnr"].text()
    assert "bundled" in out.data_label.text()

    with qtbot.waitSignal(window.evaluation.sensitivity_done, timeout=120_000):
        out.sens_button.click()
    ranked = out.sensitivity.ranked_units()
    assert set(ranked[:2]) == {"block2_dw", "block4_dw"}
    dw = next(t.name for t in state.model if t.info.layer == "block2_dw")
    index = window.tensors.model.index_of(dw, COL_SENS)
    assert index.data().endswith("pts") and float(index.data().split()[0]) > 10

    out.sensitivity.unit_clicked.emit("block4_dw")
    assert state.selection and all(
        state.model[n].info.layer == "block4_dw" for n in state.selection
    )

    with qtbot.waitSignal(window.evaluation.front_done, timeout=180_000):
        out.front_button.click()
    target = get_target("safetensors")
    goal = run_preview(state.model, Plan(default="uint8"), target).total["quantized_bytes"]
    out.budget_edit.setText(str(goal))
    out.apply_button.click()
    assert out.solution is not None and state.plan == out.solution.plan
    assert run_preview(state.model, state.plan, target).total["quantized_bytes"] <= goal
    auto = _evaluate(qtbot, window)
    assert auto.plan == state.plan and auto.metrics.quantized_score > acc_uint8 + 0.3

    state.undo()
    assert state.plan == Plan(default="uint8")
    out.sensitivity.choose(0)  # a click on the smallest front point
    assert state.plan == out.sensitivity.plan_at(0) and state.can_undo
    state.undo()
    assert state.plan == Plan(default="uint8")
    assert not shown


def test_budget_texts(qtbot, window, demo_path, open_and_wait):
    from inspector.ui.evaluation import budget_bytes

    assert budget_bytes("25%", 1000, 250) == (250, True)
    assert budget_bytes("40kB", 10**6, 10) == (40_000, True)
    assert budget_bytes("4 bits", 1000, 250) == (125, False)
    _open_depthwise(qtbot, window, demo_path, open_and_wait)
    window.output.budget_edit.setText("25%")
    window.output.apply_budget()
    assert "front first" in window.output.budget_label.text()


def test_unavailable_is_shown_in_place(qtbot, window, synthetic_model, monkeypatch):
    shown = []
    monkeypatch.setattr(dialogs, "show_error", lambda *a: shown.append(a))
    window.state.set_model(synthetic_model({"a/kernel": (8, 4)}), target="native")
    with qtbot.waitSignal(window.evaluation.unavailable, timeout=30_000):
        window.output.evaluate_button.click()
    assert "evaluation unavailable" in window.output.message.text()
    assert not shown
    # weight-level work still runs: the front falls back to weight error
    with qtbot.waitSignal(window.evaluation.front_done, timeout=30_000) as blocker:
        window.output.front_button.click()
    assert blocker.args[2] is False
    assert "weight" in window.output.budget_label.text()


def test_auto_reevaluate_follows_the_plan(qtbot, window, demo_path, open_and_wait):
    open_and_wait(window, demo_path("diabetes_mlp"))
    with qtbot.waitSignal(window.evaluation.evaluated, timeout=30_000):
        window.output.auto_box.setChecked(True)
    with qtbot.waitSignal(window.evaluation.evaluated, timeout=30_000) as blocker:
        window.state.set_plan(Plan(default="float16"))
    assert blocker.args[0].plan == Plan(default="float16")
    assert "MAE" in window.output.values["score"].text()
