"""Per-layer (or per-tensor) sensitivity: which parts of a model tolerate a scheme.

Two views of the same question, both measured on the model's outputs:
- mode "only": quantize just this unit with the candidate scheme, everything else float; the
  output damage is what this unit alone costs.
- mode "keep": quantize everything except this unit; what keeping it float wins back.
Rows come one unit at a time (the unit of progress and cancellation); the result ranks them.
Measurements are cached on the `Evaluator` (`measured`) so the budget solver and later runs reuse
them; decoded tensors come from its `DecodedCache`.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from inspector.core.model import Tensor
from inspector.core.preview import json_number
from inspector.core.schemes import parse_scheme
from inspector.engine.evaluate import Evaluator, OutputMetrics, drain

__all__ = [
    "MODES",
    "SensitivityResult",
    "SensitivityRow",
    "iter_output_errors",
    "iter_sensitivity",
    "measure_changes",
    "units",
]

MODES = ("only", "keep")


@dataclass(frozen=True)
class SensitivityRow:
    """One unit's measurement. `impact_score` is accuracy points lost (mode "only") or won back
    (mode "keep"), MAE likewise with its sign such that larger = more sensitive (None without
    labels); `impact_noise` is the output noise energy this unit adds / removes."""

    unit: str
    tensors: tuple[str, ...]
    parameters: int
    metrics: OutputMetrics
    impact_score: float | None
    impact_noise: float

    def to_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "tensors": list(self.tensors),
            "parameters": self.parameters,
            "impact_score": json_number(self.impact_score),
            "impact_noise": json_number(self.impact_noise),
            "output": self.metrics.to_json(),
        }


@dataclass(frozen=True)
class SensitivityResult:
    """All rows in model order, with the reference they were measured against: the float
    model for mode "only", the fully quantized model for mode "keep"."""

    scheme: str
    mode: str
    per: str
    rows: tuple[SensitivityRow, ...]
    reference: OutputMetrics

    def ranked(self) -> list[SensitivityRow]:
        """Most sensitive first: by score impact (when labels exist), then output noise."""
        return sorted(self.rows, key=lambda r: (-(r.impact_score or 0.0), -r.impact_noise))

    def to_json(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "mode": self.mode,
            "per": self.per,
            "reference": self.reference.to_json(),
            "ranked": [r.unit for r in self.ranked()],
            "rows": [r.to_json() for r in self.rows],
        }


def units(evaluator: Evaluator, per: str = "layer") -> dict[str, list[Tensor]]:
    """Float weight tensors grouped by layer (model order), or one group per tensor; tensors a
    reader marks as not weights (`TensorInfo.kept`) are left out."""
    if per not in ("layer", "tensor"):
        raise ValueError(f"per must be 'layer' or 'tensor', not {per!r}")
    groups: dict[str, list[Tensor]] = {}
    for tensor in evaluator.model.weights:
        if tensor.info.is_float and tensor.info.size and tensor.info.kept is None:
            key = tensor.info.layer or tensor.name if per == "layer" else tensor.name
            groups.setdefault(key, []).append(tensor)
    return groups


def measure_changes(
    evaluator: Evaluator, changes: Mapping[str, str]
) -> Generator[Any, None, OutputMetrics]:
    """Output metrics with the named tensors at the given specs (others float), cached on the
    evaluator by the set of changes that actually alter a tensor."""
    overrides: dict[str, np.ndarray] = {}
    key_items = []
    for name, spec in changes.items():
        values = evaluator.decoded(evaluator.model[name], parse_scheme(spec))
        if values is not None:
            overrides[name] = values
            key_items.append((name, parse_scheme(spec).spec))
    key = (evaluator.target.name, frozenset(key_items))
    hit = evaluator.measured.get(key)
    if hit is None:
        hit = yield from evaluator.iter_measure(overrides)
        evaluator.measured[key] = hit
    return hit


def iter_sensitivity(
    evaluator: Evaluator, scheme: str = "uint8", per: str = "layer", mode: str = "only"
) -> Generator[SensitivityRow, None, SensitivityResult]:
    """Yield one `SensitivityRow` per unit in model order; return the `SensitivityResult`."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    spec = parse_scheme(scheme).spec
    groups = units(evaluator, per)
    everything = {t.name: spec for ts in groups.values() for t in ts}
    if mode == "only":
        reference = drain(measure_changes(evaluator, {}))
    else:
        reference = drain(measure_changes(evaluator, everything))
    rows = []
    for unit, tensors in groups.items():
        names = {t.name for t in tensors}
        if mode == "only":
            changes = {n: spec for n in names}
        else:
            changes = {n: s for n, s in everything.items() if n not in names}
        metrics = drain(measure_changes(evaluator, changes))
        row = _row(unit, tensors, metrics, reference, mode)
        rows.append(row)
        yield row
    return SensitivityResult(spec, mode, per, tuple(rows), reference)


def _row(
    unit: str, tensors: list[Tensor], m: OutputMetrics, ref: OutputMetrics, mode: str
) -> SensitivityRow:
    sign = 1.0 if mode == "only" else -1.0
    impact_score = None
    if m.score_loss is not None and ref.score_loss is not None:
        impact_score = sign * (m.score_loss - ref.score_loss)
    impact_noise = sign * (m.noise_energy - ref.noise_energy)
    params = sum(t.info.size for t in tensors)
    return SensitivityRow(
        unit, tuple(t.name for t in tensors), params, m, impact_score, impact_noise
    )


def iter_output_errors(
    evaluator: Evaluator, specs: Mapping[str, list[str]]
) -> Generator[str, None, dict[str, dict[str, float]]]:
    """Output noise energy of each (tensor, candidate spec), that tensor alone quantized.

    `specs` maps tensor name → candidate specs. Yields each tensor name when done; returns
    name → {spec: noise energy}. Candidates whose decoded values equal an earlier candidate's
    (or the original's) reuse that measurement instead of running the model again.
    """
    errors: dict[str, dict[str, float]] = {}
    for name, candidates in specs.items():
        tensor = evaluator.model[name]
        seen: list[tuple[np.ndarray, float]] = []
        row: dict[str, float] = {}
        for spec in candidates:
            values = evaluator.decoded(tensor, parse_scheme(spec))
            if values is None:
                row[spec] = 0.0
                continue
            same = next((e for v, e in seen if np.array_equal(v, values)), None)
            if same is None:
                m = drain(measure_changes(evaluator, {name: spec}))
                same = m.noise_energy if math.isfinite(m.noise_energy) else math.inf
                seen.append((values, same))
            row[spec] = same
        errors[name] = row
        yield name
    return errors
