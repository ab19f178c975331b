"""Which export format stores a plan smallest: the weights' bytes under every writable format,
from shapes alone, so the summary can say when the chosen format cannot keep the plan's
savings (Keras stores floats; TF.js re-stores int4 as uint8 codes) and which format would."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inspector.core.model import Model
from inspector.core.plan import Plan
from inspector.core.target import NATIVE
from inspector.core.totals import lost_savings, plan_weight_bytes
from inspector.formats.registry import export_choices, export_spec, get_target

__all__ = ["NOTE_KEYS", "annotate_total", "savings_note", "weight_bytes_by_format"]

NOTE_KEYS = ("savings_note", "better_format")
"""Keys `annotate_total` adds to a preview's totals (absent when nothing is lost)."""


def weight_bytes_by_format(model: Model, plan: Plan) -> dict[str, int]:
    """Format name → the plan's weight bytes as that format stores them, for every writable
    format that can hold this input (menu order)."""
    out = {}
    for fmt in export_choices():
        if export_spec(fmt).refusal(model):
            continue
        out[fmt] = plan_weight_bytes(model, plan, get_target(fmt))
    return out


def savings_note(model: Model, plan: Plan, chosen: str) -> tuple[str, str] | None:
    """(better format, sentence) when `chosen` (a format name or input kind) loses the plan's
    savings; None when it keeps them or cannot be judged ("native" stores every scheme)."""
    if chosen == "native":
        return None
    name = get_target(chosen).name
    by_format = weight_bytes_by_format(model, plan)
    if name not in by_format:
        return None
    labels = {_short(export_spec(f).label): f for f in by_format}
    found = lost_savings(
        _short(export_spec(name).label),
        {_short(export_spec(f).label): n for f, n in by_format.items()},
        plan_weight_bytes(model, plan, NATIVE),
    )
    return None if found is None else (labels[found[0]], found[1])


def annotate_total(
    total: Mapping[str, Any], model: Model, plan: Plan, chosen: str
) -> dict[str, Any]:
    """`total` plus `savings_note` (the sentence) and `better_format` (a `--format` name) when
    `chosen` cannot store the plan's savings."""
    out = {k: v for k, v in total.items() if k not in NOTE_KEYS}
    found = savings_note(model, plan, chosen)
    if found is not None:
        out["better_format"], out["savings_note"] = found
    return out


def _short(label: str) -> str:
    """A menu label without its file-name hint: "Keras (.h5, .keras)" → "Keras"."""
    return label.split(" (")[0]
