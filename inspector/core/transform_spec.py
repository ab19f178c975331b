"""Which model transforms a plan asks for (DESIGN §6 "MODEL TRANSFORMS"), as a plain value.

The transforms themselves live in `inspector.engine.transforms`; the plan only records the
request so a plan file reproduces the export: `{"fold_bn": true, "equalize": true,
"relu6": "lift", "bias_correction": "data-free"}` (keys left out are off).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inspector.core.errors import PlanError

__all__ = ["BIAS_CORRECTIONS", "RELU6_MODES", "Transforms"]

BIAS_CORRECTIONS = ("none", "data-free", "empirical")
"""data-free: expected inputs from batch-norm statistics; empirical: measured on sample data."""
RELU6_MODES = ("lift", "skip")
"""lift: a ReLU6 between equalized layers becomes a ReLU (changes the float model, reported);
skip: pairs through a ReLU6 are not equalized."""


@dataclass(frozen=True)
class Transforms:
    """`fold_bn`: fold BatchNormalization into the layer before it; `equalize`: cross-layer
    equalization with high-bias absorption (folds batch norms first); `relu6`: see
    `RELU6_MODES`; `bias_correction`: one of `BIAS_CORRECTIONS`."""

    fold_bn: bool = False
    equalize: bool = False
    relu6: str = "lift"
    bias_correction: str = "none"

    def __post_init__(self) -> None:
        if self.relu6 not in RELU6_MODES:
            raise PlanError(f"transforms 'relu6' must be one of {RELU6_MODES}, not {self.relu6!r}")
        if self.bias_correction not in BIAS_CORRECTIONS:
            raise PlanError(
                f"transforms 'bias_correction' must be one of {BIAS_CORRECTIONS}, "
                f"not {self.bias_correction!r}"
            )

    @property
    def any(self) -> bool:
        return self.fold_bn or self.equalize or self.bias_correction != "none"

    @property
    def folds(self) -> bool:
        """Batch norms are folded (asked for, or needed by equalization)."""
        return self.fold_bn or self.equalize

    def describe(self) -> str:
        """A short human-readable list ("fold-bn, equalize, bias correction (data-free)")."""
        parts = []
        if self.fold_bn:
            parts.append("fold-bn")
        if self.equalize:
            parts.append("equalize" + ("" if self.relu6 == "lift" else " (ReLU6 pairs skipped)"))
        if self.bias_correction != "none":
            parts.append(f"bias correction ({self.bias_correction})")
        return ", ".join(parts) or "none"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.fold_bn:
            out["fold_bn"] = True
        if self.equalize:
            out["equalize"] = True
            out["relu6"] = self.relu6
        if self.bias_correction != "none":
            out["bias_correction"] = self.bias_correction
        return out

    @classmethod
    def from_json(cls, data: Any) -> Transforms:
        if not isinstance(data, dict):
            raise PlanError("plan 'transforms' must be a JSON object")
        known = {"fold_bn", "equalize", "relu6", "bias_correction"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PlanError(f"plan 'transforms' has unknown keys {unknown}")
        for key in ("fold_bn", "equalize"):
            if not isinstance(data.get(key, False), bool):
                raise PlanError(f"plan 'transforms.{key}' must be true or false")
        for key in ("relu6", "bias_correction"):
            if key in data and not isinstance(data[key], str):
                raise PlanError(f"plan 'transforms.{key}' must be a string")
        return cls(
            fold_bn=data.get("fold_bn", False),
            equalize=data.get("equalize", False),
            relu6=data.get("relu6", "lift"),
            bias_correction=data.get("bias_correction", "none"),
        )
