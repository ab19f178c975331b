"""The order the transforms run in, and what they report.

Batch norms are folded first (asked for, or needed by equalization: a BN between two layers
breaks the pair, as in AIMET's `equalize_model`), then chains are equalized, then — since it
depends on the quantized weights — biases are corrected for the given plan and target. The
result is a `TransformResult`: the transformed model plus records of what each step did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inspector.core.model import Model
from inspector.core.plan import Plan
from inspector.core.target import NATIVE, Target
from inspector.core.transform_spec import Transforms
from inspector.engine.transforms.equalize import EqualizeRecord, equalize
from inspector.engine.transforms.fold_bn import FoldRecord, fold_batch_norms
from inspector.engine.transforms.workspace import Workspace

__all__ = ["TransformResult", "transform_model"]


@dataclass(frozen=True)
class TransformResult:
    """The transformed model and what was done to get it (empty lists: nothing applied).
    `float_model` is the model before bias correction: folding and equalization are meant to
    keep the float function (ReLU6 lifting aside), bias correction deliberately moves it, so the
    float change of the transforms is measured on `float_model`."""

    model: Model
    transforms: Transforms
    float_model: Model | None = None
    folds: list[FoldRecord] = field(default_factory=list)
    chains: list[EqualizeRecord] = field(default_factory=list)
    bias: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def lifted(self) -> list[str]:
        """ReLU6 layers whose cap equalization lifted (the float model changed there)."""
        return [layer for c in self.chains for layer in c.lifted]

    def to_json(self) -> dict[str, Any]:
        return {
            "requested": self.transforms.to_json(),
            "folded": [r.to_json() for r in self.folds],
            "equalized": [r.to_json() for r in self.chains],
            "bias_corrected": [r.to_json() for r in self.bias],
            "notes": list(self.notes),
        }


def transform_model(
    model: Model,
    transforms: Transforms,
    plan: Plan | None = None,
    target: Target = NATIVE,
    data: Sequence[np.ndarray] | None = None,
) -> TransformResult:
    """Apply `transforms` to `model` (which must stay open while the result is used: unchanged
    tensors are read from it). Bias correction quantizes with `plan` under `target`; its
    empirical variant runs `data` (model inputs, batched on axis 0)."""
    if not transforms.any:
        return TransformResult(model, transforms, model)
    ws = Workspace(model)
    folds = fold_batch_norms(ws) if transforms.folds else []
    chains = equalize(ws, transforms.relu6) if transforms.equalize else []
    notes = _notes(folds, chains, transforms)
    description = [transforms.to_json()]
    bias: list[Any] = []
    staged = ws.build(description)
    if transforms.bias_correction == "none":
        return TransformResult(staged, transforms, staged, folds, chains, bias, notes)
    from inspector.engine.transforms.bias_correction import correct_biases

    bias = correct_biases(ws, staged, plan or Plan(), target, transforms.bias_correction, data)
    final = ws.build(description)
    return TransformResult(final, transforms, staged, folds, chains, bias, notes)


def _notes(
    folds: list[FoldRecord], chains: list[EqualizeRecord], transforms: Transforms
) -> list[str]:
    notes = []
    if transforms.fold_bn and not folds:
        notes.append("no BatchNormalization could be folded (none follows a conv/dense alone)")
    if transforms.equalize and not chains:
        notes.append("no pair of layers to equalize (conv/dense → ReLU/linear → conv/dense)")
    lifted = [layer for c in chains for layer in c.lifted]
    if lifted:
        notes.append(
            f"{len(lifted)} ReLU6 cap(s) lifted to ReLU for equalization: the float model "
            "changes where a pre-activation exceeded 6 (evaluate reports the float change)"
        )
    return notes
