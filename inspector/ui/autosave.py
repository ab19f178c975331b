"""Never lose the user's plan: autosave it (debounced, atomic) next to the settings, keyed by
the model's path, and offer it back when that model is opened again (after a crash, too).

The file is removed when the user saves the plan, declines the restore, or returns to the plan
the model opened with. Where: the folder of an INI settings file (QUANT_INSPECTOR_SETTINGS in
tests), else the platform's application data folder (QStandardPaths.AppDataLocation).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, QStandardPaths, QTimer
from PySide6.QtWidgets import QWidget

from inspector.core.errors import InspectorError
from inspector.core.plan import Plan
from inspector.ui import dialogs
from inspector.ui.state import AppState

__all__ = ["AUTOSAVE_DELAY_MS", "Autosaver", "autosave_dir", "autosave_path"]

AUTOSAVE_DELAY_MS = 1000
"""Quiet time after the last plan change before the plan is written (ms)."""


def autosave_dir(settings: QSettings) -> Path:
    """Folder for autosaved plans: beside an INI settings file, else the app data folder."""
    if settings.format() == QSettings.Format.IniFormat and settings.fileName():
        return Path(settings.fileName()).parent / "autosave"
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".quant-inspector") / "autosave"


def autosave_path(folder: Path, model_path: str | os.PathLike) -> Path:
    """One file per model, named by a hash of its absolute path."""
    key = hashlib.sha256(str(Path(model_path).absolute()).encode("utf-8")).hexdigest()[:24]
    return folder / f"plan-{key}.json"


class Autosaver(QObject):
    """Writes `state.plan` for the current model after each change (debounced)."""

    def __init__(self, state: AppState, settings: QSettings, parent: QWidget) -> None:
        super().__init__(parent)
        self.state = state
        self.window = parent
        self.folder = autosave_dir(settings)
        self.baseline: Plan | None = None
        self._pending: tuple[str, Plan] | None = None
        self._timer = QTimer(self, singleShot=True, interval=AUTOSAVE_DELAY_MS)
        self._timer.timeout.connect(self.flush)
        state.model_changed.connect(self._on_model)
        state.plan_changed.connect(self._on_plan)

    def _on_model(self) -> None:
        self.flush()
        self.baseline = None  # nothing is autosaved for the new model until `offer` ran

    def _on_plan(self) -> None:
        model = self.state.model
        if model is None or self.baseline is None:
            return
        self._pending = (str(model.path), self.state.plan)
        self._timer.start()

    def flush(self) -> None:
        """Write (or remove) the pending autosave now."""
        self._timer.stop()
        if self._pending is None:
            return
        path, plan = self._pending
        self._pending = None
        target = autosave_path(self.folder, path)
        if plan == self.baseline:
            target.unlink(missing_ok=True)
            return
        doc = {"model": path, "saved_at": datetime.now().isoformat(timespec="seconds")}
        doc["plan"] = plan.to_json()
        tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
            os.replace(tmp, target)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def clear(self) -> None:
        """Forget the autosave of the current model (the user saved or declined it)."""
        self._timer.stop()
        self._pending = None
        if self.state.model is not None:
            autosave_path(self.folder, self.state.model.path).unlink(missing_ok=True)
        self.baseline = self.state.plan

    def saved_plan(self, model_path: str | os.PathLike) -> tuple[Plan, str] | None:
        """(plan, when) autosaved for `model_path`, or None (unreadable files are ignored)."""
        try:
            doc = json.loads(autosave_path(self.folder, model_path).read_text(encoding="utf-8"))
            return Plan.from_json(doc["plan"]), str(doc.get("saved_at", "earlier"))
        except (OSError, ValueError, KeyError, TypeError, InspectorError):
            return None

    def offer(self) -> None:
        """Call when a model has been opened: offer its autosaved plan back (undoable)."""
        model = self.state.model
        self.baseline = self.state.plan
        if model is None:
            return
        found = self.saved_plan(model.path)
        if found is None or found[0] == self.state.plan:
            return
        plan, when = found
        if dialogs.ask_restore(self.window, str(model.path), when):
            self.state.set_plan(plan)
        else:
            self.clear()
