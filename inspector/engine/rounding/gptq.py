"""GPTQ: rounding with error feedback from the layer's inputs (Frantar et al. 2022, "GPTQ:
Accurate Post-Training Quantization for Generative Pre-trained Transformers"; reference
`IST-DASLab/gptq` `gptq.py` `GPTQ.fasterquant`, and AutoGPTQ's port of it).

A linear map `y = W x` (W: rows × columns, one column per input feature) is quantized column by
column; the error each column's rounding makes on the output, measured through the inputs'
second moments H = 2·X·Xᵀ / n, is pushed onto the columns not yet quantized (the Optimal Brain
Surgeon update), so the output error ‖WX − ŴX‖² is what is minimised, not ‖W − Ŵ‖².
As in the reference: H is damped by `percdamp`·mean(diag H), the update uses the upper
Cholesky factor of H⁻¹ (from one factorisation, see `upper_inverse_cholesky`), columns go in
blocks of 128 with the block's accumulated error applied to the rest at once (the "lazy batch"
update), and act-order optionally quantizes the columns with the largest diag H first (then the
permutation is undone).

Differences from the reference, on purpose:
- The grid is fixed beforehand (`Grid`: the scheme's own parameters, fitted as `encode` does;
  the reference's `static_groups`), so GPTQ only chooses codes and every writer stores them.
- Dead columns (an input that is always 0 on the data, diag H = 0) keep their weight and get
  the nearest code; the reference zeroes their weight first. Either way they are decoupled
  from the others (no error flows in or out); keeping the weight keeps the layer's behaviour
  on inputs the sample did not exercise.
- Layers are batched: `W` is `(G, rows, columns)` with one `H` per group, for grouped and
  depthwise convolutions (each channel its own small linear map).
- If the damped H is not positive definite in float64, the damping grows ×10 (up to 4 times)
  before giving up (`GptqError`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BLOCK",
    "PERCDAMP",
    "GptqError",
    "Grid",
    "HessianSum",
    "gptq_codes",
    "nearest_codes",
    "upper_inverse_cholesky",
]

BLOCK = 128
PERCDAMP = 0.01


class GptqError(ArithmeticError):
    """The damped Hessian could not be factorised."""


@dataclass(frozen=True)
class Grid:
    """Per-element grid of W `(G, rows, columns)`: code = clip(rint((w − offset)/step), lo, hi),
    value = code·step + offset. `step`/`offset` broadcast against W; a zero step (an all-zero
    int4 group) means code 0, value `offset`."""

    step: np.ndarray
    offset: np.ndarray
    lo: int
    hi: int

    def quantize(self, w: np.ndarray, step: np.ndarray, offset: np.ndarray) -> np.ndarray:
        safe = np.where(step > 0, step, 1.0)
        q = np.clip(np.rint((w - offset) / safe), self.lo, self.hi)
        return np.where(step > 0, q, 0.0)


class HessianSum:
    """Running H = 2/n · Σ x xᵀ (float64) of inputs `(n, G, columns)`, one H per group."""

    def __init__(self, groups: int, columns: int) -> None:
        self.h = np.zeros((groups, columns, columns), dtype=np.float64)
        self.n = 0

    def add(self, x: np.ndarray) -> None:
        """Add a batch of `n` input vectors `(n, G, columns)`. The batch's product is taken in
        the inputs' precision (float32 activations: as the reference does) and added in float64.
        """
        if x.shape[0] == 0:
            return
        x = np.asarray(x)
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float32)
        total = self.n + x.shape[0]
        if x.shape[1] == 1:  # one map: a plain BLAS product
            flat = x[:, 0, :]
            product = (flat.T @ flat)[None]
        else:  # many small maps (depthwise): einsum beats a stacked matmul here
            product = np.einsum("ngk,ngl->gkl", x, x, optimize=True)
        self.h *= self.n / total
        self.h += (2.0 / total) * product
        self.n = total


def nearest_codes(w: np.ndarray, grid: Grid) -> np.ndarray:
    """The codes plain rounding gives (the baseline GPTQ is compared with)."""
    step, offset = np.broadcast_arrays(grid.step, grid.offset, np.asarray(w))[:2]
    return grid.quantize(np.asarray(w, dtype=np.float64), step, offset).astype(np.int64)


def _upper_inverse(v: np.ndarray) -> np.ndarray:
    """Inverse of upper-triangular matrices `(G, K, K)` by 2×2 blocks,
    [[A, B], [0, D]]⁻¹ = [[A⁻¹, −A⁻¹·B·D⁻¹], [0, D⁻¹]]: matrix products only, about a sixth
    of the work of a general inverse, and exactly triangular."""
    k = v.shape[-1]
    if k <= 64:
        return np.triu(np.linalg.inv(v))
    h = k // 2
    a_inv, d_inv = _upper_inverse(v[:, :h, :h]), _upper_inverse(v[:, h:, h:])
    out = np.zeros_like(v)
    out[:, :h, :h], out[:, h:, h:] = a_inv, d_inv
    out[:, :h, h:] = -(a_inv @ v[:, :h, h:]) @ d_inv
    return out


def upper_inverse_cholesky(h: np.ndarray, percdamp: float = PERCDAMP) -> np.ndarray:
    """Upper Cholesky factor U (H⁻¹ = UᵀU) of the damped inverse of each H `(G, K, K)`.

    The reference factors H, inverts, and factors H⁻¹ again. One factorisation does: with P
    the reversal permutation and P·H·P = L·Lᵀ, V = P·L·P is upper triangular and H = V·Vᵀ, so
    H⁻¹ = (V⁻¹)ᵀ·V⁻¹ and U = V⁻¹ (upper, positive diagonal: the unique factor)."""
    k = h.shape[-1]
    eye = np.eye(k)
    damp = percdamp * np.mean(np.diagonal(h, axis1=1, axis2=2), axis=1)
    for _ in range(5):
        try:
            damped = h + damp[:, None, None] * eye
            lower = np.linalg.cholesky(damped[:, ::-1, ::-1])
            return _upper_inverse(np.ascontiguousarray(lower[:, ::-1, ::-1]))
        except np.linalg.LinAlgError:
            damp = damp * 10.0 + (damp == 0)
    raise GptqError("the layer's input Hessian is not positive definite even when damped")


def gptq_codes(
    w: np.ndarray,
    h: np.ndarray,
    grid: Grid,
    *,
    block: int = BLOCK,
    percdamp: float = PERCDAMP,
    act_order: bool = False,
) -> np.ndarray:
    """GPTQ's codes (int64, shaped like `w` `(G, rows, K)`) on `grid` for inputs whose
    H is `h` `(G, K, K)`."""
    w = np.array(w, dtype=np.float64)
    k = w.shape[2]
    step = np.array(np.broadcast_to(grid.step, w.shape), dtype=np.float64)
    offset = np.array(np.broadcast_to(grid.offset, w.shape), dtype=np.float64)
    h = np.array(h, dtype=np.float64)
    diag = np.diagonal(h, axis1=1, axis2=2)
    dead = diag == 0
    g_idx, k_idx = np.nonzero(dead)
    h[g_idx, k_idx, k_idx] = 1.0
    perm = None
    if act_order:
        perm = np.argsort(-np.diagonal(h, axis1=1, axis2=2), axis=1, kind="stable")
        take = perm[:, None, :]
        w, step, offset = (np.take_along_axis(a, take, axis=2) for a in (w, step, offset))
        h = np.take_along_axis(np.take_along_axis(h, perm[:, :, None], 1), take, 2)
    u = upper_inverse_cholesky(h, percdamp)
    codes = np.empty(w.shape, dtype=np.float64)
    for i1 in range(0, k, block):
        i2 = min(i1 + block, k)
        w1 = w[:, :, i1:i2].copy()
        err1 = np.zeros_like(w1)
        u1 = u[:, i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = i1 + i
            q = grid.quantize(w1[:, :, i], step[:, :, col], offset[:, :, col])
            codes[:, :, col] = q
            value = np.where(step[:, :, col] > 0, q * step[:, :, col], 0.0) + offset[:, :, col]
            err = (w1[:, :, i] - value) / u1[:, i, i][:, None]
            w1[:, :, i:] -= err[:, :, None] * u1[:, None, i, i:]
            err1[:, :, i] = err
        w[:, :, i2:] -= err1 @ u[:, i1:i2, i2:]
    if perm is not None:
        codes = np.take_along_axis(codes, np.argsort(perm, axis=1)[:, None, :], axis=2)
    return codes.astype(np.int64)
