"""HQQ: data-free optimisation of a quantization grid (Badri & Shaji 2023, "Half-Quadratic
Quantization of Large Machine Learning Models"; reference `mobiusml/hqq`,
`hqq/core/optimize.py` `optimize_weights_proximal`).

HQQ minimises the sparsity-promoting error ‖w − ŵ‖_p^p (p < 1: a few large errors cost less
than many middling ones, so outliers stop dragging the grid) by half-quadratic splitting: an
auxiliary error `e` is found by the lp shrinkage (proximal) step
`e = sign(r)·max(|r| − |r|^(p−1)/β, 0)` of the rounding residual `r = w − ŵ`, then the grid's
free parameters are refitted by least squares to `w − e` with the codes held, β grows by κ
each iteration. The reference frees only the zero point (its "scale" is fixed); here the free
parameters are the ones our stored formats keep, so the result is an ordinary encoding:

- affine (uint8/uint16/affineN, per tensor, decode `q·scale + min`): `min` and `scale` are both
  refitted (a two-parameter line fit of `w − e` on the codes). The reference's zero-point update
  is exactly the `min` half of this fit. The zero-point nudge of the TF.js rule is not kept: 0.0
  need not be a grid value afterwards (weights do not need it; activations are not quantized).
- symmetric (int8 per channel, int4 per group, decode `q·d`): there is no zero point, so the
  one free parameter, the scale `d` of each group, is refitted: `d = Σq(w − e) / Σq²`, then
  stored at the format's precision (float32, float16 for int4) before the next iteration.

Every iterate is judged on the objective itself, Σ|w − ŵ|^p with the parameters as stored, per
group: a group keeps its best parameters, and stops once an iteration does not lower its
objective (the reference's early stop, made per group), so the objective never rises above that
of the starting (nearest, min/max) parameters. Codes are then the ordinary nearest codes on the
optimised grid. No I/O, numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "HqqSettings",
    "affine_objective",
    "hqq_affine",
    "hqq_symmetric",
    "shrink_lp",
    "symmetric_objective",
]


@dataclass(frozen=True)
class HqqSettings:
    """The reference's defaults: p = 0.7, β = 10 growing ×1.01 per iteration, 20 iterations.

    β is in inverse weight units (the shrinkage threshold is |r|^(p−1)/β) and, as in the
    reference, applies to the raw weights: residuals below β^(−1/(2−p)) ≈ 0.17 are treated as
    noise to fit, larger ones as outliers to shrink. (Measuring residuals in units of the
    quantization step instead was tried on the demo models: no better, see docs/rounding.md.)
    """

    lp_norm: float = 0.7
    beta: float = 10.0
    kappa: float = 1.01
    iters: int = 20

    def __post_init__(self) -> None:
        if not 0.0 < self.lp_norm <= 1.0:
            raise ValueError(f"lp_norm must be in (0, 1], got {self.lp_norm}")
        if self.beta <= 0.0 or self.kappa <= 1.0 or self.iters < 1:
            raise ValueError("need beta > 0, kappa > 1 and iters >= 1")


DEFAULT = HqqSettings()


def shrink_lp(r: np.ndarray, beta: float | np.ndarray, p: float) -> np.ndarray:
    """The lp proximal step: `sign(r)·max(|r| − |r|^(p−1)/β, 0)` (0 where r = 0)."""
    a = np.abs(r)
    if p == 1.0:
        return np.sign(r) * np.maximum(a - 1.0 / beta, 0.0)
    with np.errstate(divide="ignore"):
        threshold = np.where(a > 0, np.power(a, p - 1.0, where=a > 0, out=np.ones_like(a)), 0)
    return np.sign(r) * np.maximum(a - threshold / beta, 0.0)


# --------------------------------------------------------------------------- affine


def _affine_codes(w: np.ndarray, lo: float, scale: float, qmax: int) -> np.ndarray:
    return np.clip(np.rint((w - lo) / scale), 0, qmax)


def affine_objective(x: np.ndarray, lo: float, scale: float, qmax: int, p: float = 0.7) -> float:
    """Σ|w − ŵ|^p of the affine grid (`min` = lo, `scale`) on the values `x`, in float64."""
    w = np.asarray(x, dtype=np.float64).reshape(-1)
    q = _affine_codes(w, lo, scale, qmax)
    return float(np.sum(np.abs(w - (q * scale + lo)) ** p))


def _line_fit(q: np.ndarray, t: np.ndarray, scale: float) -> tuple[float, float] | None:
    """Least-squares (scale, min) of `t ≈ scale·q + min`; None when it is degenerate."""
    qm, tm = q.mean(), t.mean()
    dq = q - qm
    var = float(np.dot(dq, dq))
    if var <= 0.0:
        return scale, float(tm - scale * qm)
    new_scale = float(np.dot(dq, t - tm)) / var
    if not np.isfinite(new_scale) or new_scale <= 0.0:
        return None
    return new_scale, float(tm - new_scale * qm)


def hqq_affine(
    x: np.ndarray, lo: float, scale: float, qmax: int, settings: HqqSettings = DEFAULT
) -> tuple[float, float]:
    """Optimised (min, scale) of an affine grid with codes 0…qmax, starting from (lo, scale).

    Returns the start unchanged for a constant tensor (scale 1, codes 0) or when no iteration
    lowers Σ|w − ŵ|^p.
    """
    w = np.asarray(x, dtype=np.float64).reshape(-1)
    p = settings.lp_norm
    best = (float(lo), float(scale))
    if w.size == 0 or scale <= 0.0 or not np.isfinite(scale):
        return best
    best_obj = affine_objective(w, lo, scale, qmax, p)
    beta = settings.beta
    for _ in range(settings.iters):
        q = _affine_codes(w, lo, scale, qmax)
        e = shrink_lp(w - (q * scale + lo), beta, p)
        fit = _line_fit(q, w - e, scale)
        if fit is None:
            break
        scale, lo = fit
        beta *= settings.kappa
        obj = affine_objective(w, lo, scale, qmax, p)
        if not obj < best_obj:
            break
        best, best_obj = (lo, scale), obj
    return best


# --------------------------------------------------------------------------- symmetric


def _blocks(rows: np.ndarray, group: int) -> np.ndarray:
    """`(M, C)` rows as float64 `(C, G, group)` blocks, zero-padded (zeros get code 0 and add
    nothing to a fit or an objective)."""
    m, c = rows.shape
    g = -(-m // group) if m else 0
    out = np.zeros((g * group, c), dtype=np.float64)
    out[:m] = rows
    return out.reshape(g, group, c).transpose(2, 0, 1)


def _stored(scales: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Scales as the format stores them (float16 saturates at 65504, as `int4_scales` does)."""
    if dtype == np.float16:
        scales = np.minimum(scales, 65504.0)
    return scales.astype(dtype).astype(np.float64)


def _sym_codes(w: np.ndarray, d: np.ndarray, qmax: int) -> np.ndarray:
    safe = np.where(d > 0, d, 1.0)[..., None]
    return np.where(d[..., None] > 0, np.clip(np.rint(w / safe), -qmax, qmax), 0.0)


def _sym_objective(w: np.ndarray, d: np.ndarray, qmax: int, p: float) -> np.ndarray:
    q = _sym_codes(w, d, qmax)
    return np.sum(np.abs(w - q * d[..., None]) ** p, axis=-1)


def symmetric_objective(
    rows: np.ndarray, scales: np.ndarray, group: int, qmax: int, p: float = 0.7
) -> float:
    """Σ|w − ŵ|^p of symmetric codes with `scales` `(C, G)` on rows `(M, C)`, float64."""
    w = _blocks(np.asarray(rows), group)
    d = np.asarray(scales, dtype=np.float64).reshape(w.shape[:2])
    return float(np.sum(_sym_objective(w, d, qmax, p)))


def hqq_symmetric(
    rows: np.ndarray,
    scales: np.ndarray,
    group: int,
    qmax: int,
    settings: HqqSettings = DEFAULT,
) -> np.ndarray:
    """Optimised scales `(C, G)` (the dtype of `scales`) for symmetric codes −qmax…qmax of the
    rows `(M, C)`, one scale per `group` consecutive rows of a channel. A zero scale (all-zero
    group) stays zero; a group keeps its start when no iteration lowers its objective."""
    dtype = np.asarray(scales).dtype
    w = _blocks(np.asarray(rows), group)
    p = settings.lp_norm
    d = np.asarray(scales, dtype=np.float64).reshape(w.shape[:2]).copy()
    best = d.copy()
    best_obj = _sym_objective(w, d, qmax, p)
    active = d > 0
    beta = settings.beta
    for _ in range(settings.iters):
        if not active.any():
            break
        q = _sym_codes(w, d, qmax)
        t = w - shrink_lp(w - q * d[..., None], beta, p)
        qq = np.sum(q * q, axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            fitted = np.sum(q * t, axis=-1) / qq
        ok = active & (qq > 0) & np.isfinite(fitted) & (fitted > 0)
        d = np.where(ok, _stored(np.where(ok, fitted, 1.0), dtype), d)
        beta *= settings.kappa
        obj = _sym_objective(w, d, qmax, p)
        better = ok & (obj < best_obj)
        best = np.where(better, d, best)
        best_obj = np.where(better, obj, best_obj)
        active = better
        d = np.where(better, d, best)
    return best.astype(dtype)
