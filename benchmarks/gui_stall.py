"""Issue 8's GUI acceptance: the event loop's longest gap while the window opens and previews
a model (run: python benchmarks/gui_stall.py MODEL; bench.py runs it on the 110M model).

The main window is shown offscreen, the model is opened through the same path as File ▸ Open
(a worker reads the header, then the whole-model preview runs on worker threads), and a 10 ms
timer on the GUI thread records the time between its ticks until the preview's totals are in.
Prints one JSON line: seconds to the finished preview, ticks, longest gap in ms.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(path: str) -> dict[str, float]:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from inspector.core import jit
    from inspector.ui.gap_meter import GapMeter
    from inspector.ui.main_window import MainWindow
    from inspector.ui.plot_style import configure_pyqtgraph

    app = QApplication.instance() or QApplication([])
    jit.wait(300)  # measure a preview, not numba's one-time load
    configure_pyqtgraph()
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        win = MainWindow(settings)
        win.resize(1400, 900)
        win.show()
        deadline = time.perf_counter() + 0.5
        while time.perf_counter() < deadline:  # first paint is not part of the measurement
            app.processEvents()
        meter = GapMeter()
        meter.start()
        started = time.perf_counter()
        win.open_path(path)
        limit = started + 600
        while win.state.preview is None or win.state.model is None:
            app.processEvents()
            if time.perf_counter() > limit:
                raise SystemExit(f"{path}: no preview after 600 s")
            time.sleep(0.001)
        elapsed = time.perf_counter() - started
        settle = time.perf_counter() + 0.3  # totals, chart and table repaint after the last tensor
        while time.perf_counter() < settle:
            app.processEvents()
            time.sleep(0.001)
        meter.stop()
        win.shutdown()
    return {"seconds": elapsed, "ticks": len(meter.gaps), "worst_ms": meter.worst * 1e3}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python benchmarks/gui_stall.py MODEL")
    print(json.dumps(main(sys.argv[1])))
