"""Saving from the window: the quantized model (File ▸ Save Quantized As…) and the report
(File ▸ Export Report…), both written on a worker with progress and Cancel.

`ask_export` and `ask_report_path` are module functions so tests can answer the dialogs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QDialog, QFileDialog, QWidget

from inspector.core.formatting import format_bytes, format_count
from inspector.ui import dialogs
from inspector.ui.export_dialog import ExportDialog, ExportRequest
from inspector.ui.state import AppState
from inspector.ui.tasks import BackgroundTask

__all__ = [
    "ExportActions",
    "ask_export",
    "ask_node_data",
    "ask_report_path",
    "describe_result",
    "explorer_metrics",
]

REPORT_FILTER = "HTML report (*.html);;JSON (*.json);;CSV (*.csv)"


def ask_export(parent: QWidget, state: AppState, cache: Any) -> ExportRequest | None:
    """Show the Save Quantized dialog; None when the user cancels."""
    dialog = ExportDialog(state, cache, parent)
    return dialog.request() if dialog.exec() == QDialog.DialogCode.Accepted else None


def ask_report_path(parent: QWidget, folder: str) -> str:
    path, _ = QFileDialog.getSaveFileName(parent, "Export report", folder, REPORT_FILTER)
    return path


def explorer_metrics(state: AppState) -> list[str]:
    """Metrics Model Explorer node data can hold now (sensitivity once it has been run)."""
    from inspector.core.explorer import METRICS

    return [m for m in METRICS if m != "sensitivity" or state.sensitivity]


def ask_node_data(parent: QWidget, state: AppState, folder: str) -> tuple[str, str] | None:
    """(metric, path) for Model Explorer node data; None when the user cancels."""
    from PySide6.QtWidgets import QInputDialog

    from inspector.core.explorer import METRICS

    keys = explorer_metrics(state)
    labels = [f"{METRICS[k].label} ({k})" for k in keys]
    label, ok = QInputDialog.getItem(
        parent, "Model Explorer node data", "Colour the graph by", labels, 0, False
    )
    if not ok:
        return None
    metric = keys[labels.index(label)]
    path, _ = QFileDialog.getSaveFileName(
        parent, "Export Model Explorer node data", folder, "Node data JSON (*.json)"
    )
    return (metric, path) if path else None


def describe_result(result: Any) -> str:
    """One status line: where, how many bytes, and what was baked (the writer's notes)."""
    files = len(result.files)
    text = (
        f"Saved {result.path} ({result.format}): {format_bytes(result.total_bytes)} "
        f"({format_count(result.total_bytes)} B in {files} file{'s' if files != 1 else ''})"
    )
    if result.notes:
        kinds = sorted({note for _, note in result.notes})
        text += f"; baked {len(result.notes)} tensors: " + "; ".join(kinds[:3])
        if len(kinds) > 3:
            text += f" (+{len(kinds) - 3} more)"
    return text


class ExportActions(QObject):
    """Owns the export task; the window connects `message` to its status line."""

    message = Signal(str)
    exported = Signal(object)

    def __init__(self, window: Any, state: AppState) -> None:
        super().__init__(window)
        self.window = window
        self.state = state
        self.task = BackgroundTask("Export", self)
        self.task.done.connect(self._on_done)
        self.task.failed.connect(self._on_failed)
        self.task.message.connect(self.message)
        self.last_result: Any = None
        self._result_plan: Any = None
        self._pending_plan: Any = None

    def save_quantized(self) -> None:
        """Ask for format and path, then export on the worker."""
        if self.state.model is None:
            return
        request = ask_export(self.window, self.state, self.window.preview.cache)
        if request is not None:
            self.export(request)

    def export(self, request: ExportRequest) -> None:
        from inspector.formats.export import export_model

        model, plan, rounding = self.state.model, self.state.plan, self.state.rounding

        def job(cancelled: Any, report: Any) -> Any:
            return export_model(
                model,
                plan,
                request.fmt,
                request.out,
                force=request.force,
                shard_bytes=request.shard_bytes,
                dequantized=request.dequantized,
                progress=lambda done, total, _name: report((done, total)),
                cancelled=cancelled,
                rounding=rounding,
            )

        self._pending_plan = plan
        self.message.emit(f"Exporting to {request.out}…")
        self.task.start(job)

    def _on_done(self, result: Any) -> None:
        if isinstance(result, Path):
            self.message.emit(f"Report written to {result}")
            return
        if isinstance(result, tuple) and result[0] == "node data":
            self.message.emit(f"Model Explorer node data written to {result[1]}")
            return
        self.last_result, self._result_plan = result, self._pending_plan
        self.message.emit(describe_result(result))
        self.exported.emit(result)

    def _on_failed(self, text: str) -> None:
        self.message.emit(f"Save failed: {text}")
        dialogs.show_error(self.window, "Cannot save", text)

    def export_node_data(self, path: str | None = None, metric: str | None = None) -> None:
        """Write the current preview's `metric` as Google Model Explorer node data (tensor
        and layer keys; graph id = the model's name), on the worker."""
        state = self.state
        if state.model is None:
            return
        if state.preview is None or state.preview_plan != state.plan:
            dialogs.show_error(
                self.window, "Node data not ready", "The preview is still running; try again."
            )
            return
        if not path or not metric:
            folder = str(self.window.settings.value("last_folder", str(Path.home())))
            answer = ask_node_data(self.window, state, folder)
            if answer is None:
                return
            metric, path = answer
        from inspector.core.explorer import node_data
        from inspector.formats.naming import model_name
        from inspector.report import write_node_data

        model, tensors = state.model, state.preview.tensors  # type: ignore[attr-defined]
        sensitivity = {name: value for name, (value, _text) in state.sensitivity.items()}
        out = str(path)
        force = Path(out).exists()

        def job(cancelled: Any, report: Any) -> tuple[str, Path]:
            doc = node_data(tensors, str(metric), model_name(model), sensitivity=sensitivity)
            return "node data", write_node_data(out, doc, model, force=force)

        self.task.start(job)

    def export_report(self, path: str | None = None) -> None:
        """Write the HTML/JSON/CSV report of the current plan's preview (format from suffix)."""
        state = self.state
        if state.model is None:
            return
        if state.preview is None or state.preview_plan != state.plan:
            dialogs.show_error(
                self.window, "Report not ready", "The preview is still running; try again."
            )
            return
        if not path:
            folder = str(self.window.settings.value("last_folder", str(Path.home())))
            path = ask_report_path(self.window, folder)
        if not path:
            return
        from inspector.report import write_report

        model, plan, preview = state.model, state.plan, state.preview
        result = self.last_result if self._result_plan == plan else None
        force = Path(path).exists()
        from inspector.ui.controllers import resolve_target

        target = resolve_target(state.target_name).name
        evaluation = self._evaluation_texts()
        sensitivity, unit = self._sensitivity_values()

        def job(cancelled: Any, report: Any) -> Path:
            return write_report(
                path,
                model,
                plan,
                preview,
                result,
                force=force,
                target=target,
                evaluation=evaluation,
                sensitivity=sensitivity,
                sensitivity_unit=unit,
            )

        self.task.start(job)

    def _evaluation_texts(self) -> dict[str, str]:
        """The Output tab's evaluation figures as shown (empty when not evaluated)."""
        output = getattr(self.window, "output", None)
        values = getattr(output, "values", {})
        names = {"sqnr": "Output SQNR", "top1": "Top-1 agreement", "score": "Score"}
        texts = {names.get(k, k): label.text() for k, label in values.items()}
        if not any(t not in ("", "–") for t in texts.values()):
            return {}
        data = getattr(output, "data_label", None)
        if data is not None and data.text():
            texts["Data"] = data.text()
        return texts

    def _sensitivity_values(self) -> tuple[dict[str, float], str]:
        """Per-layer (else per-tensor) sensitivity of the last run, larger = worse."""
        sens = self.state.sensitivity
        if not sens or self.state.model is None:
            return {}, ""
        by_unit: dict[str, float] = {}
        for name, (value, _text) in sens.items():
            tensor = self.state.model.tensors.get(name)
            unit = tensor.info.layer if tensor is not None and tensor.info.layer else name
            if value > -1e300:
                by_unit[unit] = max(value, by_unit.get(unit, value))
        texts = {text for _v, text in sens.values()}
        unit = "accuracy points lost" if any("pts" in t for t in texts) else "output noise (dB)"
        return by_unit, unit
