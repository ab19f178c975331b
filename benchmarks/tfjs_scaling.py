"""Issue 18 §2: TF.js work must grow linearly with the number of weights, shards and string
records (it was quadratic: a 10,000-weight manifest took 138 s to preview).

    PYTHONPATH=. /work/main/.venv/bin/python benchmarks/tfjs_scaling.py [--n 2000]

For each case, times N and 4N in the same run and prints the ratio; linear work gives ~4,
quadratic ~16. A case fails above 8. Cases: open a manifest of N one-value weights spread
over N shards; open a string weight of 100·N records; build the exported model.json
(`tfjs_overhead`, the writer's document) for N uint8 weights.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from inspector.core.plan import Plan
from inspector.core.preview import drain, iter_preview
from inspector.formats.registry import get_target, open_model


def _folder(root: Path, weights: list[dict], shards: list[bytes]) -> Path:
    root.mkdir(parents=True)
    paths = []
    for i, data in enumerate(shards):
        (root / f"s{i}.bin").write_bytes(data)
        paths.append(f"s{i}.bin")
    doc = {"format": "graph-model", "modelTopology": {"node": []}}
    doc["weightsManifest"] = [{"paths": paths, "weights": weights}]
    (root / "model.json").write_text(json.dumps(doc))
    return root / "model.json"


def many_shards(root: Path, n: int) -> Callable[[], None]:
    weights = [{"name": f"w{i}", "shape": [1], "dtype": "float32"} for i in range(n)]
    path = _folder(root, weights, [struct.pack("<f", i) for i in range(n)])

    def run() -> None:
        with open_model(path) as model:
            for t in model:
                t.load()

    return run


def string_records(root: Path, n: int) -> Callable[[], None]:
    count = 100 * n
    data = b"".join(struct.pack("<I", 3) + b"abc" for _ in range(count))
    weights = [{"name": "vocab", "shape": [count], "dtype": "string"}]
    path = _folder(root, weights, [data])

    def run() -> None:
        with open_model(path):
            pass

    return run


def writer_document(root: Path, n: int) -> Callable[[], None]:
    weights = [{"name": f"w{i}", "shape": [4], "dtype": "float32"} for i in range(n)]
    values = np.random.default_rng(0).standard_normal(4 * n).astype(np.float32)
    path = _folder(root, weights, [values.tobytes()])
    model = open_model(path)
    target = get_target("tfjs")
    rows = drain(iter_preview(model, Plan(default="uint8"), target, exact_gzip_below=0)).tensors

    def run() -> None:
        target.overhead_bytes(model, rows)

    return run


def _time(make: Callable[[Path, int], Callable[[], None]], root: Path, n: int) -> float:
    run = make(root, n)
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    n = parser.parse_args().n
    failed = False
    print(f"{'case':18} {'N':>7} {'t(N) s':>8} {'t(4N) s':>8} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for make in (many_shards, string_records, writer_document):
            small = _time(make, Path(tmp) / f"{make.__name__}-1", n)
            big = _time(make, Path(tmp) / f"{make.__name__}-4", 4 * n)
            ratio = big / max(small, 1e-9)
            failed |= ratio > 8
            verdict = "ok" if ratio <= 8 else "FAIL (quadratic?)"
            print(f"{make.__name__:18} {n:7} {small:8.2f} {big:8.2f} {ratio:6.1f} {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
