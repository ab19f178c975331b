"""`quant-inspector export MODEL -o OUT [SCHEME OPTIONS] [--format FMT] [--force] …` (DESIGN §6).

`inspector.cli.main` adds the command from `COMMANDS`; the heavy modules are imported inside
the command so other commands start without them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from inspector.cli.options import (
    add_data_option,
    add_scheme_options,
    bounded_float,
    byte_size,
    plan_from_args,
)
from inspector.cli.safe_text import escape
from inspector.cli.transforms import add_transform_options
from inspector.formats.registry import export_choices

__all__ = ["COMMANDS"]


def _cmd_export(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from inspector.cli.options import prepare_kernels, with_calibration
    from inspector.cli.transforms import print_transforms, transformed
    from inspector.formats import open_model
    from inspector.formats.export import default_format, export_model, result_json
    from inspector.formats.registry import get_target

    plan = plan_from_args(args)
    want_report = bool(args.report)
    with ExitStack() as stack:
        model = stack.enter_context(open_model(args.model))
        prepare_kernels(model)
        target = get_target(args.format or default_format(model))
        model, changes = transformed(model, plan, target, args, stack)
        print_transforms(changes)
        schemes = [plan.scheme_for(t.info) for t in model]
        rounding = with_calibration(model, schemes, target, args.data).rounding
        for rule in plan.unmatched_rules(t.info for t in model):
            print(
                f"warning: rule '{escape(rule.pattern)}={rule.scheme}' matches no tensor",
                file=sys.stderr,
            )
        result = export_model(
            model,
            plan,
            args.format,
            args.output,
            force=args.force,
            shard_bytes=int(args.shard_mb * (1 << 20)),
            dequantized=args.dequantized,
            weights_only=args.weights_only,
            with_preview=want_report,
            max_shard_bytes=args.max_shard_size,
            rounding=rounding,
        )
        if want_report:
            from inspector.cli.text import with_savings_note
            from inspector.report import write_report

            preview = with_savings_note(result.preview, model, plan, result.format)
            write_report(
                args.report, model, plan, preview, result, force=args.force, target=result.format
            )
    if args.json:
        doc = result_json(result)
        if changes is not None:
            doc["transforms"] = changes.to_json()
        print(json.dumps(doc, indent=2))
    else:
        print(f"wrote {escape(result.path)} ({result.format}, {result.total_bytes} bytes)")
        for line in _note_lines(result.notes):
            print(line)
    return 0


def _note_lines(notes: Sequence[tuple[str, str]]) -> list[str]:
    """One line per distinct note: the tensors it concerns (first three), then the note."""
    by_note: dict[str, list[str]] = {}
    for tensor, note in notes:
        by_note.setdefault(note, []).append(tensor)
    lines = []
    for note, tensors in by_note.items():
        named = [t for t in tensors if t]
        if not named:
            lines.append(f"  note: {escape(note)}")
            continue
        more = f" and {len(named) - 3} more" if len(named) > 3 else ""
        lines.append(f"  {', '.join(escape(n) for n in named[:3])}{more}: {escape(note)}")
    return lines


def _parser_export(sub: argparse._SubParsersAction) -> None:

    p = sub.add_parser(
        "export", help="write the quantized model (TF.js, Keras, safetensors, npz, ONNX, GGUF, …)"
    )
    p.add_argument("model", help="model file or TF.js folder")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output file (TF.js, and safetensors without a suffix: output folder)",
    )
    add_scheme_options(p)
    p.add_argument(
        "--format",
        choices=export_choices(),
        help="export format (default: the input's own)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.add_argument(
        "--shard-mb",
        type=bounded_float(1 / 1024, 1 << 20, "1/1024 (1 KiB) … 1048576 (1 TiB)"),
        default=4.0,
        help="TF.js shard size in MiB (default 4)",
    )
    p.add_argument(
        "--max-shard-size",
        type=byte_size,
        metavar="SIZE",
        default="5GB",
        help="safetensors to a folder: largest shard, e.g. 5GB (default, as Hugging Face), 500MB",
    )
    p.add_argument("--report", metavar="R", help="also write a report: R.html, R.json or R.csv")
    p.add_argument(
        "--dequantized",
        action="store_true",
        help="safetensors: store dequantized F32/F16 values instead of codes + scales",
    )
    p.add_argument(
        "--weights-only",
        action="store_true",
        help="TF.js: weights_manifest.json + shards without topology (for layers TF.js lacks)",
    )
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    add_data_option(p)
    add_transform_options(p)
    p.set_defaults(func=_cmd_export)


COMMANDS: dict[str, Callable[[argparse._SubParsersAction], None]] = {"export": _parser_export}
