"""Fuzz suite (hypothesis): mutated real files of every format either open with every tensor
loading, or fail with a clean `InspectorError` naming the file — never another exception, never
a hang. Cases per format are fixed and derandomized, so a CI failure reproduces exactly;
FUZZ_SCALE=10 (environment) runs ten times as many. See README.md in this folder."""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator

import pytest
from fuzzing import FORMATS, Mutation, Seed, apply, check, close_runners, make_seed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
# Cases (mutated files opened) per format in CI, sized so the file runs in about a minute on
# 2 cores. Each hypothesis example is a batch of BATCH cases, which spreads hypothesis's own
# per-example cost (a few ms, more than opening a small model) over several cases.
CASES = {
    "tfjs": 3000,
    "keras-h5": 2000,
    "keras": 2000,
    "safetensors": 3000,
    "npz": 3000,
    "onnx": 3000,
}
BATCH = 5
OUTCOMES: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

_INSERTS = (
    b"\x00",
    b"\xff" * 8,
    b"{",
    b'"',
    b"]",
    b"\x89HDF\r\n\x1a\n",
    b"PK\x03\x04",
    b"\x00" * 16,
)
_bytes_ops = st.builds(
    Mutation,
    target=st.integers(0, 3),
    kind=st.sampled_from(["flip", "flip", "truncate", "splice", "insert", "json", "json"]),
    pos=st.integers(0, 2**31),
    arg=st.integers(0, 2**16),
    data=st.sampled_from(_INSERTS),
)
MUTATIONS = st.lists(_bytes_ops, min_size=1, max_size=4)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Seed]]:
    root = tmp_path_factory.mktemp("fuzz")
    made = {fmt: make_seed(fmt, root / fmt) for fmt in FORMATS}
    yield {fmt: seed for fmt, seed in made.items() if seed is not None}
    close_runners()


@pytest.mark.parametrize("fmt", FORMATS)
def test_pristine_seed_opens(seeds: dict[str, Seed], fmt: str) -> None:
    if fmt not in seeds:
        pytest.skip(f"no {fmt} seed here (optional package or ../shared/models absent)")
    seeds[fmt].restore()
    assert check(seeds[fmt]) == "ok"


def _fuzz(fmt: str):
    @settings(
        max_examples=max(1, int(CASES[fmt] * SCALE) // BATCH),
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(batch=st.lists(MUTATIONS, min_size=BATCH, max_size=BATCH))
    def cases(seed: Seed, batch: list[list[Mutation]]) -> None:
        for mutations in batch:
            apply(seed, mutations)
            OUTCOMES[fmt][check(seed)] += 1

    return cases


@pytest.mark.parametrize("fmt", FORMATS)
def test_fuzz_mutated_real_files(seeds: dict[str, Seed], fmt: str) -> None:
    if fmt not in seeds:
        pytest.skip(f"no {fmt} seed here (optional package or ../shared/models absent)")
    _fuzz(fmt)(seeds[fmt])
    counts = OUTCOMES[fmt]
    print(f"\nfuzz {fmt}: {sum(counts.values())} cases, {dict(counts)}")
    assert counts["error"] > 0, "no mutation was ever rejected: the fuzzer is not biting"
