"""Tensor tree (layer → tensors) as a Qt item model, its glob filter proxy and scheme delegate.

The model reads `AppState` and writes plan edits back to it (scheme column); it holds no
numbers of its own. Rows whose error is poor (see `state.poor_reasons`) get a red tint and a
tooltip that says why.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from inspector.core.errors import InspectorError
from inspector.core.preview import summarize
from inspector.core.schemes import parse_scheme
from inspector.ui.formatting import format_bytes, format_count, format_db, format_shape
from inspector.ui.state import AppState, poor_reasons
from inspector.ui.table_delegates import (
    NAME_ROLE,
    SORT_ROLE,
    SchemeDelegate,
    SchemeValidator,
    TensorFilterProxy,
)

_NO_PARENT = QModelIndex()

__all__ = [
    "COLUMNS",
    "NAME_ROLE",
    "SORT_ROLE",
    "SchemeDelegate",
    "SchemeValidator",
    "TensorFilterProxy",
    "TensorTreeModel",
]

COLUMNS = (
    "Name",
    "Shape",
    "Dtype",
    "Params",
    "Scheme",
    "Bytes → stored",
    "SQNR",
    "RMSE/scale",
    "gzip ×",
    "Sensitivity",
)
(
    COL_NAME,
    COL_SHAPE,
    COL_DTYPE,
    COL_PARAMS,
    COL_SCHEME,
    COL_BYTES,
    COL_SQNR,
    COL_RMSE,
    COL_GZIP,
    COL_SENS,
) = range(len(COLUMNS))

_POOR_BG = QBrush(QColor(255, 222, 222))
_STALE_FG = QBrush(QColor(150, 150, 150))
_LAYER_FONT = QFont()
_LAYER_FONT.setBold(True)

_TOOLTIPS = {
    COL_BYTES: "Bytes of the original values → bytes stored in the export format",
    COL_SQNR: "Signal-to-quantization-noise ratio: 20·log10(‖w‖/‖w−w′‖). Higher is better.",
    COL_RMSE: "RMS error divided by the quantization step; ≈0.29 for uniform rounding, >0.7 poor",
    COL_GZIP: "Stored bytes ÷ gzipped bytes: how much a web server's gzip saves on top",
    COL_SENS: "Output damage when only this layer is quantized (Output tab ▸ Run sensitivity): "
    "accuracy points lost, or output noise when the data has no labels",
}


class _Node:
    __slots__ = ("children", "layer", "name", "parent", "row")

    def __init__(self, parent: _Node | None, row: int, name: str = "", layer: str = "") -> None:
        self.parent = parent
        self.row = row
        self.name = name
        self.layer = layer
        self.children: list[_Node] = []

    @property
    def is_layer(self) -> bool:
        return bool(self.layer) and not self.name

    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.children) if self.is_layer else (self.name,)


class TensorTreeModel(QAbstractItemModel):
    """Layers (in file order) with their tensors; tensors without a layer sit at the top level."""

    def __init__(self, state: AppState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._root = _Node(None, 0)
        self._by_name: dict[str, _Node] = {}
        state.model_changed.connect(self._rebuild)
        state.plan_changed.connect(self._refresh_all)
        state.target_changed.connect(self._refresh_all)
        state.threshold_changed.connect(self._refresh_all)
        state.tensor_preview_updated.connect(self._refresh_tensor)
        state.sensitivity_changed.connect(self._refresh_all)
        self._rebuild()

    # -- structure --------------------------------------------------------------------------
    def _rebuild(self) -> None:
        self.beginResetModel()
        root = _Node(None, 0)
        layers: dict[str, _Node] = {}
        self._by_name = {}
        for tensor in self.state.model or ():
            layer = tensor.info.layer
            parent = root
            if layer:
                parent = layers.get(layer)
                if parent is None:
                    parent = layers[layer] = _Node(root, len(root.children), layer=layer)
                    root.children.append(parent)
            node = _Node(parent, len(parent.children), tensor.name, layer)
            parent.children.append(node)
            self._by_name[tensor.name] = node
        self._root = root
        self.endResetModel()

    def index_of(self, name: str, column: int = 0) -> QModelIndex:
        node = self._by_name.get(name)
        return QModelIndex() if node is None else self.createIndex(node.row, column, node)

    def index(self, row: int, column: int, parent: Any = _NO_PARENT) -> QModelIndex:
        node = self._node(parent)
        if 0 <= row < len(node.children) and 0 <= column < len(COLUMNS):
            return self.createIndex(row, column, node.children[row])
        return QModelIndex()

    def parent(self, index: Any = _NO_PARENT) -> QModelIndex:  # type: ignore[override]
        if not index.isValid():
            return QModelIndex()
        node = index.internalPointer().parent
        if node is None or node is self._root:
            return QModelIndex()
        return self.createIndex(node.row, 0, node)

    def rowCount(self, parent: Any = _NO_PARENT) -> int:
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self._node(parent).children)

    def columnCount(self, parent: Any = _NO_PARENT) -> int:
        return len(COLUMNS)

    def _node(self, index: QModelIndex | QPersistentModelIndex) -> _Node:
        return index.internalPointer() if index.isValid() else self._root

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return _TOOLTIPS.get(section)
        return None

    def flags(self, index: Any) -> Qt.ItemFlag:
        flags = super().flags(index)
        if index.isValid() and index.column() == COL_SCHEME and self._editable(self._node(index)):
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def _editable(self, node: _Node) -> bool:
        infos = [self.state.model[n].info for n in node.names()] if self.state.model else []
        return any(i.is_float and not i.optimizer for i in infos)

    # -- refresh ----------------------------------------------------------------------------
    def _refresh_all(self) -> None:
        if self._root.children:
            self._emit_rows(self._root)

    def _emit_rows(self, parent: _Node) -> None:
        pidx = QModelIndex() if parent is self._root else self.createIndex(parent.row, 0, parent)
        last = len(parent.children) - 1
        self.dataChanged.emit(self.index(0, 0, pidx), self.index(last, len(COLUMNS) - 1, pidx))
        for child in parent.children:
            if child.children:
                self._emit_rows(child)

    def _refresh_tensor(self, name: str) -> None:
        node = self._by_name.get(name)
        while node is not None and node is not self._root:
            self.dataChanged.emit(
                self.createIndex(node.row, 0, node),
                self.createIndex(node.row, len(COLUMNS) - 1, node),
            )
            node = node.parent

    # -- data -------------------------------------------------------------------------------
    def data(self, index: Any, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self.state.model is None:
            return None
        node = self._node(index)
        col = index.column()
        if role == NAME_ROLE:
            return node.names() if node.is_layer else node.name
        if node.is_layer:
            return self._layer_data(node, col, role)
        return self._tensor_data(node.name, col, role)

    def _current_tp(self, name: str) -> tuple[Any, bool]:
        """The tensor's preview and whether it matches the current plan (else it is stale)."""
        tp = self.state.tensor_previews.get(name)
        return tp, tp is not None and tp.scheme == self.state.spec_for(name)

    def _tensor_data(self, name: str, col: int, role: int) -> Any:
        info = self.state.model[name].info
        tp, fresh = self._current_tp(name)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._tensor_text(info, tp, col)
        if role == Qt.ItemDataRole.EditRole:
            return self.state.spec_for(name) if col == COL_SCHEME else None
        if role == SORT_ROLE:
            return self._tensor_sort(info, tp, col)
        reasons = poor_reasons(tp, self.state.sqnr_threshold_db) if fresh else []
        if role == Qt.ItemDataRole.BackgroundRole and reasons:
            return _POOR_BG
        if role == Qt.ItemDataRole.ForegroundRole and tp is not None and not fresh and col >= 5:
            return _STALE_FG
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tensor_tooltip(name, tp, reasons)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (
            COL_PARAMS,
            COL_SQNR,
            COL_RMSE,
            COL_SENS,
        ):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _tensor_text(self, info: Any, tp: Any, col: int) -> str | None:
        if col == COL_NAME:
            prefix = info.layer + "/"
            short = info.name[len(prefix) :] if info.layer and info.name.startswith(prefix) else ""
            return short or info.name
        if col == COL_SHAPE:
            return format_shape(info.shape)
        if col == COL_DTYPE:
            return info.dtype + (" (stored " + info.stored.scheme + ")" if info.stored else "")
        if col == COL_PARAMS:
            return format_count(info.size)
        if col == COL_SCHEME:
            spec = self.state.spec_for(info.name)
            return spec if tp is None or tp.skipped is None else f"{spec} (kept: {tp.skipped})"
        if col == COL_SENS:
            value = self.state.sensitivity.get(info.name)
            return None if value is None else value[1]
        if tp is None:
            return "…" if col >= COL_BYTES else None
        if col == COL_BYTES:
            return f"{format_bytes(tp.original_bytes)} → {format_bytes(tp.quantized_bytes)}"
        if col == COL_SQNR:
            return format_db(tp.sqnr_db)
        if col == COL_RMSE:
            return "–" if tp.rmse_over_scale is None else f"{tp.rmse_over_scale:.3f}"
        if col == COL_GZIP:
            return f"{tp.quantized_bytes / tp.gzip_bytes:.2f}×" if tp.gzip_bytes else "–"
        return None

    def _tensor_sort(self, info: Any, tp: Any, col: int) -> Any:
        if col == COL_NAME:
            return info.name
        if col == COL_DTYPE:
            return self._tensor_text(info, tp, col)
        if col in (COL_SHAPE, COL_PARAMS):
            return info.size
        if col == COL_SCHEME:
            return self.state.spec_for(info.name)
        if col == COL_SENS:
            return self.state.sensitivity.get(info.name, (-math.inf, ""))[0]
        if tp is None:
            return math.inf
        if col == COL_BYTES:
            return tp.quantized_bytes
        if col == COL_SQNR:
            return tp.sqnr_db
        if col == COL_RMSE:
            return -1.0 if tp.rmse_over_scale is None else tp.rmse_over_scale
        return tp.quantized_bytes / tp.gzip_bytes if tp.gzip_bytes else 0.0

    def _tensor_tooltip(self, name: str, tp: Any, reasons: list[str]) -> str:
        lines = [name]
        if tp is not None:
            if tp.stored and tp.stored != tp.scheme:
                lines.append(f"stored as {tp.stored}")
            if tp.note:
                lines.append(tp.note)
            if tp.skipped:
                lines.append(f"kept as is: {tp.skipped}")
        lines += [f"⚠ {r}" for r in reasons]
        return "\n".join(lines)

    def _layer_data(self, node: _Node, col: int, role: int) -> Any:
        if role == Qt.ItemDataRole.FontRole and col == COL_NAME:
            return _LAYER_FONT
        names = node.names()
        infos = [self.state.model[n].info for n in names]
        if role == Qt.ItemDataRole.EditRole and col == COL_SCHEME:
            return self.state.spec_for(names[0])
        if role not in (Qt.ItemDataRole.DisplayRole, SORT_ROLE):
            return None
        params = sum(i.size for i in infos)
        if col == COL_NAME:
            return node.layer
        if col == COL_PARAMS:
            return format_count(params) if role == Qt.ItemDataRole.DisplayRole else params
        if col == COL_SCHEME:
            specs = {self.state.spec_for(n) for n in names}
            return specs.pop() if len(specs) == 1 else "(mixed)"
        if col == COL_SENS:
            known = [self.state.sensitivity[n] for n in names if n in self.state.sensitivity]
            best = max(known, default=None)
            return best if best is None else best[role == Qt.ItemDataRole.DisplayRole]
        tps = [self.state.tensor_previews.get(n) for n in names]
        if col < COL_BYTES or any(tp is None for tp in tps):
            return None
        total = summarize(tps)
        if col == COL_BYTES:
            if role == SORT_ROLE:
                return total["quantized_bytes"]
            before, after = total["original_bytes"], total["quantized_bytes"]
            return f"{format_bytes(before)} → {format_bytes(after)}"
        if col == COL_SQNR:
            return total["sqnr_db"] if role == SORT_ROLE else format_db(total["sqnr_db"])
        return None

    def setData(self, index: Any, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        """Scheme edits become per-tensor overrides (one undo step); invalid specs are refused."""
        if not index.isValid() or index.column() != COL_SCHEME or self.state.model is None:
            return False
        spec = str(value).strip()
        try:
            spec = parse_scheme(spec).spec
        except (InspectorError, ValueError):
            return False
        node = self._node(index)
        names = [n for n in node.names() if self.state.model[n].info.is_float]
        self.state.override(names, spec)
        return True
