"""Candidate retrieval: the few LoRAs of a library worth scoring for a prompt.

A plan never walks every LoRA of a big library. It asks the library's full-text index (the
index store's FTS5 table: bm25 over name, title, trigger words, tags and description, with the
store's accent-folding, stemming tokenizer) for the LoRAs that share words with the prompt's
terms, best first, and scores only those. Retrieval only decides what is looked at: whether a
LoRA is stacked is decided by the scorer from its own matches, never from its rank here, whose
scale moves with the library.

A `Library` is anything with the methods below (metadata.ModelIndex is one). A plain
sequence of records, as tests and scripts hand the planner, is looked at whole.
"""
from __future__ import annotations

import threading
import weakref
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol, TypeVar, cast, runtime_checkable

from ..metadata.flags import FlaggedIndex
from ..metadata.records import ModelRecord
from .compat import group_compatibility, lora_group
from .meaning import Similar, similarity_map
from .scoring import LoraContext, Query

# LoRAs asked of each search: the best by all the words together, and the best by each word alone
# (a LoRA about one rare word of a long prompt is not crowded out by those holding several common
# ones). Scoring one costs ~20 us, so a plan scores at most several hundred.
RETRIEVE_LIMIT = 100
PER_WORD = 16
# Words per search (the store reads the first 32 of a text) and searches per retrieval: a prompt's
# first 128 distinct words are looked for; past those, more words change nothing anyway.
WORDS_PER_SEARCH = 32
MAX_SEARCHES = 4
# The prompt's own terms outweigh related tags when the words are ordered for the searches.
_ORDER = {"concept": 0, "part": 1, "alias": 1, "tag": 2}


@runtime_checkable
class Library(Protocol):
    """A library the planner retrieves from (metadata.ModelIndex has these methods)."""

    def records(self, kind: str | None = None) -> list[ModelRecord]: ...

    def get(self, kind: str, name: str) -> ModelRecord | None: ...

    def search(self, text: str, kind: str | None = None, architecture: str | None = None,
               family: str | None = None, limit: int = 50, each: int = 0) -> list[tuple[str, str, float]]: ...

    @property
    def generation(self) -> int: ...

    @property
    def search_generation(self) -> int | None: ...


def is_library(source: object) -> bool:
    return isinstance(source, Library)


def as_source(source: Library | Iterable[ModelRecord], kind: str | None = None) -> Library | list[ModelRecord]:
    """A Library as it is; records (of `kind`) as a list, so they can be read more than once."""
    if is_library(source):
        return cast(Library, source)
    return [r for r in cast("Iterable[ModelRecord]", source) if kind is None or r.kind == kind]


@dataclass(frozen=True)
class Retrieved:
    """The LoRAs to score, and how they were found: `method` "words" (the full-text index) or
    "all" (a plain list of records, or a library whose index cannot be searched: every one looked
    at); `by_meaning`: the (kind, name) of those that meaning found (selector/meaning.py), and
    `similar` what it found; `searches`: how many searches were made (0: the last few retrievals
    had made them)."""

    records: tuple[ModelRecord, ...]
    method: str
    searches: int = 0
    by_words: frozenset[tuple[str, str]] = frozenset()
    by_meaning: frozenset[tuple[str, str]] = frozenset()
    similar: Similar | None = None

    def found_by(self, record: ModelRecord) -> list[str]:
        """How a record was found, in contracts.md's words: "words", "meaning" or both."""
        key = (record.kind, record.name)
        out = ["words"] if self.method == "all" or key in self.by_words else []
        if key in self.by_meaning:
            out.append("meaning")
        return out or ["words"]

    def similarity(self) -> dict[str, float]:
        """name -> cosine to the prompt of the records retrieved (empty without meaning)."""
        return dict(similarity_map(self.similar, self.records))


def search_words(query: Query) -> list[str]:
    """The words to look for, the prompt's own specific terms first: every word of every term
    (not only a phrase's first), so a model holding the whole phrase ranks above one holding a
    part of it."""
    ordered = sorted(range(len(query.terms)),
                     key=lambda i: (_ORDER.get(query.terms[i].kind, 3), -query.terms[i].weight, i))
    out: dict[str, None] = {}
    for i in ordered:
        for tok in query.terms[i].term.tokens:
            out.setdefault(tok)
    return list(out)


def retrieve_loras(source: Library | Iterable[ModelRecord], query: Query,
                   architecture: str | None = None, limit: int = RETRIEVE_LIMIT, each: int = PER_WORD,
                   similar: Similar | None = None) -> Retrieved:
    """The LoRAs of `source` to score for `query`: from a Library, the `limit` best by the words of
    each search and the `each` best by every word alone, and as many again among those of
    `architecture` (so a family with few LoRAs for a
    common word is not crowded out by another's many), resolved to the records the library
    holds now; from a sequence of records, all of its LoRAs. `similar` (what meaning found for
    the prompt) adds the LoRAs most like it in meaning."""
    meant = frozenset(k for k, _ in similar.found) if similar is not None else frozenset()
    if not is_library(source):
        records = tuple(r for r in cast("Iterable[ModelRecord]", source) if r.kind == "lora")
        return Retrieved(records, "all", by_meaning=meant, similar=similar)
    library = cast(Library, source)
    if library.search_generation is None:  # (its store could not be opened or written): all are looked at
        return Retrieved(tuple(library.records("lora")), "all", by_meaning=meant, similar=similar)
    words = search_words(query)
    archs: list[str | None] = [None]
    if architecture and architecture != "unknown":
        archs.append(architecture)
    keys: dict[tuple[str, str], None] = {}
    searches = 0
    for arch in archs if words else ():
        found, n = _searched(library, tuple(words), arch, limit, each)
        keys.update(found)
        searches += n
    by_words = frozenset(keys)
    keys.update(dict.fromkeys(k for k, _ in similar.found) if similar is not None else {})
    out: list[ModelRecord] = []
    for kind, name in keys:
        r = library.get(kind, name)
        if r is not None:  # (removed since the store was written)
            out.append(r)
    return Retrieved(tuple(out), "words", searches, by_words, meant, similar)


def _searched(library: Library, words: tuple[str, ...], architecture: str | None, limit: int,
              each: int) -> tuple[dict[tuple[str, str], None], int]:
    """(kind, name) of the LoRAs the searches for `words` find (in the order found), and how many
    searches were made: 0 when the last few retrievals of this library made them already (a plan
    retrieves twice for its prompt, for the family fit and for the stack)."""
    key = (library.search_generation, library.generation, words, architecture, limit, each)
    owner = _owner(library)
    with _LOCK:
        recent = _RECENT.setdefault(owner, OrderedDict())
        hit = recent.get(key)
    if hit is not None:
        return hit, 0
    found: dict[tuple[str, str], None] = {}
    chunks = [words[i:i + WORDS_PER_SEARCH] for i in range(0, len(words), WORDS_PER_SEARCH)][:MAX_SEARCHES]
    for chunk in chunks:
        for kind, name, _ in library.search(" ".join(chunk), kind="lora", architecture=architecture,
                                            limit=limit, each=each):
            found.setdefault((kind, name))
    with _LOCK:
        recent[key] = found
        while len(recent) > RECENT_RETRIEVALS:
            recent.popitem(last=False)
    return found, len(chunks)


def all_records(source: Library | Iterable[ModelRecord], kind: str | None = None) -> list[ModelRecord]:
    """Every record of `source` (of one kind)."""
    found = as_source(source, kind)
    return found if isinstance(found, list) else list(found.records(kind))


# Per library: what is derived from all its records, by name, with the generation it was derived
# at (rebuilt once per scan); and the last few searches, by (search generation, generation, words,
# architecture, limit, each): the store's generation, so that what was found while a scan was
# writing is not kept past the write.
_DERIVED: weakref.WeakKeyDictionary[object, dict[str, tuple[int, Any]]] = weakref.WeakKeyDictionary()
_RECENT: weakref.WeakKeyDictionary[object, OrderedDict[tuple[Any, ...], dict[tuple[str, str], None]]] = \
    weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
RECENT_RETRIEVALS = 8
T = TypeVar("T")


def _owner(library: Library) -> object:
    """What a library's caches are kept for: a FlaggedIndex is made per plan around the same index,
    so its index (its generation, which the keys hold, changes with the flags too)."""
    return library.index if isinstance(library, FlaggedIndex) else library


def per_generation(library: Library, name: str, build: Callable[[Library], T]) -> T:
    """`build(library)`, kept until the library's generation changes: for what a plan would
    otherwise derive from every record (the LoRAs by group, the names pins are looked up by)."""
    generation = library.generation
    owner = _owner(library)
    with _LOCK:
        hit = _DERIVED.setdefault(owner, {}).get(name)
    if hit is not None and hit[0] == generation:
        return cast(T, hit[1])
    value = build(library)
    with _LOCK:
        _DERIVED.setdefault(owner, {})[name] = (generation, value)
    return value


def compatible_count(source: Library | Iterable[ModelRecord], ctx: LoraContext) -> int | None:
    """How many LoRAs of a Library would load on the checkpoint of `ctx` (what rarity is a share
    of); None for plain records (the scorer counts those itself). The LoRAs are counted by group
    once per generation of the library, so a plan adds up a few dozen groups, never the records."""
    if not is_library(source):
        return None
    groups = per_generation(cast(Library, source), "lora groups",
                            lambda lib: Counter(lora_group(r) for r in lib.records("lora")))
    return sum(n for g, n in groups.items()
               if group_compatibility(g, ctx.architecture, ctx.base_model, ctx.guessed) is not None)
