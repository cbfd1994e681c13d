"""How long a plan waits for the first library scan, and what it says when it stops waiting.

The first scan of a big library runs in the background (seconds to a minute). After a restart the
index store holds the library as the last run left it: once that is loaded the index is `ready`
and plans use it while the scan re-checks the files behind it (a stat walk). Before that, a plan
waits up to FIRST_SCAN_WAIT_S, then goes ahead over the models known so far and says so in its
warnings, rather than holding a request or a queued prompt for as long as the scan takes. Pure Python (no
ComfyUI import), so it is unit-tested with a fake scan.
"""
from __future__ import annotations

import threading
from typing import Callable

FIRST_SCAN_WAIT_S = 20.0


class FirstScan:
    """`start` starts the scan in the background (called once); `finished()` marks it done."""

    def __init__(self, start: Callable[[], None], wait_s: float = FIRST_SCAN_WAIT_S):
        self._start = start
        self._wait_s = wait_s
        self._lock = threading.Lock()
        self._started = False
        self._done = threading.Event()
        self._ready = threading.Event()
        self._waiters = 0

    def begin(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        self._start()

    def ready(self) -> None:
        """The index is usable before the scan ends (a stored index of the whole library is loaded)."""
        self._ready.set()

    def finished(self) -> None:
        self._done.set()
        self._ready.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Start the scan if nobody has, wait until the index is ready or the scan has finished (at
        most `timeout`, default the gate's); True when it is."""
        if self._ready.is_set():
            return True
        self.begin()
        with self._lock:
            self._waiters += 1
        try:
            return self._ready.wait(self._wait_s if timeout is None else timeout)
        finally:
            with self._lock:
                self._waiters -= 1

    @property
    def waiting(self) -> bool:
        """Whether somebody (a plan, a node) is waiting for the index now."""
        return self._waiters > 0

    def warning(self, known: int) -> str | None:
        """The plan's warning while the first scan runs and no stored index was ready, else None."""
        if self._ready.is_set():
            return None
        return (f"the first scan of the model library has not finished: this plan chose among the {known:,} "
                "models known so far (a rescan or the next plan sees the rest)")
