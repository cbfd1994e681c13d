"""SHA256 of model files, computed only when something needs it, streamed, and cached.

Hashing a 70,000-file library reads terabytes, so nothing here runs on its own: the index never
hashes (a sidecar's hash is used when it has one), ComfyUI's start never waits for a hash, and a
lookup that needs one (the CivitAI fetcher) asks for exactly the files it needs. A hash is cached
by (path, size, mtime_ns): a file that changed is hashed again, an unchanged one never is.

Reads go through `safe_open.open_regular` (regular files only) in large chunks into one reused
buffer; `hashlib` releases the GIL while it digests a chunk, so a bulk job on a thread per core
uses every core without a process pool. A bulk job reports `intelligent.progress` events
(`task: "hash"`), can be cancelled, and waits while its gate says no (a prompt is executing).
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol, cast

from .events import PROGRESS_EVENT, EventSink
from .safe_open import describe, open_regular, printable

log = logging.getLogger(__name__)

CHUNK_BYTES = 2 * 1024 * 1024  # 4 KiB reads are ~10x slower; 8 MiB no longer fits the CPU cache (measured: bench --only hash)
PROGRESS_INTERVAL_S = 0.5
GATE_POLL_S = 0.25


class HashCache(Protocol):
    """Where hashes are kept between runs (the index store), keyed by what says a file changed."""

    def get_hash(self, path: str, size: int, mtime_ns: int) -> str | None:
        ...

    def put_hash(self, path: str, size: int, mtime_ns: int, sha256: str) -> None:
        ...


class MemoryHashCache:
    """A HashCache for one process (tests, scripts): forgets everything at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hashes: dict[tuple[str, int, int], str] = {}

    def get_hash(self, path: str, size: int, mtime_ns: int) -> str | None:
        with self._lock:
            return self._hashes.get((path, size, mtime_ns))

    def put_hash(self, path: str, size: int, mtime_ns: int, sha256: str) -> None:
        with self._lock:
            self._hashes[(path, size, mtime_ns)] = sha256


class FileChanged(OSError):
    """The file changed while it was read (a download still writing it): its hash means nothing."""


class Cancelled(Exception):
    """The job was cancelled while this file was being read."""


def autov2(sha256: str) -> str:
    """CivitAI's AutoV2 hash: the first 10 hex digits of the SHA256, upper case."""
    return sha256[:10].upper()


def sha256_file(path: str, *, cancel: threading.Event | None = None,
                on_bytes: Callable[[int], None] | None = None,
                gate: Callable[[], bool] | None = None) -> tuple[str, os.stat_result]:
    """The SHA256 (lower-case hex) of the regular file at `path`, and the stat it belongs to.

    Raises NotRegularFile / OSError when the file cannot be read, FileChanged when its size or
    mtime changed during the read, Cancelled when `cancel` is set. `gate`, when given, is asked
    between chunks; while it returns False the read waits."""
    with open_regular(path) as f:
        before = os.fstat(f.fileno())
        digest = hashlib.sha256()
        buffer = bytearray(min(CHUNK_BYTES, max(before.st_size, 1)))
        view = memoryview(buffer)
        total = 0
        while True:
            while gate is not None and not gate():
                if cancel is not None and cancel.wait(GATE_POLL_S):
                    raise Cancelled(path)
                if cancel is None:
                    time.sleep(GATE_POLL_S)
            if cancel is not None and cancel.is_set():
                raise Cancelled(path)
            n = cast(io.BufferedReader, f).readinto(buffer)  # open_regular gives a buffered binary file
            if not n:
                break
            total += n
            if total > before.st_size:
                raise FileChanged(f"grew past {before.st_size} bytes while it was read")
            digest.update(view[:n])
            if on_bytes is not None:
                on_bytes(n)
        after = os.fstat(f.fileno())
    if total != before.st_size or (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise FileChanged("changed while it was read")
    return digest.hexdigest(), before


@dataclass
class HashJob:
    """A bulk hash in the background: counts, results and errors grow as it runs."""

    total: int
    bytes_total: int
    done: int = 0
    bytes_done: int = 0
    results: dict[str, str] = field(default_factory=dict)  # path -> sha256
    errors: dict[str, str] = field(default_factory=dict)  # path -> why it has no hash
    cancelled: bool = False
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _finished: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def cancel(self) -> None:
        """Stop: files not started are skipped, files being read stop at their next chunk."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once every file is hashed, failed or skipped."""
        return self._finished.wait(timeout)

    @property
    def running(self) -> bool:
        return not self._finished.is_set()


class Hasher:
    """Hashes files on request, through `cache` (None: a MemoryHashCache).

    `workers`: threads of a bulk job (default: one per core). `events`: receives progress of bulk
    jobs. `gate`: a callable that says whether a bulk job may read now (False while a prompt
    executes, so sampling never competes with us for the disk and the cores)."""

    def __init__(self, cache: HashCache | None = None, *, events: EventSink | None = None,
                 workers: int | None = None, gate: Callable[[], bool] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self._cache: HashCache = cache if cache is not None else MemoryHashCache()
        self._events = events
        self._workers = max(1, workers or os.cpu_count() or 1)
        self._gate = gate
        self._clock = clock
        self._event_lock = threading.Lock()
        self._last_event_at: float | None = None

    def cached(self, path: str) -> str | None:
        """The hash of `path` if it is cached for the file as it is now (one stat, no read)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        return self._cache.get_hash(path, st.st_size, st.st_mtime_ns)

    def sha256(self, path: str) -> str:
        """The hash of `path`: from the cache, else read now on the caller's thread (raises like
        sha256_file)."""
        found = self.cached(path)
        if found is not None:
            return found
        sha, st = sha256_file(path)
        self._cache.put_hash(path, st.st_size, st.st_mtime_ns, sha)
        return sha

    def start(self, paths: Iterable[str]) -> HashJob:
        """Hash `paths` in the background (cached ones cost a stat); returns the job at once."""
        todo = list(dict.fromkeys(paths))
        sizes: dict[str, int] = {}
        for path in todo:
            try:
                sizes[path] = os.stat(path).st_size
            except OSError:
                sizes[path] = 0
        job = HashJob(total=len(todo), bytes_total=sum(sizes.values()))
        threading.Thread(target=self._run, args=(job, todo), name="model-hash", daemon=True).start()
        return job

    def _run(self, job: HashJob, todo: list[str]) -> None:
        try:
            self._progress(job, f"hashing {job.total} files", final=True)
            with ThreadPoolExecutor(max_workers=min(self._workers, max(1, len(todo))),
                                    thread_name_prefix="model-hash") as pool:
                for _ in pool.map(lambda p: self._one(job, p), todo):
                    pass
        finally:
            job.cancelled = job._cancel.is_set()
            self._progress(job, "cancelled" if job.cancelled else
                           f"hashed {len(job.results)} files, {len(job.errors)} failed", final=True)
            job._finished.set()

    def _one(self, job: HashJob, path: str) -> None:
        if job._cancel.is_set():
            return

        def count(n: int) -> None:
            with job._lock:
                job.bytes_done += n
            self._progress(job, os.path.basename(path))
        try:
            found = self.cached(path)
            if found is None:
                found, st = sha256_file(path, cancel=job._cancel, on_bytes=count, gate=self._gate)
                self._cache.put_hash(path, st.st_size, st.st_mtime_ns, found)
            with job._lock:
                job.results[path] = found
        except Cancelled:
            return
        except OSError as e:
            reason = describe(e)
            log.warning("%r could not be hashed: %s", path, printable(reason, 200))
            with job._lock:
                job.errors[path] = reason
        with job._lock:
            job.done += 1

    def _progress(self, job: HashJob, message: str, final: bool = False) -> None:
        if self._events is None:
            return
        with self._event_lock:  # the job's threads all report: one event per interval among them
            now = self._clock()
            if not final and self._last_event_at is not None and now - self._last_event_at < PROGRESS_INTERVAL_S:
                return
            self._last_event_at = now
            data = {"task": "hash", "done": job.done, "total": job.total, "message": message}
        try:
            self._events.send(PROGRESS_EVENT, data)
        except Exception as e:  # a broken websocket must not stop hashing
            log.warning("could not send hash progress event: %s: %s", type(e).__name__, printable(str(e), 200))
