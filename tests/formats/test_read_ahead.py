"""Mapped tensors: the kernel is asked to read the following bytes ahead while this tensor is
computed (issue 17: a cold 7B preview otherwise stalls on one page fault after another), in
large steps and never twice for the same range; old tensors' pages leave the process."""

import mmap

from inspector.formats._mmap import READ_AHEAD, ResidentPages


class Map:
    """Stands in for an mmap: records madvise calls."""

    def __init__(self, size: int) -> None:
        self.size, self.calls = size, []

    def __len__(self) -> int:
        return self.size

    def madvise(self, option: int, start: int, length: int) -> None:
        self.calls.append((option, start, length))


def ahead(m: Map) -> list[tuple[int, int]]:
    return [(s, s + n) for o, s, n in m.calls if o == mmap.MADV_WILLNEED]


def test_reads_ahead_of_each_tensor_in_large_steps():
    m = Map(10 * READ_AHEAD)
    pages = ResidentPages(m)  # type: ignore[arg-type]
    step = READ_AHEAD // 16
    pages.used(0, step)
    assert ahead(m) == [(step, step + READ_AHEAD)]
    for i in range(1, 4):  # inside the window already asked for: no new call
        pages.used(i * step, step)
    assert len(ahead(m)) == 1
    pages.used(4 * step, step)  # the window's end moved by a quarter: one more step
    assert ahead(m)[-1] == (step + READ_AHEAD, 5 * step + READ_AHEAD)
    spans = ahead(m)
    assert all(a < b for a, b in spans)
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1)), "no range twice"


def test_read_ahead_stops_at_the_end_and_old_pages_are_released():
    size = READ_AHEAD // 2
    m = Map(size)
    pages = ResidentPages(m, keep=2)  # type: ignore[arg-type]
    chunk = size // 8
    for i in range(8):
        pages.used(i * chunk, chunk)
    assert ahead(m) == [(chunk, size)]
    released = [(s, n) for o, s, n in m.calls if o == mmap.MADV_DONTNEED]
    assert [s for s, _ in released] == [i * chunk for i in range(6)]
