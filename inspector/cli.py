"""`quant-inspector`: the GUI with no command, headless commands otherwise (DESIGN §6).

Only the GUI command imports Qt, lazily, so `info`/`preview`/`export` start fast and run on
machines without a display. Errors reach the user as one line on stderr and a non-zero status.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from inspector.core.errors import InspectorError, PlanError

__all__ = ["COMMANDS", "add_scheme_options", "main", "plan_from_args"]

EXIT_ERROR = 2


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


def plan_from_args(args: argparse.Namespace):  # -> Plan (import kept lazy for start-up)
    """Plan file first, then --scheme replaces its default, then --rule appends rules."""
    from inspector.core.plan import Plan, parse_rule

    plan = Plan()
    if args.plan:
        path = Path(args.plan)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PlanError(f"{path}: cannot read plan: {exc.strerror or exc}") from exc
        try:
            plan = Plan.loads(text)
        except PlanError as exc:
            raise PlanError(f"{path}: {exc}") from exc
    if args.scheme:
        plan = plan.with_default(args.scheme)
    for text in args.rule:
        rule = parse_rule(text)
        plan = plan.with_rule(rule.pattern, rule.scheme)
    from inspector.cli_transforms import transforms_from_args

    return transforms_from_args(args, plan)


def _cmd_info(args: argparse.Namespace) -> int:
    from inspector.formats import open_model
    from inspector.report_text import info_json, info_table

    with open_model(args.model) as model:
        if args.json:
            print(json.dumps(info_json(model), indent=2))
        else:
            print(info_table(model))
    return 0


def _cmd_preview(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from inspector.cli_transforms import print_transforms, transformed
    from inspector.core.preview import run_preview
    from inspector.formats import open_model
    from inspector.formats.targets import get_target
    from inspector.report_text import preview_table

    plan = plan_from_args(args)
    with ExitStack() as stack:
        model = stack.enter_context(open_model(args.model))
        target = get_target(args.format or model.format)
        model, changes = transformed(model, plan, target, args, stack)
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
    _add_transforms(p)
    p.set_defaults(func=_cmd_preview)


def _add_transforms(p: argparse.ArgumentParser) -> None:
    from inspector.cli_transforms import add_transform_options

    add_transform_options(p)
    p.add_argument("--data", metavar="D.npz", help="sample data for --bias-correction empirical")


COMMANDS: dict[str, Callable[[argparse._SubParsersAction], None]] = {
    "info": _parser_info,
    "preview": _parser_preview,
}


def _register_optional_commands() -> None:
    """Commands living in their own modules (export, evaluate, …) add themselves here."""
    import importlib

    for module in ("inspector.cli_export", "inspector.cli_engine"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        COMMANDS.update(mod.COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    _register_optional_commands()
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
    args = parser.parse_args(argv)
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
