"""The main window: menus, layout (tensors | plots | scheme editor + rules, summary below),
drag-and-drop, settings, status bar with progress and Cancel.

It wires widgets to the one `AppState` and to the controllers; it computes nothing itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from inspector.core.errors import InspectorError
from inspector.core.plan import Plan
from inspector.ui import dialogs
from inspector.ui.autosave import Autosaver
from inspector.ui.controllers import ModelOpener, PreviewController, retire_model
from inspector.ui.curve_view import CurveView
from inspector.ui.detail import DetailController
from inspector.ui.error_view import ErrorView
from inspector.ui.evaluation import EvaluationController
from inspector.ui.export_actions import ExportActions
from inspector.ui.gc_guard import collect_in_gui_thread
from inspector.ui.histogram_view import HistogramView
from inspector.ui.output_panel import OutputPanel
from inspector.ui.plot_style import configure_pyqtgraph
from inspector.ui.rounding_view import RoundingView
from inspector.ui.rules_list import RulesList
from inspector.ui.scheme_editor import SchemeEditor
from inspector.ui.state import AppState
from inspector.ui.summary_panel import SummaryPanel
from inspector.ui.tensor_panel import TensorPanel
from inspector.ui.transforms_ui import TransformBar, TransformController

__all__ = ["MAX_RECENT", "MainWindow"]

MAX_RECENT = 10


def _scrolled(widget: QWidget) -> QScrollArea:
    """`widget` in a frameless scroll area, so a small screen scrolls instead of clipping."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area


def window_title(model: object) -> str:
    """ "digits_convnet (TF.js) — Quantization Inspector": the model's name, not "model.json"."""
    from inspector.formats.naming import model_name
    from inspector.formats.registry import spec_for_input

    try:
        label = spec_for_input(model.format).label.split(" (")[0]  # type: ignore[attr-defined]
    except InspectorError:
        label = str(getattr(model, "format", ""))
    return f"{model_name(model)} ({label}) — Quantization Inspector"  # type: ignore[arg-type]


class MainWindow(QMainWindow):
    """One window, one model at a time. `settings` may be a temporary QSettings in tests."""

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        configure_pyqtgraph()
        collect_in_gui_thread()
        self.settings = settings or QSettings()
        self.state = AppState(self)
        self.opener = ModelOpener(self)
        self.preview = PreviewController(self.state, self)
        self.detail = DetailController(self.state, self)
        self.exports = ExportActions(self, self.state)
        self.autosave = Autosaver(self.state, self.settings, self)
        self.evaluation = EvaluationController(self.state, self)
        self.transforms = TransformController(self.state, self)
        self.setWindowTitle("Quantization Inspector")
        self.setAcceptDrops(True)
        self._build_widgets()
        self._build_menus()
        self._build_status()
        self._connect()
        self._restore()

    # -- construction -----------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.tensors = TensorPanel(self.state)
        self.histogram = HistogramView(self.state, self.detail)
        self.curves = CurveView(self.state, self.detail)
        self.errors = ErrorView(self.state, self.detail)
        self.tabs = QTabWidget()
        self.output = OutputPanel(self.state, self.evaluation)
        self.rounding = RoundingView(self.state, self.evaluation)
        # Short titles: five tabs fit a 420-px column without scroll arrows at 1280×800.
        pages = (
            (self.histogram, "Histogram", "Histogram of the selected tensor with its levels"),
            (self.curves, "Curve", "Discretization curve: original → stored value"),
            (self.errors, "Error", "Quantization error and per-channel ranges"),
            (self.output, "Output", "Model output: evaluation, sensitivity, size budget"),
            (self.rounding, "Rounding", "Rounding A/B on the selected tensor"),
        )
        for page, title, tip in pages:
            index = self.tabs.addTab(page, title)
            self.tabs.setTabToolTip(index, tip)
        self.editor = SchemeEditor(self.state)
        self.rules = RulesList(self.state)
        self.summary = SummaryPanel(self.state)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.editor)
        right.addWidget(self.rules)
        right.setStretchFactor(1, 1)
        right.setSizes([430, 200])
        self.right_split = right
        self.hsplit = QSplitter(Qt.Orientation.Horizontal)
        self.hsplit.addWidget(self.tensors)
        self.hsplit.addWidget(self.tabs)
        self.hsplit.addWidget(right)
        self.hsplit.setSizes([520, 600, 280])
        self.hsplit.setStretchFactor(0, 1)  # a wider window widens the table and the plots
        self.hsplit.setStretchFactor(1, 1)
        self.vsplit = QSplitter(Qt.Orientation.Vertical)
        self.vsplit.addWidget(self.hsplit)
        self.transform_bar = TransformBar(self.state, self.transforms)
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addWidget(self.transform_bar)
        bottom_layout.addWidget(self.summary, 1)
        self.vsplit.addWidget(_scrolled(bottom))
        self.vsplit.setStretchFactor(0, 1)
        self.vsplit.setSizes([640, 215])
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.vsplit)
        self.setCentralWidget(central)

    def _action(self, menu: object, text: str, slot: object, shortcut: object = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)  # type: ignore[attr-defined]
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(file, "&Open model…", self.choose_model, QKeySequence.StandardKey.Open)
        self.recent_menu = file.addMenu("Open &recent")
        file.addSeparator()
        self._action(file, "&Save plan…", self.save_plan, QKeySequence.StandardKey.Save)
        self._action(file, "&Load plan…", self.choose_plan, "Ctrl+L")
        file.addSeparator()
        self.save_quantized_action = self._action(
            file, "Save &Quantized As…", self.exports.save_quantized, "Ctrl+Shift+S"
        )
        self._action(file, "Export &Report…", self.exports.export_report)
        self._action(file, "Export Model E&xplorer Node Data…", self.exports.export_node_data)
        self._action(file, "Choose &Evaluation Data…", self.choose_eval_data)
        self._action(file, "E&valuate outputs", self._evaluate, "Ctrl+E")
        file.addSeparator()
        self.quit_action = self._action(file, "&Quit", self.quit, QKeySequence.StandardKey.Quit)
        edit = bar.addMenu("&Edit")
        self.undo_action = self._action(edit, "&Undo plan change", self.state.undo, "Ctrl+Z")
        self.redo_action = self._action(edit, "&Redo", self.state.redo, "Ctrl+Shift+Z")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        edit.addSeparator()
        self._action(edit, "&Apply scheme to selection", self.editor.apply, "Ctrl+Return")
        self._action(edit, "&Clear overrides of selection", self.editor.clear_overrides)
        self._action(edit, "Edit scheme of current row", self._edit_current, "F2")
        view = bar.addMenu("&View")
        names = ("&Histogram", "&Discretization curve", "&Error", "&Output && sensitivity")
        for i, name in enumerate(names):
            self._action(
                view, name, lambda _=False, i=i: self.tabs.setCurrentIndex(i), f"Ctrl+{i + 1}"
            )
        view.addSeparator()
        self._action(view, "&Filter tensors", self._focus_filter, QKeySequence.StandardKey.Find)
        self._action(view, "&Sine demo (16- vs 8-bit)", self._show_sine_demo)
        from inspector.ui.llama_menu import add_model_menu

        add_model_menu(self)
        help_ = bar.addMenu("&Help")
        self._action(help_, "&Metrics and shortcuts", lambda: dialogs.show_about(self), "F1")

    def _build_status(self) -> None:
        self.status_label = QLabel("")
        # Ignored width: a new message must not re-lay out the whole window.
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.progress = QProgressBar(maximumWidth=220, textVisible=True)
        self.progress.setFormat("Preview %v / %m tensors")
        self.cancel_button = QPushButton("Cancel (Esc)")
        self.cancel_button.clicked.connect(self.preview.cancel)
        self.cancel_action = QAction("Cancel", self, shortcut=QKeySequence("Esc"))
        self.cancel_action.triggered.connect(self.cancel_work)
        self.addAction(self.cancel_action)
        status = self.statusBar()
        status.addWidget(self.status_label, 1)
        for task in self.tasks():
            status.addPermanentWidget(task.bar)
            status.addPermanentWidget(task.button)
            task.message.connect(self.status_label.setText)
        status.addPermanentWidget(self.progress)
        status.addPermanentWidget(self.cancel_button)
        for widget in (self.progress, self.cancel_button):
            # Their space stays when hidden: showing them mid-preview must not change the
            # status bar's height, which re-lays out and repaints every plot (~80 ms).
            policy = widget.sizePolicy()
            policy.setRetainSizeWhenHidden(True)
            widget.setSizePolicy(policy)
            widget.hide()

    def _connect(self) -> None:
        self.opener.opened.connect(self._on_opened)
        self.opener.failed.connect(self._on_open_failed)
        self.opener.started.connect(lambda p: self.status_label.setText(f"Opening {p}…"))
        self.preview.progress.connect(self._on_progress)
        self.preview.running.connect(self._on_running)
        self.preview.message.connect(self.status_label.setText)
        self.exports.message.connect(self.status_label.setText)
        self.evaluation.failed.connect(lambda t: dialogs.show_error(self, "Evaluation failed", t))
        self.errors.before_ranges = self.transforms.before_ranges
        self.preview.gzip_progress.connect(self.summary.show_gzip_progress)
        self.preview.failed.connect(lambda text: dialogs.show_error(self, "Preview failed", text))
        self.state.history_changed.connect(self._on_history)
        self.summary.tensor_clicked.connect(lambda n: self.state.set_selection([n], n))
        self._on_history()

    # -- opening ----------------------------------------------------------------------------
    def open_path(self, path: str | os.PathLike) -> None:
        """Open a model file or TF.js folder on a worker; the current model stays until it loads."""
        self.opener.open(os.fspath(path))

    def choose_model(self) -> None:
        folder = str(self.settings.value("last_folder", str(Path.home())))
        from inspector.formats.registry import open_filter

        path, _ = QFileDialog.getOpenFileName(self, "Open model", folder, open_filter())
        if path:
            self.open_path(path)

    def _on_opened(self, model: object) -> None:
        old, opened = self.state.model, self.state.original_model
        self.preview.runner.cancel()
        self.detail.runner.cancel()
        self.transforms.reset()
        self.state.set_model(model, target=model.format)  # type: ignore[arg-type,attr-defined]
        retire_model(old, self.model_readers())
        retire_model(opened, self.model_readers())
        path = str(model.path)  # type: ignore[attr-defined]
        self._remember(path)
        self.setWindowTitle(window_title(model))
        self.status_label.setText(f"Opened {path} ({model.format}, {len(model)} tensors)")  # type: ignore[attr-defined]
        first = next((t.name for t in model if t.info.is_float), None)  # type: ignore[attr-defined]
        if first is not None:
            self.state.set_selection([first], first)
        self.autosave.offer()

    def _on_open_failed(self, path: str, reason: str) -> None:
        self.status_label.setText(f"Could not open {path}")
        dialogs.show_error(self, "Cannot open model", f"{path}\n\n{reason}")

    def _remember(self, path: str) -> None:
        recent = [p for p in self.recent_files() if p != path]
        recent.insert(0, path)
        self.settings.setValue("recent_files", recent[:MAX_RECENT])
        folder = path if os.path.isdir(path) else os.path.dirname(path)
        self.settings.setValue("last_folder", folder)
        self._fill_recent()

    def recent_files(self) -> list[str]:
        value = self.settings.value("recent_files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in value or []]

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.recent_files():
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(self.recent_files()))

    # -- drag and drop ----------------------------------------------------------------------
    # Drops are copies: the window only reads the file, so a file manager must never be told
    # to move (and delete) the user's model.
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if event.mimeData().hasUrls():
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
            self.open_path(urls[0].toLocalFile())

    # -- plans ------------------------------------------------------------------------------
    def save_plan(self, path: str | None = None) -> None:
        if not path:
            folder = str(self.settings.value("last_folder", str(Path.home())))
            path, _ = QFileDialog.getSaveFileName(self, "Save plan", folder, "Plan (*.json)")
        if not path:
            return
        from inspector.core.errors import InspectorError
        from inspector.formats.atomic import atomic_file

        try:  # the exports' verified workspace: never `{path}.tmp`, a name the user may own
            with atomic_file(path) as fh:
                fh.write(self.state.plan.dumps().encode("utf-8"))
        except InspectorError as exc:
            dialogs.show_error(self, "Cannot save plan", str(exc))
            return
        except OSError as exc:
            dialogs.show_error(self, "Cannot save plan", f"{path}\n\n{exc.strerror or exc}")
            return
        self.autosave.clear()
        self.status_label.setText(f"Plan saved to {path}")

    def choose_plan(self) -> None:
        folder = str(self.settings.value("last_folder", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, "Load plan", folder, "Plan (*.json)")
        if path:
            self.load_plan(path)

    def load_plan(self, path: str) -> None:
        try:
            plan = Plan.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, InspectorError) as exc:
            dialogs.show_error(self, "Cannot load plan", f"{path}\n\n{exc}")
            return
        self.state.set_plan(plan)
        self.status_label.setText(f"Plan loaded from {path}")

    # -- small slots ------------------------------------------------------------------------
    def _on_history(self) -> None:
        self.undo_action.setEnabled(self.state.can_undo)
        self.redo_action.setEnabled(self.state.can_redo)

    def _on_progress(self, done: int, total: int) -> None:
        # QProgressBar.setValue repaints synchronously, and a synchronous repaint paints every
        # dirty widget of the window (the table rows the same batch changed: 30-90 ms). With
        # updates off it only records the value; turning them back on schedules a normal
        # paint with the rest of the window.
        self.progress.setUpdatesEnabled(False)
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.progress.setUpdatesEnabled(True)

    def _on_running(self, running: bool) -> None:
        # Short previews (one changed tensor) would only flash the bar; show it after 150 ms.
        if running:
            QTimer.singleShot(150, self._show_progress_if_running)
        else:
            self.progress.hide()
            self.cancel_button.hide()

    def _show_progress_if_running(self) -> None:
        if self.preview.runner.busy:
            self.progress.show()
            self.cancel_button.show()

    def _focus_filter(self) -> None:
        self.tensors.filter_edit.setFocus()
        self.tensors.filter_edit.selectAll()

    def _edit_current(self) -> None:
        view = self.tensors.view
        idx = view.currentIndex()
        if idx.isValid():
            view.edit(idx.siblingAtColumn(4))

    def _show_sine_demo(self) -> None:
        self.tabs.setCurrentWidget(self.curves)
        self.curves.sine_box.setChecked(True)

    def choose_eval_data(self) -> None:
        folder = str(self.settings.value("last_folder", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(
            self, "Evaluation data (x, optional y)", folder, "NumPy (*.npz)"
        )
        if path:
            self.evaluation.set_data_path(path)
            self.state.set_calibration_path(path)
            self.output.data_label.setText(f"data: {path} (used from the next evaluation)")

    def _evaluate(self) -> None:
        self.tabs.setCurrentWidget(self.output)
        self.evaluation.evaluate()

    def _on_preview_failed(self, text: str) -> None:
        if not self.preview.stopped:
            dialogs.show_error(self, "Preview failed", text)

    def tasks(self) -> list:
        """User-started background tasks, each with its own progress bar and Cancel."""
        return [self.exports.task, *self.evaluation.tasks, self.transforms.task, self.rounding.task]

    def cancel_work(self) -> None:
        """Esc: cancel the preview and every running task; the status line names the jobs
        that were actually running (not every task that could run)."""
        stopped = [task.job_label for task in self.tasks() if task.cancel()]
        self.preview.cancel()
        if stopped:
            self.status_label.setText(" and ".join(stopped) + " cancelled")

    def model_readers(self) -> list:
        """Every worker runner that may read the current model's tensors."""
        readers = [self.preview.runner, self.preview.gzip_runner, self.detail.runner]
        return readers + [task.runner for task in self.tasks()]

    # -- persistence ------------------------------------------------------------------------
    def _restore(self) -> None:
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray | bytes) and geometry:
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 900)
        for key, splitter in self.splitters().items():
            value = self.settings.value(key)
            if isinstance(value, QByteArray | bytes) and value:
                splitter.restoreState(value)
        self._fill_recent()

    def splitters(self) -> dict[str, QSplitter]:
        """Every splitter whose sizes the window remembers (QSettings key → splitter)."""
        return {
            "hsplit": self.hsplit,
            "vsplit": self.vsplit,
            "right_split": self.right_split,
            "output_split": self.output.splitter,
        }

    def shutdown(self) -> None:
        """Cancel all work, wait for the workers, close the model (also on window close)."""
        self._shut_down = True
        self.autosave.flush()
        self.preview.stop()
        self.detail._timer.stop()
        self.state.blockSignals(True)  # nothing may start new work on a closing model
        for runner in [self.opener.runner, *self.model_readers()]:
            runner.wait()
        for model in (self.state.model, self.state.original_model):
            if model is not None:
                model.close()

    def has_unsaved_plan(self) -> bool:
        """True when the plan changed since the model was opened or the plan last saved."""
        baseline = self.autosave.baseline
        if getattr(self, "_shut_down", False):
            return False  # already shut down: the model is closed, nothing left to ask about
        return self.state.model is not None and baseline is not None and self.state.plan != baseline

    def quit(self) -> None:
        """File ▸ Quit: close as the window manager's close button does (asking first about
        an unsaved plan); a programmatic `close()` does not ask."""
        self._user_close = True
        try:
            self.close()
        finally:
            self._user_close = False

    def closeEvent(self, event: QCloseEvent) -> None:
        by_user = event.spontaneous() or getattr(self, "_user_close", False)
        if by_user and self.has_unsaved_plan():
            from inspector.formats.naming import model_name

            answer = dialogs.ask_unsaved_plan(self, model_name(self.state.model))  # type: ignore[arg-type]
            if answer == "save":
                self.save_plan()
                if self.has_unsaved_plan():  # the file dialog was cancelled or failed
                    event.ignore()
                    return
            elif answer == "discard":
                self.autosave.clear()
            else:
                event.ignore()
                return
        self.settings.setValue("geometry", self.saveGeometry())
        for key, splitter in self.splitters().items():
            self.settings.setValue(key, splitter.saveState())
        self.settings.sync()
        self.shutdown()
        super().closeEvent(event)
