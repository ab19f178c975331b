"""Run a TF-Lite model with the LiteRT interpreter, optionally with some weights replaced.

The interface of the numpy `Executor` and the ONNX Runtime `OnnxExecutor` (`from_model`,
`input_shapes`, `input_dtypes`, `output_count`, `run`, `with_weights`), so output-level error,
sensitivity and the budget solver treat `.tflite` models like the others. Overrides are the
float values a runtime should see for a tensor (the preview's decoded weights); they are stored
into an in-memory copy of the model as the TF-Lite writer would store them, recognised from the
values (`_stores`): int8 codes where the writer uses hybrid kernels (which also quantize the
activations at run time, so the evaluation includes that error, as the exported file has it),
int8 with a re-scaled bias for integer kernels, float32 constants otherwise (numerically what
the writer's float16/int8 + DEQUANTIZE produce). The file is never touched.

Needs the optional extra `tflite` (`ai-edge-litert`); without it `EvaluationUnavailable` says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from inspector.core.errors import InspectorError
from inspector.core.model import Model
from inspector.core.schemes import parse_scheme
from inspector.core.schemes.symmetric_math import as_rows, from_rows, int8_scales
from inspector.engine.errors import EvaluationUnavailable
from inspector.formats.tflite.edit import Store, apply_stores, serialize
from inspector.formats.tflite.flatbuf import Blob
from inspector.formats.tflite.flatbuild import Chunk
from inspector.formats.tflite.writer import hybrid_readers

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


def exact_int8(values: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(codes, scales) when `values` are exactly int8 codes × a float32 scale per channel
    along `axis` with the top code ±127 (what the int8 scheme decodes to), else None.

    The scale is max|w|/127 re-derived in float32, or the float32 next to it (127·s rounds),
    whichever reproduces every value of the channel bit for bit."""
    rows = as_rows(np.asarray(values, np.float32), axis)
    absmax = np.max(np.abs(rows), axis=0) if rows.size else np.zeros(rows.shape[1], np.float32)
    base = int8_scales(absmax)
    scales = np.zeros_like(base)
    found = np.zeros(base.shape, bool)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for cand in (base, np.nextafter(base, np.inf), np.nextafter(base, np.float32(0))):
            q = np.clip(np.rint(rows / cand), -127, 127)
            same = np.all((q * cand).astype(np.float32) == rows, axis=0) & ~found
            scales[same], found = cand[same], found | same
    if not found.all():
        return None
    codes = np.clip(np.rint(rows / scales), -127, 127).astype(np.int8)
    return from_rows(codes, values.shape, axis), scales


def _exact_float16(values: np.ndarray) -> bool:
    with np.errstate(over="ignore"):
        return bool(np.array_equal(values.astype(np.float16).astype(np.float32), values))


def _stores(model: Model, overrides: Mapping[str, np.ndarray]) -> list[Store]:
    """The writer's storage of each override, recognised from its values: int8 codes go to the
    hybrid kernels the writer uses (exactly: `exact_int8`), unless a reader's bias looks stored
    through DEQUANTIZE (float16 or int8 values), where the writer falls back to weight-only
    DEQUANTIZE; everything else is a float32 constant, numerically what DEQUANTIZE produces."""
    sources = model.metadata["tflite_sources"]
    hybrid = hybrid_readers(model)
    stores, through_dq = [], set()
    for name, values in overrides.items():
        if name not in sources:
            raise InspectorError(f"{model.path}: no tensor named {name!r} to replace")
        info, src = model[name].info, sources[name]
        arr = np.asarray(values, np.float32).reshape(info.shape)
        params = dict(info.stored.params) if info.stored is not None else {}
        kernel = params.get("kernel")
        if kernel == "integer":
            raise InspectorError(f"{model.path}: {name!r} feeds an integer kernel; kept as stored")
        axis = params.get("axis") if kernel == "integer-int8" else info.channel_axis
        int8 = exact_int8(arr, axis if arr.ndim > 1 else None)
        if kernel == "integer-int8" or (int8 and (src.subgraph, src.value) in hybrid):
            if int8 is None:
                enc = parse_scheme("int8" if axis is None else f"int8:axis={axis}").encode(arr)
                int8 = (enc.codes, np.asarray(enc.params["scales"], np.float32))
            stores.append(Store(src, "int8", int8[0], False, int8[1], axis))
            continue
        if int8 is not None or _exact_float16(arr):
            through_dq.add((src.subgraph, src.value))
        stores.append(Store(src, "float32", arr))
    stores += _dequantized_back(model, overrides)
    for k, st in enumerate(stores):
        key = (st.source.subgraph, st.source.value)
        weight = st.dtype == "int8" and st.source.kernel != "integer"
        if weight and any(b in through_dq for b in hybrid.get(key, [])):
            stores[k] = Store(st.source, "float32", overrides_values(model, overrides, key))
    return stores


def _dequantized_back(model: Model, overrides: Mapping[str, np.ndarray]) -> list[Store]:
    """The writer stores a kept tensor that the input stores quantized (float kernels) as
    float32: so does the runner once anything changes (same file, same delegate choices)."""
    out = []
    for t in model:
        stored = t.info.stored
        if t.name in overrides or stored is None or t.info.dtype != "float32":
            continue
        if stored.params.get("kernel") in ("integer", "integer-int8"):
            continue
        src = model.metadata["tflite_sources"][t.name]
        out.append(Store(src, "float32", np.asarray(t.load(), np.float32)))
    return out


def overrides_values(model: Model, overrides: Mapping[str, np.ndarray], key: tuple) -> np.ndarray:
    sources = model.metadata["tflite_sources"]
    name = next(n for n, s in sources.items() if (s.subgraph, s.value) == key and n in overrides)
    return np.asarray(overrides[name], np.float32).reshape(model[name].info.shape)


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
