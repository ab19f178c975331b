"""Which runtime runs a model of each input kind: the engine's one table of formats.

A format whose files a foreign runtime executes (ONNX Runtime, LiteRT) registers its runner
factory here as `"module:attribute"`, imported only when such a model is run; every other
input kind runs in the numpy layer executor (Keras / TF.js layer graphs), which says itself
when a model has no layer graph. Adding a runtime is one module plus one line in `_BUILTIN`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inspector.core.model import Model

__all__ = ["make_executor", "register_runner", "runner_kinds"]

_BUILTIN: dict[str, str] = {
    "onnx": "inspector.engine.onnx_runner:OnnxExecutor.from_model",
    "tflite": "inspector.engine.tflite_runner:TfliteExecutor.from_model",
}
_LAYER_EXECUTOR = "inspector.engine.executor:Executor.from_model"
_RUNNERS: dict[str, str] = dict(_BUILTIN)


def register_runner(kind: str, factory: str) -> None:
    """Run models whose `Model.format` is `kind` with `factory` ("module:attr.path", called
    with the model, returning a `Runner`)."""
    _RUNNERS[kind] = factory


def runner_kinds() -> tuple[str, ...]:
    """Input kinds with a runtime of their own (all others use the layer executor)."""
    return tuple(_RUNNERS)


def _load(ref: str) -> Callable[[Model], Any]:
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


def make_executor(model: Model) -> Any:
    """A `Runner` for `model`: its format's registered runtime, else the layer executor.

    Raises `EvaluationUnavailable` (with the layer and class when one layer is the reason)."""
    return _load(_RUNNERS.get(model.format, _LAYER_EXECUTOR))(model)
