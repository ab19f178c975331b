"""A scheme value (`Scheme`), its encoding (`Encoded`) and the spec parser (DESIGN §3).

A spec is `NAME[:key=value[,key=value…]]`. Which options a scheme takes, their ranges and
defaults are declared by its family (`base.Family.options` plus `COMMON_OPTIONS`: `sparsity`,
the floor(S·n) smallest |w| zeroed before quantizing, and `skip`, tensors with fewer than N
elements kept as they are). An option a scheme does not take is an error, so a typo never
passes silently; an option at its default is omitted from the canonical spec.

Non-finite values: every scheme except the identity (float32 without sparsity) raises
`SchemeError("tensor contains N non-finite values")`; the preview reports and keeps such tensors.
Inputs of any float dtype are quantized from their float32 values; `decode` returns float32.
Sizes are counted from bits (`encoded_nbytes`, `Encoded.nbytes`) and equal `len(to_bytes())`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inspector.core.chunking import as_float32, finite_minmax
from inspector.core.clipping import prune
from inspector.core.errors import SchemeError
from inspector.core.model import TensorInfo
from inspector.core.schemes.base import COMMON_OPTIONS, Family, Option, StoredArray, family_of

__all__ = ["Encoded", "Scheme", "parse_scheme"]

_FIELDS = ("axis", "group", "clip", "sparsity", "skip")
_UNSET: dict[str, Any] = {"axis": None, "group": None, "clip": "minmax", "sparsity": 0.0, "skip": 0}
"""Values of the named fields that mean "not given" (a scheme not taking the option needs it)."""


@dataclass(frozen=True)
class Scheme:
    """One quantization scheme with its options; construction validates and normalises.

    `bits` is derived from `name` (pass 0 or the right value). Options with a field of their
    own are `axis` (None: the layout's channel axis), `group`, `clip`, `sparsity`, `skip`; any
    other option a family declares lives in `extra` as (key, value) pairs (`option(key)`).
    """

    name: str
    bits: int = 0
    axis: int | None = None
    group: int | None = None
    clip: str = "minmax"
    sparsity: float = 0.0
    skip: int = 0
    extra: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        family = family_of(self.name)
        bits = family.bits(self.name)
        if self.bits not in (0, bits):
            raise SchemeError(f"{self.name} stores {bits}-bit codes, not {self.bits}")
        object.__setattr__(self, "bits", bits)
        declared = {o.key: o for o in (*family.options(self.name), *COMMON_OPTIONS)}
        for key in _FIELDS:
            object.__setattr__(self, key, _checked(self.name, declared, key, getattr(self, key)))
        extra = dict(self.extra)
        unknown = set(extra) - set(declared)
        if unknown:
            key = sorted(unknown)[0]
            raise SchemeError(f"option {key!r} does not apply to {self.name}")
        ordered = tuple(
            (o.key, o.check(extra[o.key]))
            for o in declared.values()
            if o.key in extra and o.key not in _FIELDS and extra[o.key] != o.default
        )
        object.__setattr__(self, "extra", ordered)
        family.validate(self)

    @classmethod
    def build(cls, name: str, options: Mapping[str, Any]) -> Scheme:
        """The scheme `name` with option values by key (None: the option's default)."""
        fields = {k: v for k, v in options.items() if k in _FIELDS}
        extra = tuple((k, v) for k, v in options.items() if k not in _FIELDS and v is not None)
        return cls(name, extra=extra, **fields)

    @property
    def family(self) -> Family:
        """The family that encodes, decodes and lays out this scheme."""
        return family_of(self.name)

    def option(self, key: str) -> Any:
        """The value of option `key` (its default when not given)."""
        if key in _FIELDS:
            return getattr(self, key)
        for k, v in self.extra:
            if k == key:
                return v
        for o in self.family.options(self.name):
            if o.key == key:
                return o.default
        raise SchemeError(f"option {key!r} does not apply to {self.name}")

    @property
    def spec(self) -> str:
        """Canonical spec: `parse_scheme(s.spec) == s`; options at their default are omitted."""
        opts = []
        for o in (*self.family.options(self.name), *COMMON_OPTIONS):
            value = self.option(o.key)
            if value is not None and value != o.default:
                opts.append(f"{o.key}={o.text(value)}")
        return self.name + (":" + ",".join(opts) if opts else "")

    def __str__(self) -> str:
        return self.spec

    @property
    def is_identity(self) -> bool:
        """True when encoding changes nothing: float32 without sparsity."""
        return self.name == "float32" and self.sparsity == 0.0

    @property
    def stores_values(self) -> bool:
        """True when the stored codes are the values themselves (a plain float format)."""
        return self.exact_dtype == self.name

    @property
    def exact_dtype(self) -> str:
        """Narrowest float dtype holding every decoded value exactly ("float16" for float16)."""
        return self.family.exact_dtype(self.name)

    def applies_to(self, info: TensorInfo) -> bool:
        """False for non-float tensors, empty tensors and tensors below `skip` elements."""
        if not info.is_float or info.size == 0:
            return False
        return not (self.skip and info.size < self.skip)

    def resolve_axis(self, shape: tuple[int, ...], channel_axis: int | None) -> int | None:
        """The channel axis a per-channel family uses for `shape` (None: the whole tensor is
        one channel). Option `axis` wins, then the layout's `channel_axis`, then the last axis;
        0-d and 1-d tensors are always one channel. Other families have no channel axis."""
        if not self.family.per_channel or len(shape) <= 1:
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
        tensor: str = "",
    ) -> Encoded:
        """Quantize `x`; raises SchemeError for non-finite values or a bad axis.
        `value_range`: float32 `x`'s (min, max) when the caller has measured it and found every
        value finite (`chunking.finite_minmax`), which saves that pass here. `tensor`: the
        tensor's name, for families using data keyed by tensor (importance matrices)."""
        x, value_range = self._prepared(x, value_range)
        axis = self.resolve_axis(x.shape, channel_axis)
        family = self.family
        params, state = family.fit(self, x, axis, value_range, tensor)
        codes, overflow = family.quantize(self, x, params, axis, state)
        return Encoded(self, tuple(x.shape), codes, params, overflow)

    def decode(self, enc: Encoded) -> np.ndarray:
        """float32 values of `enc`, shaped like the original tensor."""
        values = self.family.dequantize(self, enc.codes, enc.params)
        return np.asarray(values).reshape(enc.shape)

    def stored_arrays(self, info: TensorInfo) -> tuple[StoredArray, ...]:
        """The arrays this scheme stores for `info`, from its shape alone."""
        axis = self.resolve_axis(info.shape, info.channel_axis)
        return self.family.stored_arrays(self, info.shape, axis)

    def encoded_nbytes(self, info: TensorInfo) -> int:
        """Exact stored bytes (packed codes + parameters) from the shape alone."""
        return sum(a.nbytes for a in self.stored_arrays(info))


def _checked(name: str, declared: Mapping[str, Option], key: str, value: Any) -> Any:
    option = declared.get(key)
    if option is None:
        if value != _UNSET[key]:
            raise SchemeError(f"option {key!r} does not apply to {name}")
        return _UNSET[key]
    if value is None:
        return option.default
    return option.check(value)


@dataclass(frozen=True, eq=False)
class Encoded:
    """Codes (unpacked, shaped like the tensor) and parameters of one encoded tensor.

    `params` are the family's (e.g. affine `{"min", "scale"}` float64; int8 `{"scales": float32
    (C,), "axis"}`; a palette `{"palette"}`; floats `{}`). `overflow` counts values saturated by
    the format (float16 beyond ±65504) or cut off by the clip range.
    """

    scheme: Scheme
    shape: tuple[int, ...]
    codes: np.ndarray = field(repr=False)
    params: Mapping[str, Any] = field(repr=False)
    overflow: int = 0

    def arrays(self) -> tuple[StoredArray, ...]:
        """The stored arrays' layout (dtype, shape, bytes), codes first."""
        return self.scheme.family.stored_arrays(self.scheme, self.shape, self.params.get("axis"))

    def to_bytes(self) -> bytes:
        """The stored bytes: every stored array in order, little-endian."""
        return b"".join(a if isinstance(a, bytes) else a.tobytes() for a in self.array_bytes())

    def array_bytes(self) -> list[bytes | np.ndarray]:
        """Each stored array's bytes, in `arrays()` order (uint8 views where possible)."""
        return self.scheme.family.array_data(self)

    def byte_views(self) -> list[np.ndarray | bytes]:
        """Buffers whose concatenation is `to_bytes()`, viewing the codes without a copy when
        they are stored unpacked."""
        return self.scheme.family.byte_views(self)

    @property
    def nbytes(self) -> int:
        """`len(self.to_bytes())`, computed from bits without building the bytes."""
        return sum(a.nbytes for a in self.arrays())

    @property
    def scale(self) -> float | None:
        """Quantization step for `rmse_over_scale`: the affine scale, the RMS of per-channel or
        per-group scales, None for floats and palettes."""
        return self.scheme.family.step(self)


def parse_scheme(spec: str) -> Scheme:
    """Parse `NAME[:key=value[,key=value…]]` into a Scheme; SchemeError says what is wrong.
    Names are matched in lower case (`Q4_K` is `q4_k`)."""
    if not isinstance(spec, str) or not spec.strip():
        raise SchemeError(f"empty scheme spec {spec!r}")
    name, _, rest = spec.strip().partition(":")
    name = name.strip()
    try:
        family = family_of(name if _known(name) else name.lower())
        name = name if _known(name) else name.lower()
        declared = {o.key: o for o in (*family.options(name), *COMMON_OPTIONS)}
        kwargs: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in rest.split(","))) if rest else ():
            key, eq, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not eq or not value:
                raise SchemeError(f"option {item!r} must be key=value")
            if key in kwargs:
                raise SchemeError(f"option {key!r} given twice")
            option = declared.get(key) or _any_option(key)
            if option is None:
                known = ", ".join(declared)
                raise SchemeError(f"unknown option {key!r} ({known})")
            kwargs[key] = option.parse(value)
        return Scheme.build(name, kwargs)
    except SchemeError as exc:
        raise SchemeError(f"{spec!r}: {exc}") from None


def _known(name: str) -> bool:
    try:
        family_of(name)
    except SchemeError:
        return False
    return True


def _any_option(key: str) -> Option | None:
    """An option some registered family declares (so `uint8:group=4` says "does not apply"
    rather than "unknown")."""
    from inspector.core.schemes.base import families

    for family in families():
        for name in family.names():
            for option in family.options(name):
                if option.key == key:
                    return option
    return None
