"""The store's full-text index in memory, for ranking a prompt over 50k models in a few ms.

FTS5 computes bm25() row by row: a walk of each term's doclist, the row's size from its docsize
table and the weighted hits per column, about 1.5-2 us for every row that holds any word of the
query. A prompt whose common words ("hair", "light") match 20k of 50k models costs 30-40 ms
there, however few rows are wanted. `Postings` is the same ranking over arrays: for every term,
the rows that hold it and the sum of the column weights of its hits in each (`f` in FTS5's
fts5_aux.c), each row's length in tokens, and each row's kind, architecture and family as small
integer codes. The arrays are read once from FTS5's own index (the `fts5vocab` "instance" table:
the tokens exactly as the table's tokenizer made them, stems and folded accents included), so a
score here is FTS5's bm25 for the same query, computed in the same order of operations: equal up
to rounding (bit for bit with this machine's SQLite; a build that fuses multiply-adds may differ
in the last place).

`QueryTokens` turns query words into the tokens FTS5 would look for, with the same tokenizer on
a private in-memory table. A word that becomes two or more tokens (a phrase for FTS5) is not
something postings of single tokens can rank: the caller asks FTS5 itself then.

`to_bytes`/`from_bytes` carry postings between processes as an `.npz` of plain arrays (loaded
with `allow_pickle=False`: nothing is unpickled). `worker_main` is what a worker process runs
(metadata/postings_process.py): this module imports nothing of the pack, so a fresh interpreter
loads it by its file location.
"""
from __future__ import annotations

import io
import json
import math
import os
import pathlib
import sqlite3
import sys
import threading
from typing import Mapping, Sequence

import numpy as np

K1 = 1.2  # FTS5's bm25 constants (ext/fts5/fts5_aux.c)
B = 0.75
MIN_IDF = 1e-6  # FTS5's floor for a term in more than half the rows
FETCH_ROWS = 8192  # instances fetched per step while reading (bounds the Python objects alive at once)
FILTER_COLUMNS = ("kind", "architecture", "family")  # columns of `models` a search may filter on
MAX_TIES = 1000  # rows tied with the last of a search's `limit` returned beside them
TOKEN_CACHE = 20000  # distinct query words whose tokens are remembered

_VOCAB = "ip_fts_instance"  # the temp fts5vocab table a reading connection creates


class Postings:
    """Every term's postings for the rows of `models` at one moment (`version`, the store's
    write counter then). Immutable once built; searched from any thread."""

    def __init__(self, *, version: int, rowids: np.ndarray, lengths: np.ndarray, codes: dict[str, np.ndarray],
                 values: dict[str, dict[str, int]], terms: dict[str, int], starts: np.ndarray, docs: np.ndarray,
                 freqs: np.ndarray) -> None:
        self.version = version
        self.rowids = rowids  # dense row index -> models.id (ascending)
        self.lengths = lengths  # tokens in each row, all columns (FTS5's xColumnSize(-1)), float64
        self.codes = codes  # filter column -> code of each row's value
        self.values = values  # filter column -> value -> code
        self.terms = terms  # token -> slot; its postings are docs/freqs[starts[slot]:starts[slot + 1]]
        self.starts = starts
        self.docs = docs  # dense row indexes, int32
        self.freqs = freqs  # weighted hits of the token in that row (float32 when that holds them exactly)
        self.rows = int(len(rowids))
        total = float(lengths.sum()) if self.rows else 0.0
        self.avgdl = total / self.rows if self.rows else 0.0

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays (the term dictionary not counted)."""
        arrays = [self.rowids, self.lengths, self.starts, self.docs, self.freqs, *self.codes.values()]
        return int(sum(a.nbytes for a in arrays))

    def search(self, tokens: Sequence[str], filters: Mapping[str, str], limit: int,
               each: int = 0) -> list[tuple[int, float]]:
        """(models.id, score) of the rows holding any of `tokens` (each one FTS5 phrase, repeats
        counted as FTS5 counts them) that have every `filters` value: the `limit` best, and the
        rows tied with the last of them (up to MAX_TIES), unordered; with `each`, also the `each`
        best by every token alone (so a row about one rare word is not crowded out by rows that
        hold several common ones). The score is -bm25() of FTS5 with this index's column weights."""
        if limit <= 0 or not self.rows:
            return []
        rows = self.rows
        parts_d: list[np.ndarray] = []
        parts_s: list[np.ndarray] = []
        for token in tokens:
            slot = self.terms.get(token)
            if slot is None:
                continue  # no row holds it: it adds nothing to any score
            a, b = int(self.starts[slot]), int(self.starts[slot + 1])
            docs, f = self.docs[a:b], self.freqs[a:b].astype(np.float64)
            hits = b - a
            idf = math.log((rows - hits + 0.5) / (hits + 0.5))
            if idf <= 0.0:
                idf = MIN_IDF
            # written in fts5_aux.c's order of operations, so the doubles come out the same
            parts_s.append(idf * ((f * (K1 + 1.0)) / (f + K1 * (1 - B + B * self.lengths[docs] / self.avgdl))))
            parts_d.append(docs)
        if not parts_d:
            return []
        all_d = np.concatenate(parts_d) if len(parts_d) > 1 else parts_d[0]
        scores = np.bincount(all_d, weights=np.concatenate(parts_s) if len(parts_s) > 1 else parts_s[0],
                             minlength=rows)
        allowed: np.ndarray | None = None  # rows with every filter value (None: no filter)
        for column, value in filters.items():
            code = self.values[column].get(value)
            if code is None:
                return []
            match = self.codes[column] == code
            allowed = match if allowed is None else allowed & match
        keep = np.zeros(rows, dtype=bool)
        keep[all_d] = True
        if allowed is not None:
            keep &= allowed
        found = np.flatnonzero(keep)
        if len(found) > limit:
            values = scores[found]
            kth = values[np.argpartition(-values, limit - 1)[limit - 1]]
            # every row tied with the last one kept, so the caller's order (by name) decides among
            # them, not the order of the arrays (at most MAX_TIES more)
            found = found[values >= kth]
            if len(found) > limit + MAX_TIES:
                found = found[np.argsort(-scores[found], kind="stable")[:limit + MAX_TIES]]
        if each > 0:
            extra = [found]
            for docs, part in zip(parts_d, parts_s, strict=True):
                if allowed is not None:
                    sel = allowed[docs]
                    docs, part = docs[sel], part[sel]
                if len(docs) > each:
                    docs = docs[np.argpartition(-part, each - 1)[:each]]
                extra.append(docs)
            found = np.unique(np.concatenate(extra))
        return [(int(self.rowids[i]), float(scores[i])) for i in found.tolist()]


def read_postings(conn: sqlite3.Connection, fts_table: str, columns: Sequence[str], weights: Sequence[float],
                  version: int) -> Postings:
    """Read the postings of `fts_table` (an FTS5 table over `models`, rowid = models.id) through
    `conn`, in one read transaction so rows and postings are of one moment. `weights` are the
    bm25() column weights in `columns` order (a column without one weighs 1.0, as in FTS5).
    The vocabulary table yields every token instance sorted by (term, row, column, offset): they
    are summed per (term, row) here, in arrays, FETCH_ROWS at a time. Raises sqlite3.Error.
    About 2 s of CPU at 50k models (bench/run.py --only index prints it)."""
    # instances come with their column's index (a small int: no new object per row), weighed in arrays
    weight_table = np.asarray([float(weights[i]) if i < len(weights) else 1.0 for i in range(len(columns))] + [1.0])
    case = " ".join(f"WHEN ? THEN {i}" for i in range(len(columns)))
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{_VOCAB} USING fts5vocab(main, {fts_table}, instance)")
    conn.execute("BEGIN")
    try:
        ids: list[int] = []
        raw: dict[str, list[str]] = {c: [] for c in FILTER_COLUMNS}
        for row in conn.execute(f"SELECT id, {', '.join(FILTER_COLUMNS)} FROM models ORDER BY id"):
            ids.append(row[0])
            for column, value in zip(FILTER_COLUMNS, row[1:], strict=True):
                raw[column].append(value)
        rowids = np.asarray(ids, dtype=np.int64)
        codes: dict[str, np.ndarray] = {}
        values: dict[str, dict[str, int]] = {}
        for column, column_values in raw.items():
            table: dict[str, int] = {}
            codes[column] = np.fromiter((table.setdefault(v, len(table)) for v in column_values), dtype=np.int32,
                                        count=len(column_values))
            values[column] = table
        del raw, ids
        term_names: list[str] = []
        term_at: list[int] = []  # posting index where each term's postings begin
        doc_parts: list[np.ndarray] = []  # postings, batch by batch: row (dense index)...
        freq_parts: list[np.ndarray] = []  # ... and the weighted hits of the term there
        lengths = np.zeros(len(rowids), dtype=np.float64)  # tokens per row
        n_postings = 0
        last_doc = -1  # the row of the last instance read, -1 before the first
        previous: str | None = None
        cursor = conn.execute(f"SELECT term, doc, CASE col {case} ELSE {len(columns)} END FROM temp.{_VOCAB}",
                              list(columns))
        while True:
            batch = cursor.fetchmany(FETCH_ROWS)
            if not batch:
                break
            names, docs, cols = zip(*batch, strict=True)
            del batch
            raw_docs = np.asarray(docs, dtype=np.int64)
            dense = np.searchsorted(rowids, raw_docs)
            if len(rowids) == 0 or np.any(dense >= len(rowids)) or np.any(rowids[np.minimum(dense, len(rowids) - 1)]
                                                                       != raw_docs):
                raise sqlite3.DatabaseError("the full-text index names rows the table does not hold")
            weights_here = weight_table[np.asarray(cols, dtype=np.intp)]
            lengths += np.bincount(dense, minlength=len(rowids))
            # a posting begins where the term or the row changes (instances come sorted by term, row)
            begins = np.empty(len(dense), dtype=bool)
            begins[0] = dense[0] != last_doc
            begins[1:] = dense[1:] != dense[:-1]
            new_terms: list[int] = []
            for i, term in enumerate(names):
                if term != previous:
                    new_terms.append(i)
                    term_names.append(term)
                    previous = term
            if new_terms:
                begins[new_terms] = True
            first = np.flatnonzero(begins)
            lead = int(first[0]) if len(first) else len(dense)
            if lead:  # the batch starts inside the last posting of the batch before
                freq_parts[-1][-1] += weights_here[:lead].sum()
            if len(first):
                for i in new_terms:
                    term_at.append(n_postings + int(np.searchsorted(first, i)))
                doc_parts.append(dense[first].astype(np.int32))
                freq_parts.append(np.add.reduceat(weights_here, first))
                n_postings += len(first)
            last_doc = int(dense[-1])
            del names, docs, cols, raw_docs, dense, weights_here, begins, first
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    # the term strings came out of the rows, scattered among objects that are gone now: made again
    # side by side, the memory those rows took can go back to the system (20 MB at 50k models)
    joined = "\x00".join(term_names)
    if joined.count("\x00") == len(term_names) - 1:  # (no token holds NUL: a tokenizer never makes one)
        term_names = joined.split("\x00") if term_names else []
    del joined
    docs_all = np.concatenate(doc_parts) if doc_parts else np.zeros(0, dtype=np.int32)
    freqs_all = np.concatenate(freq_parts) if freq_parts else np.zeros(0, dtype=np.float64)
    # weighted hits are sums of column weights: float32 holds them exactly for any usual weight
    freqs32 = freqs_all.astype(np.float32)
    freqs_out = freqs32 if np.array_equal(freqs32, freqs_all) else freqs_all
    return Postings(version=version, rowids=rowids, lengths=lengths, codes=codes, values=values,
                    terms={t: i for i, t in enumerate(term_names)},
                    starts=np.asarray(term_at + [n_postings], dtype=np.int64), docs=docs_all, freqs=freqs_out)


def _joined(strings: Sequence[str]) -> np.ndarray:
    text = "\x00".join(strings)
    if text.count("\x00") != max(0, len(strings) - 1):
        raise ValueError("a string holds NUL")
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _split(array: np.ndarray, count: int) -> list[str]:
    strings = array.tobytes().decode("utf-8").split("\x00") if count else []
    if len(strings) != count:
        raise ValueError("the strings do not match their count")
    return strings


def to_bytes(postings: Postings) -> bytes:
    """The postings as an uncompressed .npz (raises ValueError for a string holding NUL)."""
    arrays: dict[str, np.ndarray] = {
        "rowids": postings.rowids, "lengths": postings.lengths, "starts": postings.starts, "docs": postings.docs,
        "freqs": postings.freqs, "terms": _joined(list(postings.terms)),
        "counts": np.asarray([len(postings.terms)] + [len(postings.values[c]) for c in FILTER_COLUMNS],
                             dtype=np.int64)}
    for column in FILTER_COLUMNS:
        arrays[f"codes_{column}"] = postings.codes[column]
        arrays[f"values_{column}"] = _joined(list(postings.values[column]))  # in code order
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


_DTYPES = {"rowids": np.int64, "lengths": np.float64, "starts": np.int64, "docs": np.int32}


def from_bytes(data: bytes, version: int) -> Postings:
    """Postings from to_bytes, as of `version`; ValueError for anything that is not such postings
    (every array one-dimensional, of its type, and fitting the others)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
        for name, dtype in _DTYPES.items():
            if arrays[name].dtype != dtype:
                raise ValueError(f"{name} is {arrays[name].dtype}")
        if arrays["freqs"].dtype not in (np.float32, np.float64):
            raise ValueError(f"freqs is {arrays['freqs'].dtype}")
        for column in FILTER_COLUMNS:
            if arrays[f"codes_{column}"].dtype != np.int32:
                raise ValueError(f"codes of {column} are {arrays[f'codes_{column}'].dtype}")
        if any(a.ndim != 1 for a in arrays.values()):
            raise ValueError("an array is not one-dimensional")
        counts = [int(c) for c in arrays["counts"]]
        terms = _split(arrays["terms"], counts[0])
        values = {c: {v: i for i, v in enumerate(_split(arrays[f"values_{c}"], n))}
                  for c, n in zip(FILTER_COLUMNS, counts[1:], strict=True)}
        postings = Postings(version=version, rowids=arrays["rowids"], lengths=arrays["lengths"],
                            codes={c: arrays[f"codes_{c}"] for c in FILTER_COLUMNS}, values=values,
                            terms={t: i for i, t in enumerate(terms)}, starts=arrays["starts"], docs=arrays["docs"],
                            freqs=arrays["freqs"])
        rows, starts, docs = postings.rows, postings.starts, postings.docs
        if (len(starts) != len(terms) + 1 or int(starts[0]) != 0 or int(starts[-1]) != len(docs)
                or bool(np.any(np.diff(starts) < 0)) or len(postings.lengths) != rows or len(docs) != len(postings.freqs)
                or any(len(a) != rows for a in postings.codes.values())
                or any(len(values[c]) and int(postings.codes[c].max(initial=0)) >= len(values[c]) for c in values)
                or (len(docs) and (int(docs.max()) >= rows or int(docs.min()) < 0))):
            raise ValueError("the arrays do not fit together")
    except ValueError as e:
        raise ValueError(f"not postings: {e}") from e
    except Exception as e:  # noqa: BLE001 - a damaged archive fails in many ways (zipfile, zlib, numpy)
        raise ValueError(f"not postings: {type(e).__name__}") from e
    return postings


def worker_main(argv: Sequence[str]) -> int:
    """A worker process: read the postings of the store at argv[0] (FTS table argv[1], columns and
    weights as JSON in argv[2] and argv[3]) and write them to stdout (to_bytes)."""
    path, table, columns, weights = argv
    uri = pathlib.Path(os.path.abspath(path)).as_uri() + "?mode=rw"  # (never creates a store that went away)
    conn = sqlite3.connect(uri, uri=True, timeout=5.0, isolation_level=None)
    try:
        postings = read_postings(conn, table, json.loads(columns), json.loads(weights), 0)
    finally:
        conn.close()
    sys.stdout.buffer.write(to_bytes(postings))
    sys.stdout.buffer.flush()
    return 0


class QueryTokens:
    """The tokens FTS5's `tokenizer` makes of each query word, from a private in-memory table
    with that tokenizer (remembered for TOKEN_CACHE distinct words). Thread-safe."""

    def __init__(self, tokenizer: str) -> None:
        self._conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._conn.execute(f"CREATE VIRTUAL TABLE q USING fts5(x, tokenize='{tokenizer}')")
        self._conn.execute("CREATE VIRTUAL TABLE qv USING fts5vocab(q, instance)")
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str, ...]] = {}

    def tokens(self, words: Sequence[str]) -> list[tuple[str, ...]]:
        """Each word's tokens, in order (one for a plain word; none or several are possible)."""
        with self._lock:
            missing = list(dict.fromkeys(w for w in words if w not in self._cache))
            if missing:
                if len(self._cache) + len(missing) > TOKEN_CACHE:
                    self._cache.clear()
                self._conn.executemany("INSERT INTO q (rowid, x) VALUES (?, ?)", list(enumerate(missing, 1)))
                found: dict[int, list[tuple[int, str]]] = {}
                for term, doc, offset in self._conn.execute("SELECT term, doc, offset FROM qv"):
                    found.setdefault(doc, []).append((offset, term))
                self._conn.execute("DELETE FROM q")
                for i, word in enumerate(missing, 1):
                    self._cache[word] = tuple(term for _, term in sorted(found.get(i, ())))
            return [self._cache[w] for w in words]
