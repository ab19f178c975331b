"""Headless commands that run the model: `evaluate`, `sensitivity`, `auto` (DESIGN §6).

They register themselves in `inspector.cli.COMMANDS` (see `cli._register_optional_commands`).
Heavy modules are imported inside the command functions so `quant-inspector info` stays fast.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inspector.core.errors import InspectorError

__all__ = ["COMMANDS"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model file or TF.js folder")
    p.add_argument("--format", help="export format whose storage to apply (default: input's)")
    p.add_argument(
        "--data",
        metavar="D.npz",
        help="evaluation data: x (or x0, x1, …) and optional labels y "
        "(default: the demo model's bundled sample, else a synthetic probe batch)",
    )
    p.add_argument(
        "--max-samples", type=int, metavar="N", help="use only the first N samples (faster)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")


def _open(args: argparse.Namespace, stack: Any) -> tuple[Any, Any]:
    """(model, evaluator) for the command's arguments; the model is closed by `stack`."""
    from inspector.engine.evaluate import Evaluator
    from inspector.formats import open_model
    from inspector.formats.targets import get_target

    if args.max_samples is not None and args.max_samples < 1:
        raise InspectorError("--max-samples must be at least 1")
    model = stack.enter_context(open_model(args.model))
    target = get_target(args.format or model.format)
    return model, Evaluator.open(model, args.data, target, args.max_samples)


def _model_json(model: Any, evaluator: Any) -> dict[str, Any]:
    return {
        "path": str(model.path),
        "format": model.format,
        "tensors": len(model),
        "parameters": model.parameter_count,
        "target": evaluator.target.name,
    }


def _fmt_db(value: float) -> str:
    return "exact" if math.isinf(value) and value > 0 else f"{value:.2f} dB"


def metrics_lines(m: Any) -> list[str]:
    """Human-readable lines for an `OutputMetrics`."""
    lines = [f"output SQNR:      {_fmt_db(m.sqnr_db)}"]
    if m.top1_agreement is not None:
        lines.append(f"top-1 agreement:  {100 * m.top1_agreement:.2f} %")
    if m.metric is not None:
        change = m.quantized_score - m.original_score
        lines.append(
            f"{m.metric + ':':<17} original {m.original_score:.4f}, "
            f"quantized {m.quantized_score:.4f} (change {change:+.4f})"
        )
    return lines


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from inspector.cli import plan_from_args

    plan = plan_from_args(args)
    with ExitStack() as stack:
        model, evaluator = _open(args, stack)
        if args.outputs:
            _check_out_path(Path(args.outputs), args)
        evaluation = evaluator.evaluate(plan)
        if args.outputs:
            _save_outputs(Path(args.outputs), *evaluator.outputs(plan))
        if args.json:
            doc = {"model": _model_json(model, evaluator), **evaluation.to_json()}
            print(json.dumps(doc, indent=2))
        else:
            print(f"model: {model.path} ({model.format}), stored as {evaluator.target.name}")
            print(f"data:  {evaluator.data.describe()}")
            print("\n".join(metrics_lines(evaluation.metrics)))
    if args.outputs:
        print(f"outputs written to {args.outputs}", file=sys.stderr)
    return 0


def _check_out_path(path: Path, args: argparse.Namespace) -> None:
    inputs = {Path(args.model).resolve()} | ({Path(args.data).resolve()} if args.data else set())
    if path.resolve() in inputs:
        raise InspectorError(f"{path}: refusing to overwrite an input file")
    if path.exists() and not args.force:
        raise InspectorError(f"{path}: exists (use --force to replace it)")


def _save_outputs(path: Path, original: list, quantized: list) -> None:
    """`original_0`, `quantized_0`, … one pair per model output (plain arrays, no pickle)."""
    import numpy as np

    arrays = {f"original_{i}": o for i, o in enumerate(original)}
    arrays |= {f"quantized_{i}": q for i, q in enumerate(quantized)}
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    tmp.replace(path)


def _parser_evaluate(sub: argparse._SubParsersAction) -> None:
    from inspector.cli import add_scheme_options

    p = sub.add_parser(
        "evaluate", help="run the original and the quantized model; output error and accuracy"
    )
    _common(p)
    add_scheme_options(p)
    p.add_argument("--outputs", metavar="OUT.npz", help="save original_i / quantized_i outputs")
    p.add_argument("--force", action="store_true", help="replace an existing --outputs file")
    p.set_defaults(func=_cmd_evaluate)


COMMANDS: dict[str, Callable[[argparse._SubParsersAction], None]] = {
    "evaluate": _parser_evaluate,
}
