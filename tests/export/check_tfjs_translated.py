"""Dev-time proof that a TF.js export whose layers were translated loads in stock TF.js 4.22
(node) and predicts what the Keras layers compute (not part of the pytest run).

    mkdir -p /tmp/tfjs && (cd /tmp/tfjs && npm install @tensorflow/tfjs@4.22.0)
    /work/venvs/dev/bin/python tests/export/check_tfjs_translated.py [--tfjs-dir /tmp/tfjs]
Builds the model of `test_tfjs_layers.translatable_h5` (silu, SpatialDropout2D, ReLU and Keras 3
LeakyReLU with negative_slope), exports it for float32 and uint8 plans, runs
resources/check_tfjs_load.mjs on each and prints its report (max |Δ| against the numpy
reference of the Keras layers). Skips cleanly when node or TF.js is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from inspector.core.plan import Plan  # noqa: E402
from inspector.formats import open_model  # noqa: E402
from inspector.formats.export import export_model  # noqa: E402
from tests.export.test_tfjs_layers import keras_reference, translatable_h5  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tfjs-dir", default="/tmp/tfjs", help="folder with node_modules/@tensorflow")
    args = ap.parse_args(argv)
    modules = Path(args.tfjs_dir) / "node_modules"
    if not shutil.which("node") or not (modules / "@tensorflow" / "tfjs").is_dir():
        print("skipped: node or @tensorflow/tfjs is absent")
        return 0
    x = np.random.default_rng(1).normal(size=(8, 4, 4, 2)).astype(np.float32)
    expected = keras_reference(x)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = translatable_h5(work / "t.h5")
        data = work / "data.json"
        data.write_text(
            json.dumps({"x": x.tolist(), "shape": list(x.shape), "expected": expected.tolist()})
        )
        for spec in ("float32", "uint8"):
            out = work / spec
            with open_model(src) as model:
                export_model(model, Plan(default=spec), "tfjs", out)
            proc = subprocess.run(
                [
                    "node",
                    str(REPO / "resources" / "check_tfjs_load.mjs"),
                    str(out / "model.json"),
                    str(data),
                ],
                capture_output=True,
                text=True,
                env={**os.environ, "NODE_PATH": str(modules)},
                cwd=args.tfjs_dir,
            )
            line = (
                proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-800:]
            )
            print(f"{spec}: {line}")
            if proc.returncode != 0:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
