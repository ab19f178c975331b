"""Issue 8's GUI acceptance: the event loop's longest gap while the window opens and previews
a model (run: python benchmarks/gui_stall.py MODEL; bench.py runs it on the 110M model).

The main window is shown offscreen, the model is opened through the same path as File ▸ Open
(a worker reads the header, then the whole-model preview runs on worker threads), and a 10 ms
timer on the GUI thread records the time between its ticks until the preview's totals are in.
Prints one JSON line: seconds to the finished preview, ticks, longest gap in ms.

    python benchmarks/gui_stall.py MODEL --work sensitivity|evaluate [--seconds 20]

With `--work` (issue 16), after the preview the window starts that job as its button would, the
meter records the GUI thread's longest gap while it runs for `--seconds` (or until it ends),
then Esc is pressed (`cancel_work`) and the time until the worker thread has really stopped
is measured; also how many sensitivity rows arrived as partial results and the progress shown.
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


def main(path: str, work: str | None = None, seconds: float = 20.0) -> dict[str, float]:
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
        result = {"seconds": elapsed, "ticks": len(meter.gaps), "worst_ms": meter.worst * 1e3}
        if work:
            result.update(_long_work(app, win, work, seconds))
        win.shutdown()
    return result


def _long_work(app: object, win: object, work: str, seconds: float) -> dict[str, float]:
    """Run `work`, measure the longest GUI gap while it runs, then Esc and the stop latency."""
    from inspector.ui.gap_meter import GapMeter

    ev = win.evaluation  # type: ignore[attr-defined]
    task = ev.analysis if work == "sensitivity" else ev.eval_task
    rows: list[object] = []
    task.partial.connect(rows.append)
    done: list[object] = []
    (ev.sensitivity_done if work == "sensitivity" else ev.evaluated).connect(done.append)
    meter = GapMeter()
    meter.start()
    started = time.perf_counter()
    ev.run_sensitivity("uint8") if work == "sensitivity" else ev.evaluate()
    first_row = None
    while time.perf_counter() - started < seconds and not done:
        app.processEvents()  # type: ignore[attr-defined]
        if rows and first_row is None:
            first_row = time.perf_counter() - started
        time.sleep(0.001)
    meter.stop()
    shown = task.bar.format().replace("%p", str(task.bar.value() // 10))
    asked = time.perf_counter()
    win.cancel_work()  # type: ignore[attr-defined]
    status = win.status_label.text()  # type: ignore[attr-defined]
    while task.runner.pool.activeThreadCount():
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.001)
    stop = time.perf_counter() - asked
    return {
        "work": work,
        "work_worst_gap_ms": meter.worst * 1e3,
        "work_seconds": time.perf_counter() - started,
        "finished": bool(done),
        "partial_rows": len(rows),
        "first_row_s": first_row,
        "progress_shown": shown,
        "cancel_to_stopped_ms": stop * 1e3,
        "status": status,
    }


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--work", choices=["sensitivity", "evaluate"])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(json.dumps(main(args.model, args.work, args.seconds)))
