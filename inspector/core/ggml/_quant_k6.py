"""q3_k and q6_k encoders (symmetric k-quants): `quantize_q3_K` / `quantize_q6_K` of
ggml-quants.c, the `_ref` rows without an importance matrix and `_impl` with it.

Same kernel conventions as `_quant_k` (float32 rows in, block bytes out, C float semantics)."""

from __future__ import annotations

import numpy as np

from ._dequant_k import q3_scale
from ._jit import F, f16_bits, f16_value, inline, jit, nearest_int, wrap8
from ._make_quants import GROUP_MAX_EPS, make_q3_quants, make_qx_quants
from ._quant_k import put_half

__all__ = ["q3_k_rows", "q6_k_rows"]


@jit
def _q3_store_scale(out, r, so, j, lv):
    if j < 8:
        out[r, so + j] = lv & 0xF
    else:
        out[r, so + j - 8] |= (lv & 0xF) << 4
    out[r, so + 8 + j % 4] |= ((lv >> 4) << (2 * (j // 4))) & 0xFF


@jit
def _q3_scales_ref(x, xo, out, r, bo, L, scales):
    max_scale = F(0.0)
    amax = F(0.0)
    for j in range(16):
        scales[j] = make_q3_quants(16, 4, x, xo + 16 * j, L, 16 * j, True)
        scale = abs(scales[j])
        if scale > amax:
            amax = scale
            max_scale = scales[j]
    if max_scale == F(0.0):
        return 0
    iscale = F(-32.0) / max_scale
    for j in range(16):
        lv = max(-32, min(31, wrap8(nearest_int(iscale * scales[j])))) + 32
        _q3_store_scale(out, r, bo + 96, j, lv)
    return f16_bits(F(1.0) / iscale)


@jit
def _q3_scales_imatrix(x, xo, qw, out, r, bo, L, scales, w, sw, ls_, tmp):
    sumx2 = F(0.0)
    for j in range(256):
        sumx2 += x[xo + j] * x[xo + j]
    sigma2 = F(2.0) * sumx2 / F(256.0)
    for j in range(16):
        o = xo + 16 * j
        for lane in range(16):
            w[lane] = qw[o + lane] * np.sqrt(sigma2 + x[o + lane] * x[o + lane])
        sumw = F(0.0)
        for lane in range(16):
            sumw += w[lane]
        sw[j] = sumw
        scales[j] = make_qx_quants(16, 4, x, o, L, 16 * j, 1, w, 0, True, tmp)
    d_block = make_qx_quants(16, 32, scales, 0, ls_, 0, 1, sw, 0, True, tmp)
    for j in range(16):
        _q3_store_scale(out, r, bo + 96, j, np.int64(ls_[j]))
    return f16_bits(d_block)


@jit
def q3_k_rows(x, out, qw, has_qw):
    L = np.zeros(256, dtype=np.int8)
    tmp = np.zeros(32, dtype=np.float32)
    scales = np.zeros(16, dtype=np.float32)
    w = np.zeros(16, dtype=np.float32)
    sw = np.zeros(16, dtype=np.float32)
    ls_ = np.zeros(16, dtype=np.int8)
    for r in range(x.shape[0]):
        xr = x[r]
        for i in range(x.shape[1] // 256):
            bo = i * 110
            out[r, bo : bo + 110] = 0
            if has_qw:
                dh = _q3_scales_imatrix(xr, 256 * i, qw, out, r, bo, L, scales, w, sw, ls_, tmp)
            else:
                dh = _q3_scales_ref(xr, 256 * i, out, r, bo, L, scales)
            put_half(out, r, bo + 108, dh)
            for j in range(16):
                d = f16_value(dh) * F(q3_scale(out, r, bo + 96, j))
                if d == F(0.0):
                    continue
                for ii in range(16):
                    v = nearest_int(xr[256 * i + 16 * j + ii] / d)
                    L[16 * j + ii] = max(-4, min(3, v)) + 4
            _pack_q3(out, r, bo, L)


@jit
def _pack_q3(out, r, bo, L):
    m = 0
    hm = 1
    for j in range(256):
        if L[j] > 3:
            out[r, bo + m] |= hm
            L[j] -= 4
        m += 1
        if m == 32:
            m = 0
            hm <<= 1
    for h in range(2):
        for lane in range(32):
            o = 128 * h + lane
            q = L[o] | (L[o + 32] << 2) | (L[o + 64] << 4) | (L[o + 96] << 6)
            out[r, bo + 32 + 32 * h + lane] = q & 0xFF


@jit
def q6_k_rows(x, out, qw, has_qw):
    """Two compiled paths: the per-value imatrix test would stop the loops vectorizing."""
    if has_qw:
        _q6_k_rows(x, out, qw, True)
    else:
        _q6_k_rows(x, out, qw, False)


@inline
def _q6_k_rows(x, out, qw, has_qw):
    L = np.zeros(256, dtype=np.int8)
    tmp = np.zeros(32, dtype=np.float32)
    scales = np.zeros(16, dtype=np.float32)
    for r in range(x.shape[0]):
        xr = x[r]
        for i in range(x.shape[1] // 256):
            bo = i * 210
            xo = 256 * i
            max_scale = F(0.0)
            max_abs_scale = F(0.0)
            for ib in range(16):
                scale = make_qx_quants(
                    16, 32, xr, xo + 16 * ib, L, 16 * ib, 1, qw, xo + 16 * ib, has_qw, tmp
                )
                scales[ib] = scale
                if abs(scale) > max_abs_scale:
                    max_abs_scale = abs(scale)
                    max_scale = scale
            out[r, bo : bo + 210] = 0
            if max_abs_scale < F(GROUP_MAX_EPS):
                continue
            iscale = F(-128.0) / max_scale
            dh = f16_bits(F(1.0) / iscale)
            put_half(out, r, bo + 208, dh)
            for ib in range(16):
                out[r, bo + 192 + ib] = min(127, nearest_int(iscale * scales[ib])) & 0xFF
            for j in range(16):
                d = f16_value(dh) * F(wrap8(np.int64(out[r, bo + 192 + j])))
                if d == F(0.0):
                    continue
                for ii in range(16):
                    v = nearest_int(xr[xo + 16 * j + ii] / d)
                    L[16 * j + ii] = max(-32, min(31, v)) + 32
            _pack_q6(out, r, bo, L)


@jit
def _pack_q6(out, r, bo, L):
    for h in range(2):
        for lane in range(32):
            o = 128 * h + lane
            q1 = np.int64(L[o])
            q2 = np.int64(L[o + 32])
            q3 = np.int64(L[o + 64])
            q4 = np.int64(L[o + 96])
            out[r, bo + 64 * h + lane] = (q1 & 0xF) | ((q3 & 0xF) << 4)
            out[r, bo + 64 * h + lane + 32] = (q2 & 0xF) | ((q4 & 0xF) << 4)
            hi = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)
            out[r, bo + 128 + 32 * h + lane] = hi & 0xFF
