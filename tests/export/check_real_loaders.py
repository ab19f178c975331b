"""Dev-time proof that exports load in the real libraries (not part of the pytest run).

Run with the TensorFlow environment (TOOLING.md) and stock TF.js installed in node:
    mkdir -p /tmp/tfjs && (cd /tmp/tfjs && npm install @tensorflow/tfjs@4.22.0)
    /work/venvs/tf/bin/python tests/export/check_real_loaders.py [--tfjs-dir /tmp/tfjs] [--json]
Each check is skipped (and says so) when its library is absent. For every plan it exports the
demo convnet with `inspector.formats.export.export_model`, loads the result with tf_keras
(.h5), Keras 3
(.keras), the `safetensors` package and stock TF.js in node (model.json + shards read with fs,
`tf.io.fromMemory`, `loadLayersModel`, `predict`), and prints accuracy on the held-out sample,
top-1 agreement and max |Δ output| against the unquantized model, and the TF.js gzip ratio
(model.json + shards ÷ their gzipped tarball) next to the preview's prediction.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

DEMO = REPO / "resources" / "digits_convnet"
PLANS = {
    "original": {"default": "float32"},
    "float16": {"default": "float16"},
    "uint16": {"default": "uint16"},
    "uint8": {"default": "uint8"},
    "mixed": {
        "default": "uint8",
        "rules": [
            {"pattern": "conv1/*", "scheme": "uint16"},
            {"pattern": "*bias*", "scheme": "float16"},
            {"pattern": "dense1/kernel*", "scheme": "affine4"},
        ],
    },
    "int8": {"default": "int8"},
    "int4": {"default": "int4"},
    "kmeans4": {"default": "kmeans4"},
}

_NODE_SCRIPT = r"""
const tf = require('@tensorflow/tfjs');
const fs = require('fs'); const path = require('path');
async function main() {
  const [dir, xPath, shapeJson] = process.argv.slice(2);
  const mj = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const specs = [], bufs = [];
  for (const g of mj.weightsManifest) {
    specs.push(...g.weights);
    for (const p of g.paths) bufs.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(bufs);
  const data = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const model = await tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: mj.modelTopology, weightSpecs: specs, weightData: data}));
  const xb = fs.readFileSync(xPath);
  const x = tf.tensor(new Float32Array(xb.buffer, xb.byteOffset, xb.byteLength / 4),
                      JSON.parse(shapeJson));
  const y = model.predict(x);
  process.stdout.write(JSON.stringify(Array.from(await y.data())));
}
main().catch(e => { process.stderr.write(String(e && e.message || e)); process.exit(1); });
"""


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _export(plan_doc: dict, src: Path, fmt: str, out: Path):
    from inspector.core.plan import Plan
    from inspector.core.preview import run_preview
    from inspector.formats import open_model
    from inspector.formats.export import export_model
    from inspector.formats.registry import get_target

    plan = Plan.from_json(plan_doc)
    with open_model(src) as model:
        preview = run_preview(model, plan, get_target(fmt))
        export_model(model, plan, fmt, out)
    return preview


def _stats(probs: np.ndarray, ref: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": float(np.mean(probs.argmax(1) == y)),
        "top1_agreement": float(np.mean(probs.argmax(1) == ref.argmax(1))),
        "max_abs_diff": float(np.max(np.abs(probs - ref))),
    }


def _tar_gzip_ratio(folder: Path) -> float:
    files = sorted(p for p in folder.iterdir() if p.is_file())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for f in files:
            tf.add(f, arcname=f.name)
    return sum(f.stat().st_size for f in files) / len(buf.getvalue())


def _run_tfjs(folder: Path, x: np.ndarray, tfjs_dir: Path, work: Path) -> np.ndarray:
    script = tfjs_dir / "qi_predict.js"
    script.write_text(_NODE_SCRIPT)
    xfile = work / "x.f32"
    xfile.write_bytes(np.ascontiguousarray(x, "<f4").tobytes())
    proc = subprocess.run(
        ["node", str(script), str(folder), str(xfile), json.dumps(list(x.shape))],
        cwd=tfjs_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr else "node failed")
    return np.array(json.loads(proc.stdout), dtype=np.float32).reshape(len(x), -1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tfjs-dir", default="/tmp/tfjs", help="folder with node_modules/@tensorflow")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args(argv)
    sample = np.load(DEMO / "sample.npz")
    x, y = sample["x"].astype(np.float32), sample["y"]
    tfjs_dir = Path(args.tfjs_dir)
    have_node = shutil.which("node") and (tfjs_dir / "node_modules/@tensorflow/tfjs").is_dir()
    checks = {
        "tf_keras .h5": _have("tf_keras"),
        "keras 3 .keras": _have("keras"),
        "safetensors": _have("safetensors"),
        "tfjs node": bool(have_node),
    }
    for name, ok in checks.items():
        if not ok:
            print(f"SKIP {name}: library not installed", file=sys.stderr)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        refs = _references(x, checks)
        for label, plan_doc in PLANS.items():
            results[label] = _check_plan(label, plan_doc, x, y, refs, checks, tfjs_dir, work)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for label, row in results.items():
            print(label, json.dumps(row))
    return 0


def _references(x: np.ndarray, checks: dict[str, bool]) -> dict[str, np.ndarray]:
    refs = {}
    if checks["tf_keras .h5"]:
        import tf_keras

        refs["h5"] = tf_keras.models.load_model(DEMO / "digits_convnet.h5").predict(x, verbose=0)
    if checks["keras 3 .keras"]:
        import keras

        refs["keras"] = keras.saving.load_model(DEMO / "digits_convnet.keras").predict(x, verbose=0)
    return refs


def _check_plan(label, plan_doc, x, y, refs, checks, tfjs_dir, work) -> dict:
    row: dict = {}
    ref = refs.get("h5", refs.get("keras"))
    if checks["tf_keras .h5"]:
        import tf_keras

        out = work / f"{label}.h5"
        _export(plan_doc, DEMO / "digits_convnet.h5", "keras", out)
        probs = tf_keras.models.load_model(out).predict(x, verbose=0)
        row["tf_keras_h5"] = _stats(probs, refs["h5"], y)
    if checks["keras 3 .keras"]:
        import keras

        out = work / f"{label}.keras"
        _export(plan_doc, DEMO / "digits_convnet.keras", "keras", out)
        probs = keras.saving.load_model(out).predict(x, verbose=0)
        row["keras3_keras"] = _stats(probs, refs["keras"], y)
    if checks["safetensors"]:
        from safetensors.numpy import load_file

        out = work / f"{label}.safetensors"
        preview = _export(plan_doc, DEMO / "digits_convnet.h5", "safetensors", out)
        loaded = load_file(str(out))
        row["safetensors"] = {
            "arrays": len(loaded),
            "bytes": out.stat().st_size,
            "predicted_bytes": preview.total["quantized_bytes"],
        }
    if checks["tfjs node"]:
        out = work / f"{label}_tfjs"
        preview = _export(plan_doc, DEMO / "digits_convnet.h5", "tfjs", out)
        try:
            probs = _run_tfjs(out, x, tfjs_dir, work)
            row["tfjs"] = _stats(probs, ref, y) if ref is not None else {}
        except RuntimeError as exc:
            row["tfjs"] = {"error": str(exc)}
        size = sum(f.stat().st_size for f in out.iterdir())
        row["tfjs"] |= {
            "bytes": size,
            "predicted_bytes": preview.total["quantized_bytes"],
            "gzip_ratio": _tar_gzip_ratio(out),
            "predicted_gzip_ratio": preview.total["gzip_ratio"],
        }
    return row


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
