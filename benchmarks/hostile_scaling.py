"""Scaling of the structures hostile files inflate (issue 18 §2): time at N and at 4N, in the
same run. Linear work gives a ratio near 4, quadratic near 16; a row passes below 8.

    python benchmarks/hostile_scaling.py [--n 1000]

Rows: opening an ONNX model of N DequantizeLinear weights whose scales come through a Cast (the
reader once searched every node per weight), exporting an npz of N members to TF.js (the
manifest once took one str.replace per weight over the whole text), and N fresh export names.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inspector.core.plan import Plan
from inspector.formats.export import export_model
from inspector.formats.onnx.edit import NameAllocator
from inspector.formats.registry import open_model


def _onnx_model(path: Path, count: int) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = [], []
    for i in range(count):
        inits.append(numpy_helper.from_array(np.ones((4, 4), np.int8), f"q{i}"))
        inits.append(numpy_helper.from_array(np.ones(4, np.float16), f"s{i}"))
        nodes.append(helper.make_node("Cast", [f"s{i}"], [f"c{i}"], to=TensorProto.FLOAT))
        nodes.append(helper.make_node("DequantizeLinear", [f"q{i}", f"c{i}"], [f"w{i}"], axis=1))
        nodes.append(helper.make_node("MatMul", ["x", f"w{i}"], [f"y{i}"]))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y0", TensorProto.FLOAT, [1, 4])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model.SerializeToString())
    return path


def _open_onnx(folder: Path, n: int) -> Callable[[], None]:
    path = _onnx_model(folder / f"dq{n}.onnx", n)

    def run() -> None:
        with open_model(path) as model:
            assert len(model) == n

    return run


def _npz_to_tfjs(folder: Path, n: int) -> Callable[[], None]:
    path = folder / f"m{n}.npz"
    np.savez(path, **{f"w{i}": np.full(4, i, np.float32) for i in range(n)})

    def run() -> None:
        with open_model(path) as model:
            export_model(model, Plan(default="uint8"), "tfjs", folder / f"t{n}", force=True)

    return run


def _names(_folder: Path, n: int) -> Callable[[], None]:
    def run() -> None:
        names = NameAllocator(None)
        for _ in range(n * 200):
            names.fresh("qi")

    return run


def _seconds(run: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    n = ap.parse_args().n
    rows = [
        ("open ONNX, DQ weights with Cast scales", _open_onnx),
        ("npz members exported to TF.js", _npz_to_tfjs),
        ("fresh ONNX export names (x200)", _names),
    ]
    failed = 0
    print(f"| structure | N = {n} | 4N = {4 * n} | ratio | result |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for label, make in rows:
            small, large = _seconds(make(folder, n)), _seconds(make(folder, 4 * n))
            ratio = large / max(small, 1e-9)
            ok = ratio < 8
            failed += not ok
            print(
                f"| {label} | {small:.3f} s | {large:.3f} s | {ratio:.1f}x | "
                f"{'pass' if ok else 'FAIL'} |"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
