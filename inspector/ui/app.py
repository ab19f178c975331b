"""Entry point of the desktop inspector: `run_gui(path)` (called lazily by the CLI)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["APP_NAME", "ORG_NAME", "SETTINGS_ENV", "default_model_path", "make_window", "run_gui"]

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
    exit code."""
    from inspector.core import jit
    from inspector.ui.display_check import display_problem

    problem = display_problem()
    if problem is not None:
        print(f"quant-inspector: {problem}", file=sys.stderr)
        return 2
    jit.get()  # compiled kernels load in the background while the window is built
    from inspector.formats.keras.h5probe import warm

    warm()  # and the HDF5 probe child starts, so opening an .h5 does not wait for it
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORG_NAME)
    app.setApplicationName(APP_NAME)
    from inspector.ui.plot_style import configure_pyqtgraph

    configure_pyqtgraph()
    window = make_window(path)
    window.show()  # type: ignore[attr-defined]
    code = int(app.exec())
    window.shutdown()  # type: ignore[attr-defined]
    return code
