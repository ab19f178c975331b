"""Where GPTQ's calibration data comes from, for the CLI and the window alike.

A user's `.npz` (`x` or `x0`, `x1`, …, read without unpickling) wins; else the `sample.npz`
bundled beside a demo model. There is no synthetic fallback here on purpose: GPTQ fitted to
random probes would be passed off as a repair, so without data `round=gptq` rounds to nearest
and the preview says it needs data. (An experiment may still hand `GptqRounding` any inputs.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from inspector.core.errors import InspectorError
from inspector.core.model import Model
from inspector.core.rounding.data import NO_DATA
from inspector.core.rounding.options import rounding_of
from inspector.core.schemes import Scheme
from inspector.engine.errors import EvaluationUnavailable
from inspector.engine.eval_data import EvalData, find_bundled_data, load_data
from inspector.engine.rounding.session import GptqRounding

__all__ = ["Calibration", "open_calibration", "uses_gptq"]


def uses_gptq(schemes: Iterable[Scheme]) -> bool:
    """True when any of the schemes asks for `round=gptq`."""
    return any(rounding_of(s) == "gptq" for s in schemes)


@dataclass(frozen=True)
class Calibration:
    """A `GptqRounding` (or None) and a sentence saying what it was calibrated on, or why not."""

    rounding: GptqRounding | None
    message: str


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
            return Calibration(None, NO_DATA)
        try:
            from inspector.engine.evaluate import make_executor

            shapes = make_executor(model).input_shapes
        except (EvaluationUnavailable, InspectorError) as exc:
            return Calibration(None, f"round=gptq: the model cannot run ({exc}); nearest")
        source = "file" if data_path is not None else "bundled"
        data = load_data(path, shapes, source).head(max_samples)
    rounding = GptqRounding(model, data.inputs)
    return Calibration(rounding, f"round=gptq calibrated on {data.describe()}")
