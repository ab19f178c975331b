"""Entropy bound and Huffman size of stored codes."""

from __future__ import annotations

import heapq
import math

import ml_dtypes
import numpy as np
import pytest

from inspector.core.entropy import (
    code_histogram,
    entropy_bits,
    huffman_bits,
    huffman_lengths,
    huffman_nbytes,
    huffman_table_nbytes,
)


def _kraft(lengths: np.ndarray) -> float:
    return float(np.sum(2.0 ** -lengths.astype(np.float64)))


def _optimal_bits(counts: list[int]) -> int:
    """Huffman's total by the textbook merge-cost identity (sum of all merged weights)."""
    heap = list(counts)
    heapq.heapify(heap)
    total = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        total += a + b
        heapq.heappush(heap, a + b)
    return total


@pytest.mark.parametrize("seed", range(30))
def test_huffman_between_entropy_and_entropy_plus_one(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 300))
    counts = rng.integers(1, 10_000, size=k) ** int(rng.integers(1, 4))
    n = int(counts.sum())
    h = entropy_bits(counts)
    bits = huffman_bits(counts)
    assert n * h - 1e-6 * n <= bits <= n * (h + 1)
    lengths = huffman_lengths(counts)
    assert _kraft(lengths) == pytest.approx(1.0)  # a complete prefix code
    assert bits == _optimal_bits([int(c) for c in counts])


def test_known_small_codes():
    assert list(huffman_lengths(np.array([1, 1, 2]))) == [2, 2, 1]
    assert huffman_bits(np.array([5, 5, 5, 5])) == 40
    assert entropy_bits(np.array([5, 5, 5, 5])) == 2.0
    assert list(huffman_lengths(np.array([7]))) == [1]  # one symbol: one bit each
    assert entropy_bits(np.array([7])) == 0.0
    assert huffman_bits(np.array([], dtype=np.int64)) == 0


def test_nbytes_counts_stream_and_table():
    counts = np.array([3, 1])
    assert huffman_table_nbytes(2, 4) == 4 + 2 * 2  # sparse: (code, length) pairs
    assert huffman_table_nbytes(15, 4) == 4 + 16  # dense: a length for each of 16 codes
    assert huffman_table_nbytes(2, 16) == 4 + 2 * 3
    assert huffman_table_nbytes(0, 8) == 0
    assert huffman_nbytes(counts, 4) == math.ceil(4 / 8) + 8


def test_histograms_of_every_code_kind():
    assert sorted(code_histogram(np.array([-7, -7, 0, 7], np.int8))) == [1, 1, 2]
    assert sorted(code_histogram(np.array([0, 65535, 65535], np.uint16))) == [1, 2]
    half = np.array([1.0, 1.0, -0.0, 0.0], np.float16)
    assert sorted(code_histogram(half)) == [1, 1, 2]  # -0 and +0 are distinct bit patterns
    bf = np.array([1.5, 1.5, 2.0], ml_dtypes.bfloat16)
    assert sorted(code_histogram(bf)) == [1, 2]
    assert sorted(code_histogram(np.array([0.5, 0.25, 0.5], np.float32))) == [1, 2]
    assert code_histogram(np.zeros(0, np.uint8)).size == 0


def test_compiled_and_python_huffman_agree(monkeypatch):
    from inspector.core import jit
    from tests.core.conftest import jit_and_numpy

    jit.wait()
    counts = np.random.default_rng(5).integers(1, 10**6, size=5000)
    fast, slow = jit_and_numpy(monkeypatch, lambda: huffman_bits(counts))
    assert fast == slow == _optimal_bits([int(c) for c in counts])


@pytest.mark.parametrize(
    "spec", ["int4", "affine3", "uint8", "int8", "kmeans2", "float16", "float32"]
)
def test_preview_rows_and_totals_carry_the_bound(spec):
    from inspector.core.model import Tensor, TensorInfo
    from inspector.core.preview import preview_tensor
    from inspector.core.schemes import parse_scheme
    from inspector.core.totals import summarize

    x = np.random.default_rng(1).normal(0, 0.1, (64, 48)).astype(np.float32)
    tensor = Tensor(TensorInfo("w", x.shape, "float32", channel_axis=1), lambda: x)
    row = preview_tensor(tensor, parse_scheme(spec))
    data = row.to_json()
    assert {"entropy_bits_per_weight", "huffman_bytes"} <= set(data)
    if spec == "float32":
        assert row.entropy_bits_per_weight is None
        assert row.huffman_bytes == row.quantized_bytes
    else:
        bits = parse_scheme(spec).bits
        assert 0 < row.entropy_bits_per_weight <= bits
        coded = row.huffman_bytes - (row.quantized_bytes - math.ceil(x.size * bits / 8))
        assert coded * 8 >= x.size * row.entropy_bits_per_weight
    total = summarize([row], overhead=b"abc")
    assert total["huffman_bytes"] == row.huffman_bytes + 3
    expect = row.entropy_bits_per_weight if row.entropy_bits_per_weight is not None else 32.0
    assert total["entropy_bits_per_weight"] == pytest.approx(expect)
