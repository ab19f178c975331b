"""How values are rounded onto a scheme's grid (the `round=` scheme option).

`hqq` optimises the grid's parameters without data (Badri & Shaji 2023); the data-aware GPTQ
lives in `inspector.engine.rounding` because it needs the model's layer inputs.
"""

from inspector.core.rounding.hqq import HqqSettings, hqq_affine, hqq_symmetric

__all__ = ["HqqSettings", "hqq_affine", "hqq_symmetric"]
