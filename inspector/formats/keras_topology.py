"""Keras model configs → the Keras-2-style `modelTopology` that stock TF.js `loadLayersModel`
accepts, and the clean weight names it looks weights up by.

TF.js speaks the tf.keras 2 config dialect. Keras 3 writes another one (and the official
converter copies it through, so TF.js then fails: ../shared/TOOLING.md traps 2 and 3):
- `InputLayer` has `batch_shape`; TF.js needs `batch_input_shape` (trap 3);
- `dtype` is a `DTypePolicy` object; TF.js needs the plain dtype name;
- layer and initializer entries carry `module`/`registered_name`/`build_config`;
- functional `inbound_nodes` are `{"args": [keras tensors…], "kwargs": {…}}`; TF.js needs
  `[[[layer, node, tensor, kwargs], …]]`;
- `SeparableConv2D` configs carry `kernel_initializer`/`kernel_regularizer`/`kernel_constraint`,
  which TF.js rejects as invalid fields (trap 2, also in tf_keras 2.19 saves).
TF.js finds a weight by `<layer name>/<variable name>`; legacy HDF5 files name weights
`conv2d_1_1/kernel:0` inside layer `conv2d_1`, which TF.js cannot match (trap 1), so names are
rebuilt from the layer group and the variable's own name.

Supported (translated and checked against stock TF.js 4.22): Sequential and Functional models
of InputLayer, Dense, Conv1D/2D, DepthwiseConv2D, SeparableConv2D, BatchNormalization,
pooling, Flatten, Reshape, Dropout, Activation, ReLU, Add/Concatenate/Multiply, Embedding,
LayerNormalization. Other layers pass through with the generic translation.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["tfjs_model_topology", "tfjs_weight_name", "to_keras2_config"]

_DROP_KEYS = ("module", "registered_name", "build_config", "compile_config", "shared_object_id")
_INVALID_FIELDS = {
    "SeparableConv2D": ("kernel_initializer", "kernel_regularizer", "kernel_constraint"),
    "SeparableConv1D": ("kernel_initializer", "kernel_regularizer", "kernel_constraint"),
    "InputLayer": ("optional",),
}
_CONTAINERS = ("Sequential", "Functional", "Model")


def _plain(obj: Any) -> Any:
    """Strip Keras 3 serialization wrappers from initializers, regularizers, constraints."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "DTypePolicy" or obj.get("class_name") == "DTypePolicyV2":
            return obj.get("config", {}).get("name", "float32")
        if obj.get("class_name") == "__keras_tensor__":
            return obj
        return {k: _plain(v) for k, v in obj.items() if k not in _DROP_KEYS}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj


def _history(t: Any) -> list[Any] | None:
    if isinstance(t, dict) and t.get("class_name") == "__keras_tensor__":
        name, node, index = t["config"]["keras_history"]
        return [name, node, index, {}]
    return None


def _collect(args: Any, out: list[list[Any]]) -> None:
    hist = _history(args)
    if hist is not None:
        out.append(hist)
    elif isinstance(args, list | tuple):
        for a in args:
            _collect(a, out)


def _inbound(nodes: Any) -> Any:
    """Keras 3 `{"args", "kwargs"}` nodes → Keras 2 `[[[layer, node, tensor, kwargs], …]]`."""
    if not isinstance(nodes, list):
        return nodes
    out = []
    for node in nodes:
        if isinstance(node, dict) and "args" in node:
            refs: list[list[Any]] = []
            _collect(node["args"], refs)
            kwargs = {k: v for k, v in (node.get("kwargs") or {}).items() if _history(v) is None}
            if refs and kwargs:
                refs[0][3] = _plain(kwargs)
            out.append(refs)
        else:
            out.append(node)
    return out


def _io_layers(spec: Any) -> Any:
    """Keras 3 writes a single `[name, 0, 0]` where Keras 2 writes `[[name, 0, 0]]`."""
    if isinstance(spec, list) and len(spec) == 3 and isinstance(spec[0], str):
        return [spec]
    return spec


def _layer(entry: Mapping[str, Any]) -> dict[str, Any]:
    cls = entry.get("class_name")
    if cls in _CONTAINERS:
        return to_keras2_config(entry)
    config = _plain(dict(entry.get("config", {})))
    if cls == "InputLayer" and "batch_shape" in config:
        config["batch_input_shape"] = config.pop("batch_shape")
    for key in _INVALID_FIELDS.get(str(cls), ()):
        config.pop(key, None)
    out: dict[str, Any] = {"class_name": cls, "config": config}
    if "name" in entry:
        out["name"] = entry["name"]
    if "inbound_nodes" in entry:
        out["inbound_nodes"] = _inbound(entry["inbound_nodes"])
    return out


def to_keras2_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A Keras 2 or 3 model config (`{"class_name", "config"}`) in the dialect TF.js reads.

    Keras 2 configs pass through with only the invalid SeparableConv fields removed.
    """
    cls = config.get("class_name")
    inner = copy.deepcopy(dict(config.get("config", {})))
    layers = [_layer(entry) for entry in inner.pop("layers", [])]
    out = _plain({k: v for k, v in inner.items() if k not in ("layers",)})
    out["layers"] = layers
    for key in ("input_layers", "output_layers"):
        if key in out:
            out[key] = _io_layers(out[key])
    out.pop("build_input_shape", None)
    return {"class_name": "Model" if cls == "Functional" else cls, "config": out}


def tfjs_model_topology(
    keras_config: Mapping[str, Any],
    keras_version: str | None = None,
    backend: str | None = None,
) -> dict[str, Any]:
    """The `modelTopology` of a TF.js layers-model (no training config: TF.js inference only)."""
    return {
        "keras_version": keras_version or "2.19.0",
        "backend": backend or "tensorflow",
        "model_config": to_keras2_config(keras_config),
    }


def tfjs_weight_name(layer: str, weight_path: str) -> str:
    """`<layer>/<variable>` from a layer name and a dataset path such as
    `conv2d_1_1/kernel:0` (legacy) or `sequential/d1/kernel` (Keras 3 legacy h5)."""
    var = weight_path.rsplit("/", 1)[-1]
    if var.endswith(":0"):
        var = var[:-2]
    return f"{layer}/{var}"
