"""Quantization schemes of DESIGN §3: names, spec parsing, encode/decode, exact stored sizes.

A spec is `NAME[:key=value[,key=value…]]`. Options: `axis=K` (int8/int4 channel axis),
`group=G` (int4, default 32), `clip=minmax|percentile:P|mse` (affine, int8, int4; see
clipping.py), `sparsity=S` (0 ≤ S < 1: the floor(S·n) smallest |w| are zeroed before
quantizing), `skip=N` (tensors with fewer than N elements are kept as they are),
`round=nearest|hqq|gptq` (affine, int8, int4: how values meet the grid, see core/rounding/;
`gptq` needs the model's layer inputs, which `encode` alone does not have: it rounds to nearest
and the preview applies GPTQ's codes through its target, see core/preview.py), `order=act`
(with `round=gptq`: columns in decreasing input energy, GPTQ's act-order). An option a scheme
does not use is an error, so a typo never passes silently.

Non-finite values: every scheme except the identity (float32 without sparsity) raises
`SchemeError("tensor contains N non-finite values")`; the preview reports and keeps such tensors.
Inputs of any float dtype are quantized from their float32 values; `decode` returns float32.
Sizes are counted from bits (`encoded_nbytes`, `Encoded.nbytes`) and equal `len(to_bytes())`;
the byte layout is in codecs.py.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import codecs
from .chunking import as_float32, finite_minmax
from .clipping import prune
from .errors import SchemeError
from .model import TensorInfo
from .rounding.params import ROUNDINGS, refine_hqq

__all__ = ["SCHEME_NAMES", "Encoded", "Scheme", "SchemeError", "parse_scheme"]

SCHEME_NAMES: tuple[str, ...] = (
    "float32",
    "float16",
    "bfloat16",
    "uint8",
    "uint16",
    *(f"affine{n}" for n in range(2, 17)),
    "int8",
    "int4",
    *(f"kmeans{n}" for n in range(1, 9)),
)
_FIXED_BITS = {"float32": 32, "float16": 16, "bfloat16": 16, "uint8": 8, "uint16": 16}
_FIXED_BITS |= {"int8": 8, "int4": 4}
_OPTIONS = {
    "float": {"sparsity", "skip"},
    "affine": {"clip", "sparsity", "skip", "round", "order"},
    "int8": {"axis", "clip", "sparsity", "skip", "round", "order"},
    "int4": {"axis", "group", "clip", "sparsity", "skip", "round", "order"},
    "kmeans": {"sparsity", "skip"},
}
_ORDERS = ("natural", "act")
_DEFAULT_GROUP = 32


def _bits_of(name: str) -> int:
    if name in _FIXED_BITS:
        return _FIXED_BITS[name]
    return int(re.sub(r"^\D+", "", name))


def _normalize_clip(clip: str) -> str:
    if clip in ("minmax", "mse"):
        return clip
    head, _, value = clip.partition(":")
    if head != "percentile" or not value:
        raise SchemeError(f"clip must be minmax, percentile:P or mse, got {clip!r}")
    try:
        p = float(value)
    except ValueError:
        raise SchemeError(f"clip percentile must be a number, got {value!r}") from None
    if not 50.0 < p <= 100.0:
        raise SchemeError(f"clip percentile must be in (50, 100], got {value}")
    text = repr(p)
    return "percentile:" + (text[:-2] if text.endswith(".0") else text)


@dataclass(frozen=True)
class Scheme:
    """One quantization scheme with its options; construction validates and normalises.

    `bits` is derived from `name` (pass 0 or the right value); `group` defaults to 32 for int4
    and is None otherwise; `axis` None means the layout's channel axis (else the last one).
    """

    name: str
    bits: int = 0
    axis: int | None = None
    group: int | None = None
    clip: str = "minmax"
    sparsity: float = 0.0
    skip: int = 0
    round: str = "nearest"
    order: str = "natural"

    def __post_init__(self) -> None:
        if self.name not in SCHEME_NAMES:
            raise SchemeError(
                f"unknown scheme {self.name!r}; known: float32, float16, bfloat16, uint8, "
                "uint16, affine2…affine16, int8, int4, kmeans1…kmeans8"
            )
        bits = _bits_of(self.name)
        if self.bits not in (0, bits):
            raise SchemeError(f"{self.name} stores {bits}-bit codes, not {self.bits}")
        object.__setattr__(self, "bits", bits)
        if self.name == "int4" and self.group is None:
            object.__setattr__(self, "group", _DEFAULT_GROUP)
        object.__setattr__(self, "clip", _normalize_clip(self.clip))
        object.__setattr__(self, "sparsity", float(self.sparsity))
        self._validate()

    def _validate(self) -> None:
        allowed = _OPTIONS[codecs.family(self.name)]
        used = {
            "axis": self.axis is not None,
            "group": self.name == "int4" and self.group != _DEFAULT_GROUP,
            "clip": self.clip != "minmax",
            "sparsity": self.sparsity != 0.0,
            "skip": self.skip != 0,
            "round": self.round != "nearest",
            "order": self.order != "natural",
        }
        if self.name != "int4" and self.group is not None:
            used["group"] = True
        for option, on in used.items():
            if on and option not in allowed:
                raise SchemeError(f"option {option!r} does not apply to {self.name}")
        if self.group is not None and (not isinstance(self.group, int) or self.group < 1):
            raise SchemeError(f"group must be a positive integer, got {self.group!r}")
        if not 0.0 <= self.sparsity < 1.0:
            raise SchemeError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if not isinstance(self.skip, int) or self.skip < 0:
            raise SchemeError(f"skip must be a non-negative integer, got {self.skip!r}")
        if self.axis is not None and not isinstance(self.axis, int):
            raise SchemeError(f"axis must be an integer, got {self.axis!r}")
        self._validate_rounding()

    def _validate_rounding(self) -> None:
        if self.round not in ROUNDINGS:
            raise SchemeError(f"round must be one of {', '.join(ROUNDINGS)}, got {self.round!r}")
        if self.order not in _ORDERS:
            raise SchemeError(f"order must be natural or act, got {self.order!r}")
        if self.order != "natural" and self.round != "gptq":
            raise SchemeError("order=act applies to round=gptq only")
        if self.round != "nearest" and self.sparsity:
            raise SchemeError(f"round={self.round} with sparsity: pruned zeros would not stay 0")

    @property
    def spec(self) -> str:
        """Canonical spec: `parse_scheme(s.spec) == s`; options at their default are omitted."""
        opts = []
        if self.axis is not None:
            opts.append(f"axis={self.axis}")
        if self.name == "int4" and self.group != _DEFAULT_GROUP:
            opts.append(f"group={self.group}")
        if self.clip != "minmax":
            opts.append(f"clip={self.clip}")
        if self.sparsity:
            opts.append(f"sparsity={self.sparsity!r}")
        if self.skip:
            opts.append(f"skip={self.skip}")
        if self.round != "nearest":
            opts.append(f"round={self.round}")
        if self.order != "natural":
            opts.append(f"order={self.order}")
        return self.name + (":" + ",".join(opts) if opts else "")

    def __str__(self) -> str:
        return self.spec

    @property
    def family(self) -> str:
        """'float', 'affine', 'int8', 'int4' or 'kmeans'."""
        return codecs.family(self.name)

    @property
    def is_identity(self) -> bool:
        """True when encoding changes nothing: float32 without sparsity."""
        return self.name == "float32" and self.sparsity == 0.0

    def applies_to(self, info: TensorInfo) -> bool:
        """False for non-float tensors, empty tensors and tensors below `skip` elements."""
        if not info.is_float or info.size == 0:
            return False
        return not (self.skip and info.size < self.skip)

    def resolve_axis(self, shape: tuple[int, ...], channel_axis: int | None) -> int | None:
        """The channel axis int8/int4 use for `shape` (None: one channel for the whole tensor).

        Option `axis` wins, then the layout's `channel_axis`, then the last axis; 0-d and 1-d
        tensors are always one channel. Other schemes have no channel axis.
        """
        if self.name not in ("int8", "int4") or len(shape) <= 1:
            return None
        ndim = len(shape)
        axis = self.axis if self.axis is not None else channel_axis
        axis = ndim - 1 if axis is None else axis
        if not -ndim <= axis < ndim:
            raise SchemeError(f"axis {axis} is out of range for a {ndim}-d tensor {shape}")
        return axis % ndim

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """`x` as float32, checked finite (unless identity) and pruned to `sparsity`."""
        return self._prepared(x)[0]

    def _prepared(
        self, x: np.ndarray, known: tuple[float, float] | None = None
    ) -> tuple[np.ndarray, tuple[float, float] | None]:
        """`prepare(x)` and its (min, max) when the finiteness check measured it (no pruning);
        `known` is that (min, max) when the caller already checked `x` finite."""
        x = as_float32(x)
        if self.is_identity:
            return x, None
        if known is not None:
            mn, mx = known
        else:
            mn, mx, bad = finite_minmax(x.reshape(-1))
            if bad:
                raise SchemeError(f"tensor contains {bad} non-finite values")
        if self.sparsity:
            return prune(x.reshape(-1), self.sparsity).reshape(x.shape), None
        return x, (mn, mx) if x.size else None

    def encode(
        self,
        x: np.ndarray,
        channel_axis: int | None = None,
        value_range: tuple[float, float] | None = None,
    ) -> Encoded:
        """Quantize `x`; raises SchemeError for non-finite values or a bad axis.
        `value_range`: float32 `x`'s (min, max) when the caller has measured it and found every
        value finite (`chunking.finite_minmax`), which saves that pass here."""
        x, value_range = self._prepared(x, value_range)
        axis = self.resolve_axis(x.shape, channel_axis)
        params, state = codecs.fit(self, x, axis, value_range)
        if self.round == "hqq":
            params, state = refine_hqq(self, x, axis, params, state)
        codes, overflow = codecs.quantize(self, x, params, axis, state)
        return Encoded(self, tuple(x.shape), codes, params, overflow)

    def decode(self, enc: Encoded) -> np.ndarray:
        """float32 values of `enc`, shaped like the original tensor."""
        return codecs.dequantize(self, enc.codes, enc.params).reshape(enc.shape)

    def encoded_nbytes(self, info: TensorInfo) -> int:
        """Exact stored bytes (packed codes + parameters) from the shape alone."""
        return _nbytes(self, info.shape, self.resolve_axis(info.shape, info.channel_axis))


def _nbytes(scheme: Scheme, shape: tuple[int, ...], axis: int | None) -> int:
    n = math.prod(shape)
    return codecs.codes_nbytes(scheme, n) + codecs.params_nbytes(scheme, shape, axis)


@dataclass(frozen=True, eq=False)
class Encoded:
    """Codes (unpacked, shaped like the tensor) and parameters of one encoded tensor.

    `params`: affine `{"min", "scale"}` (float64); int8 `{"scales": float32 (C,), "axis"}`;
    int4 `{"scales": float16 (C, ceil(M/group)), "group", "axis"}` (`axis` None = one
    channel); kmeans `{"palette": float32 (2^N,)}`; floats `{}`. `overflow` counts values
    saturated by the format (float16 beyond ±65504) or cut off by the clip range.
    """

    scheme: Scheme
    shape: tuple[int, ...]
    codes: np.ndarray = field(repr=False)
    params: Mapping[str, Any] = field(repr=False)
    overflow: int = 0

    def to_bytes(self) -> bytes:
        """The stored bytes: packed codes then parameters, little-endian (see codecs.py)."""
        return codecs.codes_bytes(self.scheme, self.codes) + codecs.params_bytes(
            self.scheme, self.params
        )

    def byte_views(self) -> list[np.ndarray | bytes]:
        """Buffers whose concatenation is `to_bytes()`, viewing the codes without a copy when
        they are stored unpacked (floats, int8, 8/16-bit affine on a little-endian host)."""
        fam = self.scheme.family
        whole = fam in ("affine", "kmeans") and self.scheme.bits in (8, 16)
        unpacked = fam in ("float", "int8") or whole
        if unpacked and np.little_endian and self.codes.flags.c_contiguous:
            codes = self.codes.reshape(-1).view(np.uint8)
            return [codes, codecs.params_bytes(self.scheme, self.params)]
        return [self.to_bytes()]

    @property
    def nbytes(self) -> int:
        """`len(self.to_bytes())`, computed from bits without building the bytes."""
        return _nbytes(self.scheme, self.shape, self.params.get("axis"))

    @property
    def scale(self) -> float | None:
        """Quantization step for `rmse_over_scale`: the affine scale, the RMS of per-channel or
        per-group scales, None for floats and palettes."""
        if "scale" in self.params:
            return float(self.params["scale"])
        if "scales" in self.params:
            s = np.asarray(self.params["scales"], dtype=np.float64)
            return float(np.sqrt(np.mean(s * s))) if s.size else None
        return None


def parse_scheme(spec: str) -> Scheme:
    """Parse `NAME[:key=value[,key=value…]]` into a Scheme; SchemeError says what is wrong."""
    if not isinstance(spec, str) or not spec.strip():
        raise SchemeError(f"empty scheme spec {spec!r}")
    name, _, rest = spec.strip().partition(":")
    kwargs: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))) if rest else ():
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not value:
            raise SchemeError(f"{spec!r}: option {item!r} must be key=value")
        if key in kwargs:
            raise SchemeError(f"{spec!r}: option {key!r} given twice")
        kwargs[key] = _option_value(spec, key, value)
    try:
        return Scheme(name.strip(), **kwargs)
    except SchemeError as exc:
        raise SchemeError(f"{spec!r}: {exc}") from None


def _option_value(spec: str, key: str, value: str) -> Any:
    try:
        if key in ("axis", "group", "skip"):
            return int(value)
        if key == "sparsity":
            return float(value)
    except ValueError:
        kind = "a number" if key == "sparsity" else "an integer"
        raise SchemeError(f"{spec!r}: {key} must be {kind}, got {value!r}") from None
    if key in ("clip", "round", "order"):
        return value
    raise SchemeError(
        f"{spec!r}: unknown option {key!r} (axis, group, clip, sparsity, skip, round, order)"
    )
