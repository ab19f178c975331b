"""The SCHEME OPTIONS of DESIGN §6 and the plan they build, shared by every command."""

from __future__ import annotations

import argparse
import math
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inspector.core.errors import PlanError

if TYPE_CHECKING:
    from inspector.core.model import Model
    from inspector.core.plan import Plan
    from inspector.core.target import Target

__all__ = [
    "MAX_BYTES",
    "add_data_option",
    "add_scheme_options",
    "bounded_float",
    "bounded_int",
    "byte_size",
    "plan_from_args",
    "prepare_kernels",
    "target_size",
    "with_calibration",
]

MAX_BYTES = 2**63 - 1
"""Largest byte count an option may give (what file offsets and numpy sizes can hold)."""


def _shown(text: str) -> str:
    """`text` quoted for an error line, cut to 40 characters (a 400-digit number is noise)."""
    return repr(text if len(text) <= 40 else text[:40] + "…")


def bounded_float(low: float, high: float, shown: str = "") -> Callable[[str], float]:
    """An argparse `type`: a finite float in [low, high] (`shown`: the range as the user reads
    it). Anything else (nan, inf, 1e308 where it would overflow later) is a usage error naming
    the option, exit status 2."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not a finite number")
        if not low <= value <= high:
            span = shown or f"{low:g} … {high:g}"
            raise argparse.ArgumentTypeError(f"{_shown(text)} is outside {span}")
        return value

    return parse


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse `type`: an integer in [low, high] (a usage error otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{_shown(text)} is outside {low} … {high}")
        return value

    return parse


def _size_value(text: str, original: int) -> int:
    """`parse_size(text, original)` with every failure (syntax, a number too long for a float,
    a byte count past `MAX_BYTES`) as an argparse usage error."""
    from inspector.core.budget import parse_size

    try:
        value = parse_size(text, original)
    except PlanError:
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is not a size like 25%, 0.25, 40000 or 40kB"
        ) from None
    except (OverflowError, ValueError):
        raise argparse.ArgumentTypeError(f"{_shown(text)} is too large") from None
    if value > MAX_BYTES:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is more than {MAX_BYTES} bytes")
    return value


def byte_size(text: str) -> int:
    """An argparse `type`: a positive byte count like 5GB, 500MB or 40000 (no %, no fraction)."""
    if "%" in text:
        raise argparse.ArgumentTypeError(f"{_shown(text)}: give bytes, e.g. 5GB or 500MB")
    value = _size_value(text, 0)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a positive size")
    return value


def target_size(text: str) -> str:
    """An argparse `type` for a size relative to the model (25%, 0.25) or in bytes (40kB):
    checked here (bytes up to `MAX_BYTES`; a share that is a finite number, tried on a 1 MiB
    model), kept as text for the command, which knows the model's size."""
    _size_value(text, 0)
    _size_value(text, 1 << 20)
    return text


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
