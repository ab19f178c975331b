"""The entropy bound of stored codes and the size of a real Huffman coding of them.

Deep Compression (Han et al. 2016) ends with a Huffman stage over the quantized weights' codes;
the question it answers is how far below the fixed-width codes an entropy coder gets. Two
numbers per tensor, from the histogram of its stored codes:

- `entropy_bits(counts)`: the empirical (order-0) entropy −Σ p·log2 p, bits per weight — the
  lower bound for any coder that codes each weight on its own with this histogram;
- `huffman_bits(counts)`: Σ count·length with code lengths from a Huffman tree built on the
  histogram (a real prefix code: ≥ the entropy bound, < bound + 1 bit per weight; a tensor with
  one distinct code costs 1 bit per weight, as a real coder needs a non-empty code word).

`huffman_nbytes` adds the table a decoder needs. Lengths of a canonical Huffman code determine
its code words, so the table holds lengths only, in the smaller of two layouts after a 4-byte
header (layout and symbol count): dense, one length byte for each of the 2^bits possible codes
(0 = absent), or sparse, per distinct code its value (ceil(bits/8) bytes) and length (1 byte).

`encoding_entropy` applies this to a stored encoding: the codes are Huffman-coded, the
parameters (scales, min/scale, palette) stay as the scheme stores them. Codes of 32 bits or more
(float32 kept as is) are values, not an alphabet: they get no entropy and their stored size.
"""

from __future__ import annotations

import heapq
import math
from typing import TYPE_CHECKING

import numpy as np

from inspector.core import jit

if TYPE_CHECKING:
    from inspector.core.schemes import Encoded

__all__ = [
    "code_histogram",
    "encoding_entropy",
    "entropy_bits",
    "huffman_bits",
    "huffman_lengths",
    "huffman_nbytes",
    "huffman_table_nbytes",
]


_COUNT_CHUNK = 1 << 16


def code_histogram(codes: np.ndarray) -> np.ndarray:
    """Counts of each distinct code (zeros dropped) of an integer or 16-bit float code array.

    16-bit floats count their bit patterns; 32-bit and 64-bit values count distinct values.
    """
    flat = np.asarray(codes).reshape(-1)
    if flat.size == 0:
        return np.zeros(0, dtype=np.int64)
    if flat.dtype.itemsize <= 2 and flat.dtype.kind in "iufV":
        # a signed code's bit pattern is as good a symbol
        unsigned = flat.view(np.uint8 if flat.dtype.itemsize == 1 else np.uint16)
        counts = np.zeros(1 << (8 * flat.dtype.itemsize), dtype=np.int64)
        fast = jit.get()
        if fast is not None and unsigned.flags.c_contiguous:
            fast.code_counts(unsigned, counts)
        else:
            # bincount widens its input to intp: in cache-sized chunks that costs a third of
            # one whole-array call (23M codes: 75 ms against 234 ms)
            for start in range(0, unsigned.size, _COUNT_CHUNK):
                counts += np.bincount(unsigned[start : start + _COUNT_CHUNK], minlength=counts.size)
        return counts[counts > 0]
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
    """Total bits of the Huffman-coded symbols (table excluded): the sum of the tree's merged
    weights, compiled when the kernels are loaded (65 536 symbols: ~0.5 s in Python)."""
    c = np.sort(np.asarray(counts, dtype=np.int64).reshape(-1))
    if c.size <= 1:
        return int(c.sum())
    fast = jit.get()
    return int((fast.huffman_cost if fast is not None else jit.huffman_cost)(c))


def huffman_table_nbytes(distinct: int, bits: int) -> int:
    """Bytes of the code table (see the module docstring) for `distinct` codes of `bits` bits."""
    if not distinct:
        return 0
    return 4 + min(distinct * (math.ceil(bits / 8) + 1), 1 << bits)


def huffman_nbytes(counts: np.ndarray, bits: int) -> int:
    """Bytes of a Huffman coding of the codes: the coded stream (whole bytes) plus the table."""
    c = np.asarray(counts).reshape(-1)
    return math.ceil(huffman_bits(c) / 8) + huffman_table_nbytes(int(c.size), bits)


def encoding_entropy(enc: Encoded) -> tuple[float | None, int]:
    """(entropy bound in bits per weight, bytes of the encoding with Huffman-coded codes):
    the Huffman stream and table plus the stored parameter arrays (`Encoded.arrays()` after
    the codes). (None, `enc.nbytes`) for codes that are 32-bit values."""
    codes = np.asarray(enc.codes)
    if codes.size == 0 or codes.dtype.itemsize >= 4:
        return None, enc.nbytes
    counts = code_histogram(codes)
    params = sum(a.nbytes for a in enc.arrays()[1:])
    return entropy_bits(counts), huffman_nbytes(counts, enc.scheme.bits) + params
