"""The byte stream of a tar archive, built in memory piece by piece, for exact gzip sizes.

The TF.js quantization example defines the gzip ratio as the bytes of model.json plus the weight
files over the bytes of `tar czf` of them. Gzipping the archive stream itself (headers, padding,
the end-of-archive record) through one deflate object gives that figure exactly, without writing
anything to disk. Headers are POSIX ustar with mode 0644, owner 0 and mtime 0: a real tar's
owner names and dates change the compressed size by a few bytes at most.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterable, Iterator, Sequence

__all__ = ["BLOCK", "RECORD", "TarMember", "tar_header", "tar_stream"]

BLOCK = 512
RECORD = tarfile.RECORDSIZE  # 20 blocks: tar pads the archive to a whole record

TarMember = tuple[str, int, Iterable[bytes | memoryview]]
"""(name inside the archive, size in bytes, the member's content as chunks)."""


def tar_header(name: str, size: int) -> bytes:
    """The 512-byte ustar header of a regular file `name` of `size` bytes."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")


def tar_stream(members: Sequence[TarMember] | Iterable[TarMember]) -> Iterator[bytes | memoryview]:
    """The archive's bytes: each member's header, content and zero padding to 512 bytes, then
    two zero blocks and padding to a whole 10240-byte record, as tar writes them.

    A member whose chunks do not add up to its declared size is an error (ValueError): the
    headers would describe a different archive.
    """
    written = 0
    for name, size, chunks in members:
        header = tar_header(name, size)
        yield header
        got = 0
        for chunk in chunks:
            got += len(memoryview(chunk).cast("B"))
            yield chunk
        if got != size:
            raise ValueError(f"tar member {name!r}: {got} bytes, header says {size}")
        pad = -size % BLOCK
        if pad:
            yield bytes(pad)
        written += len(header) + size + pad
    end = 2 * BLOCK
    written += end
    yield bytes(end + (-written % RECORD))
