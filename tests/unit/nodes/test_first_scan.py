"""A plan asked during the first library scan waits a bounded time, then says the index was partial."""
from __future__ import annotations

import threading
import time

from intelligent_pipeline.nodes.first_scan import FirstScan


def test_the_scan_starts_once_however_many_wait() -> None:
    starts: list[int] = []
    gate = FirstScan(lambda: starts.append(1), wait_s=0.05)
    threads = [threading.Thread(target=gate.wait) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert starts == [1]


def test_a_wait_ends_when_the_scan_finishes() -> None:
    gate: FirstScan

    def start() -> None:
        threading.Timer(0.1, gate.finished).start()
    gate = FirstScan(start, wait_s=10)
    started = time.monotonic()
    assert gate.wait() is True
    assert time.monotonic() - started < 5
    assert gate.warning(12) is None


def test_a_scan_that_takes_too_long_gives_a_partial_index_with_a_warning() -> None:
    gate = FirstScan(lambda: None, wait_s=0.2)
    started = time.monotonic()
    assert gate.wait() is False
    assert 0.15 < time.monotonic() - started < 5
    warning = gate.warning(1234)
    assert warning is not None and "1,234 models known so far" in warning
    gate.finished()
    assert gate.wait() is True and gate.warning(5000) is None
