"""Batch-norm folding: each BatchNormalization merged into the weighted layer before it.

At inference a BatchNormalization is y = γ·(x − μ)/√(σ² + ε) + β per channel, an affine map, so
after a conv/dense layer L with no activation of its own it folds into L exactly:
kernel·a and bias·a + (β − μ·a) per output channel, a = γ/√(σ² + ε) (TF-Lite does this before it
quantizes). The BN leaves the topology and L gains a bias if it had none. Folding is what makes
some kernels fragile under one per-tensor scale: a channel whose σ² ≈ 0 (an input that is
almost always zero after a ReLU) is multiplied by γ/√ε, up to ~316·γ for ε = 1e-5, so
`FoldRecord` keeps each kernel's per-channel range before and after.

Folded only when the BN reads L's output and nothing else does, L is called once, L's own
activation is linear and the BN normalizes the channel (last) axis. The BN's β and |γ| are kept
as L's pre-activation statistics (`Workspace.stats`) for high-bias absorption and data-free
bias correction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from inspector.core.errors import InspectorError
from inspector.engine.graph import TensorRef
from inspector.engine.transforms.channels import Weighted
from inspector.engine.transforms.graph_pairs import LayerIndex, activation_kind, bound_names
from inspector.engine.transforms.workspace import Stats, Workspace

__all__ = ["FoldRecord", "fold_batch_norms", "foldable"]


@dataclass(frozen=True)
class FoldRecord:
    """One fold: BN `bn` into `layer` (kernel tensor `kernel`); per output channel (min, max)
    of the kernel before and after (float64 arrays), and the bias the layer gained if any."""

    bn: str
    layer: str
    kernel: str
    before: tuple[np.ndarray, np.ndarray]
    after: tuple[np.ndarray, np.ndarray]
    added_bias: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_norm": self.bn,
            "layer": self.layer,
            "kernel": self.kernel,
            "added_bias": self.added_bias,
            "before": _range_json(self.before),
            "after": _range_json(self.after),
        }


def _range_json(rng: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """Per-channel max|w|, the tensor's max|w| and the spread (largest / median channel)."""
    absmax = np.maximum(np.abs(rng[0]), np.abs(rng[1]))
    median = float(np.median(absmax)) if absmax.size else 0.0
    return {
        "min": float(rng[0].min()),
        "max": float(rng[1].max()),
        "channel_absmax": [float(v) for v in absmax],
        "spread": float(absmax.max() / median) if median > 0 else None,
    }


def _bn_axis(config: Mapping[str, Any]) -> int | None:
    axis = config.get("axis", -1)
    if isinstance(axis, list):
        if len(axis) != 1:
            return None
        axis = axis[0]
    return int(axis)


def foldable(index: LayerIndex, rank_of: Callable[[str], int | None]) -> list[tuple[str, Weighted]]:
    """(BN layer, the weighted layer it folds into) for every BN that can be folded;
    `rank_of(layer)` gives a layer's output rank when the BN's axis is written as a positive
    index (tf_keras writes `[3]` for images, `[1]` after a Dense)."""
    found = []
    for node in index.graph.nodes:
        spec = index.spec(node.layer)
        if spec.class_name != "BatchNormalization" or index.calls.get(node.layer) != 1:
            continue
        if len(node.inputs) != 1 or node.inputs[0] != TensorRef(node.inputs[0].layer):
            continue
        first = index.weighted.get(node.inputs[0].layer)
        if first is None or index.sole_consumer(first.layer) != node.layer:
            continue
        if activation_kind(index.spec(first.layer).config.get("activation")) != "identity":
            continue
        axis = _bn_axis(spec.config)
        if axis == -1 or (axis is not None and axis == (rank_of(first.layer) or 0) - 1):
            found.append((node.layer, first))
    return found


def _ranks(ws: Workspace) -> Callable[[str], int | None]:
    """Output rank per layer, from one forward pass of a single zero sample (made on first
    use; None when the model cannot run)."""
    ranks: dict[str, int] = {}

    def rank_of(layer: str) -> int | None:
        if not ranks:
            from inspector.engine.executor import Executor

            try:
                ex = Executor.from_model(ws.base)
                zeros = [
                    np.zeros((1, *(d or 1 for d in s[1:])), np.float32) for s in ex.input_shapes
                ]
                ranks.update({k: v.ndim for k, v in ex.trace(zeros).items()})
            except InspectorError:
                ranks[""] = 0
        return ranks.get(layer)

    return rank_of


def fold_batch_norms(ws: Workspace) -> list[FoldRecord]:
    """Fold every foldable BN in the workspace's model; returns what each fold did."""
    index = LayerIndex(ws.config, list(ws.infos[n] for n in ws))
    records = []
    for bn, first in foldable(index, _ranks(ws)):
        records.append(_fold(ws, index, bn, first))
    return records


def _fold(ws: Workspace, index: LayerIndex, bn: str, first: Weighted) -> FoldRecord:
    spec = index.spec(bn)
    names = bound_names(spec, index.tensors[bn])
    eps = float(spec.config.get("epsilon", 1e-3))
    var = np.asarray(ws[names["moving_variance"]], dtype=np.float64)
    mean = np.asarray(ws[names["moving_mean"]], dtype=np.float64)
    gamma = np.asarray(ws[names["gamma"]], dtype=np.float64) if "gamma" in names else 1.0
    beta = np.asarray(ws[names["beta"]], dtype=np.float64) if "beta" in names else 0.0
    factor = np.broadcast_to(gamma / np.sqrt(var + eps), var.shape)
    shift = np.broadcast_to(beta - mean * factor, var.shape)
    before = first.out_range(ws)
    added = first.bias if ws.ensure_bias(first) else None
    first.scale_out(ws, factor, shift)
    ws.stats[first.layer] = Stats(
        np.broadcast_to(np.asarray(beta, np.float64), var.shape).copy(),
        np.broadcast_to(np.abs(np.asarray(gamma, np.float64)), var.shape).copy(),
    )
    ws.bypass(bn, list(names.values()))
    return FoldRecord(bn, first.layer, first.out_kernel, before, first.out_range(ws), added)
