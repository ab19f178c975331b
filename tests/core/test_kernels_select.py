"""Pruning's radix select and the clip=mse candidate grids: compiled path == numpy path."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from inspector.core import clipping, jit
from inspector.core.schemes import affine, floats, kmeans, parse_scheme, symmetric
from inspector.core.schemes import kmeans_math as kmeans_math
from inspector.core.schemes.symmetric_math import symmetric_error_sums
from tests.core.conftest import jit_and_numpy as _both

pytestmark = pytest.mark.skipif(jit.wait(120) is None, reason="numba not available")


@pytest.mark.parametrize("n", [1000, 600_001])
@pytest.mark.parametrize("sparsity", [0.001, 0.3, 0.5, 0.999])
def test_prune_identical_with_ties_and_signed_zeros(monkeypatch, sparsity, n) -> None:
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(n) * 0.05).astype(np.float32)
    x[::5] = np.round(x[::5], 2)  # many exact ties at every threshold
    x[::11] = -0.0
    x[1::13] = 0.0
    x[2] = np.float32(1e-40)  # subnormal
    fast, slow = _both(monkeypatch, lambda: clipping.prune(x, sparsity))
    assert fast.tobytes() == slow.tobytes()
    assert np.count_nonzero(fast == 0) >= int(np.floor(sparsity * x.size))


def test_prune_exact_count_on_constant_values(monkeypatch) -> None:
    x = np.full(1000, 0.25, dtype=np.float32)
    fast, slow = _both(monkeypatch, lambda: clipping.prune(x, 0.4))
    assert fast.tobytes() == slow.tobytes()
    assert np.array_equal(np.flatnonzero(fast == 0), np.arange(400))


def test_sample_indices_sorted_distinct_in_range() -> None:
    idx = clipping.sample_indices(4_000_037, 1 << 15, seed=3)
    assert idx.size == 1 << 15
    assert np.all(np.diff(idx) > 0) and idx[0] >= 0 and idx[-1] < 4_000_037
    assert np.array_equal(idx, clipping.sample_indices(4_000_037, 1 << 15, seed=3))


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_affine_mse_grid_same_choice(monkeypatch, bits) -> None:
    rng = np.random.default_rng(bits)
    sample = rng.standard_t(3, 20_000) * 0.02
    mn, mx = float(sample.min()), float(sample.max())
    fast, slow = _both(monkeypatch, lambda: affine._best_shrink(sample, mn, mx, bits))
    assert fast == slow
    assert fast < 1.0  # heavy tails: some clipping pays


@pytest.mark.parametrize(("name", "qmax"), [("int8", 127), ("int4", 7)])
def test_symmetric_mse_grid_same_choice(monkeypatch, name, qmax) -> None:
    rng = np.random.default_rng(qmax)
    vals = (rng.standard_t(3, 20_000) * 0.02).astype(np.float32)
    absmax = np.full(vals.size, np.abs(vals).max(), dtype=np.float32)
    absmax[:5] = 0  # an all-zero group
    absmax[5:9] = [1e-7, 3e-5, 2e6, 7e5]  # float16 subnormal and saturated scales
    scheme = SimpleNamespace(name=name)
    fast, slow = _both(monkeypatch, lambda: symmetric._best_shrink(scheme, vals, absmax, qmax))
    assert fast == slow
    assert fast < 1.0


def test_int4_grid_scales_round_like_numpy_float16() -> None:
    """The kernel's inline float16 rounding equals numpy's float64 → float16 cast: the grid
    errors of one value per scale, every magnitude class, match the numpy formula."""
    rng = np.random.default_rng(1)
    absmax = np.concatenate(
        [rng.uniform(0, 1e-3, 4000), rng.uniform(0, 10, 4000), 10.0 ** rng.uniform(-9, 6, 4000)]
    ).astype(np.float32)
    cands = rng.uniform(1e-4, 4e5, 4_000_000).astype(np.float32)
    y = cands.astype(np.float64) / 7
    f = y.astype(np.float32)
    tie = ((f.view(np.uint32) & 0x1FFF) == 0x1000) & (y > 6.2e-5)
    assert np.count_nonzero(tie) >= 10  # exactly half-way between float16 values: to even
    absmax = np.concatenate([absmax, cands[tie][:300]])
    vals = (absmax * rng.uniform(-1, 1, absmax.size)).astype(np.float32)
    grid = np.ones(1, dtype=np.float32)
    compiled = jit.get()
    for i in [*range(0, 12_000, 7), *range(12_000, absmax.size)]:
        got = compiled.sym_mse_grid(vals[i : i + 1], absmax[i : i + 1], grid, np.float32(7), True)
        s = np.minimum(absmax[i : i + 1].astype(np.float64) / 7, 65504).astype(np.float16)
        s = s.astype(np.float32)
        q = np.clip(np.rint(vals[i : i + 1] / np.where(s > 0, s, 1)), -7, 7)
        assert got[0] == float(((q * s.astype(np.float64) - vals[i : i + 1]) ** 2)[0])


@pytest.mark.parametrize("k", [2, 16, 256])
def test_kmeans_seed_and_assign_identical(monkeypatch, k) -> None:
    rng = np.random.default_rng(k)
    x = (rng.standard_normal(1_100_000) * 0.05).astype(np.float32)  # > 1M: two halves
    x[::997] *= 60
    vals = kmeans_math._fit_values(x, 0)
    fast, slow = _both(monkeypatch, lambda: kmeans_math._seed_centers(vals, k, 0))
    assert np.array_equal(fast, slow)
    palette = kmeans_math.fit_palette(x, k)
    fast, slow = _both(monkeypatch, lambda: kmeans_math.assign_codes(x, palette))
    exact = np.searchsorted(kmeans_math._boundaries_float32(palette), x, side="left")
    assert np.array_equal(fast, exact) and np.array_equal(slow, exact)


@pytest.mark.parametrize("k", [2, 16, 256])
def test_lloyd_identical(monkeypatch, k) -> None:
    rng = np.random.default_rng(k + 1)
    x = (rng.standard_t(4, 300_000) * 0.05).astype(np.float32)
    vals = kmeans_math._fit_values(x, 0)
    seeds = kmeans_math._seed_centers(vals, k, 0)
    fast, slow = _both(monkeypatch, lambda: kmeans_math._lloyd(vals, seeds.copy()))
    assert fast.tobytes() == slow.tobytes()


def test_palette_decode_identical(monkeypatch) -> None:
    rng = np.random.default_rng(5)
    palette = np.sort(rng.standard_normal(16)).astype(np.float32)
    codes = rng.integers(0, 16, (300, 70)).astype(np.uint8)
    fast, slow = _both(monkeypatch, lambda: kmeans.palette_decode(codes, palette))
    assert fast.dtype == np.float32 and fast.shape == codes.shape
    assert fast.tobytes() == slow.tobytes() == palette[codes].tobytes()


@pytest.mark.parametrize("spec", ["int8", "int4", "int4:group=48"])
@pytest.mark.parametrize(
    ("shape", "axis"), [((1030, 1100), 1), ((1100, 1030), 0), ((2, 600_000), 1)]
)
def test_symmetric_halves_identical(monkeypatch, spec, shape, axis) -> None:
    """Tensors over 1M values run the symmetric kernels on two row halves (two threads)."""
    rng = np.random.default_rng(len(spec))
    x = (rng.standard_normal(shape) * 0.05).astype(np.float32)
    x.reshape(-1)[::977] *= 50
    scheme = parse_scheme(spec)
    fast, slow = _both(monkeypatch, lambda: scheme.encode(x, channel_axis=axis))
    assert np.array_equal(fast.codes, slow.codes) and fast.overflow == slow.overflow
    sums = symmetric_error_sums(
        x, fast.codes, fast.params["scales"], fast.params.get("group"), axis
    )
    fast_dec, slow_dec = _both(monkeypatch, lambda: scheme.decode(fast))
    assert fast_dec.shape == x.shape and fast_dec.tobytes() == slow_dec.tobytes()
    dec = slow_dec.astype(np.float64)
    assert sums.noise == pytest.approx(float(((x - dec) ** 2).sum()), rel=1e-9)
    assert sums.signal == pytest.approx(float((x.astype(np.float64) ** 2).sum()), rel=1e-9)
    assert sums.max_abs == float(np.abs(x.astype(np.float64) - dec).max())


def test_bfloat16_cast_identical_at_every_rounding_boundary(monkeypatch) -> None:
    high = np.arange(1 << 16, dtype=np.uint32) << 16
    lows = np.array([0, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF], dtype=np.uint32)
    x = (high[:, None] | lows[None, :]).reshape(-1).view(np.float32)
    x = x[np.isfinite(x)]
    fast, slow = _both(monkeypatch, lambda: floats.float_cast(x, "bfloat16"))
    assert fast[1] == slow[1] > 0  # values beyond bfloat16's max are counted, saturated
    assert fast[0].view(np.uint16).tobytes() == slow[0].view(np.uint16).tobytes()


def test_on_two_threads_raises_the_second_calls_error() -> None:
    from inspector.core.chunking import on_two_threads

    def broken() -> int:
        raise ValueError("second half failed")

    with pytest.raises(ValueError, match="second half failed"):
        on_two_threads([lambda: 1, broken])
    assert on_two_threads([lambda: 1, lambda: 2]) == [1, 2]


@pytest.mark.parametrize("spec", ["int4", "int4:group=8", "int8"])
def test_zero_groups_store_the_same_bytes_on_both_paths(monkeypatch, spec) -> None:
    """All-zero groups (+0.0 and −0.0 values) get a +0.0 scale on the numpy path too: the
    stored bytes must not depend on whether the compiled kernels had loaded."""
    x = np.zeros((64, 6), np.float32)
    x[:, 1] = -0.0
    x[:32, 2] = -0.0
    x[:, 3] = np.linspace(-1, 1, 64)
    scheme = parse_scheme(spec)
    fast, slow = _both(monkeypatch, lambda: scheme.encode(x, channel_axis=1))
    assert fast.to_bytes() == slow.to_bytes()
    assert not np.signbit(np.asarray(slow.params["scales"], np.float32)).any()
