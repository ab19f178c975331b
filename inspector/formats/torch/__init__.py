"""PyTorch checkpoints (`torch.save`'s zip format), read without torch and without unpickling
anything but an explicit allowlist (`reader.read_torch`; see `reader.py`, `unpickler.py`).
Read-only: a checkpoint exports as safetensors by default."""

from __future__ import annotations

from inspector.formats.base import FormatSpec, Probe

__all__ = ["FORMAT"]

_PICKLE_HEADS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def _sniff(probe: Probe) -> str | None:
    if probe.is_dir:
        return None
    names = probe.zip_names
    if names is not None:
        return (
            "torch" if any(n.endswith("/data.pkl") and n.count("/") == 1 for n in names) else None
        )
    # A legacy torch.save file or a bare pickle: the reader refuses it with the reason.
    return "torch" if probe.head[:2] in _PICKLE_HEADS else None


FORMAT = FormatSpec(
    name="torch",
    label="PyTorch checkpoint (.bin/.pt/.pth)",
    readers={"torch": "inspector.formats.torch.reader:read_torch"},
    sniff=_sniff,
    suffixes={".pt": "torch", ".pth": "torch"},
    open_patterns=("*.bin", "*.pt", "*.pth"),
    default_export="safetensors",
    menu_rank=90,
)
