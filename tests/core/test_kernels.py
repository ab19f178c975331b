"""The compiled kernels give the numpy path's codes bit for bit and its sums to 1e-12."""

from __future__ import annotations

import numpy as np
import pytest

from inspector.core import jit
from inspector.core.model import Tensor, TensorInfo
from inspector.core.preview import preview_tensor
from inspector.core.schemes import parse_scheme
from tests.core.conftest import jit_and_numpy as _both

pytestmark = pytest.mark.skipif(jit.wait(120) is None, reason="numba not available")

SPECS = [
    "float16",
    "bfloat16",
    "uint8",
    "uint16",
    "affine4",
    "affine2",
    "int8",
    "int4",
    "int4:group=16",
    "kmeans4",
    "kmeans8",
    "uint8:clip=mse",
    "int8:clip=percentile:99.9",
    "int4:clip=mse",
    "uint8:sparsity=0.5",
    "kmeans4:sparsity=0.3",
]


def _values(shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32) * np.float32(0.05)
    flat = x.reshape(-1)
    flat[:: max(1, flat.size // 7)] *= 40  # outliers
    if flat.size > 10:
        flat[3] = 0.0
        flat[5] = 70000.0  # beyond float16
        flat[6] = 1e-6  # float16 subnormal
        flat[7] = -3e-8
    return x


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize(("shape", "axis"), [((96, 40), 1), ((40, 3, 32), 0), ((333,), None)])
def test_encode_identical(monkeypatch, spec, shape, axis) -> None:
    scheme = parse_scheme(spec)
    x = _values(shape, len(spec))
    fast, slow = _both(monkeypatch, lambda: scheme.encode(x, channel_axis=axis))
    assert fast.codes.dtype == slow.codes.dtype
    np.testing.assert_array_equal(fast.codes, slow.codes)
    assert fast.overflow == slow.overflow
    for k, v in slow.params.items():
        np.testing.assert_array_equal(np.asarray(fast.params[k]), np.asarray(v))


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize(("shape", "axis"), [((96, 40), 1), ((40, 3, 32), 0)])
def test_preview_sums_match(monkeypatch, spec, shape, axis) -> None:
    x = _values(shape, 7)
    info = TensorInfo("w", shape, "float32", "l", channel_axis=axis)
    tensor = Tensor(info, lambda: x)
    scheme = parse_scheme(spec)
    fast, slow = _both(monkeypatch, lambda: preview_tensor(tensor, scheme))
    for name in ("mse", "max_abs_error", "signal_energy"):
        a, b = getattr(fast, name), getattr(slow, name)
        assert a == pytest.approx(b, rel=1e-12, abs=1e-300), name
    for name in ("sqnr_db", "cosine"):  # differences of sums: absolute
        assert getattr(fast, name) == pytest.approx(getattr(slow, name), rel=1e-9, abs=1e-9)
    assert fast.overflow == slow.overflow


def test_float16_every_pattern() -> None:
    """All finite float32 magnitudes up to 65504 sampled densely round like numpy's cast."""
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 0x477FE000, size=2_000_000, dtype=np.uint32)
    edges = np.arange(0x33000000 - 4096, 0x38800000 + 65536, 7, dtype=np.uint32)
    bits = np.concatenate([bits, edges, bits | np.uint32(0x80000000)])
    x = bits.view(np.float32)
    out = np.empty(x.size, dtype=np.uint16)
    jit.wait().f16_encode(x, x.view(np.uint32), out)
    np.testing.assert_array_equal(out, x.astype(np.float16).view(np.uint16))


def test_disabled_by_env(monkeypatch) -> None:
    monkeypatch.setenv("QUANT_INSPECTOR_NO_JIT", "1")
    assert jit.get() is None
    assert jit.wait() is None


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 7, 9, 12])
def test_packed_codes_slices_equal_the_packed_stream(bits: int) -> None:
    from inspector.core.bitpack import pack_codes
    from inspector.core.metrics import PackedCodes

    codes = np.random.default_rng(bits).integers(0, 1 << bits, 50_001)
    codes = codes.astype(np.uint8 if bits <= 8 else np.uint16)
    full, lazy = pack_codes(codes, bits), PackedCodes(codes, bits)
    assert len(lazy) == len(full)
    for a, b in [(0, len(full)), (5, 777), (8192, 16384), (len(full) - 9, len(full))]:
        assert lazy[a:b] == full[a:b]
