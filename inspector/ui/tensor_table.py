"""Tensor tree (layer → tensors) as a Qt item model, its glob filter proxy and scheme delegate.

The model reads `AppState` and writes plan edits back to it (scheme column); it holds no
numbers of its own. Rows whose error is poor (see `state.poor_reasons`) get a red tint and a
tooltip that says why.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QApplication, QStyle

from inspector.core.collapse import collapse_flagged
from inspector.core.errors import InspectorError
from inspector.core.formatting import format_bytes, format_count, format_db, format_shape
from inspector.core.preview import summarize
from inspector.core.schemes import parse_scheme
from inspector.ui.state import AppState, poor_reasons
from inspector.ui.table_delegates import (
    NAME_ROLE,
    OPTIMIZER_ROLE,
    SORT_ROLE,
    SPEC_ROLE,
    SchemeDelegate,
    SchemeValidator,
    TensorFilterProxy,
)

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
_DISPLAY = Qt.ItemDataRole.DisplayRole
_FOREGROUND = Qt.ItemDataRole.ForegroundRole
_RIGHT = (COL_PARAMS, COL_SQNR, COL_RMSE, COL_SENS)
_RIGHT_ALIGN = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

_TOOLTIPS = {
    COL_BYTES: "Bytes the input stores (as on disk) → bytes the chosen export format writes; "
    "(as float32) when the format re-stores the scheme in another type",
    COL_SQNR: "Signal-to-quantization-noise ratio: 20·log10(‖w‖/‖w−w′‖). Higher is better. "
    "A warning icon: output channels keep ≤ 2 levels (a per-tensor grid too coarse for them; "
    "the tooltip says how many)",
    COL_RMSE: "RMS error divided by the quantization step; ≈0.29 for uniform rounding, >0.7 poor",
    COL_GZIP: "Stored bytes ÷ gzipped bytes: how much a web server's gzip saves on top",
    COL_SENS: "Output damage when only this layer is quantized (Output tab ▸ Run sensitivity): "
    "accuracy points lost, or output noise when the data has no labels",
}


_DECORATION = Qt.ItemDataRole.DecorationRole
_ICON: list[QIcon] = []


def _warning_icon() -> QIcon:
    """The style's warning icon, made once (a QApplication exists by the time rows fill)."""
    if not _ICON:
        style = QApplication.style()
        _ICON.append(style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning))
    return _ICON[0]


def _plain_row() -> list[QStandardItem]:
    """A row of read-only cells (the scheme cell is made editable where it applies)."""
    row = [QStandardItem() for _ in COLUMNS]
    for item in row:
        item.setEditable(False)
    return row


class _Layer:
    """A layer row: its name and its tensors' names (file order)."""

    __slots__ = ("layer", "tensor_names")

    def __init__(self, layer: str) -> None:
        self.layer = layer
        self.tensor_names: list[str] = []

    def names(self) -> tuple[str, ...]:
        return tuple(self.tensor_names)


class TensorTreeModel(QStandardItemModel):
    """Layers (in file order) with their tensors; tensors without a layer sit at the top level.

    Every cell's text, sort key, colour and tooltip is stored in the Qt items when a preview,
    the plan or the model changes, so painting the table calls no Python at all. (A Python
    `data()` was called ~5,000 times per repaint; while preview workers held the GIL each call
    waited for it, and a repaint took 0.3-4 s instead of 35 ms.)
    """

    def __init__(self, state: AppState, parent: QObject | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.state = state
        self._rows: dict[str, list[QStandardItem]] = {}
        self._layers: dict[str, tuple[_Layer, list[QStandardItem]]] = {}
        self._layer_of: dict[str, str] = {}
        self.setHorizontalHeaderLabels(list(COLUMNS))
        for col, tip in _TOOLTIPS.items():
            self.setHeaderData(col, Qt.Orientation.Horizontal, tip, Qt.ItemDataRole.ToolTipRole)
        state.model_changed.connect(self._rebuild)
        state.plan_changed.connect(self._refresh_all)
        state.target_changed.connect(self._refresh_all)
        state.threshold_changed.connect(self._refresh_all)
        state.tensor_previews_updated.connect(self._refresh_tensors)
        state.sensitivity_changed.connect(self._refresh_all)
        self._rebuild()
        self._refresh_all()

    # -- structure --------------------------------------------------------------------------
    def _rebuild(self) -> None:
        self.beginResetModel()
        self.blockSignals(True)
        try:
            self.removeRows(0, self.rowCount())
            self._rows, self._layers, self._layer_of = {}, {}, {}
            root = self.invisibleRootItem()
            for tensor in self.state.model or ():
                info = tensor.info
                parent = root
                if info.layer:
                    entry = self._layers.get(info.layer)
                    if entry is None:
                        entry = self._layers[info.layer] = self._new_layer(info.layer)
                        root.appendRow(entry[1])
                    entry[0].tensor_names.append(info.name)
                    self._layer_of[info.name] = info.layer
                    parent = entry[1][0]
                row = self._rows[info.name] = self._new_row(info.name, info.is_float, info)
                parent.appendRow(row)
            for layer, items in self._layers.values():
                self._set_editable(items, layer.names())
                items[COL_NAME].setData(layer.names(), NAME_ROLE)
                model = self.state.model
                optimizer = model is not None and all(
                    model[n].info.optimizer for n in layer.names()
                )
                items[COL_NAME].setData(optimizer, OPTIMIZER_ROLE)
        finally:
            self.blockSignals(False)
        self.endResetModel()
        # No fill here: `AppState.set_model` emits plan_changed next, which fills every row.

    def _new_row(self, name: str, is_float: bool, info: Any) -> list[QStandardItem]:
        row = _plain_row()
        row[COL_NAME].setData(name, NAME_ROLE)
        row[COL_NAME].setData(info.optimizer, OPTIMIZER_ROLE)
        row[COL_SCHEME].setEditable(is_float and not info.optimizer)
        for col in _RIGHT:
            row[col].setData(_RIGHT_ALIGN, Qt.ItemDataRole.TextAlignmentRole)
        return row

    def _new_layer(self, layer: str) -> tuple[_Layer, list[QStandardItem]]:
        row = _plain_row()
        row[COL_NAME].setData(_LAYER_FONT, Qt.ItemDataRole.FontRole)
        return _Layer(layer), row

    def _set_editable(self, items: list[QStandardItem], names: tuple[str, ...]) -> None:
        infos = [self.state.model[n].info for n in names] if self.state.model else []
        items[COL_SCHEME].setEditable(any(i.is_float and not i.optimizer for i in infos))

    def index_of(self, name: str, column: int = 0) -> QModelIndex:
        row = self._rows.get(name)
        return QModelIndex() if row is None else row[column].index()

    # -- refresh ----------------------------------------------------------------------------
    def _refresh_all(self) -> None:
        self._update(list(self._rows), list(self._layers))

    def _refresh_tensors(self, names: list[str]) -> None:
        known = [n for n in names if n in self._rows]
        layers = list(dict.fromkeys(self._layer_of[n] for n in known if n in self._layer_of))
        self._update(known, layers)

    def _update(self, names: list[str], layers: list[str]) -> None:
        """Refill the rows quietly, then one `dataChanged` per parent spanning the rows that
        changed: a sorting/filtering proxy then re-sorts once, not once per cell."""
        if not names and not layers:
            return
        self.blockSignals(True)
        try:
            self._fill(names, layers)
        finally:
            self.blockSignals(False)
        spans: dict[str, tuple[QModelIndex, int, int]] = {}  # parent layer ("" = top) → rows
        changed = [(self._layer_of.get(n, ""), self._rows[n]) for n in names]
        changed += [("", self._layers[layer][1]) for layer in layers]
        for key, items in changed:
            index = items[0].index()
            _, lo, hi = spans.get(key, (index.parent(), index.row(), index.row()))
            spans[key] = (index.parent(), min(lo, index.row()), max(hi, index.row()))
        last = len(COLUMNS) - 1
        for parent, lo, hi in spans.values():
            self.dataChanged.emit(self.index(lo, 0, parent), self.index(hi, last, parent))

    def _fill(self, names: list[str], layers: list[str]) -> None:
        if self.state.model is None:
            return
        for name in names:
            self._fill_tensor(name, self._rows[name])
        for layer in layers:
            node, items = self._layers[layer]
            for item, (text, key) in zip(items, self._layer_cells(node), strict=True):
                item.setData(text, _DISPLAY)
                item.setData(key, SORT_ROLE)
            items[COL_SCHEME].setData(self.state.spec_for(node.tensor_names[0]), SPEC_ROLE)
            items[COL_NAME].setData(layer, Qt.ItemDataRole.ToolTipRole)

    def _fill_tensor(self, name: str, items: list[QStandardItem]) -> None:
        info = self.state.model[name].info  # type: ignore[index]
        tp, fresh = self._current_tp(name)
        reasons = poor_reasons(tp, self.state.sqnr_threshold_db) if fresh else []
        tip = self._tensor_tooltip(name, tp, reasons)
        background = _POOR_BG if reasons else None
        stale = tp is not None and not fresh
        for col, item in enumerate(items):
            item.setData(self._tensor_text(info, tp, col), _DISPLAY)
            item.setData(self._tensor_sort(info, tp, col), SORT_ROLE)
            item.setData(tip, Qt.ItemDataRole.ToolTipRole)
            item.setData(background, Qt.ItemDataRole.BackgroundRole)
            item.setData(_STALE_FG if stale and col >= 5 else None, _FOREGROUND)
        items[COL_SCHEME].setData(self.state.spec_for(name), SPEC_ROLE)
        collapsed = fresh and collapse_flagged(tp.collapsed_channels, tp.channels)
        items[COL_SQNR].setData(_warning_icon() if collapsed else None, _DECORATION)

    def _current_tp(self, name: str) -> tuple[Any, bool]:
        """The tensor's preview and whether it matches the current plan (else it is stale)."""
        tp = self.state.tensor_previews.get(name)
        return tp, tp is not None and tp.scheme == self.state.spec_for(name)

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
            text = f"{format_bytes(tp.original_bytes)} → {format_bytes(tp.quantized_bytes)}"
            baked = not tp.skipped and tp.stored and tp.stored != tp.scheme
            return f"{text} (as {tp.stored})" if baked else text
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
        stored = self.state.model[name].info.stored  # type: ignore[index]
        if stored is not None and "block_axis" in stored.params:
            p = stored.params
            lines.append(
                f"file stores {stored.scheme}: blocks of {p['block_size']} along axis "
                f"{p['block_axis']} (the rows, GGUF ne[0])"
            )
        if tp is not None:
            if tp.stored and tp.stored != tp.scheme:
                lines.append(f"stored as {tp.stored}")
            if tp.note:
                lines.append(tp.note)
            if tp.skipped:
                lines.append(f"kept as is: {tp.skipped}")
        lines += [f"⚠ {r}" for r in reasons]
        return "\n".join(lines)

    def _layer_cells(self, node: _Layer) -> list[tuple[Any, Any]]:
        """(text, sort key) of every column of a layer row: its tensors' totals."""
        names = node.names()
        params = sum(self.state.model[n].info.size for n in names)  # type: ignore[index]
        specs = {self.state.spec_for(n) for n in names}
        scheme = specs.pop() if len(specs) == 1 else "(mixed)"
        known = [self.state.sensitivity[n] for n in names if n in self.state.sensitivity]
        best = max(known, default=None)
        cells: list[tuple[Any, Any]] = [(None, None)] * len(COLUMNS)
        cells[COL_NAME] = (node.layer, node.layer)
        cells[COL_PARAMS] = (format_count(params), params)
        cells[COL_SCHEME] = (scheme, scheme)
        cells[COL_SENS] = (None, None) if best is None else (best[1], best[0])
        tps = [self.state.tensor_previews.get(n) for n in names]
        if all(tp is not None for tp in tps):
            total = summarize(tps)
            before, after = total["original_bytes"], total["quantized_bytes"]
            cells[COL_BYTES] = (f"{format_bytes(before)} → {format_bytes(after)}", after)
            cells[COL_SQNR] = (format_db(total["sqnr_db"]), total["sqnr_db"])
        return cells

    def setData(self, index: Any, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        """Scheme edits become per-tensor overrides (one undo step); invalid specs are refused."""
        if not index.isValid() or index.column() != COL_SCHEME or self.state.model is None:
            return False
        spec = str(value).strip()
        try:
            spec = parse_scheme(spec).spec
        except (InspectorError, ValueError):
            return False
        value = index.siblingAtColumn(COL_NAME).data(NAME_ROLE)
        chosen = [value] if isinstance(value, str) else list(value or ())
        names = [n for n in chosen if self.state.model[n].info.is_float]
        self.state.override(names, spec)
        return True
