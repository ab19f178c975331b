"""llama-quantize's file types (Q4_K_M, Q3_K_S, Q6_K, …) as plans: one preset per mixture.

`llama-quantize IN OUT Q4_K_M` gives each tensor a type by llama.cpp's rules
(`inspector.core.ggml.mixtures`); `mixture_plan` writes those types into an ordinary plan
(default = the file type's main type, one override per tensor that differs, `float32` — keep
as stored — for the tensors llama-quantize leaves alone), so the mixture is visible and editable
per tensor like any plan, and a GGUF export of it holds llama-quantize's types and, for our
families, its bytes.

Run `python -m inspector.formats.gguf.presets MODEL Q4_K_M [-o PLAN.json]` to write the plan
file the CLI's `--plan` reads.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from inspector.core.errors import InspectorError, PlanError
from inspector.core.ggml.mixtures import FTYPES, default_type, mixture_types, normalize_ftype
from inspector.core.model import Model
from inspector.core.plan import KEEP, Plan
from inspector.core.schemes import scheme_names

__all__ = ["MIXTURES", "mixture_plan"]

MIXTURES: tuple[str, ...] = tuple(
    name
    for name, t in FTYPES.items()
    if t in ("q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k")
    or name in ("IQ4_NL", "IQ4_XS")
)
"""The file types whose every tensor type we encode (the IQ2/IQ3/IQ1 mixtures need the
i-quant encoders, which the llama.cpp family does not have)."""

_STORED = {"float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64"}


def _stored_type(model: Model, name: str, dtype: str) -> str:
    tensors = model.metadata.get("gguf_tensors") if model.format == "gguf" else None
    if tensors and name in tensors:
        return str(tensors[name].ggml.name)
    return _STORED.get(dtype, "f32")


def mixture_plan(model: Model, ftype: str, *, has_imatrix: bool = False) -> Plan:
    """The plan giving every tensor of `model` the type `llama-quantize … FTYPE` gives it.

    Tensor names and metadata are read as llama.cpp reads them (GGUF names: `blk.N.attn_v…`;
    other formats' names fall into llama.cpp's default rule). Raises PlanError for an unknown
    file type or one needing a type we cannot encode."""
    try:
        key = normalize_ftype(ftype)
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    infos = [t.info for t in model if not t.info.optimizer and t.info.is_float]
    meta = model.metadata.get("gguf_metadata", {}) if model.format == "gguf" else {}
    items = [(i.name, i.shape, _stored_type(model, i.name, i.dtype)) for i in infos]
    try:
        types = mixture_types(key, items, meta, has_imatrix=has_imatrix)
    except ValueError as exc:
        raise PlanError(f"{key}: {exc}") from None
    known = set(scheme_names())
    default = default_type(key)
    plan_default = default if default in known else _spec(default)
    overrides: list[tuple[str, str]] = []
    for info, (_, _, stored) in zip(infos, items, strict=True):
        chosen = types[info.name]
        keep = chosen == stored and chosen in _STORED.values()
        spec = KEEP if keep else _spec(chosen)
        if spec not in known:
            raise PlanError(
                f"{key} gives {info.name} the type {chosen}, which we cannot encode "
                f"(presets: {', '.join(MIXTURES)})"
            )
        if spec != plan_default:
            overrides.append((info.name, spec))
    plan = Plan().with_default(plan_default)
    for name, spec in overrides:
        plan = plan.with_overrides([name], spec)
    return plan


def _spec(ggml_name: str) -> str:
    return {v: k for k, v in _STORED.items()}.get(ggml_name, ggml_name)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the plan of a llama-quantize file type for MODEL (stdout without -o)."""
    from inspector.formats import open_model

    p = argparse.ArgumentParser(
        prog="python -m inspector.formats.gguf.presets",
        description="Write llama-quantize's per-tensor types for a file type as a plan file.",
    )
    p.add_argument("model")
    p.add_argument("ftype", help=f"llama-quantize file type: {', '.join(MIXTURES)}")
    p.add_argument("-o", "--output", type=Path, help="plan file to write (default: stdout)")
    p.add_argument("--imatrix", action="store_true", help="the rules for an imatrix run")
    args = p.parse_args(argv)
    try:
        with open_model(args.model) as model:
            text = mixture_plan(model, args.ftype, has_imatrix=args.imatrix).dumps()
    except InspectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
