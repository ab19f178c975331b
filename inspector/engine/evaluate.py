"""Output-level error: run the original and the quantized model on evaluation data.

Weight error says how far each tensor moved; the outputs say whether it matters. Evaluation data
is, in order of preference, a user's `.npz` (`x`, or `x0`, `x1`, … one per model input, optional
`y`), the `sample.npz` bundled next to a demo model, or a seeded synthetic probe batch (reported
as such: it measures output drift, not accuracy). Quantized weights come from `quantize_tensor`
under the export target, so the model evaluated is the one the export writes.

Long work is a generator yielding `Progress` between batches; the caller picks the thread and
cancels by no longer iterating. `Evaluator` runs the original model once and keeps its outputs.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from inspector.core.model import Model, Tensor
from inspector.core.plan import Plan
from inspector.core.preview import drain, json_number
from inspector.core.quantize import TensorCache, quantize_tensor
from inspector.core.schemes import Scheme
from inspector.core.target import NATIVE, Target
from inspector.engine.errors import EvaluationUnavailable
from inspector.engine.eval_data import (
    BUNDLED_NAME,
    EvalData,
    choose_data,
    find_bundled_data,
    load_data,
    synthetic_data,
)

__all__ = [
    "BUNDLED_NAME",
    "FRACTION",
    "DecodedCache",
    "EvalData",
    "Evaluation",
    "Evaluator",
    "OutputMetrics",
    "Progress",
    "Runner",
    "as_fraction",
    "choose_data",
    "drain",
    "find_bundled_data",
    "load_data",
    "make_executor",
    "output_metrics",
    "synthetic_data",
]


class Runner(Protocol):
    """What the numpy `Executor` and the ONNX Runtime `OnnxExecutor` both offer."""

    @property
    def input_shapes(self) -> list[tuple[int | None, ...]]: ...
    @property
    def output_count(self) -> int: ...
    def run(self, inputs: Sequence[np.ndarray], batch_size: int = 256) -> list[np.ndarray]: ...
    def with_weights(self, overrides: Mapping[str, np.ndarray]) -> Runner: ...


def make_executor(model: Model) -> Runner:
    """The model's runtime (`engine.runners`): ONNX Runtime for ONNX, LiteRT for TF-Lite, the
    numpy executor for Keras / TF.js layer graphs.

    Raises `EvaluationUnavailable` (with the layer and class when one layer is the reason).
    """
    from inspector.engine.runners import make_executor as from_table

    runner: Runner = from_table(model)
    return runner


@dataclass(frozen=True)
class Progress:
    """`done` of `total` units (samples) of the stage named `stage`."""

    done: int
    total: int
    stage: str


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class OutputMetrics:
    """Output-level error of a quantized model against the original on the same inputs.

    `sqnr_db` = 10·log10(Σ original² / Σ (original − quantized)²) over all outputs (∞ when
    identical); `noise_energy`/`signal_energy` are those sums. `top1_agreement` is the fraction
    of samples whose predicted class is unchanged (classification-shaped outputs only). With
    labels, `metric` is "accuracy" (higher is better) or "mae" (lower is better) and the scores
    are the original and the quantized model's.
    """

    samples: int
    sqnr_db: float
    noise_energy: float
    signal_energy: float
    top1_agreement: float | None
    metric: str | None
    original_score: float | None
    quantized_score: float | None

    @property
    def score_loss(self) -> float | None:
        """How much worse the quantized model scores (accuracy lost, MAE gained); ≥ 0 is worse."""
        if self.original_score is None or self.quantized_score is None:
            return None
        diff = self.quantized_score - self.original_score
        return -diff if self.metric == "accuracy" else diff

    def to_json(self) -> dict[str, Any]:
        data = {k: json_number(getattr(self, k)) for k in self.__dataclass_fields__}
        data["score_loss"] = json_number(self.score_loss)
        return data


def _sqnr_db(signal: float, noise: float) -> float:
    if noise <= 0.0:
        return math.inf
    if signal <= 0.0 or not math.isfinite(noise):
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def _classes(out: np.ndarray) -> np.ndarray | None:
    """Predicted class per sample for classification-shaped outputs (N, K>1) or (N, 1) sigmoid."""
    flat = out.reshape(out.shape[0], -1)
    if flat.shape[1] > 1:
        return flat.argmax(axis=1)
    return None


def _task(out: np.ndarray, labels: np.ndarray) -> tuple[str, np.ndarray]:
    """("accuracy", class labels) or ("mae", targets shaped like `out`)."""
    n = out.shape[0]
    flat = out.reshape(n, -1)
    y = np.asarray(labels)
    if y.shape[0] != n:
        raise EvaluationUnavailable(f"{y.shape[0]} labels for {n} samples")
    k = flat.shape[1]
    integral = y.dtype.kind in "biu" or bool(np.all(np.mod(y, 1) == 0))
    if k > 1 and y.reshape(n, -1).shape[1] == k:
        if integral and np.all(y.reshape(n, -1).sum(axis=1) == 1):
            return "accuracy", y.reshape(n, -1).argmax(axis=1)
        return "mae", y.reshape(n, -1)
    if k > 1 and y.size == n and integral:
        return "accuracy", y.reshape(n).astype(np.int64)
    if y.size == flat.size:
        if k == 1 and y.dtype.kind in "biu" and set(np.unique(y).tolist()) <= {0, 1}:
            return "binary", y.reshape(n)
        return "mae", y.reshape(n, -1)
    raise EvaluationUnavailable(
        f"labels 'y' of shape {y.shape} do not match the model output of shape {out.shape}"
    )


def _score(task: str, out: np.ndarray, target: np.ndarray) -> float:
    flat = out.reshape(out.shape[0], -1)
    if task == "accuracy":
        return float(np.mean(flat.argmax(axis=1) == target))
    if task == "binary":
        return float(np.mean((flat[:, 0] > 0.5) == (target > 0)))
    return float(np.mean(np.abs(flat.astype(np.float64) - target)))


def output_metrics(
    original: Sequence[np.ndarray], quantized: Sequence[np.ndarray], labels: np.ndarray | None
) -> OutputMetrics:
    """Compare outputs (one array per model output); labels, when given, score output 0."""
    signal = sum(float(np.sum(np.square(o, dtype=np.float64))) for o in original)
    noise = sum(
        float(np.sum(np.square(q.astype(np.float64) - o)))
        for o, q in zip(original, quantized, strict=True)
    )
    first_o, first_q = original[0], quantized[0]
    c_o, c_q = _classes(first_o), _classes(first_q)
    agreement = None if c_o is None else float(np.mean(c_o == c_q))
    metric = score_o = score_q = None
    if labels is not None:
        task, target = _task(first_o, labels)
        metric = "mae" if task == "mae" else "accuracy"
        score_o, score_q = _score(task, first_o, target), _score(task, first_q, target)
    return OutputMetrics(
        samples=int(first_o.shape[0]),
        sqnr_db=_sqnr_db(signal, noise),
        noise_energy=noise,
        signal_energy=signal,
        top1_agreement=agreement,
        metric=metric,
        original_score=score_o,
        quantized_score=score_q,
    )


# --------------------------------------------------------------------------- evaluation

FRACTION = 1_000_000
"""`Progress.total` of work reported as a fraction (several stages on one scale)."""


def as_fraction(
    gen: Generator[Progress, None, Any],
    stages: Sequence[str],
    weights: Sequence[float] | None = None,
) -> Generator[Progress, None, Any]:
    """Re-scale a multi-stage generator's progress to one 0…`FRACTION` scale, each stage a
    share proportional to its weight (equal by default; stage names not in `stages` count as
    the last)."""
    w = list(weights) if weights is not None else [1.0] * len(stages)
    whole = sum(w) or 1.0
    starts = [sum(w[:i]) / whole for i in range(len(w))]
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            return stop.value
        index = stages.index(p.stage) if p.stage in stages else len(stages) - 1
        part = p.done / p.total if p.total else 1.0
        fraction = starts[index] + part * w[index] / whole
        yield Progress(int(FRACTION * fraction), FRACTION, p.stage)


def _decoded(tensor: Tensor, scheme: Scheme, target: Target) -> np.ndarray | None:
    q = quantize_tensor(tensor, scheme, target)
    return None if q.skipped is not None else q.decoded


class DecodedCache(TensorCache["np.ndarray | None"]):
    """Decoded (dequantized) tensor values per (tensor, scheme spec, target), so sensitivity
    runs, the budget solver and evaluations quantize each tensor once per scheme. `None` is
    stored when the scheme leaves the tensor as it is."""

    def __init__(self) -> None:
        super().__init__(_decoded)


@dataclass(frozen=True)
class Evaluation:
    """The result of evaluating one plan: its output metrics and the data they were measured on."""

    plan: Plan
    target: str
    data: EvalData
    metrics: OutputMetrics

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "data": self.data.to_json(),
            "plan": self.plan.to_json(),
            "output": self.metrics.to_json(),
        }


class Evaluator:
    """Runs a model's original and quantized forward passes on fixed evaluation data.

    The original outputs are computed once and kept; decoded tensors come from a `DecodedCache`
    shared with whoever else quantizes the same model (pass one in to share it); `measured`
    keeps output metrics per set of changed tensors for sensitivity and the budget solver.
    """

    def __init__(
        self,
        model: Model,
        data: EvalData,
        runner: Runner | None = None,
        target: Target = NATIVE,
        cache: DecodedCache | None = None,
        batch_size: int = 256,
        reference: Runner | None = None,
    ) -> None:
        self.model = model
        self.data = data
        self.runner = runner if runner is not None else make_executor(model)
        self.reference = reference
        """What quantized outputs are compared with when not the model's own float outputs
        (a transformed model is judged against the untransformed original)."""
        self.target = target
        self.cache = cache if cache is not None else DecodedCache()
        self.batch_size = max(1, int(batch_size))
        self._original: list[np.ndarray] | None = None
        self.measured: dict[Any, OutputMetrics] = {}
        """Output metrics by the set of changes measured (filled by sensitivity analysis)."""
        self._alters: dict[tuple[str, str], bool] = {}

    def alters(self, tensor: Tensor, scheme: Scheme) -> np.ndarray | None:
        """The decoded values of `tensor` under `scheme` when they differ from the tensor's
        own values, else None: a scheme that reproduces the stored values exactly (an input
        already on that grid) changes nothing, and sensitivity need not run the model for it.
        The verdict is kept per (tensor, spec)."""
        values = self.decoded(tensor, scheme)
        if values is None:
            return None
        key = (tensor.name, scheme.spec)
        verdict = self._alters.get(key)
        if verdict is None:
            verdict = not np.array_equal(values, np.asarray(tensor.load()))
            self._alters[key] = verdict
        return values if verdict else None

    @classmethod
    def open(
        cls,
        model: Model,
        data_path: str | Path | None = None,
        target: Target = NATIVE,
        max_samples: int | None = None,
    ) -> Evaluator:
        """An evaluator on the user's data, else the bundled sample, else a synthetic batch."""
        runner = make_executor(model)
        dtypes = getattr(runner, "input_dtypes", None)
        data = choose_data(model.path, runner.input_shapes, data_path, max_samples, dtypes)
        return cls(model, data, runner, target)

    def decoded(self, tensor: Tensor, scheme: Scheme) -> np.ndarray | None:
        """The values the export's runtime will see for `tensor` under `scheme` (None: as is)."""
        return self.cache.get(tensor, scheme, self.target)

    def overrides(self, plan: Plan) -> dict[str, np.ndarray]:
        """Tensor name → decoded values for every tensor the plan changes."""
        out = {}
        for tensor in self.model.weights:
            values = self.decoded(tensor, plan.scheme_for(tensor.info))
            if values is not None:
                out[tensor.name] = values
        return out

    def iter_run(
        self, overrides: Mapping[str, np.ndarray], stage: str = "quantized"
    ) -> Generator[Progress, None, list[np.ndarray]]:
        """Outputs with `overrides` laid over the weights, one `Progress` per batch."""
        runner = self.runner.with_weights(overrides) if overrides else self.runner
        return (yield from self._run(runner, stage))

    def _run(self, runner: Runner, stage: str) -> Generator[Progress, None, list[np.ndarray]]:
        if hasattr(runner, "iter_steps"):
            return (yield from self._run_steps(runner, stage))
        n, step = self.data.samples, self.batch_size
        chunks: list[list[np.ndarray]] = []
        for start in range(0, n, step):
            batch = [x[start : start + step] for x in self.data.inputs]
            chunks.append(runner.run(batch, batch_size=step))
            yield Progress(min(n, start + step), n, stage)
        return [np.concatenate([c[i] for c in chunks]) for i in range(len(chunks[0]))]

    def _run_steps(self, runner: Any, stage: str) -> Generator[Progress, None, list[np.ndarray]]:
        """The numpy executor layer by layer in batches small enough that one layer takes tens
        of milliseconds: a `Progress` per layer (units: values written, `step_costs`)."""
        xs = runner.prepare(self.data.inputs)
        costs = runner.step_costs(xs)
        n = self.data.samples
        step = self.step_batch(runner)
        total, done = sum(costs) * n, 0
        chunks: list[list[np.ndarray]] = []
        with np.errstate(over="ignore", under="ignore"):
            for start in range(0, n, step):
                values = runner.start_values([x[start : start + step] for x in xs])
                rows = min(n, start + step) - start
                for index in runner.iter_steps(values):
                    done += costs[index] * rows
                    yield Progress(done, total, stage)
                chunks.append(runner.outputs_of(values))
        return [np.concatenate([c[i] for c in chunks]) for i in range(len(chunks[0]))]

    def step_batch(self, runner: Any) -> int:
        """Samples per batch for the numpy executor: `batch_size`, smaller when one layer's
        output would exceed `executor.ACTIVATION_BUDGET` values."""
        return max(1, min(self.batch_size, runner.batch_for(self.data.inputs)))

    def iter_original(self) -> Generator[Progress, None, list[np.ndarray]]:
        """The original model's outputs (computed on first use, then kept)."""
        if self._original is None:
            if self.reference is not None:
                self._original = yield from self._run(self.reference, "original")
            else:
                self._original = yield from self.iter_run({}, stage="original")
        return self._original

    def iter_measure(
        self, overrides: Mapping[str, np.ndarray], stage: str = "quantized"
    ) -> Generator[Progress, None, OutputMetrics]:
        """Output metrics of the model with `overrides` against the original."""
        original = yield from self.iter_original()
        if not overrides and self.reference is None:
            return output_metrics(original, original, self.data.labels)
        quantized = yield from self.iter_run(overrides, stage)
        return output_metrics(original, quantized, self.data.labels)

    def iter_evaluate(self, plan: Plan) -> Generator[Progress, None, Evaluation]:
        """Evaluate `plan`; yields `Progress` in millionths of the whole evaluation (the
        original run, when not yet kept, and the quantized run share the scale)."""
        stages = ["original", "quantized"] if self._original is None else ["quantized"]
        gen = self.iter_measure(self.overrides(plan))
        metrics = yield from as_fraction(gen, stages)
        return Evaluation(plan, self.target.name, self.data, metrics)

    def evaluate(self, plan: Plan) -> Evaluation:
        return drain(self.iter_evaluate(plan))

    def outputs(self, plan: Plan) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(original outputs, quantized outputs) under `plan`, for saving or plotting."""
        original = drain(self.iter_original())
        quantized = drain(self.iter_run(self.overrides(plan)))
        return original, quantized
