"""HQQ (`round=hqq`): the objective it optimises never rises, stored precision is respected,
and the result is an ordinary encoding of the scheme."""

from __future__ import annotations

import numpy as np
import pytest

from inspector.core.errors import SchemeError
from inspector.core.rounding.hqq import (
    HqqSettings,
    affine_objective,
    hqq_affine,
    hqq_symmetric,
    shrink_lp,
    symmetric_objective,
)
from inspector.core.schemes import parse_scheme
from inspector.core.schemes.symmetric_math import as_rows, group_absmax, int4_scales, int8_scales


def _tensors(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    heavy = rng.standard_t(2, size=(96, 24)).astype(np.float32) * 0.05
    scaled = rng.normal(0, 3.0, size=(40, 16)).astype(np.float32)
    skewed = np.abs(rng.normal(0, 0.2, size=(33, 7))).astype(np.float32) + 0.1
    return [heavy, scaled, skewed]


def test_shrink_keeps_sign_and_never_grows():
    r = np.linspace(-3, 3, 601)
    for p in (0.5, 0.7, 1.0):
        s = shrink_lp(r, 10.0, p)
        assert np.all(np.abs(s) <= np.abs(r))
        assert np.all(s * r >= 0)
        assert s[300] == 0.0  # r = 0
    # |r| below β^(−1/(2−p)) is shrunk to 0, above it survives
    assert shrink_lp(np.array([0.1]), 10.0, 0.7)[0] == 0.0
    assert shrink_lp(np.array([1.0]), 10.0, 0.7)[0] > 0.8


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_hqq_affine_never_raises_its_objective(seed, bits):
    qmax = (1 << bits) - 1
    for x in _tensors(seed):
        mn, mx = float(x.min()), float(x.max())
        scale = (mx - mn) / qmax
        before = affine_objective(x, mn, scale, qmax)
        lo, new_scale = hqq_affine(x, mn, scale, qmax)
        after = affine_objective(x, lo, new_scale, qmax)
        assert after <= before
        assert new_scale > 0


def test_hqq_affine_lowers_a_coarse_grid_error():
    x = _tensors(0)[0]
    qmax = 7
    scale = float(x.max() - x.min()) / qmax
    lo, new_scale = hqq_affine(x, float(x.min()), scale, qmax)
    assert affine_objective(x, lo, new_scale, qmax) < 0.9 * affine_objective(
        x, float(x.min()), scale, qmax
    )


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ["int8", "int4"])
def test_hqq_symmetric_never_raises_its_objective_per_group(seed, kind):
    for x in _tensors(seed):
        rows = as_rows(x, 1)
        group = rows.shape[0] if kind == "int8" else 8
        absmax = group_absmax(rows, group)
        if kind == "int8":
            scales, qmax = int8_scales(absmax), 127
        else:
            scales, qmax = int4_scales(absmax)[0], 7
        tuned = hqq_symmetric(rows, scales, group, qmax)
        assert tuned.dtype == scales.dtype and tuned.shape == scales.shape
        for c in range(rows.shape[1]):  # per channel (int4: all its groups)
            one = rows[:, c : c + 1]
            assert symmetric_objective(one, tuned[c : c + 1], group, qmax) <= (
                symmetric_objective(one, scales[c : c + 1], group, qmax)
            )


def test_hqq_symmetric_keeps_zero_groups_and_float16_scales():
    rows = np.zeros((64, 3), np.float32)
    rows[:32, 1] = np.linspace(-1, 1, 32)
    scales = int4_scales(group_absmax(rows, 32))[0]
    tuned = hqq_symmetric(rows, scales, 32, 7, HqqSettings(iters=50))
    assert tuned.dtype == np.float16
    assert tuned[0, 0] == 0 and tuned[2, 1] == 0 and tuned[1, 1] == 0
    assert tuned[1, 0] > 0


def test_settings_are_checked():
    with pytest.raises(ValueError):
        HqqSettings(lp_norm=1.5)
    with pytest.raises(ValueError):
        HqqSettings(kappa=1.0)


@pytest.mark.parametrize("spec", ["affine3", "uint8", "int8", "int4", "int4:group=8,axis=0"])
def test_round_hqq_is_an_ordinary_encoding(spec):
    x = _tensors(1)[0]
    plain = parse_scheme(spec)
    tuned = parse_scheme(spec + (",round=hqq" if ":" in spec else ":round=hqq"))
    assert tuned.spec == plain.spec + (",round=hqq" if ":" in plain.spec else ":round=hqq")
    enc = tuned.encode(x, channel_axis=1)
    assert enc.codes.dtype == plain.encode(x, channel_axis=1).codes.dtype
    assert enc.nbytes == len(enc.to_bytes()) == plain.encode(x, channel_axis=1).nbytes
    decoded = tuned.decode(enc)
    assert decoded.dtype == np.float32 and decoded.shape == x.shape
    # decoding the same codes with the same parameters is what every writer stores
    if plain.family.id == "affine":
        expect = (enc.codes.astype(np.float64) * enc.params["scale"] + enc.params["min"]).astype(
            np.float32
        )
        assert np.array_equal(decoded, expect)
        assert enc.codes.max() <= (1 << plain.bits) - 1
    else:
        qmax = 127 if plain.name == "int8" else 7
        assert np.abs(enc.codes).max() <= qmax


def test_round_hqq_improves_the_weight_error_of_a_coarse_affine_grid():
    x = np.random.default_rng(0).normal(0, 0.1, (64, 64)).astype(np.float32)
    err = {}
    for spec in ("affine3", "affine3:round=hqq"):
        s = parse_scheme(spec)
        err[spec] = float(np.sqrt(np.mean((s.decode(s.encode(x)) - x) ** 2)))
    assert err["affine3:round=hqq"] < 0.9 * err["affine3"]


@pytest.mark.parametrize(
    "spec",
    [
        "kmeans4:round=hqq",
        "float16:round=gptq",
        "int4:order=act",
        "int8:round=hqq,order=act",
        "int4:round=sometimes",
        "uint8:round=gptq,sparsity=0.5",
        "int8:round=gptq,order=reverse",
    ],
)
def test_bad_rounding_specs_are_refused(spec):
    with pytest.raises(SchemeError):
        parse_scheme(spec)


def test_rounding_spec_is_canonical():
    s = parse_scheme("int4: order=act , round=gptq")
    assert s.spec == "int4:round=gptq,order=act"
    assert parse_scheme(s.spec) == s
    assert parse_scheme("uint8:round=nearest").spec == "uint8"
