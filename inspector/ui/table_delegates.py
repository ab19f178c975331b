"""Filter/sort proxy and the scheme-column editor of the tensor tree.

The proxy sorts by the raw numbers the model gives under `SORT_ROLE` and filters by a glob on
`NAME_ROLE`; the delegate edits a scheme spec with the preset names offered and validated.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from PySide6.QtCore import QObject, QSortFilterProxyModel, Qt
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QComboBox, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from inspector.core.errors import InspectorError
from inspector.core.schemes import parse_scheme, scheme_names

__all__ = [
    "NAME_ROLE",
    "SORT_ROLE",
    "SPEC_ROLE",
    "SchemeDelegate",
    "SchemeValidator",
    "TensorFilterProxy",
]

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
NAME_ROLE = Qt.ItemDataRole.UserRole + 2
"""Tensor name of a tensor row; tuple of tensor names of a layer row."""
SPEC_ROLE = Qt.ItemDataRole.UserRole + 3
"""The scheme spec the plan gives the row (what the editor starts from; the shown text may
add why a tensor is kept)."""


class TensorFilterProxy(QSortFilterProxyModel):
    """Sorts by raw numbers and filters tensor names by a glob (plain text = substring)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setRecursiveFilteringEnabled(True)
        self.setSortRole(SORT_ROLE)
        self.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self._glob = ""

    @property
    def glob(self) -> str:
        return self._glob

    def set_glob(self, text: str) -> None:
        text = text.strip().lower()
        if text and not any(c in text for c in "*?["):
            text = f"*{text}*"
        if hasattr(self, "beginFilterChange"):  # Qt ≥ 6.10
            self.beginFilterChange()
            self._glob = text
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self._glob = text
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, row: int, parent: Any) -> bool:
        if not self._glob:
            return True
        index = self.sourceModel().index(row, 0, parent)
        name = index.data(NAME_ROLE)
        if not isinstance(name, str):
            return False
        return fnmatchcase(name.lower(), self._glob)

    def lessThan(self, left: Any, right: Any) -> bool:
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        if a is None or b is None:
            return (a is None) < (b is None)
        if isinstance(a, str) or isinstance(b, str):
            return str(a).lower() < str(b).lower()
        return a < b


class SchemeValidator(QValidator):
    """Accepts what `parse_scheme` accepts; anything else is "still typing"."""

    def validate(self, text: str, pos: int) -> Any:
        try:
            parse_scheme(text.strip())
        except (InspectorError, ValueError):
            return QValidator.State.Intermediate
        return QValidator.State.Acceptable


class SchemeDelegate(QStyledItemDelegate):
    """Editable combo of the preset names; the line edit validates a full spec."""

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem, index: Any) -> QWidget:
        combo = QComboBox(parent)
        combo.setEditable(True)
        combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        combo.addItems(list(scheme_names()))
        combo.setValidator(SchemeValidator(combo))
        return combo

    def setEditorData(self, editor: QWidget, index: Any) -> None:
        editor.setEditText(str(index.data(SPEC_ROLE) or ""))

    def setModelData(self, editor: QWidget, model: Any, index: Any) -> None:
        text = editor.currentText()
        if editor.validator().validate(text, 0) == QValidator.State.Acceptable:
            model.setData(index, text, Qt.ItemDataRole.EditRole)
