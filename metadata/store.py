"""The index's transactional store: one SQLite row per model file, and full-text search over them.

Standard-library sqlite3, WAL journal, `synchronous=NORMAL`: a commit is atomic and survives the
process being killed at any moment (a power cut may lose the last commits, never consistency).
Each row is keyed by (kind, name) and holds what tells whether the file changed (path, size,
mtime_ns, and `signature`: the sidecars seen and the preview, reader.signature) and the merged
record as JSON. A scan writes only the rows that changed, in transactions of at most
BATCH_ROWS rows; every committed row is a whole, correct record of the file it names.

Search: an FTS5 table with one column per field (name, title, trigger words, tags, description;
tokenizer `porter unicode61 remove_diacritics 2`), ranked with `bm25()` weighted per column, and
a second FTS5 table with the `trigram` tokenizer over the titles that are not plain ASCII, for the
scripts written without spaces (CJK), when this SQLite has it. Triggers keep both in sync with the
rows, so they change in the same transaction as the rows. The kind, architecture and family of
each row are indexed columns for filtering.

The file is identified by its `application_id` and versioned by `user_version`; MIGRATIONS holds
one function per version step. A file that is not a store (another program's database, the old
JSON cache under this name), one of a newer or unknown version, or a corrupt one is renamed
`<name>.corrupt-<timestamp>` (never deleted) with one log line, and a new store is built: it is
only ever a shortcut, everything in it is re-read from the library.

Threads: the write connection belongs to whoever holds the index's scan lock (one scan at a
time); `search` uses a second, read-only connection (WAL lets it read while a scan writes).
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import sqlite3
import stat
import threading
import time
import unicodedata
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from . import base_models, jsonio
from .cache import Key, freeze, record_from_json, record_to_json
from .postings import Postings, QueryTokens, read_postings
from .postings_process import PostingsProcess, WorkerFailed
from .reader import Fingerprint, signature
from .records import FOLDER_KINDS, ModelRecord
from .safe_open import irregular_kind, open_regular, printable

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
APPLICATION_ID = 0x49504958  # "IPIX": this pack's index store
# Bump when what the reader extracts changes, so stored records are read again instead of trusted.
# A change of ModelRecord's fields (names or types) does the same by itself (RECORDS_SIGNATURE).
RECORDS_VERSION = 2
BATCH_ROWS = 5000  # rows per transaction (bench/run.py --only store measures the choice)
BUSY_TIMEOUT_S = 5.0
PAGE_SIZE = 8192  # rows of 1-2 KB: 12% smaller than with 4 KB pages at 50k, and as fast to read
JOURNAL_SIZE_LIMIT = 32 * 1024 * 1024  # the WAL file is truncated back to this after a checkpoint
SQLITE_MAGIC = b"SQLite format 3\x00"
TOKENIZER = "porter unicode61 remove_diacritics 2"

# bm25() weights, in the FTS table's column order: title highest, description lowest.
FTS_COLUMNS = ("name", "title", "trigger_words", "tags", "description")
FTS_WEIGHTS = (2.0, 10.0, 6.0, 3.0, 1.0)
TRIGRAM_WEIGHT = 10.0  # a title substring match counts as a title word match
MAX_QUERY_TERMS = 32  # a query is the first distinct words of the text, each at most MAX_TERM_CHARS
MAX_TERM_CHARS = 64
MAX_LIMIT = 1000
MAX_EACH = 64  # rows per word alone a search adds (MAX_QUERY_TERMS x this at most)
TRIGRAM_MIN_CHARS = 3  # the trigram tokenizer matches nothing shorter

Entry = tuple[Fingerprint, ModelRecord]

_SQLITE_CORRUPT, _SQLITE_FORMAT, _SQLITE_NOTADB = 11, 24, 26
_TERM = re.compile(r"[^\W_]+")  # runs of letters and digits (what unicode61 keeps); one quantifier


def _records_signature() -> str:
    fields = ",".join(f"{f.name}:{f.type}" for f in dataclasses.fields(ModelRecord))
    return f"{RECORDS_VERSION}:{hashlib.sha256(fields.encode()).hexdigest()[:16]}"


RECORDS_SIGNATURE = _records_signature()


class StoreUnusable(Exception):
    """The file at the store's path is not a store this code can use (the reason is the message)."""


def is_corruption(error: sqlite3.Error) -> bool:
    """Whether an sqlite3 error says the file is damaged or not a database (as opposed to locked,
    read-only, out of space: conditions that pass and must not cost the user their store)."""
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_FORMAT, _SQLITE_NOTADB)
    return isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.OperationalError)


_trigram: bool | None = None


def trigram_supported() -> bool:
    """Whether this SQLite has FTS5's trigram tokenizer (3.34 and later)."""
    global _trigram
    if _trigram is None:
        conn = sqlite3.connect(":memory:")
        try:
            conn.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='trigram')")
            _trigram = True
        except sqlite3.Error:
            _trigram = False
        finally:
            conn.close()
    return _trigram


# --- schema -----------------------------------------------------------------------------------

_FTS_INSERT = ("INSERT INTO models_fts(rowid, name, title, trigger_words, tags, description) "
               "VALUES (new.id, new.name, new.title, new.trigger_words, new.tags, new.description);")
_FTS_DELETE = ("INSERT INTO models_fts(models_fts, rowid, name, title, trigger_words, tags, description) "
               "VALUES ('delete', old.id, old.name, old.title, old.trigger_words, old.tags, old.description);")
NON_ASCII = "GLOB '*[^ -~]*'"  # a title with a character outside printable ASCII: the trigram table's rows


def _migrate_0_to_1(conn: sqlite3.Connection) -> None:
    """The first schema: rows, their filter indexes, the FTS tables and the triggers syncing them."""
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
    conn.execute("""CREATE TABLE models (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sidecars BLOB NOT NULL,     -- JSON: the rest of the reader's fingerprint (schema 2: `signature`)
        architecture TEXT NOT NULL,
        family TEXT NOT NULL,
        base_model TEXT NOT NULL,
        title TEXT NOT NULL,
        trigger_words TEXT NOT NULL, -- one per line
        tags TEXT NOT NULL,          -- one per line
        description TEXT NOT NULL,
        record BLOB NOT NULL,        -- JSON: the merged ModelRecord
        UNIQUE (kind, name))""")
    conn.execute("CREATE INDEX models_by_family ON models (family, kind)")
    conn.execute("CREATE INDEX models_by_architecture ON models (architecture, kind)")
    conn.execute(f"CREATE VIRTUAL TABLE models_fts USING fts5({', '.join(FTS_COLUMNS)}, content='models', "
                 f"content_rowid='id', tokenize='{TOKENIZER}')")
    conn.execute(f"CREATE TRIGGER models_ai AFTER INSERT ON models BEGIN {_FTS_INSERT} END")
    conn.execute(f"CREATE TRIGGER models_ad AFTER DELETE ON models BEGIN {_FTS_DELETE} END")
    conn.execute(f"CREATE TRIGGER models_au AFTER UPDATE OF name, title, trigger_words, tags, description ON models "
                 f"BEGIN {_FTS_DELETE} {_FTS_INSERT} END")
    if not trigram_supported():
        log.info("SQLite %s has no trigram tokenizer: titles in scripts without spaces (CJK) are searched "
                 "by whole words only", sqlite3.sqlite_version)
        return
    # Titles with non-ASCII characters only (ASCII titles are served by the word index): a table
    # with its own copy of those few titles, so a row is removed by rowid whatever it held.
    conn.execute("CREATE VIRTUAL TABLE models_title_trigram USING fts5(title, tokenize='trigram')")
    insert = "INSERT INTO models_title_trigram (rowid, title) SELECT new.id, new.title WHERE new.title " + NON_ASCII
    delete = "DELETE FROM models_title_trigram WHERE rowid = old.id"
    conn.execute(f"CREATE TRIGGER models_trigram_ai AFTER INSERT ON models BEGIN {insert}; END")
    conn.execute(f"CREATE TRIGGER models_trigram_ad AFTER DELETE ON models BEGIN {delete}; END")
    conn.execute(f"CREATE TRIGGER models_trigram_au AFTER UPDATE OF title ON models BEGIN {delete}; {insert}; END")


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """The rest of the fingerprint as reader.signature's one string instead of JSON arrays
    (decoding those took as long as decoding the records at a restart): column `sidecars`
    becomes `signature`. A row whose old value does not decode is dropped (its file is re-read)."""
    conn.execute("ALTER TABLE models RENAME COLUMN sidecars TO signature")
    updates: list[tuple[str, int]] = []
    bad: list[tuple[int]] = []
    for row_id, value in conn.execute("SELECT id, signature FROM models").fetchall():
        try:
            sidecars, preview = freeze(jsonio.loads(value))
            if not isinstance(sidecars, tuple) or not (preview is None or isinstance(preview, str)):
                raise ValueError("bad fingerprint")
            updates.append((signature(sidecars, preview), row_id))
        except (ValueError, TypeError, RecursionError):
            bad.append((row_id,))
    conn.executemany("UPDATE models SET signature = ? WHERE id = ?", updates)
    conn.executemany("DELETE FROM models WHERE id = ?", bad)


def _migrate_2_to_3(conn: sqlite3.Connection) -> None:
    """Sentence vectors of models' texts (selector/meaning.py), by the hash of model id and text:
    fp16, so 50k LoRAs cost 38 MB here; rows of texts no model has any more are pruned."""
    conn.execute("CREATE TABLE vectors (key BLOB PRIMARY KEY, model TEXT NOT NULL, vec BLOB NOT NULL) WITHOUT ROWID")


# MIGRATIONS[v] takes a store of schema version v to v + 1, inside one transaction.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_0_to_1, _migrate_1_to_2, _migrate_2_to_3]
MAX_VECTOR_DIM = 4096

_UPSERT = """INSERT INTO models (kind, name, path, size, mtime_ns, signature, architecture, family, base_model,
        title, trigger_words, tags, description, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (kind, name) DO UPDATE SET path = excluded.path, size = excluded.size,
        mtime_ns = excluded.mtime_ns, signature = excluded.signature, architecture = excluded.architecture,
        family = excluded.family, base_model = excluded.base_model, title = excluded.title,
        trigger_words = excluded.trigger_words, tags = excluded.tags, description = excluded.description,
        record = excluded.record"""
_DELETE = "DELETE FROM models WHERE kind = ? AND name = ?"
_LOAD = "SELECT kind, name, path, size, mtime_ns, signature, record FROM models"


def record_family(record: ModelRecord) -> str:
    """The compatibility group a record belongs to, lower case: its `family` field (the merge's
    answer, "unknown" included), or the family of its base model for a record without one."""
    value = getattr(record, "family", None)
    if not isinstance(value, str):
        value = base_models.family(record.base_model)
    return value.lower()


def _row(fingerprint: Fingerprint, record: ModelRecord) -> tuple[Any, ...]:
    """The column values for one model; raises TypeError/ValueError/UnicodeError for one that
    cannot be stored (a name that is not valid UTF-8): the JSON encodings check every string."""
    path, size, mtime_ns, sig = fingerprint
    if not isinstance(sig, str):
        raise TypeError(f"a fingerprint's signature is a string, not {type(sig).__name__}")
    return (record.kind, record.name, str(path), int(size), int(mtime_ns), sig,
            record.architecture, record_family(record), record.base_model, record.title,
            "\n".join(record.trigger_words), "\n".join(record.tags), record.description, record_to_json(record))


def query_terms(text: Any) -> list[str]:
    """The words of `text` a search looks for: runs of letters and digits, NFKC, lower case, at most
    MAX_TERM_CHARS each, the first MAX_QUERY_TERMS distinct ones. Linear in the text."""
    if not isinstance(text, str):
        return []
    terms: list[str] = []
    seen: set[str] = set()
    for match in _TERM.finditer(text):
        raw = match.group()[:MAX_TERM_CHARS]
        if raw in seen:  # a repeated word costs one set lookup
            continue
        seen.add(raw)
        term = unicodedata.normalize("NFKC", raw).lower()
        if term in seen and term != raw:
            continue
        seen.add(term)
        if term not in terms:
            terms.append(term)
        if len(terms) >= MAX_QUERY_TERMS:
            break
    return terms


def fts_query(terms: Iterable[str]) -> str:
    """An FTS5 query matching any of `terms`: each a quoted string (quotes doubled), so no text can
    be read as FTS5 syntax."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def match_sql(table: str, weights: Sequence[float], filters: Iterable[str] | None) -> str:
    """The search query on one FTS table: parameters are the MATCH string, one value per filter
    column (`kind`, `architecture`, `family`: indexed columns of models) and the limit. Rows are
    (kind, name, bm25); without filters (None), (rowid, bm25) from the FTS table alone."""
    bm25 = ", ".join([table, *(str(float(w)) for w in weights)])
    if filters is None:
        return f"SELECT rowid, bm25({bm25}) AS s FROM {table} WHERE {table} MATCH ? ORDER BY s LIMIT ?"
    where = "".join(f" AND m.{column} = ?" for column in filters)
    return (f"SELECT m.kind, m.name, bm25({bm25}) AS s FROM {table} JOIN models AS m ON m.id = {table}.rowid "
            f"WHERE {table} MATCH ?{where} ORDER BY s LIMIT ?")


def _names(conn: sqlite3.Connection, ids: list[int]) -> list[tuple[int, str, str]]:
    """(id, kind, name) of the rows `ids` (at most MAX_LIMIT + postings.MAX_TIES of them, under
    SQLite's 32,766 variables): primary-key lookups."""
    if not ids:
        return []
    marks = ", ".join("?" * len(ids))
    return conn.execute(f"SELECT id, kind, name FROM models WHERE id IN ({marks})", ids).fetchall()


class IndexStore:
    """The store at `path` (":memory:" for one that lives as long as the object).

    `postings`: rank searches over the full-text index copied into memory (metadata/postings.py:
    the same bm25 scores, ~1 ms instead of 20-50 ms at 50k) once it is read; it is read again
    after each write, in a background thread (at once, on the caller's thread, for a store in
    memory), and until then FTS5 ranks. False: FTS5 always (tests compare the two)."""

    def __init__(self, path: str, postings: bool = True):
        self.path = path
        self.trigram = False
        self.rows_written = 0  # upserts + deletes committed by this object, for tests and the bench
        self.transactions = 0
        self.postings_reads = 0  # times the postings were read, for tests and the bench
        self.postings_seconds = 0.0  # how long the last read took
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._lock = threading.RLock()  # the write connection
        self._read_lock = threading.Lock()
        self._use_postings = postings
        self._version = 0  # bumped by every change of what the tables hold (writes, a new file)
        self._postings: Postings | None = None
        self._postings_lock = threading.Lock()  # held for a whole read (seconds): searches never wait for it
        self._thread_lock = threading.Lock()  # starting the background read (held for no time)
        self._postings_thread: threading.Thread | None = None
        self._postings_conn: sqlite3.Connection | None = None  # the background read's, while it runs
        self._wal = False  # the file is in WAL mode: a long read never blocks a write
        self._postings_failed: int | None = None  # the version whose postings could not be read
        self._tokens: QueryTokens | None = None
        self._worker = PostingsProcess()  # reads a file store's postings in another process
        self._in_process = False  # a worker failed once: this store reads in its own process from then on

    @property
    def in_memory(self) -> bool:
        return self.path == ":memory:"

    # --- opening ---------------------------------------------------------------------------

    def open(self) -> None:
        """Open the store, creating or migrating it; set aside (and replace) a file that cannot be
        used. Raises OSError or sqlite3.Error when the location itself is unusable (a folder where
        the file should be, no permission, locked by another program)."""
        with self._lock:
            if self._conn is not None:
                return
            if self.in_memory:
                memory = self._connect()
                self._prepare(memory)
                self._conn = memory
                self._version += 1
                return
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            reason = self._precheck()
            conn: sqlite3.Connection | None = None
            if reason is None:
                try:
                    conn = self._connect()
                    self._prepare(conn)
                except StoreUnusable as e:
                    reason = str(e)
                except sqlite3.Error as e:
                    if not is_corruption(e):
                        _close(conn)
                        raise
                    reason = f"corrupt: {printable(str(e), 200)}"
            if reason is not None:
                _close(conn)
                self._set_aside(reason)
                conn = self._connect()
                self._prepare(conn)
            self._conn = conn
            self._version += 1

    def _precheck(self) -> str | None:
        """Why the file at the path is not an SQLite database (None: it may be one, or is absent)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if any(os.path.lexists(self.path + s) for s in ("-wal", "-shm")):
                # a journal left by a deleted database would be replayed into the new one
                return "a -wal/-shm file without its database"
            return None
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(f"the index store path {self.path!r} is a folder")
        irregular = irregular_kind(st.st_mode)
        if irregular is not None:
            return f"not a regular file ({irregular})"
        if st.st_size == 0:
            return None
        with open_regular(self.path) as f:
            head = f.read(len(SQLITE_MAGIC))
        if head != SQLITE_MAGIC:
            return "not an SQLite file"
        return None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Check that the file is a store of a version this code reads, then migrate it to
        SCHEMA_VERSION, and drop records of another reader (RECORDS_SIGNATURE)."""
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if app_id != APPLICATION_ID:
            objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app_id != 0 or version != 0 or objects:
                raise StoreUnusable("not an index store (another program's SQLite file?)")
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # a new file: before its first write
        if version > SCHEMA_VERSION:
            raise StoreUnusable(f"schema version {version} is not one this version reads (1-{SCHEMA_VERSION})")
        if not self.in_memory:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            self._wal = str(mode).lower() == "wal"
            if not self._wal:
                log.info("index store %r: journal mode %r (WAL not available here)", self.path, mode)
            conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
        self._migrate(conn)
        # No quick_check here (0.8 s at 50k on every start): load() reads every row, and damage it
        # or a later write or search meets is handled there (set aside, rebuilt).
        self.trigram = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'models_title_trigram'").fetchone() is not None
        self._check_records(conn)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        while True:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version >= SCHEMA_VERSION:
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute("PRAGMA user_version").fetchone()[0] == version:  # not migrated meanwhile
                    MIGRATIONS[version](conn)
                    conn.execute(f"PRAGMA user_version = {version + 1}")
                    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            if version > 0:
                log.info("index store %r: migrated from schema version %d to %d", self.path, version, version + 1)

    def _check_records(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT value FROM meta WHERE key = 'records'").fetchone()
        if row is not None and row[0] == RECORDS_SIGNATURE:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            dropped = conn.execute("DELETE FROM models").rowcount
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('records', ?)", (RECORDS_SIGNATURE,))
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        if dropped > 0:
            log.info("index store %r: %d records of another version of the reader dropped; those files are "
                     "read again", self.path, dropped)

    def _set_aside(self, reason: str) -> None:
        """Rename the file (and its -wal/-shm companions) to `<name>.corrupt-<timestamp>`."""
        self._stop_postings_read()  # its connection holds the file open (Windows cannot rename it then)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = f"{self.path}.corrupt-{stamp}"
        n = 1
        while any(os.path.lexists(target + s) for s in ("", "-wal", "-shm")):
            n += 1
            target = f"{self.path}.corrupt-{stamp}-{n}"
        self._close_reader()
        for suffix in ("", "-wal", "-shm"):
            if os.path.lexists(self.path + suffix):
                os.rename(self.path + suffix, target + suffix)
        log.warning("index store %r is unusable (%s): moved aside to %r; building a new one",
                    self.path, reason, target)

    def rebuild(self, reason: str) -> None:
        """Set the current file aside and start an empty store (after corruption found mid-run)."""
        with self._lock:
            _close(self._conn)
            self._conn = None
            if self.in_memory:
                self.open()
                return
            self._set_aside(reason)
            self.open()

    def close(self) -> None:
        self._worker.stop()  # a background read stops at once (a worker is killed; a connection
        conn = self._postings_conn  # interrupted, and closed by the read itself)
        if conn is not None:
            conn.interrupt()
        with self._lock:
            self._close_reader()
            _close(self._conn)
            self._conn = None

    def _close_reader(self) -> None:
        with self._read_lock:
            _close(self._reader)
            self._reader = None

    def _writer(self) -> sqlite3.Connection:
        if self._conn is None:
            self.open()
        assert self._conn is not None
        return self._conn

    # --- rows -------------------------------------------------------------------------------

    def load(self) -> dict[Key, Entry]:
        """Every stored (fingerprint, record), by key. A row that does not decode is left out (its
        file is read again and the row replaced); a damaged file is set aside and {} returned (a new
        store is started); raises sqlite3.Error for other failures (locked, I/O)."""
        try:
            return self._load()
        except sqlite3.Error as e:
            if not is_corruption(e):
                raise
            self.rebuild(f"corrupt: {printable(str(e), 200)}")
            return {}

    def _load(self) -> dict[Key, Entry]:
        entries: dict[Key, Entry] = {}
        bad = 0
        with self._lock:
            for kind, name, path, size, mtime_ns, sig, record in self._writer().execute(_LOAD):
                try:
                    rec = record_from_json(record)
                    if (rec.kind, rec.name) != (kind, name) or not isinstance(sig, str):
                        raise ValueError("the record is not the row's")
                    # one string object for the path in the record and in its fingerprint
                    entries[(kind, name)] = ((rec.path if rec.path == path else path, size, mtime_ns, sig), rec)
                except (ValueError, TypeError, KeyError, RecursionError):
                    bad += 1
        if bad:
            log.warning("index store %r: %d row(s) could not be read; those files are read again", self.path, bad)
        return entries

    def apply(self, upserts: Sequence[Entry], deletes: Sequence[Key], batch_rows: int | None = None) -> int:
        """Write `upserts` (insert or replace by key) and remove `deletes`, in transactions of at most
        `batch_rows` rows (BATCH_ROWS). Entries that cannot be stored (names that are not UTF-8) are
        left out. Returns the rows written; raises sqlite3.Error (what was committed stays)."""
        rows: list[tuple[Any, ...]] = []
        for fingerprint, record in upserts:
            try:
                rows.append(_row(fingerprint, record))
            except (TypeError, ValueError, UnicodeError) as e:
                log.debug("%r not stored (%s): it is read again after a restart", record.path, type(e).__name__)
        gone: list[Key] = []
        for kind, name in deletes:
            try:
                name.encode("utf-8")
            except UnicodeError:
                continue  # never stored
            gone.append((kind, name))
        ops: list[tuple[bool, tuple[Any, ...]]] = [(False, k) for k in gone] + [(True, r) for r in rows]
        step = max(1, batch_rows or BATCH_ROWS)
        with self._lock:
            conn = self._writer()
            for start in range(0, len(ops), step):
                chunk = ops[start:start + step]
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(_DELETE, [op for is_row, op in chunk if not is_row])
                    conn.executemany(_UPSERT, [op for is_row, op in chunk if is_row])
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
                    raise
                self.rows_written += len(chunk)
                self.transactions += 1
                self._version += 1
        return len(ops)

    def diff(self, entries: Mapping[Key, Entry]) -> tuple[list[Entry], list[Key]]:
        """(upserts, deletes) that make the store hold exactly `entries`: what apply() must write
        when the store may have drifted from the caller's view (a write failed, it was rebuilt)."""
        stored: dict[Key, tuple[Any, ...]] = {}
        with self._lock:
            for kind, name, path, size, mtime_ns, sig, record in self._writer().execute(_LOAD):
                stored[(kind, name)] = (path, size, mtime_ns, sig, bytes(record))
        upserts: list[Entry] = []
        for key, (fingerprint, record) in entries.items():
            try:
                row = _row(fingerprint, record)
            except (TypeError, ValueError, UnicodeError):
                continue  # cannot be stored: apply() would leave it out too
            if stored.get(key) != (row[2], row[3], row[4], row[5], row[13]):
                upserts.append((fingerprint, record))
        return upserts, [key for key in stored if key not in entries]

    def count(self) -> int:
        with self._lock:
            return int(self._writer().execute("SELECT count(*) FROM models").fetchone()[0])

    # --- vectors ----------------------------------------------------------------------------

    def get_vectors(self, model: str, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """The stored vectors (fp32) of `keys` for `model`; a row that does not decode is left out."""
        out: dict[bytes, np.ndarray] = {}
        self.open()
        with self._lock if self.in_memory else self._read_lock:
            conn = self._read_connection()
            for start in range(0, len(keys), 500):
                chunk = list(keys[start:start + 500])
                marks = ", ".join("?" * len(chunk))
                for key, vec in conn.execute(f"SELECT key, vec FROM vectors WHERE model = ? AND key IN ({marks})",
                                             (model, *chunk)):
                    if isinstance(vec, bytes) and 0 < len(vec) <= 2 * MAX_VECTOR_DIM and len(vec) % 2 == 0:
                        out[bytes(key)] = np.frombuffer(vec, dtype="<f2").astype(np.float32)
        return out

    def put_vectors(self, model: str, items: Sequence[tuple[bytes, np.ndarray]]) -> None:
        """Store vectors (as fp16) for `model`, in one transaction."""
        rows = [(bytes(k), model, np.asarray(v, dtype="<f2").tobytes()) for k, v in items]
        with self._lock:
            self._in_transaction("INSERT OR REPLACE INTO vectors (key, model, vec) VALUES (?, ?, ?)", rows)

    def prune_vectors(self, keep: Iterable[bytes]) -> int:
        """Remove every vector whose key is not in `keep` (texts no model has any more); the number removed."""
        wanted = set(keep)
        with self._lock:
            conn = self._writer()
            stale = [(k,) for (k,) in conn.execute("SELECT key FROM vectors") if bytes(k) not in wanted]
            if stale:
                self._in_transaction("DELETE FROM vectors WHERE key = ?", stale)
        return len(stale)

    def _in_transaction(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """`sql` for every row, in one transaction of the writer (the caller holds the lock)."""
        conn = self._writer()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    # --- search -----------------------------------------------------------------------------

    def search(self, text: str, kind: str | None = None, architecture: str | None = None,
               family: str | None = None, limit: int = 50, each: int = 0) -> list[tuple[str, str, float]]:
        """The models best matching any word of `text`, best first, as (kind, name, score): score is
        -bm25() over the weighted columns (higher is better), plus title substring matches for terms
        in scripts without spaces. `kind`, `architecture`, `family` (case-insensitive) filter on
        indexed columns. `each` (at most MAX_EACH): besides the `limit` best (and the rows tied with the
        last of them), the `each` best by every word alone, all returned (a model about one rare
        word of a long prompt, which models holding several of its common words would crowd out
        of the `limit`). Any
        text is safe: it is never read as FTS5 syntax. Raises ValueError for an unknown kind."""
        if kind is not None and kind not in FOLDER_KINDS:
            raise ValueError(f"unknown model type {kind!r}; expected one of {', '.join(FOLDER_KINDS)}")
        terms = query_terms(text)
        limit = min(int(limit), MAX_LIMIT)
        each = max(0, min(int(each), MAX_EACH))
        if not terms or limit <= 0:
            return []
        for what, value in (("architecture", architecture), ("family", family)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{what} must be a string, not {type(value).__name__}")
        family = family.lower() if isinstance(family, str) else family
        filters = {c: v for c, v in (("kind", kind), ("architecture", architecture), ("family", family))
                   if v is not None}
        params = list(filters.values())
        scores: dict[Key, float] = {}
        self.open()  # outside the read lock: opening may set a file aside, which closes the reader
        substrings = [t for t in terms if len(t) >= TRIGRAM_MIN_CHARS and not t.isascii()]
        postings = self._current_postings() if not (self.trigram and substrings) else None
        tokens = self._query_tokens(terms) if postings is not None else None
        with self._lock if self.in_memory else self._read_lock:
            conn = self._read_connection()
            if postings is not None and tokens is not None:
                best = dict(postings.search(tokens, filters, limit, each))
                named = _names(conn, list(best))
                if postings.version == self._version:  # (a write between the check and the names: FTS5 ranks)
                    for i, k, n in named:
                        scores[(k, n)] = best[i]
                else:
                    postings = None
            if postings is None or tokens is None:
                tables: list[tuple[str, Sequence[float], list[str], float]] = [
                    ("models_fts", FTS_WEIGHTS, terms, 1.0)]
                if self.trigram and substrings:
                    tables.append(("models_title_trigram", (), substrings, TRIGRAM_WEIGHT))
                scores.clear()
                for table, weights, words, factor in tables:
                    for k, n, s in self._fts_hits(conn, table, weights, words, filters, params, limit):
                        scores[(k, n)] = scores.get((k, n), 0.0) - s * factor
                if each:  # each word alone, FTS5 ranking its rows
                    alone: dict[Key, float] = {}
                    for word in terms:
                        for k, n, s in self._fts_hits(conn, "models_fts", FTS_WEIGHTS, [word], filters, params, each):
                            alone[(k, n)] = max(alone.get((k, n), float("-inf")), -s)
                    scores.update({key: v for key, v in alone.items() if key not in scores})
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        if not each:  # (with `each`, every row found: the best, those tied with them, those by a word alone)
            ranked = ranked[:limit]
        return [(k, n, s) for (k, n), s in ranked]

    @staticmethod
    def _fts_hits(conn: sqlite3.Connection, table: str, weights: Sequence[float], words: list[str],
                  filters: Mapping[str, str], params: list[str], limit: int) -> Iterable[tuple[str, str, float]]:
        """(kind, name, bm25) of the `limit` best rows of one FTS table for any of `words`."""
        if filters:
            return conn.execute(match_sql(table, weights, filters), (fts_query(words), *params, limit)).fetchall()
        # rank on the FTS table alone, then name the few best (half the time at 50k)
        found = dict(conn.execute(match_sql(table, weights, None), (fts_query(words), limit)).fetchall())
        return [(k, n, found[i]) for i, k, n in _names(conn, list(found))]

    # --- postings ---------------------------------------------------------------------------

    def _current_postings(self) -> Postings | None:
        """The postings of what the tables hold now, or None (FTS5 ranks): then they are read,
        in the background for a file (at once for a store in memory, whose one connection the
        caller is about to use anyway). Never waits for a read under way."""
        if not self._use_postings:
            return None
        postings, version = self._postings, self._version
        if postings is not None and postings.version == version:
            return postings
        if self._postings_failed == version:
            return None  # could not be read for this version: not tried again until a write
        if self.in_memory:
            return self.build_postings()
        self.read_postings_in_background()
        return None

    def read_postings_in_background(self) -> None:
        """Start reading the postings in a daemon thread unless one runs (a file in WAL mode only:
        without WAL a read of seconds would hold writers off; FTS5 ranks there)."""
        if self.in_memory or not self._wal or not self._use_postings:
            return
        with self._thread_lock:
            thread = self._postings_thread
            if thread is None or not thread.is_alive():
                thread = threading.Thread(target=self.build_postings, name="intelligent-postings", daemon=True)
                self._postings_thread = thread
                thread.start()

    def build_postings(self) -> Postings | None:
        """Read the postings now (on this thread) unless the current ones are of what the tables
        hold; None when they cannot be read (one log line; FTS5 ranks meanwhile)."""
        with self._postings_lock:
            version = self._version
            if self._postings is not None and self._postings.version == version:
                return self._postings
            started = time.perf_counter()
            try:
                if self.in_memory:
                    with self._lock:
                        version = self._version
                        postings = read_postings(self._writer(), "models_fts", FTS_COLUMNS, FTS_WEIGHTS, version)
                else:
                    read = self._read_file_postings(version)
                    if read is None:
                        return None
                    postings = read
            except Exception as e:  # noqa: BLE001 - never a traceback per search: one line, FTS5 ranks
                if isinstance(e, sqlite3.OperationalError) and "interrupt" in str(e):
                    log.debug("index store %r: reading the postings was stopped (closed or set aside)", self.path)
                    return None
                if self._version == version:
                    self._postings_failed = version
                log.warning("index store %r: cannot read the full-text index into memory (%s: %s); searches "
                            "rank in SQLite", self.path, type(e).__name__, printable(str(e), 200))
                return None
            self.postings_seconds = time.perf_counter() - started
            self.postings_reads += 1
            self._postings = postings
            if postings.version != self._version:
                return None  # written meanwhile (the rows read may be older than the tables): read again later
            log.debug("index store %r: postings of %d rows read in %.2f s (%.1f MB)", self.path, postings.rows,
                      self.postings_seconds, postings.nbytes / 1e6)
            return postings

    def _read_file_postings(self, version: int) -> Postings | None:
        """A file store's postings, read by a worker process (metadata/postings_process.py), or in
        this process through its own connection when a worker cannot be used; None when stopped.
        Either way a read of seconds never holds up searches or (WAL) writes."""
        if not self._in_process:
            try:
                return self._worker.read(self.path, "models_fts", FTS_COLUMNS, FTS_WEIGHTS, version)
            except WorkerFailed as e:
                if self._worker.stopped:
                    return None  # closed or set aside meanwhile
                self._in_process = e.unavailable  # (for good only when no worker can ever start here)
                log.info("index store %r: the postings are read in this process (a worker could not: %s)",
                         self.path, e)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        self._postings_conn = conn
        try:
            return read_postings(conn, "models_fts", FTS_COLUMNS, FTS_WEIGHTS, version)
        finally:
            self._postings_conn = None
            conn.close()

    def _stop_postings_read(self) -> None:
        """Stop a background read (kill its worker, interrupt its connection) and wait until it has
        let go of the file (file stores only: their reads never take the write lock, which the
        caller may hold)."""
        self._worker.stop()
        conn = self._postings_conn
        if conn is not None:
            conn.interrupt()
        with self._postings_lock:
            pass

    def _query_tokens(self, terms: Sequence[str]) -> list[str] | None:
        """The FTS5 phrase of each query word as one token, or None when a word is several tokens
        (a phrase that single-token postings cannot rank: FTS5 does)."""
        if self._tokens is None:
            self._tokens = QueryTokens(TOKENIZER)
        out: list[str] = []
        for tokens in self._tokens.tokens(terms):
            if len(tokens) > 1:
                return None
            out.extend(tokens)  # a word of no token matches nothing (FTS5: an empty phrase)
        return out

    def _read_connection(self) -> sqlite3.Connection:
        if self.in_memory:
            return self._writer()  # one database, one connection (search holds the write lock then)
        if self._reader is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only = ON")
            self._reader = conn
        return self._reader

    # --- checks -----------------------------------------------------------------------------

    def check(self) -> list[str]:
        """What is inconsistent in the store (empty when nothing): SQLite's integrity check, every
        row's record decodes and is the row's, and the FTS indexes hold exactly the rows."""
        problems: list[str] = []
        with self._lock:
            conn = self._writer()
            result = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
            if result != ["ok"]:
                problems.append(f"integrity_check: {result[:5]}")
            ids: set[int] = set()
            for row_id, kind, name, record in conn.execute("SELECT id, kind, name, record FROM models"):
                ids.add(row_id)
                try:
                    rec = record_from_json(record)
                    if (rec.kind, rec.name) != (kind, name):
                        problems.append(f"row {row_id}: record of {rec.kind}/{rec.name!r}")
                except (ValueError, TypeError, RecursionError) as e:
                    problems.append(f"row {row_id}: record does not decode ({e})")
            tables = ["models_fts"] + (["models_title_trigram"] if self.trigram else [])
            for table in tables:
                try:  # rank 1: the index is also compared with the content it was built from
                    conn.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('integrity-check', 1)")
                except sqlite3.DatabaseError as e:
                    problems.append(f"{table}: {e}")
                conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{table}_docs USING fts5vocab(main, {table}, "
                             "instance)")
                indexed = {r[0] for r in conn.execute(f"SELECT DISTINCT doc FROM temp.{table}_docs")}
                expected = ids if table == "models_fts" else {  # a trigram needs 3 characters
                    r[0] for r in conn.execute(f"SELECT id FROM models WHERE title {NON_ASCII} "
                                               f"AND length(title) >= {TRIGRAM_MIN_CHARS}")}
                if indexed != expected:
                    problems.append(f"{table}: {len(indexed - expected)} indexed rows not in models, "
                                    f"{len(expected - indexed)} rows not indexed")
            if self.trigram:
                copied = set(conn.execute("SELECT rowid, title FROM models_title_trigram"))
                if copied != set(conn.execute(f"SELECT id, title FROM models WHERE title {NON_ASCII}")):
                    problems.append("models_title_trigram: titles differ from the rows'")
        return problems


def _close(conn: sqlite3.Connection | None) -> None:
    if conn is not None:
        try:
            conn.close()
        except sqlite3.Error:
            pass


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as e:
            log.debug("rollback failed: %s", printable(str(e), 200))
