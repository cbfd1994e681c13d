"""Finding records by the names users give them (pins, excludes): the exact loader name, else the
name case-insensitively, else its stem or title; and close names for a name that matches nothing."""
from __future__ import annotations

import difflib
from typing import Any, Iterable, Mapping, Sequence

from ..metadata.records import ModelRecord


def _norm(s: str) -> str:
    return s.replace("\\", "/").strip().lower()


def _stem_of(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


def _name_keys(r: ModelRecord) -> tuple[str, ...]:
    return tuple(k for k in (_norm(r.name), _norm(_stem_of(r.name)), _norm(r.name.rsplit(".", 1)[0]),
                             _norm(r.title)) if k)


class Names:
    """Records by every name a user may give them, built once per decision, so that each pin is a
    dict look-up: a prompt with thousands of `<lora:...>` tags never scans the library per tag."""

    def __init__(self, records: Iterable[ModelRecord]) -> None:
        self.exact: dict[str, list[ModelRecord]] = {}
        self.normed: dict[str, list[ModelRecord]] = {}
        self.keys: dict[str, list[ModelRecord]] = {}
        for r in records:
            self.exact.setdefault(r.name, []).append(r)
            self.normed.setdefault(_norm(r.name), []).append(r)
            for k in dict.fromkeys(_name_keys(r)):
                self.keys.setdefault(k, []).append(r)

    def find(self, wanted: str) -> list[ModelRecord]:
        """Exact loader name, else case-insensitive name, else stem/title."""
        w = _norm(wanted)
        return list(self.exact.get(wanted) or self.normed.get(w) or self.keys.get(w) or ())


def find(records: Sequence[ModelRecord], wanted: str) -> list[ModelRecord]:
    """Records a user-given name means: exact loader name, else case-insensitive name/stem/title."""
    return Names(records).find(wanted)


def close_names(records: Sequence[ModelRecord], wanted: str, n: int = 5) -> list[str]:
    w = _norm(wanted)
    names = [r.name for r in records]
    contains = [nm for nm in names if w and (w in _norm(nm) or _norm(_stem_of(nm)) in w)]
    if contains:
        return sorted(contains)[:n]
    stems = {_norm(_stem_of(nm)): nm for nm in names[:20000]}
    return [stems[s] for s in difflib.get_close_matches(_norm(_stem_of(wanted)), list(stems), n=n, cutoff=0.5)]


def excluded_keys(ov: Mapping[str, Any]) -> set[str]:
    return {_norm(x) for x in ov.get("exclude", ())}


def is_excluded(r: ModelRecord, keys: set[str]) -> bool:
    return bool(keys) and any(k in keys for k in _name_keys(r))

