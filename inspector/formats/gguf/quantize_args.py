"""A GGUF export's plan as a `llama-quantize` command, so llama.cpp itself can reproduce it.

`llama-quantize --pure IN OUT TYPE` gives every tensor it may quantize the type TYPE, and
`--tensor-type REGEX=TYPE` (matched with `std::regex_search` against the tensor name) overrides
one tensor — but only when TYPE is a block type. So TYPE is the block type holding most
weights and every other tensor gets an anchored, escaped pattern. llama-quantize never changes
the type of tensors it does not quantize (1-D tensors, norms, names not ending in `weight`,
…): where the plan changes one of those, the file says that it cannot be reproduced.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence
from pathlib import Path

from inspector.core.model import Model
from inspector.formats.gguf.layout import Entry, main_type

__all__ = ["args_path", "llama_quantize_text", "llama_quantizes"]

# ggml type → the llama-quantize TYPE argument that makes it the default type
_TYPE_ARG = {"iq2_s": "IQ2_M", "mxfp4": "MXFP4_MOE"}
_NEVER = (
    "_norm.weight",
    "ffn_gate_inp.weight",
    "ffn_gate_tid2eid.weight",
    "altup",
    "laurel",
    "per_layer_model_proj",
    "ssm_conv1d",
    "shortconv.conv.weight",
    "indexer.k_proj.weight",
    "indexer.q_proj.weight",
)
_NEVER_NAMES = ("position_embd.weight", "token_types.weight")


_NAME_MAX = 255


def args_path(out: Path) -> Path:
    """`model-q.gguf` → `model-q.llama-quantize.txt` beside it; a stem too long for the file
    system's 255-byte names is shortened (whole UTF-8 characters), so any legal output name
    gets its arguments file."""
    suffix = ".llama-quantize.txt"
    stem = os.fsencode(out.stem)[: _NAME_MAX - len(suffix)]
    return out.with_name(stem.decode("utf-8", "ignore") + suffix)


def llama_quantizes(name: str, ndim: int) -> bool:
    """Whether llama-quantize may change this tensor's type (its general rules; a few
    architectures exclude more)."""
    if ndim < 2 or not name.endswith("weight") or name in _NEVER_NAMES:
        return False
    return not any(part in name for part in _NEVER)


def _input_type(model: Model, e: Entry) -> str:
    tensors = model.metadata.get("gguf_tensors") if model.format == "gguf" else None
    if tensors and e.info.name in tensors:
        return tensors[e.info.name].ggml.name
    return {"float16": "f16", "bfloat16": "bf16"}.get(e.info.dtype, "f32")


def llama_quantize_text(model: Model, entries: Sequence[Entry], out: Path) -> str:
    """The command (with comments) reproducing `entries`' types from the input model."""
    base = main_type(entries)
    base_name = base.name if base is not None else "f32"
    overrides: list[str] = []
    impossible: list[str] = []
    requant = False
    for e in entries:
        before = _input_type(model, e)
        requant = requant or before not in ("f32", "f16", "bf16", "f64")
        if not llama_quantizes(e.info.name, len(e.info.shape)):
            if e.ggml.name != before:
                impossible.append(f"{e.info.name} ({before} → {e.ggml.name})")
        elif e.ggml.name != base_name:
            if base is None or not base.quantized:
                impossible.append(
                    f"{e.info.name} ({e.ggml.name}; TYPE {base_name} is no block type)"
                )
            else:
                pattern = "^" + re.escape(e.info.name.lower()) + "$"
                overrides.append(f"--tensor-type {shlex.quote(f'{pattern}={e.ggml.name}')}")
    return _text(model, out, base_name, overrides, impossible, requant)


def _text(
    model: Model, out: Path, base: str, overrides: list[str], impossible: list[str], requant: bool
) -> str:
    lines = [
        f"# llama-quantize arguments giving {out.name}'s per-tensor types (quant-inspector plan).",
        "# Same types, not the same bytes unless each tensor's scheme is llama.cpp's quantizer.",
    ]
    if model.format != "gguf":
        lines.append(
            "# Convert the checkpoint with convert_hf_to_gguf.py first; it renames the tensors."
        )
    if any(ch.isupper() for ch in "".join(overrides)):
        lines.append("# llama-quantize lower-cases patterns: upper-case names will not match.")
    if impossible:
        lines.append("# llama-quantize keeps these tensors' input types, the plan does not:")
        lines.extend(f"#   {item}" for item in impossible)
    args = ["llama-quantize", *(["--allow-requantize"] if requant else []), "--pure", *overrides]
    source = model.path.name if model.format == "gguf" else "INPUT-F32.gguf"
    args += [shlex.quote(source), shlex.quote(out.name), _TYPE_ARG.get(base, base.upper())]
    return "\n".join(lines) + "\n" + " \\\n  ".join(args) + "\n"
