"""File ▸ Save Quantized As… and Export Report… from the window, read back from disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialogButtonBox

from inspector.core.plan import Plan
from inspector.formats import open_model
from inspector.ui import dialogs, export_actions
from inspector.ui.export_dialog import ExportDialog


def _dialog(qtbot, window, fmt, out):
    dialog = ExportDialog(window.state, window.preview.cache, window)
    qtbot.addWidget(dialog)
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData(fmt))
    dialog.path_edit.setText(str(out))
    qtbot.waitUntil(lambda: dialog.predicted_bytes is not None, timeout=20_000)
    return dialog


def _settle(qtbot, window):
    """Wait for the preview of the current plan, so its status line comes before ours."""
    state = window.state
    qtbot.waitUntil(
        lambda: state.preview_plan == state.plan and not window.preview.runner.busy,
        timeout=30_000,
    )


def _export(qtbot, window, request):
    _settle(qtbot, window)
    with qtbot.waitSignal(window.exports.exported, timeout=60_000) as blocker:
        window.exports.export(request)
    return blocker.args[0]


@pytest.mark.parametrize(
    ("name", "formats"),
    [
        ("digits_convnet", ["keras", "tfjs", "safetensors", "npz"]),
        ("diabetes_mlp", ["keras", "tfjs"]),
        ("digits_depthwise", ["keras", "safetensors"]),
        ("digits_convnet_tfjs", ["tfjs", "npz"]),
    ],
)
def test_export_each_demo_reads_back_at_the_predicted_size(
    qtbot, window, name, formats, demo_path, open_and_wait, tmp_path
):
    open_and_wait(window, demo_path(name))
    state = window.state
    state.set_plan(Plan(default="uint8").with_rule("*bias*", "float16"))
    for fmt in formats:
        suffix = {"keras": ".h5", "tfjs": "", "safetensors": ".safetensors", "npz": ".npz"}
        out = tmp_path / f"{name}_{fmt}{suffix[fmt]}"
        dialog = _dialog(qtbot, window, fmt, out)
        assert dialog.buttons.button(QDialogButtonBox.StandardButton.Save).isEnabled()
        assert dialog.shard_spin.isVisibleTo(dialog) == (fmt == "tfjs")
        predicted = dialog.predicted_bytes
        assert f"{predicted:,} B" in dialog.predicted.text()
        result = _export(qtbot, window, dialog.request())
        on_disk = sum(p.stat().st_size for p in (out.rglob("*") if out.is_dir() else [out]))
        assert on_disk == result.total_bytes
        assert on_disk == predicted, fmt
        with open_model(out / "model.json" if fmt == "tfjs" else out) as back:
            assert set(back.tensors) >= {t.name for t in state.model.weights} or len(back) == len(
                state.model
            )
        text = window.status_label.text()
        assert str(out) in text and f"{on_disk:,} B" in text


def test_notes_say_what_was_baked(qtbot, window, demo_path, open_and_wait, tmp_path):
    open_and_wait(window, demo_path("digits_convnet"))
    window.state.set_plan(Plan(default="int8"))
    dialog = _dialog(qtbot, window, "tfjs", tmp_path / "out")
    result = _export(qtbot, window, dialog.request())
    assert result.notes and "baked" in window.status_label.text()
    assert result.total_bytes == dialog.predicted_bytes


def test_input_is_refused_and_overwrite_asks(
    qtbot, window, demo_path, open_and_wait, tmp_path, monkeypatch
):
    path = demo_path("digits_convnet")
    open_and_wait(window, path)
    dialog = _dialog(qtbot, window, "keras", tmp_path / "x.h5")
    save = dialog.buttons.button(QDialogButtonBox.StandardButton.Save)
    dialog.path_edit.setText(str(path))
    assert not save.isEnabled() and "input" in dialog.problem.text()
    dialog.accept()
    assert dialog.result() != dialog.DialogCode.Accepted
    existing = tmp_path / "old.h5"
    existing.write_bytes(b"keep me")
    dialog.path_edit.setText(str(existing))
    assert save.isEnabled()
    asked = []
    monkeypatch.setattr(dialogs, "confirm", lambda *a: asked.append(a) or False)
    dialog.accept()
    assert asked and dialog.result() != dialog.DialogCode.Accepted
    monkeypatch.setattr(dialogs, "confirm", lambda *a: True)
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted
    request = dialog.request()
    assert request.force
    _export(qtbot, window, request)
    assert existing.read_bytes() != b"keep me"


def test_menu_action_runs_the_dialog(
    qtbot, window, demo_path, open_and_wait, tmp_path, monkeypatch
):
    open_and_wait(window, demo_path("diabetes_mlp"))
    out = tmp_path / "mlp.npz"

    def answer(parent, state, cache):
        dialog = _dialog(qtbot, parent, "npz", out)
        return dialog.request()

    monkeypatch.setattr(export_actions, "ask_export", answer)
    with qtbot.waitSignal(window.exports.exported, timeout=30_000):
        window.save_quantized_action.trigger()
    assert out.is_file()


def test_cancel_export_leaves_nothing(qtbot, window, synthetic_model, tmp_path):
    from inspector.ui.export_dialog import ExportRequest

    model = synthetic_model({f"l{i}/kernel": (1024, 1024) for i in range(40)})
    window.state.set_model(model, target="npz")
    out = tmp_path / "big.npz"
    window.exports.export(ExportRequest("npz", out))
    assert window.exports.task.busy
    window.cancel_action.trigger()
    assert "cancelled" in window.status_label.text().lower()
    qtbot.waitUntil(lambda: not window.exports.task.busy, timeout=30_000)
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".html", ".json", ".csv"])
def test_export_report(qtbot, window, demo_path, open_and_wait, tmp_path, suffix):
    open_and_wait(window, demo_path("digits_convnet"))
    out = tmp_path / f"report{suffix}"
    window.exports.export_report(str(out))
    qtbot.waitUntil(out.exists, timeout=30_000)
    qtbot.waitUntil(lambda: not window.exports.task.busy, timeout=30_000)
    text = out.read_text()
    name = next(iter(window.state.model.tensors))
    assert name in text
    if suffix == ".json":
        doc = json.loads(text)
        assert doc["total"]["quantized_bytes"] == window.state.preview.total["quantized_bytes"]
    assert "Report written" in window.status_label.text()


def test_predicted_text_says_larger_when_larger():
    from inspector.ui.export_dialog import predicted_text

    text = predicted_text(
        {"quantized_bytes": 1040, "file_bytes_before": 1000, "bits_per_weight": 8}
    )
    assert "1.04× larger" in text and "smaller" not in text
    text = predicted_text({"quantized_bytes": 500, "file_bytes_before": 1000, "bits_per_weight": 8})
    assert "2.00× smaller" in text


def test_default_output_is_named_after_the_model():
    from inspector.formats.registry import open_model
    from inspector.ui.export_dialog import default_output

    src = Path(__file__).resolve().parents[2] / "resources" / "digits_convnet" / "tfjs"
    with open_model(src / "model.json") as model:
        assert default_output(model, "tfjs") == src.parent / "digits_convnet_quantized"
        assert default_output(model, "safetensors").name == "digits_convnet_quantized.safetensors"


def test_export_node_data_from_the_window(qtbot, window, demo_path, open_and_wait, tmp_path):
    open_and_wait(window, demo_path("digits_convnet"))
    out = tmp_path / "nodes.json"
    window.exports.export_node_data(str(out), "sqnr_db")
    qtbot.waitUntil(out.exists, timeout=30_000)
    qtbot.waitUntil(lambda: not window.exports.task.busy, timeout=30_000)
    doc = json.loads(out.read_text())
    (graph,) = doc.values()
    names = {t.name for t in window.state.preview.tensors if t.skipped is None}
    assert names and names <= set(graph["results"])
    assert "node data written" in window.status_label.text()


def test_dialog_warns_before_storing_a_scheme_larger(
    qtbot, window, demo_path, open_and_wait, tmp_path, monkeypatch
):
    open_and_wait(window, demo_path("digits_convnet_tfjs"))
    window.state.set_plan(Plan(default="int4"))
    window.state.set_target("tfjs")
    dialog = _dialog(qtbot, window, "tfjs", tmp_path / "o")
    qtbot.waitUntil(lambda: bool(dialog.warning.text()), timeout=20_000)
    assert "TF.js re-stores int4 as uint16" in dialog.warning.text()
    assert "safetensors keeps the plan's sizes" in dialog.warning.text().lower()
    asked = []
    monkeypatch.setattr(dialogs, "confirm", lambda *a: asked.append(a) or False)
    dialog.accept()
    assert asked and "Store the plan larger?" in asked[0][1]
    assert dialog.result() != dialog.DialogCode.Accepted
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("safetensors"))
    qtbot.waitUntil(lambda: not dialog.warning_runner.busy, timeout=20_000)
    assert dialog.warning.text() == ""
