"""The in-memory tar stream the exact gzip ratio is measured on, against Python's tarfile."""

from __future__ import annotations

import io
import tarfile

import pytest

from inspector.core.archive import RECORD, tar_stream


def test_tar_stream_is_a_tar_that_tarfile_reads_back():
    members = [("a.bin", 1000, [b"x" * 600, memoryview(b"y" * 400)]), ("m.json", 3, [b"{}\n"])]
    data = b"".join(bytes(c) for c in tar_stream(members))
    assert len(data) % RECORD == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert tf.getnames() == ["a.bin", "m.json"]
        assert tf.extractfile("a.bin").read() == b"x" * 600 + b"y" * 400
        assert tf.extractfile("m.json").read() == b"{}\n"


def test_tar_stream_has_tarfile_layout():
    """Same length as tarfile's ustar output (header, 512-byte padding, end record)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, size in (("s1", 513), ("s2", 0), ("doc", 10241)):
            info = tarfile.TarInfo(name)
            info.size = size
            tf.addfile(info, io.BytesIO(bytes(size)))
    ours = b"".join(
        bytes(c)
        for c in tar_stream(
            [("s1", 513, [bytes(513)]), ("s2", 0, []), ("doc", 10241, [bytes(10241)])]
        )
    )
    assert len(ours) == len(buf.getvalue())


def test_tar_stream_refuses_a_member_shorter_than_declared():
    with pytest.raises(ValueError, match="header says"):
        b"".join(tar_stream([("a", 10, [b"short"])]))
