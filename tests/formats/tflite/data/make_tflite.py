"""Make the TF-Lite fixtures with the official converter (dev time only; CI reads the results).

Run with the TensorFlow environment (TensorFlow 2.19, tf_keras), from the repository root:
    /work/venvs/tf/bin/python tests/formats/tflite/data/make_tflite.py

For each demo model (`resources/<name>/<name>.h5`, loaded with tf_keras) it writes
`<name>_<mode>.tflite` for the converter's four modes: `float32` (no optimization), `float16`
(float16 post-training quantization), `dynamic` (dynamic-range int8) and `int8` (full-integer,
representative dataset from `resources/<name>/sample.npz`), and `<name>_<mode>.npz` holding what
the interpreter reports for every constant tensor: `values/<index>` (`get_tensor`, dequantized
with the tensor's own scales and zero points in float32, as TF-Lite does) and `meta/<index>`
(the raw `get_tensor` dtype name, per-channel scales, zero points, quantized dimension), plus
`outputs` on the first 64 samples. The same is recorded for the shared basic-pitch model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[4]
OUT = Path(__file__).resolve().parent
MODELS = ("digits_convnet", "digits_depthwise")
SHARED = ROOT / ".." / "shared" / "models"
if not SHARED.is_dir():  # a worktree beside the main checkout
    SHARED = Path("/work/shared/models")
SHARED_NMP = SHARED / "tflite-basic-pitch-nmp" / "nmp.tflite"


def convert(name: str, mode: str) -> bytes:
    import tensorflow as tf
    import tf_keras

    model = tf_keras.models.load_model(ROOT / "resources" / name / f"{name}.h5", compile=False)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        x = np.load(ROOT / "resources" / name / "sample.npz")["x"].astype(np.float32)

        def rep():
            for i in range(min(len(x), 200)):
                yield [x[i : i + 1]]

        conv.representative_dataset = rep
    return conv.convert()


def dequantized(value: np.ndarray, q: dict) -> np.ndarray:
    scales = np.asarray(q["scales"], np.float32)
    if value.dtype.kind not in "iu" or scales.size == 0:
        return value
    zps = np.asarray(q["zero_points"], np.int64)
    shape = [1] * value.ndim
    if scales.size > 1:
        shape[q["quantized_dimension"]] = -1
    diff = (value.astype(np.int64) - zps.reshape(shape)).astype(np.float32)
    return diff * scales.reshape(shape)


def record(path: Path, data: np.ndarray | None) -> None:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    arrays: dict[str, np.ndarray] = {}
    meta = {}
    for d in interp.get_tensor_details():
        try:
            value = interp.get_tensor(d["index"])
        except ValueError:
            continue  # no data (activations before invocation)
        q = d["quantization_parameters"]
        if not _is_constant(interp, d["index"]):
            continue
        arrays[f"values/{d['index']}"] = dequantized(value, q)
        meta[str(d["index"])] = {
            "name": d["name"],
            "dtype": value.dtype.name,
            "shape": list(value.shape),
            "scales": [float(s) for s in q["scales"]],
            "zero_points": [int(z) for z in q["zero_points"]],
            "quantized_dimension": int(q["quantized_dimension"]),
        }
    if data is not None:
        inp = interp.get_input_details()[0]
        outs = []
        for row in data[:64]:
            x = row[None].astype(np.float32)
            if inp["dtype"] != np.float32:
                s, z = inp["quantization"]
                x = np.clip(np.round(x / s) + z, -128, 127).astype(inp["dtype"])
            interp.set_tensor(inp["index"], x)
            interp.invoke()
            out = interp.get_output_details()[0]
            y = interp.get_tensor(out["index"])
            if out["dtype"] != np.float32:
                s, z = out["quantization"]
                y = (y.astype(np.float32) - z) * s
            outs.append(y[0])
        arrays["outputs"] = np.asarray(outs, np.float32)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez_compressed(path.with_suffix(".npz"), **arrays)


_CONSTANTS: dict[int, set[int]] = {}


def _is_constant(interp, index: int) -> bool:
    """Tensors with a buffer in the file: allocation type kTfLiteMmapRo (read-only data)."""
    key = id(interp)
    if key not in _CONSTANTS:
        ops = interp._get_ops_details()
        produced = {o for op in ops for o in op["outputs"]}
        inputs = {d["index"] for d in interp.get_input_details()}
        _CONSTANTS[key] = {
            d["index"]
            for d in interp.get_tensor_details()
            if d["index"] not in produced and d["index"] not in inputs
        }
    return index in _CONSTANTS[key]


def main() -> None:
    modes = sys.argv[1:] or ["float32", "float16", "dynamic", "int8"]
    for name in MODELS:
        data = np.load(ROOT / "resources" / name / "sample.npz")["x"]
        for mode in modes:
            path = OUT / f"{name}_{mode}.tflite"
            path.write_bytes(convert(name, mode))
            record(path, data)
            print(path.name, path.stat().st_size)
    nmp = OUT / "nmp_reference.tflite"
    nmp.write_bytes(SHARED_NMP.read_bytes())
    record(nmp, None)
    nmp.unlink()
    print("nmp_reference.npz")


if __name__ == "__main__":
    main()
