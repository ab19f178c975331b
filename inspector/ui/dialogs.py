"""Dialogs: the error box (one function, so tests can patch it) and the About/metrics help."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from inspector import __version__

__all__ = [
    "ABOUT_HTML",
    "ask_restore",
    "ask_unsaved_plan",
    "confirm",
    "show_about",
    "show_error",
]

ABOUT_HTML = f"""
<h3>Quantization Inspector {__version__}</h3>
<p>See what quantization does to every tensor of a trained model, choose a scheme per tensor,
and preview size and error in the format you will export.</p>
<h4>Metrics</h4>
<p><b>SQNR (dB)</b> — signal-to-quantization-noise ratio, 20·log10(‖w‖/‖w−w′‖). Every extra bit
adds about 6 dB; 8-bit affine on smooth weights gives roughly 35–45 dB, and below ~20 dB a layer
usually needs more bits or a finer granularity.</p>
<p><b>RMSE/scale</b> — the RMS error measured in quantization steps. Uniform rounding gives
≈0.29; above 0.7 (the TF-Lite debugger's rule of thumb) outliers or clipping dominate.</p>
<p><b>gzip ×</b> — stored bytes ÷ gzipped bytes (the TF.js example's definition); quantized
weights on a coarse grid gzip well, float32 barely at all.</p>
<p><b>File before → after</b> — every file of the input as it is on disk (an already-quantized
input counts its stored codes) → the file the chosen export format writes; <b>Compression</b>
is their ratio. <b>Weights</b> compares the weights alone; the summary says when the chosen
format stores the plan larger than its schemes need, and which format would not.</p>
<p><b>⚠ collapsed channels</b> — output channels a per-tensor grid leaves with ≤ 2 levels
(a depthwise kernel under one scale); a per-channel scheme (int8) fixes them.</p>
<h4>Keyboard</h4>
<table>
<tr><td>Ctrl+O</td><td>Open model</td></tr>
<tr><td>Ctrl+S / Ctrl+L</td><td>Save plan / Load plan</td></tr>
<tr><td>Ctrl+Shift+S</td><td>Save quantized model as…</td></tr>
<tr><td>Ctrl+E</td><td>Evaluate the model's outputs under the plan</td></tr>
<tr><td>Ctrl+Z / Ctrl+Shift+Z, Ctrl+Y</td><td>Undo / Redo a plan change</td></tr>
<tr><td>Ctrl+F</td><td>Filter tensors (glob, e.g. <code>conv*/kernel*</code>)</td></tr>
<tr><td>Ctrl+Return</td><td>Apply the scheme editor to the selection</td></tr>
<tr><td>F2</td><td>Edit the scheme of the selected row</td></tr>
<tr><td>Esc</td><td>Cancel the running preview, export, evaluation or sensitivity</td></tr>
<tr><td>Ctrl+Q</td><td>Quit</td></tr>
</table>
"""


def show_error(parent: QWidget | None, title: str, text: str) -> None:
    """Modal error message. Tests replace this function to avoid blocking."""
    QMessageBox.critical(parent, title, text)


def confirm(parent: QWidget | None, title: str, text: str) -> bool:
    """Yes/No question, No by default. Tests replace this function."""
    answer = QMessageBox.question(
        parent,
        title,
        text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def ask_restore(parent: QWidget | None, model_path: str, saved_at: str) -> bool:
    """Offer the autosaved plan of `model_path` back. Tests replace this function."""
    answer = QMessageBox.question(
        parent,
        "Restore unsaved plan?",
        f"There is an unsaved plan for\n{model_path}\nfrom {saved_at}.\n\nRestore it?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.Yes,
    )
    return answer == QMessageBox.StandardButton.Yes


def ask_unsaved_plan(parent: QWidget | None, model_name: str) -> str:
    """On quit with a plan not saved since it changed: "save", "discard" or "cancel".
    Tests replace this function."""
    buttons = QMessageBox.StandardButton
    answer = QMessageBox.question(
        parent,
        "Save the plan?",
        f"The plan for {model_name} has changes that are not saved to a plan file.\n\n"
        "Save it before quitting? (Discard also forgets the autosaved copy.)",
        buttons.Save | buttons.Discard | buttons.Cancel,
        buttons.Save,
    )
    if answer == buttons.Save:
        return "save"
    return "discard" if answer == buttons.Discard else "cancel"


def show_about(parent: QWidget | None) -> None:
    box = QMessageBox(parent)
    box.setWindowTitle("About Quantization Inspector")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(ABOUT_HTML)
    box.exec()
