"""The one error the engine adds: a model whose forward pass this tool cannot run."""

from __future__ import annotations

from inspector.core.errors import InspectorError

__all__ = ["EvaluationUnavailable", "TransformUnavailable"]


class EvaluationUnavailable(InspectorError):
    """Output-level metrics cannot be computed for this model; weight-level metrics still can.

    The message always starts with "evaluation unavailable:" and names the layer and its class
    when one layer is the reason.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"evaluation unavailable: {reason}")


class TransformUnavailable(InspectorError):
    """A model transform (BN folding, equalization, bias correction) cannot run on this model:
    it needs a Keras / TF.js layer graph, or data it was not given."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"model transforms unavailable: {reason}")
