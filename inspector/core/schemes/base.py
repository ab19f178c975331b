"""What a scheme family is, and the registry that maps scheme names to families.

A *family* is one way of quantizing (floats, the TF.js affine rule, symmetric per-channel,
k-means palettes, llama.cpp blocks, …). It declares everything the rest of the product needs so
that nothing outside its module switches on a scheme name:
- its names and their nominal code bits, its options (with kinds, ranges and defaults: the
  editor builds its widgets from them, the spec parser validates with them);
- fit / quantize / dequantize (`Scheme.encode`/`decode` and the curves call these);
- the arrays it stores (codes and each parameter array, with dtype and shape): the exact byte
  layout, which the size prediction, `Encoded.to_bytes` and the native writers all iterate;
- how a stored encoding is rebuilt from those arrays (readers of our own files);
- its levels and clip range for the plots, and optionally a fast error-sum path.

Register a family with `register_family(MyFamily())` at the end of its module and add the module
to `inspector.core.schemes._BUILTIN` (docs/extending.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from inspector.core.errors import SchemeError

if TYPE_CHECKING:
    from inspector.core.metrics import ErrorSums
    from inspector.core.schemes.scheme import Encoded, Scheme

__all__ = [
    "COMMON_OPTIONS",
    "CurveFit",
    "Family",
    "Option",
    "StoredArray",
    "families",
    "family_of",
    "register_family",
    "scheme_names",
]


@dataclass(frozen=True)
class Option:
    """A scheme option `key=value`.

    `kind`: "int", "float", "clip" (minmax | percentile:P | mse), "choice" (one of `choices`)
    or "text" (a path or a word). `default` is the value that is omitted from the canonical
    spec; `minimum`/`maximum` bound numbers (inclusive; `maximum` None = unbounded). `label` and
    `help` are what the editor shows.
    """

    key: str
    kind: str
    default: Any
    label: str
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    max_exclusive: bool = False

    def parse(self, text: str) -> Any:
        """The option's value from its spec text; SchemeError says what is wrong."""
        if self.kind == "int":
            try:
                return int(text)
            except ValueError:
                raise SchemeError(f"{self.key} must be an integer, got {text!r}") from None
        if self.kind == "float":
            try:
                return float(text)
            except ValueError:
                raise SchemeError(f"{self.key} must be a number, got {text!r}") from None
        return text

    def check(self, value: Any) -> Any:
        """`value` validated and normalised (the form kept in `Scheme` and printed in specs)."""
        if self.kind == "int":
            if not isinstance(value, int) or isinstance(value, bool):
                raise SchemeError(f"{self.key} must be an integer, got {value!r}")
        elif self.kind == "float":
            value = float(value)
            if not math.isfinite(value):
                raise SchemeError(f"{self.key} must be a finite number, got {value!r}")
        elif self.kind == "clip":
            return normalize_clip(value)
        elif self.kind == "choice" and value not in self.choices:
            raise SchemeError(f"{self.key} must be one of {', '.join(self.choices)}, got {value!r}")
        elif self.kind == "text" and (not isinstance(value, str) or not value or "," in value):
            raise SchemeError(f"{self.key} must be a non-empty text without commas")
        low = self.minimum is not None and value < self.minimum
        high = self.maximum is not None and (
            value >= self.maximum if self.max_exclusive else value > self.maximum
        )
        if low or high:
            raise SchemeError(f"{self.key} must be {self.range_text()}, got {value!r}")
        return value

    def range_text(self) -> str:
        """The allowed range in words: "a positive integer", "in [0, 1)", …"""
        if self.kind == "int" and self.maximum is None and self.minimum in (0, 1):
            return "a positive integer" if self.minimum == 1 else "a non-negative integer"
        lo = "-inf" if self.minimum is None else f"{self.minimum:g}"
        hi = "inf" if self.maximum is None else f"{self.maximum:g}"
        return f"in [{lo}, {hi}{')' if self.max_exclusive else ']'}"

    def text(self, value: Any) -> str:
        """The value as written in a spec (`parse(text(v)) == v`)."""
        return repr(value) if self.kind == "float" else str(value)


def normalize_clip(clip: Any) -> str:
    """`minmax`, `mse` or `percentile:P` (50 < P ≤ 100) in canonical form."""
    if clip in ("minmax", "mse"):
        return str(clip)
    head, _, value = str(clip).partition(":")
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


SPARSITY = Option(
    "sparsity",
    "float",
    0.0,
    "Sparsity",
    "Zero the floor(S·n) smallest |w| before quantizing (magnitude pruning)",
    minimum=0.0,
    maximum=1.0,
    max_exclusive=True,
)
SKIP = Option(
    "skip", "int", 0, "Skip below", "Keep tensors with fewer elements than this (0 = never)", 0
)
COMMON_OPTIONS: tuple[Option, ...] = (SPARSITY, SKIP)
"""Options every family takes, after the family's own in a spec."""


@dataclass(frozen=True)
class StoredArray:
    """One array a scheme stores for a tensor, in stored order (codes first).

    `role` names it ("codes", "scale", "min", "palette", "blocks", …; a writer storing arrays
    by name uses `<tensor>` for the codes and `<tensor>.<role>` for the others). `dtype` is the
    little-endian numpy dtype name of the stored elements ("uint8" for packed codes). `shape`
    is the stored shape: the tensor's shape for unpacked codes, `(nbytes,)` for codes packed
    below 8 bits, `()` for a scalar. `nbytes` is exact.
    """

    role: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int


class CurveFit:
    """A scheme fitted on (a channel of) a tensor, for plots: the stored value of any float32
    input, the levels it can store and the range it clips to. Families subclass it."""

    def stored(self, grid: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """float32 value stored for each float32 value of `grid`."""
        raise NotImplementedError

    def levels(self, vmin: float, vmax: float, max_levels: int) -> np.ndarray | None:
        """Sorted storable values around [vmin, vmax], or None when over `max_levels`."""
        raise NotImplementedError  # pragma: no cover - abstract

    def clip_range(self) -> tuple[float, float] | None:
        """[lo, hi] the scheme clips to, None when the family has no clip range to draw."""
        return None


class Family:
    """Base class of a scheme family; see the module docstring for what one declares.

    Subclasses set `id` (a short word shown to users: "affine", "symmetric", …), implement the
    abstract methods and register an instance. Defaults here serve most families.
    """

    id: str = ""
    description: str = ""
    clip_bounds: str = "range"
    """What option `clip=percentile:P` cuts: "range" (the two tails: [100−P, P] percentiles)
    or "magnitude" (|w| above its P-th percentile)."""

    # -- names, bits and options -------------------------------------------------------
    def names(self) -> tuple[str, ...]:
        """Every scheme name of the family, in the order menus list them."""
        raise NotImplementedError

    def accepts(self, name: str) -> bool:
        return name in self.names()

    def names_text(self) -> str:
        """The names for an error message, runs shortened (`affine2…affine16`)."""
        return ", ".join(self.names())

    def bits(self, name: str) -> int:
        """Nominal bits per stored code (per weight) of the scheme `name`."""
        raise NotImplementedError

    def bit_choices(self, name: str) -> tuple[int, ...]:
        """Bit widths the editor's Bits control offers for this family (one: fixed)."""
        return (self.bits(name),)

    def name_for_bits(self, name: str, bits: int) -> str:
        """The family's scheme name with `bits` bits (the editor's Bits control)."""
        return name

    def options(self, name: str) -> tuple[Option, ...]:
        """The family's own options for scheme `name` (spec order); `COMMON_OPTIONS` follow."""
        return ()

    def validate(self, scheme: Scheme) -> None:
        """Extra checks across options (the options' own ranges are already checked)."""

    def note(self, scheme: Scheme, shape: tuple[int, ...]) -> str:
        """What the preview should say about storing a tensor of `shape` this way ("" when
        nothing), e.g. that a row length forces a fallback type."""
        return ""

    @property
    def per_channel(self) -> bool:
        """True when the family has a channel axis (option `axis`, `Scheme.resolve_axis`)."""
        return False

    def exact_dtype(self, name: str) -> str:
        """Narrowest float dtype name holding every decoded value exactly (writers that store
        plain values keep this one: float16 stays float16)."""
        return "float32"

    # -- encoding -----------------------------------------------------------------------
    def fit(
        self,
        scheme: Scheme,
        x: np.ndarray,
        axis: int | None,
        value_range: tuple[float, float] | None,
        tensor: str = "",
    ) -> tuple[dict[str, Any], Any]:
        """Parameters for float32 `x` (already pruned) as `Encoded.params`, plus any fitted
        state `quantize` wants (None). `value_range` is `x`'s (min, max) when known; `tensor`
        is the tensor's name (for data keyed by tensor, such as an importance matrix)."""
        raise NotImplementedError

    def quantize(
        self,
        scheme: Scheme,
        x: np.ndarray,
        params: Mapping[str, Any],
        axis: int | None,
        state: Any = None,
    ) -> tuple[np.ndarray, int]:
        """(codes shaped like `x`, overflow count) for float32 `x` with fitted parameters."""
        raise NotImplementedError

    def dequantize(self, scheme: Scheme, codes: np.ndarray, params: Mapping[str, Any]) -> Any:
        """float32 values of `codes`, shaped like the codes."""
        raise NotImplementedError

    # -- the stored layout ------------------------------------------------------------
    def stored_arrays(
        self, scheme: Scheme, shape: tuple[int, ...], axis: int | None
    ) -> tuple[StoredArray, ...]:
        """The arrays stored for a tensor of `shape` (codes first), from the shape alone."""
        raise NotImplementedError

    def array_data(self, enc: Encoded) -> list[bytes | np.ndarray]:
        """Each stored array's bytes (a uint8 view or bytes), in `stored_arrays` order."""
        raise NotImplementedError

    def from_arrays(
        self,
        scheme: Scheme,
        shape: tuple[int, ...],
        axis: int | None,
        arrays: Sequence[np.ndarray],
    ) -> Encoded:
        """The encoding whose stored arrays are `arrays` (as read back from a file, in
        `stored_arrays` order and dtypes): the inverse of `array_data`."""
        raise NotImplementedError

    def dry_params(
        self, scheme: Scheme, shape: tuple[int, ...], axis: int | None
    ) -> dict[str, Any]:
        """Zero-valued `Encoded.params` with the real keys, types and shapes (for layout-only
        predictions of container bytes)."""
        raise NotImplementedError

    def byte_views(self, enc: Encoded) -> list[Any]:
        """Buffers whose concatenation is `enc.to_bytes()`; views of the codes where the
        stored layout allows (no copy)."""
        return [enc.to_bytes()]

    def packed_views(self, enc: Encoded) -> list[Any] | None:
        """Sub-byte codes as lazily packed streams plus parameter bytes (for the gzip
        estimate, which packs only its sampled blocks); None when codes are unpacked."""
        return None

    # -- measuring and plotting ---------------------------------------------------------
    def error_sums(self, x: np.ndarray, enc: Encoded) -> ErrorSums | None:
        """The error sums of `enc` against `x` straight from the codes, or None to let the
        caller decode and compare (the default)."""
        return None

    def step(self, enc: Encoded) -> float | None:
        """Quantization step for `rmse_over_scale` (None: not a uniform grid)."""
        return None

    def grid(self, enc: Encoded) -> tuple[np.ndarray, np.ndarray, int, int] | None:
        """The encoding's grid element by element, for rounding that chooses codes itself
        (GPTQ, `round=gptq`): (step, offset, lowest code, highest code), step and offset
        shaped like the tensor, code q decoding to q·step + offset; None when the family's
        levels are not such a grid (a family declaring option `round` must give one)."""
        return None

    def curve_fit(
        self,
        scheme: Scheme,
        x: np.ndarray,
        axis: int | None,
        channel: int | None,
    ) -> CurveFit:
        """The scheme fitted on finite float32 `x` (pruned already) for the plots; `axis` is
        the resolved channel axis, `channel` one channel or None for the whole tensor."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<scheme family {self.id}>"


_FAMILIES: list[Family] = []


def register_family(family: Family) -> Family:
    """Add a family; its names must not collide with a registered family's."""
    taken = {n for f in _FAMILIES for n in f.names()}
    clash = taken.intersection(family.names())
    if clash:
        raise ValueError(f"scheme names {sorted(clash)} are already registered")
    _FAMILIES.append(family)
    return family


def families() -> tuple[Family, ...]:
    """Registered families in registration order."""
    return tuple(_FAMILIES)


def family_of(name: str) -> Family:
    """The family providing scheme `name` (exact, lower-case); SchemeError when none does."""
    for family in _FAMILIES:
        if family.accepts(name):
            return family
    raise SchemeError(f"unknown scheme {name!r}; known: {known_names_text()}")


def scheme_names() -> tuple[str, ...]:
    """Every registered scheme name, family by family."""
    return tuple(n for f in _FAMILIES for n in f.names())


def known_names_text() -> str:
    """The known names, compact (`Family.names_text`)."""
    return ", ".join(f.names_text() for f in _FAMILIES)
