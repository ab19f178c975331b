"""`run_gui` (the CLI's entry point): opens the demo model, runs the loop, returns the code."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from inspector.ui import app as app_module


def test_default_model_is_the_bundled_demo():
    path = app_module.default_model_path()
    assert path is not None and path.parts[-3:] == ("digits_convnet", "tfjs", "model.json")


def test_run_gui_opens_demo_and_returns_exit_code(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv(app_module.SETTINGS_ENV, str(tmp_path / "settings.ini"))
    seen = {}

    def check_and_quit() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if hasattr(w, "state")]
        win = windows[-1]
        if win.state.preview is None:
            QTimer.singleShot(50, check_and_quit)
            return
        seen["path"] = win.state.model.path
        seen["tensors"] = len(win.state.tensor_previews)
        QApplication.instance().exit(3)

    QTimer.singleShot(50, check_and_quit)
    assert app_module.run_gui(None) == 3
    assert seen["path"] == app_module.default_model_path()
    assert seen["tensors"] > 0


def test_per_channel_view_and_log_toggle(qtbot, window, demo_path, open_and_wait):
    open_and_wait(window, demo_path("digits_convnet"))
    state = window.state
    name = next(t.name for t in state.model if len(t.info.shape) == 4)
    state.set_selection([name], name)
    state.override([name], "int8")
    view = window.histogram
    qtbot.waitUntil(lambda: view.detail is not None and view.detail.spec == "int8", timeout=20_000)
    channels = state.model[name].info.shape[-1]
    assert view.channel_combo.count() == channels + 1
    view.channel_combo.setCurrentIndex(3)
    view.channel_combo.activated.emit(3)
    qtbot.waitUntil(lambda: view.detail.channel == 2, timeout=20_000)
    _, counts = view.hist_item.getData()
    assert counts.sum() == state.model[name].info.size // channels
    view.log_box.setChecked(True)
    assert view.plot.getAxis("left").labelText == "count (log scale)"
