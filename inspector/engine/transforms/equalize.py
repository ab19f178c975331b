"""Cross-layer equalization and high-bias absorption (Nagel et al. 2019, "Data-Free
Quantization Through Weight Equalization and Bias Correction", §4).

For a pair L → f → M with f positively homogeneous, dividing L's output channel c by s_c and
multiplying M's input channel c by s_c leaves the model's function unchanged. With r1 the
per-channel max|w| of L's outputs and r2 that of M's inputs, s = √(r1/r2) gives both the range
√(r1·r2): the channel's share of each tensor's one per-tensor scale is then balanced. A chain
(conv → depthwise → conv …) is swept pair by pair until no scale moves by more than 1e-6
(the paper's iteration; AIMET's closed form for conv → depthwise → conv is its fixed point),
on float64 copies, so the float32 weights are rounded once.

ReLU6 is not homogeneous (its cap sits at 6 in L's units). As the paper and AIMET do for
MobileNetV2, each cap between two equalized layers is lifted (ReLU6 → ReLU) — that changes the
float model wherever a pre-activation exceeded 6; `transforms.pipeline` measures by how much —
or, with `relu6="skip"`, pairs through a cap are left alone.

High-bias absorption (§4.3), only where BN statistics N(β, γ²) of L's pre-activation survive
folding: c = max(0, β − 3|γ|) through a ReLU (c = β with no activation) moves from L's bias to
M's bias as M's weights times c. Exact when the activation's input stays above c (the 3σ rule)
and M sees c everywhere: not through zero padding or into a "same"/"causal"-padded conv wider
than 1×1, which this skips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from inspector.engine.transforms.channels import Weighted
from inspector.engine.transforms.graph_pairs import LayerIndex, Link, chains, find_links
from inspector.engine.transforms.workspace import Stats, Workspace

__all__ = ["RELU6_MODES", "EqualizeRecord", "equalize"]

RELU6_MODES = ("lift", "skip")
_TOLERANCE = 1e-6
_MAX_SWEEPS = 1000
_SHIFT_EXACT = frozenset({"identity", "relu", "relu6", "max", "avg", "flatten"})


@dataclass(frozen=True)
class EqualizeRecord:
    """One equalized chain: its layers in order, the sweeps it took, the total scale of each
    link (per channel, float64: L's channel c was divided by it), the ReLU6 caps lifted and the
    links whose high bias was absorbed."""

    layers: tuple[str, ...]
    sweeps: int
    scales: tuple[np.ndarray, ...]
    lifted: tuple[str, ...]
    absorbed: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "layers": list(self.layers),
            "sweeps": self.sweeps,
            "scale_min": [float(s.min()) for s in self.scales],
            "scale_max": [float(s.max()) for s in self.scales],
            "relu6_lifted": list(self.lifted),
            "high_bias_absorbed": list(self.absorbed),
        }


def equalize(ws: Workspace, relu6: str = "lift", absorb: bool = True) -> list[EqualizeRecord]:
    """Equalize every chain of the workspace's model (fold batch norms first: a BN between
    two layers ends the pair)."""
    if relu6 not in RELU6_MODES:
        raise ValueError(f"relu6 must be one of {RELU6_MODES}, not {relu6!r}")
    index = LayerIndex(ws.config, [ws.infos[n] for n in ws])
    links = find_links(index, allow_capped=relu6 == "lift")
    records = []
    for chain in chains(links):
        sweeps, scales = _scale_chain(ws, chain)
        lifted = _lift_caps(ws, index, chain)
        absorbed = tuple(link.first.layer for link in chain if absorb and _absorb(ws, link))
        layers = (chain[0].first.layer, *(link.second.layer for link in chain))
        records.append(EqualizeRecord(layers, sweeps, tuple(scales), lifted, absorbed))
    return records


def _scale_chain(ws: Workspace, chain: list[Link]) -> tuple[int, list[np.ndarray]]:
    names = {n for link in chain for w in (link.first, link.second) for n in _tensors(w, ws)}
    work = {n: np.asarray(ws[n], dtype=np.float64) for n in names}
    totals = [np.ones(link.channels) for link in chain]
    sweeps = 0
    while sweeps < _MAX_SWEEPS:
        sweeps += 1
        moved = 0.0
        for i, link in enumerate(chain):
            s = _pair_scale(link.first.out_absmax(work), link.second.in_absmax(work, link.channels))
            link.first.scale_out(work, 1.0 / s)
            link.second.scale_in(work, s, link.channels)
            totals[i] *= s
            moved = max(moved, float(np.max(np.abs(np.log(s)), initial=0.0)))
        if moved < _TOLERANCE:
            break
    for name, value in work.items():
        ws[name] = value
    for link, total in zip(chain, totals, strict=True):
        stats = ws.stats.get(link.first.layer)
        if stats is not None:
            ws.stats[link.first.layer] = Stats(stats.mean / total, stats.std / total)
    return sweeps, totals


def _tensors(w: Weighted, ws: Workspace) -> list[str]:
    return [n for n in dict.fromkeys((w.out_kernel, w.in_kernel, w.bias)) if n and n in ws]


def _pair_scale(r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """s = √(r1/r2) per channel; 1 where either side is all zero (nothing to balance)."""
    ok = (r1 > 0) & (r2 > 0) & np.isfinite(r1) & np.isfinite(r2)
    return np.where(ok, np.sqrt(np.where(ok, r1, 1.0) / np.where(ok, r2, 1.0)), 1.0)


def _lift_caps(ws: Workspace, index: LayerIndex, chain: list[Link]) -> tuple[str, ...]:
    lifted = []
    for link in chain:
        for layer in link.capped:
            spec = index.spec(layer)
            if spec.class_name == "ReLU":
                ws.update_layer(layer, max_value=None, maxValue=None)
            else:
                ws.update_layer(layer, activation="relu")
            lifted.append(layer)
    return tuple(lifted)


def _absorb(ws: Workspace, link: Link) -> bool:
    """High-bias absorption for one link when it is exact (see the module docstring)."""
    stats = ws.stats.get(link.first.layer)
    if stats is None or not set(link.kinds) <= _SHIFT_EXACT or not _sees_constant(ws, link):
        return False
    if link.first.bias not in ws:
        return False
    through_relu = any(k in ("relu", "relu6") for k in link.kinds)
    c = np.maximum(0.0, stats.mean - 3.0 * stats.std) if through_relu else stats.mean.copy()
    if not np.any(c):
        return False
    ws.ensure_bias(link.second)
    link.first.scale_out(ws, np.ones_like(c), -c)
    link.second.scale_out(ws, np.ones(link.second.out_channels), link.second.in_to_out(ws, c))
    ws.stats[link.first.layer] = Stats(stats.mean - c, stats.std)
    return True


def _sees_constant(ws: Workspace, link: Link) -> bool:
    """M adds the same W·c at every output position: no zero padding enters its windows."""
    second = link.second
    if second.kind == "dense":
        return True
    from inspector.engine.layers import ints

    config = _config(ws, second.layer)
    kernel = ws.infos[second.in_kernel].shape[:-2]
    padding = str(config.get("padding", "valid")).lower()
    dilation = ints(config.get("dilation_rate", 1), len(kernel))
    return padding == "valid" or all(
        (k - 1) * d == 0 for k, d in zip(kernel, dilation, strict=True)
    )


def _config(ws: Workspace, layer: str) -> dict[str, Any]:
    from inspector.engine.transforms.topology import layer_entries

    for entry in layer_entries(ws.config):
        if (entry.get("name") or entry.get("config", {}).get("name")) == layer:
            return entry.get("config", {})
    return {}
