"""Data-aware rounding (`round=gptq`): GPTQ on the model's layer inputs.

`GptqRounding(model, inputs)` is attached to an export target (`target.with_rounding(...)`);
`gptq.py` is the algorithm on plain arrays, `linear.py` how a weight tensor is a linear map,
`capture.py` the layers' inputs on the data.
"""

from inspector.engine.rounding.session import GptqRounding

__all__ = ["GptqRounding"]
