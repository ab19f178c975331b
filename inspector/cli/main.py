"""`quant-inspector`: the GUI with no command, headless commands otherwise (DESIGN §6).

Only the GUI command imports Qt, lazily, so `info`/`preview`/`export` start fast and run on
machines without a display. Errors reach the user as one line on stderr and a non-zero status.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from inspector.cli import engine as _engine
from inspector.cli import export as _export
from inspector.cli.options import (
    add_data_option,
    add_scheme_options,
    plan_from_args,
    with_calibration,
)
from inspector.cli.transforms import add_transform_options
from inspector.core.errors import InspectorError

__all__ = ["COMMANDS", "build_parser", "main"]

EXIT_ERROR = 2


def _cmd_info(args: argparse.Namespace) -> int:
    from inspector.cli.text import info_json, info_table
    from inspector.formats import open_model

    with open_model(args.model) as model:
        if args.json:
            print(json.dumps(info_json(model), indent=2))
        else:
            print(info_table(model))
    return 0


def _cmd_preview(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from inspector.cli.text import preview_table
    from inspector.cli.transforms import print_transforms, transformed
    from inspector.core.preview import run_preview
    from inspector.formats import open_model
    from inspector.formats.registry import get_target

    plan = plan_from_args(args)
    with ExitStack() as stack:
        model = stack.enter_context(open_model(args.model))
        target = get_target(args.format or model.format)
        model, changes = transformed(model, plan, target, args, stack)
        schemes = [plan.scheme_for(t.info) for t in model]
        target = with_calibration(model, schemes, target, args.data)
        preview = run_preview(model, plan, target)
        unmatched = plan.unmatched_rules(t.info for t in model)
        for rule in unmatched:
            print(
                f"warning: rule '{rule.pattern}={rule.scheme}' matches no tensor", file=sys.stderr
            )
        if args.json:
            doc = preview.to_json(model)
            doc["model"]["target"] = target.name
            doc["plan"] = plan.to_json()
            doc["unmatched_rules"] = [r.pattern for r in unmatched]
            if changes is not None:
                doc["transforms"] = changes.to_json()
            print(json.dumps(doc, indent=2))
        else:
            print_transforms(changes)
            print(preview_table(model, preview, target.name))
    return 0


def _parser_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="list tensors, shapes, dtypes, layers, stored quantization")
    p.add_argument("model", help="model file or TF.js folder")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_cmd_info)


def _parser_preview(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("preview", help="sizes, error and gzip ratio of a plan, without writing")
    p.add_argument("model", help="model file or TF.js folder")
    add_scheme_options(p)
    p.add_argument("--format", help="export format whose storage to count (default: input's)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    add_data_option(p)
    add_transform_options(p)
    p.set_defaults(func=_cmd_preview)


COMMANDS: dict[str, Callable[[argparse._SubParsersAction], None]] = {
    "info": _parser_info,
    "preview": _parser_preview,
    **_export.COMMANDS,
    **_engine.COMMANDS,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quant-inspector",
        description="See what quantization does to every tensor of a model; choose; export. "
        "With no command (or just MODEL) the desktop window opens.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    gui = sub.add_parser("gui", help="open the desktop window (the default)")
    gui.add_argument("model", nargs="?", help="model to open (default: bundled demo model)")
    gui.set_defaults(func=_cmd_gui)
    for add in COMMANDS.values():
        add(sub)
    return parser


def _cmd_gui(args: argparse.Namespace) -> int:
    from inspector.ui.app import run_gui

    return run_gui(args.model)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    known = set(COMMANDS) | {"gui"}
    if not argv or (argv[0] not in known and not argv[0].startswith("-")):
        argv = ["gui", *argv]
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (status 2, after argparse's message) or --help
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    try:
        return args.func(args)
    except InspectorError as exc:
        print(f"quant-inspector: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"quant-inspector: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("quant-inspector: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
