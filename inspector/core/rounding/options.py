"""The `round=` and `order=` scheme options, declared by the families whose grids they apply to.

`round=nearest` (default) rounds each value to the nearest grid point; `round=hqq` optimises the
grid's parameters first (data-free, hqq.py); `round=gptq` lets GPTQ choose the codes on the
fitted grid from the model's layer inputs (`inspector.engine.rounding`; without data the
preview rounds to nearest and says so). `order=act` (GPTQ only) quantizes the input columns in
decreasing order of their energy (the reference's act-order).
"""

from __future__ import annotations

from typing import Any

from inspector.core.errors import SchemeError
from inspector.core.schemes.base import Option

__all__ = ["OPTIONS", "ORDER", "ROUND", "ROUNDINGS", "check_rounding", "rounding_of"]

ROUNDINGS = ("nearest", "hqq", "gptq")

ROUND = Option(
    "round",
    "choice",
    "nearest",
    "Rounding",
    "nearest: each value to its nearest level; hqq: optimise the grid without data "
    "(half-quadratic); gptq: choose codes from the layers' inputs on sample data",
    choices=ROUNDINGS,
)
ORDER = Option(
    "order",
    "choice",
    "natural",
    "GPTQ order",
    "natural: input columns in order; act: largest input energy first (act-order)",
    choices=("natural", "act"),
)
OPTIONS = (ROUND, ORDER)


def rounding_of(scheme: Any) -> str:
    """The scheme's `round` option, "nearest" for a family that does not declare it."""
    try:
        return str(scheme.option("round"))
    except SchemeError:
        return "nearest"


def check_rounding(scheme: Any) -> None:
    """Cross-option rules: order=act needs gptq; pruned zeros must stay exactly 0."""
    rounding = rounding_of(scheme)
    if scheme.option("order") != "natural" and rounding != "gptq":
        raise SchemeError("order=act applies to round=gptq only")
    if rounding != "nearest" and scheme.sparsity:
        raise SchemeError(f"round={rounding} with sparsity: pruned zeros would not stay 0")
