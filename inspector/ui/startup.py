"""The window's first paint: the model's tensor list, before the inspector's plots load.

Building the full window imports pyqtgraph and every view and creates a dozen plots (1-2 s on
the two-core reference machine, more than starting Qt itself). A user who starts the program
wants to see the model first, so `run_gui` shows this plain Qt window at once with the tensor
list read from the file's headers (no values are read) and a status line saying what is still
loading; the full window then takes its place at the same position and size.
"""

from __future__ import annotations

import math
import os

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QHeaderView, QLabel, QMainWindow, QTableView

__all__ = ["StartupWindow"]

LOADING = "Loading the plots, the scheme editor and the preview…"


class StartupWindow(QMainWindow):
    """Title, tensor list (name, shape, dtype, parameters) and a status line."""

    def __init__(self, path: str | os.PathLike[str] | None, settings: QSettings) -> None:
        super().__init__()
        self.setWindowTitle("Quantization Inspector")
        self.rows = QStandardItemModel(0, 4, self)
        self.rows.setHorizontalHeaderLabels(["tensor", "shape", "dtype", "parameters"])
        self.table = QTableView()
        self.table.setModel(self.rows)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.setCentralWidget(self.table)
        self.status = QLabel(LOADING)
        self.statusBar().addWidget(self.status, 1)
        geometry = settings.value("geometry")
        if isinstance(geometry, QByteArray | bytes) and geometry:
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 900)
        if path is not None:
            self._list(os.fspath(path))

    def _list(self, path: str) -> None:
        """Fill the table from the model's headers; a file that does not open says so here
        and the full window reports why."""
        from inspector.core.errors import InspectorError
        from inspector.formats import open_model

        try:
            with open_model(path) as model:
                infos = [t.info for t in model]
                kind = model.format
        except (InspectorError, OSError, ValueError):
            self.status.setText(f"Could not open {path}; {LOADING[0].lower()}{LOADING[1:]}")
            return
        name = os.path.basename(path.rstrip("/\\")) or path
        self.setWindowTitle(f"{name} — Quantization Inspector")
        for info in infos:
            shape = "×".join(map(str, info.shape)) or "scalar"
            size = QStandardItem(f"{math.prod(info.shape):,}")
            size.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.rows.appendRow([QStandardItem(info.name), QStandardItem(shape),
                                 QStandardItem(info.dtype), size])  # fmt: skip
        self.status.setText(f"{path} ({kind}, {len(infos)} tensors) — {LOADING}")
