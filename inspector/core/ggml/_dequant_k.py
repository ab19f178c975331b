"""Decoders of ggml's 256-value k-quant super-blocks (q2_k … q8_k), as `dequantize_row_*_K`
in ggml-quants.c computes them (same float operations in the same order, see `_jit`)."""

from __future__ import annotations

import numpy as np

from ._dequant_small import half
from ._jit import F, bits_f32, inline, jit

__all__ = ["KERNELS", "q3_scale", "scale_min_k4"]


@inline
def scale_min_k4(raw, b, off, j):
    """get_scale_min_k4: the 6-bit scale and min of sub-block `j` from 12 bytes at `off`."""
    if j < 4:
        return np.int64(raw[b, off + j]) & 63, np.int64(raw[b, off + j + 4]) & 63
    hi = np.int64(raw[b, off + j + 4])
    sc = (hi & 0xF) | ((np.int64(raw[b, off + j - 4]) >> 6) << 4)
    m = (hi >> 4) | ((np.int64(raw[b, off + j]) >> 6) << 4)
    return sc, m


@inline
def q3_scale(raw, b, off, j):
    """The signed 6-bit scale of q3_k sub-block `j` from the 12 bytes at `off`."""
    lo = np.int64(raw[b, off + j]) & 0xF if j < 8 else np.int64(raw[b, off + j - 8]) >> 4
    hi = (np.int64(raw[b, off + 8 + j % 4]) >> (2 * (j // 4))) & 3
    return (lo | (hi << 4)) - 32


@jit
def dq_q2_k(raw, out):
    for b in range(raw.shape[0]):
        d = half(raw, b, 80)
        dmin = half(raw, b, 82)
        for n in range(2):
            for j in range(4):
                for h in range(2):
                    sc = np.int64(raw[b, n * 8 + j * 2 + h])
                    dl = d * F(sc & 0xF)
                    ml = dmin * F(sc >> 4)
                    base = n * 128 + j * 32 + h * 16
                    for lane in range(16):
                        q = (np.int64(raw[b, 16 + n * 32 + h * 16 + lane]) >> (2 * j)) & 3
                        out[b, base + lane] = dl * F(q) - ml


@jit
def dq_q3_k(raw, out):
    for b in range(raw.shape[0]):
        d_all = half(raw, b, 108)
        for n in range(2):
            for j in range(4):
                m = 1 << (n * 4 + j)
                for h in range(2):
                    dl = d_all * F(q3_scale(raw, b, 96, n * 8 + j * 2 + h))
                    base = n * 128 + j * 32 + h * 16
                    for lane in range(16):
                        lq = (np.int64(raw[b, 32 + n * 32 + h * 16 + lane]) >> (2 * j)) & 3
                        hq = 0 if np.int64(raw[b, h * 16 + lane]) & m else 4
                        out[b, base + lane] = dl * F(lq - hq)


@jit
def dq_q4_k(raw, out):
    for b in range(raw.shape[0]):
        d = half(raw, b, 0)
        dmin = half(raw, b, 2)
        for n in range(4):
            sc1, m1 = scale_min_k4(raw, b, 4, 2 * n)
            sc2, m2 = scale_min_k4(raw, b, 4, 2 * n + 1)
            d1 = d * F(sc1)
            dm1 = dmin * F(m1)
            d2 = d * F(sc2)
            dm2 = dmin * F(m2)
            for lane in range(32):
                q = raw[b, 16 + n * 32 + lane]
                out[b, n * 64 + lane] = d1 * F(q & 0xF) - dm1
                out[b, n * 64 + 32 + lane] = d2 * F(q >> 4) - dm2


@jit
def dq_q5_k(raw, out):
    for b in range(raw.shape[0]):
        d = half(raw, b, 0)
        dmin = half(raw, b, 2)
        for n in range(4):
            sc1, m1 = scale_min_k4(raw, b, 4, 2 * n)
            sc2, m2 = scale_min_k4(raw, b, 4, 2 * n + 1)
            d1 = d * F(sc1)
            dm1 = dmin * F(m1)
            d2 = d * F(sc2)
            dm2 = dmin * F(m2)
            u1 = 1 << (2 * n)
            for lane in range(32):
                ql = np.int64(raw[b, 48 + n * 32 + lane])
                qh = np.int64(raw[b, 16 + lane])
                hi1 = 16 if qh & u1 else 0
                hi2 = 16 if qh & (u1 << 1) else 0
                out[b, n * 64 + lane] = d1 * F((ql & 0xF) + hi1) - dm1
                out[b, n * 64 + 32 + lane] = d2 * F((ql >> 4) + hi2) - dm2


@jit
def dq_q6_k(raw, out):
    for b in range(raw.shape[0]):
        d = half(raw, b, 208)
        for n in range(2):
            for lane in range(32):
                is_ = n * 8 + lane // 16
                ql0 = np.int64(raw[b, n * 64 + lane])
                ql1 = np.int64(raw[b, n * 64 + 32 + lane])
                qh = np.int64(raw[b, 128 + n * 32 + lane])
                q1 = ((ql0 & 0xF) | (((qh >> 0) & 3) << 4)) - 32
                q2 = ((ql1 & 0xF) | (((qh >> 2) & 3) << 4)) - 32
                q3 = ((ql0 >> 4) | (((qh >> 4) & 3) << 4)) - 32
                q4 = ((ql1 >> 4) | (((qh >> 6) & 3) << 4)) - 32
                base = n * 128 + lane
                out[b, base] = d * F(np.int8(raw[b, 192 + is_])) * F(q1)
                out[b, base + 32] = d * F(np.int8(raw[b, 192 + is_ + 2])) * F(q2)
                out[b, base + 64] = d * F(np.int8(raw[b, 192 + is_ + 4])) * F(q3)
                out[b, base + 96] = d * F(np.int8(raw[b, 192 + is_ + 6])) * F(q4)


@jit
def dq_q8_k(raw, out):
    for b in range(raw.shape[0]):
        w = np.int64(raw[b, 0]) | (np.int64(raw[b, 1]) << 8) | (np.int64(raw[b, 2]) << 16)
        w |= np.int64(raw[b, 3]) << 24
        d = bits_f32(np.int32(w - ((w >> 31) << 32)))
        for j in range(256):
            out[b, j] = d * F(np.int8(raw[b, 4 + j]))


KERNELS = {
    "q2_k": dq_q2_k,
    "q3_k": dq_q3_k,
    "q4_k": dq_q4_k,
    "q5_k": dq_q5_k,
    "q6_k": dq_q6_k,
    "q8_k": dq_q8_k,
}
