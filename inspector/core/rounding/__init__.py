"""How values are rounded onto a scheme's grid (the `round=` scheme option).

`hqq` optimises the grid's parameters without data (Badri & Shaji 2023); the data-aware GPTQ
lives in `inspector.engine.rounding` because it needs the model's layer inputs. The families
that take the option (affine, symmetric) declare `options.OPTIONS` and call `hqq` in their fit.
"""
