"""Screenshots of the size accounting views (issue 16): the main window with its summary, the
Save Quantized dialog and the summary panel, at 1280×800 and 1920×1080.

    python benchmarks/screenshot_sizes.py [-o docs]

Models: the fer Keras .h5 from ../shared/models (optimizer state, Keras stores floats), the
already-quantized nsfwjs TF.js model, and digits_depthwise (channel collapse under uint8).
Runs offscreen; each picture waits for the whole-model preview first.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "models"
MODELS = {
    "fer": SHARED / "keras-h5-fer-emotion" / "emotion_model.hdf5",
    "nsfwjs": SHARED / "tfjs-layers-nsfwjs-mobilenet_v2-u8" / "model.json",
    "depthwise": ROOT / "resources" / "digits_depthwise" / "digits_depthwise.h5",
}
SIZES = ((1280, 800), (1920, 1080))


def _pump(app: object, predicate: object, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not finish")
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.01)


def _settle(app: object, rounds: int = 30) -> None:
    for _ in range(rounds):
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", default=str(ROOT / "docs"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtWidgets import QApplication

    from inspector.ui.plot_style import configure_pyqtgraph

    app = QApplication.instance() or QApplication(sys.argv[:1])
    configure_pyqtgraph()
    for key, path in MODELS.items():
        if not path.exists():
            print(f"skip {key}: {path} missing")
            continue
        for w, h in SIZES:
            _shoot(app, key, path, (w, h), out, dialog=(w, h) == SIZES[0])
    return 0


def _shoot(app: object, key: str, path: Path, size: tuple[int, int], out: Path, dialog: bool):
    """The main window (and, with `dialog`, the Save Quantized dialog) on one model."""
    from PySide6.QtCore import QSettings

    from inspector.ui.export_dialog import ExportDialog
    from inspector.ui.main_window import MainWindow

    ini = str(Path(tempfile.mkdtemp()) / "s.ini")
    window = MainWindow(QSettings(ini, QSettings.Format.IniFormat))
    window.resize(*size)
    window.show()
    window.open_path(str(path))
    state = window.state
    _pump(app, lambda: state.model is not None and state.preview is not None)
    if key == "depthwise":
        state.set_target("tfjs")
        window.summary._fill_targets()
        _pump(app, lambda: not window.preview.runner.busy and state.preview is not None)
        name = "block2_dw/depthwise_kernel:0"
        state.set_selection([name], name)
    _settle(app)
    shot = out / f"sizes-{key}-{size[0]}x{size[1]}.png"
    window.grab().save(str(shot))
    print(f"wrote {shot} ({window.width()}×{window.height()})")
    if dialog:
        box = ExportDialog(state, window.preview.cache, window)
        box.show()
        _pump(app, lambda: box.predicted_bytes is not None)
        _settle(app, 10)
        shot = out / f"sizes-{key}-export-dialog.png"
        box.grab().save(str(shot))
        print(f"wrote {shot}")
        box.reject()
    window.shutdown()
    window.deleteLater()
    _settle(app, 5)


if __name__ == "__main__":
    sys.exit(main())
