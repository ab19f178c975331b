"""One whole process that opens a window and reports when it first painted (issue 17).

    python benchmarks/perf/first_paint.py --bare     # PySide6 + pyqtgraph, one plot window
    python benchmarks/perf/first_paint.py MODEL      # `quant-inspector MODEL`, as the CLI runs
    python benchmarks/perf/first_paint.py --full MODEL   # until the full window painted

Prints `painted SECONDS` on stdout, seconds since this interpreter started (the process's start
time from /proc, so interpreter start-up and every import count), then exits at once. For the
app, "painted" means the tensor table painted with the model's rows in it: the window a user
can read, not an empty frame (since issue 17 the startup window's list; `--full` waits for
the full window, plots and scheme editor included). Run offscreen (QT_QPA_PLATFORM=offscreen)
on a headless machine.
"""

from __future__ import annotations

import os
import sys


def _since_start() -> float:
    """Seconds since this process started (field 22 of /proc/self/stat, in clock ticks)."""
    with open("/proc/self/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
    with open("/proc/uptime") as fh:
        uptime = float(fh.read().split()[0])
    return uptime - started


def _done() -> None:
    print(f"painted {_since_start():.3f}", flush=True)
    os._exit(0)


def bare() -> None:
    import pyqtgraph as pg
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication, QMainWindow

    app = QApplication(sys.argv[:1])
    win = QMainWindow()
    plot = pg.PlotWidget()
    plot.plot([0, 1, 2, 3], [0, 1, 0, 1])
    win.setCentralWidget(plot)
    win.resize(1280, 800)

    class Watch(QObject):
        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint:
                _done()
            return False

    watch = Watch()
    plot.viewport().installEventFilter(watch)
    win.show()
    app.exec()


def app(model: str, full: bool = False) -> None:
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QAbstractItemView, QApplication

    qapp = QApplication(sys.argv[:1])

    class Watch(QObject):
        """The first paint of a table viewport whose view shows rows."""

        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            view = obj.parent() if event.type() == QEvent.Type.Paint else None
            if (
                isinstance(view, QAbstractItemView)
                and view.model() is not None
                and view.model().rowCount() > 0
                and view.isVisible()
                and (not full or hasattr(view.window(), "state"))
            ):
                _done()
            return False

    watch = Watch()
    qapp.installEventFilter(watch)
    from inspector.cli import main

    main(["gui", model])


if __name__ == "__main__":
    if sys.argv[1:] == ["--bare"]:
        bare()
    elif sys.argv[1] == "--full":
        app(sys.argv[2], full=True)
    else:
        app(sys.argv[1])
    print("exited without painting", file=sys.stderr)
    sys.exit(1)
