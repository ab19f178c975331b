"""Run a TF-Lite model with the LiteRT interpreter, optionally with some weights replaced.

The interface of the numpy `Executor` and the ONNX Runtime `OnnxExecutor` (`from_model`,
`input_shapes`, `input_dtypes`, `output_count`, `run`, `with_weights`), so output-level error,
sensitivity and the budget solver treat `.tflite` models like the others. Overrides are the
float values a runtime should see for a tensor (the preview's decoded weights): they are written
into an in-memory copy of the model as float32 constants — the weight-only error — except the
int8 weights of integer kernels (full-integer models), which are re-stored as int8 per channel
with their bias re-scaled, exactly as the TF-Lite writer does. The file is never touched.

An int8 export runs the converter's hybrid kernels, which also quantize activations per batch
at run time; the evaluation here measures the weights' error alone (see docs/tflite.md for the
two compared on the demo models).

Needs the optional extra `tflite` (`ai-edge-litert`); without it `EvaluationUnavailable` says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from inspector.core.errors import InspectorError
from inspector.core.model import Model
from inspector.core.schemes import parse_scheme
from inspector.engine.errors import EvaluationUnavailable
from inspector.formats.tflite.edit import Store, apply_stores, serialize
from inspector.formats.tflite.flatbuf import Blob
from inspector.formats.tflite.flatbuild import Chunk

__all__ = ["MISSING_LITERT", "TfliteExecutor"]

MISSING_LITERT = (
    "running TF-Lite models needs the LiteRT interpreter: pip install 'quant-inspector[tflite]'"
)


def _interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-untyped]
    except ImportError:
        raise EvaluationUnavailable(MISSING_LITERT) from None
    return Interpreter


def _stores(model: Model, overrides: Mapping[str, np.ndarray]) -> list[Store]:
    sources = model.metadata["tflite_sources"]
    stores = []
    for name, values in overrides.items():
        if name not in sources:
            raise InspectorError(f"{model.path}: no tensor named {name!r} to replace")
        info = model[name].info
        src = sources[name]
        arr = np.asarray(values, np.float32).reshape(info.shape)
        kernel = info.stored.params.get("kernel") if info.stored is not None else None
        if kernel == "integer":
            raise InspectorError(f"{model.path}: {name!r} feeds an integer kernel; kept as stored")
        if kernel == "integer-int8":
            axis = info.stored.params.get("axis") if info.stored is not None else None
            enc = parse_scheme("int8" if axis is None else f"int8:axis={axis}").encode(arr)
            scales = np.asarray(enc.params["scales"], np.float32)
            stores.append(Store(src, "int8", enc.codes, False, scales, enc.params["axis"]))
        else:
            stores.append(Store(src, "float32", arr))
    return stores


def model_bytes(model: Model, overrides: Mapping[str, np.ndarray]) -> bytes:
    """The model's FlatBuffer with `overrides` applied, in memory."""
    src = model.metadata["tflite_source"]

    def read(blob: Blob) -> bytes:
        return src.read_exact(blob.offset, blob.length)

    def chunk(blob: Blob) -> Chunk:
        return Chunk(blob.length, lambda: read(blob))

    tree = apply_stores(model.metadata["tflite_tree"], _stores(model, overrides), read, src.size)
    return b"".join(bytes(p) for p in serialize(tree, chunk).parts())


class TfliteExecutor:
    """A LiteRT interpreter on a model (CPU, two threads), weights overridden in a copy."""

    def __init__(self, model: Model, overrides: Mapping[str, np.ndarray]) -> None:
        self._model = model
        self._overrides = dict(overrides)
        interpreter = _interpreter_class()
        try:
            content = model_bytes(model, self._overrides) if self._overrides else None
            if content is None:
                self._interp = interpreter(model_path=str(model.path), num_threads=2)
            else:
                self._interp = interpreter(model_content=content, num_threads=2)
            self._interp.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            raise EvaluationUnavailable(f"LiteRT cannot load {model.path.name}: {exc}") from None
        self._inputs = self._interp.get_input_details()
        self._outputs = self._interp.get_output_details()
        self._batch: int | None = None

    @classmethod
    def from_model(
        cls, model: Model, overrides: Mapping[str, np.ndarray] | None = None
    ) -> TfliteExecutor:
        """An interpreter on `model` (format "tflite") with `overrides` (name → values)."""
        if model.format != "tflite" or "tflite_tree" not in model.metadata:
            raise EvaluationUnavailable(f"{model.path.name} is not a TF-Lite model")
        _interpreter_class()
        return cls(model, overrides or {})

    def with_weights(self, overrides: Mapping[str, np.ndarray]) -> TfliteExecutor:
        """A new executor with `overrides` laid over this one's."""
        return TfliteExecutor(self._model, {**self._overrides, **overrides})

    @property
    def input_names(self) -> list[str]:
        return [str(d["name"]) for d in self._inputs]

    @property
    def input_shapes(self) -> list[tuple[int | None, ...]]:
        """Per input, batch dimension None, unknown (−1) dimensions None."""
        out = []
        for d in self._inputs:
            sig = [int(v) for v in d.get("shape_signature", d["shape"])]
            out.append((None, *(v if v >= 0 else None for v in sig[1:])))
        return out

    @property
    def input_dtypes(self) -> list[np.dtype]:
        """float32 for quantized integer inputs (run() quantizes them), else the input's own."""
        return [np.dtype(np.float32) if _scale(d) else np.dtype(d["dtype"]) for d in self._inputs]

    @property
    def output_count(self) -> int:
        return len(self._outputs)

    def run(
        self, inputs: Sequence[np.ndarray] | np.ndarray, batch_size: int = 256
    ) -> list[np.ndarray]:
        """Outputs for `inputs` (one array per model input, batch first): the whole batch at
        once when the model's batch dimension is free, else one model batch at a time (the last
        padded). Quantized integer inputs/outputs are (de)quantized with their own parameters;
        floating outputs come back as float32."""
        arrays = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
        if len(arrays) != len(self._inputs):
            raise InspectorError(
                f"{self._model.path.name} takes {len(self._inputs)} inputs "
                f"({', '.join(self.input_names)}), got {len(arrays)}"
            )
        rows = arrays[0].shape[0] if arrays[0].ndim else 1
        free = self._free_batch()
        step = max(1, min(batch_size, rows)) if free else self._fixed_batch()
        chunks = []
        for start in range(0, max(rows, 1), step):
            batch = [np.asarray(a[start : start + step]) for a in arrays]
            got = batch[0].shape[0] if batch[0].ndim else 1
            if not free:
                batch = [_pad(b, step) for b in batch]
            elif self._batch != got:
                for d, b in zip(self._inputs, batch, strict=True):
                    self._interp.resize_tensor_input(d["index"], list(b.shape))
                self._interp.allocate_tensors()
                self._batch = got
            chunks.append([o[:got] for o in self._invoke(batch)])
        return [np.concatenate([c[k] for c in chunks]) for k in range(self.output_count)]

    def _free_batch(self) -> bool:
        d0 = self._inputs[0]
        sig = [int(v) for v in d0.get("shape_signature", d0["shape"])]
        return bool(sig) and sig[0] == -1

    def _fixed_batch(self) -> int:
        shape = self._inputs[0]["shape"]
        return int(shape[0]) if len(shape) else 1

    def _invoke(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        for d, b in zip(self._inputs, batch, strict=True):
            self._interp.set_tensor(d["index"], _to_input(b, d))
        self._interp.invoke()
        return [_from_output(self._interp.get_tensor(d["index"]), d) for d in self._outputs]


def _scale(d: Mapping[str, Any]) -> float:
    scale, _ = d.get("quantization", (0.0, 0))
    return float(scale) if np.dtype(d["dtype"]).kind in "iu" else 0.0


def _pad(b: np.ndarray, n: int) -> np.ndarray:
    if b.shape[0] >= n:
        return b
    return np.concatenate([b, np.zeros((n - b.shape[0], *b.shape[1:]), b.dtype)])


def _to_input(b: np.ndarray, d: Mapping[str, Any]) -> np.ndarray:
    dtype = np.dtype(d["dtype"])
    scale = _scale(d)
    if scale:
        _, zp = d["quantization"]
        info = np.iinfo(dtype)
        q = np.rint(np.asarray(b, np.float64) / scale) + zp
        return np.clip(q, info.min, info.max).astype(dtype)
    return np.asarray(b, dtype)


def _from_output(y: np.ndarray, d: Mapping[str, Any]) -> np.ndarray:
    scale = _scale(d)
    if scale:
        _, zp = d["quantization"]
        return ((y.astype(np.int64) - zp).astype(np.float32) * np.float32(scale)).copy()
    return y.astype(np.float32) if y.dtype.kind == "f" else y.copy()
