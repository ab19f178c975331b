"""Left panel: glob filter, poor-SQNR threshold and the tensor tree, bound to `AppState`.

Binding goes both ways: selecting rows sets `state.selection`; a selection made elsewhere (a
click on a worst tensor in the summary) selects and scrolls to the row here.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QModelIndex, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from inspector.ui.state import AppState
from inspector.ui.tensor_table import (
    COL_NAME,
    COL_SCHEME,
    NAME_ROLE,
    SchemeDelegate,
    TensorFilterProxy,
    TensorTreeModel,
)

__all__ = ["TensorPanel"]


class TensorPanel(QWidget):
    """Filter box + SQNR threshold + sortable, multi-select tensor tree."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.model = TensorTreeModel(state, self)
        self.proxy = TensorFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self._syncing = False

        self.filter_edit = QLineEdit(placeholderText="Filter tensors: glob, e.g. conv*/kernel*")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._on_filter)
        self.threshold = QDoubleSpinBox(suffix=" dB", minimum=0.0, maximum=200.0, decimals=1)
        self.threshold.setValue(state.sqnr_threshold_db)
        self.threshold.setToolTip("Tensors whose SQNR is below this are marked red")
        self.threshold.valueChanged.connect(state.set_sqnr_threshold)

        self.view = QTreeView()
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        self.view.setItemDelegateForColumn(COL_SCHEME, SchemeDelegate(self.view))
        self.view.setAlternatingRowColors(True)
        # Names differ at both ends (batch_normalization_1/gamma vs …/moving_mean): keep both.
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setUniformRowHeights(True)
        header = self.view.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        self.view.selectionModel().selectionChanged.connect(self._on_view_selection)
        self.view.selectionModel().currentChanged.connect(self._on_view_selection)
        state.selection_changed.connect(self._on_state_selection)
        state.model_changed.connect(self._on_model)

        self.optimizer_box = QCheckBox("Optimizer state")
        self.optimizer_box.setToolTip(
            "Show the optimizer's tensors (the export leaves them out; hidden by default)"
        )
        self.optimizer_box.toggled.connect(self._on_optimizer)
        self.optimizer_box.hide()
        top = QHBoxLayout()
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.optimizer_box)
        top.addWidget(QLabel("Mark SQNR <"))
        top.addWidget(self.threshold)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.view)

    def _on_optimizer(self, show: bool) -> None:
        self.proxy.set_show_optimizer(show)
        self.view.expandAll()

    def _on_model(self) -> None:
        count = sum(t.info.optimizer for t in self.state.model or ())
        self.optimizer_box.setText(f"Optimizer state ({count})")
        self.optimizer_box.setVisible(count > 0)
        # The names are filled by the plan_changed that follows model_changed: fit after it.
        QTimer.singleShot(0, self._fit_columns)

    def _fit_columns(self) -> None:
        self.view.expandAll()
        widths = (100, 84, 54, 52, 62, 124, 60, 72, 48, 76)
        for col, w in enumerate(widths):
            self.view.setColumnWidth(col, w)
        for col in range(1, len(widths)):
            self.view.resizeColumnToContents(col)
            self.view.setColumnWidth(col, max(self.view.columnWidth(col), widths[col]))
        self.fit_name_column()

    def fit_name_column(self) -> None:
        """The Name column as wide as its longest name, but at most 45 % of the view (at
        least 140 px): longer names are elided in the middle, whole in the tooltip."""
        self.view.resizeColumnToContents(0)
        room = max(140, int(self.view.viewport().width() * 0.45))
        self.view.setColumnWidth(0, max(100, min(self.view.columnWidth(0), room)))

    def _on_filter(self, text: str) -> None:
        self.proxy.set_glob(text)
        self.view.expandAll()

    def visible_tensor_names(self) -> list[str]:
        """Tensor names of the rows the filter lets through, in view order."""
        out: list[str] = []

        def walk(parent: QModelIndex) -> None:
            for row in range(self.proxy.rowCount(parent)):
                idx = self.proxy.index(row, 0, parent)
                name = idx.data(NAME_ROLE)
                if isinstance(name, str):
                    out.append(name)
                walk(idx)

        walk(QModelIndex())
        return out

    def _on_view_selection(self, *args: object) -> None:
        if self._syncing:
            return
        names: list[str] = []
        for idx in self.view.selectionModel().selectedRows(COL_NAME):
            value = idx.data(NAME_ROLE)
            names.extend([value] if isinstance(value, str) else list(value or ()))
        names = list(dict.fromkeys(names))
        cur = self.view.currentIndex().siblingAtColumn(COL_NAME).data(NAME_ROLE)
        current = cur if isinstance(cur, str) else (cur[0] if cur else None)
        if current not in names and names:
            current = names[0]
        self._syncing = True
        try:
            self.state.set_selection(names, current)
        finally:
            self._syncing = False

    def _on_state_selection(self) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            sel = QItemSelection()
            for name in self.state.selection:
                idx = self.proxy.mapFromSource(self.model.index_of(name))
                if idx.isValid():
                    sel.select(idx, idx)
            flags = (
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows
            )
            self.view.selectionModel().select(sel, flags)
            cur = self.proxy.mapFromSource(self.model.index_of(self.state.current or ""))
            if cur.isValid():
                self.view.selectionModel().setCurrentIndex(
                    cur, QItemSelectionModel.SelectionFlag.NoUpdate
                )
                self.view.scrollTo(cur)
        finally:
            self._syncing = False
