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

Compatibility (docs/tfjs-layers.md): the layer classes and activation names stock TF.js 4.22
registers (`serialization.registerClass` in tfjs-layers; listed below) pass; inference-time
equivalents are translated (`silu` → `swish`; SpatialDropout2D/3D → Dropout; Keras 3
LeakyReLU `negative_slope` → `alpha`; ReLU with only a negative slope → LeakyReLU); anything
else is a `TopologyError` naming each layer and class, so the export fails before writing
instead of producing a model.json TF.js refuses at load time.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = [
    "TFJS_ACTIVATIONS",
    "TFJS_LAYER_CLASSES",
    "TopologyError",
    "tfjs_model_topology",
    "tfjs_weight_name",
    "to_keras2_config",
]

TFJS_LAYER_CLASSES = frozenset(
    [
        "Activation",
        "Add",
        "AlphaDropout",
        "Average",
        "AveragePooling1D",
        "AveragePooling2D",
        "AveragePooling3D",
        "BatchNormalization",
        "Bidirectional",
        "CategoryEncoding",
        "CenterCrop",
        "Concatenate",
        "Conv1D",
        "Conv2D",
        "Conv2DTranspose",
        "Conv3D",
        "Conv3DTranspose",
        "ConvLSTM2D",
        "Cropping2D",
        "Dense",
        "DepthwiseConv2D",
        "Dot",
        "Dropout",
        "ELU",
        "Embedding",
        "Flatten",
        "Functional",
        "GRU",
        "GaussianDropout",
        "GaussianNoise",
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "InputLayer",
        "LSTM",
        "LayerNormalization",
        "LeakyReLU",
        "Masking",
        "MaxPooling1D",
        "MaxPooling2D",
        "MaxPooling3D",
        "Maximum",
        "Minimum",
        "Model",
        "Multiply",
        "PReLU",
        "Permute",
        "RNN",
        "RandomWidth",
        "ReLU",
        "RepeatVector",
        "Rescaling",
        "Reshape",
        "Resizing",
        "SeparableConv2D",
        "Sequential",
        "SimpleRNN",
        "Softmax",
        "SpatialDropout1D",
        "ThresholdedReLU",
        "TimeDistributed",
        "UpSampling2D",
        "ZeroPadding2D",
    ]
)
"""Layer classes stock TF.js 4.22 registers (tfjs-layers `serialization.registerClass`)."""

TFJS_ACTIVATIONS = frozenset(
    [
        "elu",
        "hard_sigmoid",
        "linear",
        "relu",
        "relu6",
        "selu",
        "sigmoid",
        "softmax",
        "softplus",
        "softsign",
        "tanh",
        "swish",
        "mish",
        "gelu",
        "log_softmax",
    ]
)
"""Keras activation names TF.js 4.22 resolves (it camel-cases them: `hard_sigmoid` →
`hardSigmoid`; `gelu_new` does not survive that, so it is not listed)."""

_ACTIVATION_ALIASES = {"silu": "swish", None: "linear"}
_DROPOUT_ALIASES = ("SpatialDropout2D", "SpatialDropout3D")
_KERAS3 = "keras 3 source"


class TopologyError(ValueError):
    """Layers stock TF.js cannot load: `problems` lists (layer name, class, reason)."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.problems = problems
        shown = "; ".join(f"layer '{n}' ({c}): {r}" for n, c, r in problems[:6])
        more = f"; and {len(problems) - 6} more" if len(problems) > 6 else ""
        super().__init__(f"stock TF.js 4.22 cannot load {shown}{more}")


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


def _activation_name(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("config"), str):
        return value["config"]  # Keras 3 {"class_name": "function", "config": "relu"}
    return value


def _translate(cls: str, config: dict[str, Any], problems: list[tuple[str, str, str]]) -> str:
    """TF.js equivalents of inference-time behaviour; unsupported pieces go to `problems`."""
    name = str(config.get("name", "?"))
    if cls in _DROPOUT_ALIASES:
        dropout_keys = ("name", "trainable", "dtype", "rate", "seed")
        for key in [k for k in config if k not in dropout_keys]:
            config.pop(key)
        cls = "Dropout"
    if cls == "LeakyReLU" and "negative_slope" in config:
        config["alpha"] = config.pop("negative_slope")
    if cls == "ReLU":
        slope, threshold = config.get("negative_slope") or 0, config.get("threshold") or 0
        if threshold:
            problems.append((name, cls, "TF.js ReLU has no threshold"))
        elif slope and config.get("max_value") is None:
            keep: dict[str, Any] = {
                k: config[k] for k in ("name", "trainable", "dtype") if k in config
            }
            config.clear()
            config.update(keep, alpha=slope)
            cls = "LeakyReLU"
        elif slope:
            problems.append((name, cls, "TF.js ReLU has no negative slope with max_value"))
    if "activation" in config:
        act = _activation_name(config["activation"])
        act = _ACTIVATION_ALIASES.get(act, act)
        if act not in TFJS_ACTIVATIONS:
            problems.append((name, cls, f"activation '{act}' is not in TF.js"))
        elif act == "hard_sigmoid" and ("", "", _KERAS3) in problems:
            problems.append((name, cls, "Keras 3 hard_sigmoid (x/6 + 1/2) is not TF.js's"))
        config["activation"] = act
    if cls not in TFJS_LAYER_CLASSES:
        problems.append((name, cls, "TF.js has no such layer class"))
    return cls


def _layer(entry: Mapping[str, Any], problems: list[tuple[str, str, str]]) -> dict[str, Any]:
    cls = entry.get("class_name")
    if cls in _CONTAINERS:
        return to_keras2_config(entry, problems)
    config = _plain(dict(entry.get("config", {})))
    if cls == "InputLayer" and "batch_shape" in config:
        config["batch_input_shape"] = config.pop("batch_shape")
    for key in _INVALID_FIELDS.get(str(cls), ()):
        config.pop(key, None)
    cls = _translate(str(cls), config, problems)
    out: dict[str, Any] = {"class_name": cls, "config": config}
    if "name" in entry:
        out["name"] = entry["name"]
    if "inbound_nodes" in entry:
        out["inbound_nodes"] = _inbound(entry["inbound_nodes"])
    return out


def to_keras2_config(
    config: Mapping[str, Any], problems: list[tuple[str, str, str]] | None = None
) -> dict[str, Any]:
    """A Keras 2 or 3 model config (`{"class_name", "config"}`) in the dialect TF.js reads.

    Keras 2 configs pass through with only the invalid SeparableConv fields removed and the
    translations above; what TF.js cannot load is appended to `problems` when given.
    """
    problems = [] if problems is None else problems
    cls = config.get("class_name")
    inner = copy.deepcopy(dict(config.get("config", {})))
    layers = [_layer(entry, problems) for entry in inner.pop("layers", [])]
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
    strict: bool = True,
) -> dict[str, Any]:
    """The `modelTopology` of a TF.js layers-model (no training config: TF.js inference only).

    `strict` raises `TopologyError` when a layer or activation is not in stock TF.js; without
    it the untranslatable parts pass through (the preview's size estimate of such a model)."""
    problems: list[tuple[str, str, str]] = []
    if str(keras_version or "").startswith("3"):
        problems.append(("", "", _KERAS3))  # marker read by _translate, removed below
    topology = {
        "keras_version": keras_version or "2.19.0",
        "backend": backend or "tensorflow",
        "model_config": to_keras2_config(keras_config, problems),
    }
    problems[:] = [p for p in problems if p[2] != _KERAS3]
    if strict and problems:
        raise TopologyError(problems)
    return topology


def tfjs_weight_name(layer: str, weight_path: str) -> str:
    """`<layer>/<variable>` from a layer name and a dataset path such as
    `conv2d_1_1/kernel:0` (legacy) or `sequential/d1/kernel` (Keras 3 legacy h5)."""
    var = weight_path.rsplit("/", 1)[-1]
    if var.endswith(":0"):
        var = var[:-2]
    return f"{layer}/{var}"
