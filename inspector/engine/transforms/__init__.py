"""Model transforms that change weights (and, where needed, the layer topology) before a plan
quantizes them: batch-norm folding, cross-layer equalization with high-bias absorption, and
bias correction (Nagel et al. 2019). Each yields an ordinary `Model`, so preview, evaluation,
sensitivity and every writer work on the transformed model unchanged.
"""

from inspector.engine.transforms.pipeline import TransformResult, transform_model

__all__ = ["TransformResult", "transform_model"]
