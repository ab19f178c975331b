"""npz: numpy archives, read with `allow_pickle=False` only."""

from __future__ import annotations

from inspector.formats.base import FormatSpec, Probe

__all__ = ["FORMAT"]


def _sniff(probe: Probe) -> str | None:
    names = None if probe.is_dir else probe.zip_names
    if names is None:
        return None
    if probe.suffix == ".npz" or (names and all(n.endswith(".npy") for n in names)):
        return "npz"
    return None


FORMAT = FormatSpec(
    name="npz",
    label="NumPy .npz",
    readers={"npz": "inspector.formats.npz.reader:read_npz"},
    sniff=_sniff,
    suffixes={".npz": "npz"},
    open_patterns=("*.npz",),
    writer="inspector.formats.npz.writer:write",
    target="inspector.formats.npz.writer:NPZ",
    export_suffix=".npz",
    menu_rank=50,
)
