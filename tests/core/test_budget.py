"""Budget solver: Lagrangian front optimality (brute force), exact sizes on real models."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from inspector.core.budget import (
    Option,
    TensorLadder,
    build_ladders,
    error_for_sqnr,
    pareto_front,
    parse_size,
    plan_for,
    solve_error,
    solve_size,
    solve_total,
)
from inspector.core.errors import PlanError
from inspector.core.plan import Plan
from inspector.core.preview import PreviewCache, drain, run_preview
from inspector.formats import open_model
from inspector.formats.registry import get_target

RES = Path(__file__).resolve().parents[2] / "resources"


def _random_ladders(seed: int, n: int = 4, k: int = 4) -> list[TensorLadder]:
    rng = np.random.default_rng(seed)
    ladders = []
    for i in range(n):
        sizes = np.sort(rng.integers(1, 100, size=k))
        errors = np.sort(rng.random(k) * 10)[::-1]
        opts = tuple(
            Option(f"s{j}", int(b), float(e))
            for j, (b, e) in enumerate(zip(sizes, errors, strict=True))
        )
        ladders.append(TensorLadder(f"t{i}", opts))
    return ladders


def _brute(ladders, max_bytes):
    best = math.inf
    for choice in itertools.product(*(range(len(lad.options)) for lad in ladders)):
        opts = [lad.options[c] for lad, c in zip(ladders, choice, strict=True)]
        if sum(o.nbytes for o in opts) <= max_bytes:
            best = min(best, sum(o.error for o in opts))
    return best


@pytest.mark.parametrize("seed", range(8))
def test_front_points_are_optimal_for_their_own_size(seed):
    ladders = _random_ladders(seed)
    front = pareto_front(ladders)
    assert all(a.nbytes < b.nbytes and a.error >= b.error for a, b in itertools.pairwise(front))
    for point in front:
        assert point.error == pytest.approx(_brute(ladders, point.nbytes), abs=1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_solve_size_fits_and_is_near_brute_force(seed):
    ladders = _random_ladders(seed)
    lo = pareto_front(ladders)[0].nbytes
    for budget in np.linspace(lo, lo + 200, 9).astype(int):
        sol = solve_size(ladders, int(budget))
        assert sol.nbytes <= budget
        best = _brute(ladders, budget)
        assert sol.error <= best + 0.25 * (pareto_front(ladders)[0].error - best) + 1e-9
        rebuilt = sum(lad.options[c].nbytes for lad, c in zip(ladders, sol.choice, strict=True))
        assert rebuilt == sol.nbytes


def test_dominated_and_non_convex_options_are_skipped_on_the_front():
    lad = TensorLadder(
        "w",
        (
            Option("float32", 400, 0.0),
            Option("float16", 200, 1.0),
            Option("uint16", 200, 0.5),  # same size, less error: float16 is dominated
            Option("uint8", 100, 10.0),
            Option("affine4", 50, 50.0),
            Option("bad", 300, 20.0),  # bigger and worse than uint16
        ),
    )
    specs = [lad.options[p.choice[0]].spec for p in pareto_front([lad])]
    assert specs == ["affine4", "uint8", "uint16", "float32"]
    assert solve_size([lad], 260).specs == {"w": "uint16"}
    assert solve_error([lad], 12.0).specs == {"w": "uint8"}
    with pytest.raises(PlanError, match="below the smallest"):
        solve_size([lad], 49)


def test_plan_for_uses_the_most_common_spec_as_default():
    a = TensorLadder("a", (Option("uint8", 1, 1.0), Option("float32", 4, 0.0)))
    b = TensorLadder("b", (Option("uint8", 1, 1.0), Option("float32", 4, 0.0)))
    c = TensorLadder("c", (Option("uint8", 1, 1.0), Option("float32", 4, 0.0)))
    plan = plan_for([a, b, c], (0, 1, 0))
    assert plan == Plan(default="uint8", overrides=(("b", "float32"),))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("25%", 250), ("0.25", 250), ("400", 400), ("2kB", 2000), ("1KiB", 1024), ("1.5MB", 1500000)],
)
def test_parse_size(text, expected):
    assert parse_size(text, 1000) == expected


@pytest.mark.parametrize("text", ["", "abc", "25%%", "-3", "1 parsec"])
def test_parse_size_rejects_nonsense(text):
    with pytest.raises(PlanError):
        parse_size(text, 1000)


def test_error_for_sqnr_round_trips():
    noise = error_for_sqnr(500.0, 30.0)
    assert 10 * math.log10(500.0 / noise) == pytest.approx(30.0)


@pytest.mark.parametrize("fmt", ["tfjs", "safetensors", "keras"])
def test_solver_meets_its_size_exactly_as_the_preview_counts_it(fmt):
    """Weight-level plans on the real convnet: the preview total (as the export writes it)
    equals the solver's prediction and stays within the target."""
    with open_model(RES / "digits_convnet" / "digits_convnet.h5") as model:
        target, cache = get_target(fmt), PreviewCache()
        ladders = drain(build_ladders(model, target=target, cache=cache))
        lo = run_preview(model, Plan(default="affine4"), target, cache).total["quantized_bytes"]
        hi = run_preview(model, Plan(), target, cache).total["quantized_bytes"]
        for goal in np.linspace(lo, hi, 4).astype(int)[1:]:
            sol = solve_total(model, ladders, int(goal), target, cache)
            total = run_preview(model, sol.plan, target, cache).total["quantized_bytes"]
            assert total == sol.total_bytes <= goal


def test_whole_file_budget_speaks_one_accounting():
    """A budget below what the format can write says so in whole-file bytes, never a
    negative or weights-only target (issue 16 item 7)."""
    from pathlib import Path

    from inspector.core import budget
    from inspector.core.errors import PlanError
    from inspector.core.preview import PreviewCache
    from inspector.core.totals import input_bytes
    from inspector.engine.evaluate import drain
    from inspector.formats.registry import get_target, open_model

    path = (
        Path(__file__).resolve().parents[2] / "resources" / "digits_convnet" / "digits_convnet.h5"
    )
    with open_model(path) as model:
        assert input_bytes(model) == path.stat().st_size
        target, cache = get_target("keras"), PreviewCache()
        ladders = drain(budget.build_ladders(model, ("float32", "float16"), target, cache))
        limit = budget.parse_size("25%", input_bytes(model))
        with pytest.raises(PlanError) as err:
            budget.solve_total(model, ladders, limit, target, cache)
        text = str(err.value)
        assert f"({limit:,} B) is below the smallest file this ladder writes as keras" in text
        assert "-" not in text.split("keras")[0]
        smallest = int(text.split(": ")[1].split("(")[1].split(" B")[0].replace(",", ""))
        sol = budget.solve_total(model, ladders, smallest, target, cache)
        assert sol.total_bytes <= smallest
