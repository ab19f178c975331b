"""GPTQ on plain arrays: it lowers the output error of a linear layer, keeps codes on the grid,
undoes act-order, leaves dead columns at their nearest codes."""

from __future__ import annotations

import numpy as np
import pytest

from inspector.engine.rounding.gptq import (
    Grid,
    HessianSum,
    gptq_codes,
    nearest_codes,
    upper_inverse_cholesky,
)


def _layer(seed: int, rows: int = 24, cols: int = 48, n: int = 600):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(cols, cols)) / np.sqrt(cols)
    x = rng.normal(size=(n, cols)) @ mix + 0.3 * rng.normal(size=(n, cols))
    w = rng.normal(0, 0.2, size=(1, rows, cols))
    return x, w


def _hessian(x: np.ndarray) -> np.ndarray:
    acc = HessianSum(1, x.shape[1])
    acc.add(x[:, None, :])
    return acc.h


def _output_error(x, w, codes, grid) -> float:
    step = np.broadcast_to(grid.step, w.shape)
    offset = np.broadcast_to(grid.offset, w.shape)
    w_hat = codes * step + offset
    return float(np.linalg.norm(x @ (w[0] - w_hat[0]).T))


def _grids(w: np.ndarray) -> dict[str, Grid]:
    absmax = np.abs(w).max(axis=2, keepdims=True)
    lo, hi = float(w.min()), float(w.max())
    return {
        "int4 per row": Grid(absmax / 7, np.zeros(1), -7, 7),
        "affine3 per tensor": Grid(np.full((1, 1, 1), (hi - lo) / 7), np.full(1, lo), 0, 7),
        "int8 per row": Grid(absmax / 127, np.zeros(1), -127, 127),
    }


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("which", ["int4 per row", "affine3 per tensor", "int8 per row"])
@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_lowers_the_output_error_of_a_linear_layer(seed, which, act_order):
    x, w = _layer(seed)
    grid = _grids(w)[which]
    codes = gptq_codes(w, _hessian(x), grid, act_order=act_order)
    near = nearest_codes(w, grid)
    assert _output_error(x, w, codes, grid) < 0.9 * _output_error(x, w, near, grid)
    assert codes.min() >= grid.lo and codes.max() <= grid.hi
    assert codes.dtype == np.int64 and codes.shape == w.shape


def test_codes_clip_to_the_grid_when_feedback_pushes_past_it():
    x, w = _layer(7)
    grid = Grid(np.full((1, 1, 1), 0.01), np.zeros(1), -3, 3)  # far too narrow
    codes = gptq_codes(w, _hessian(x), grid)
    assert set(np.unique(codes)) <= set(range(-3, 4))
    assert (np.abs(codes) == 3).mean() > 0.5


def test_act_order_is_natural_order_on_permuted_columns_then_undone():
    x, w = _layer(3)
    h = _hessian(x * np.linspace(0.2, 3, x.shape[1]))  # distinct diagonal
    grid = _grids(w)["int4 per row"]
    perm = np.argsort(-np.diag(h[0]), kind="stable")
    step = np.broadcast_to(grid.step, w.shape)
    permuted = Grid(step[:, :, perm], grid.offset, grid.lo, grid.hi)
    manual = gptq_codes(w[:, :, perm], h[:, perm][:, :, perm], permuted)
    got = gptq_codes(w, h, grid, act_order=True)
    assert np.array_equal(got[:, :, perm], manual)
    assert not np.array_equal(got, gptq_codes(w, h, grid))


def test_dead_columns_keep_their_nearest_codes():
    x, w = _layer(4)
    dead = [0, 5, 17, 47]
    x[:, dead] = 0.0
    grid = _grids(w)["int4 per row"]
    codes = gptq_codes(w, _hessian(x), grid)
    near = nearest_codes(w, grid)
    assert np.array_equal(codes[:, :, dead], near[:, :, dead])
    assert _output_error(x, w, codes, grid) < _output_error(x, w, near, grid)


def test_zero_step_groups_code_zero():
    x, w = _layer(5)
    step = np.abs(w).max(axis=2, keepdims=True) / 7
    step[0, :3] = 0.0
    codes = gptq_codes(w, _hessian(x), Grid(step, np.zeros(1), -7, 7))
    assert not codes[0, :3].any()


def test_blocks_are_the_same_algorithm():
    x, w = _layer(6, cols=40)
    grid = _grids(w)["int4 per row"]
    h = _hessian(x)
    ref = gptq_codes(w, h, grid, block=128)
    for block in (1, 7, 16):
        assert (gptq_codes(w, h, grid, block=block) == ref).mean() > 0.99


def test_groups_are_independent_layers():
    (x1, w1), (x2, w2) = _layer(8, cols=9, rows=2), _layer(9, cols=9, rows=2)
    g1, g2 = _grids(w1)["int4 per row"], _grids(w2)["int4 per row"]
    both = gptq_codes(
        np.concatenate([w1, w2]),
        np.concatenate([_hessian(x1), _hessian(x2)]),
        Grid(np.concatenate([g1.step, g2.step]), np.zeros(1), -7, 7),
    )
    assert np.array_equal(both[:1], gptq_codes(w1, _hessian(x1), g1))
    assert np.array_equal(both[1:], gptq_codes(w2, _hessian(x2), g2))


def test_hessian_accumulates_in_batches():
    x, _ = _layer(2)
    acc = HessianSum(1, x.shape[1])
    for start in range(0, len(x), 77):
        acc.add(x[start : start + 77, None, :])
    acc.add(x[:0, None, :])
    assert acc.n == len(x)
    assert np.allclose(acc.h[0], 2.0 / len(x) * x.T @ x)


@pytest.mark.parametrize("cols", [30, 150])  # 150: the blocked triangular inverse recurses
def test_upper_cholesky_of_the_inverse_is_the_references(cols):
    x, _ = _layer(11, cols=cols, n=2 * cols)
    h = _hessian(x)
    u = upper_inverse_cholesky(h, 0.01)
    damped = h[0] + 0.01 * np.mean(np.diag(h[0])) * np.eye(cols)
    reference = np.linalg.cholesky(np.linalg.inv(damped)).T  # upper: Hinv = UᵀU
    assert np.allclose(u[0], reference, rtol=1e-7, atol=1e-9)
    assert np.array_equal(np.triu(u[0]), u[0])
