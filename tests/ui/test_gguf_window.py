"""A llama.cpp user's path through the window: open a GGUF, read its metadata and tensors
(row-major shapes, GGUF dims, block axis), choose a llama type for one tensor, apply the
Q4_K_M mixture as a plan (undoable, editable), export GGUF — the file llama-quantize writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from inspector.core.model import StoredQuantization
from inspector.formats.gguf.header import parse_header
from inspector.formats.gguf.presets import mixture_plan
from inspector.ui.export_dialog import ExportDialog

gguf = pytest.importorskip("gguf")

DATA = Path(__file__).resolve().parents[1] / "formats" / "gguf" / "data"


def _menu_action(window, *path: str):
    actions = window.menuBar().actions()
    for text in path:
        action = next(a for a in actions if a.text().replace("&", "") == text)
        actions = action.menu().actions() if action.menu() is not None else []
    return action


def _data(path: Path) -> bytes:
    raw = path.read_bytes()
    return raw[parse_header(raw, path).data_offset :]


def _export(qtbot, window, out: Path):
    state = window.state
    qtbot.waitUntil(
        lambda: state.preview_plan == state.plan and not window.preview.runner.busy,
        timeout=60_000,
    )
    dialog = ExportDialog(state, window.preview.cache, window)
    qtbot.addWidget(dialog)
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("gguf"))
    dialog.path_edit.setText(str(out))
    qtbot.waitUntil(lambda: dialog.predicted_bytes is not None, timeout=30_000)
    with qtbot.waitSignal(window.exports.exported, timeout=60_000):
        window.exports.export(dialog.request())
    assert out.stat().st_size == dialog.predicted_bytes


def test_open_gguf_see_metadata_and_blocks(qtbot, window, open_and_wait) -> None:
    open_and_wait(window, DATA / "tiny_q4_k_m.gguf")
    _menu_action(window, "Model", "Metadata…").trigger()
    dialog = window._metadata_dialog
    qtbot.addWidget(dialog)
    keys = {dialog.keys.item(r, 0).text(): dialog.keys.item(r, 1).text()
            for r in range(dialog.keys.rowCount())}  # fmt: skip
    fields = gguf.GGUFReader(DATA / "tiny_q4_k_m.gguf").fields
    assert set(keys) == {k for k in fields if not k.startswith("GGUF.")}
    assert keys["llama.block_count"] == "1" and keys["general.file_type"] == "15"
    rows = {dialog.tensors.item(r, 0).text(): [dialog.tensors.item(r, c).text() for c in range(5)]
            for r in range(dialog.tensors.rowCount())}  # fmt: skip
    assert rows["blk.0.ffn_gate.weight"][1:] == [
        "48×256", "[256, 48]", "q4_k", "axis 1 (ne[0]), blocks of 256"
    ]  # fmt: skip
    assert rows["blk.0.attn_norm.weight"][1:] == ["256", "[256]", "float32", "–"]
    info = window.state.model["blk.0.ffn_down.weight"].info
    assert isinstance(info.stored, StoredQuantization) and info.stored.scheme == "q6_k"
    model = window.tensors.model
    tip = model.data(model.index_of("blk.0.ffn_down.weight"), Qt.ItemDataRole.ToolTipRole)
    assert "file stores q6_k: blocks of 256 along axis 1 (the rows, GGUF ne[0])" in tip


def test_mixture_as_plan_then_export_gguf(qtbot, window, open_and_wait, tmp_path) -> None:
    src = DATA / "tiny_f16.gguf"
    open_and_wait(window, src)
    state = window.state
    state.override(["blk.0.attn_q.weight"], "q5_k")  # a llama type for one tensor
    before = state.plan
    _menu_action(window, "Model", "Apply llama.cpp mixture", "Q4_K_M").trigger()
    with open_model_ctx(src) as m:
        expected = mixture_plan(m, "Q4_K_M")
    assert state.plan == expected
    assert "Q4_K_M mixture" in window.status_label.text()
    state.undo()
    assert state.plan == before
    state.redo()
    assert state.plan == expected
    out = tmp_path / "q4km.gguf"
    _export(qtbot, window, out)
    assert _data(out) == _data(DATA / "tiny_q4_k_m.gguf")  # llama-quantize's bytes
    state.override(["blk.0.attn_q.weight"], "q8_0")  # the mixture stays editable
    out2 = tmp_path / "edited.gguf"
    _export(qtbot, window, out2)
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(out2).tensors}
    assert types["blk.0.attn_q.weight"] == "Q8_0" and types["blk.0.ffn_down.weight"] == "Q6_K"


def open_model_ctx(path: Path):
    from inspector.formats import open_model

    return open_model(path)
