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
        if not windows or windows[-1].state.preview is None:  # the startup list comes first
            QTimer.singleShot(50, check_and_quit)
            return
        win = windows[-1]
        seen["path"] = win.state.model.path
        seen["tensors"] = len(win.state.tensor_previews)
        QApplication.instance().exit(3)

    QTimer.singleShot(50, check_and_quit)
    assert app_module.run_gui(None) == 3
    assert seen["path"] == app_module.default_model_path()
    assert seen["tensors"] > 0


def test_tensor_list_paints_before_the_full_window(qtbot, tmp_path, monkeypatch):
    """The first window on screen lists the model's tensors from its headers and says what is
    still loading; the full window then replaces it at the same place and size."""
    from inspector.formats import open_model
    from inspector.ui.startup import LOADING, StartupWindow

    monkeypatch.setenv(app_module.SETTINGS_ENV, str(tmp_path / "settings.ini"))
    demo = app_module.default_model_path()
    with open_model(demo) as model:
        names = [t.name for t in model]
    seen: dict = {}
    before = set(QApplication.topLevelWidgets())

    def new_windows() -> list:
        return [w for w in QApplication.topLevelWidgets() if w.isVisible() and w not in before]

    def first() -> None:
        tops = new_windows()
        startup = [w for w in tops if isinstance(w, StartupWindow)]
        if not startup:
            QTimer.singleShot(5, first)
            return
        s = startup[0]
        seen["rows"] = [s.rows.item(r, 0).text() for r in range(s.rows.rowCount())]
        seen["status"] = s.status.text()
        seen["full_yet"] = any(hasattr(w, "state") for w in tops)
        seen["geometry"] = s.geometry()
        QTimer.singleShot(5, full)

    def full() -> None:
        tops = new_windows()
        wins = [w for w in tops if hasattr(w, "state")]
        if not wins:
            QTimer.singleShot(5, full)
            return
        seen["full_geometry"] = wins[0].geometry()
        seen["startup_left"] = any(isinstance(w, StartupWindow) for w in tops)
        QApplication.instance().exit(0)

    QTimer.singleShot(0, first)
    assert app_module.run_gui(None) == 0
    assert seen["rows"] == names
    assert LOADING in seen["status"]
    assert not seen["full_yet"]
    assert seen["full_geometry"] == seen["geometry"]
    assert not seen["startup_left"]


def test_startup_window_says_when_the_file_does_not_open(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from inspector.ui.startup import StartupWindow

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    win = StartupWindow(bad, QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    assert win.rows.rowCount() == 0
    assert win.status.text().startswith(f"Could not open {bad}")


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
