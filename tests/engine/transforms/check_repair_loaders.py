"""Dev-time proof that transformed exports load in the real libraries (not part of pytest).

Run with the TensorFlow environment (TOOLING.md) and stock TF.js installed in node:
    mkdir -p /tmp/tfjs && (cd /tmp/tfjs && npm install @tensorflow/tfjs@4.22.0)
    /work/venvs/tf/bin/python tests/engine/transforms/check_repair_loaders.py [--tfjs-dir D]
Each check is skipped (and says so) when its library is absent. Checks:
- target: `digits_depthwise` (.h5 and its TF.js form) with --equalize under all-uint8 per
  tensor, exported to TF.js: accuracy in stock TF.js and in our executor (and with empirical
  bias correction);
- folding: the BN fixtures (.h5 via tf_keras, .keras via Keras 3), the fer model (.h5) and the
  nsfwjs MobileNetV2 (TF.js) with --fold-bn: the exported topology has no BatchNormalization,
  the file loads, and its float outputs match the original's (max |Δ| / max |y|);
- equalize through ReLU6 on the BN fixture: TF.js and tf_keras load a ReLU without its cap.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))
HERE = Path(__file__).resolve().parent
SHARED = REPO / ".." / "shared" / "models"


def _loaders():
    spec = importlib.util.spec_from_file_location(
        "check_real_loaders", REPO / "tests" / "export" / "check_real_loaders.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def export(src: Path, out: Path, fmt: str, plan_doc: dict, data=None) -> dict:
    """Transform + export through the same code the CLI runs; returns the transforms report."""
    from inspector.core.plan import Plan
    from inspector.engine.transforms import transform_model
    from inspector.formats import open_model
    from inspector.formats.export import export_model
    from inspector.formats.registry import get_target

    plan = Plan.from_json(plan_doc)
    with open_model(src) as model:
        result = transform_model(model, plan.transforms, plan, get_target(fmt), data)
        export_model(result.model, plan, fmt, out)
    return result.to_json()


def executor_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    from inspector.engine.evaluate import make_executor
    from inspector.formats import open_model

    with open_model(path) as model:
        return make_executor(model).run([x])[0]


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))


def layer_classes(path: Path) -> list[str]:
    from inspector.formats import open_model

    with open_model(path) as model:
        config = model.metadata["keras_config"]["config"]
        layers = config if isinstance(config, list) else config["layers"]
        return [entry["class_name"] for entry in layers]


def check_target(ld, tfjs: Path | None, work: Path) -> dict:
    demo = REPO / "resources" / "digits_depthwise"
    sample = np.load(demo / "sample.npz")
    x, y = sample["x"].astype(np.float32), sample["y"]
    out: dict = {}
    plans = {
        "uint8": {"default": "uint8"},
        "uint8+equalize": {"default": "uint8", "transforms": {"equalize": True}},
        "uint8+equalize+bc": {
            "default": "uint8",
            "transforms": {"equalize": True, "bias_correction": "empirical"},
        },
    }
    for src in (demo / "digits_depthwise.h5", demo / "tfjs" / "model.json"):
        for label, doc in plans.items():
            folder = work / f"target_{src.suffix[1:]}_{label}"
            data = [x] if "bias_correction" in doc.get("transforms", {}) else None
            export(src, folder, "tfjs", doc, data)
            row = {
                "executor_accuracy": float(
                    np.mean(executor_outputs(folder / "model.json", x).argmax(1) == y)
                )
            }
            if tfjs is not None:
                probs = ld._run_tfjs(folder, x, tfjs, work)
                row["tfjs_accuracy"] = float(np.mean(probs.argmax(1) == y))
            row["bytes"] = sum(f.stat().st_size for f in folder.iterdir())
            out[f"{src.parent.name}/{src.name} {label}"] = row
    return out


def check_fold(ld, tfjs: Path | None, work: Path, have: dict) -> dict:
    fixture = np.load(HERE / "data" / "bn_chain.npz")
    x = fixture["x"]
    out: dict = {}
    fold = {"default": "float32", "transforms": {"fold_bn": True}}
    eq = {"default": "float32", "transforms": {"equalize": True}}
    src2, src3 = HERE / "data" / "bn_chain_k2.h5", HERE / "data" / "bn_chain_k3.keras"
    for label, doc in (("fold", fold), ("equalize", eq)):
        h5 = work / f"bn_k2_{label}.h5"
        report = export(src2, h5, "keras", doc)
        row: dict = {"classes": sorted(set(layer_classes(h5))), "folded": len(report["folded"])}
        row["executor_rel"] = rel(executor_outputs(h5, x), fixture["y_k2"])
        if have["tf_keras"]:
            import tf_keras

            row["tf_keras_rel"] = rel(
                tf_keras.models.load_model(h5).predict(x, verbose=0), fixture["y_k2"]
            )
        if have["keras"]:
            import keras

            k3 = work / f"bn_k3_{label}.keras"
            export(src3, k3, "keras", doc)
            row["keras3_rel"] = rel(
                keras.saving.load_model(k3).predict(x, verbose=0), fixture["y_k3"]
            )
        if tfjs is not None:
            folder = work / f"bn_{label}_tfjs"
            export(src2, folder, "tfjs", doc)
            row["tfjs_rel"] = rel(ld._run_tfjs(folder, x, tfjs, work), fixture["y_k2"])
        out[f"bn_chain {label}"] = row
    return out


def check_shared(ld, tfjs: Path | None, work: Path, have: dict) -> dict:
    out: dict = {}
    fold = {"default": "float32", "transforms": {"fold_bn": True}}
    fer = SHARED / "keras-h5-fer-emotion" / "emotion_model.hdf5"
    rng = np.random.default_rng(0)
    xf = rng.uniform(0, 1, (16, 64, 64, 1)).astype(np.float32)
    ref = executor_outputs(fer, xf)
    h5 = work / "fer_fold.h5"
    export(fer, h5, "keras", fold)
    row: dict = {"bn_left": layer_classes(h5).count("BatchNormalization")}
    row["executor_rel"] = rel(executor_outputs(h5, xf), ref)
    if have["tf_keras"]:
        import tf_keras

        row["tf_keras_rel"] = rel(
            tf_keras.models.load_model(h5, compile=False).predict(xf, verbose=0), ref
        )
    if tfjs is not None:
        folder = work / "fer_fold_tfjs"
        export(fer, folder, "tfjs", fold)
        row["tfjs_rel"] = rel(ld._run_tfjs(folder, xf, tfjs, work), ref)
    out["fer fold"] = row
    nsfw = SHARED / "tfjs-layers-nsfwjs-mobilenet_v2-u8" / "model.json"
    xn = smooth_images(4, 224, seed=0)
    if tfjs is not None:
        ref_js = ld._run_tfjs(nsfw.parent, xn, tfjs, work)
        equalize = {"default": "float32", "transforms": {"equalize": True}}
        for label, doc in (("fold", fold), ("equalize", equalize)):
            folder = work / f"nsfw_{label}"
            export(nsfw, folder, "tfjs", doc)
            got = ld._run_tfjs(folder, xn, tfjs, work)
            out[f"nsfwjs {label}"] = {
                "bn_left": layer_classes(folder / "model.json").count("BatchNormalization"),
                "tfjs_rel_vs_original_tfjs": rel(got, ref_js),
                "tfjs_rel_vs_executor": rel(got, executor_outputs(folder / "model.json", xn)),
                "top1_agreement": float(np.mean(got.argmax(1) == ref_js.argmax(1))),
            }
    return out


def smooth_images(n: int, size: int, seed: int) -> np.ndarray:
    """Image-like probes in [0, 1]: blurred coarse colour fields plus a grating and a little
    noise (random pixels drive a ReLU6 network far outside what it was trained on)."""
    rng = np.random.default_rng(seed)
    cell = size // 8
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, size, size, 3), np.float32)
    kernel = np.ones(2 * cell + 1) / (2 * cell + 1)
    for i in range(n):
        img = np.kron(rng.uniform(0, 1, (8, 8, 3)), np.ones((cell, cell, 1)))
        for axis in (0, 1):
            img = np.apply_along_axis(np.convolve, axis, img, kernel, mode="same")
        wave = np.sin(2 * np.pi * (rng.uniform(1, 6) * xx + rng.uniform(1, 6) * yy))
        img = img + 0.15 * wave[..., None] + rng.normal(0, 0.03, img.shape)
        out[i] = np.clip(img, 0, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tfjs-dir", default="/tmp/tfjs", help="folder with node_modules/@tensorflow")
    args = ap.parse_args(argv)
    ld = _loaders()
    tfjs_dir = Path(args.tfjs_dir)
    has_node = shutil.which("node") and (tfjs_dir / "node_modules/@tensorflow/tfjs").is_dir()
    tfjs = tfjs_dir if has_node else None
    have = {m: importlib.util.find_spec(m) is not None for m in ("tf_keras", "keras")}
    for name, ok in {**have, "tfjs node": bool(tfjs)}.items():
        if not ok:
            print(f"SKIP {name}: not installed", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = check_target(ld, tfjs, work)
        results |= check_fold(ld, tfjs, work, have)
        results |= check_shared(ld, tfjs, work, have)
    for label, row in results.items():
        print(f"{label}: {json.dumps(row)}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    sys.exit(main())
