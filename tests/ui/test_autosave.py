"""The plan is autosaved next to the settings and offered back when the model opens again."""

from __future__ import annotations

import json

from inspector.core.plan import Plan
from inspector.ui import dialogs
from inspector.ui.autosave import autosave_path


def _new_window(qtbot, settings):
    from inspector.ui.main_window import MainWindow

    win = MainWindow(settings)
    qtbot.addWidget(win)
    return win


def test_plan_is_offered_back_after_a_crash(
    qtbot, window, settings, demo_path, open_and_wait, monkeypatch, tmp_path
):
    path = demo_path("digits_convnet")
    open_and_wait(window, path)
    plan = Plan(default="uint8").with_rule("conv*", "affine4")
    window.state.set_plan(plan)
    saved = autosave_path(window.autosave.folder, path)
    qtbot.waitUntil(saved.exists, timeout=5_000)  # debounced write
    assert saved.parent.parent == tmp_path  # next to the test's settings file
    assert Plan.from_json(json.loads(saved.read_text())["plan"]) == plan
    assert not [p for p in saved.parent.iterdir() if p.suffix == ".tmp"]

    # "crash": a second window on the same settings, the first never closed
    asked = []
    monkeypatch.setattr(dialogs, "ask_restore", lambda *a: asked.append(a) or True)
    again = _new_window(qtbot, settings)
    open_and_wait(again, path)
    assert asked and asked[0][1] == str(path)
    assert again.state.plan == plan
    again.state.undo()  # restoring is one undoable step
    assert again.state.plan == Plan(default="uint8")
    again.shutdown()


def test_declining_clears_and_saving_clears(
    qtbot, window, settings, demo_path, open_and_wait, monkeypatch, tmp_path
):
    path = demo_path("diabetes_mlp")
    open_and_wait(window, path)
    window.state.set_plan(Plan(default="float16"))
    window.autosave.flush()
    saved = autosave_path(window.autosave.folder, path)
    assert saved.exists()
    monkeypatch.setattr(dialogs, "ask_restore", lambda *a: False)
    again = _new_window(qtbot, settings)
    open_and_wait(again, path)
    assert again.state.plan == Plan(default="uint8") and not saved.exists()

    again.state.set_plan(Plan(default="int8"))
    again.autosave.flush()
    assert saved.exists()
    again.save_plan(str(tmp_path / "plan.json"))
    assert not saved.exists()
    again.shutdown()


def test_reopening_another_model_keeps_each_autosave(
    qtbot, window, demo_path, open_and_wait, monkeypatch
):
    monkeypatch.setattr(dialogs, "ask_restore", lambda *a: True)
    a, b = demo_path("digits_convnet"), demo_path("diabetes_mlp")
    open_and_wait(window, a)
    window.state.set_plan(Plan(default="float16"))
    open_and_wait(window, b)  # the pending autosave of `a` is written before switching
    assert autosave_path(window.autosave.folder, a).exists()
    assert not autosave_path(window.autosave.folder, b).exists()
    open_and_wait(window, a)
    assert window.state.plan == Plan(default="float16")
