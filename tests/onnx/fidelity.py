"""One ONNX export checked against the preview, which is the truth (issue 18 §3).

`check_export` exports a model under a plan and asserts, in this order:
1. the file's size is the preview's predicted `quantized_bytes` (the Target's dry build);
2. `onnx.checker.check_model(full_check=True)` passes and the opset is the input's;
3. ONNX Runtime on the export equals the tool's own `evaluate` of the same plan (ONNX Runtime on
   the original graph with the preview's decoded weights laid over it, `Evaluator.outputs`);
4. every quantized weight of the main graph, read back from the export by ONNX Runtime (its
   value name made a graph output), equals the preview's decoded values.

Tolerances, both relative to the largest |value| of the array compared:
- weights: 0 (bit-exact) for float16, bfloat16, int8 and int4 storage; 2⁻²² (a few float32 ulps
  at the tensor's scale) for affine storage, whose export computes `(q − zp)·scale + offset` in
  float32 where the preview computes `q·scale + min` in float64;
- outputs: 1e-6 when every weight is bit-exact (the two graphs run the same values through
  kernels that may differ in summation order), else 1e-4 (affine weights' rounding, amplified
  by the graph: basic-pitch's log front end turns 1 ulp into ~3e-5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inspector.core.plan import Plan
from inspector.core.preview import quantize_tensor, run_preview
from inspector.engine.evaluate import EvalData, Evaluator
from inspector.formats.export import export_model
from inspector.formats.onnx.decode import onnx_form
from inspector.formats.onnx.reader import read_onnx
from inspector.formats.onnx.writer import ONNX_TARGET, model_opset
from tests.onnx.conftest import onnx

EXACT_FAMILIES = frozenset({"cast", "int8", "int4"})  # onnx_form of the stored scheme
WEIGHT_TOL = {True: 0.0, False: 2.0**-22}
OUTPUT_TOL = {True: 1e-6, False: 1e-4}


@dataclass(frozen=True)
class Checked:
    """What one checked export measured (for the matrix summary)."""

    path: Path
    size: int
    quantized: int
    exact: bool
    output_error: float
    weight_error: float


def _session(src: str | bytes):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.log_severity_level = 3
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    diff = float(np.max(np.abs(a.astype(np.float64) - b))) if b.size else 0.0
    return diff / scale if scale else diff


def exported_values(path: Path, names: Sequence[str], feeds: dict) -> dict[str, np.ndarray]:
    """Values of main-graph value names as ONNX Runtime computes them from the exported file."""
    proto = onnx.load(str(path))
    present = {v.name for v in proto.graph.output}
    for name in names:
        if name not in present:
            proto.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    sess = _session(proto.SerializeToString())
    outs = sess.run(list(names), feeds)
    return dict(zip(names, outs, strict=True))


def check_export(src: Path, plan: Plan, inputs: Sequence[np.ndarray], out: Path) -> Checked:
    """Export `src` under `plan` to `out` and assert the four checks of this module."""
    with read_onnx(src) as model:
        predicted = run_preview(model, plan, ONNX_TARGET).total["quantized_bytes"]
        export_model(model, plan, "onnx", out, force=True)
        quantized = {}
        for t in model:
            q = quantize_tensor(t, plan.scheme_for(t.info), ONNX_TARGET)
            if q.skipped is None:
                quantized[t.name] = (q.decoded, onnx_form(q.storage.stored))
        evaluator = Evaluator(model, EvalData(tuple(inputs), None, "synthetic"), target=ONNX_TARGET)
        _, want = evaluator.outputs(plan)
        sources = model.metadata["onnx_sources"]
        main = [n for n in quantized if sources[n].graph == ()]
        values = {n: sources[n].value for n in main}
        opset = model_opset(model.metadata["onnx_proto"])
    size = out.stat().st_size
    assert size == predicted, f"written {size} bytes, predicted {predicted}"
    exported = onnx.load(str(out))
    onnx.checker.check_model(exported, full_check=True)
    assert model_opset(exported) == opset
    exact = all(fam in EXACT_FAMILIES for _, fam in quantized.values())
    sess = _session(str(out))
    feeds = dict(zip([i.name for i in sess.get_inputs()], inputs, strict=True))
    got = sess.run(None, feeds)
    out_err = max((_rel(g, w) for g, w in zip(got, want, strict=True)), default=0.0)
    assert out_err <= OUTPUT_TOL[exact], f"outputs differ from evaluate by {out_err:.3g}"
    read = exported_values(out, list(values.values()), feeds) if values else {}
    w_err = 0.0
    for name, value in values.items():
        decoded, fam = quantized[name]
        err = _rel(read[value], decoded)
        assert read[value].shape == decoded.shape, name
        assert err <= WEIGHT_TOL[fam in EXACT_FAMILIES], f"{name}: {err:.3g} off the preview"
        w_err = max(w_err, err)
    return Checked(out, size, len(quantized), exact, out_err, w_err)
