"""The model index: every model file ComfyUI can load, with what is known about it.

Built for big libraries (50k files, network drives): a rescan is a stat walk that opens no
file; only files whose (size, mtime) or sidecars changed are read again, and a transactional
store (metadata/store.py: SQLite) makes a restart a rescan too: a scan writes only the rows that
changed. Scans may run on a worker thread while the server reads: readers see an immutable
in-memory snapshot that a scan swaps in whole, and never touch the store (except `search`, which
is the store's full-text index).
"""
from __future__ import annotations

import bisect
import logging
import os
import sqlite3
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Sequence

from . import base_models, read_workers
from .cache import Key
from .events import PROGRESS_EVENT, EventSink
from .paths import ModelPaths
from .postings_process import WorkerFailed
from .reader import MODEL_EXTENSIONS, Fingerprint, ModelFile, build_record
from .records import FOLDER_KINDS, ModelRecord
from .safe_open import describe, irregular_kind, printable
from .sidecars import PREVIEW_SUFFIXES, SIDECAR_SUFFIXES
from .store import IndexStore, is_corruption

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.5
MAX_FIND_TERMS = 16  # words of a `find` query that are used (nobody filters a list by more)
_READ_WORKERS = 4  # threads overlapping reads where they wait on the disk (network shares, cold disks)
PAUSE_POLL_S = 0.2  # how often a paused scan asks whether it may go on
CHUNK_FILES = 64  # files read before the choice between one thread and a pool is made again
IO_BOUND_RATIO = 3.0  # reading waits on the disk when its wall time is this many times the CPU time
# a folder whose mtime is this close to the wall clock when it is listed may change again within the same
# mtime (coarse-mtime filesystems: FAT's 2 s, some network shares): a quick re-check lists it again
RACY_S = 2.0


def io_bound(wall_s: float, cpu_s: float) -> bool:
    """Whether reading that took `wall_s` while the process used `cpu_s` of CPU mostly waited."""
    return wall_s > IO_BOUND_RATIO * max(cpu_s, 1e-6) and wall_s > 0.02
# file endings of the previews PREVIEW_SUFFIXES names: a folder without any is not searched for them
_PREVIEW_ENDINGS = tuple(sorted({'.' + suffix.rsplit('.', 1)[-1] for suffix in PREVIEW_SUFFIXES}))


@dataclass(frozen=True)
class ScanResult:
    total: int
    by_type: dict[str, int]
    changed: int  # added + removed + modified
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "by_type": dict(self.by_type), "changed": self.changed,
                "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class _State:
    """One consistent view of the index; replaced whole, never mutated."""

    records: dict[Key, ModelRecord] = field(default_factory=dict)
    fingerprints: dict[Key, Fingerprint] = field(default_factory=dict)
    ordered: tuple[ModelRecord, ...] = ()
    by_kind: dict[str, tuple[ModelRecord, ...]] = field(default_factory=dict)
    haystacks: dict[Key, str] = field(default_factory=dict)
    generation: int = 0

    keys: tuple[Key, ...] = ()  # of `ordered`

    @classmethod
    def build(cls, records: dict[Key, ModelRecord], fingerprints: dict[Key, Fingerprint], generation: int,
              previous: _State | None = None, changed: Iterable[Key] = ()) -> _State:
        """The view of `records`; with `previous`, the view it replaces: its order is kept when no
        key came or went, and its search texts for every record but the `changed` ones (a rescan
        that changed 100 of 50k redoes 100)."""
        changed = list(changed)  # every key added or modified
        same_keys = (previous is not None and len(previous.keys) == len(records)
                     and all(k in previous.records for k in changed))
        if previous is not None and same_keys:
            # the same keys: none added (each changed key was there), none removed (as many); the
            # changed records are put in their places (keys are sorted: found by bisection)
            keys = previous.keys
            slots = list(previous.ordered)
            for key in changed:
                slots[bisect.bisect_left(keys, key)] = records[key]
            ordered = tuple(slots)
        else:
            keys = tuple(sorted(records))
            ordered = tuple(records[k] for k in keys)
        by_kind: dict[str, tuple[ModelRecord, ...]] = {}
        for kind in FOLDER_KINDS:  # keys sorted by (kind, name): each kind is one run of them
            start, end = bisect.bisect_left(keys, (kind,)), bisect.bisect_left(keys, (kind + "\0",))
            if end > start:
                by_kind[kind] = ordered[start:end]
        if previous is None:
            haystacks = {key: _haystack(r) for key, r in zip(keys, ordered, strict=True)}
        else:
            haystacks = dict(previous.haystacks)
            if not same_keys:
                for key in [k for k in haystacks if k not in records]:
                    del haystacks[key]
            for key in changed:
                haystacks[key] = _haystack(records[key])
        return cls(records, fingerprints, ordered, by_kind, haystacks, generation, keys)


def _haystack(r: ModelRecord) -> str:
    """What `find` looks in: name, title, tags and trigger words, lower case."""
    return "\n".join((r.name, r.title, *r.tags, *r.trigger_words)).lower()


@dataclass(frozen=True)
class _Excludes:
    """`exclude_folders`: bare names match a folder anywhere, absolute paths that folder,
    relative paths with a separator that folder under any root. Compared the way the platform
    compares paths (`pathmod`: os.path, or ntpath/posixpath in tests): case-insensitively and
    with either separator on Windows."""

    names: frozenset[str] = frozenset()
    absolute: frozenset[str] = frozenset()
    relative: frozenset[str] = frozenset()
    pathmod: Any = field(default=os.path, compare=False)

    @classmethod
    def parse(cls, items: Sequence[str], pathmod: Any = os.path) -> _Excludes:
        names, absolute, relative = set(), set(), set()
        separators = {"/", pathmod.sep, pathmod.altsep} - {None}
        for item in items:
            item = pathmod.expanduser(str(item).strip())
            if not item:
                continue
            if pathmod.isabs(item):
                absolute.add(pathmod.normcase(pathmod.abspath(item)))
            elif any(sep in item for sep in separators):
                rel = item.replace(pathmod.sep, "/")
                relative.add(pathmod.normcase(rel.strip("/")))
            else:
                names.add(pathmod.normcase(item))
        return cls(frozenset(names), frozenset(absolute), frozenset(relative), pathmod)

    def matches(self, path: str, rel: str) -> bool:
        """Whether the folder at `path` (`rel` to its root, "/" separators) is excluded."""
        p = self.pathmod
        return (p.normcase(p.basename(path)) in self.names
                or (bool(self.absolute) and p.normcase(p.abspath(path)) in self.absolute)
                or (bool(self.relative) and p.normcase(rel) in self.relative))


class ModelIndex:
    """Index of the model folders `paths` names, kind by kind (see records.FOLDER_KINDS).

    `exclude_folders`: folder names (skipped at any depth), absolute paths, or paths relative
    to a root ("old/unused"). `cache_path`: the SQLite store that makes restarts cheap (loaded
    now unless `load_cache_now` is false; each scan writes the rows that changed); without one the
    store lives in memory (search still works, nothing survives the object). `clock`: seconds, for
    `recheck_if_due`, progress throttling and ScanResult.seconds. `events`: receives
    "intelligent.progress". Nothing is scanned until `scan()` or `recheck_if_due()` is called.
    """

    def __init__(self, paths: ModelPaths, *, exclude_folders: Sequence[str] = (), cache_path: str | None = None,
                 clock: Callable[[], float] = time.monotonic, events: EventSink | None = None,
                 load_cache_now: bool = True, busy: Callable[[], bool] | None = None):
        self._paths = paths
        self._excludes = _Excludes.parse(exclude_folders)
        self._cache_path = cache_path
        self._clock = clock
        self._events = events
        self._lock = threading.Lock()  # guards _state swaps
        self._scan_lock = threading.Lock()  # one scan at a time
        self._state = _State()
        self._last_scan_at: float | None = None
        self._last_event_at: float | None = None
        self._shadowed: set[str] = set()
        self._skipped: set[str] = set()
        self._store: IndexStore | None = None
        self._store_loaded = False  # its rows were taken as the snapshot (or there was nothing to take)
        self._store_synced = False  # it holds exactly the snapshot; when not, the next write compares all rows
        self._store_error: str | None = None  # the last problem logged, so a lasting one is logged once
        self._store_damage: str | None = None  # corruption a search met: the next scan rebuilds the store
        self._store_generation: int | None = None  # the snapshot generation the store's rows are (None: unknown)
        self._folders: dict[tuple[str, str], _Folder] = {}  # (kind, folder) -> what the last walk saw there
        self._last_full_at: float | None = None  # when the last walk that listed every folder ended
        self._exclude_gen = 0  # bumped by set_exclude_folders: a scan that saw it change keeps no folders
        self._exclude_lock = threading.Lock()  # set_exclude_folders against the end of a scan
        self._busy = busy  # whether the machine is busy with work that reading must not compete with
        self._pausable = False  # the running scan waits while busy() (set by scan(pausable=True))
        if load_cache_now:
            self.load_cache()

    def load_cache(self) -> None:
        """Open the store and take its records as the snapshot (inside ComfyUI this runs in the
        background scan thread: opening a big library's store must not hold up ComfyUI's start).
        A store that cannot be opened costs one log line; the index then works without it."""
        with self._scan_lock:
            self._load_store()

    def close(self) -> None:
        """Close the store's connections (a later scan or search opens them again)."""
        with self._scan_lock:
            store, self._store = self._store, None
            self._store_loaded = False
            self._store_generation = None
            if store is not None:
                store.close()

    # --- reading ------------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Bumped whenever a scan changes something: a cheap cache key for callers."""
        return self._snapshot().generation

    def records(self, kind: str | None = None) -> list[ModelRecord]:
        """All records, or those of one kind, sorted by (kind, name)."""
        state = self._snapshot()
        if kind is None:
            return list(state.ordered)
        _check_kind(kind)
        return list(state.by_kind.get(kind, ()))

    def get(self, kind: str, name: str) -> ModelRecord | None:
        """The record ComfyUI's loader for `kind` would load as `name` (either separator)."""
        return self._snapshot().records.get((kind, name.replace("\\", "/")))

    def counts(self) -> dict[str, int]:
        state = self._snapshot()
        return {kind: len(state.by_kind.get(kind, ())) for kind in FOLDER_KINDS}

    def find(self, type: str | None = None, q: str | None = None, base_model: str | None = None) -> list[ModelRecord]:
        """Records of folder kind `type` whose name, title, tags or trigger words contain every
        word of `q` (case-insensitive), and whose base model is `base_model` or of its family
        ("SDXL" finds "SDXL 1.0" and "SDXL Lightning", not "Pony"). Raises ValueError for an
        unknown type. `q` is untrusted (a URL parameter): its distinct words are used, at most
        MAX_FIND_TERMS of them, longest first, so a query costs at most that many substring tests
        per record however it was written."""
        state = self._snapshot()
        if type:
            _check_kind(type)
        candidates: Sequence[ModelRecord] = state.by_kind.get(type, ()) if type else state.ordered
        terms = sorted(set(q.lower().split()), key=lambda t: (-len(t), t))[:MAX_FIND_TERMS] if q else []
        match_base = _base_model_matcher(base_model) if base_model and base_model.strip() else None
        return [r for r in candidates
                if all(t in state.haystacks[(r.kind, r.name)] for t in terms)
                and (match_base is None or match_base(r.base_model))]

    def search(self, text: str, kind: str | None = None, architecture: str | None = None,
               family: str | None = None, limit: int = 50, each: int = 0) -> list[tuple[str, str, float]]:
        """(kind, name, score) of the models best matching the words of `text`, best first, from
        the store's full-text index (bm25, title weighted highest; see IndexStore.search, also for
        `each`), filtered by kind, architecture and family. It reflects the last scan's write, so a caller resolves
        names with get(). [] when no scan has written the store or it cannot be read. Raises
        ValueError for an unknown kind."""
        if kind is not None:
            _check_kind(kind)
        store = self._store
        if store is None:
            return []
        try:
            return store.search(text, kind=kind, architecture=architecture, family=family, limit=limit, each=each)
        except sqlite3.Error as e:
            if is_corruption(e):
                self._store_damage = f"corrupt: {printable(str(e), 200)}"
                self._store_synced = False  # so that the next scan writes, after rebuilding it
            self._store_problem(f"cannot search the index store {store.path!r}: {printable(str(e), 200)}")
            return []

    @property
    def search_generation(self) -> int | None:
        """The generation whose records search() answers for (it lags `generation` while a scan
        writes what it found), or None when the store cannot be searched (not opened, not written,
        damaged): a cache key for what callers derive from searches."""
        return self._store_generation if self._store is not None and self._store_damage is None else None

    # --- vectors (selector/meaning.py's VectorCache) -------------------------------------------

    def get_vectors(self, model_id: str, keys: Sequence[bytes]) -> dict[bytes, Any]:
        """Stored vectors by text key ({} without a store, or when it cannot be read: they are
        computed again)."""
        store = self._store
        if store is None:
            return {}
        try:
            return store.get_vectors(model_id, keys)
        except sqlite3.Error as e:
            self._store_problem(f"cannot read vectors from the index store {store.path!r}: {printable(str(e), 200)}")
            return {}

    def put_vectors(self, model_id: str, items: Sequence[tuple[bytes, Any]]) -> None:
        """Keep vectors in the store (nothing without one; a failure costs one log line)."""
        store = self._store
        if store is None:
            return
        try:
            store.put_vectors(model_id, items)
        except sqlite3.Error as e:
            self._store_problem(f"cannot write vectors to the index store {store.path!r}: {printable(str(e), 200)}")

    def prune_vectors(self, keep: Iterable[bytes]) -> int:
        """Drop stored vectors of texts no model has any more (see IndexStore.prune_vectors)."""
        store = self._store
        if store is None:
            return 0
        try:
            return store.prune_vectors(keep)
        except sqlite3.Error as e:
            self._store_problem(f"cannot prune vectors in the index store {store.path!r}: {printable(str(e), 200)}")
            return 0

    def prepare_search(self, background: bool = False) -> bool:
        """Read the store's full-text index into memory (IndexStore.build_postings), so searches
        rank in ~1 ms at 50k instead of tens of ms in SQLite. `background`: in a daemon thread,
        returning at once (what the runtime does after a load or a scan). True when searches use
        it now; False without a store, while it is read, or when it cannot be (searches still
        work, in SQLite)."""
        store = self._store
        if store is None:
            return False
        try:
            if background:
                store.read_postings_in_background()
                return False
            return store.build_postings() is not None
        except sqlite3.Error as e:  # (build_postings logs its own read failures; this is opening)
            self._store_problem(f"cannot read the index store {store.path!r}: {printable(str(e), 200)}")
            return False

    def _snapshot(self) -> _State:
        with self._lock:
            return self._state

    # --- scanning -----------------------------------------------------------------------------

    def scan(self, force: bool = False, pausable: bool = False) -> ScanResult:
        """Walk every root; re-read files that are new or changed (all of them when `force`).
        `pausable`: between chunks of CHUNK_FILES files, wait while `busy()` says so (a background
        scan, so that a prompt being sampled never competes with it; never on a request's path)."""
        with self._scan_lock:
            self._pausable = pausable
            try:
                return self._scan(force)
            finally:
                self._pausable = False

    def set_exclude_folders(self, exclude_folders: Sequence[str]) -> bool:
        """Change which folders are skipped; the next scan or re-check applies it. True if it changed.
        A scan running meanwhile finishes with the old list, then keeps no folders and leaves the
        re-check due, so the next re-check lists every folder with the new one."""
        new = _Excludes.parse(exclude_folders)
        with self._exclude_lock:  # not the scan lock: it is called on the request path, a scan may be running
            if new == self._excludes:
                return False
            self._excludes = new  # before the generation: a scan that sees the new generation walks with it
            self._exclude_gen += 1  # a scan running now keeps none of what it saw (see _scan)
            self._folders = {}  # folders are listed again: what is excluded changed
            self._last_scan_at = None  # a re-check is due at once
        return True

    def recheck_if_due(self, recheck_s: float, quick: bool = False) -> bool:
        """Rescan when `recheck_s` has passed since the last scan; True if anything changed.

        `quick`: a folder whose mtime is the one the last walk saw is taken as unchanged without
        listing it or stat'ing its files (one stat per folder instead of one per file: 50k models
        in ~1,000 folders); one whose mtime was within RACY_S of the wall clock when it was listed
        is listed again (a change in the same mtime tick would not show). A file added, removed or renamed changes its folder's mtime, and
        Lora-Manager and others replace a sidecar by renaming; a file rewritten in place is seen
        by the next full scan (`full_scan_due`). Returns False at once while another scan runs,
        so a caller on the request path never waits for a scan it did not ask for."""
        last = self._last_scan_at
        if last is not None and self._clock() - last < recheck_s:
            return False
        if not self._scan_lock.acquire(blocking=False):
            return False
        try:
            return self._scan(False, quick=quick).changed > 0
        finally:
            self._scan_lock.release()

    def full_scan_due(self, recheck_s: float) -> bool:
        """Whether the last walk that listed every folder is more than `recheck_s` old (or none ran)."""
        last = self._last_full_at
        return last is None or self._clock() - last >= recheck_s

    def _scan(self, force: bool, quick: bool = False) -> ScanResult:
        started = self._clock()
        if not self._store_loaded:
            self._load_store()  # the stored snapshot first: unchanged files are not read again
        old = self._snapshot()
        old_fps = old.fingerprints
        exclude_gen = self._exclude_gen  # before the walk reads the excludes (set_exclude_folders: the reverse)
        folders: dict[tuple[str, str], _Folder] = {}
        found = self._walk(None if force else old_fps, quick=quick and not force, folders=folders)
        stale = [f for f in found.values() if f is not None]
        new_keys = sum(1 for f in stale if (f.kind, f.name) not in old.records)
        # found holds every old key still there plus the new ones: any missing is gone (else no 50k-key pass)
        gone = [key for key in old.records if key not in found] if len(found) - new_keys != len(old.records) else []
        fresh = dict(zip(((f.kind, f.name) for f in stale), self._read(stale), strict=True))

        records = old.records
        fingerprints = old_fps
        added = modified = 0
        to_write: list[Key] = []  # rows the store must (re)write: added or modified
        if fresh or gone:  # a no-change rescan copies nothing
            records, fingerprints = dict(old.records), dict(old_fps)
            for key in gone:
                del records[key], fingerprints[key]
            for f in stale:
                key, fingerprint = (f.kind, f.name), f.fingerprint
                record, before = fresh[key], old.records.get(key)
                records[key], fingerprints[key] = record, fingerprint
                if before is None:
                    added += 1
                    to_write.append(key)
                elif old_fps.get(key) != fingerprint or before != record or before.extra != record.extra:
                    modified += 1
                    to_write.append(key)
        removed = len(gone)
        changed = added + removed + modified

        state = old
        if changed or fresh:
            state = _State.build(records, fingerprints, old.generation + (1 if changed else 0), previous=old,
                                 changed=fresh.keys())
            with self._lock:
                self._state = state
        if to_write or gone or not self._store_synced:
            self._write_store(state, to_write, gone)
        ended = self._clock()
        with self._exclude_lock:
            if exclude_gen == self._exclude_gen:
                self._folders = folders
                self._last_scan_at = ended
                if not quick or force:
                    self._last_full_at = ended
            else:  # the exclude list changed during the walk: what it saw is kept for nothing, and the
                self._folders = {}  # next re-check (due at once) lists every folder with the new list
                self._last_scan_at = None
        seconds = ended - started
        counts = {kind: len(state.by_kind.get(kind, ())) for kind in FOLDER_KINDS}
        if stale or changed:
            self._progress(len(stale), len(stale), f"indexed {len(records)} models ({changed} changed)", final=True)
        if changed:
            log.info("model index: %d models, %d added, %d removed, %d modified in %.2fs",
                     len(records), added, removed, modified, seconds)
        return ScanResult(total=len(records), by_type=counts, changed=changed, seconds=seconds)

    def _read(self, files: list[ModelFile]) -> Iterator[ModelRecord]:
        """Records for `files`, in order, reporting progress."""
        if not files:
            return iter(())
        total = len(files)
        self._progress(0, total, f"reading {total} model files", final=True)
        return self._read_all(files, total)

    def _read_all(self, files: list[ModelFile], total: int) -> Iterator[ModelRecord]:
        """Many files (read_workers.WORKER_MIN_FILES, a first scan) are read by worker processes,
        one per core (metadata/read_workers.py); the rest, or all where workers cannot run, here."""
        done = 0
        count = read_workers.worker_count()
        if total >= read_workers.WORKER_MIN_FILES and count:
            workers = read_workers.ReadWorkers(count)
            try:
                workers.start()
                log.info("model index: %d files read by %d worker processes", total, count)
                for chunk, records in read_workers.read_all(workers, self._chunks(files)):
                    for f, record in zip(chunk, records, strict=True):
                        yield record if record is not None else _safe_build(f)
                        done += 1
                        self._progress(done, total, f.name)
            except WorkerFailed as e:
                log.info("model index: reading in this process from file %d of %d (%s)", done + 1, total, e)
            finally:
                workers.close()
        if done < total:
            yield from self._read_here(files, done, total)

    def _chunks(self, files: list[ModelFile]) -> Iterator[list[ModelFile]]:
        for start in range(0, len(files), CHUNK_FILES):
            if self._pausable:
                self._wait_until_idle()
            yield files[start:start + CHUNK_FILES]

    def _read_here(self, files: list[ModelFile], first: int, total: int) -> Iterator[ModelRecord]:
        """Files from `first` on are read in chunks of CHUNK_FILES, each on one thread while reading costs CPU (a
        local disk, a warm cache: threads there only contend for the GIL; at 19k warm files a pool
        of 4 took 2.5x as long), or on a pool of _READ_WORKERS threads while the chunk before it
        mostly waited for the disk (a cold cache, a network share), where overlapping reads pays.
        The process's CPU time against the wall time tells which, chunk by chunk."""
        pool: ThreadPoolExecutor | None = None
        threaded = False
        try:
            for start in range(first, total, CHUNK_FILES):
                if self._pausable:
                    self._wait_until_idle()
                chunk = files[start:start + CHUNK_FILES]
                wall, cpu = time.perf_counter(), time.process_time()
                if threaded:
                    if pool is None:
                        log.info("model index: reading waits on the disk; %d threads read from now on",
                                 _READ_WORKERS)
                        pool = ThreadPoolExecutor(max_workers=_READ_WORKERS, thread_name_prefix="model-index")
                    records: Iterator[ModelRecord] = pool.map(_safe_build, chunk)
                else:
                    records = map(_safe_build, chunk)
                for done, (f, record) in enumerate(zip(chunk, records, strict=True), start + 1):
                    yield record
                    self._progress(done, total, f.name)
                threaded = io_bound(time.perf_counter() - wall, time.process_time() - cpu)
        finally:
            if pool is not None:
                pool.shutdown()

    def _wait_until_idle(self) -> None:
        """Wait while busy() is true (polled every PAUSE_POLL_S; a busy() that fails counts as idle)."""
        busy, logged = self._busy, False
        while busy is not None:
            try:
                if not busy():
                    return
            except Exception as e:  # noqa: BLE001 - a broken probe must not stop the scan
                log.debug("busy probe failed: %s: %s", type(e).__name__, printable(str(e), 200))
                return
            if not logged:
                log.info("model index: a prompt is executing; reading waits until it ends")
                logged = True
            time.sleep(PAUSE_POLL_S)

    def _progress(self, done: int, total: int, message: str, final: bool = False) -> None:
        """Send a progress event: at most one per PROGRESS_INTERVAL_S, plus the forced ones."""
        if self._events is None:
            return
        now = self._clock()
        if not final and self._last_event_at is not None and now - self._last_event_at < PROGRESS_INTERVAL_S:
            return
        self._last_event_at = now
        try:
            self._events.send(PROGRESS_EVENT, {"task": "index", "done": done, "total": total, "message": message})
        except Exception as e:  # a broken websocket must not break indexing
            log.warning("could not send index progress event: %s: %s", type(e).__name__, printable(str(e), 200))

    # --- walking ------------------------------------------------------------------------------

    def _walk(self, known: Mapping[Key, Fingerprint] | None = None, quick: bool = False,
              folders: dict[tuple[str, str], _Folder] | None = None) -> dict[Key, ModelFile | None]:
        """Every model file under every root, first root winning a duplicate name (as ComfyUI):
        None for one whose fingerprint is the one `known` has for it (unchanged: no object is made
        for it, so a rescan of 50k unchanged files allocates almost nothing), else its ModelFile.
        `quick`: folders whose mtime is the one the last scan kept are not listed. `folders` is
        filled with what this walk saw in each folder it may trust next time (the caller keeps it)."""
        found: dict[Key, ModelFile | None] = {}
        shadowed: dict[str, tuple[str, str, str]] = {}  # path -> (kind, name, path) of the file that wins its name
        skipped: dict[str, str] = {}  # path -> why a file named like a model is not one
        if folders is None:
            folders = {}
        excludes = self._excludes  # one list for the whole walk, even if set_exclude_folders runs meanwhile
        seen_before = self._folders if quick else {}
        for kind in FOLDER_KINDS:
            for root in self._paths.roots(kind):
                self._walk_root(kind, os.path.abspath(root), found, shadowed, skipped, known or {},
                                folders, seen_before, excludes)
        for path in sorted(set(shadowed) - self._shadowed):  # log each duplicate once, not every rescan
            log.info("%r is not indexed: ComfyUI's %s loader resolves %r to %r (an earlier folder)",
                     path, *shadowed[path])
        self._shadowed = set(shadowed)
        for path in sorted(set(skipped) - self._skipped):  # one line per bad file, not per rescan
            log.warning("%r is not indexed: %s", path, skipped[path])
        self._skipped = set(skipped)
        return found

    def _walk_root(self, kind: str, root: str, found: dict[Key, ModelFile | None],
                   shadowed: dict[str, tuple[str, str, str]], skipped: dict[str, str],
                   known: Mapping[Key, Fingerprint], folders: dict[tuple[str, str], _Folder],
                   seen_before: Mapping[tuple[str, str], _Folder], excludes: _Excludes) -> None:
        """Walk one root. This is the whole cost of a no-change rescan (one stat per model file and
        per sidecar, nothing opened), so it does per entry only what it must. Subfolders are walked
        in name order (the first path to a folder linked twice wins, the same one every time)."""
        if excludes.absolute and excludes.matches(root, ""):
            return
        try:
            st = os.stat(root)
        except OSError:
            log.debug("model folder %r does not exist", root)
            return
        if not stat.S_ISDIR(st.st_mode):
            return
        visited = {(st.st_dev, st.st_ino)}  # symlinked folders are followed; loops are not
        stack = [(root, "")]
        while stack:
            folder, rel = stack.pop()
            now_ns = time.time_ns()  # wall clock, as mtimes are (self._clock is for scheduling)
            try:
                folder_mtime = os.stat(folder).st_mtime_ns  # before listing: a change meanwhile shows next time
            except OSError:
                folder_mtime = None
            before = seen_before.get((kind, folder))
            if (before is not None and folder_mtime is not None and before.mtime_ns == folder_mtime
                    and all(key in found or (key in known and known[key][0] == path) for key, path in before.models)):
                # (trusted only while each file that wins its name is the one the index holds: a
                # duplicate name in an earlier root that went away makes this folder's copy the winner)
                for key, path in before.models:  # unchanged folder: its files as the last walk saw them
                    if key in found:
                        winner = found[key]
                        shadowed[path] = (kind, key[1], winner.path if winner else known[key][0])
                    else:
                        found[key] = None
                skipped.update(before.skipped)
                folders[(kind, folder)] = before
                pushed: list[tuple[str, str]] = []
                for sub_path, sub_rel, dev, ino in before.subfolders:  # seen as a listing would see them
                    if (dev, ino) in visited:  # reached another way (a loop, or a link to it walked first)
                        log.debug("%r: folder already walked (symlink loop?); skipped", sub_path)
                        continue
                    visited.add((dev, ino))
                    pushed.append((sub_path, sub_rel))
                stack.extend(reversed(pushed))
                continue
            models: list[tuple[Key, str]] = []
            skipped_here: dict[str, str] = {}
            try:
                with os.scandir(folder) as it:
                    # hidden folders and files, and macOS "._x.safetensors" junk, are not looked at
                    entries = [e for e in it if not e.name.startswith(".")]
            except OSError as e:
                log.warning("cannot list %r: %s", folder, describe(e))
                continue
            by_name = {e.name: e for e in entries}
            previews = any(e.name.lower().endswith(_PREVIEW_ENDINGS) for e in entries)
            dirs: list[os.DirEntry[str]] = []
            for entry in entries:
                name = entry.name
                dot = name.rfind(".")
                if dot > 0 and name[dot:].lower() in MODEL_EXTENSIONS:
                    try:
                        file_st = entry.stat()  # follows symlinks: a folder named x.safetensors is a folder
                    except OSError as e:  # a broken link, a symlink loop (a -> a), a file that went away
                        skipped_here[entry.path] = f"cannot stat: {describe(e)}" + (
                            " (broken link?)" if isinstance(e, FileNotFoundError) else "")
                        continue
                    mode = file_st.st_mode
                    if not stat.S_ISDIR(mode):
                        key = (kind, rel + name)
                        if not stat.S_ISREG(mode):
                            skipped_here[entry.path] = f"not a regular file ({irregular_kind(mode)})"
                            continue
                        models.append((key, entry.path))
                        if key in found:
                            winner = found[key]
                            shadowed[entry.path] = (kind, key[1], winner.path if winner else known[key][0])
                        else:
                            found[key] = _model_file(kind, root, rel, entry, file_st, name[:dot], by_name, previews,
                                                     known.get(key))
                        continue
                else:
                    try:
                        if not entry.is_dir():
                            continue
                    except OSError:  # a symlink loop, a folder that went away
                        continue
                dirs.append(entry)
            subfolders: list[tuple[str, str, int, int]] = []
            dirs.sort(key=lambda e: e.name)  # in name order: which link to a folder wins is stable (files need none)
            for entry in dirs:
                sub_rel = rel + entry.name
                if excludes.matches(entry.path, sub_rel):
                    continue
                try:
                    sub = entry.stat()
                except OSError:
                    continue
                if (sub.st_dev, sub.st_ino) in visited:
                    log.debug("%r: folder already walked (symlink loop?); skipped", entry.path)
                    continue
                visited.add((sub.st_dev, sub.st_ino))
                subfolders.append((entry.path, sub_rel + "/", sub.st_dev, sub.st_ino))
            skipped.update(skipped_here)
            # trusted next time only when its mtime is RACY_S older than now: a change within the same
            # mtime tick after this listing would not show (such a folder is listed again)
            if folder_mtime is not None and now_ns - folder_mtime >= RACY_S * 1e9:
                folders[(kind, folder)] = _Folder(folder_mtime, tuple(models), tuple(subfolders),
                                                  tuple(skipped_here.items()))
            stack.extend((path, sub_rel) for path, sub_rel, _, _ in reversed(subfolders))

    # --- store --------------------------------------------------------------------------------

    def _open_store(self) -> IndexStore | None:
        """The store, opened (and created, migrated, or set aside and rebuilt) on first use; None,
        logged once, while its location cannot be used (tried again at the next scan)."""
        if self._store is not None:
            return self._store
        store = IndexStore(self._cache_path or ":memory:")
        try:
            store.open()
        except (OSError, sqlite3.Error) as e:
            reason = describe(e) if isinstance(e, OSError) else printable(str(e), 200)
            self._store_problem(f"cannot open the index store {store.path!r}: {reason}; the index works "
                                "without it (a restart reads every file again)")
            store.close()
            return None
        self._store = store
        self._store_synced = False  # what it holds is compared with the snapshot before the next write
        self._store_generation = None
        return store

    def _load_store(self) -> None:
        """Take the store's rows as the snapshot (called with the scan lock held)."""
        store = self._open_store()
        if store is None:
            return
        self._store_loaded = True
        if store.in_memory:
            if not self._snapshot().generation:
                self._store_generation = 0  # (empty, as the snapshot)
            return
        if self._snapshot().generation:  # scanned while the store could not be opened: the scan is newer
            self._store_synced = False  # what differs is written at the next scan
            return
        try:
            entries = store.load()
        except sqlite3.Error as e:
            self._store_failed(store, e, "read")
            return
        records = {key: record for key, (_, record) in entries.items()}
        fingerprints = {key: fp for key, (fp, _) in entries.items()}
        with self._lock:
            self._state = _State.build(records, fingerprints, 1 if records else 0)
        self._store_synced = True
        self._store_generation = 1 if records else 0
        if records:
            log.info("model index: %d models loaded from %r", len(records), store.path)

    def _write_store(self, state: _State, to_write: list[Key], gone: list[Key]) -> None:
        """Write the rows that changed (or, when the store may differ from the snapshot, every row
        that differs) to the store."""
        store = self._open_store()
        if store is None:
            return
        try:
            damage, self._store_damage = self._store_damage, None
            if damage is not None:
                store.rebuild(damage)
                self._store_synced = False
            if self._store_synced:
                upserts = [(state.fingerprints[k], state.records[k]) for k in to_write]
            else:
                upserts, gone = store.diff({k: (state.fingerprints[k], r) for k, r in state.records.items()})
            if upserts or gone:
                store.apply(upserts, gone)
            self._store_synced = True
            self._store_generation = state.generation
            self._store_error = None
        except (OSError, sqlite3.Error) as e:
            if isinstance(e, OSError):  # the rebuild could not move the damaged file
                self._store_problem(f"cannot rebuild the index store {store.path!r}: {describe(e)}")
                self._store_synced = False
                self._store_generation = None
                return
            self._store_failed(store, e, "write")

    def _store_failed(self, store: IndexStore, error: sqlite3.Error, what: str) -> None:
        """One line; a corrupt store is set aside and replaced (filled by the next write)."""
        self._store_synced = False
        self._store_generation = None
        if not is_corruption(error):
            self._store_problem(f"cannot {what} the index store {store.path!r}: {printable(str(error), 200)}")
            return
        try:
            store.rebuild(f"corrupt: {printable(str(error), 200)}")
        except (OSError, sqlite3.Error) as e:
            self._store_problem(f"cannot rebuild the index store {store.path!r}: {printable(str(e), 200)}")
            store.close()
            self._store = None

    def _store_problem(self, message: str) -> None:
        if message != self._store_error:
            log.warning("%s", message)
            self._store_error = message


class _Folder(NamedTuple):
    """What a walk saw in one folder, for a quick re-check while the folder's mtime stays the same."""

    mtime_ns: int
    models: tuple[tuple[Key, str], ...]  # (key, path) of the regular model files in it
    subfolders: tuple[tuple[str, str, int, int], ...]  # (path, rel, st_dev, st_ino) walked from it, in name order
    skipped: tuple[tuple[str, str], ...]  # (path, why) of files named like models that are not


def _model_file(kind: str, root: str, rel: str, entry: os.DirEntry[str], st: os.stat_result, stem: str,
                by_name: dict[str, os.DirEntry[str]], previews: bool, known: Fingerprint | None) -> ModelFile | None:
    """The ModelFile of a regular file the walk found, or None when its fingerprint is `known`.
    One stat per sidecar present (a sidecar that is a broken link gets mtime -1; the reader says
    so once, as a problem of this model). The signature is built as reader.signature builds it,
    from strings only: an unchanged file costs no tuple."""
    name = entry.name
    get = by_name.get
    sig = ""
    for source, suffix, after in SIDECAR_SUFFIXES:
        sidecar = get((name if after else stem) + suffix)
        if sidecar is not None:
            part = f"{source}\0{sidecar.name}\0{_mtime_ns(sidecar)}"
            sig = sig + "\0\0" + part if sig else part
    preview = None
    if previews:
        preview = next((rel + stem + suffix for suffix in PREVIEW_SUFFIXES if stem + suffix in by_name), None)
        if preview is not None:
            sig = sig + "\0\0\0" + preview if sig else "\0" + preview
    if (known is not None and known[3] == sig and known[2] == st.st_mtime_ns and known[1] == st.st_size
            and known[0] == entry.path):
        return None
    sidecars = tuple((source, sidecar.name, _mtime_ns(sidecar)) for source, suffix, after in SIDECAR_SUFFIXES
                     if (sidecar := get((name if after else stem) + suffix)) is not None)
    return ModelFile(kind, rel + name, root, entry.path, st.st_size, st.st_mtime_ns, sidecars, preview, sig)


def _mtime_ns(entry: os.DirEntry[str]) -> int:
    """A sidecar's mtime (DirEntry caches the stat), -1 for one that cannot be stat'ed (a broken link)."""
    try:
        return entry.stat().st_mtime_ns
    except OSError:
        return -1


def _safe_build(file: ModelFile) -> ModelRecord:
    """build_record, but a bug or an OS error on one file never stops the scan: one line, no traceback."""
    try:
        return build_record(file)
    except Exception as e:  # noqa: BLE001 - any failure becomes a problem string on that record
        reason = f"{type(e).__name__}: {printable(str(e), 200)}"
        log.warning("%r could not be indexed: %s", file.path, reason)
        return ModelRecord(name=file.name, kind=file.kind, path=file.path, size=file.size,
                           mtime=file.mtime_ns / 1e9, title=file.stem, problems=(f"could not be indexed: {reason}",))


def _check_kind(kind: str) -> None:
    if kind not in FOLDER_KINDS:
        raise ValueError(f"unknown model type {kind!r}; expected one of {', '.join(FOLDER_KINDS)}")


def _base_model_matcher(base_model: str) -> Callable[[str], bool]:
    wanted = " ".join(base_model.lower().split())
    family = base_models.family(base_model)

    def match(value: str) -> bool:
        if " ".join(value.lower().split()) == wanted:
            return True
        return family != "unknown" and base_models.family(value) == family
    return match
