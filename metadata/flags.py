"""The user's own flags on models (excluded, favorite), kept in their own file.

`<user dir>/default/intelligent-pipeline-flags.json` (contracts.md, `POST models/flags`): never in
the rebuildable index store and never in other tools' sidecars, so a rebuilt store loses nothing a
user said. The file is versioned:

    {"version": 1, "models": {"<folder kind>": {"<loader name>": {"excluded": true, "favorite": true}}}}

Only flags that are on are stored; turning the last one off removes the entry. Keys this version
does not know (top level, per kind, per model) are kept as they are when the file is rewritten.

The file is read bounded and regular-only (safe_open.read_regular), re-read when it changes on
disk (size or mtime), and written atomically (atomic.py, which keeps its mode). A file that cannot
be read or is not this format is never overwritten: one log line, and before the next write it is
moved aside to `<name>.corrupt-<timestamp>`. All methods are thread-safe.

`FlaggedIndex` shows an index's records with these flags applied (a record's `excluded` is the
sidecar's `exclude: true` or the user's flag), which is what the planner must be given.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from typing import Any, Callable, Iterable, Mapping

from . import jsonio
from .atomic import atomic_write_bytes
from .records import FOLDER_KINDS, ModelRecord
from .safe_open import FileTooLarge, NotRegularFile, describe, printable, read_regular

log = logging.getLogger(__name__)

FLAGS_FILE = "intelligent-pipeline-flags.json"
FORMAT_VERSION = 1
FLAG_NAMES = ("excluded", "favorite")
MAX_FLAGS_BYTES = 16 * 1024 * 1024  # ~150k flagged models; a bigger file is not ours
MAX_NAME_CHARS = 4096


class FlagsError(ValueError):
    """A request the flags cannot take; `field` names the part at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclasses.dataclass(frozen=True)
class Flags:
    excluded: bool = False
    favorite: bool = False

    def any(self) -> bool:
        return self.excluded or self.favorite


NO_FLAGS = Flags()
Key = tuple[str, str]


def normalise_name(name: str) -> str:
    return name.replace("\\", "/")


class UserFlags:
    """The flags file at `path` (see the module's doc). `clock` names set-aside files."""

    def __init__(self, path: str, clock: Callable[[], float] = time.time):
        self.path = path
        self._clock = clock
        self._lock = threading.RLock()
        self._stamp: tuple[int, int] | None = None  # (size, mtime_ns) of what was read; None: no file
        self._doc: dict[str, Any] = _empty_doc()
        self._flags: dict[Key, Flags] = {}
        self._unreadable: str | None = None  # why the file on disk cannot be used (it is set aside on write)
        self._version = 0
        self._loaded = False

    # --- reading ---------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Bumped whenever the flags change (a write here, or the file changed on disk)."""
        with self._lock:
            self._refresh()
            return self._version

    def get(self, kind: str, name: str) -> Flags:
        with self._lock:
            self._refresh()
            return self._flags.get((kind, normalise_name(name)), NO_FLAGS)

    def all(self) -> dict[Key, Flags]:
        with self._lock:
            self._refresh()
            return dict(self._flags)

    @property
    def problem(self) -> str | None:
        """Why the file on disk is not used, or None."""
        with self._lock:
            self._refresh()
            return self._unreadable

    def _refresh(self) -> None:
        """Re-read the file when it appeared, changed or went away since the last read."""
        try:
            st = os.stat(self.path)
            stamp: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            stamp = None
        except OSError as e:
            stamp = (-1, -1)
            if self._loaded and self._stamp == stamp:
                return
            self._set_unreadable(f"cannot stat: {describe(e)}", stamp)
            return
        if self._loaded and stamp == self._stamp:
            return
        self._loaded = True
        if stamp is None:
            self._install(_empty_doc(), None)
            return
        doc, problem = self._read()
        if problem is not None:
            self._set_unreadable(problem, stamp)
            return
        self._install(doc, stamp)

    def _read(self) -> tuple[dict[str, Any], str | None]:
        try:
            raw = read_regular(self.path, MAX_FLAGS_BYTES)
        except (NotRegularFile, FileTooLarge) as e:
            return {}, str(e)
        except OSError as e:
            return {}, f"cannot read: {describe(e)}"
        try:
            doc = jsonio.loads(raw)
        except (ValueError, RecursionError):
            return {}, "not valid JSON"
        if not isinstance(doc, dict):
            return {}, "not a JSON object"
        version = doc.get("version")
        if type(version) is not int or version != FORMAT_VERSION:
            return {}, f"format version {printable(repr(version), 40)} is not {FORMAT_VERSION}"
        if not isinstance(doc.get("models", {}), dict):
            return {}, "`models` is not an object"
        return doc, None

    def _set_unreadable(self, problem: str, stamp: tuple[int, int] | None) -> None:
        if problem != self._unreadable or stamp != self._stamp:
            log.warning("the flags file %r is not used (%s); it is kept, and set aside before the next write",
                        self.path, problem)
        self._unreadable = problem
        self._stamp = stamp
        self._loaded = True
        if self._flags:
            self._version += 1
        self._doc, self._flags = _empty_doc(), {}

    def _install(self, doc: dict[str, Any], stamp: tuple[int, int] | None) -> None:
        flags = _parse(doc)
        if flags != self._flags:
            self._version += 1
        self._doc, self._flags, self._stamp, self._unreadable = doc, flags, stamp, None

    # --- writing ---------------------------------------------------------------------------------

    def set(self, kind: str, name: str, *, excluded: bool | None = None, favorite: bool | None = None) -> Flags:
        """Turn flags on or off (None leaves one as it is) and write the file; the flags now.
        Raises FlagsError for a bad kind or name, OSError when the file cannot be written."""
        if kind not in FOLDER_KINDS:
            raise FlagsError("type", f"must be one of {sorted(FOLDER_KINDS)}")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
            raise FlagsError("name", f"must be a model name of 1 to {MAX_NAME_CHARS} characters")
        try:
            name.encode("utf-8")
        except UnicodeEncodeError as e:
            raise FlagsError("name", "is not valid Unicode") from e
        for field, value in (("excluded", excluded), ("favorite", favorite)):
            if value is not None and not isinstance(value, bool):
                raise FlagsError(field, "must be true or false")
        name = normalise_name(name)
        with self._lock:
            self._refresh()
            current = self._flags.get((kind, name), NO_FLAGS)
            new = Flags(excluded=current.excluded if excluded is None else excluded,
                        favorite=current.favorite if favorite is None else favorite)
            if new == current:
                return new
            doc = _copy_doc(self._doc)
            models = doc.setdefault("models", {})
            by_name = models.get(kind)
            if not isinstance(by_name, dict):
                by_name = models[kind] = {}
            entry = by_name.get(name)
            entry = dict(entry) if isinstance(entry, dict) else {}
            for flag in FLAG_NAMES:
                if getattr(new, flag):
                    entry[flag] = True
                else:
                    entry.pop(flag, None)
            if entry:
                by_name[name] = entry
            else:
                by_name.pop(name, None)
                if not by_name:
                    models.pop(kind, None)
            doc["version"] = FORMAT_VERSION
            self._write(doc)
            return new

    def _write(self, doc: dict[str, Any]) -> None:
        if self._unreadable is not None and os.path.lexists(self.path):
            aside = self._set_aside()
            log.warning("the unreadable flags file %r (%s) was moved to %r; a new one is written",
                        self.path, self._unreadable, aside)
        atomic_write_bytes(self.path, (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
        try:
            st = os.stat(self.path)
            stamp: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = None
        self._loaded = True
        self._install(doc, stamp)

    def _set_aside(self) -> str:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(self._clock()))
        base = f"{self.path}.corrupt-{stamp}"
        aside, n = base, 1
        while os.path.lexists(aside):
            n += 1
            aside = f"{base}-{n}"
        os.rename(self.path, aside)
        return aside

    def apply(self, record: ModelRecord) -> ModelRecord:
        """`record` with the user's flags: excluded if either the sidecar or the user says so;
        favorite in `extra["favorite"]` (a Lora-Manager sidecar's favorite counts too)."""
        flags = self.get(record.kind, record.name)
        return apply_flags(record, flags)


def apply_flags(record: ModelRecord, flags: Flags) -> ModelRecord:
    if not flags.any():
        return record
    extra = record.extra
    if flags.favorite and extra.get("favorite") is not True:
        extra = {**extra, "favorite": True}
    if flags.excluded == record.excluded or record.excluded:
        return record if extra is record.extra else dataclasses.replace(record, extra=extra)
    return dataclasses.replace(record, excluded=True, extra=extra)


def is_favorite(record: ModelRecord) -> bool:
    return record.extra.get("favorite") is True


def _empty_doc() -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "models": {}}


def _copy_doc(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A copy deep enough to edit `models` without touching `doc` (what other readers see)."""
    out = dict(doc)
    models = out.get("models")
    out["models"] = {k: dict(v) if isinstance(v, dict) else v for k, v in models.items()} \
        if isinstance(models, dict) else {}
    return out


def _parse(doc: Mapping[str, Any]) -> dict[Key, Flags]:
    """The flags the document holds; entries that are not of this format are skipped (and kept)."""
    out: dict[Key, Flags] = {}
    models = doc.get("models")
    if not isinstance(models, dict):
        return out
    for kind, by_name in models.items():
        if kind not in FOLDER_KINDS or not isinstance(by_name, dict):
            continue
        for name, entry in by_name.items():
            if not isinstance(name, str) or not name or len(name) > MAX_NAME_CHARS or not isinstance(entry, dict):
                continue
            flags = Flags(excluded=entry.get("excluded") is True, favorite=entry.get("favorite") is True)
            if flags.any():
                out[(kind, normalise_name(name))] = flags
    return out


class FlaggedIndex:
    """An index's records with the user's flags applied.

    `records`, `get`, `find` and `generation` are the index's with the flags applied; any other
    method that returns a record or a list or tuple of records (a store's candidate lookup) has
    them applied to its result too; anything else is the index's own."""

    def __init__(self, index: Any, flags: UserFlags):
        self.index = index
        self.flags = flags

    def _apply_all(self, records: Iterable[ModelRecord]) -> list[ModelRecord]:
        flags = self.flags.all()
        if not flags:
            return list(records)
        names = {name for _, name in flags}  # a set test per record: 50k records in a few ms
        return [apply_flags(r, flags.get((r.kind, r.name), NO_FLAGS)) if r.name in names else r for r in records]

    def records(self, kind: str | None = None) -> list[ModelRecord]:
        return self._apply_all(self.index.records(kind))

    def get(self, kind: str, name: str) -> ModelRecord | None:
        record = self.index.get(kind, name)
        return None if record is None else self.flags.apply(record)

    def find(self, *args: Any, **kwargs: Any) -> list[ModelRecord]:
        return self._apply_all(self.index.find(*args, **kwargs))

    @property
    def generation(self) -> int:
        """Changes when the index or the flags change (a cache key for node results)."""
        return (int(self.index.generation) << 32) | (self.flags.version & 0xFFFFFFFF)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.index, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._apply_result(attr(*args, **kwargs))

        return call

    def _apply_result(self, result: Any) -> Any:
        if isinstance(result, ModelRecord):
            return self.flags.apply(result)
        if isinstance(result, (list, tuple)) and result and isinstance(result[0], ModelRecord):
            applied = self._apply_all(result)
            return applied if isinstance(result, list) else tuple(applied)
        return result
