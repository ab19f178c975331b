"""`quant-inspector explorer MODEL -o NODE_DATA.json [SCHEME OPTIONS] [--format FMT]
[--metric M] [--per tensor|layer|both] [--graph-id ID]`: Google Model Explorer node data
(`core/explorer.py`) for one metric of the plan's preview, to colour the model's graph."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from inspector.cli.options import add_scheme_options, plan_from_args

__all__ = ["COMMANDS"]


def _cmd_explorer(args: argparse.Namespace) -> int:
    from inspector.core.errors import InspectorError
    from inspector.core.explorer import node_data
    from inspector.core.preview import run_preview
    from inspector.formats import open_model
    from inspector.formats.naming import model_name
    from inspector.formats.registry import get_target
    from inspector.report import write_node_data

    if args.metric == "sensitivity":
        raise InspectorError(
            "sensitivity needs the model run: use the window (Output ▸ Run sensitivity, then "
            "File ▸ Export Model Explorer Node Data) or --metric sqnr_db|rmse_over_scale|…"
        )
    plan = plan_from_args(args)
    with open_model(args.model) as model:
        target = get_target(args.format or model.format)
        preview = run_preview(model, plan, target)
        graph_id = args.graph_id if args.graph_id is not None else model_name(model)
        doc = node_data(
            preview.tensors, args.metric, graph_id, per=args.per, threshold=args.threshold
        )
        out = write_node_data(args.output, doc, model, force=args.force)
    results = doc[graph_id]["results"]
    if args.json:
        print(json.dumps({"path": str(out), "graph_id": graph_id, "nodes": len(results)}))
    else:
        print(f"wrote {out}: {args.metric} for {len(results)} nodes of graph {graph_id!r}")
    return 0


def _parser_explorer(sub: argparse._SubParsersAction) -> None:
    from inspector.core.explorer import METRICS

    p = sub.add_parser(
        "explorer", help="metrics as Google Model Explorer node data JSON (colour the graph)"
    )
    p.add_argument("model", help="model file or TF.js folder")
    p.add_argument("-o", "--output", required=True, help="node data JSON to write")
    add_scheme_options(p)
    p.add_argument("--format", help="export format whose storage to count (default: input's)")
    p.add_argument("--metric", default="sqnr_db", choices=list(METRICS), help="what to colour by")
    p.add_argument("--per", default="both", choices=("tensor", "layer", "both"), help="result keys")
    p.add_argument("--graph-id", help="Model Explorer graph id (default: the model's name)")
    p.add_argument(
        "--threshold", type=float, help="two colours split at this value instead of a gradient"
    )
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.add_argument("--json", action="store_true", help="print one JSON line about the file")
    p.set_defaults(func=_cmd_explorer)


COMMANDS: dict[str, Callable[[argparse._SubParsersAction], None]] = {"explorer": _parser_explorer}
