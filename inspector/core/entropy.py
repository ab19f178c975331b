"""The entropy bound of stored codes and the size of a real Huffman coding of them.

Deep Compression (Han et al. 2016) ends with a Huffman stage over the quantized weights' codes;
the question it answers is how far below the fixed-width codes an entropy coder gets. Two
numbers per tensor, from the histogram of its stored codes:

- `entropy_bits(counts)`: the empirical (order-0) entropy −Σ p·log2 p, bits per weight — the
  lower bound for any coder that codes each weight on its own with this histogram;
- `huffman_bits(counts)`: Σ count·length with code lengths from a Huffman tree built on the
  histogram (a real prefix code: ≥ the entropy bound, < bound + 1 bit per weight; a tensor with
  one distinct code costs 1 bit per weight, as a real coder needs a non-empty code word).

`huffman_nbytes` adds the table a decoder needs, stated as: a 4-byte symbol count, then per
distinct code its value (ceil(bits/8) bytes) and its length (1 byte); lengths of a canonical
Huffman code determine the code words, so nothing else is stored.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

__all__ = [
    "code_histogram",
    "entropy_bits",
    "huffman_bits",
    "huffman_lengths",
    "huffman_nbytes",
    "huffman_table_nbytes",
]


def code_histogram(codes: np.ndarray) -> np.ndarray:
    """Counts of each distinct code (zeros dropped) of an integer or 16-bit float code array.

    16-bit floats count their bit patterns; 32-bit and 64-bit values count distinct values.
    """
    flat = np.asarray(codes).reshape(-1)
    if flat.size == 0:
        return np.zeros(0, dtype=np.int64)
    if flat.dtype.kind == "f" or flat.dtype.kind == "V":
        if flat.dtype.itemsize == 2:
            flat = flat.view(np.uint16)
        else:
            return np.unique(flat, return_counts=True)[1].astype(np.int64)
    if flat.dtype.kind in "iu" and flat.dtype.itemsize <= 2:
        counts = np.bincount((flat.astype(np.int64) - int(flat.min())).reshape(-1))
        return counts[counts > 0].astype(np.int64)
    return np.unique(flat, return_counts=True)[1].astype(np.int64)


def entropy_bits(counts: np.ndarray) -> float:
    """Order-0 entropy of the histogram `counts`, bits per symbol (0 for ≤ 1 distinct)."""
    c = np.asarray(counts, dtype=np.float64)
    c = c[c > 0]
    n = c.sum()
    if c.size <= 1:
        return 0.0
    p = c / n
    return float(-np.sum(p * np.log2(p)))


def huffman_lengths(counts: np.ndarray) -> np.ndarray:
    """Code length (bits) of each symbol of the histogram, from a Huffman tree.

    Ties are broken by insertion order, so the result is deterministic; a single symbol gets 1.
    """
    c = [int(v) for v in np.asarray(counts).reshape(-1)]
    n = len(c)
    if n <= 1:
        return np.ones(n, dtype=np.int64)
    heap = [(w, i) for i, w in enumerate(c)]
    heapq.heapify(heap)
    parent = [0] * (2 * n - 1)
    node = n
    while len(heap) > 1:
        w1, a = heapq.heappop(heap)
        w2, b = heapq.heappop(heap)
        parent[a] = parent[b] = node
        heapq.heappush(heap, (w1 + w2, node))
        node += 1
    depth = [0] * (2 * n - 1)
    for i in range(2 * n - 3, -1, -1):  # parents are created after their children
        depth[i] = depth[parent[i]] + 1
    return np.array(depth[:n], dtype=np.int64)


def huffman_bits(counts: np.ndarray) -> int:
    """Total bits of the Huffman-coded symbols (table excluded)."""
    c = np.asarray(counts, dtype=np.int64).reshape(-1)
    return int(np.dot(c, huffman_lengths(c))) if c.size else 0


def huffman_table_nbytes(distinct: int, bits: int) -> int:
    """Bytes of the code table (see the module docstring) for `distinct` codes of `bits` bits."""
    return 4 + distinct * (math.ceil(bits / 8) + 1) if distinct else 0


def huffman_nbytes(counts: np.ndarray, bits: int) -> int:
    """Bytes of a Huffman coding of the codes: the coded stream (whole bytes) plus the table."""
    c = np.asarray(counts).reshape(-1)
    return math.ceil(huffman_bits(c) / 8) + huffman_table_nbytes(int(c.size), bits)
