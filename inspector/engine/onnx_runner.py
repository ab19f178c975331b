"""Run an ONNX model with ONNX Runtime (CPU), optionally with some weights replaced.

The same small interface as the numpy `Executor` (engine/executor.py): `from_model`,
`input_shapes`, `output_count`, `run`, `with_weights`, so output-level error, sensitivity and the
budget solver treat ONNX models like Keras ones. Overrides are the float values a runtime should
see for a tensor (e.g. the preview's dequantized weights); they replace the tensor where the reader
found it (initializer, Constant node, DequantizeLinear/Cast-stored weight, subgraph) in an
in-memory copy of the graph, so the original file is never touched.

Sessions use ORT_ENABLE_BASIC graph optimizations: the extended fusions rewrite a weight-only
`DequantizeLinear → MatMul` into `MatMulNBits`, which by default (accuracy level 4) quantizes the
activations to int8 too — measured 0.5 % output drift on a small MLP — so the output error would
no longer be the weights' alone. Basic optimizations keep the graph's float semantics exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from inspector.core.errors import InspectorError
from inspector.core.model import Model
from inspector.engine.errors import EvaluationUnavailable
from inspector.engine.eval_data import check_input_size
from inspector.formats.onnx.edit import Replacement, apply_replacements
from inspector.formats.onnx.proto import MISSING_EXTRA, materialize_external, require_onnx

__all__ = ["OnnxExecutor"]

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise InspectorError(MISSING_EXTRA) from None
    return onnxruntime


def _np_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _replacements(model: Model, overrides: Mapping[str, np.ndarray]) -> list[Replacement]:
    helper = require_onnx().numpy_helper
    sources = model.metadata["onnx_sources"]
    reps = []
    for name, values in overrides.items():
        if name not in sources:
            raise InspectorError(f"{model.path}: no tensor named {name!r} to replace")
        info = model[name].info
        arr = np.asarray(values).reshape(info.shape).astype(_np_dtype(info.dtype))
        src = sources[name]
        reps.append(Replacement(src, [helper.from_array(arr, src.value)]))
    return reps


class OnnxExecutor:
    """An ONNX Runtime CPU session on a model, with weight overrides applied to a graph copy."""

    def __init__(
        self,
        model: Model,
        base: Any,
        overrides: Mapping[str, np.ndarray],
        extra_outputs: Sequence[str] = (),
    ) -> None:
        self._model = model
        self._base = base
        self._overrides = dict(overrides)
        self._extra = tuple(extra_outputs)
        proto = type(base)()
        proto.CopyFrom(base)
        apply_replacements(proto, _replacements(model, self._overrides))
        for name in self._extra:
            proto.graph.output.add().name = name
        ort = _ort()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", "0")
        try:
            self._session = ort.InferenceSession(
                proto.SerializeToString(), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise EvaluationUnavailable(
                f"ONNX Runtime cannot load {model.path.name}: {exc}"
            ) from None
        self._inputs = self._session.get_inputs()
        self._outputs = self._session.get_outputs()
        for arg in self._inputs:  # a fixed batch is padded to its full size in `run`
            check_input_size(model.path, arg.name, self._dims(arg))

    @classmethod
    def from_model(
        cls, model: Model, overrides: Mapping[str, np.ndarray] | None = None
    ) -> OnnxExecutor:
        """A session on `model` (format "onnx") with `overrides` (tensor name → float values)."""
        if model.format != "onnx" or "onnx_proto" not in model.metadata:
            raise EvaluationUnavailable(f"{model.path.name} is not an ONNX model")
        _ort()
        base = type(model.metadata["onnx_proto"])()
        base.CopyFrom(model.metadata["onnx_proto"])
        materialize_external(base, model.path.parent, model.path)
        return cls(model, base, overrides or {})

    def with_weights(self, overrides: Mapping[str, np.ndarray]) -> OnnxExecutor:
        """A new executor with `overrides` laid over this one's (the graph is parsed once)."""
        return OnnxExecutor(self._model, self._base, {**self._overrides, **overrides}, self._extra)

    def with_outputs(self, values: Sequence[str]) -> OnnxExecutor:
        """A new executor whose `run` also returns the main graph's values named `values`,
        after the model's outputs and in that order (e.g. a layer's input, for GPTQ)."""
        return OnnxExecutor(self._model, self._base, self._overrides, values)

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self._inputs]

    @property
    def input_shapes(self) -> list[tuple[int | None, ...]]:
        """Per input, batch dimension None (as the numpy Executor; `run` honours a fixed batch
        itself), other symbolic/unknown dimensions None too."""
        return [(None, *self._dims(i)[1:]) for i in self._inputs]

    @staticmethod
    def _dims(arg: Any) -> tuple[int | None, ...]:
        return tuple(d if isinstance(d, int) else None for d in arg.shape)

    @property
    def input_dtypes(self) -> list[np.dtype]:
        return [np.dtype(_ORT_TYPES.get(i.type, np.float32)) for i in self._inputs]

    @property
    def output_count(self) -> int:
        return len(self._outputs)

    def run(
        self, inputs: Sequence[np.ndarray] | np.ndarray, batch_size: int = 256
    ) -> list[np.ndarray]:
        """Outputs for `inputs` (one array per graph input, batch first), in batches of
        `batch_size` rows (or of the model's fixed batch, padding the last batch); floating
        outputs as float32."""
        arrays = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
        if len(arrays) != len(self._inputs):
            raise InspectorError(
                f"{self._model.path.name} takes {len(self._inputs)} inputs "
                f"({', '.join(self.input_names)}), got {len(arrays)}"
            )
        arrays = [np.asarray(a, dtype=t) for a, t in zip(arrays, self.input_dtypes, strict=True)]
        rows = arrays[0].shape[0] if arrays[0].ndim else 1
        dims0 = self._dims(self._inputs[0])
        fixed = dims0[0] if dims0 else None
        step = fixed if fixed else max(1, batch_size)
        chunks: list[list[np.ndarray]] = []
        for start in range(0, max(rows, 1), step):
            batch = [a[start : start + step] for a in arrays]
            got = batch[0].shape[0] if batch[0].ndim else 1
            if fixed and got < fixed:
                batch = [
                    np.concatenate([b, np.zeros((fixed - got, *b.shape[1:]), b.dtype)])
                    for b in batch
                ]
            outs = self._session.run(None, dict(zip(self.input_names, batch, strict=True)))
            chunks.append(
                [o[:got] if fixed and o.ndim and o.shape[0] == fixed else o for o in outs]
            )
        if len(chunks) == 1:
            outs = [np.asarray(o) for o in chunks[0]]
        else:
            outs = [np.concatenate([c[k] for c in chunks]) for k in range(self.output_count)]
        return [o.astype(np.float32) if o.dtype.kind == "f" else o for o in outs]
