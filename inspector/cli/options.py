"""The SCHEME OPTIONS of DESIGN §6 and the plan they build, shared by every command."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inspector.core.errors import PlanError

if TYPE_CHECKING:
    from inspector.core.model import Model
    from inspector.core.plan import Plan
    from inspector.core.target import Target

__all__ = [
    "add_data_option",
    "add_scheme_options",
    "plan_from_args",
    "prepare_kernels",
    "with_calibration",
]


def add_scheme_options(p: argparse.ArgumentParser) -> None:
    """The SCHEME OPTIONS of DESIGN §6, shared by every command that applies a plan."""
    p.add_argument("--scheme", metavar="SPEC", help="default scheme for all tensors, e.g. uint8")
    p.add_argument(
        "--rule",
        metavar="GLOB=SPEC",
        action="append",
        default=[],
        help="scheme for tensors whose name matches GLOB (repeatable; a later rule wins)",
    )
    p.add_argument("--plan", metavar="PLAN.json", help="plan file (rules and overrides)")


def plan_from_args(args: argparse.Namespace) -> Plan:
    """Plan file first, then --scheme replaces its default, then --rule appends rules."""
    from inspector.core.plan import Plan, parse_rule

    plan = Plan()
    if args.plan is not None:
        path = Path(args.plan)
        try:
            plan = Plan.loads(_read_plan_bytes(path))
        except PlanError as exc:
            raise PlanError(f"{path}: {exc}") from exc
    if args.scheme is not None:
        plan = plan.with_default(args.scheme)
    for text in args.rule:
        rule = parse_rule(text)
        plan = plan.with_rule(rule.pattern, rule.scheme)
    from inspector.cli.transforms import transforms_from_args

    return transforms_from_args(args, plan)


def _read_plan_bytes(path: Path) -> bytes:
    """A plan file's bytes, refusing what is not a regular file (a FIFO would block forever)
    and reading at most one byte past `MAX_PLAN_BYTES` (so `Plan.loads` can refuse it)."""
    from inspector.core.plan import MAX_PLAN_BYTES

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise PlanError("cannot read plan: not a regular file")
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size  # read(n) would allocate n bytes up front
            return fh.read(min(size, MAX_PLAN_BYTES) + 1)
    except OSError as exc:
        raise PlanError(f"cannot read plan: {exc.strerror or exc}") from None


def add_data_option(p: argparse.ArgumentParser) -> None:
    """`--data`: the sample inputs `round=gptq` calibrates on (preview, export)."""
    p.add_argument(
        "--data",
        metavar="D.npz",
        help="sample inputs for round=gptq and --bias-correction empirical: x (or x0, x1, …) "
        "(default: the demo model's bundled sample.npz; without data gptq rounds to nearest)",
    )


def with_calibration(
    model: Model, schemes: Any, target: Target, data_path: str | None, data: Any = None
) -> Target:
    """`target` with GPTQ calibrated on the data when any of `schemes` asks `round=gptq`
    (else as is); says on stderr what it calibrated on, or why it could not."""
    from inspector.cli.safe_text import escape
    from inspector.core.rounding.options import rounding_of

    schemes = list(schemes)
    if not any(rounding_of(s) == "gptq" for s in schemes):
        return target  # the engine (~50 ms of imports) only for GPTQ's calibration
    from inspector.engine.rounding.calibrate import open_calibration

    calibration = open_calibration(model, data_path, data=data)
    print(f"note: {escape(calibration.message)}", file=sys.stderr)
    return target.with_rounding(calibration.rounding)


def prepare_kernels(model: Model) -> None:
    """Before a one-shot command computes: the compiled kernels from numba's cache when they
    pay for their load on this model, else numpy alone, never a compile racing the work
    (`jit.for_one_run`). A model big enough to profit from kernels that are not cached yet
    gets a one-line hint on stderr: `quant-inspector warmup` compiles them once."""
    from inspector.core import jit

    elements = model.parameter_count
    if jit.for_one_run(elements) is None and elements >= jit.PAYS_FROM and jit.available():
        print(
            "note: compiled kernels are not cached yet, so this run used numpy alone; "
            "`quant-inspector warmup` compiles them once (~1 min) for faster runs",
            file=sys.stderr,
        )
