"""Forward passes of the models the readers open, for output-level error.

`Executor` runs Keras / TF.js Layers models (Keras 2 or Keras 3 topology JSON plus weights)
in vectorised float32 numpy; anything it cannot run raises `EvaluationUnavailable`, and the
weight-level metrics keep working.
"""

from inspector.engine.errors import EvaluationUnavailable
from inspector.engine.executor import Executor

__all__ = ["EvaluationUnavailable", "Executor"]
