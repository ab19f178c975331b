"""Per-tensor and per-layer metrics as Google Model Explorer "node data" (its documented
JSON: `{graph_id: {"results": {node_key: {"value": v}}, "gradient": [...], "thresholds":
[...]}}`), so a user can colour their graph in Model Explorer with our SQNR, error,
size or sensitivity.

Model Explorer matches a result's key against a node's id or one of its output tensor names.
Weights appear there as constant nodes named after the tensor (TF-Lite, ONNX initializers) or
inside a layer node (Keras, TF.js layers), so `per="both"` writes a result under each tensor
name and under each layer name; keys that match nothing are ignored by the viewer.
JSON has no infinity: exact tensors (SQNR ∞) and tensors the plan keeps are left out.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["METRICS", "Metric", "node_data"]

Per = Literal["tensor", "layer", "both"]


@dataclass(frozen=True)
class Metric:
    """A metric Model Explorer can colour by: its unit and which direction is good."""

    key: str
    label: str
    higher_is_better: bool


METRICS: Mapping[str, Metric] = {
    m.key: m
    for m in (
        Metric("sqnr_db", "SQNR (dB)", True),
        Metric("rmse_over_scale", "RMSE / quantization step", False),
        Metric("bits_per_weight", "stored bits per weight", False),
        Metric("quantized_bytes", "stored bytes", False),
        Metric("collapsed_channels", "channels keeping ≤ 2 levels", False),
        Metric("sensitivity", "output damage when only this is quantized", False),
    )
}

_BAD, _MID, _GOOD = "#d73027", "#fee08b", "#1a9850"


def _tensor_value(tp: Any, metric: str, sensitivity: Mapping[str, float]) -> float | None:
    if metric == "sensitivity":
        return sensitivity.get(tp.name)
    if tp.skipped is not None:
        return None
    value = getattr(tp, metric)
    return None if value is None else float(value)


def _layer_value(tps: Sequence[Any], metric: str, sensitivity: Mapping[str, float]) -> float | None:
    quantized = [t for t in tps if t.skipped is None]
    if metric == "sensitivity":
        known = [sensitivity[t.name] for t in tps if t.name in sensitivity]
        return max(known) if known else None
    if not quantized:
        return None
    if metric == "sqnr_db":
        from inspector.core.totals import summarize  # the schemes: not for `--help`/`info`

        return float(summarize(quantized)["sqnr_db"])
    if metric == "quantized_bytes":
        return float(sum(t.quantized_bytes for t in quantized))
    if metric == "bits_per_weight":
        params = sum(math.prod(t.shape) for t in quantized)
        return 8.0 * sum(t.quantized_bytes for t in quantized) / params if params else None
    if metric == "collapsed_channels":
        return float(sum(t.collapsed_channels for t in quantized))
    values = [float(v) for t in quantized if (v := getattr(t, metric)) is not None]
    return max(values) if values else None


def node_data(
    tensors: Sequence[Any],
    metric: str,
    graph_id: str,
    per: Per = "both",
    sensitivity: Mapping[str, float] | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """Model Explorer node data for one metric of a preview's tensors (`TensorPreview`s).

    `sensitivity` maps tensor names to the damage their quantization alone does (larger is
    worse), needed for the "sensitivity" metric. The `gradient` runs from the worst value
    (red) to the best (green); with a `threshold` (e.g. 30 dB) the documented `thresholds`
    list colours the two sides of it instead (the viewer prefers a gradient when both are
    given, so only one is written).
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r} (choose from {', '.join(METRICS)})")
    sens = dict(sensitivity or {})
    weights = [t for t in tensors if not t.optimizer]
    results: dict[str, dict[str, float]] = {}
    if per in ("tensor", "both"):
        for tp in weights:
            value = _tensor_value(tp, metric, sens)
            if value is not None and math.isfinite(value):
                results[tp.name] = {"value": value}
    if per in ("layer", "both"):
        layers: dict[str, list[Any]] = defaultdict(list)
        for tp in weights:
            if tp.layer and tp.layer != tp.name:
                layers[tp.layer].append(tp)
        for layer, tps in layers.items():
            value = _layer_value(tps, metric, sens)
            if value is not None and math.isfinite(value) and layer not in results:
                results[layer] = {"value": value}
    good_high = METRICS[metric].higher_is_better
    low, high = (_BAD, _GOOD) if good_high else (_GOOD, _BAD)
    graph: dict[str, Any] = {"results": results}
    if threshold is None:
        graph["gradient"] = [
            {"stop": 0, "bgColor": low},
            {"stop": 0.5, "bgColor": _MID},
            {"stop": 1, "bgColor": high},
        ]
    else:
        # Each item colours the values up to its `value` (and above the previous item's).
        top = max([threshold, *(r["value"] for r in results.values())])
        graph["thresholds"] = [
            {"value": threshold, "bgColor": low},
            {"value": top, "bgColor": high},
        ]
    return {graph_id: graph}
