"""Float16 / bfloat16 arithmetic: what a runtime that keeps activations in a 16-bit float does
to the model ("SSD works wrongly with FP16 math").

The numpy executor computes each layer in float32 (products and sums accumulate in float32,
like a GPU's half-precision storage with single-precision accumulation), then rounds the
layer's output — and the model inputs — to the chosen type, round to nearest even. Weights are
whatever the plan decodes to. Per layer it counts the values rounding pushed to ±inf
(float16: |x| ≥ 65520, i.e. past 65504 once rounded; bfloat16: past ~3.39e38) and the nonzero
values it flushed to zero (float16: |x| < 2⁻²⁵ ≈ 3e-8), and the non-finite values the layer
then holds (an inf upstream turns into inf or NaN downstream). Nested models are rounded at
their output only. ONNX models run in ONNX Runtime, whose kernels decide their own precision:
this is not available for them (casting the graph would measure ONNX Runtime's float16 kernel
coverage more than the model).
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from typing import Any

import ml_dtypes
import numpy as np

from inspector.core.plan import Plan
from inspector.engine.errors import EvaluationUnavailable
from inspector.engine.evaluate import Evaluator, OutputMetrics, Progress, output_metrics

__all__ = ["ARITHMETICS", "ArithResult", "LayerCounts", "Rounding", "iter_arith"]

ARITHMETICS = ("float32", "float16", "bfloat16")
_TYPES: dict[str, Any] = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


@dataclass
class LayerCounts:
    """One layer's output over all samples: values seen, new ±inf from rounding (overflow),
    nonzeros rounded to zero (underflow), and non-finite values after rounding."""

    values: int = 0
    overflow: int = 0
    underflow: int = 0
    nonfinite: int = 0

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


class Rounding:
    """The executor hook: `rounding(layer, x)` returns x rounded to `dtype` (as float32) and
    adds to `counts[layer]`."""

    def __init__(self, dtype: str) -> None:
        if dtype not in _TYPES:
            raise ValueError(f"arithmetic must be one of {tuple(_TYPES)}, not {dtype!r}")
        self.dtype = dtype
        self.counts: dict[str, LayerCounts] = {}

    def __call__(self, layer: str, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            y = x.astype(_TYPES[self.dtype]).astype(np.float32)
        c = self.counts.setdefault(layer, LayerCounts())
        finite = np.isfinite(x)
        c.values += x.size
        c.overflow += int(np.count_nonzero(finite & np.isinf(y)))
        c.underflow += int(np.count_nonzero((x != 0) & (y == 0)))
        c.nonfinite += int(x.size - np.count_nonzero(np.isfinite(y)))
        return y


@dataclass(frozen=True)
class ArithResult:
    """The quantized model in `dtype` arithmetic against the same model in float32 arithmetic
    (`vs_float32`) and against the original float model (`vs_original`); per-layer counts in
    execution order (model inputs first)."""

    dtype: str
    vs_float32: OutputMetrics
    vs_original: OutputMetrics
    layers: dict[str, LayerCounts] = field(default_factory=dict)

    @property
    def first_overflow(self) -> str | None:
        return next((k for k, c in self.layers.items() if c.overflow), None)

    def lines(self, limit: int = 12) -> list[str]:
        """Human-readable: error against float32 arithmetic and the original, totals, the
        first overflow and the first `limit` layers that overflowed or underflowed."""
        doc = self.to_json()
        total = doc["total"]
        out = [
            f"vs float32 arithmetic: {_short(self.vs_float32)}",
            f"vs the original model: {_short(self.vs_original)}",
            f"overflow to ±inf: {total['overflow']} values, underflow to 0: "
            f"{total['underflow']}, non-finite after rounding: {total['nonfinite']} "
            f"(of {total['values']})",
        ]
        if self.first_overflow:
            out.append(f"first overflow at layer {self.first_overflow!r}")
        hit = [row for row in doc["layers"] if row["overflow"] or row["underflow"]]
        for row in hit[:limit]:
            out.append(
                f"  {row['layer']:<32} overflow {row['overflow']:>8}  underflow "
                f"{row['underflow']:>8}  non-finite {row['nonfinite']:>8}"
            )
        if len(hit) > limit:
            out.append(f"  … {len(hit) - limit} more layers")
        return out

    def to_json(self) -> dict[str, Any]:
        totals = LayerCounts()
        for c in self.layers.values():
            for key in ("values", "overflow", "underflow", "nonfinite"):
                setattr(totals, key, getattr(totals, key) + getattr(c, key))
        return {
            "arith": self.dtype,
            "first_overflow_layer": self.first_overflow,
            "total": totals.to_json(),
            "vs_float32": self.vs_float32.to_json(),
            "vs_original": self.vs_original.to_json(),
            "layers": [{"layer": k, **c.to_json()} for k, c in self.layers.items()],
        }


def iter_arith(
    evaluator: Evaluator, plan: Plan, dtype: str
) -> Generator[Progress, None, ArithResult]:
    """Run `plan`'s quantized model in `dtype` arithmetic; yields per batch."""
    from inspector.engine.executor import Executor

    if not isinstance(evaluator.runner, Executor):
        raise EvaluationUnavailable(
            f"{dtype} arithmetic needs the numpy executor (Keras / TF.js layer models); "
            "ONNX Runtime chooses its own kernel precision"
        )
    overrides = evaluator.overrides(plan)
    reference = yield from evaluator.iter_run(overrides, stage="float32 arithmetic")
    rounding = Rounding(dtype)
    runner = evaluator.runner.with_weights(overrides) if overrides else evaluator.runner
    runner = runner.with_rounding(rounding)
    chunks: list[list[np.ndarray]] = []
    n, step = evaluator.data.samples, evaluator.batch_size
    for start in range(0, n, step):
        batch = [x[start : start + step] for x in evaluator.data.inputs]
        with np.errstate(invalid="ignore"):  # inf − inf downstream of an overflow
            chunks.append(runner.run(batch, batch_size=step))
        yield Progress(min(n, start + step), n, f"{dtype} arithmetic")
    outputs = [np.concatenate([c[i] for c in chunks]) for i in range(len(chunks[0]))]
    original = yield from evaluator.iter_original()
    labels = evaluator.data.labels
    return ArithResult(
        dtype,
        _metrics(reference, outputs, labels),
        _metrics(original, outputs, labels),
        rounding.counts,
    )


def _short(m: OutputMetrics) -> str:
    db = m.sqnr_db
    parts = ["output SQNR " + ("exact" if db == math.inf else f"{db:.2f} dB")]
    if m.top1_agreement is not None:
        parts.append(f"top-1 agreement {100 * m.top1_agreement:.2f} %")
    if m.metric is not None and m.quantized_score is not None:
        parts.append(f"{m.metric} {m.quantized_score:.4f}")
    return ", ".join(parts)


def _metrics(
    reference: list[np.ndarray], outputs: list[np.ndarray], labels: np.ndarray | None
) -> OutputMetrics:
    """`output_metrics` with non-finite outputs as infinite error (a SQNR of -inf, not NaN)
    and a sample whose first output is not all finite counted as a changed prediction (and,
    with class labels, a wrong one): its argmax means nothing."""
    finite = [np.nan_to_num(o, nan=math.inf, posinf=math.inf, neginf=-math.inf) for o in outputs]
    m = output_metrics(reference, finite, labels)
    first = outputs[0].reshape(outputs[0].shape[0], -1)
    bad = ~np.all(np.isfinite(first), axis=1)
    if not bad.any():
        return m
    ref = reference[0].reshape(first.shape[0], -1)
    changes: dict[str, Any] = {}
    if m.top1_agreement is not None:
        same = (ref.argmax(axis=1) == np.nan_to_num(first).argmax(axis=1)) & ~bad
        changes["top1_agreement"] = float(np.mean(same))
    if m.metric == "accuracy" and labels is not None:
        y = np.asarray(labels).reshape(first.shape[0], -1)
        classes = y.argmax(axis=1) if y.shape[1] > 1 else y[:, 0].astype(np.int64)
        hits = (np.nan_to_num(first).argmax(axis=1) == classes) & ~bad
        changes["quantized_score"] = float(np.mean(hits))
    return replace(m, **changes)
