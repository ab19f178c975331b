"""Little-endian bit packing of N-bit codes: the exact stored size of sub-byte schemes.

Code `i` occupies bits `[i*b, (i+1)*b)` of a little-endian bit stream, so the first code sits in
the low bits of byte 0 (two int4 codes per byte: first code in the low nibble, like GGUF's
nibble order within a byte). A tensor's codes end on a whole byte, the tail zero-padded:
n codes of b bits take exactly `ceil(n*b/8)` bytes.
"""

from __future__ import annotations

import numpy as np

from .chunking import chunk_slices

__all__ = ["pack_codes", "packed_nbytes", "unpack_codes"]

_CHUNK = 1 << 20  # codes per chunk, a multiple of 8 so every chunk ends on a byte boundary


def packed_nbytes(n: int, bits: int) -> int:
    """Bytes taken by `n` codes of `bits` bits each, packed, rounded up to a whole byte."""
    return (n * bits + 7) // 8


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """Pack unsigned codes (each < 2**bits, 1 ≤ bits ≤ 16) into the little-endian bit stream."""
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be 1..16, got {bits}")
    flat = np.asarray(codes).reshape(-1)
    if bits == 8:
        return flat.astype("<u1", copy=False).tobytes()
    if bits == 16:
        return flat.astype("<u2", copy=False).tobytes()
    out = bytearray()
    for s in chunk_slices(flat.size, _CHUNK):
        out += _pack_chunk(flat[s], bits)
    del out[packed_nbytes(flat.size, bits) :]
    return bytes(out)


def _pack_chunk(chunk: np.ndarray, bits: int) -> bytes:
    n = chunk.size
    padded = np.zeros(-(-n // 8) * 8, dtype=np.uint64)
    padded[:n] = chunk
    groups = padded.reshape(-1, 8)
    if bits <= 8:
        shifts = np.arange(8, dtype=np.uint64) * np.uint64(bits)
        words = np.bitwise_or.reduce(groups << shifts, axis=1).astype("<u8")
        return words.view(np.uint8).reshape(-1, 8)[:, :bits].tobytes()
    as16 = groups.astype("<u2").view(np.uint8)
    stream = np.unpackbits(as16, bitorder="little").reshape(-1, 16)[:, :bits]
    return np.packbits(stream.reshape(-1), bitorder="little").tobytes()


def unpack_codes(data: bytes | memoryview, bits: int, n: int) -> np.ndarray:
    """Inverse of `pack_codes`: `n` codes as uint8 (bits ≤ 8) or uint16 (bits > 8)."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size < packed_nbytes(n, bits):
        raise ValueError(f"{raw.size} bytes cannot hold {n} codes of {bits} bits")
    if bits == 8:
        return raw[:n].copy()
    if bits == 16:
        return raw[: 2 * n].view("<u2").astype(np.uint16)
    groups = -(-n // 8)
    padded = np.zeros(groups * bits, dtype=np.uint8)
    padded[: packed_nbytes(n, bits)] = raw[: packed_nbytes(n, bits)]
    rows = padded.reshape(groups, bits)
    if bits <= 8:
        words = np.zeros((groups, 8), dtype=np.uint8)
        words[:, :bits] = rows
        w = words.view("<u8").reshape(groups, 1)
        shifts = np.arange(8, dtype=np.uint64) * np.uint64(bits)
        codes = (w >> shifts) & np.uint64((1 << bits) - 1)
        return codes.reshape(-1)[:n].astype(np.uint8)
    stream = np.unpackbits(rows.reshape(-1), bitorder="little").reshape(-1, bits)
    wide = np.zeros((stream.shape[0], 16), dtype=np.uint8)
    wide[:, :bits] = stream
    codes = np.packbits(wide.reshape(-1), bitorder="little").view("<u2")
    return codes[:n].astype(np.uint16)
