"""q2_k, q4_k and q5_k encoders: `quantize_q{2,4,5}_K` of ggml-quants.c, i.e. the `_ref` row
functions without an importance matrix and the `_impl` ones with it, as llama-quantize runs them.

Kernels take float32 rows `x (rows, ne0)`, write `out (rows, row_bytes)` and read the importance
`qw (ne0,)` when `has_qw`. Float operations and their order are C's (see `_jit`).
"""

from __future__ import annotations

import numpy as np

from ._dequant_k import scale_min_k4
from ._jit import F, f16_bits, f16_value, inline, jit, nearest_int
from ._make_quants import make_qkx2_quants, make_qkx3_quants, make_qp_quants

__all__ = ["put_half", "q2_k_rows", "q4_k_rows", "q5_k_rows", "requant_affine", "store_k4_scales"]


@jit
def put_half(out, r, off, h):
    out[r, off] = h & 0xFF
    out[r, off + 1] = (h >> 8) & 0xFF


@jit
def store_k4_scales(out, r, so, j, ls, lm):
    """Pack sub-block `j`'s 6-bit scale and min into the 12 bytes at `so` (j ascending)."""
    if j < 4:
        out[r, so + j] = ls & 0xFF
        out[r, so + j + 4] = lm & 0xFF
    else:
        out[r, so + j + 4] = ((ls & 0xF) | ((lm & 0xF) << 4)) & 0xFF
        out[r, so + j - 4] |= ((ls >> 4) << 6) & 0xFF
        out[r, so + j] |= ((lm >> 4) << 6) & 0xFF


@jit
def requant_affine(x, xo, out, r, bo, L, nmax, dh, dmh):
    """Levels of the 8 sub-blocks of 32 against the stored (fp16, 6-bit) scales and mins."""
    for j in range(8):
        sc, m = scale_min_k4(out, r, bo + 4, j)
        d = f16_value(dh) * F(sc)
        if d == F(0.0):
            continue
        dm = f16_value(dmh) * F(m)
        for ii in range(32):
            L[32 * j + ii] = max(0, min(nmax, nearest_int((x[xo + 32 * j + ii] + dm) / d)))


@jit
def _k4_block_ref(x, xo, out, r, bo, L, Laux, tmp, w, scales, mins, nmax, rmin, nstep):
    max_scale = F(0.0)
    max_min = F(0.0)
    for j in range(8):
        o = xo + 32 * j
        sum_x2 = F(0.0)
        for lane in range(32):
            sum_x2 += x[o + lane] * x[o + lane]
        av_x = np.sqrt(sum_x2 / F(32.0))
        for lane in range(32):
            w[lane] = av_x + abs(x[o + lane])
        sc, mn = make_qkx2_quants(
            32, nmax, x, o, w, 0, L, 32 * j, Laux, tmp, rmin, F(0.1), nstep, False
        )
        scales[j] = sc
        mins[j] = mn
        if sc > max_scale:
            max_scale = sc
        if mn > max_min:
            max_min = mn
    inv_scale = F(63.0) / max_scale if max_scale > F(0.0) else F(0.0)
    inv_min = F(63.0) / max_min if max_min > F(0.0) else F(0.0)
    for j in range(8):
        ls = min(63, nearest_int(inv_scale * scales[j]) & 0xFF)
        lm = min(63, nearest_int(inv_min * mins[j]) & 0xFF)
        store_k4_scales(out, r, bo + 4, j, ls, lm)
    dh = f16_bits(max_scale / F(63.0))
    dmh = f16_bits(max_min / F(63.0))
    put_half(out, r, bo, dh)
    put_half(out, r, bo + 2, dmh)
    requant_affine(x, xo, out, r, bo, L, nmax, dh, dmh)


@jit
def _k4_block_imatrix(x, xo, qw, out, r, bo, L, Laux, tmp, w, scales, mins, nmax, ls_, lm_, sw):
    sum_x2 = F(0.0)
    for lane in range(256):
        sum_x2 += x[xo + lane] * x[xo + lane]
    sigma2 = F(2.0) * sum_x2 / F(256.0)
    for j in range(8):
        o = xo + 32 * j
        for lane in range(32):
            w[lane] = qw[o + lane] * np.sqrt(sigma2 + x[o + lane] * x[o + lane])
        sumw = F(0.0)
        for lane in range(32):
            sumw += w[lane]
        sw[j] = sumw
        sc, mn = make_qkx3_quants(
            32, nmax, x, o, w, 0, L, 32 * j, Laux, tmp, F(-0.9), F(0.05), 36, False
        )
        scales[j] = sc
        mins[j] = mn
    d_block = make_qp_quants(8, 63, scales, ls_, sw)
    m_block = make_qp_quants(8, 63, mins, lm_, sw)
    for j in range(8):
        ls = np.int64(ls_[j])
        lm = np.int64(lm_[j])
        if nmax == 31:
            ls = min(63, ls)
            lm = min(63, lm)
        store_k4_scales(out, r, bo + 4, j, ls, lm)
    dh = f16_bits(d_block)
    dmh = f16_bits(m_block)
    put_half(out, r, bo, dh)
    put_half(out, r, bo + 2, dmh)
    requant_affine(x, xo, out, r, bo, L, nmax, dh, dmh)


@inline
def _k_rows(x, out, qw, has_qw, nmax, rmin, nstep, type_size):
    L = np.zeros(256, dtype=np.uint8)
    Laux = np.zeros(32, dtype=np.uint8)
    tmp = np.zeros(3 * 32, dtype=np.float32)
    w = np.zeros(32, dtype=np.float32)
    scales = np.zeros(8, dtype=np.float32)
    mins = np.zeros(8, dtype=np.float32)
    ls_ = np.zeros(8, dtype=np.uint8)
    lm_ = np.zeros(8, dtype=np.uint8)
    sw = np.zeros(8, dtype=np.float32)
    for r in range(x.shape[0]):
        xr = x[r]
        for i in range(x.shape[1] // 256):
            bo = i * type_size
            out[r, bo + 4 : bo + 16] = 0
            if has_qw:
                _k4_block_imatrix(
                    xr, 256 * i, qw, out, r, bo, L, Laux, tmp, w, scales, mins, nmax, ls_, lm_, sw
                )
            else:
                _k4_block_ref(
                    xr, 256 * i, out, r, bo, L, Laux, tmp, w, scales, mins, nmax, rmin, nstep
                )
            if nmax == 15:
                for n in range(4):
                    for lane in range(32):
                        out[r, bo + 16 + 32 * n + lane] = L[64 * n + lane] | (
                            L[64 * n + 32 + lane] << 4
                        )
            else:
                _pack_q5(out, r, bo, L)


@jit
def _pack_q5(out, r, bo, L):
    for j in range(32):
        out[r, bo + 16 + j] = 0
    for n in range(4):
        m1 = 1 << (2 * n)
        for j in range(32):
            l1 = np.int64(L[64 * n + j])
            l2 = np.int64(L[64 * n + j + 32])
            if l1 > 15:
                l1 -= 16
                out[r, bo + 16 + j] |= m1
            if l2 > 15:
                l2 -= 16
                out[r, bo + 16 + j] |= m1 << 1
            out[r, bo + 48 + 32 * n + j] = l1 | (l2 << 4)


@jit
def q4_k_rows(x, out, qw, has_qw):
    _k_rows(x, out, qw, has_qw, 15, F(-1.0), 20, 144)


@jit
def q5_k_rows(x, out, qw, has_qw):
    _k_rows(x, out, qw, has_qw, 31, F(-0.5), 15, 176)


@jit
def _q2_scales_ref(x, xo, out, r, bo, L, Laux, tmp, w, scales, mins):
    max_scale = F(0.0)
    max_min = F(0.0)
    for j in range(16):
        for lane in range(16):
            w[lane] = abs(x[xo + 16 * j + lane])
        sc, mn = make_qkx2_quants(
            16, 3, x, xo + 16 * j, w, 0, L, 16 * j, Laux, tmp, F(-0.5), F(0.1), 15, True
        )
        scales[j] = sc
        mins[j] = mn
        if sc > max_scale:
            max_scale = sc
        if mn > max_min:
            max_min = mn
    dh = 0
    dmh = 0
    for j in range(16):
        out[r, bo + j] = 0
    if max_scale > F(0.0):
        iscale = F(15.0) / max_scale
        for j in range(16):
            out[r, bo + j] = nearest_int(iscale * scales[j]) & 0xFF
        dh = f16_bits(max_scale / F(15.0))
    if max_min > F(0.0):
        iscale = F(15.0) / max_min
        for j in range(16):
            out[r, bo + j] = (
                np.int64(out[r, bo + j]) | (nearest_int(iscale * mins[j]) << 4)
            ) & 0xFF
        dmh = f16_bits(max_min / F(15.0))
    return dh, dmh


@jit
def _q2_scales_imatrix(x, xo, qw, out, r, bo, L, Laux, tmp, w, scales, mins, ls_, lm_, sw):
    sumx2 = F(0.0)
    for j in range(256):
        sumx2 += x[xo + j] * x[xo + j]
    sigma2 = sumx2 / F(256.0)
    for j in range(16):
        o = xo + 16 * j
        for lane in range(16):
            w[lane] = qw[o + lane] * np.sqrt(sigma2 + x[o + lane] * x[o + lane])
        acc = F(0.0)
        for lane in range(16):
            acc += w[lane]
        sw[j] = acc
        sc, mn = make_qkx3_quants(
            16, 3, x, o, w, 0, L, 16 * j, Laux, tmp, F(-0.9), F(0.05), 36, False
        )
        scales[j] = sc
        mins[j] = mn
    dm = make_qp_quants(16, 15, scales, ls_, sw)
    mm = make_qp_quants(16, 15, mins, lm_, sw)
    for j in range(16):
        out[r, bo + j] = (np.int64(ls_[j]) | (np.int64(lm_[j]) << 4)) & 0xFF
    return f16_bits(dm), f16_bits(mm)


@jit
def q2_k_rows(x, out, qw, has_qw):
    L = np.zeros(256, dtype=np.uint8)
    Laux = np.zeros(16, dtype=np.uint8)
    tmp = np.zeros(3 * 16, dtype=np.float32)
    w = np.zeros(16, dtype=np.float32)
    scales = np.zeros(16, dtype=np.float32)
    mins = np.zeros(16, dtype=np.float32)
    ls_ = np.zeros(16, dtype=np.uint8)
    lm_ = np.zeros(16, dtype=np.uint8)
    sw = np.zeros(16, dtype=np.float32)
    for r in range(x.shape[0]):
        xr = x[r]
        for i in range(x.shape[1] // 256):
            bo = i * 84
            if has_qw:
                dh, dmh = _q2_scales_imatrix(
                    xr, 256 * i, qw, out, r, bo, L, Laux, tmp, w, scales, mins, ls_, lm_, sw
                )
            else:
                dh, dmh = _q2_scales_ref(xr, 256 * i, out, r, bo, L, Laux, tmp, w, scales, mins)
            put_half(out, r, bo + 80, dh)
            put_half(out, r, bo + 82, dmh)
            for j in range(16):
                s = np.int64(out[r, bo + j])
                d = f16_value(dh) * F(s & 0xF)
                if d == F(0.0):
                    continue
                dm = f16_value(dmh) * F(s >> 4)
                for ii in range(16):
                    v = nearest_int((xr[256 * i + 16 * j + ii] + dm) / d)
                    L[16 * j + ii] = max(0, min(3, v))
            for h in range(2):
                for lane in range(32):
                    o = 128 * h + lane
                    out[r, bo + 16 + 32 * h + lane] = (
                        L[o] | (L[o + 32] << 2) | (L[o + 64] << 4) | (L[o + 96] << 6)
                    )
