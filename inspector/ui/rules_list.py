"""The plan's default scheme and ordered glob rules, editable, with live match counts.

Rules resolve last-match-wins (like the TF.js converter's patterns, but visible). A rule that
matches no tensor of the open model is flagged: a typo in a glob should never pass silently.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from inspector.core.errors import InspectorError
from inspector.core.plan import Rule
from inspector.core.schemes import parse_scheme, scheme_names
from inspector.ui.state import AppState
from inspector.ui.tensor_table import SchemeDelegate, SchemeValidator

_NO_PARENT = QModelIndex()

__all__ = ["RulesList", "RulesModel"]

_WARN = QBrush(QColor(180, 0, 0))


class RulesModel(QAbstractTableModel):
    """Rows = `state.plan.rules` in order; columns pattern, scheme, matches."""

    HEADERS = ("Glob", "Scheme", "Matches")

    def __init__(self, state: AppState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._counts: list[int] = []
        state.plan_changed.connect(self._reset)
        state.model_changed.connect(self._reset)
        self._reset()

    def _reset(self) -> None:
        self.beginResetModel()
        model = self.state.model
        infos = [t.info for t in model] if model is not None else []
        self._counts = self.state.plan.rule_match_counts(infos)
        self.endResetModel()

    @property
    def counts(self) -> list[int]:
        return list(self._counts)

    def rowCount(self, parent: Any = _NO_PARENT) -> int:
        return 0 if parent.isValid() else len(self.state.plan.rules)

    def columnCount(self, parent: Any = _NO_PARENT) -> int:
        return 3

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        if orientation == Qt.Orientation.Vertical and role == Qt.ItemDataRole.DisplayRole:
            return str(section + 1)
        return None

    def flags(self, index: Any) -> Qt.ItemFlag:
        flags = super().flags(index)
        return flags | Qt.ItemFlag.ItemIsEditable if index.column() < 2 else flags

    def data(self, index: Any, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        rule = self.state.plan.rules[index.row()]
        count = self._counts[index.row()] if index.row() < len(self._counts) else 0
        col = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if col == 0:
                return rule.pattern
            if col == 1:
                return rule.scheme
            return f"{count}  ⚠ none" if count == 0 else str(count)
        if role == Qt.ItemDataRole.ForegroundRole and col == 2 and count == 0:
            return _WARN
        if role == Qt.ItemDataRole.ToolTipRole and count == 0:
            return "This glob matches no tensor of the open model (names are case-sensitive)"
        return None

    def setData(self, index: Any, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        rules = list(self.state.plan.rules)
        old = rules[index.row()]
        text = str(value).strip()
        if not text:
            return False
        try:
            if index.column() == 0:
                rules[index.row()] = Rule(text, old.scheme)
            else:
                rules[index.row()] = Rule(old.pattern, parse_scheme(text).spec)
            self.state.set_plan(self.state.plan.with_rules(rules))
        except (InspectorError, ValueError):
            return False
        return True


class RulesList(QGroupBox):
    """Default scheme + ordered rules with Up/Down/Remove (each edit is one undo step)."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__("Plan: default and rules (last match wins)", parent)
        self.state = state
        self.default_combo = QComboBox()
        self.default_combo.setEditable(True)
        self.default_combo.addItems(list(scheme_names()))
        self.default_combo.setValidator(SchemeValidator(self.default_combo))
        self.default_combo.lineEdit().editingFinished.connect(self._default_edited)
        self.default_combo.activated.connect(lambda _: self._default_edited())
        self.model = RulesModel(state, self)
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setItemDelegateForColumn(1, SchemeDelegate(self.view))
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.view.verticalHeader().setDefaultSectionSize(22)
        self.overrides = QLabel("")
        self.overrides.setWordWrap(True)
        up, down, remove = QPushButton("Up"), QPushButton("Down"), QPushButton("Remove")
        up.clicked.connect(lambda: self.move(-1))
        down.clicked.connect(lambda: self.move(1))
        remove.clicked.connect(self.remove)
        top = QHBoxLayout()
        top.addWidget(QLabel("Default"))
        top.addWidget(self.default_combo, 1)
        buttons = QHBoxLayout()
        for b in (up, down, remove):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.overrides)
        state.plan_changed.connect(self._on_plan)
        self._on_plan()

    def _on_plan(self) -> None:
        self.default_combo.setEditText(self.state.plan.default)
        n = len(self.state.plan.overrides)
        self.overrides.setText(f"{n} per-tensor override{'s' if n != 1 else ''} (beat every rule)")

    def _default_edited(self) -> None:
        text = self.default_combo.currentText().strip()
        try:
            spec = parse_scheme(text).spec
        except InspectorError:
            self.default_combo.setEditText(self.state.plan.default)
            return
        if spec != self.state.plan.default:
            self.state.set_plan(self.state.plan.with_default(spec))

    def _selected_row(self) -> int | None:
        rows = self.view.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def move(self, step: int) -> None:
        row = self._selected_row()
        rules = list(self.state.plan.rules)
        if row is None or not 0 <= row + step < len(rules):
            return
        rules[row], rules[row + step] = rules[row + step], rules[row]
        self.state.set_plan(self.state.plan.with_rules(rules))
        self.view.selectRow(row + step)

    def remove(self) -> None:
        row = self._selected_row()
        if row is not None:
            self.state.set_plan(self.state.plan.without_rule(row))
