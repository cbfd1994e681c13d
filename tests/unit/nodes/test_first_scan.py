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


def test_a_stored_index_is_used_while_the_scan_re_checks_it() -> None:
    """After a restart: plans go ahead, without a warning, as soon as the stored index is loaded."""
    gate = FirstScan(lambda: None, wait_s=10)
    threading.Timer(0.05, gate.ready).start()
    started = time.monotonic()
    assert gate.wait() is True
    assert time.monotonic() - started < 5
    assert not gate.done and gate.warning(50000) is None
    gate.finished()
    assert gate.done and gate.wait() is True


def test_waiting_says_whether_somebody_waits_for_the_index() -> None:
    """The runtime's background scan does not pause for a prompt that is itself waiting for it."""
    gate = FirstScan(lambda: None, wait_s=10)
    assert not gate.waiting
    waiter = threading.Thread(target=gate.wait)
    waiter.start()
    deadline = time.monotonic() + 5
    while not gate.waiting and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gate.waiting
    gate.finished()
    waiter.join(5)
    assert not gate.waiting
