"""File ▸ Save Quantized As…: format, output path, TF.js shard size, safetensors "dequantized",
and the predicted size (the preview's total under that format) before anything is written.

The dialog only collects an `ExportRequest`; the export itself runs on a worker (see
`export_actions.py`). It refuses the input file/folder as output and asks before replacing an
existing output.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from inspector.core.errors import InspectorError
from inspector.core.formatting import format_bytes, format_count
from inspector.core.model import Model
from inspector.core.preview import PreviewCache, iter_preview
from inspector.formats.base import FormatSpec
from inspector.formats.registry import export_choices, export_spec
from inspector.ui import dialogs
from inspector.ui.state import AppState
from inspector.ui.workers import JobRunner

__all__ = [
    "ExportDialog",
    "ExportRequest",
    "default_output",
    "export_formats",
    "predicted_text",
    "restore_warning",
]


@dataclass(frozen=True)
class ExportRequest:
    """What the user asked for; `shard_bytes` matters for TF.js, `dequantized` for safetensors."""

    fmt: str
    out: Path
    force: bool = False
    shard_bytes: int = 4 << 20
    dequantized: bool = False


def export_formats(model: Model) -> list[tuple[str, str]]:
    """(format, reason it is unavailable or "") for this input, in menu order."""
    return [(fmt, export_spec(fmt).refusal(model)) for fmt in export_choices()]


def default_output(model: Model, fmt: str) -> Path:
    """Beside the input, named after the model (`formats.naming.model_name`, not the file or
    a folder named after its format): `<name>_quantized` plus the format's suffix, or a folder
    of that name for formats that write folders."""
    from inspector.formats.naming import model_name

    spec = export_spec(fmt)
    src = Path(model.path)
    base = src.parent
    if src.is_dir() or src.name == "model.json":
        base = (src if src.is_dir() else src.parent).parent
    name = model_name(model)
    if spec.writes_folder:
        return base / f"{name}_quantized"
    return base / f"{name}_quantized{spec.suffix_for(model)}"


def predicted_text(total: Any) -> str:
    """The predicted file size against the input's on-disk size: "smaller" or "larger" as it
    is, never a ratio below 1 called smaller."""
    after = int(total["quantized_bytes"])
    before = int(total.get("file_bytes_before") or total.get("original_bytes") or 0)
    text = f"{format_bytes(after)} ({format_count(after)} B"
    if before and after:
        if after < before:
            text += f"; {before / after:.2f}× smaller than the input's {format_bytes(before)}"
        elif after > before:
            text += f"; {after / before:.2f}× larger than the input's {format_bytes(before)}"
        else:
            text += "; the same size as the input"
    return text + f"; {total['bits_per_weight']:.2f} bits/weight)"


def output_problem(model: Model, out: str) -> str:
    """Why `out` cannot be written ("" when it can); an existing output is not a problem here
    (the user is asked), the input itself always is."""
    from inspector.formats.atomic import check_output
    from inspector.formats.export import input_paths

    if not out.strip():
        return "choose where to write"
    try:
        check_output(out, input_paths(model), force=True)
    except InspectorError as exc:
        return getattr(exc, "reason", None) or str(exc)
    return ""


class ExportDialog(QDialog):
    """Collects an `ExportRequest`; `request()` after `exec()` returned Accepted."""

    def __init__(
        self, state: AppState, cache: PreviewCache | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Save quantized model")
        self.setMinimumWidth(560)
        self.state = state
        self.model: Model = state.model  # type: ignore[assignment]
        self.cache = cache if cache is not None else PreviewCache()
        self.runner = JobRunner(1, self)
        self.runner.done.connect(self._on_predicted)
        self.runner.failed.connect(lambda _g, exc: self.predicted.setText(f"unknown ({exc})"))
        self.predicted_bytes: int | None = None
        self.warning_runner = JobRunner(1, self)
        self.warning_runner.done.connect(self._on_warning)
        self._build()
        self._on_format()

    def _build(self) -> None:
        self.format_combo = QComboBox()
        for fmt, reason in export_formats(self.model):
            self.format_combo.addItem(export_spec(fmt).label, fmt)
            if reason:
                item = self.format_combo.model().item(self.format_combo.count() - 1)
                item.setEnabled(False)
                item.setToolTip(reason)
        own = self._own_format()
        self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(own)))
        self.format_combo.currentIndexChanged.connect(self._on_format)
        self.path_edit = QLineEdit()
        self.path_edit.textChanged.connect(self._validate)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)
        self.shard_spin = QDoubleSpinBox(suffix=" MiB", minimum=0.25, maximum=2048, decimals=2)
        self.shard_spin.setValue(4.0)
        self.shard_spin.setToolTip("TF.js cuts the weights into shard files of at most this size")
        self.dequantized_box = QCheckBox("Store dequantized values (float32/float16)")
        self.dequantized_box.setToolTip(
            "Plain values any safetensors reader loads, instead of codes + scales (larger file)"
        )
        self.dequantized_box.toggled.connect(self._on_format)
        self.predicted = QLabel("…")
        self.predicted.setWordWrap(True)
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #8a4b00")
        self.problem = QLabel("")
        self.problem.setStyleSheet("color: #b00020")
        self.problem.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Format", self.format_combo)
        form.addRow("Save to", path_row)
        form.addRow("Shard size", self.shard_spin)
        form.addRow("", self.dequantized_box)
        form.addRow("Predicted size", self.predicted)
        form.addRow("", self.warning)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)

    def _own_format(self) -> str:
        """The format the summary's sizes are for (the user chose it there), else the
        input's own."""
        from inspector.formats.export import default_format
        from inspector.ui.controllers import resolve_target

        chosen = resolve_target(self.state.target_name).name
        if chosen in export_choices() and not export_spec(chosen).refusal(self.model):
            return chosen
        try:
            return default_format(self.model)
        except InspectorError:
            return "safetensors"

    @property
    def fmt(self) -> str:
        return str(self.format_combo.currentData())

    @property
    def _spec(self) -> FormatSpec:
        return export_spec(self.fmt)

    def _dequantized(self) -> bool:
        return "dequantized" in self._spec.export_fields and self.dequantized_box.isChecked()

    def _on_format(self) -> None:
        fmt = self.fmt
        layout: QFormLayout = self.layout().itemAt(0).layout()  # type: ignore[assignment]
        fields = self._spec.export_fields
        layout.setRowVisible(self.shard_spin, "shard_bytes" in fields)
        layout.setRowVisible(self.dequantized_box, "dequantized" in fields)
        self.path_edit.setText(str(default_output(self.model, fmt)))
        self.warning.setText("")
        self.warning.hide()
        if not self._dequantized():
            model, plan, fmt, label = self.model, self.state.plan, fmt, self._spec.label
            self.warning_runner.submit(
                lambda cancelled, report: restore_warning(model, plan, fmt, label)
            )
        self._predict()

    def _on_warning(self, gen: int, text: Any) -> None:
        if gen == self.warning_runner.generation:
            self.warning.setText(str(text or ""))
            self.warning.setVisible(bool(text))

    def _predict(self) -> None:
        """The preview's total under the chosen format, on a worker (cached tensors are free)."""
        self.predicted_bytes = None
        if self._dequantized():
            self.runner.cancel()
            self.predicted.setText("not predicted for dequantized values (about the float size)")
            return
        state = self.state
        if state.preview is not None and state.preview_plan == state.plan and self._same_target():
            self._on_predicted(0, state.preview)
            return
        from inspector.ui.controllers import resolve_target

        target = resolve_target(self.fmt).with_rounding(state.rounding)
        model, plan, cache = self.model, state.plan, self.cache
        self.predicted.setText("computing…")

        def job(cancelled: Any, report: Any) -> Any:
            gen = iter_preview(model, plan, target, cache)
            while not cancelled():
                try:
                    next(gen)
                except StopIteration as stop:
                    return stop.value
            return None

        self.runner.submit(job)

    def _same_target(self) -> bool:
        from inspector.ui.controllers import resolve_target

        return resolve_target(self.state.target_name).name == resolve_target(self.fmt).name

    def _on_predicted(self, _gen: int, preview: Any) -> None:
        if preview is None:
            return
        self.predicted_bytes = int(preview.total["quantized_bytes"])
        self.predicted.setText(predicted_text(preview.total))

    def _browse(self) -> None:
        current = self.path_edit.text()
        if self._spec.writes_folder:
            path = QFileDialog.getExistingDirectory(self, "Folder for model.json", current)
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Save quantized model", current)
        if path:
            self.path_edit.setText(path)

    def _validate(self) -> None:
        problem = output_problem(self.model, self.path_edit.text())
        self.problem.setText(problem)
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(not problem)

    def request(self) -> ExportRequest:
        return ExportRequest(
            self.fmt,
            Path(self.path_edit.text().strip()),
            force=Path(self.path_edit.text().strip()).exists(),
            shard_bytes=int(self.shard_spin.value() * (1 << 20)),
            dequantized=self._dequantized(),
        )

    def accept(self) -> None:
        """Refuse the input; ask before replacing an existing output."""
        self._validate()
        if self.problem.text():
            return
        out = Path(self.path_edit.text().strip())
        warning = self.warning.text()
        if self.warning_runner.busy and not self._dequantized():  # clicked before it arrived
            warning = restore_warning(self.model, self.state.plan, self.fmt, self._spec.label)
        if warning and not dialogs.confirm(
            self, "Store the plan larger?", warning.removeprefix("⚠ ") + "\n\nSave anyway?"
        ):
            return
        if out.exists() and not dialogs.confirm(
            self, "Replace existing output?", f"{out} already exists.\n\nReplace it?"
        ):
            return
        self.runner.wait(5_000)
        self.warning_runner.wait(5_000)
        super().accept()

    def reject(self) -> None:
        self.runner.wait(5_000)
        self.warning_runner.wait(5_000)
        super().reject()


def restore_warning(model: Model, plan: Any, fmt: str, label: str) -> str:
    """Which schemes format `fmt` re-stores larger than they are ("" when none), and the
    format that keeps the plan's sizes; from shapes only, run on a worker (~0.1 s for a
    few hundred tensors)."""
    from inspector.core.totals import restored_larger
    from inspector.formats.compare import savings_note
    from inspector.ui.controllers import resolve_target

    rows = restored_larger(model, plan, resolve_target(fmt))
    if not rows:
        return ""
    parts = [
        f"{scheme} as {stored} ({n} tensor{'s' if n != 1 else ''}: "
        f"{format_bytes(have)} instead of {format_bytes(need)})"
        for scheme, stored, n, need, have in rows[:3]
    ]
    text = f"⚠ {label.split(' (')[0]} re-stores " + "; ".join(parts) + "."
    better = savings_note(model, plan, fmt)
    if better is not None:
        text += f" {export_spec(better[0]).label.split(' (')[0]} keeps the plan's sizes."
    return text
