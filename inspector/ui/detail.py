"""Plot data for the selected tensor, computed on a worker: sample, histogram, levels, clip
range, discretization curves, error and per-channel ranges.

The views only draw what a `TensorDetail` holds (DESIGN §7 rule 4): every number here comes
from core (`quantize_tensor`, `core.curves`) or is a reshaping/binning of values for a plot.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from inspector.core.model import Tensor
from inspector.core.preview import quantize_tensor
from inspector.core.schemes import Scheme, parse_scheme
from inspector.core.target import Target
from inspector.ui.controllers import state_target
from inspector.ui.state import AppState
from inspector.ui.workers import JobRunner

__all__ = [
    "BIT_LABELS",
    "MAX_LEVEL_LINES",
    "MAX_SAMPLE",
    "CurveSet",
    "DetailController",
    "TensorDetail",
    "clip_spec_for_range",
    "compute_curves",
    "compute_detail",
    "sine_demo",
]

MAX_SAMPLE = 1_000_000
"""Values drawn in a histogram (a seeded sample above this); metrics always use all values."""
MAX_SCATTER = 20_000
MAX_LEVEL_LINES = 300
"""More quantization levels than this are drawn as a band, not one line each."""
BIT_LABELS = ("16", "8", "4", "2", "float16", "bfloat16")
CURVE_POINTS = 4001
HIST_BINS = 200
CLIP_SAMPLE = 200_000


@dataclass(frozen=True)
class CurveSet:
    """Original → stored value curves over [lo, hi], one per label ("scheme" = the chosen one)."""

    lo: float
    hi: float
    curves: dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True, eq=False)
class TensorDetail:
    """Everything the three views draw for one tensor under one scheme (and channel)."""

    name: str
    spec: str
    stored: str
    note: str
    skipped: str | None
    shape: tuple[int, ...]
    size: int
    channel: int | None
    channel_axis: int | None
    channels: int
    per_channel_scheme: bool
    lo: float
    hi: float
    zeros: int
    hist_counts: np.ndarray
    hist_edges: np.ndarray
    levels: np.ndarray | None
    n_levels: int | None
    clip: tuple[float, float] | None
    error_counts: np.ndarray
    error_edges: np.ndarray
    scatter_values: np.ndarray
    scatter_errors: np.ndarray
    channel_min: np.ndarray | None
    channel_max: np.ndarray | None
    curves: CurveSet
    sorted_sample: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


def _channel_axis(tensor: Tensor, scheme: Scheme) -> int | None:
    """The scheme's channel axis (int8/int4), else the layout's output axis, for the
    per-channel views; None for 0-d and 1-d tensors."""
    shape = tensor.info.shape
    axis = scheme.resolve_axis(shape, tensor.info.channel_axis)
    if axis is not None or len(shape) < 2:
        return axis
    layout = tensor.info.channel_axis
    axis = (len(shape) - 1 if layout is None else layout) % len(shape)
    if shape[axis] == 1:  # depthwise kernels (h, w, C, 1): the channels are the C axis
        axis = max((i for i, d in enumerate(shape) if d > 1), default=axis)
    return axis


def _per_channel(scheme: Scheme) -> bool:
    return scheme.family.per_channel


def _sample_index(size: int, n: int, seed: int = 0) -> np.ndarray | None:
    if size <= n:
        return None
    idx = np.random.default_rng(seed).choice(size, size=n, replace=False)
    idx.sort()
    return idx


def _channel_view(x: np.ndarray, axis: int | None, channel: int | None) -> np.ndarray:
    if axis is None or channel is None:
        return x.reshape(-1)
    return np.take(x, channel, axis=axis).reshape(-1)


def _channel_ranges(x: np.ndarray, axis: int | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    if axis is None:
        return None, None
    xs = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    return xs.min(axis=1), xs.max(axis=1)


def compute_curves(
    tensor: Tensor,
    scheme: Scheme,
    labels: Sequence[str],
    lo: float,
    hi: float,
    channel: int | None = None,
    values: np.ndarray | None = None,
) -> CurveSet:
    """Staircases original → stored over [lo, hi] for each bit-width label and the scheme."""
    from inspector.core import curves

    x = np.asarray(tensor.load(), dtype=np.float32) if values is None else values
    axis = _channel_axis(tensor, scheme)
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        lo, hi = (lo - 1.0, lo + 1.0) if math.isfinite(lo) else (-1.0, 1.0)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    todo = [(label, curves.bit_width_scheme(label)) for label in labels]
    if not scheme.is_identity:
        todo.append(("scheme", scheme))
    for label, sch in todo:
        ch = channel if label == "scheme" else None
        ch_axis = sch.resolve_axis(x.shape, axis) if ch is not None else None
        cx, cy = curves.discretization_curve(
            sch, x, lo, hi, CURVE_POINTS, channel=ch, channel_axis=ch_axis
        )
        out[label] = (np.asarray(cx), np.asarray(cy))
    return CurveSet(float(lo), float(hi), out)


def compute_detail(
    tensor: Tensor,
    scheme: Scheme,
    target: Target,
    labels: Sequence[str] = BIT_LABELS,
    channel: int | None = None,
) -> TensorDetail:
    """All plot data of one tensor (runs on a worker; ~O(size) numpy work)."""
    q = quantize_tensor(tensor, scheme, target)
    x = np.asarray(q.original, dtype=np.float32)
    xd = np.asarray(q.decoded, dtype=np.float32).reshape(x.shape)
    err = xd - x
    axis = _channel_axis(tensor, scheme)
    channels = x.shape[axis] if axis is not None else 1
    if channel is not None and not 0 <= channel < channels:
        channel = None
    flat = _channel_view(x, axis, channel)
    eflat = _channel_view(err, axis, channel)
    finite = flat[np.isfinite(flat)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    idx = _sample_index(flat.size, MAX_SAMPLE)
    sample = flat if idx is None else flat[idx]
    esample = eflat if idx is None else eflat[idx]
    span = (lo - 0.5, hi + 0.5) if hi <= lo else (lo, hi)
    bins = int(np.clip(2 * math.sqrt(max(sample.size, 1)), 20, HIST_BINS))
    counts, edges = np.histogram(sample[np.isfinite(sample)], bins=bins, range=span)
    efin = esample[np.isfinite(esample)]
    ecounts, eedges = (
        np.histogram(efin, bins=HIST_BINS) if efin.size else (np.zeros(0), np.zeros(1))
    )
    sidx = _sample_index(sample.size, MAX_SCATTER, seed=1)
    levels, n_levels, clip = _levels_and_clip(q.skipped, scheme, x, axis, channel)
    cmin, cmax = _channel_ranges(x, axis)
    return TensorDetail(
        name=tensor.name,
        spec=scheme.spec,
        stored=q.storage.stored.spec if q.storage.stored is not None else tensor.info.dtype,
        note=q.storage.note,
        skipped=q.skipped,
        shape=tensor.info.shape,
        size=x.size,
        channel=channel,
        channel_axis=axis,
        channels=channels,
        per_channel_scheme=_per_channel(scheme),
        lo=lo,
        hi=hi,
        zeros=int(np.count_nonzero(flat == 0)),
        hist_counts=counts,
        hist_edges=edges,
        levels=levels,
        n_levels=n_levels,
        clip=clip,
        error_counts=ecounts,
        error_edges=eedges,
        scatter_values=sample if sidx is None else sample[sidx],
        scatter_errors=esample if sidx is None else esample[sidx],
        channel_min=cmin,
        channel_max=cmax,
        curves=compute_curves(tensor, scheme, labels, lo, hi, channel, values=x),
        sorted_sample=_sorted_sample(x),
    )


def _sorted_sample(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(-1)
    idx = _sample_index(flat.size, CLIP_SAMPLE, seed=2)
    values = flat if idx is None else flat[idx]
    return np.sort(values[np.isfinite(values)])


def clip_spec_for_range(spec: str, sorted_sample: np.ndarray, lo: float, hi: float) -> str:
    """The spec with `clip=percentile:P` whose range best matches a dragged [lo, hi].

    Affine schemes clip to the [100−P, P] percentiles, so P comes from the mean tail mass
    outside [lo, hi]; int8/int4 cap max|w| at the P-th percentile of |w|, so P is the share of
    |w| ≤ max(|lo|, |hi|). A range holding every value gives `clip=minmax`.
    """
    scheme = parse_scheme(spec)
    n = sorted_sample.size
    if not takes_clip(scheme) or n == 0:
        return scheme.spec
    if scheme.family.clip_bounds == "range":
        below = np.searchsorted(sorted_sample, lo, side="left")
        above = n - np.searchsorted(sorted_sample, hi, side="right")
        p = 100.0 * (1.0 - 0.5 * (below + above) / n)
    else:
        cap = max(abs(lo), abs(hi))
        p = 100.0 * np.count_nonzero(np.abs(sorted_sample) <= cap) / n
    p = round(float(p), 2)
    if p >= 100.0:
        return dataclasses.replace(scheme, clip="minmax").spec
    return dataclasses.replace(scheme, clip=f"percentile:{max(p, 50.01):g}").spec


def _levels_and_clip(
    skipped: str | None, scheme: Scheme, x: np.ndarray, axis: int | None, channel: int | None
) -> tuple[np.ndarray | None, int | None, tuple[float, float] | None]:
    """Levels the scheme can store in the shown range, and the range it clips the tensor to
    (None for float formats, whose "clip" is ± the format's maximum)."""
    from inspector.core import curves

    if skipped is not None or scheme.is_identity:
        return None, None, None
    ch_axis = scheme.resolve_axis(x.shape, axis) if channel is not None else None
    levels = curves.quantization_levels(scheme, x, channel=channel, channel_axis=ch_axis)
    n_levels = None if levels is None else int(np.asarray(levels).size)
    clip = None
    if takes_clip(scheme):
        lo, hi = curves.clip_range(scheme, x, channel_axis=axis)
        clip = (float(lo), float(hi))
    return (None if levels is None else np.asarray(levels, dtype=np.float64)), n_levels, clip


def takes_clip(scheme: Scheme) -> bool:
    """True when the scheme has a clip range the user can drag (option `clip`)."""
    return any(o.key == "clip" for o in scheme.family.options(scheme.name))


def sine_demo(n: int = 20_000) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """One period of a unit sine and its 16- and 8-bit affine versions (the seed's figure)."""
    from inspector.core import curves

    t = np.linspace(0.0, 1.0, n, dtype=np.float64)
    x = np.sin(2 * np.pi * t).astype(np.float32)
    out = {}
    for label in ("16", "8"):
        scheme = curves.bit_width_scheme(label)
        out[label] = np.asarray(scheme.decode(scheme.encode(x)), dtype=np.float32)
    return t, x, out


class DetailController(QObject):
    """Recomputes the selected tensor's `TensorDetail` after selection/plan/target changes.

    Requests are debounced (~60 ms; edits that come from widgets are debounced by them) and
    carry a generation number, so only the newest answer is drawn.
    """

    detail_ready = Signal(object)
    detail_cleared = Signal()
    zoom_ready = Signal(object)
    busy = Signal(bool)

    def __init__(self, state: AppState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.labels: tuple[str, ...] = BIT_LABELS
        self.channel: int | None = None
        self.detail: TensorDetail | None = None
        self.runner = JobRunner(1, self)
        self.runner.done.connect(self._on_done)
        self.runner.failed.connect(lambda g, e: self.detail_cleared.emit())
        self.zoom_runner = JobRunner(1, self)
        self.zoom_runner.done.connect(lambda g, c: self.zoom_ready.emit(c))
        self._timer = QTimer(self, singleShot=True, interval=60)
        self._timer.timeout.connect(self.refresh)
        state.selection_changed.connect(self._on_selection)
        state.plan_changed.connect(self._timer.start)
        state.target_changed.connect(self._timer.start)
        state.model_changed.connect(self._on_model)
        self._last_name: str | None = None

    def _on_model(self) -> None:
        self.detail = None
        self._last_name = None
        self.detail_cleared.emit()

    def _on_selection(self) -> None:
        if self.state.current != self._last_name:
            self.channel = None
            self._timer.start()

    def set_channel(self, channel: int | None) -> None:
        if channel != self.channel:
            self.channel = channel
            self._timer.start()

    def refresh(self) -> None:
        """Start computing the current tensor's detail now."""
        tensor = self.state.tensor(self.state.current)
        self._last_name = self.state.current
        if tensor is None:
            self.runner.cancel()
            self.detail = None
            self.detail_cleared.emit()
            return
        scheme = self.state.plan.scheme_for(tensor.info)
        target = state_target(self.state)
        labels, channel = self.labels, self.channel
        self.busy.emit(True)
        self.runner.submit(_job(lambda: compute_detail(tensor, scheme, target, labels, channel)))

    def request_zoom(self, lo: float, hi: float) -> None:
        """Curves over a zoomed range (finer than the overview) for the current detail."""
        tensor = self.state.tensor(self.state.current)
        if tensor is None or self.detail is None or hi <= lo:
            return
        scheme = self.state.plan.scheme_for(tensor.info)
        labels, channel = self.labels, self.detail.channel
        self.zoom_runner.submit(
            _job(lambda: compute_curves(tensor, scheme, labels, lo, hi, channel))
        )

    def clip_spec(self, d: TensorDetail, lo: float, hi: float) -> str:
        """The current tensor's spec with the clip option a dragged region stands for."""
        return clip_spec_for_range(d.spec, d.sorted_sample, lo, hi)

    def _on_done(self, gen: int, detail: Any) -> None:
        self.detail = detail
        self.busy.emit(False)
        self.detail_ready.emit(detail)


def _job(fn: Callable[[], Any]) -> Callable[[Callable[[], bool], Callable[[Any], None]], Any]:
    return lambda cancelled, report: fn()
