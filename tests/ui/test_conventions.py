"""Window conventions (issue 16 item 10): optimizer rows hidden by default, the model's name
in the title, Ctrl+Y redo, drops as copies, a wide scheme editor, unsaved plan on quit."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QKeySequence
from PySide6.QtWidgets import QStyleOptionViewItem

from inspector.core.plan import Plan
from inspector.ui import dialogs

FER = Path(__file__).resolve().parents[3] / "shared/models/keras-h5-fer-emotion/emotion_model.hdf5"


def test_optimizer_rows_hidden_until_asked(qtbot, window, open_and_wait):
    if not FER.exists():
        pytest.skip("fer model not present")
    open_and_wait(window, FER)
    panel = window.tensors
    assert len(panel.visible_tensor_names()) == 80  # 105 of 185 rows are optimizer state
    assert panel.optimizer_box.isVisible() and "105" in panel.optimizer_box.text()
    panel.optimizer_box.setChecked(True)
    assert len(panel.visible_tensor_names()) == 185
    assert window.windowTitle().startswith("emotion_model (Keras)")


def test_title_redo_drop_and_editor_width(qtbot, window, demo_path, open_and_wait):
    path = demo_path("digits_convnet")
    open_and_wait(window, path)
    assert "model.json" not in window.windowTitle()
    assert QKeySequence("Ctrl+Y") in window.redo_action.shortcuts()
    assert not window.tensors.optimizer_box.isVisible()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    actions = Qt.DropAction.CopyAction | Qt.DropAction.MoveAction
    event = QDragEnterEvent(
        QPoint(5, 5), actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    window.dragEnterEvent(event)
    assert event.isAccepted() and event.dropAction() == Qt.DropAction.CopyAction
    view = window.tensors.view
    from inspector.ui.tensor_table import COL_SCHEME

    delegate = view.itemDelegateForColumn(COL_SCHEME)
    index = window.tensors.proxy.index(0, COL_SCHEME)
    editor = delegate.createEditor(view.viewport(), QStyleOptionViewItem(), index)
    option = QStyleOptionViewItem()
    option.rect = view.visualRect(index).adjusted(0, 0, 0, 0)
    option.rect.setWidth(62)
    delegate.updateEditorGeometry(editor, option, index)
    assert editor.width() >= 140


def test_quit_asks_about_an_unsaved_plan(qtbot, window, demo_path, open_and_wait, monkeypatch):
    open_and_wait(window, demo_path("digits_convnet"))
    asked = []
    monkeypatch.setattr(dialogs, "ask_unsaved_plan", lambda *a: asked.append(a) or "cancel")
    assert not window.has_unsaved_plan()  # nothing changed: closing asks nothing
    window.state.set_plan(Plan(default="int8"))
    assert window.has_unsaved_plan()
    window.quit_action.trigger()
    assert asked and window.isVisible()  # cancelled: still open
    monkeypatch.setattr(dialogs, "ask_unsaved_plan", lambda *a: "discard")
    window.quit_action.trigger()
    assert not window.isVisible()


def test_collapse_flag_in_table_and_summary(qtbot, window, demo_path, open_and_wait):
    from inspector.ui.tensor_table import COL_SQNR

    open_and_wait(window, demo_path("digits_depthwise"))
    name = "block2_dw/depthwise_kernel:0"
    item = window.tensors.model.itemFromIndex(window.tensors.model.index_of(name, COL_SQNR))
    assert item.data(Qt.ItemDataRole.DecorationRole) is not None
    assert "channels keep ≤ 2 levels: use int8" in item.data(Qt.ItemDataRole.ToolTipRole)
    summary = window.summary
    assert summary.notes.isVisibleTo(window) and "Channels collapse" in summary.notes.text()
    with qtbot.waitSignal(window.state.preview_updated, timeout=30_000):
        summary._on_note_link("collapse:int8")
    assert window.state.spec_for(name) == "int8"
    assert "Channels collapse" not in summary.notes.text()
    window.state.undo()  # one undoable step
    assert window.state.spec_for(name) == "uint8"
