"""MODEL TRANSFORMS options (DESIGN §6) shared by preview, evaluate, sensitivity, auto, export.

`--fold-bn`, `--equalize` (with `--relu6 lift|skip`) and `--bias-correction data-free|empirical`
are recorded in the plan (`Plan.transforms`): a plan file that asks for them applies them, the
flags add to it. The model a command works on is then the transformed one (`transformed`), and
what the transforms did goes to stderr (text) or into the JSON document ("transforms").
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from typing import Any

from inspector.cli.safe_text import escape

__all__ = [
    "add_transform_options",
    "print_transforms",
    "transformed",
    "transforms_from_args",
    "transforms_lines",
]


def add_transform_options(p: argparse.ArgumentParser, data: bool = False) -> None:
    """The MODEL TRANSFORMS options; `data` adds `--data` (for empirical bias correction, on
    commands that have no evaluation data option of their own)."""
    g = p.add_argument_group("model transforms (recorded in the plan)")
    g.add_argument(
        "--fold-bn", action="store_true", help="fold each BatchNormalization into the layer before"
    )
    g.add_argument(
        "--equalize",
        action="store_true",
        help="cross-layer equalization + high-bias absorption (folds batch norms first)",
    )
    g.add_argument(
        "--relu6",
        choices=("lift", "skip"),
        help="equalizing through a ReLU6: lift its cap to ReLU (default) or skip the pair",
    )
    g.add_argument(
        "--bias-correction",
        choices=("data-free", "empirical"),
        help="correct the mean shift quantization causes: from batch-norm statistics, or "
        "measured on sample data (--data, or the demo model's bundled sample)",
    )
    if data:
        g.add_argument(
            "--data", metavar="D.npz", help="sample data for --bias-correction empirical"
        )


def transforms_from_args(args: argparse.Namespace, plan: Any) -> Any:
    """The plan with the transform flags added to what its file asked for."""
    from dataclasses import replace

    current = plan.transforms
    changes: dict[str, Any] = {}
    if getattr(args, "fold_bn", False):
        changes["fold_bn"] = True
    if getattr(args, "equalize", False):
        changes["equalize"] = True
    if getattr(args, "relu6", None):
        changes["relu6"] = args.relu6
    if getattr(args, "bias_correction", None):
        changes["bias_correction"] = args.bias_correction
    return plan.with_transforms(replace(current, **changes)) if changes else plan


def transformed(
    model: Any, plan: Any, target: Any, args: argparse.Namespace, stack: ExitStack
) -> Any:
    """(model to work on, TransformResult or None). Empirical bias correction reads the same
    data an evaluation would (user file, else bundled sample); a synthetic probe batch is
    refused for it: correcting biases towards noise inputs would be tuning to noise."""
    if not plan.transforms.any:
        return model, None
    from inspector.core.errors import InspectorError
    from inspector.engine.transforms import transform_model

    data = None
    if plan.transforms.bias_correction == "empirical":
        from inspector.engine.eval_data import choose_data
        from inspector.engine.evaluate import make_executor

        runner = make_executor(model)
        chosen = choose_data(
            model.path,
            runner.input_shapes,
            getattr(args, "data", None),
            getattr(args, "max_samples", None),
            getattr(runner, "input_dtypes", None),
        )
        if chosen.synthetic:
            raise InspectorError("empirical bias correction needs sample data: give --data D.npz")
        data = chosen.inputs
    result = transform_model(model, plan.transforms, plan, target, data)
    stack.callback(result.model.close)
    return result.model, result


def transforms_lines(result: Any) -> list[str]:
    """A few human-readable lines on what the transforms did."""
    if result is None:
        return []
    lines = [f"transforms: {result.transforms.describe()}"]
    if result.folds:
        spreads = [
            (r.layer, r.to_json()["before"]["spread"], r.to_json()["after"]["spread"])
            for r in result.folds
        ]
        worst = max(spreads, key=lambda t: t[2] or 0.0)
        lines.append(
            f"  folded {len(result.folds)} batch norm(s); widest per-channel spread after "
            f"folding: {worst[0]} {_ratio(worst[1])} -> {_ratio(worst[2])} (max/median |w|)"
        )
    if result.chains:
        layers = sum(len(c.layers) for c in result.chains)
        absorbed = sum(len(c.absorbed) for c in result.chains)
        lines.append(
            f"  equalized {len(result.chains)} chain(s) of {layers} layers; "
            f"high bias absorbed in {absorbed} layer(s)"
        )
    if result.bias:
        lines.append(f"  corrected {len(result.bias)} bias(es) ({result.bias[0].method})")
    lines.extend(f"  note: {note}" for note in result.notes)
    return lines


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}x" if value >= 10 else f"{value:.1f}x"


def print_transforms(result: Any) -> None:
    for line in transforms_lines(result):
        print(escape(line), file=sys.stderr)
