"""Dev-time: run the official TF.js converter's quantize step and save its exact output.

Run with the TF venv (`/work/venvs/tf/bin/python tests/core/data/make_tfjs_golden.py`); the
test suite only reads the resulting `tfjs_golden.npz`. The converter module imports only numpy,
so it is loaded by file path without importing TensorFlow.
"""

import importlib.util
from pathlib import Path

import numpy as np
import tensorflowjs

MODULE = Path(tensorflowjs.__file__).parent / "quantization.py"


def main() -> None:
    spec = importlib.util.spec_from_file_location("tfjs_quantization", MODULE)
    q = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(q)
    rng = np.random.default_rng(1)
    cases = {
        "check": np.array([0, -0.1, 1.2], np.float32),
        "normal": (rng.normal(size=3000) * 0.05).astype(np.float32),
        "uniform": rng.uniform(-0.3, 1.7, size=(57, 33)).astype(np.float32),
        "positive": rng.uniform(0.1, 2.0, size=999).astype(np.float32),
        "negative": -rng.uniform(0.1, 2.0, size=999).astype(np.float32),
        "constant": np.full(17, 0.25, np.float32),
        "wide": (rng.standard_cauchy(size=2000) * 1e3).astype(np.float32),
    }
    out = {}
    for name, x in cases.items():
        for dt in (np.uint8, np.uint16):
            codes, meta = q.quantize_weights(x, dt)
            key = f"{name}_{dt.__name__}"
            out[f"{key}_x"] = x
            out[f"{key}_codes"] = codes
            out[f"{key}_meta"] = np.array([meta["min"], meta["scale"]], np.float64)
            out[f"{key}_decoded"] = q.dequantize_weights(codes, meta)
    np.savez_compressed(Path(__file__).with_name("tfjs_golden.npz"), **out)


if __name__ == "__main__":
    main()
