"""Encoders of the 32-value block types as llama-quantize runs them: q4_0, q4_1, q5_0, q5_1,
q8_0 (`quantize_row_*_ref`, or `quantize_row_*_impl` with an importance matrix) and iq4_nl /
iq4_xs (`quantize_row_iq4_nl_impl` with ntry 7, as `quantize_iq4_nl`/`quantize_iq4_xs` call it).

Same kernel conventions as `_quant_k` (float32 rows in, block bytes out, C float semantics)."""

from __future__ import annotations

import numpy as np

from ._jit import F, f16_bits, inline, jit, nearest_int, to_i32, wrap8
from ._make_quants import (
    GROUP_MAX_EPS,
    best_index_int8,
    make_qkx3_quants,
    make_qx_quants,
)
from ._quant_k import put_half

__all__ = ["LEGACY_KERNELS", "iq4_nl_rows", "iq4_xs_rows", "legacy_rows"]


@jit
def _roundf(v):
    """C roundf: halves away from zero."""
    t = np.trunc(v)
    if abs(v - t) >= F(0.5):
        t += F(1.0) if v > F(0.0) else F(-1.0)
    return t


@jit
def _put_q5(out, r, bo, qo, lo, hi):
    """Store two 32-value halves' 5-bit codes: nibbles at `qo`, the fifth bits as u32 at bo+2."""
    qh = np.int64(0)
    for j in range(16):
        out[r, qo + j] = (lo[j] & 0x0F) | ((lo[j + 16] & 0x0F) << 4)
        qh |= ((lo[j] & 0x10) >> 4) << j
        qh |= ((lo[j + 16] & 0x10) >> 4) << (j + 16)
    for k in range(4):
        out[r, hi + k] = (qh >> (8 * k)) & 0xFF


@inline
def _ref_block(kind, x, xo, out, r, bo, codes):
    """quantize_row_{q4_0,q4_1,q5_0,q5_1,q8_0}_ref for one block of 32."""
    if kind == 8:
        amax = F(0.0)
        for j in range(32):
            a = abs(x[xo + j])
            amax = amax if amax > a else a
        d = amax / F(127.0)
        idv = F(1.0) / d if d != F(0.0) else F(0.0)
        put_half(out, r, bo, f16_bits(d))
        for j in range(32):
            out[r, bo + 2 + j] = wrap8(to_i32(_roundf(x[xo + j] * idv))) & 0xFF
        return
    if kind == 4 or kind == 5:  # symmetric: d = max / -8 (q4_0) or -16 (q5_0)
        amax = F(0.0)
        mx = F(0.0)
        for j in range(32):
            if amax < abs(x[xo + j]):
                amax = abs(x[xo + j])
                mx = x[xo + j]
        d = mx / (F(-8.0) if kind == 4 else F(-16.0))
        mn = F(0.0)
    else:  # affine: (max - min) / 15 (q4_1) or / 31 (q5_1)
        mn = F(3.4028234663852886e38)
        mx = F(-3.4028234663852886e38)
        for j in range(32):
            v = x[xo + j]
            if v < mn:
                mn = v
            if v > mx:
                mx = v
        d = (mx - mn) / (F(15.0) if kind == 41 else F(31.0))
    idv = F(1.0) / d if d != F(0.0) else F(0.0)
    put_half(out, r, bo, f16_bits(d))
    if kind == 41 or kind == 51:
        put_half(out, r, bo + 2, f16_bits(mn))
    for j in range(32):
        v = (x[xo + j] - mn) * idv if kind >= 41 else x[xo + j] * idv
        if kind == 4:
            codes[j] = min(15, wrap8(to_i32(v + F(8.5)))) & 0xFF
        elif kind == 5:
            codes[j] = min(31, wrap8(to_i32(v + F(16.5)))) & 0xFF
        elif kind == 41:
            codes[j] = min(15, wrap8(to_i32(v + F(0.5)))) & 0xFF
        else:
            codes[j] = to_i32(v + F(0.5)) & 0xFF


@jit
def _imatrix_block(kind, x, xo, qw, sigma2, out, r, bo, codes, w, Laux, tmp):
    """quantize_row_{q4_0,q4_1,q5_0,q5_1}_impl for one block of 32 (weights from `qw`)."""
    for j in range(32):
        w[j] = qw[xo + j] * np.sqrt(sigma2 + x[xo + j] * x[xo + j])
    if kind == 4 or kind == 5:
        d = make_qx_quants(32, 8 if kind == 4 else 16, x, xo, codes, 0, 1, w, 0, True, tmp)
        put_half(out, r, bo, f16_bits(d))
    else:
        d, the_min = make_qkx3_quants(
            32,
            15 if kind == 41 else 31,
            x,
            xo,
            w,
            0,
            codes,
            0,
            Laux,
            tmp,
            F(-0.9),
            F(0.05),
            36,
            False,
        )
        put_half(out, r, bo, f16_bits(d))
        put_half(out, r, bo + 2, f16_bits(-the_min))


@inline
def legacy_rows(x, out, qw, has_qw, kind):
    """kind: 4 = q4_0, 41 = q4_1, 5 = q5_0, 51 = q5_1, 8 = q8_0 (never uses the imatrix);
    Inlined into one kernel per kind (below), so its branches on `kind` fold away."""
    size = 18 if kind == 4 else 20 if kind == 41 else 22 if kind == 5 else 24 if kind == 51 else 34
    codes = np.zeros(32, dtype=np.uint8)
    w = np.zeros(32, dtype=np.float32)
    Laux = np.zeros(32, dtype=np.uint8)
    tmp = np.zeros(3 * 32, dtype=np.float32)
    use_qw = has_qw and kind != 8
    for r in range(x.shape[0]):
        xr = x[r]
        sigma2 = F(0.0)
        if use_qw:
            sum_x2 = F(0.0)
            for j in range(x.shape[1]):
                sum_x2 += xr[j] * xr[j]
            sigma2 = sum_x2 / F(x.shape[1])
        for ib in range(x.shape[1] // 32):
            bo = ib * size
            if use_qw:
                _imatrix_block(kind, xr, 32 * ib, qw, sigma2, out, r, bo, codes, w, Laux, tmp)
            else:
                _ref_block(kind, xr, 32 * ib, out, r, bo, codes)
            if kind == 4 or kind == 41:
                qo = bo + (2 if kind == 4 else 4)
                for j in range(16):
                    out[r, qo + j] = codes[j] | (codes[j + 16] << 4)
            elif kind == 5:
                _put_q5(out, r, bo, bo + 6, codes, bo + 2)
            elif kind == 51:
                _put_q5(out, r, bo, bo + 8, codes, bo + 4)


@jit
def _iq4_scale(x, xo, n, w, L, lo, values, ntry):
    """The best scale of one block of `n` values for the non-linear grid (0 for a zero block)."""
    amax = F(0.0)
    mx = F(0.0)
    for j in range(n):
        ax = abs(x[xo + j])
        if ax > amax:
            amax = ax
            mx = x[xo + j]
    if amax < F(GROUP_MAX_EPS):
        return F(0.0)
    d = -mx / F(values[0]) if ntry > 0 else mx / F(values[0])
    idv = F(1.0) / d
    sumqx = F(0.0)
    sumq2 = F(0.0)
    for j in range(n):
        li = best_index_int8(values, idv * x[xo + j])
        L[lo + j] = li
        q = F(values[li])
        sumqx += w[j] * q * x[xo + j]
        sumq2 += w[j] * q * q
    d = sumqx / sumq2 if sumq2 > F(0.0) else F(0.0)
    best = d * sumqx
    for itry in range(-ntry, ntry + 1):
        idv = F(itry + np.int64(values[0])) / mx
        sumqx = F(0.0)
        sumq2 = F(0.0)
        for j in range(n):
            q = F(values[best_index_int8(values, idv * x[xo + j])])
            sumqx += w[j] * q * x[xo + j]
            sumq2 += w[j] * q * q
        if sumq2 > F(0.0) and sumqx * sumqx > best * sumq2:
            d = sumqx / sumq2
            best = d * sumqx
    return d


@jit
def _iq4_super(x, xo, qw, wo, has_qw, sb, out, r, bo, L, w, scales, values):
    """quantize_row_iq4_nl_impl(sb, 32, …, ntry=7): one iq4_nl block (sb 32) or iq4_xs (256)."""
    sigma2 = F(0.0)
    for j in range(sb):
        sigma2 += x[xo + j] * x[xo + j]
    sigma2 *= F(2.0) / F(sb)
    max_scale = F(0.0)
    amax_scale = F(0.0)
    for ib in range(sb // 32):
        o = xo + 32 * ib
        for j in range(32):
            if has_qw:
                w[j] = qw[wo + 32 * ib + j] * np.sqrt(sigma2 + x[o + j] * x[o + j])
            else:
                w[j] = x[o + j] * x[o + j]
        d = _iq4_scale(x, o, 32, w, L, 32 * ib, values, 7)
        scales[ib] = d
        if abs(d) > amax_scale:
            amax_scale = abs(d)
            max_scale = d
    if sb == 32:
        put_half(out, r, bo, f16_bits(scales[0]))
        idv = F(1.0) / scales[0] if scales[0] != F(0.0) else F(0.0)
        for j in range(32):
            L[j] = best_index_int8(values, idv * x[xo + j])
        qo = bo + 2
    else:
        d = -max_scale / F(32.0)
        put_half(out, r, bo, f16_bits(d))
        idv = F(1.0) / d if d != F(0.0) else F(0.0)
        scales_h = np.int64(0)
        for ib in range(sb // 32):
            lv = max(-32, min(31, nearest_int(idv * scales[ib])))
            dl = d * F(lv)
            idl = F(1.0) / dl if dl != F(0.0) else F(0.0)
            for j in range(32):
                L[32 * ib + j] = best_index_int8(values, idl * x[xo + 32 * ib + j])
            lv += 32
            if ib % 2 == 0:
                out[r, bo + 4 + ib // 2] = lv & 0xF
            else:
                out[r, bo + 4 + ib // 2] |= (lv & 0xF) << 4
            scales_h |= (lv >> 4) << (2 * ib)
        out[r, bo + 2] = scales_h & 0xFF
        out[r, bo + 3] = (scales_h >> 8) & 0xFF
        qo = bo + 8
    for i in range(sb // 32):
        for j in range(16):
            out[r, qo + 16 * i + j] = L[32 * i + j] | (L[32 * i + 16 + j] << 4)


@inline
def iq4_rows(x, out, qw, has_qw, sb, values):
    """iq4_nl (sb = 32, 18-byte blocks) or iq4_xs (sb = 256, 136-byte blocks)."""
    size = 18 if sb == 32 else 136
    L = np.zeros(sb, dtype=np.uint8)
    w = np.zeros(32, dtype=np.float32)
    scales = np.zeros(sb // 32, dtype=np.float32)
    for r in range(x.shape[0]):
        xr = x[r]
        for ib in range(x.shape[1] // sb):
            _iq4_super(
                xr, sb * ib, qw, sb * ib, has_qw, sb, out, r, size * ib, L, w, scales, values
            )


@jit
def _q4_0_rows(x, out, qw, has_qw):
    legacy_rows(x, out, qw, has_qw, 4)


@jit
def _q4_1_rows(x, out, qw, has_qw):
    legacy_rows(x, out, qw, has_qw, 41)


@jit
def _q5_0_rows(x, out, qw, has_qw):
    legacy_rows(x, out, qw, has_qw, 5)


@jit
def _q5_1_rows(x, out, qw, has_qw):
    legacy_rows(x, out, qw, has_qw, 51)


@jit
def _q8_0_rows(x, out, qw, has_qw):
    legacy_rows(x, out, qw, has_qw, 8)


@jit
def iq4_nl_rows(x, out, qw, has_qw, values):
    iq4_rows(x, out, qw, has_qw, 32, values)


@jit
def iq4_xs_rows(x, out, qw, has_qw, values):
    iq4_rows(x, out, qw, has_qw, 256, values)


LEGACY_KERNELS = {
    "q4_0": _q4_0_rows,
    "q4_1": _q4_1_rows,
    "q5_0": _q5_0_rows,
    "q5_1": _q5_1_rows,
    "q8_0": _q8_0_rows,
}
