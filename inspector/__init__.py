"""Quantization Inspector: see what quantization does to every tensor, choose, export."""

__version__ = "0.1.0"
__all__ = ["__version__"]
