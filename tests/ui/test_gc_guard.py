"""Cyclic garbage (which may hold Qt widgets) is collected on the GUI thread only."""

from __future__ import annotations

import gc
import threading
import weakref


def test_cycles_are_collected_on_the_gui_thread_not_in_workers(qtbot, window):
    assert not gc.isenabled()  # the window turned automatic collection off

    class Node:
        pass

    collected_in: list[str] = []
    a, b = Node(), Node()
    a.other, b.other = b, a
    weakref.finalize(a, lambda: collected_in.append(threading.current_thread().name))
    del a, b

    def churn() -> None:  # a worker allocating heavily must not run the collector
        junk = [[i] for i in range(200_000)]
        del junk

    worker = threading.Thread(target=churn, name="worker")
    worker.start()
    worker.join()
    assert collected_in == []
    gc.collect(0)  # what the GUI timer does once the thresholds are crossed
    gc.collect()
    qtbot.waitUntil(lambda: collected_in == [threading.main_thread().name], timeout=5_000)
