"""Mixed-precision budget solver: one scheme per tensor for a size (or error) target.

Each tensor has a ladder of options (scheme spec, stored bytes under the export target, error).
Bytes come from the preview (`TensorPreview.quantized_bytes`), so a plan meets its size exactly
as the export writes it. Errors are additive noise energies: the output noise a tensor alone
causes when a model runs (measured by engine/sensitivity.py), else the weight noise energy
Σ(w − w')² (the sum the preview's global SQNR uses).

Method: per tensor, the lower convex hull of (bytes, error); all hull steps across tensors are
taken in order of error saved per byte (the Lagrangian path). Every step is a point of the
size/error Pareto front. For a size budget the walk stops at the last point that fits, then any
option (hull or not) that still fits and lowers the error is taken, best saving first.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, replace

from inspector.core.errors import PlanError
from inspector.core.formatting import format_bytes
from inspector.core.model import Model
from inspector.core.plan import Plan
from inspector.core.preview import PreviewCache
from inspector.core.schemes import parse_scheme
from inspector.core.target import NATIVE, Target

__all__ = [
    "DEFAULT_LADDER",
    "FrontPoint",
    "Option",
    "Solution",
    "TensorLadder",
    "build_ladders",
    "error_for_sqnr",
    "overhead_bytes",
    "pareto_front",
    "parse_size",
    "plan_for",
    "solve_error",
    "solve_size",
    "solve_total",
]

DEFAULT_LADDER = ("float32", "float16", "uint16", "uint8", "int8", "affine4", "int4")


@dataclass(frozen=True)
class Option:
    """One candidate for a tensor: its scheme spec, stored bytes and error (noise energy)."""

    spec: str
    nbytes: int
    error: float


@dataclass(frozen=True)
class TensorLadder:
    name: str
    options: tuple[Option, ...]


@dataclass(frozen=True)
class FrontPoint:
    """A point of the size/error front: total bytes, total error, option index per ladder."""

    nbytes: int
    error: float
    choice: tuple[int, ...]


@dataclass(frozen=True)
class Solution:
    """The chosen option per ladder (spec by tensor name), its tensor bytes, error and plan;
    `overhead` is the container's own bytes (model.json, headers) when known."""

    choice: tuple[int, ...]
    specs: Mapping[str, str]
    nbytes: int
    error: float
    plan: Plan
    overhead: int = 0

    @property
    def total_bytes(self) -> int:
        """Bytes the export writes: tensors plus container overhead."""
        return self.nbytes + self.overhead


def _hull(options: Sequence[Option]) -> list[int]:
    """Indices of the lower convex hull of (bytes, error), bytes ascending, error descending."""
    finite = [i for i, o in enumerate(options) if math.isfinite(o.error)] or [
        min(range(len(options)), key=lambda i: options[i].nbytes)
    ]
    order = sorted(finite, key=lambda i: (options[i].nbytes, options[i].error))
    pareto: list[int] = []
    for i in order:
        if pareto and options[i].nbytes == options[pareto[-1]].nbytes:
            continue
        if not pareto or options[i].error < options[pareto[-1]].error:
            pareto.append(i)
    hull: list[int] = []
    for i in pareto:
        while len(hull) >= 2 and _not_convex(options, hull[-2], hull[-1], i):
            hull.pop()
        hull.append(i)
    return hull


def _not_convex(options: Sequence[Option], a: int, b: int, c: int) -> bool:
    """True when b lies on or above the segment a–c (so b is never the best trade-off)."""
    pa, pb, pc = options[a], options[b], options[c]
    cross = (pb.nbytes - pa.nbytes) * (pc.error - pa.error) - (pb.error - pa.error) * (
        pc.nbytes - pa.nbytes
    )
    return cross <= 0


def _totals(ladders: Sequence[TensorLadder], choice: Sequence[int]) -> tuple[int, float]:
    opts = [lad.options[k] for lad, k in zip(ladders, choice, strict=True)]
    return sum(o.nbytes for o in opts), math.fsum(o.error for o in opts)


def pareto_front(ladders: Sequence[TensorLadder]) -> list[FrontPoint]:
    """From the smallest plan to the most accurate, one point per hull step taken."""
    hulls = [_hull(lad.options) for lad in ladders]
    steps = []
    for i, (lad, h) in enumerate(zip(ladders, hulls, strict=True)):
        for j in range(len(h) - 1):
            a, b = lad.options[h[j]], lad.options[h[j + 1]]
            steps.append(((a.error - b.error) / (b.nbytes - a.nbytes), i, j))
    steps.sort(key=lambda s: (-s[0], s[1], s[2]))
    choice = [h[0] for h in hulls]
    nbytes, error = _totals(ladders, choice)
    front = [FrontPoint(nbytes, error, tuple(choice))]
    for _, i, j in steps:
        old, new = ladders[i].options[choice[i]], ladders[i].options[hulls[i][j + 1]]
        choice[i] = hulls[i][j + 1]
        nbytes += new.nbytes - old.nbytes
        error = max(0.0, error + new.error - old.error)
        front.append(FrontPoint(nbytes, error, tuple(choice)))
    return front


def _fill(ladders: Sequence[TensorLadder], choice: list[int], slack: int) -> None:
    """Spend the remaining bytes on the single changes that lower the error most."""
    while True:
        best = None
        for i, lad in enumerate(ladders):
            cur = lad.options[choice[i]]
            for k, o in enumerate(lad.options):
                extra = o.nbytes - cur.nbytes
                if extra <= slack and o.error < cur.error:
                    gain = cur.error - o.error
                    if best is None or gain > best[0]:
                        best = (gain, i, k, extra)
        if best is None:
            return
        _, i, k, extra = best
        choice[i] = k
        slack -= extra


def plan_for(ladders: Sequence[TensorLadder], choice: Sequence[int]) -> Plan:
    """A plan whose default is the most used spec and whose overrides name the rest."""
    specs = [lad.options[k].spec for lad, k in zip(ladders, choice, strict=True)]
    default = Counter(specs).most_common(1)[0][0] if specs else "float32"
    overrides = tuple((lad.name, s) for lad, s in zip(ladders, specs, strict=True) if s != default)
    return Plan(default=default, overrides=overrides)


def _solution(ladders: Sequence[TensorLadder], choice: Sequence[int]) -> Solution:
    nbytes, error = _totals(ladders, choice)
    specs = {lad.name: lad.options[k].spec for lad, k in zip(ladders, choice, strict=True)}
    return Solution(tuple(choice), specs, nbytes, error, plan_for(ladders, choice))


def solve_size(ladders: Sequence[TensorLadder], max_bytes: int) -> Solution:
    """Least total error with total bytes ≤ `max_bytes`; PlanError when nothing fits."""
    front = pareto_front(ladders)
    if front[0].nbytes > max_bytes:
        raise PlanError(
            f"{_size(max_bytes)} of weights is below the smallest this ladder stores "
            f"({_size(front[0].nbytes)} of weights)"
        )
    point = min((p for p in front if p.nbytes <= max_bytes), key=lambda p: (p.error, p.nbytes))
    choice = list(point.choice)
    _fill(ladders, choice, max_bytes - point.nbytes)
    return _solution(ladders, choice)


def solve_error(ladders: Sequence[TensorLadder], max_error: float) -> Solution:
    """Fewest bytes (along the front) with total error ≤ `max_error`."""
    front = pareto_front(ladders)
    for point in front:
        if point.error <= max_error:
            return _solution(ladders, point.choice)
    raise PlanError(f"no plan reaches error {max_error:g} (best {front[-1].error:g})")


def error_for_sqnr(signal_energy: float, sqnr_db: float) -> float:
    """The noise energy that gives `sqnr_db` for a signal of `signal_energy`."""
    return signal_energy / 10.0 ** (sqnr_db / 10.0)


def parse_size(text: str, original_bytes: int) -> int:
    """`25%` or `0.25` (of `original_bytes`), or a byte count with optional kB/MB/KiB/MiB.

    Callers budgeting a whole export pass the input's bytes on disk (`Model.file_bytes`), so
    a percentage and the file it is compared with are one accounting."""
    s = text.strip().replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)(%|[kKmMgG]i?[bB]|[bB])?", s)
    if not m:
        raise PlanError(f"size {text!r} is not like 25%, 0.25, 40000 or 40kB")
    value, unit = float(m.group(1)), (m.group(2) or "").lower()
    if unit == "%":
        return int(original_bytes * value / 100.0)
    if not unit and value < 1.0:
        return int(original_bytes * value)
    scale = {"": 1, "b": 1, "kb": 1000, "mb": 10**6, "gb": 10**9}
    scale |= {"kib": 1024, "mib": 1 << 20, "gib": 1 << 30}
    return int(value * scale[unit])


def build_ladders(
    model: Model,
    specs: Sequence[str] = DEFAULT_LADDER,
    target: Target = NATIVE,
    cache: PreviewCache | None = None,
    output_errors: Mapping[str, Mapping[str, float]] | None = None,
) -> Generator[str, None, list[TensorLadder]]:
    """One ladder per model weight (file order), yielding each tensor name when done.

    Bytes are the preview's `quantized_bytes` under `target` plus the tensor's share of the
    container (`Target.option_bytes`: ONNX decode nodes). Errors are `output_errors[name]
    [spec]` when given (output noise energy), else the weight noise energy mse·size. A tensor
    no scheme applies to (integer, empty, not a weight) gets the single option float32.
    """
    cache = cache if cache is not None else PreviewCache()
    specs = [parse_scheme(s).spec for s in specs]
    ladders = []
    for tensor in model.weights:
        info = tensor.info
        own = specs if info.is_float and info.size and info.kept is None else ["float32"]
        options = []
        for spec in dict.fromkeys(own):
            tp = cache.get(tensor, parse_scheme(spec), target)
            if output_errors is not None and len(own) > 1:
                error = float(output_errors[tensor.name][spec])
            else:
                error = 0.0 if tp.skipped else tp.mse * info.size
            extra = 0 if tp.skipped else target.option_bytes(model, info, parse_scheme(tp.stored))
            options.append(Option(spec, tp.quantized_bytes + extra, error))
        ladders.append(TensorLadder(tensor.name, tuple(options)))
        yield tensor.name
    return ladders


def overhead_bytes(model: Model, plan: Plan, target: Target, cache: PreviewCache) -> int:
    """Container bytes the export adds for `plan` (TF.js model.json, HDF5 headers, …) beyond
    the options' own bytes (which include each tensor's `Target.option_bytes`)."""
    rows = [cache.get(t, plan.scheme_for(t.info), target) for t in model]
    shares = sum(
        target.option_bytes(model, model[r.name].info, parse_scheme(r.stored))
        for r in rows
        if r.skipped is None and not r.optimizer
    )
    return len(target.overhead_bytes(model, rows) or b"") - shares


def solve_total(
    model: Model,
    ladders: Sequence[TensorLadder],
    max_total: int,
    target: Target = NATIVE,
    cache: PreviewCache | None = None,
) -> Solution:
    """Least error with tensors + container overhead ≤ `max_total` bytes, as the export
    writes them; the overhead depends a little on the plan, so the tensor budget is tightened
    until the whole fits."""
    cache = cache if cache is not None else PreviewCache()
    smallest = pareto_front(ladders)[0]
    floor_over = overhead_bytes(model, plan_for(ladders, smallest.choice), target, cache)
    too_small = PlanError(
        f"{_size(max_total)} is below the smallest file this ladder writes as {target.name}: "
        f"{_size(smallest.nbytes + floor_over)}, of which {format_bytes(smallest.nbytes)} "
        f"weights and {format_bytes(floor_over)} the format's own bytes"
    )
    if max_total < smallest.nbytes + floor_over:
        raise too_small
    budget = max_total - floor_over
    for _ in range(8):
        try:
            sol = solve_size(ladders, budget)
        except PlanError:
            raise too_small from None
        over = overhead_bytes(model, sol.plan, target, cache)
        if sol.nbytes + over <= max_total:
            return replace(sol, overhead=over)
        budget -= sol.nbytes + over - max_total
    raise PlanError(f"no plan fits {_size(max_total)} with the format's own bytes")


def _size(n: int) -> str:
    """`53.5 KiB (54,784 B)`: both, so a message can be compared with either display."""
    return f"{format_bytes(n)} ({n:,} B)"
