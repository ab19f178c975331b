"""ONNX: initializers, `Constant` nodes and `DequantizeLinear` weights; QDQ export."""
