"""The float16 post-training quantization table of docs/tflite.md, measured on the demo models.

For each demo model: the official converter's float32, float16 and dynamic-range int8 files
(tests/formats/tflite/data, made by make_tflite.py) against this tool's exports of the float32
file (`float16`; `int8:skip=1024`, the converter's own rule; `int8` on every float tensor), all
run in LiteRT on the model's bundled sample data. Prints a Markdown table: file size, top-1
accuracy, output SQNR against the float32 file, and the tool's `evaluate` figure for its plans
(weight-only error: the hybrid kernels of an int8 file also quantize activations).

    PYTHONPATH=. python benchmarks/tflite_ptq_table.py
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np

from inspector.core.plan import Plan
from inspector.engine.evaluate import Evaluator
from inspector.engine.tflite_runner import TfliteExecutor
from inspector.formats.export import export_model
from inspector.formats.registry import get_target
from inspector.formats.tflite.reader import read_tflite

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "formats" / "tflite" / "data"
DEMOS = ("digits_convnet", "digits_depthwise")


def _outputs(path: Path, x: np.ndarray) -> np.ndarray:
    with read_tflite(path) as m:
        return TfliteExecutor.from_model(m).run([x])[0]


def _sqnr(out: np.ndarray, base: np.ndarray) -> float:
    noise = float(np.sum((out.astype(np.float64) - base) ** 2))
    return (
        math.inf
        if noise == 0
        else 10 * math.log10(float(np.sum(base.astype(np.float64) ** 2)) / noise)
    )


def _row(label: str, path: Path, x, y, base, evaluated: str = "") -> str:
    out = _outputs(path, x)
    acc = float(np.mean(out.argmax(1) == y))
    return (
        f"| {label} | {path.stat().st_size:,} | {acc:.2%} | {_sqnr(out, base):.1f} | {evaluated} |"
    )


def _evaluate(path: Path, spec: str, demo: str) -> str:
    with read_tflite(path) as m:
        ev = Evaluator.open(m, ROOT / "resources" / demo / "sample.npz", get_target("tflite"))
        return f"{ev.evaluate(Plan().with_default(spec)).metrics.sqnr_db:.1f}"


def table(demo: str, tmp: Path) -> list[str]:
    sample = np.load(ROOT / "resources" / demo / "sample.npz")
    x, y = sample["x"].astype(np.float32), sample["y"]
    src = DATA / f"{demo}_float32.tflite"
    base = _outputs(src, x)
    rows = [
        f"**{demo}** ({len(x)} samples)",
        "",
        "| file | bytes | top-1 | output SQNR dB | `evaluate` SQNR dB |",
        "|---|---:|---:|---:|---:|",
        _row("official float32", src, x, y, base),
    ]
    for mode, spec in (("float16", "float16"), ("dynamic", "int8:skip=1024"), (None, "int8")):
        if mode is not None:
            label = "dynamic-range int8" if mode == "dynamic" else mode
            rows.append(_row(f"official {label}", DATA / f"{demo}_{mode}.tflite", x, y, base))
        out = tmp / f"{demo}_{spec.replace(':', '_')}.tflite"
        with read_tflite(src) as m:
            export_model(m, Plan().with_default(spec), "tflite", out)
        rows.append(_row(f"ours `{spec}`", out, x, y, base, _evaluate(src, spec, demo)))
    return [*rows, ""]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        for demo in DEMOS:
            print("\n".join(table(demo, Path(tmp))))
