"""Edits of a Keras / TF.js layer topology (the `keras_config` dict the readers keep).

A transform that removes a layer (a folded BatchNormalization) or changes one (a ReLU6 whose cap
is lifted, a conv that gains a bias) must hand the writers a topology that real Keras and stock
TF.js load. Both dialects are handled: Keras 2 / TF.js inbound nodes
`[[["layer", node, tensor, {kwargs}], …]]` and Keras 3's `{"args": [keras tensors], …}` with
`keras_history`. Only top-level layers are edited; nested models are left as they are.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from inspector.engine.errors import TransformUnavailable

__all__ = ["edit_topology", "layer_entries", "with_topology"]

Ref = tuple[str, int, int]


def layer_entries(keras_config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The top-level layer entries of a Sequential or Functional config (mutable if the
    config is)."""
    config = keras_config.get("config")
    if isinstance(config, list):
        return config
    if isinstance(config, Mapping):
        layers = config.get("layers")
        if isinstance(layers, list):
            return layers
    raise TransformUnavailable("the model topology lists no layers")


def _entry_name(entry: Mapping[str, Any]) -> str:
    return str(entry.get("name") or entry.get("config", {}).get("name"))


def edit_topology(
    keras_config: Mapping[str, Any],
    bypass: Iterable[str] = (),
    updates: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """A copy of `keras_config` with the `bypass` layers removed (each consumer of one now reads
    that layer's own input) and `updates` applied: layer name → {config key: value}, a value of
    `None` deleting the key (so the loader applies its default)."""
    new = copy.deepcopy(dict(keras_config))
    entries = layer_entries(new)
    gone = set(bypass)
    replace: dict[Ref, Any] = {}
    if new.get("class_name") != "Sequential":
        for entry in entries:
            if _entry_name(entry) in gone:
                replace[(_entry_name(entry), 0, 0)] = _single_input(entry)
    kept = [e for e in entries if _entry_name(e) not in gone]
    if len(kept) + len(gone) != len(entries):
        missing = gone - {_entry_name(e) for e in entries}
        raise TransformUnavailable(f"the topology has no layer {sorted(missing)[0]!r}")
    entries[:] = kept
    for entry in kept:
        if "inbound_nodes" in entry:
            entry["inbound_nodes"] = _rewire(entry["inbound_nodes"], replace)
        for key, value in (updates or {}).get(_entry_name(entry), {}).items():
            if value is None:
                entry["config"].pop(key, None)
            else:
                entry["config"][key] = value
    config = new.get("config")
    if isinstance(config, dict) and "output_layers" in config:
        config["output_layers"] = _rewire(config["output_layers"], replace)
    return new


def _single_input(entry: Mapping[str, Any]) -> Any:
    """The one tensor a bypassed layer reads, in its own dialect (triple or keras tensor)."""
    nodes = entry.get("inbound_nodes") or []
    if len(nodes) != 1:
        raise TransformUnavailable(f"layer {_entry_name(entry)!r} is called {len(nodes)} times")
    node = nodes[0]
    if isinstance(node, Mapping):
        args = node.get("args") or []
        found = [a for a in args if isinstance(a, Mapping)]
        if len(found) != 1:
            raise TransformUnavailable(f"layer {_entry_name(entry)!r} has {len(found)} inputs")
        return found[0]
    if len(node) != 1:
        raise TransformUnavailable(f"layer {_entry_name(entry)!r} has {len(node)} inputs")
    return node[0]


def _history(obj: Any) -> Ref | None:
    if isinstance(obj, Mapping) and obj.get("class_name") == "__keras_tensor__":
        layer, node, index = obj["config"]["keras_history"]
        return (str(layer), int(node), int(index))
    if (
        isinstance(obj, list)
        and len(obj) >= 3
        and isinstance(obj[0], str)
        and isinstance(obj[1], int)
        and isinstance(obj[2], int)
    ):
        return (obj[0], obj[1], obj[2])
    return None


def _rewire(obj: Any, replace: Mapping[Ref, Any]) -> Any:
    """Every reference to a bypassed layer's output swapped for that layer's input, keeping
    each reference's dialect (a Keras 2 triple keeps its kwargs, a Keras 3 tensor its shape)."""
    ref = _history(obj)
    if ref is not None and ref in replace:
        return _as_dialect(obj, replace[ref])
    if isinstance(obj, Mapping):
        return {k: _rewire(v, replace) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rewire(v, replace) for v in obj]
    return obj


def _as_dialect(old: Any, source: Any) -> Any:
    src = _history(source)
    assert src is not None
    if isinstance(old, Mapping):
        new = copy.deepcopy(dict(old))
        new["config"]["keras_history"] = list(src)
        return new
    return [*src, *old[3:]]


def with_topology(model_json: Mapping[str, Any], keras_config: Mapping[str, Any]) -> dict:
    """A TF.js model.json with its layers topology replaced (wrapper keys kept)."""
    doc = dict(model_json)
    topo = doc.get("modelTopology")
    if isinstance(topo, Mapping) and "model_config" in topo:
        doc["modelTopology"] = {**topo, "model_config": dict(keras_config)}
    else:
        doc["modelTopology"] = dict(keras_config)
    return doc
