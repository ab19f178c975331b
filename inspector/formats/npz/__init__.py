"""npz: numpy archives, read with `allow_pickle=False` only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inspector.formats.base import FormatSpec, Probe

if TYPE_CHECKING:
    from inspector.core.model import Model

__all__ = ["FORMAT"]


def _sniff(probe: Probe) -> str | None:
    names = None if probe.is_dir else probe.zip_names
    if names is None:
        return None
    if probe.suffix == ".npz" or (names and all(n.endswith(".npy") for n in names)):
        return "npz"
    return None


def _exports_from(model: Model) -> str:
    """An npz export records its plan as the member `__quant_inspector_plan__.npy`, so a
    tensor of that name cannot be written beside it (and must never vanish silently)."""
    from inspector.formats._write_common import PLAN_KEY

    if any(t.name == PLAN_KEY and not t.info.optimizer for t in model):
        return f"tensor '{PLAN_KEY}' has the name the npz export gives its plan record"
    return ""


FORMAT = FormatSpec(
    name="npz",
    label="NumPy .npz",
    readers={"npz": "inspector.formats.npz.reader:read_npz"},
    sniff=_sniff,
    suffixes={".npz": "npz"},
    open_patterns=("*.npz",),
    writer="inspector.formats.npz.writer:write",
    target="inspector.formats.npz.writer:NPZ",
    exports_from=_exports_from,
    export_suffix=".npz",
    menu_rank=50,
)
