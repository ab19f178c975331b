"""Generate `inspector/formats/tflite/schema.py` from TF-Lite's `schema.fbs` (dev time only).

    python tests/formats/tflite/data/make_schema.py PATH/TO/schema.fbs && ruff format \
        inspector/formats/tflite/schema.py

`schema.fbs` is in the TensorFlow and LiteRT sources (tensorflow/compiler/mlir/lite/schema/).
The output is plain data: per table its fields in slot order as (name, type) pairs, the union
member lists, and the enums the reader names (tensor types, builtin operators). A union field
`x` occupies two slots, `x_type` (ubyte) then `x`, as flatc lays it out.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[4] / "inspector" / "formats" / "tflite" / "schema.py"
_SCALARS = {
    "bool": "bool",
    "byte": "int8",
    "ubyte": "uint8",
    "short": "int16",
    "ushort": "uint16",
    "int": "int32",
    "uint": "uint32",
    "long": "int64",
    "ulong": "uint64",
    "float": "float32",
    "double": "float64",
    "int8": "int8",
    "uint8": "uint8",
    "int16": "int16",
    "uint16": "uint16",
    "int32": "int32",
    "uint32": "uint32",
    "int64": "int64",
    "uint64": "uint64",
    "float32": "float32",
    "float64": "float64",
    "string": "string",
}


# Fields LiteRT's schema (ai-edge-litert 2.3) has beyond TensorFlow's schema.fbs, appended in
# slot order (checked against LiteRT's generated schema_py_generated.py).
_NEWER = {
    "FullyConnectedOptions": [("quant_spec", "[ubyte]")],
    "BlockwiseQuantization": [("block_shape", "[int]")],
}


def parse(text: str) -> tuple[dict, dict, dict]:
    text = re.sub(r"//[^\n]*", "", text)
    enums: dict[str, tuple[str, dict[str, int]]] = {}
    unions: dict[str, list[str]] = {}
    tables: dict[str, list[tuple[str, str]]] = {}
    for kind, name, base, body in re.findall(
        r"\b(enum|union|table)\s+(\w+)\s*(?::\s*(\w+))?\s*(?:\([^)]*\))?\s*\{(.*?)\}", text, re.S
    ):
        if kind == "enum":
            members, value = {}, -1
            for item in filter(None, (s.strip() for s in body.split(","))):
                key, _, val = (p.strip() for p in item.partition("="))
                key = key.split("(")[0].strip()
                value = int(val.split("(")[0].strip()) if val else value + 1
                members[key] = value
            enums[name] = (_SCALARS[base], members)
        elif kind == "union":
            unions[name] = [s.strip().split("(")[0].strip() for s in body.split(",") if s.strip()]
        else:
            tables[name] = [_field(f) for f in body.split(";") if f.strip()]
            tables[name] += _NEWER.get(name, [])
    return enums, unions, tables


def _field(decl: str) -> tuple[str, str]:
    name, _, rest = (p.strip() for p in decl.partition(":"))
    ftype = re.split(r"[\s(=]", rest.strip(), maxsplit=1)[0]
    return name, ftype


def resolve(ftype: str, enums: dict, unions: dict) -> str:
    if ftype.startswith("["):
        return "[" + resolve(ftype[1:-1], enums, unions) + "]"
    if ftype in _SCALARS:
        return _SCALARS[ftype]
    if ftype in enums:
        return enums[ftype][0]
    if ftype in unions:
        return "union:" + ftype
    return "table:" + ftype


def emit(enums: dict, unions: dict, tables: dict) -> str:
    lines = [
        '"""TF-Lite flatbuffer schema as data (generated from schema.fbs by',
        "tests/formats/tflite/data/make_schema.py; do not edit).",
        "",
        "TABLES: per table, its fields in slot order as (name, type); a union field `x` is two",
        "slots, `x_type` (uint8) and `x` (`union:Name`). Types: scalar names, `string`,",
        "`table:Name`, `union:Name`, `[T]` vectors. UNIONS: member tables, type code i + 1.",
        '"""',
        "",
        '__all__ = ["BUILTIN_OPERATORS", "TABLES", "TENSOR_TYPES", "UNIONS"]',
        "",
        "TABLES: dict[str, tuple[tuple[str, str], ...]] = {",
    ]
    for name, fields in tables.items():
        slots: list[tuple[str, str]] = []
        for fname, ftype in fields:
            kind = resolve(ftype, enums, unions)
            if kind.startswith("union:"):
                slots.append((f"{fname}_type", "uint8"))
            slots.append((fname, kind))
        lines.append(f"    {name!r}: (")
        lines += [f"        ({f!r}, {t!r})," for f, t in slots]
        lines.append("    ),")
    lines.append("}")
    lines.append("")
    lines.append("UNIONS: dict[str, tuple[str, ...]] = {")
    for name, members in unions.items():
        lines.append(f"    {name!r}: (")
        lines += [f"        {m!r}," for m in members]
        lines.append("    ),")
    lines.append("}")
    for var, enum in (("TENSOR_TYPES", "TensorType"), ("BUILTIN_OPERATORS", "BuiltinOperator")):
        lines.append("")
        lines.append(f"{var}: dict[int, str] = {{")
        lines += [f"    {v}: {k!r}," for k, v in enums[enum][1].items()]
        lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    OUT.write_text(emit(*parse(Path(sys.argv[1]).read_text())))
    print(OUT)
