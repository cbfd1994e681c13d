"""The index's persistent cache: records plus the fingerprints that say when to re-read them.

A restart on a 50k-file library should cost one stat walk, not 50k header reads. The cache is
one JSON file (orjson when available), written atomically (temporary file + os.replace) and
only after a scan that changed something. A corrupt or foreign cache is ignored with one log
line: it is only ever a shortcut, never the source of truth.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Iterable, Mapping

from . import jsonio
from .atomic import atomic_write_bytes
from .reader import Fingerprint
from .records import FOLDER_KINDS, ExampleParams, ModelRecord
from .safe_open import describe, printable, read_regular

log = logging.getLogger(__name__)

# Bump when what the reader extracts changes, so old caches are re-read instead of trusted.
CACHE_VERSION = 1
CACHE_FORMAT = "intelligent-pipeline/model-index"
MAX_CACHE_BYTES = 1024 * 1024 * 1024  # ~20 KB a record at most: room for 50k models, and a bound

Entry = tuple[Fingerprint, ModelRecord]
Key = tuple[str, str]  # (kind, name)

_RECORD_FIELDS = {f.name for f in dataclasses.fields(ModelRecord)}
_EXAMPLE_FIELDS = {f.name for f in dataclasses.fields(ExampleParams)}


def load_cache(path: str) -> dict[Key, Entry] | None:
    """The cached entries, or None when there is no usable cache (missing, corrupt, old)."""
    try:
        raw = read_regular(path, MAX_CACHE_BYTES)
    except FileNotFoundError:
        return None
    except OSError as e:  # also a cache path that is a FIFO or device, or a file over the limit
        log.warning("cannot read index cache %r: %s; rebuilding it", path, describe(e))
        return None
    try:
        doc = jsonio.loads(raw)
        if not isinstance(doc, dict) or doc.get("format") != CACHE_FORMAT:
            raise ValueError("not an index cache")
        if doc.get("version") != CACHE_VERSION:
            log.info("index cache %r is version %r, expected %d; rebuilding it", path, doc.get("version"), CACHE_VERSION)
            return None
        entries: dict[Key, Entry] = {}
        for item in doc["entries"]:
            record = record_from_dict(item["record"])
            entries[(record.kind, record.name)] = (fingerprint_from_json(item["fingerprint"]), record)
        return entries
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        log.warning("index cache %r is corrupt (%s); ignoring it and rebuilding", path, printable(str(e), 200))
        return None


def save_cache(path: str, entries: Iterable[tuple[Fingerprint, ModelRecord]]) -> bool:
    """Write the cache atomically; False (and one log line) if it could not be written."""
    items = [{"fingerprint": list(fp), "record": rec.to_dict()} for fp, rec in entries]
    try:
        data = _dumps({"format": CACHE_FORMAT, "version": CACHE_VERSION, "entries": items})
        atomic_write_bytes(path, data)
    except OSError as e:
        log.warning("cannot write index cache %r: %s", path, describe(e))
        return False
    return True


def _dumps(doc: dict[str, Any]) -> bytes:
    """Serialise; entries that cannot be (file names that are not valid UTF-8) are left out:
    they are simply re-read on the next start."""
    try:
        return jsonio.dumps(doc)
    except (TypeError, ValueError, UnicodeEncodeError):
        good = []
        for item in doc["entries"]:
            try:
                jsonio.dumps(item)
                good.append(item)
            except (TypeError, ValueError, UnicodeEncodeError):
                continue
        return jsonio.dumps({**doc, "entries": good})


def fingerprint_from_json(value: Any) -> Fingerprint:
    path, size, mtime_ns, sidecars, preview = value
    return (str(path), int(size), int(mtime_ns), tuple((str(s), str(n), int(m)) for s, n, m in sidecars),
            None if preview is None else str(preview))


def record_from_dict(d: Mapping[str, Any]) -> ModelRecord:
    """Inverse of ModelRecord.to_dict; tolerates fields added or removed since it was written."""
    kw = {k: v for k, v in d.items() if k in _RECORD_FIELDS}
    if kw.get("kind") not in FOLDER_KINDS or not isinstance(kw.get("name"), str):
        raise ValueError(f"bad record kind/name: {kw.get('kind')!r} {kw.get('name')!r}")
    for key in ("tags", "trigger_words", "sources", "problems"):
        kw[key] = tuple(kw.get(key) or ())
    kw["examples"] = tuple(ExampleParams(**{k: v for k, v in e.items() if k in _EXAMPLE_FIELDS})
                           for e in kw.get("examples") or ())
    if kw.get("strength_range") is not None:
        lo, hi = kw["strength_range"]
        kw["strength_range"] = (float(lo), float(hi))
    kw["extra"] = dict(kw.get("extra") or {})
    return ModelRecord(**kw)
