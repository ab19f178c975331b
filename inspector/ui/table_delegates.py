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
    "OPTIMIZER_ROLE",
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
OPTIMIZER_ROLE = Qt.ItemDataRole.UserRole + 4
"""True on rows of optimizer state (a layer row: when all its tensors are)."""
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
        self._show_optimizer = False

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

    @property
    def show_optimizer(self) -> bool:
        return self._show_optimizer

    def set_show_optimizer(self, show: bool) -> None:
        """Show or hide optimizer-state rows (hidden by default: the export leaves them out,
        and in a training checkpoint they can be most of the rows)."""
        if hasattr(self, "beginFilterChange"):  # Qt ≥ 6.10
            self.beginFilterChange()
            self._show_optimizer = show
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self._show_optimizer = show
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, row: int, parent: Any) -> bool:
        index = self.sourceModel().index(row, 0, parent)
        if not self._show_optimizer and index.data(OPTIMIZER_ROLE):
            return False
        if not self._glob:
            return True
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
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        combo.view().setMinimumWidth(combo.sizeHint().width() + 40)
        return combo

    def updateEditorGeometry(
        self, editor: QWidget, option: QStyleOptionViewItem, index: Any
    ) -> None:
        """At least wide enough for a spec like `int4:group=64,clip=mse` (the column may be
        ~60 px); the editor overlaps the next columns while it is open."""
        rect = option.rect
        width = max(
            rect.width(), editor.fontMetrics().horizontalAdvance("affine16:clip=mse" + "M" * 4)
        )
        editor.setGeometry(
            rect.x(), rect.y(), width, max(rect.height(), editor.sizeHint().height())
        )

    def setEditorData(self, editor: QWidget, index: Any) -> None:
        editor.setEditText(str(index.data(SPEC_ROLE) or ""))

    def setModelData(self, editor: QWidget, model: Any, index: Any) -> None:
        text = editor.currentText()
        if editor.validator().validate(text, 0) == QValidator.State.Acceptable:
            model.setData(index, text, Qt.ItemDataRole.EditRole)
