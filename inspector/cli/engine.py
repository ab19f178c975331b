"""Headless commands that run the model: `evaluate`, `sensitivity`, `auto` (DESIGN §6).

`inspector.cli.main` adds them from `COMMANDS`.
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

from inspector.cli.options import (
    MAX_BYTES,
    add_scheme_options,
    bounded_float,
    bounded_int,
    plan_from_args,
    target_size,
)
from inspector.cli.safe_text import error_line, escape
from inspector.core.errors import InspectorError

__all__ = ["COMMANDS"]


def _common(p: argparse.ArgumentParser) -> None:
    from inspector.cli.transforms import add_transform_options

    add_transform_options(p)
    p.add_argument("model", help="model file or TF.js folder")
    p.add_argument("--format", help="export format whose storage to apply (default: input's)")
    p.add_argument(
        "--data",
        metavar="D.npz",
        help="evaluation data: x (or x0, x1, …) and optional labels y "
        "(default: the demo model's bundled sample, else a synthetic probe batch)",
    )
    p.add_argument(
        "--max-samples",
        type=bounded_int(1, 10**12),
        metavar="N",
        help="use only the first N samples (faster)",
    )
    p.add_argument(
        "--calibration",
        metavar="C.npz",
        help="sample inputs round=gptq calibrates on (default: --data, then the bundled "
        "sample: calibrating on the evaluation data itself measures optimistically)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")


def _open(
    args: argparse.Namespace, stack: Any, plan: Any, schemes: list[Any] | None = None
) -> tuple[Any, Any, Any]:
    """(model, evaluator, transforms result or None) for the command's arguments; the models
    are closed by `stack`. A transformed model is compared with the untransformed original.
    GPTQ calibrates when `schemes` (default: the plan's per tensor) ask `round=gptq`."""
    from inspector.cli.options import prepare_kernels, with_calibration
    from inspector.cli.transforms import transformed
    from inspector.engine.evaluate import Evaluator, make_executor
    from inspector.formats import open_model
    from inspector.formats.registry import get_target

    if args.max_samples is not None and args.max_samples < 1:
        raise InspectorError("--max-samples must be at least 1")
    original = stack.enter_context(open_model(args.model))
    prepare_kernels(original)
    target = get_target(args.format or original.format)
    model, changes = transformed(original, plan, target, args, stack)
    if schemes is None:
        schemes = [plan.scheme_for(t.info) for t in model]
    target = with_calibration(model, schemes, target, args.calibration or args.data)
    evaluator = Evaluator.open(model, args.data, target, args.max_samples)
    if changes is not None:
        evaluator.reference = make_executor(original)
    return model, evaluator, changes


def _transforms_doc(evaluator: Any, changes: Any) -> dict[str, Any] | None:
    """What the transforms did and how far they moved the float model's outputs."""
    from inspector.engine.evaluate import drain, make_executor, output_metrics

    if changes is None:
        return None
    original = drain(evaluator.iter_original())
    runner = make_executor(changes.float_model)
    floats = runner.run(list(evaluator.data.inputs), batch_size=evaluator.batch_size)
    float_change = output_metrics(original, floats, evaluator.data.labels)
    return {**changes.to_json(), "float_change": float_change.to_json()}


def _print_transforms(changes: Any, doc: dict[str, Any] | None) -> None:
    from inspector.cli.transforms import transforms_lines

    if changes is None or doc is None:
        return
    print("\n".join(escape(line) for line in transforms_lines(changes)))
    change = doc["float_change"]
    sqnr = change["sqnr_db"]
    line = f"  float model change: output SQNR {_fmt_db(float(sqnr))}"
    if change.get("top1_agreement") is not None:
        line += f", top-1 agreement {100 * change['top1_agreement']:.2f} %"
    if change.get("quantized_score") is not None:
        line += f", {change['metric']} {change['quantized_score']:.4f}"
    print(line)


def _model_json(model: Any, evaluator: Any) -> dict[str, Any]:
    return {
        "path": str(model.path),
        "format": model.format,
        "tensors": len(model),
        "parameters": model.parameter_count,
        "target": evaluator.target.name,
    }


def _db(value: Any) -> str:
    """A JSON dB value (a number, or the strings "inf"/"nan" the JSON documents use)."""
    return _fmt_db(float(value))


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

    plan = plan_from_args(args)
    with ExitStack() as stack:
        model, evaluator, changes = _open(args, stack, plan)
        if args.outputs:
            _check_out_path(Path(args.outputs), args)
        tdoc = _transforms_doc(evaluator, changes)
        evaluation = evaluator.evaluate(plan)
        arith = _arith(evaluator, plan, args.arith)
        if args.outputs:
            _save_outputs(Path(args.outputs), *evaluator.outputs(plan))
        if args.json:
            doc = {"model": _model_json(model, evaluator), **evaluation.to_json()}
            if tdoc is not None:
                doc["transforms"] = tdoc
            if arith is not None:
                doc["arith"] = arith.to_json()
            print(json.dumps(doc, indent=2))
        else:
            print(
                f"model: {escape(model.path)} ({model.format}), stored as {evaluator.target.name}"
            )
            print(f"data:  {escape(evaluator.data.describe())}")
            _print_transforms(changes, tdoc)
            print("\n".join(metrics_lines(evaluation.metrics)))
            print("\n".join(arith_lines(arith)))
    if args.outputs:
        print(f"outputs written to {escape(args.outputs)}", file=sys.stderr)
    return 0


def _arith(evaluator: Any, plan: Any, dtype: str) -> Any:
    from inspector.engine.arith import iter_arith
    from inspector.engine.evaluate import drain

    return None if dtype == "float32" else drain(iter_arith(evaluator, plan, dtype))


def arith_lines(result: Any, limit: int = 12) -> list[str]:
    """The arithmetic run for the terminal (first `limit` layers hit; --json lists all)."""
    if result is None:
        return []
    head = f"{result.dtype} arithmetic (activations rounded after every layer):"
    return [head, *("  " + line for line in result.lines(limit))]


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
    from inspector.formats.atomic import atomic_file

    with atomic_file(path) as fh:
        np.savez(fh, **arrays)


def _parser_evaluate(sub: argparse._SubParsersAction) -> None:

    p = sub.add_parser(
        "evaluate", help="run the original and the quantized model; output error and accuracy"
    )
    _common(p)
    add_scheme_options(p)
    p.add_argument(
        "--arith",
        choices=("float32", "float16", "bfloat16"),
        default="float32",
        help="also run with every activation rounded to this type (per-layer overflow counts)",
    )
    p.add_argument("--outputs", metavar="OUT.npz", help="save original_i / quantized_i outputs")
    p.add_argument("--force", action="store_true", help="replace an existing --outputs file")
    p.set_defaults(func=_cmd_evaluate)


def _cmd_sensitivity(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from inspector.cli.transforms import transforms_from_args
    from inspector.core.plan import Plan
    from inspector.core.schemes import parse_scheme
    from inspector.engine.evaluate import drain
    from inspector.engine.sensitivity import iter_sensitivity

    plan = transforms_from_args(args, Plan())
    with ExitStack() as stack:
        model, evaluator, changes = _open(args, stack, plan, [parse_scheme(args.scheme)])
        tdoc = _transforms_doc(evaluator, changes)
        result = drain(iter_sensitivity(evaluator, args.scheme, args.per, args.mode))
        if args.json:
            doc = {"model": _model_json(model, evaluator), "data": evaluator.data.to_json()}
            if tdoc is not None:
                doc["transforms"] = tdoc
            print(json.dumps(doc | result.to_json(), indent=2))
            return 0
        print(f"model: {escape(model.path)} ({model.format}), stored as {evaluator.target.name}")
        print(f"data:  {escape(evaluator.data.describe())}")
        _print_transforms(changes, tdoc)
        what = "only this" if args.mode == "only" else "all but this"
        print(f"{what} {args.per} at {result.scheme}, most sensitive first:")
        print(_sensitivity_table(result))
    return 0


def _sensitivity_table(result: Any) -> str:
    head = f"{'unit':<32} {'params':>9} {'out SQNR':>10} {'top-1':>8} {'score':>8} {'impact':>8}"
    lines = [head, "-" * len(head)]
    for row in result.ranked():
        m = row.metrics
        agree = "" if m.top1_agreement is None else f"{100 * m.top1_agreement:.1f}%"
        score = "" if m.quantized_score is None else f"{m.quantized_score:.4f}"
        impact = "" if row.impact_score is None else f"{row.impact_score:+.4f}"
        sqnr = "exact" if math.isinf(m.sqnr_db) and m.sqnr_db > 0 else f"{m.sqnr_db:.1f} dB"
        unit = escape(row.unit)
        lines.append(f"{unit:<32} {row.parameters:>9} {sqnr:>10} {agree:>8} {score:>8} {impact:>8}")
    return "\n".join(lines)


def _parser_sensitivity(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sensitivity", help="rank layers by the output damage one scheme does to each"
    )
    _common(p)
    p.add_argument("--scheme", default="uint8", metavar="SPEC", help="candidate scheme (uint8)")
    p.add_argument("--per", choices=("layer", "tensor"), default="layer")
    p.add_argument(
        "--mode",
        choices=("only", "keep"),
        default="only",
        help="only: quantize just this unit; keep: quantize all but this unit",
    )
    p.set_defaults(func=_cmd_sensitivity)


AUTO_SAMPLES = 128


def _auto_errors(args: argparse.Namespace, model: Any, target: Any, ladder: list[str]) -> Any:
    """(evaluator or None, output errors or None): output-level when the model runs."""
    from inspector.engine.errors import EvaluationUnavailable
    from inspector.engine.evaluate import Evaluator, drain
    from inspector.engine.sensitivity import iter_output_errors

    if args.weight_level:
        return None, None
    try:
        full = Evaluator.open(model, args.data, target, args.max_samples)
    except EvaluationUnavailable as exc:
        print(f"quant-inspector: {error_line(exc)}; using weight-level error", file=sys.stderr)
        return None, None
    probe = Evaluator(model, full.data.head(args.probe_samples), full.runner, target, full.cache)
    specs = {t.name: ladder for t in model.weights if t.info.is_float and t.info.size}
    return full, (probe, drain(iter_output_errors(probe, specs)))


def _auto_solve(args: argparse.Namespace, model: Any, target: Any, ladders: Any, probe: Any):
    from dataclasses import replace

    from inspector.core import budget
    from inspector.engine.evaluate import drain

    weights = model.weights
    if args.target_sqnr is not None:
        if probe is not None:
            signal = sum(
                float((o.astype("float64") ** 2).sum()) for o in drain(probe.iter_original())
            )
        else:
            signal = sum(args.cache.get(t, _keep(), target).signal_energy for t in weights)
        sol = budget.solve_error(ladders, budget.error_for_sqnr(signal, args.target_sqnr))
        over = budget.overhead_bytes(model, sol.plan, target, args.cache)
        return replace(sol, overhead=over), {"sqnr_db": args.target_sqnr}
    if args.target_bits is not None:
        limit = int(args.target_bits * sum(t.info.size for t in weights) / 8)
        sol = budget.solve_size(ladders, limit)
        over = budget.overhead_bytes(model, sol.plan, target, args.cache)
        return replace(sol, overhead=over), {"tensor_bytes": limit}
    if args.target_size is not None:
        from inspector.core.totals import input_bytes

        limit = budget.parse_size(args.target_size, input_bytes(model))
    else:
        limit = args.target_bytes
    sol = budget.solve_total(model, ladders, limit, target, args.cache)
    return sol, {"quantized_bytes": limit}


def _keep() -> Any:
    from inspector.core.schemes import parse_scheme

    return parse_scheme("float32")


def _cmd_auto(args: argparse.Namespace) -> int:
    from contextlib import ExitStack
    from dataclasses import replace

    from inspector.cli.options import with_calibration
    from inspector.cli.transforms import print_transforms, transformed, transforms_from_args
    from inspector.core import budget
    from inspector.core.plan import Plan
    from inspector.core.preview import PreviewCache
    from inspector.core.schemes import parse_scheme
    from inspector.engine.evaluate import drain
    from inspector.formats import open_model
    from inspector.formats.registry import get_target

    out = Path(args.output) if args.output else None
    if out is not None and out.exists() and not args.force:
        raise InspectorError(f"{out}: exists (use --force to replace it)")
    text = args.ladder if args.ladder is not None else ",".join(budget.DEFAULT_LADDER)
    ladder = [s.strip() for s in text.split(",") if s.strip()]
    args.cache = PreviewCache()
    with ExitStack() as stack:
        original = stack.enter_context(open_model(args.model))
        target = get_target(args.format or original.format)
        wanted = transforms_from_args(args, Plan()).transforms
        search = Plan(transforms=replace(wanted, bias_correction="none"))
        model, changes = transformed(original, search, target, args, stack)
        print_transforms(changes)
        schemes = [parse_scheme(spec) for spec in ladder]
        target = with_calibration(model, schemes, target, args.calibration or args.data)
        full, measured = _auto_errors(args, model, target, ladder)
        probe, errors = measured if measured else (None, None)
        ladders = drain(budget.build_ladders(model, ladder, target, args.cache, errors))
        sol, goal = _auto_solve(args, model, target, ladders, probe)
        sol = replace(sol, plan=sol.plan.with_transforms(wanted))
        model, preview, evaluation = _auto_final(
            args, (original, model), sol.plan, target, full, stack
        )
        doc = {
            "model": {"path": str(model.path), "format": model.format, "target": target.name},
            "goal": goal,
            "error_level": "output" if errors is not None else "weight",
            "ladder": ladder,
            "predicted": {"quantized_bytes": sol.total_bytes, "error": sol.error},
            "total": {k: v for k, v in preview.to_json(model)["total"].items()},
            "output": evaluation.metrics.to_json() if evaluation else None,
            "plan": sol.plan.to_json(),
            "front": [
                {"quantized_bytes": p.nbytes, "error": p.error}
                for p in budget.pareto_front(ladders)
            ],
        }
    if out is not None:
        from inspector.formats.atomic import atomic_file

        with atomic_file(out) as fh:
            fh.write(sol.plan.dumps().encode("utf-8"))
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        _print_auto(doc, evaluation, out)
    return 0


def _auto_final(
    args: argparse.Namespace, models: tuple[Any, Any], plan: Any, target: Any, full: Any, stack: Any
) -> tuple[Any, Any, Any]:
    """(model, preview, evaluation) of the chosen plan. Bias correction depends on the plan,
    so the search ran without it and it is applied here, for the plan found; a transformed
    model is evaluated against the untransformed original."""
    from inspector.cli.transforms import transformed
    from inspector.core.preview import PreviewCache, run_preview
    from inspector.engine.evaluate import Evaluator, make_executor

    original, model = models
    cache = args.cache
    if plan.transforms.bias_correction != "none":
        model, _ = transformed(original, plan, target, args, stack)
        cache = PreviewCache()
    preview = run_preview(model, plan, target, cache)
    if full is None:
        return model, preview, None
    reference = make_executor(original) if plan.transforms.any else None
    runner = make_executor(model) if model is not full.model else full.runner
    evaluator = Evaluator(model, full.data, runner, target, reference=reference)
    return model, preview, evaluator.evaluate(plan)


def _print_auto(doc: dict[str, Any], evaluation: Any, out: Path | None) -> None:
    total, plan = doc["total"], doc["plan"]
    print(f"goal: {doc['goal']} ({doc['error_level']}-level error, ladder {doc['ladder']})")
    print(
        f"plan: default {plan['default']}, {len(plan['overrides'])} overrides; "
        f"{total['quantized_bytes']} bytes as written "
        f"(compression {total['compression_ratio']:.2f}x, weight SQNR {_db(total['sqnr_db'])})"
    )
    if evaluation is not None:
        print("\n".join(metrics_lines(evaluation.metrics)))
    if out is not None:
        print(f"plan written to {escape(out)}")


def _parser_auto(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("auto", help="choose one scheme per tensor for a size or error target")
    _common(p)
    goal = p.add_mutually_exclusive_group(required=True)
    goal.add_argument(
        "--target-size",
        type=target_size,
        metavar="S",
        help="the whole export file: 25%%, 0.25 (of the input file on disk) or 40kB",
    )
    goal.add_argument(
        "--target-bytes",
        type=bounded_int(1, MAX_BYTES),
        metavar="N",
        help="total bytes as written",
    )
    goal.add_argument(
        "--target-bits", type=bounded_float(0.01, 64), metavar="B", help="bits per weight"
    )
    goal.add_argument(
        "--target-sqnr",
        type=bounded_float(-100, 400, "-100 … 400 dB"),
        metavar="DB",
        help="output (or weight) SQNR",
    )
    p.add_argument(
        "--ladder",
        help="candidate specs, a,b,c (default: float32,float16,uint16,uint8,int8,affine4,int4)",
    )
    p.add_argument(
        "--probe-samples",
        type=bounded_int(1, 10**9),
        default=AUTO_SAMPLES,
        metavar="N",
        help=f"samples used to measure each tensor's output error ({AUTO_SAMPLES})",
    )
    p.add_argument("--weight-level", action="store_true", help="do not run the model")
    p.add_argument("-o", "--output", metavar="PLAN.json", help="write the plan file")
    p.add_argument("--force", action="store_true", help="replace an existing plan file")
    p.set_defaults(func=_cmd_auto)


COMMANDS: dict[str, Callable[[argparse._SubParsersAction], None]] = {
    "evaluate": _parser_evaluate,
    "sensitivity": _parser_sensitivity,
    "auto": _parser_auto,
}
