"""Window shell: opening models, errors keep the old model, settings, undo, plans."""

from __future__ import annotations

import pytest

from inspector.core.plan import Plan
from inspector.core.preview import run_preview
from inspector.ui import dialogs
from inspector.ui.controllers import resolve_target


@pytest.mark.parametrize(
    "name", ["digits_convnet", "diabetes_mlp", "digits_depthwise", "digits_convnet_tfjs"]
)
def test_open_each_demo_model(qtbot, window, name, demo_path, open_and_wait):
    path = demo_path(name)
    open_and_wait(window, path)
    state = window.state
    assert state.model is not None and state.model.path == path
    assert window.tensors.model.rowCount() > 0
    assert len(state.tensor_previews) == len(state.model)
    from inspector.formats.naming import model_name

    assert window.windowTitle().startswith(model_name(state.model) + " (")
    assert window.recent_files()[0] == str(path)


def test_summary_equals_cli_preview_and_undo_restores(qtbot, window, demo_path, open_and_wait):
    path = demo_path("digits_convnet")
    open_and_wait(window, path)
    state = window.state
    target = resolve_target(state.target_name)
    from inspector.formats.compare import annotate_total

    def cli_total():
        total = run_preview(state.model, state.plan, target).total
        return annotate_total(total, state.model, state.plan, state.target_name)

    before = dict(window.summary.shown_total)
    assert before == cli_total()

    name = next(t.name for t in state.model if t.info.is_float and len(t.info.shape) > 1)
    index = window.tensors.model.index_of(name, 4)
    with qtbot.waitSignal(state.preview_updated, timeout=20_000):
        assert window.tensors.model.setData(index, "affine4")
    assert state.spec_for(name) == "affine4"
    after = dict(window.summary.shown_total)
    assert after != before
    expected = cli_total()
    assert after == expected
    assert (
        window.summary.values["quantized_bytes"]
        .text()
        .endswith(f"({expected['quantized_bytes']:,} B)")
    )

    with qtbot.waitSignal(state.preview_updated, timeout=20_000):
        window.undo_action.trigger()
    assert state.spec_for(name) == "uint8"
    assert dict(window.summary.shown_total) == before
    with qtbot.waitSignal(state.preview_updated, timeout=20_000):
        window.redo_action.trigger()
    assert dict(window.summary.shown_total) == after


def test_invalid_scheme_is_refused(qtbot, window, demo_path, open_and_wait):
    open_and_wait(window, demo_path("digits_convnet"))
    name = next(t.name for t in window.state.model if t.info.is_float)
    index = window.tensors.model.index_of(name, 4)
    plan = window.state.plan
    assert not window.tensors.model.setData(index, "uint7:clip=banana")
    assert window.state.plan is plan


def test_corrupt_file_shows_error_and_keeps_model(
    qtbot, window, tmp_path, monkeypatch, demo_path, open_and_wait
):
    path = demo_path("digits_convnet")
    open_and_wait(window, path)
    old = window.state.model
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 200)
    shown = []
    monkeypatch.setattr(dialogs, "show_error", lambda parent, title, text: shown.append(text))
    window.open_path(bad)
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert str(bad) in shown[0]
    assert len(shown[0].split("\n\n", 1)[1]) > 0
    assert window.state.model is old
    assert len(window.state.model) > 0 and window.state.model[next(iter(old.tensors))].load().size


def test_settings_persist_recent_and_geometry(qtbot, settings, window, demo_path, open_and_wait):
    path = demo_path("digits_convnet")
    open_and_wait(window, path)
    window.resize(1100, 700)
    window.close()
    from inspector.ui.main_window import MainWindow

    again = MainWindow(settings)
    qtbot.addWidget(again)
    assert again.recent_files()[0] == str(path)
    # the offscreen screen is 800 px wide, so Qt clamps the restored width; height is kept
    assert again.size().height() == 700
    assert next(a.text() for a in again.recent_menu.actions()) == str(path)
    assert settings.value("last_folder") == str(path.parent)
    again.shutdown()


def test_save_and_load_plan(qtbot, window, tmp_path, demo_path, open_and_wait):
    open_and_wait(window, demo_path("digits_convnet"))
    plan = Plan(default="int8").with_rule("*bias*", "float16")
    window.state.set_plan(plan)
    out = tmp_path / "plan.json"
    users = tmp_path / "plan.json.tmp"  # a file of the user's that a naive temp name would eat
    users.write_text("mine")
    window.save_plan(str(out))
    assert Plan.loads(out.read_text()) == plan
    assert users.read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".qi-")]  # no workspace left
    window.state.set_plan(Plan())
    window.load_plan(str(out))
    assert window.state.plan == plan


def test_bad_plan_file_reports_error(qtbot, window, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(dialogs, "show_error", lambda parent, title, text: shown.append(text))
    bad = tmp_path / "plan.json"
    bad.write_text('{"default": "uint7"}')
    plan = window.state.plan
    window.load_plan(str(bad))
    assert shown and str(bad) in shown[0]
    assert window.state.plan == plan


def test_drop_folder_opens_tfjs(qtbot, window, demo_path):
    from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    folder = demo_path("digits_convnet_tfjs").parent
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    event = QDropEvent(
        QPoint(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(window.state.model_changed, timeout=20_000):
        window.dropEvent(event)
    assert window.state.model.format == "tfjs"
