"""Export targets by format name: how each format stores each scheme (see core/target.py).

Formats whose writer bakes schemes (TF.js, Keras, ONNX) register their own `Target` here; the
rest store every scheme natively (codes plus parameters).
"""

from __future__ import annotations

from inspector.core.errors import InspectorError
from inspector.core.target import NATIVE, Target

__all__ = ["TARGET_NAMES", "get_target", "register_target"]

_TARGETS: dict[str, Target] = {}
_ALIASES = {
    "tfjs-weights": "tfjs",
    "keras-h5": "keras",
    "native": "native",
}
TARGET_NAMES = ("tfjs", "keras", "safetensors", "onnx", "npz")


def register_target(target: Target) -> None:
    """Called by a format's writer module when it is imported."""
    _TARGETS[target.name] = target


def get_target(name: str) -> Target:
    """The target for a format name (an input format maps to the format it exports as)."""
    key = _ALIASES.get(name, name)
    if key == "native":
        return NATIVE
    if key not in TARGET_NAMES:
        raise InspectorError(
            f"unknown export format {name!r} (choose from {', '.join(TARGET_NAMES)})"
        )
    _load_writers()
    return _TARGETS.get(key, Target(key))


def _load_writers() -> None:
    import importlib

    for module in (
        "tfjs.writer",
        "keras.writer",
        "safetensors.writer",
        "npz.writer",
        "onnx.writer",
    ):
        full = f"inspector.formats.{module}"
        try:
            importlib.import_module(full)
        except ModuleNotFoundError as exc:
            if exc.name != full:
                raise
