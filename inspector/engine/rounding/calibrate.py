"""Where GPTQ's calibration data comes from, for the CLI and the window alike.

A user's `.npz` (`x` or `x0`, `x1`, …, read without unpickling) wins; else the `sample.npz`
bundled beside a demo model. There is no synthetic fallback here on purpose: GPTQ fitted to
random probes would be passed off as a repair, so without data `round=gptq` rounds to nearest
and the preview says it needs data. (An experiment may still hand `GptqRounding` any inputs.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inspector.core.errors import InspectorError
from inspector.core.model import Model, Tensor
from inspector.core.rounding.data import NEEDS_DATA
from inspector.core.rounding.options import rounding_of
from inspector.core.schemes import Encoded, Scheme
from inspector.engine.errors import EvaluationUnavailable
from inspector.engine.eval_data import EvalData, find_bundled_data, load_data
from inspector.engine.rounding.session import GptqRounding

__all__ = ["Calibration", "LazyCalibration", "open_calibration", "uses_gptq"]


def uses_gptq(schemes: Iterable[Scheme]) -> bool:
    """True when any of the schemes asks for `round=gptq`."""
    return any(rounding_of(s) == "gptq" for s in schemes)


@dataclass(frozen=True)
class Calibration:
    """A `GptqRounding` and what it was calibrated on, or None and why there is none."""

    rounding: GptqRounding | None
    source: str

    @property
    def message(self) -> str:
        if self.rounding is None:
            return f"round=gptq: {self.source}; nearest"
        return f"round=gptq calibrated on {self.source}"


def open_calibration(
    model: Model,
    data_path: str | Path | None = None,
    max_samples: int | None = None,
    data: EvalData | None = None,
) -> Calibration:
    """GPTQ calibrated on `data`, else the user's file, else the model's bundled sample.

    Returns a `Calibration` without rounding (and the reason) when there is no data or the
    model cannot run; a user's file that does not fit the model raises `FormatError`.
    """
    if data is None:
        path = Path(data_path) if data_path is not None else find_bundled_data(model.path)
        if path is None:
            return Calibration(None, NEEDS_DATA)
        try:
            from inspector.engine.evaluate import make_executor

            shapes = make_executor(model).input_shapes
        except (EvaluationUnavailable, InspectorError) as exc:
            return Calibration(None, f"the model cannot run ({exc})")
        source = "file" if data_path is not None else "bundled"
        data = load_data(path, shapes, source).head(max_samples)
    return Calibration(GptqRounding(model, data.inputs), data.describe())


class LazyCalibration:
    """A `DataRounding` that opens its calibration (data file or bundled sample, model run)
    on first use, in whichever worker thread previews first: the window can attach it to its
    target when a model opens without reading weights or data on the GUI thread."""

    def __init__(self, model: Model, data_path: str | Path | None = None) -> None:
        self._model = model
        self._path = data_path
        self._calibration: Calibration | None = None
        self._lock = threading.Lock()

    @property
    def key(self) -> str:
        """The model object (a transformed model has the same path, other weights) and data."""
        return f"gptq:{self._model.path}#{id(self._model):x}|{self._path or 'bundled'}"

    @property
    def calibration(self) -> Calibration:
        """The calibration (opened now if it was not yet); never raises for bad data."""
        with self._lock:
            if self._calibration is None:
                try:
                    self._calibration = open_calibration(self._model, self._path)
                except InspectorError as exc:
                    self._calibration = Calibration(None, str(exc))
            return self._calibration

    def choose(
        self, tensor: Tensor, enc: Encoded, values: np.ndarray
    ) -> tuple[np.ndarray | None, str]:
        calibration = self.calibration
        if calibration.rounding is None:
            return None, calibration.source
        return calibration.rounding.choose(tensor, enc, values)
