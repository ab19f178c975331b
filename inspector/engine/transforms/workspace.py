"""The transforms' working copy of a model, and the transformed `Model` built from it.

A transform reads and writes tensor values by name (`ws[name]`), adds or removes tensors and
edits the topology; nothing touches the input model. `build()` then gives an ordinary `Model`
whose tensors load the new values and whose metadata describes the new topology in the input
format's own terms, so preview, evaluation, sensitivity and every writer work on it unchanged:
- all layer formats: `keras_config` (what the executor and the TF.js writer read);
- TF.js: `model_json` with the new `modelTopology`;
- legacy Keras `.h5`: `h5_layout` / `h5_paths` without the removed layers and with a path for
  each added tensor (beside its layer's kernel), plus `h5_layout_changed` for the writer;
- Keras 3 `.keras`: `h5_paths` / `keras3_layer_names` renamed as Keras 3 names the weight
  groups of the new layer list (`inspector.formats.keras.layout.keras3_relayout`).
Tensors whose values changed lose the file's stored quantization (they no longer sit on it).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from inspector.core.model import Model, Tensor, TensorInfo
from inspector.engine.errors import TransformUnavailable
from inspector.engine.transforms.channels import Weighted
from inspector.engine.transforms.topology import edit_topology, with_topology

__all__ = ["Stats", "Workspace"]

LAYER_FORMATS = ("tfjs", "keras-h5", "keras")


@dataclass(frozen=True)
class Stats:
    """Per-channel mean and standard deviation of a layer's pre-activation output, as its
    (folded) batch normalization promises: N(β, γ²). Units: the layer's output units."""

    mean: np.ndarray
    std: np.ndarray


class Workspace(MutableMapping[str, np.ndarray]):
    """Tensor name → float32 values (read lazily from the input, written by transforms)."""

    def __init__(self, model: Model) -> None:
        config = model.metadata.get("keras_config")
        if model.format not in LAYER_FORMATS or not isinstance(config, dict) or not config:
            raise TransformUnavailable(
                f"{model.path}: the transforms need a Keras or TF.js layers model with its "
                f"topology (this is {model.format})"
            )
        self.base = model
        self.config: dict[str, Any] = copy.deepcopy(config)
        self.infos: dict[str, TensorInfo] = {t.name: t.info for t in model.weights}
        self.changed: dict[str, np.ndarray] = {}
        self._loaded: dict[str, np.ndarray] = {}
        self.added: dict[str, str] = {}
        """Added tensor → the tensor it is placed after (its layer's kernel)."""
        self.removed: set[str] = set()
        self.bypassed: list[str] = []
        self.stats: dict[str, Stats] = {}
        self.notes: list[str] = []

    # ------------------------------------------------------------------ mapping

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.changed:
            return self.changed[name]
        if name not in self._loaded:
            if name not in self.infos or name in self.removed:
                raise KeyError(name)
            self._loaded[name] = np.asarray(self.base[name].load(), dtype=np.float32)
        return self._loaded[name]

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        if name not in self.infos:
            raise KeyError(name)
        value = np.asarray(value, dtype=np.float32)
        if value.shape != self.infos[name].shape:
            raise ValueError(f"{name}: shape {value.shape} is not {self.infos[name].shape}")
        self.changed[name] = value

    def __delitem__(self, name: str) -> None:
        self.removed.add(name)
        self.changed.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return (n for n in self.infos if n not in self.removed)

    def __len__(self) -> int:
        return len(self.infos) - len(self.removed)

    def __contains__(self, name: object) -> bool:
        return name in self.infos and name not in self.removed

    # ------------------------------------------------------------------ structure

    def add_tensor(self, info: TensorInfo, value: np.ndarray, after: str) -> None:
        """A new tensor (e.g. the bias a folded conv gains), placed after `after`."""
        if info.name in self.infos:
            raise TransformUnavailable(f"tensor {info.name!r} exists already")
        self.infos[info.name] = info
        self.added[info.name] = after
        self[info.name] = value

    def ensure_bias(self, w: Weighted) -> bool:
        """Give a weighted layer a zero bias if it has none (`use_bias` turned on); True when
        one was added."""
        if w.bias in self:
            return False
        info = TensorInfo(w.bias, (w.out_channels,), "float32", w.layer)
        self.add_tensor(info, np.zeros(w.out_channels, np.float32), after=w.out_kernel)
        self.update_layer(w.layer, use_bias=True)
        return True

    def bypass(self, layer: str, tensors: list[str]) -> None:
        """Remove a layer from the topology (its consumers read its input) with its tensors."""
        self.config = edit_topology(self.config, bypass=[layer])
        self.bypassed.append(layer)
        for name in tensors:
            del self[name]

    def update_layer(self, layer: str, **changes: Any) -> None:
        """Set (None: delete) config keys of one layer."""
        self.config = edit_topology(self.config, updates={layer: changes})

    # ------------------------------------------------------------------ result

    def build(self, description: list[dict[str, Any]]) -> Model:
        """The transformed model (see the module docstring)."""
        order = self._order()
        tensors = [self._tensor(name) for name in order]
        meta = dict(self.base.metadata)
        meta["keras_config"] = self.config
        meta["transforms"] = description
        meta["transformed_from"] = str(self.base.path)
        if self.base.format == "tfjs":
            meta["model_json"] = with_topology(meta["model_json"], self.config)
            meta.pop("weights_manifest", None)
        elif meta.get("keras_weights_layout") == "legacy":
            self._legacy_layout(meta)
        elif meta.get("keras_weights_layout") == "keras3" and (self.added or self.bypassed):
            from inspector.formats.keras.layout import keras3_relayout

            kept = {n: self.infos[n] for n in order}
            meta.update(
                keras3_relayout(
                    meta, self.base.metadata["keras_config"], self.config, kept, self.added
                )
            )
        model = Model(self.base.path, self.base.format, tensors, meta)
        model.file_bytes = self.base.file_bytes
        return model

    def _order(self) -> list[str]:
        after: dict[str, list[str]] = {}
        for name, anchor in self.added.items():
            after.setdefault(anchor, []).append(name)
        order: list[str] = []
        for name in self.infos:
            if name in self.added:
                continue
            order.append(name)
            order.extend(after.get(name, []))
        return [n for n in order if n not in self.removed]

    def _tensor(self, name: str) -> Tensor:
        info = self.infos[name]
        if name not in self.changed:
            return self.base[name]
        value = self.changed[name]
        value.flags.writeable = False
        return Tensor(replace(info, stored=None), lambda: value)

    def _legacy_layout(self, meta: dict[str, Any]) -> None:
        paths = {k: v for k, v in meta.get("h5_paths", {}).items() if k not in self.removed}
        root = str(meta.get("weights_root", "/")).strip("/")
        layout = [
            (layer, list(rels))
            for layer, rels in meta.get("h5_layout", [])
            if layer not in self.bypassed
        ]
        where = {layer: rels for layer, rels in layout}
        for name, anchor in self.added.items():
            layer = self.infos[name].layer
            kernel = paths[anchor]
            prefix = "/" + "/".join(p for p in (root, layer) if p) + "/"
            rel = _sibling(kernel[len(prefix) :] if kernel.startswith(prefix) else kernel, name)
            where[layer].append(rel)
            paths[name] = prefix + rel
        meta["h5_layout"] = layout
        meta["h5_paths"] = paths
        meta["h5_layout_changed"] = bool(self.added or self.bypassed)


def _sibling(kernel_rel: str, new_name: str) -> str:
    """The dataset path of an added tensor: its kernel's path with the last component taken
    from the new tensor's name (`conv2d_1_1/kernel:0` → `conv2d_1_1/bias:0`)."""
    head, sep, _ = kernel_rel.rpartition("/")
    return f"{head}{sep}{new_name.rpartition('/')[2]}"
