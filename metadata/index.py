"""The model index: every model file ComfyUI can load, with what is known about it.

Built for big libraries (50k files, network drives): a rescan is a stat walk that opens no
file; only files whose (size, mtime) or sidecars changed are read again, and a transactional
store (metadata/store.py: SQLite) makes a restart a rescan too: a scan writes only the rows that
changed. Scans may run on a worker thread while the server reads: readers see an immutable
in-memory snapshot that a scan swaps in whole, and never touch the store (except `search`, which
is the store's full-text index).
"""
from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from . import base_models
from .cache import Key
from .events import PROGRESS_EVENT, EventSink
from .paths import ModelPaths
from .reader import MODEL_EXTENSIONS, Fingerprint, ModelFile, build_record
from .records import FOLDER_KINDS, ModelRecord
from .safe_open import describe, irregular_kind, printable
from .sidecars import PREVIEW_SUFFIXES, SIDECARS
from .store import IndexStore, is_corruption

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.5
MAX_FIND_TERMS = 16  # words of a `find` query that are used (nobody filters a list by more)
_READ_WORKERS = 4  # header reads are I/O-bound: overlap them on slow disks and network shares
_POOL_THRESHOLD = 32


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

    @classmethod
    def build(cls, records: dict[Key, ModelRecord], fingerprints: dict[Key, Fingerprint], generation: int) -> _State:
        ordered = tuple(sorted(records.values(), key=lambda r: (r.kind, r.name)))
        by_kind: dict[str, list[ModelRecord]] = {}
        for r in ordered:
            by_kind.setdefault(r.kind, []).append(r)
        haystacks = {(r.kind, r.name): "\n".join((r.name, r.title, *r.tags, *r.trigger_words)).lower()
                     for r in ordered}
        return cls(records, fingerprints, ordered, {k: tuple(v) for k, v in by_kind.items()}, haystacks, generation)


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
                 load_cache_now: bool = True):
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
               family: str | None = None, limit: int = 50) -> list[tuple[str, str, float]]:
        """(kind, name, score) of the models best matching the words of `text`, best first, from
        the store's full-text index (bm25, title weighted highest; see IndexStore.search), filtered
        by kind, architecture and family. It reflects the last scan's write, so a caller resolves
        names with get(). [] when no scan has written the store or it cannot be read. Raises
        ValueError for an unknown kind."""
        if kind is not None:
            _check_kind(kind)
        store = self._store
        if store is None:
            return []
        try:
            return store.search(text, kind=kind, architecture=architecture, family=family, limit=limit)
        except sqlite3.Error as e:
            if is_corruption(e):
                self._store_damage = f"corrupt: {printable(str(e), 200)}"
                self._store_synced = False  # so that the next scan writes, after rebuilding it
            self._store_problem(f"cannot search the index store {store.path!r}: {printable(str(e), 200)}")
            return []

    def _snapshot(self) -> _State:
        with self._lock:
            return self._state

    # --- scanning -----------------------------------------------------------------------------

    def scan(self, force: bool = False) -> ScanResult:
        """Walk every root; re-read files that are new or changed (all of them when `force`)."""
        with self._scan_lock:
            return self._scan(force)

    def set_exclude_folders(self, exclude_folders: Sequence[str]) -> bool:
        """Change which folders are skipped; the next scan or re-check applies it. True if it changed."""
        new = _Excludes.parse(exclude_folders)
        if new == self._excludes:
            return False
        self._excludes = new
        self._last_scan_at = None  # a re-check is due at once
        return True

    def recheck_if_due(self, recheck_s: float) -> bool:
        """Rescan when `recheck_s` has passed since the last scan; True if anything changed.

        Returns False at once while another scan runs, so a caller on the request path never
        waits for a scan it did not ask for."""
        last = self._last_scan_at
        if last is not None and self._clock() - last < recheck_s:
            return False
        if not self._scan_lock.acquire(blocking=False):
            return False
        try:
            return self._scan(False).changed > 0
        finally:
            self._scan_lock.release()

    def _scan(self, force: bool) -> ScanResult:
        started = self._clock()
        if not self._store_loaded:
            self._load_store()  # the stored snapshot first: unchanged files are not read again
        old = self._snapshot()
        found = self._walk()
        stale = [f for key, f in found.items() if force or old.fingerprints.get(key) != f.fingerprint]
        fresh = dict(zip(((f.kind, f.name) for f in stale), self._read(stale), strict=True))

        records: dict[Key, ModelRecord] = {}
        fingerprints: dict[Key, Fingerprint] = {}
        modified = 0
        to_write: list[Key] = []  # rows the store must (re)write: added or modified
        for key, f in found.items():
            fingerprints[key] = f.fingerprint
            if key in fresh:
                records[key] = fresh[key]
                before = old.records.get(key)
                if before is None:
                    to_write.append(key)
                elif (old.fingerprints.get(key) != f.fingerprint or before != fresh[key]
                      or before.extra != fresh[key].extra):
                    modified += 1
                    to_write.append(key)
            else:
                records[key] = old.records[key]
        added = sum(1 for key in found if key not in old.records)
        gone = [key for key in old.records if key not in found]
        removed = len(gone)
        changed = added + removed + modified

        state = old
        if changed or fresh:
            state = _State.build(records, fingerprints, old.generation + (1 if changed else 0))
            with self._lock:
                self._state = state
        if to_write or gone or not self._store_synced:
            self._write_store(state, to_write, gone)
        self._last_scan_at = self._clock()
        seconds = self._last_scan_at - started
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
        if total < _POOL_THRESHOLD:
            for done, f in enumerate(files, 1):
                yield _safe_build(f)
                self._progress(done, total, f.name)
            return
        with ThreadPoolExecutor(max_workers=_READ_WORKERS, thread_name_prefix="model-index") as pool:
            for done, (f, record) in enumerate(zip(files, pool.map(_safe_build, files), strict=True), 1):
                yield record
                self._progress(done, total, f.name)

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

    def _walk(self) -> dict[Key, ModelFile]:
        """Every model file under every root, first root winning a duplicate name (as ComfyUI)."""
        found: dict[Key, ModelFile] = {}
        shadowed: dict[str, ModelFile] = {}  # path -> the file that wins its name
        skipped: dict[str, str] = {}  # path -> why a file named like a model is not one
        for kind in FOLDER_KINDS:
            for root in self._paths.roots(kind):
                self._walk_root(kind, os.path.abspath(root), found, shadowed, skipped)
        for path in sorted(set(shadowed) - self._shadowed):  # log each duplicate once, not every rescan
            winner = shadowed[path]
            log.info("%r is not indexed: ComfyUI's %s loader resolves %r to %r (an earlier folder)",
                     path, winner.kind, winner.name, winner.path)
        self._shadowed = set(shadowed)
        for path in sorted(set(skipped) - self._skipped):  # one line per bad file, not per rescan
            log.warning("%r is not indexed: %s", path, skipped[path])
        self._skipped = set(skipped)
        return found

    def _walk_root(self, kind: str, root: str, found: dict[Key, ModelFile], shadowed: dict[str, ModelFile],
                   skipped: dict[str, str]) -> None:
        if self._excludes.absolute and self._excludes.matches(root, ""):
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
            try:
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as e:
                log.warning("cannot list %r: %s", folder, describe(e))
                continue
            by_name = {e.name: e for e in entries}
            subfolders: list[tuple[str, str]] = []
            for entry in entries:
                if entry.name.startswith("."):  # hidden folders, and macOS "._x.safetensors" junk
                    continue
                is_model = os.path.splitext(entry.name)[1].lower() in MODEL_EXTENSIONS
                try:
                    is_dir = entry.is_dir()  # follows symlinks: a folder named x.safetensors is a folder
                except OSError as e:  # a symlink loop (a -> a), or a folder that went away
                    if is_model:
                        skipped[entry.path] = f"cannot stat: {describe(e)}"
                    continue
                if is_dir:
                    sub_rel = rel + entry.name
                    if self._excludes.matches(entry.path, sub_rel):
                        continue
                    try:
                        sub = entry.stat()
                    except OSError:
                        continue
                    if (sub.st_dev, sub.st_ino) in visited:
                        log.debug("%r: folder already walked (symlink loop?); skipped", entry.path)
                        continue
                    visited.add((sub.st_dev, sub.st_ino))
                    subfolders.append((entry.path, sub_rel + "/"))
                elif is_model:
                    key = (kind, rel + entry.name)
                    if key in found:
                        shadowed[entry.path] = found[key]
                        continue
                    model = _model_file(kind, root, rel, entry, by_name, skipped)
                    if model is not None:
                        found[key] = model
            stack.extend(reversed(subfolders))

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
        return store

    def _load_store(self) -> None:
        """Take the store's rows as the snapshot (called with the scan lock held)."""
        store = self._open_store()
        if store is None:
            return
        self._store_loaded = True
        if store.in_memory:
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
            self._store_error = None
        except (OSError, sqlite3.Error) as e:
            if isinstance(e, OSError):  # the rebuild could not move the damaged file
                self._store_problem(f"cannot rebuild the index store {store.path!r}: {describe(e)}")
                self._store_synced = False
                return
            self._store_failed(store, e, "write")

    def _store_failed(self, store: IndexStore, error: sqlite3.Error, what: str) -> None:
        """One line; a corrupt store is set aside and replaced (filled by the next write)."""
        self._store_synced = False
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


def _model_file(kind: str, root: str, rel: str, entry: os.DirEntry[str], by_name: dict[str, os.DirEntry[str]],
                skipped: dict[str, str]) -> ModelFile | None:
    """A ModelFile from a directory entry: one stat for the file, one per sidecar present.

    Only a regular file (or a symlink to one) is a model: a FIFO, a device or a broken link named
    like a model goes into `skipped` with the reason, and is logged once by the walk."""
    try:
        st = entry.stat()
    except OSError as e:
        skipped[entry.path] = f"cannot stat: {describe(e)} (broken link?)"
        return None
    irregular = irregular_kind(st.st_mode)
    if irregular is not None:
        skipped[entry.path] = f"not a regular file ({irregular})"
        return None
    stem = os.path.splitext(entry.name)[0]
    sidecars = []
    for source, sidecar_name in SIDECARS:
        sidecar = by_name.get(sidecar_name(entry.name, stem))
        if sidecar is None:
            continue
        try:
            mtime_ns = sidecar.stat().st_mtime_ns
        except OSError:  # a broken link: the reader says so once, as a problem of this model
            mtime_ns = -1
        sidecars.append((source, sidecar.name, mtime_ns))
    preview = next((rel + stem + suffix for suffix in PREVIEW_SUFFIXES if stem + suffix in by_name), None)
    return ModelFile(kind=kind, name=rel + entry.name, root=root, path=entry.path, size=st.st_size,
                     mtime_ns=st.st_mtime_ns, sidecars=tuple(sidecars), preview=preview)


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
