"""Keras: legacy HDF5 `.h5` (full model or weights only), Keras 3 `.keras` zips, `.weights.h5`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inspector.formats.base import FormatSpec, Probe

if TYPE_CHECKING:
    from inspector.core.model import Model

__all__ = ["FORMAT"]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")


def _sniff(probe: Probe) -> str | None:
    if probe.is_dir:
        return None
    if probe.head[:8] == _HDF5_MAGIC:
        return "keras-h5"
    # HDF5 user blocks put the signature at 512, 1024, 2048 or 4096
    if any(probe.read_at(offset, 8) == _HDF5_MAGIC for offset in (512, 1024, 2048, 4096)):
        return "keras-h5"
    names = probe.zip_names
    if names is None:
        return None
    if "config.json" in names and any(n.endswith(".weights.h5") for n in names):
        return "keras"
    return "keras" if probe.suffix == ".keras" else None


def _exports_from(model: Model) -> str:
    if model.format in ("keras-h5", "keras"):
        return ""
    return "Keras export needs a Keras .h5 or .keras input (the topology comes from it)"


def _suffix(model: Model) -> str:
    suffix = model.path.suffix.lower()
    return suffix if suffix in _KERAS_SUFFIXES else ".h5"


FORMAT = FormatSpec(
    name="keras",
    label="Keras (.h5, .keras)",
    readers={
        "keras-h5": "inspector.formats.keras.h5_reader:read_keras_h5",
        "keras": "inspector.formats.keras.zip_reader:read_keras_zip",
    },
    sniff=_sniff,
    suffixes={".h5": "keras-h5", ".hdf5": "keras-h5", ".keras": "keras"},
    open_patterns=("*.h5", "*.hdf5", "*.keras"),
    writer="inspector.formats.keras.writer:write",
    target="inspector.formats.keras.writer:KERAS",
    exports_from=_exports_from,
    export_suffix=_suffix,
    menu_rank=20,
)
