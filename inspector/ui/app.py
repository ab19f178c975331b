"""Entry point of the desktop inspector: `run_gui(path)` (called lazily by the CLI)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = [
    "APP_NAME",
    "ORG_NAME",
    "SETTINGS_ENV",
    "after_first_paint",
    "default_model_path",
    "make_window",
    "run_gui",
]

ORG_NAME = "QuantInspector"
APP_NAME = "quant-inspector"
SETTINGS_ENV = "QUANT_INSPECTOR_SETTINGS"
"""Path of an INI file to use instead of the user's settings (tests, portable installs)."""
DEMO_MODEL = Path("digits_convnet") / "tfjs" / "model.json"
"""The TF.js copy of the demo: its own format stores uint8 codes, so a first look at the window
shows what quantizing buys (a Keras .h5 export stores dequantized floats and cannot shrink)."""


def resources_dir() -> Path:
    import inspector

    return Path(inspector.__file__).resolve().parent.parent / "resources"


def default_model_path() -> Path | None:
    """The bundled demo model, or any model found under resources/ when it is missing."""
    root = resources_dir()
    demo = root / DEMO_MODEL
    if demo.is_file():
        return demo
    if not root.is_dir():
        return None
    from inspector.formats.registry import model_suffixes

    for path in sorted(root.rglob("*")):
        if path.is_file() and (
            path.suffix.lower() in model_suffixes() or path.name == "model.json"
        ):
            return path
    return None


def make_window(path: str | None = None, settings: object = None) -> object:
    """Create the main window (a QApplication must exist) and start opening `path` or the demo."""
    from PySide6.QtCore import QSettings

    from inspector.ui.main_window import MainWindow

    if settings is None and os.environ.get(SETTINGS_ENV):
        settings = QSettings(os.environ[SETTINGS_ENV], QSettings.Format.IniFormat)
    window = MainWindow(settings)  # type: ignore[arg-type]
    target = path if path is not None else default_model_path()
    if target is not None:
        window.open_path(target)
    return window


def run_gui(path: str | None = None) -> int:
    """Open the window on `path` (or the bundled demo model), run the event loop, return its
    exit code.

    The window paints first: a plain window with the model's tensor list (`StartupWindow`,
    headers only) is on screen before pyqtgraph and the views load; the full window then takes
    its place. Nothing that competes with that starts before the full window's first paint
    (the compiled kernels' background load holds the GIL for ~1 s while numba imports; the
    HDF5 probe child takes the other core), unless the model to open needs it."""
    from inspector.ui.display_check import display_problem

    problem = display_problem()
    if problem is not None:
        print(f"quant-inspector: {problem}", file=sys.stderr)
        return 2
    if _needs_hdf5(path):
        from inspector.formats.keras.h5probe import warm

        warm()  # the probe child starts now, so opening the .h5 does not wait for it
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORG_NAME)
    app.setApplicationName(APP_NAME)
    from inspector.ui.startup import StartupWindow

    target = path if path is not None else default_model_path()
    startup = StartupWindow(target, _settings())
    windows: list[object] = []

    def full_window() -> None:
        from inspector.ui.plot_style import configure_pyqtgraph

        configure_pyqtgraph()
        window = make_window(path)
        window.setGeometry(startup.geometry())  # type: ignore[attr-defined]
        after_first_paint(window, _start_background_work)
        window.show()  # type: ignore[attr-defined]
        startup.close()
        startup.deleteLater()
        windows.append(window)

    after_first_paint(startup, full_window)
    startup.show()
    code = int(app.exec())
    for window in windows:
        window.shutdown()  # type: ignore[attr-defined]
    return code


def _settings() -> object:
    from PySide6.QtCore import QSettings

    if os.environ.get(SETTINGS_ENV):
        return QSettings(os.environ[SETTINGS_ENV], QSettings.Format.IniFormat)
    return QSettings()


def _needs_hdf5(path: str | None) -> bool:
    return path is not None and Path(path).suffix.lower() in (".h5", ".hdf5", ".keras")


def _start_background_work() -> None:
    """What the window wants soon but not before it is on screen: the compiled kernels (the
    numpy paths serve until they are loaded) and the HDF5 probe child (for a later .h5)."""
    from inspector.core import jit
    from inspector.formats.keras.h5probe import warm

    jit.get()
    warm()


def after_first_paint(widget: object, callback: object) -> None:
    """Call `callback()` once, on the event loop's next turn after `widget` (or any child)
    first painted: work started then cannot delay what the user first sees."""
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication

    class _FirstPaint(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and not self.fired:
                self.fired = True
                QTimer.singleShot(0, callback)  # type: ignore[arg-type]
                QTimer.singleShot(0, self.remove)
            return False

        def remove(self) -> None:
            app = QApplication.instance()
            if app is not None:
                app.removeEventFilter(self)
            self.deleteLater()

    watcher = _FirstPaint(widget)  # type: ignore[arg-type]
    watcher.fired = False  # type: ignore[attr-defined]
    app = QApplication.instance()
    if app is not None:
        app.installEventFilter(watcher)
