"""Decoders of ggml's 256-value grid and ternary types (iq1_s … iq4_xs, tq1_0, tq2_0), as
`dequantize_row_*` in ggml-quants.c computes them (same float operations and order, see `_jit`).

Grids are passed as byte tables, `(entries, 8)` or `(entries, 4)`; signs as ksigns_iq2xs."""

from __future__ import annotations

import numpy as np

from ._dequant_small import half, word32
from ._jit import F, f16_value, inline, jit

__all__ = ["dq_iq1_m", "dq_iq1_s", "dq_iq2_s", "dq_iq2_xs", "dq_iq2_xxs", "dq_iq3_s"]
__all__ += ["dq_iq3_xxs", "dq_iq4_xs", "dq_tq1_0", "dq_tq2_0"]


@inline
def signed(v, signs, j):
    return v * (F(-1.0) if signs & (1 << j) else F(1.0))


@jit
def dq_iq2_xxs(raw, out, grid, ksigns):
    for b in range(raw.shape[0]):
        d = half(raw, b, 0)
        for ib in range(8):
            aux1 = word32(raw, b, 2 + 8 * ib + 4)
            db = d * (F(0.5) + F(aux1 >> 28)) * F(0.25)
            for lane in range(4):
                g = raw[b, 2 + 8 * ib + lane]
                signs = ksigns[(aux1 >> (7 * lane)) & 127]
                for j in range(8):
                    out[b, ib * 32 + lane * 8 + j] = signed(db * F(grid[g, j]), signs, j)


@jit
def dq_iq2_xs(raw, out, grid, ksigns):
    for b in range(raw.shape[0]):
        d = half(raw, b, 0)
        for ib in range(8):
            sc = np.int64(raw[b, 66 + ib])
            db0 = d * (F(0.5) + F(sc & 0xF)) * F(0.25)
            db1 = d * (F(0.5) + F(sc >> 4)) * F(0.25)
            for lane in range(4):
                off = 2 + 8 * ib + 2 * lane
                q = np.int64(raw[b, off]) | (np.int64(raw[b, off + 1]) << 8)
                signs = ksigns[q >> 9]
                db = db0 if lane < 2 else db1
                for j in range(8):
                    out[b, ib * 32 + lane * 8 + j] = signed(db * F(grid[q & 511, j]), signs, j)


@jit
def dq_iq2_s(raw, out, grid):
    for b in range(raw.shape[0]):
        d = half(raw, b, 0)
        for ib in range(8):
            sc = np.int64(raw[b, 74 + ib])
            db0 = d * (F(0.5) + F(sc & 0xF)) * F(0.25)
            db1 = d * (F(0.5) + F(sc >> 4)) * F(0.25)
            qh = np.int64(raw[b, 66 + ib])
            for lane in range(4):
                g = np.int64(raw[b, 2 + 4 * ib + lane]) | ((qh << (8 - 2 * lane)) & 0x300)
                signs = raw[b, 34 + 4 * ib + lane]
                dl = db0 if lane < 2 else db1
                for j in range(8):
                    out[b, ib * 32 + lane * 8 + j] = signed(dl * F(grid[g, j]), signs, j)


@jit
def dq_iq3_xxs(raw, out, grid, ksigns):
    for b in range(raw.shape[0]):
        d = half(raw, b, 0)
        for ib in range(8):
            aux = word32(raw, b, 66 + 4 * ib)
            db = d * (F(0.5) + F(aux >> 28)) * F(0.5)
            for lane in range(4):
                signs = ksigns[(aux >> (7 * lane)) & 127]
                g1 = raw[b, 2 + 8 * ib + 2 * lane]
                g2 = raw[b, 2 + 8 * ib + 2 * lane + 1]
                base = ib * 32 + lane * 8
                for j in range(4):
                    out[b, base + j] = signed(db * F(grid[g1, j]), signs, j)
                    out[b, base + j + 4] = signed(db * F(grid[g2, j]), signs, j + 4)


@jit
def dq_iq3_s(raw, out, grid):
    for b in range(raw.shape[0]):
        d = half(raw, b, 0)
        for ib in range(8):
            sc = np.int64(raw[b, 106 + ib // 2])
            nib = sc & 0xF if ib % 2 == 0 else sc >> 4
            db = d * F(1 + 2 * nib)
            qh = np.int64(raw[b, 66 + ib])
            for lane in range(4):
                q1 = np.int64(raw[b, 2 + 8 * ib + 2 * lane])
                q2 = np.int64(raw[b, 2 + 8 * ib + 2 * lane + 1])
                g1 = q1 | ((qh << (8 - 2 * lane)) & 256)
                g2 = q2 | ((qh << (7 - 2 * lane)) & 256)
                signs = raw[b, 74 + 4 * ib + lane]
                base = ib * 32 + lane * 8
                for j in range(4):
                    out[b, base + j] = signed(db * F(grid[g1, j]), signs, j)
                    out[b, base + j + 4] = signed(db * F(grid[g2, j]), signs, j + 4)


@jit
def dq_iq1_s(raw, out, grid):
    for b in range(raw.shape[0]):
        d = half(raw, b, 0)
        for ib in range(8):
            qh = np.int64(raw[b, 34 + 2 * ib]) | (np.int64(raw[b, 35 + 2 * ib]) << 8)
            dl = d * F(2 * ((qh >> 12) & 7) + 1)
            delta = F(-0.125) if qh & 0x8000 else F(0.125)
            for lane in range(4):
                g = np.int64(raw[b, 2 + 4 * ib + lane]) | (((qh >> (3 * lane)) & 7) << 8)
                for j in range(8):
                    out[b, ib * 32 + lane * 8 + j] = dl * (F(grid[g, j]) + delta)


@jit
def dq_iq1_m(raw, out, grid):
    for b in range(raw.shape[0]):
        sc0 = np.int64(raw[b, 48]) | (np.int64(raw[b, 49]) << 8)
        sc1 = np.int64(raw[b, 50]) | (np.int64(raw[b, 51]) << 8)
        sc2 = np.int64(raw[b, 52]) | (np.int64(raw[b, 53]) << 8)
        sc3 = np.int64(raw[b, 54]) | (np.int64(raw[b, 55]) << 8)
        bits = (sc0 >> 12) | ((sc1 >> 8) & 0xF0) | ((sc2 >> 4) & 0xF00) | (sc3 & 0xF000)
        d = f16_value(bits)
        for ib in range(8):
            s = np.int64(raw[b, 48 + 2 * (ib // 2)]) | (np.int64(raw[b, 49 + 2 * (ib // 2)]) << 8)
            dl1 = d * F(2 * ((s >> (6 * (ib % 2))) & 7) + 1)
            dl2 = d * F(2 * ((s >> (6 * (ib % 2) + 3)) & 7) + 1)
            for lane in range(4):
                qh = np.int64(raw[b, 32 + 2 * ib + lane // 2])
                shift = 8 if lane % 2 == 0 else 4
                g = np.int64(raw[b, 4 * ib + lane]) | ((qh << shift) & 0x700)
                flag = 0x08 if lane % 2 == 0 else 0x80
                delta = F(-0.125) if qh & flag else F(0.125)
                dl = dl1 if lane < 2 else dl2
                for j in range(8):
                    out[b, ib * 32 + lane * 8 + j] = dl * (F(grid[g, j]) + delta)


@jit
def dq_iq4_xs(raw, out, kvalues):
    for b in range(raw.shape[0]):
        d = half(raw, b, 0)
        scales_h = np.int64(raw[b, 2]) | (np.int64(raw[b, 3]) << 8)
        for ib in range(8):
            lo = (np.int64(raw[b, 4 + ib // 2]) >> (4 * (ib % 2))) & 0xF
            ls = lo | (((scales_h >> (2 * ib)) & 3) << 4)
            dl = d * F(ls - 32)
            for j in range(16):
                q = raw[b, 8 + 16 * ib + j]
                out[b, ib * 32 + j] = dl * F(kvalues[q & 0xF])
                out[b, ib * 32 + j + 16] = dl * F(kvalues[q >> 4])


@inline
def trit(q, n):
    p = (np.int64(q) * (1, 3, 9, 27, 81, 243)[n]) & 0xFF
    return ((p * 3) >> 8) - 1


@jit
def dq_tq1_0(raw, out):
    for b in range(raw.shape[0]):
        d = half(raw, b, 52)
        for n in range(5):
            for m in range(32):
                out[b, n * 32 + m] = F(trit(raw[b, m], n)) * d
        for n in range(5):
            for m in range(16):
                out[b, 160 + n * 16 + m] = F(trit(raw[b, 32 + m], n)) * d
        for n in range(4):
            for j in range(4):
                out[b, 240 + n * 4 + j] = F(trit(raw[b, 48 + j], n)) * d


@jit
def dq_tq2_0(raw, out):
    for b in range(raw.shape[0]):
        d = half(raw, b, 64)
        for j in range(2):
            for lane in range(4):
                for m in range(32):
                    q = (np.int64(raw[b, j * 32 + m]) >> (2 * lane)) & 3
                    out[b, j * 128 + lane * 32 + m] = F(q - 1) * d
