"""The scale searches of ggml-quants.c (`make_qx_quants`, `make_q3_quants`, `make_qkx2_quants`,
`make_qkx3_quants`, `make_qp_quants`, `best_index_int8`) as numba functions with C's float32
semantics (see `_jit`): same operations, same order, same integer conversions.

Each reads `n` values of `x` from offset `xo` (and weights from `wo`) and writes its levels to
`L[lo:lo+n]`, so a super-block's sub-blocks share one scratch array without slicing; `Laux`
(uint8) and `tmp` (float32, 3n) are scratch owned by the caller. C's `uint8_t`
and `int8_t` stores are `& 0xFF` and int8 wraps where C's would wrap.
"""

from __future__ import annotations

import numpy as np

from ._jit import F, inline, jit, nearest_int

__all__ = [
    "GROUP_MAX_EPS",
    "best_index_int8",
    "make_q3_quants",
    "make_qkx2_quants",
    "make_qkx3_quants",
    "make_qp_quants",
    "make_qx_quants",
]

GROUP_MAX_EPS = 1e-15


@inline
def _qx_weight(v, qw, wi, has_qw, rmse_type):
    if has_qw:
        return qw[wi]
    if rmse_type == 1:
        return v * v
    if rmse_type == 2:
        return F(1.0)
    if rmse_type == 3:
        return abs(v)
    return np.sqrt(abs(v))


@inline
def _absmax(x, xo, n):
    """The value of largest magnitude (first one on ties) and its magnitude."""
    mx = F(0.0)
    amax = F(0.0)
    for i in range(n):
        ax = abs(x[xo + i])
        if ax > amax:
            amax = ax
            mx = x[xo + i]
    return mx, amax


@inline
def _qx_sums(x, xo, n, nmax, iscale, qw, wo, has_qw, rmse_type, L, lo, store, tmp):
    """Σ w·x·l and Σ w·l² in index order; the products are formed first (vectorizable)."""
    lx = tmp[:n]
    l2 = tmp[n : 2 * n]
    for i in range(n):
        v = x[xo + i]
        lv = max(-nmax, min(nmax - 1, nearest_int(iscale * v)))
        if store:
            L[lo + i] = lv + nmax
        w = _qx_weight(v, qw, wo + i, has_qw, rmse_type)
        fl = F(lv)
        lx[i] = w * v * fl
        l2[i] = w * fl * fl
    sumlx = F(0.0)
    suml2 = F(0.0)
    for i in range(n):
        sumlx += lx[i]
        suml2 += l2[i]
    return sumlx, suml2


@inline
def make_qx_quants(n, nmax, x, xo, L, lo, rmse_type, qw, wo, has_qw, tmp):
    """Symmetric levels 0…2·nmax−1 (`L` = l + nmax) and their scale (q3_k/q6_k/q4_0/q5_0)."""
    mx, amax = _absmax(x, xo, n)
    if amax < F(GROUP_MAX_EPS):
        for i in range(n):
            L[lo + i] = 0
        return F(0.0)
    iscale = F(-nmax) / mx
    if rmse_type == 0:
        for i in range(n):
            lv = nearest_int(iscale * x[xo + i])
            L[lo + i] = nmax + max(-nmax, min(nmax - 1, lv))
        return F(1.0) / iscale
    return_early = rmse_type < 0
    rmse_type = abs(rmse_type)
    sumlx, suml2 = _qx_sums(x, xo, n, nmax, iscale, qw, wo, has_qw, rmse_type, L, lo, True, tmp)
    scale = sumlx / suml2 if suml2 != F(0.0) else F(0.0)
    if return_early:
        return F(0.5) * (scale + F(1.0) / iscale) if suml2 > F(0.0) else F(1.0) / iscale
    best = scale * sumlx
    for is_ in range(-9, 10):
        if is_ == 0:
            continue
        iscale = -(F(nmax) + F(0.1) * F(is_)) / mx
        sumlx, suml2 = _qx_sums(
            x, xo, n, nmax, iscale, qw, wo, has_qw, rmse_type, L, lo, False, tmp
        )
        if suml2 > F(0.0) and sumlx * sumlx > best * suml2:
            for i in range(n):
                lv = nearest_int(iscale * x[xo + i])
                L[lo + i] = nmax + max(-nmax, min(nmax - 1, lv))
            scale = sumlx / suml2
            best = scale * sumlx
    return scale


@jit
def make_q3_quants(n, nmax, x, xo, L, lo, do_rmse):
    """q3_k's symmetric levels with the iterative rmse refinement; `L` = l + nmax."""
    mx, amax = _absmax(x, xo, n)
    if amax < F(GROUP_MAX_EPS):
        for i in range(n):
            L[lo + i] = 0
        return F(0.0)
    iscale = F(-nmax) / mx
    if not do_rmse:
        for i in range(n):
            L[lo + i] = max(-nmax, min(nmax - 1, nearest_int(iscale * x[xo + i]))) + nmax
        return F(1.0) / iscale
    sumlx = F(0.0)
    suml2 = F(0.0)
    for i in range(n):
        v = x[xo + i]
        lv = max(-nmax, min(nmax - 1, nearest_int(iscale * v)))
        L[lo + i] = lv
        w = v * v
        sumlx += w * v * F(lv)
        suml2 += w * F(lv) * F(lv)
    for _ in range(5):
        n_changed = 0
        for i in range(n):
            v = x[xo + i]
            w = v * v
            li = F(L[lo + i])
            slx = sumlx - w * v * li
            if slx > F(0.0):
                sl2 = suml2 - w * li * li
                new_l = max(-nmax, min(nmax - 1, nearest_int(v * sl2 / slx)))
                if new_l != L[lo + i]:
                    slx += w * v * F(new_l)
                    sl2 += w * F(new_l) * F(new_l)
                    if sl2 > F(0.0) and slx * slx * suml2 > sumlx * sumlx * sl2:
                        L[lo + i] = new_l
                        sumlx = slx
                        suml2 = sl2
                        n_changed += 1
        if n_changed == 0:
            break
    for i in range(n):
        L[lo + i] += nmax
    return sumlx / suml2 if suml2 > F(0.0) else F(0.0)


@inline
def _affine_error(n, x, xo, w, wo, L, lo, scale, mn, use_mad):
    err = F(0.0)
    for i in range(n):
        diff = scale * F(L[lo + i]) + mn - x[xo + i]
        diff = abs(diff) if use_mad else diff * diff
        err += w[wo + i] * diff
    return err


@jit
def make_qkx2_quants(n, nmax, x, xo, w, wo, L, lo, Laux, tmp, rmin, rdelta, nstep, use_mad):
    """Affine levels 0…nmax with a scale/min search (q2_k, q4_k, q5_k without imatrix).
    Returns (scale, the_min) where values ≈ scale·L − the_min."""
    mn = x[xo]
    mx = x[xo]
    sum_w = w[wo]
    sum_x = sum_w * x[xo]
    for i in range(1, n):
        v = x[xo + i]
        if v < mn:
            mn = v
        if v > mx:
            mx = v
        sum_w += w[wo + i]
        sum_x += w[wo + i] * v
    if mn > F(0.0):
        mn = F(0.0)
    if mx == mn:
        for i in range(n):
            L[lo + i] = 0
        return F(0.0), -mn
    return _qkx_search(
        n, nmax, x, xo, w, wo, L, lo, Laux, tmp, rmin, rdelta, nstep, use_mad, mn, mx, sum_w, sum_x
    )


@jit
def make_qkx3_quants(n, nmax, x, xo, w, wo, L, lo, Laux, tmp, rmin, rdelta, nstep, use_mad):
    """make_qkx2_quants as the imatrix paths call it (`max <= min` test); weights given."""
    mn = x[xo]
    mx = x[xo]
    sum_w = w[wo]
    sum_x = sum_w * x[xo]
    for i in range(1, n):
        v = x[xo + i]
        if v < mn:
            mn = v
        if v > mx:
            mx = v
        sum_w += w[wo + i]
        sum_x += w[wo + i] * v
    if mn > F(0.0):
        mn = F(0.0)
    if mx <= mn:
        for i in range(n):
            L[lo + i] = 0
        return F(0.0), -mn
    return _qkx_search(
        n, nmax, x, xo, w, wo, L, lo, Laux, tmp, rmin, rdelta, nstep, use_mad, mn, mx, sum_w, sum_x
    )


@inline
def _weighted_error(n, xs, ws, ls, scale, mn, use_mad, tmp):
    """Σ w·|scale·L + mn − x| (or squared), summed in index order as C does; the products are
    formed in a separate loop so they vectorize (the same roundings, only the sum is serial)."""
    for i in range(n):
        diff = scale * F(ls[i]) + mn - xs[i]
        tmp[i] = ws[i] * (abs(diff) if use_mad else diff * diff)
    err = F(0.0)
    for i in range(n):
        err += tmp[i]
    return err


@jit
def _qkx_search(
    n, nmax, x, xo, w, wo, L, lo, Laux, tmp, rmin, rdelta, nstep, use_mad, mn, mx, sum_w, sum_x
):
    xs = x[xo : xo + n]  # views: loop indices are then provably non-negative
    ws = w[wo : wo + n]
    ls = L[lo : lo + n]
    wl, wl2, wlx = tmp[:n], tmp[n : 2 * n], tmp[2 * n :]
    iscale = F(nmax) / (mx - mn)
    scale = F(1.0) / iscale
    for i in range(n):
        ls[i] = max(0, min(nmax, nearest_int(iscale * (xs[i] - mn))))
    best_error = _weighted_error(n, xs, ws, ls, scale, mn, use_mad, wl)
    if nstep < 1:
        return scale, -mn
    for is_ in range(nstep + 1):
        iscale = (rmin + rdelta * F(is_) + F(nmax)) / (mx - mn)
        for i in range(n):  # elementwise, vectorizable
            lv = max(0, min(nmax, nearest_int(iscale * (xs[i] - mn))))
            Laux[i] = lv
            wl[i] = ws[i] * F(lv)
            wl2[i] = wl[i] * F(lv)
            wlx[i] = wl[i] * xs[i]
        sum_l = F(0.0)
        sum_l2 = F(0.0)
        sum_xl = F(0.0)
        for i in range(n):  # the sums, in C's order
            sum_l += wl[i]
            sum_l2 += wl2[i]
            sum_xl += wlx[i]
        D = sum_w * sum_l2 - sum_l * sum_l
        if F(0.0) < D:
            this_scale = (sum_w * sum_xl - sum_x * sum_l) / D
            this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D
            if this_min > F(0.0):
                this_min = F(0.0)
                this_scale = sum_xl / sum_l2
            cur_error = _weighted_error(n, xs, ws, Laux, this_scale, this_min, use_mad, wl)
            if cur_error < best_error:
                for i in range(n):
                    ls[i] = Laux[i]
                best_error = cur_error
                scale = this_scale
                mn = this_min
    return scale, -mn


@inline
def _qp_mse(n, nmax, x, qw, iscale, clamp):
    scale = F(1.0) / iscale
    mse = F(0.0)
    for i in range(n):
        lv = nearest_int(iscale * x[i])
        if clamp:
            lv = min(nmax, lv)
        diff = x[i] - scale * F(lv & 0xFF if not clamp else lv)
        mse += qw[i] * diff * diff
    return mse


@jit
def make_qp_quants(n, nmax, x, L, qw):
    """Unsigned levels 0…nmax for a super-block's scales or mins (imatrix k-quant paths)."""
    mx = F(0.0)
    for i in range(n):
        mx = mx if mx > x[i] else x[i]
    if mx < F(GROUP_MAX_EPS):
        for i in range(n):
            L[i] = 0
        return F(0.0)
    iscale = F(nmax) / mx
    best_mse = _qp_mse(n, nmax, x, qw, iscale, False)
    for is_ in range(-4, 5):
        if is_ == 0:
            continue
        iscale_is = (F(0.1) * F(is_) + F(nmax)) / mx
        mse = _qp_mse(n, nmax, x, qw, iscale_is, True)
        if mse < best_mse:
            best_mse = mse
            iscale = iscale_is
    sumlx = F(0.0)
    suml2 = F(0.0)
    for i in range(n):
        lv = min(nmax, nearest_int(iscale * x[i]))
        L[i] = lv & 0xFF
        sumlx += qw[i] * x[i] * F(lv)
        suml2 += qw[i] * F(lv) * F(lv)
    for _ in range(5):
        n_changed = 0
        for i in range(n):
            w = qw[i]
            li = F(L[i])
            slx = sumlx - w * x[i] * li
            sl2 = suml2 - w * li * li
            if slx > F(0.0) and sl2 > F(0.0):
                new_l = min(nmax, nearest_int(x[i] * sl2 / slx))
                if new_l != L[i]:
                    slx += w * x[i] * F(new_l)
                    sl2 += w * F(new_l) * F(new_l)
                    if slx * slx * suml2 > sumlx * sumlx * sl2:
                        L[i] = new_l & 0xFF
                        sumlx = slx
                        suml2 = sl2
                        n_changed += 1
        if n_changed == 0:
            break
    return sumlx / suml2 if suml2 > F(0.0) else F(0.0)


@inline
def best_index_int8(values, x):
    """Index of the table value nearest to `x` (16 ascending int8 values, ties upward)."""
    n = values.shape[0]
    if x <= F(values[0]):
        return 0
    if x >= F(values[n - 1]):
        return n - 1
    ml = 0
    mu = n - 1
    while mu - ml > 1:
        mav = (ml + mu) // 2
        if x < F(values[mav]):
            mu = mav
        else:
            ml = mav
    return mu - 1 if x - F(values[mu - 1]) < F(values[mu]) - x else mu
