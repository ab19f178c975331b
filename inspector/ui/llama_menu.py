"""The Model menu: the file's metadata (every GGUF key/value, each tensor's GGUF dims and block
axis) and llama-quantize's file types (Q4_K_M, …) applied as an ordinary, undoable plan.

A mixture is computed from tensor names, shapes and header metadata only (no tensor is read),
so it runs on the GUI thread; the preview of the new plan runs on the workers as for any edit.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMainWindow,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from inspector.core.errors import InspectorError
from inspector.core.formatting import format_shape
from inspector.core.model import Model
from inspector.ui import dialogs

__all__ = ["MetadataDialog", "add_model_menu", "apply_mixture", "metadata_rows", "tensor_rows"]


def metadata_rows(model: Model) -> list[tuple[str, str]]:
    """(key, value text) of the format's metadata: a GGUF's key/values in file order (arrays
    summarised), else the model's scalar metadata."""
    meta = model.metadata.get("gguf_metadata")
    items = meta.items() if isinstance(meta, dict) else model.metadata.items()
    rows = []
    for key, value in items:
        if isinstance(value, (str, int, float, bool)) or value is None:
            rows.append((str(key), str(value)))
        elif isinstance(value, (dict, list, tuple)):
            try:
                rows.append((str(key), json.dumps(value, default=str)[:300]))
            except (TypeError, ValueError):
                continue
    return rows


def tensor_rows(model: Model) -> list[tuple[str, str, str, str, str]]:
    """(name, row-major shape, GGUF ne, stored type, block axis) of every tensor."""
    rows = []
    for t in model:
        info = t.info
        ne = "[" + ", ".join(str(n) for n in reversed(info.shape)) + "]"
        stored = info.stored.scheme if info.stored is not None else info.dtype
        params = info.stored.params if info.stored is not None else {}
        if "block_axis" in params:
            block = f"axis {params['block_axis']} (ne[0]), blocks of {params['block_size']}"
        else:
            block = "–"
        rows.append((info.name, format_shape(info.shape), ne, stored, block))
    return rows


def _table(headers: list[str], rows: list[tuple[str, ...]]) -> QTableWidget:
    table = QTableWidget(len(rows), len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            item = QTableWidgetItem(text)
            item.setToolTip(text)
            table.setItem(r, c, item)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    return table


class MetadataDialog(QDialog):
    """Model ▸ Metadata…: two read-only tables, key/values and tensors."""

    def __init__(self, model: Model, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{model.path.name} — metadata ({model.format})")
        self.resize(900, 600)
        self.tabs = QTabWidget()
        self.keys = _table(["Key", "Value"], list(metadata_rows(model)))
        self.tensors = _table(
            ["Tensor", "Shape (row-major)", "GGUF ne (fastest first)", "Stored", "Block axis"],
            list(tensor_rows(model)),
        )
        self.tabs.addTab(self.keys, f"Key/values ({self.keys.rowCount()})")
        self.tabs.addTab(self.tensors, f"Tensors ({self.tensors.rowCount()})")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(buttons)


def apply_mixture(window: Any, ftype: str) -> str:
    """Make llama-quantize's `ftype` types the window's plan (undoable); returns the status
    line, or raises InspectorError (no model, a type we cannot encode)."""
    from inspector.formats.gguf.presets import mixture_plan

    model = window.state.model
    if model is None:
        raise InspectorError("open a model first")
    plan = mixture_plan(model, ftype)
    window.state.set_plan(plan)
    counts = Counter(plan.scheme_for(t.info).name for t in model if t.info.is_float)
    parts = ", ".join(f"{n} {s}" for s, n in counts.most_common())
    return f"Plan: llama-quantize {ftype.upper()} mixture ({parts}); edit any tensor as usual"


def add_model_menu(window: QMainWindow) -> None:
    """Add the Model menu to the main window's menu bar."""
    from inspector.formats.gguf.presets import MIXTURES

    menu = window.menuBar().addMenu("&Model")
    meta = menu.addAction("&Metadata…")
    meta.triggered.connect(lambda: _show_metadata(window))
    mixtures = menu.addMenu("Apply llama.cpp &mixture")
    for ftype in MIXTURES:
        action = mixtures.addAction(ftype)
        action.triggered.connect(lambda _=False, f=ftype: _apply(window, f))


def _show_metadata(window: Any) -> None:
    model = window.state.model
    if model is None:
        return
    dialog = MetadataDialog(model, window)
    window._metadata_dialog = dialog  # reachable for tests and kept alive while open
    dialog.show()


def _apply(window: Any, ftype: str) -> None:
    try:
        text = apply_mixture(window, ftype)
    except InspectorError as exc:
        dialogs.show_error(window, f"Cannot apply {ftype}", str(exc))
        return
    window.status_label.setText(text)
