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

from inspector.core.model import Model, Tensor
from inspector.core.preview import json_number
from inspector.core.schemes import parse_scheme
from inspector.engine.evaluate import (
    FRACTION,
    Evaluator,
    OutputMetrics,
    Progress,
    as_fraction,
    drain,
    output_metrics,
)

__all__ = [
    "MODES",
    "SensitivityResult",
    "SensitivityRow",
    "iter_output_errors",
    "iter_sensitivity",
    "iter_sensitivity_progress",
    "measure_changes",
    "model_units",
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
    return model_units(evaluator.model, per)


def model_units(model: Model, per: str = "layer") -> dict[str, list[Tensor]]:
    """`units` of a model without an evaluator (what a sensitivity run will measure)."""
    if per not in ("layer", "tensor"):
        raise ValueError(f"per must be 'layer' or 'tensor', not {per!r}")
    groups: dict[str, list[Tensor]] = {}
    for tensor in model.weights:
        if tensor.info.is_float and tensor.info.size and tensor.info.kept is None:
            key = tensor.info.layer or tensor.name if per == "layer" else tensor.name
            groups.setdefault(key, []).append(tensor)
    return groups


def _changed(evaluator: Evaluator, changes: Mapping[str, str]) -> tuple[Any, dict[str, np.ndarray]]:
    """(cache key, tensor name → decoded values) of the changes that actually alter a tensor
    (`Evaluator.alters`: a scheme that reproduces the stored values is no change)."""
    overrides: dict[str, np.ndarray] = {}
    key_items = []
    for name, spec in changes.items():
        scheme = parse_scheme(spec)
        values = evaluator.alters(evaluator.model[name], scheme)
        if values is not None:
            overrides[name] = values
            key_items.append((name, scheme.spec))
    return (evaluator.target.name, frozenset(key_items)), overrides


def measure_changes(
    evaluator: Evaluator, changes: Mapping[str, str]
) -> Generator[Any, None, OutputMetrics]:
    """Output metrics with the named tensors at the given specs (others float), cached on the
    evaluator by the set of changes that actually alter a tensor."""
    key, overrides = _changed(evaluator, changes)
    hit = evaluator.measured.get(key)
    if hit is None:
        hit = yield from evaluator.iter_measure(overrides)
        evaluator.measured[key] = hit
    return hit


def iter_sensitivity(
    evaluator: Evaluator, scheme: str = "uint8", per: str = "layer", mode: str = "only"
) -> Generator[SensitivityRow, None, SensitivityResult]:
    """Yield one `SensitivityRow` per unit as it is measured; return the `SensitivityResult`
    (rows in model order). See `iter_sensitivity_progress` for the work in between."""
    gen = iter_sensitivity_progress(evaluator, scheme, per, mode)
    while True:
        try:
            item = next(gen)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if isinstance(item, SensitivityRow):
            yield item


def iter_sensitivity_progress(
    evaluator: Evaluator,
    scheme: str = "uint8",
    per: str = "layer",
    mode: str = "only",
    resume: bool = True,
) -> Generator[Progress | SensitivityRow, None, SensitivityResult]:
    """Sensitivity with its progress: yields `Progress` (whole analysis, `FRACTION` scale,
    one per layer step on the numpy executor) and each `SensitivityRow` when its unit is done.

    With `resume` on a numpy executor, one pass of the reference model (float for "only",
    all-quantized for "keep") runs once, and each unit's model continues from that pass's
    activations at the unit's first layer instead of from the inputs: same numbers, only the
    layers after the change run again. Otherwise each unit runs the whole model."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    spec = parse_scheme(scheme).spec
    groups = units(evaluator, per)
    everything = {t.name: spec for ts in groups.values() for t in ts}
    jobs = []
    for unit, tensors in groups.items():
        names = {t.name for t in tensors}
        if mode == "only":
            changes = {n: spec for n in names}
        else:
            changes = {n: s for n, s in everything.items() if n not in names}
        jobs.append((unit, tensors, changes))
    stepped = resume and hasattr(evaluator.runner, "iter_steps")
    base = {} if mode == "only" else everything
    stages = ["original"] if evaluator._original is None else []
    stages += ["reference"] if mode == "keep" else []
    stages.append("units")
    weights = [1.0] * (len(stages) - 1) + [_units_weight(evaluator, jobs, stepped)]
    rows: dict[str, SensitivityRow] = {}
    reference = yield from as_fraction(_reference(evaluator, base), stages, weights)
    work = _iter_resumed(evaluator, base, jobs) if stepped else _iter_full(evaluator, jobs)
    share = int(FRACTION * weights[-1] / sum(weights))
    offset = FRACTION - share
    for item in work:
        if isinstance(item, Progress):
            part = item.done / item.total if item.total else 1.0
            yield Progress(offset + int(share * part), FRACTION, "units")
            continue
        unit, tensors, metrics = item
        row = _row(unit, tensors, metrics, reference, mode)
        rows[unit] = row
        yield row
    ordered = tuple(rows[unit] for unit in groups)
    return SensitivityResult(spec, mode, per, ordered, reference)


def _units_weight(evaluator: Evaluator, jobs: list[Job], stepped: bool) -> float:
    """The units stage's work in whole forward passes (for progress shares and the time
    left): one per unit from the inputs, or one base pass plus each unit's remaining layers
    weighted by `step_costs` when resumed."""
    if not stepped:
        return float(len(jobs))
    runner: Any = evaluator.runner
    costs = runner.step_costs(evaluator.data.inputs)
    forward = float(sum(costs)) or 1.0
    suffix = np.concatenate([np.cumsum(costs[::-1])[::-1], [0]])
    starts = [runner.first_step(t.info.layer for t in tensors) for _, tensors, _ in jobs]
    return 1.0 + float(sum(suffix[s] for s in starts)) / forward


def _reference(
    evaluator: Evaluator, base: Mapping[str, str]
) -> Generator[Progress, None, OutputMetrics]:
    """The original outputs, then the reference metrics, with stage names `as_fraction` knows."""
    yield from evaluator.iter_original()
    gen = measure_changes(evaluator, base)
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        yield Progress(p.done, p.total, "reference")


Job = tuple[str, list[Tensor], dict[str, str]]
Done = tuple[str, list[Tensor], OutputMetrics]


def _iter_full(evaluator: Evaluator, jobs: list[Job]) -> Generator[Progress | Done, None, None]:
    """Each unit's model from the inputs (any runner): progress per batch of each unit."""
    for i, (unit, tensors, changes) in enumerate(jobs):
        gen = measure_changes(evaluator, changes)
        while True:
            try:
                p = next(gen)
            except StopIteration as stop:
                metrics = stop.value
                break
            part = p.done / p.total if p.total else 1.0
            yield Progress(int(FRACTION * (i + part) / len(jobs)), FRACTION, "units")
        yield unit, tensors, metrics


def _iter_resumed(
    evaluator: Evaluator, base: Mapping[str, str], jobs: list[Job]
) -> Generator[Progress | Done, None, None]:
    """Units in the order of their first layer; every batch keeps a paused pass of the base
    model, which advances to each unit's first layer, where a copy of its live activations
    feeds that unit's model for the remaining layers."""
    runner: Any = evaluator.runner
    _, base_over = _changed(evaluator, base)
    base_exec = runner.with_weights(base_over) if base_over else runner
    original = drain(evaluator.iter_original())
    pending = []
    for unit, tensors, changes in jobs:
        key, over = _changed(evaluator, changes)
        hit = evaluator.measured.get(key)
        if hit is not None:
            yield unit, tensors, hit
            continue
        swap = {}
        for t in tensors:
            if t.name in over:
                swap[t.name] = over[t.name]
            elif t.name in base_over:
                swap[t.name] = np.asarray(t.load())
        start = base_exec.first_step(t.info.layer for t in tensors if t.name in swap)
        pending.append((start, unit, tensors, key, swap))
    if not pending:
        return
    pending.sort(key=lambda p: p[0])
    xs = runner.prepare(evaluator.data.inputs)
    costs = base_exec.step_costs(xs)
    n = evaluator.data.samples
    batch = evaluator.step_batch(runner)
    suffix = np.concatenate([np.cumsum(costs[::-1])[::-1], [0]])
    total = int(n * (sum(costs) + sum(int(suffix[p[0]]) for p in pending)))
    done = 0
    cursors = []
    for start in range(0, n, batch):
        rows = min(n, start + batch) - start
        cursors.append([base_exec.start_values([x[start : start + batch] for x in xs]), 0, rows])
    with np.errstate(over="ignore", under="ignore"):
        for first, unit, tensors, key, swap in pending:
            fork = base_exec.with_weights(swap)
            chunks = []
            for cursor in cursors:
                values, at, rows = cursor
                for index in base_exec.iter_steps(values, at, stop=first):
                    done += costs[index] * rows
                    yield Progress(done, total, "units")
                cursor[1] = max(at, first)
                branch = dict(values)
                for index in fork.iter_steps(branch, first):
                    done += costs[index] * rows
                    yield Progress(done, total, "units")
                chunks.append(fork.outputs_of(branch))
            outputs = [np.concatenate([c[i] for c in chunks]) for i in range(len(chunks[0]))]
            metrics = output_metrics(original, outputs, evaluator.data.labels)
            evaluator.measured[key] = metrics
            yield unit, tensors, metrics


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
    evaluator: Evaluator, specs: Mapping[str, list[str]], progress: bool = False
) -> Generator[str | Progress, None, dict[str, dict[str, float]]]:
    """Output noise energy of each (tensor, candidate spec), that tensor alone quantized.

    `specs` maps tensor name → candidate specs. Yields each tensor name when done; returns
    name → {spec: noise energy}. Candidates whose decoded values equal an earlier candidate's
    (or the original's) reuse that measurement instead of running the model again. With
    `progress`, each model run's `Progress` is yielded too (a caller can stop between layers).
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
                gen = measure_changes(evaluator, {name: spec})
                while True:
                    try:
                        p = next(gen)
                    except StopIteration as stop:
                        m = stop.value
                        break
                    if progress:
                        yield p
                same = m.noise_energy if math.isfinite(m.noise_energy) else math.inf
                seen.append((values, same))
            row[spec] = same
        errors[name] = row
        yield name
    return errors
