"""Write inspector/core/ggml/_tables.py from llama.cpp's ggml-common.h (dev time only).

The iq grids and kvalues are data of the format, not code: this script copies them from the C
header as little-endian bytes (zlib + base64, ~20 KB instead of ~140 KB of C literals).
Usage: python make_tables.py [PATH/TO/ggml-common.h]
Default header: llama.cpp 0c1e57098 as vendored by llama-cpp-python 0.3.36.
"""

from __future__ import annotations

import base64
import re
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np

HEADER = Path("/work/tools/llama_cpp_python-0.3.36/vendor/llama.cpp/ggml/src/ggml-common.h")
OUT = Path(__file__).resolve().parents[4] / "inspector" / "core" / "ggml" / "_tables.py"
TABLES = {
    "ksigns_iq2xs": np.uint8,
    "kvalues_iq4nl": np.int8,
    "kvalues_fp4": np.int8,
    "iq2xxs_grid": np.uint64,
    "iq2xs_grid": np.uint64,
    "iq2s_grid": np.uint64,
    "iq3xxs_grid": np.uint32,
    "iq3s_grid": np.uint32,
    "iq1s_grid": np.uint64,
}


def table(src: str, name: str, dtype: type) -> np.ndarray:
    m = re.search(rf"GGML_TABLE_BEGIN\(\w+, {name}, (\w+)\)(.*?)GGML_TABLE_END\(\)", src, re.S)
    assert m, name
    values = [int(v, 0) for v in re.findall(r"-?0x[0-9a-fA-F]+|-?\d+", m.group(2))]
    if np.dtype(dtype).kind == "u":
        return np.array([v % (1 << 64) for v in values], dtype=np.uint64).astype(dtype)
    return np.array(values, dtype=np.int64).astype(dtype)


def main() -> None:
    header = Path(sys.argv[1]) if len(sys.argv) > 1 else HEADER
    src = header.read_text()
    lines = [
        '"""Lookup tables of the ggml block formats, copied as data from llama.cpp\'s',
        "ggml/src/ggml-common.h (commit 0c1e57098) by tests/core/ggml/data/make_tables.py.",
        "Each table is its little-endian bytes, zlib-compressed and base64-encoded; do not edit.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        '__all__ = ["PACKED"]',
        "",
        "# name: (numpy dtype, element count, base64(zlib(bytes)))",
        "PACKED: dict[str, tuple[str, int, str]] = {",
    ]
    for name, dtype in TABLES.items():
        arr = table(src, name, dtype)
        blob = base64.b64encode(zlib.compress(arr.astype(arr.dtype.newbyteorder("<")).tobytes(), 9))
        chunks = textwrap.wrap(blob.decode(), 88)
        lines.append(f'    "{name}": (')
        lines.append(f'        "{np.dtype(dtype).name}",')
        lines.append(f"        {arr.size},")
        lines.extend(f'        "{c}"' for c in chunks)
        lines.append("    ),")
    lines.append("}")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
