"""Quantization schemes (DESIGN §3): scheme families behind one registry.

`parse_scheme("int4:group=16")` gives a `Scheme`; its `family` does the work. The built-in
families are the modules listed in `_BUILTIN`, imported here in order so their names register;
a new family is one module plus one entry in that list (docs/extending.md).
"""

from importlib import import_module

from inspector.core.errors import SchemeError
from inspector.core.schemes.base import (
    COMMON_OPTIONS,
    CurveFit,
    Family,
    Option,
    StoredArray,
    families,
    family_of,
    register_family,
    scheme_names,
)
from inspector.core.schemes.scheme import Encoded, Scheme, parse_scheme

__all__ = [
    "COMMON_OPTIONS",
    "CurveFit",
    "Encoded",
    "Family",
    "Option",
    "Scheme",
    "SchemeError",
    "StoredArray",
    "families",
    "family_of",
    "parse_scheme",
    "register_family",
    "scheme_names",
]

_BUILTIN = ("floats", "affine", "symmetric", "kmeans")
for _module in _BUILTIN:
    import_module(f"inspector.core.schemes.{_module}")
