"""Scoring checkpoints and LoRAs against a prompt analysis, with the reasons for every point.

Everything is read from metadata a model carries (tags, trigger words, title, description,
base model, popularity): never from its file name, so a library with random file names gets the
same picks. Each model's text is tokenised once and cached (`profile`), so scoring a library of
tens of thousands of LoRAs is a set look-up per model.

Points, in one place so they can be weighed against each other:
- checkpoints: style up to +35 (a clearly different style -12), concepts up to +15, base model the
  prompt implies +25 (same architecture +8), popularity up to +8 (+4 without figures), LoRAs
  of its family for the prompt up to +15 (planner), family tier per quality +-6,
  few-step distilled models +4 for fast, -1..-5 above it,
  unknown family -8, NSFW above the limit for a SFW prompt -20;
- LoRAs: per concept, the best field (trigger 9/14, tags 8/14, title 8/12, description 3/5 for a
  word/phrase; a word that only qualifies another in a tag, "cat" of "cat ears", 4; a word that
  is the LoRA's first trigger word or first subject tag 12) plus 2 per further field, times the
  concept's weight (specific 1.0, near-equivalents such as "kitty" -> "cat" or "old sailor" ->
  "old man" 0.9, colours 0.4, generic words 0.3, related tags 0.5 of theirs) and a rarity factor;
  at least 10 such points, 5 of them from the prompt's own concepts or their near-equivalents,
  to be stacked at all. A match must also touch what the LoRA is about (title, trigger words,
  first two subject tags) or hit two of the prompt's concepts, and a character LoRA needs its
  character named. Then style up to +6, popularity up to +4, partial compatibility -6.
"""
from __future__ import annotations

import logging
import math
import weakref
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..metadata import base_models
from ..metadata.records import ModelRecord
from . import vocabulary as V
from .analysis import PromptAnalysis, extract_concepts
from .architectures import ArchitectureSpec, preset, spec_for
from .compat import IMAGE_ARCHITECTURES, effective_architecture, lora_compatibility
from .text import FIELD_SEP, TRANSLATE_TABLE, Term, make_term, word_forms, words

log = logging.getLogger(__name__)

DESCRIPTION_LIMIT = 2000  # characters of a description that are read: the start says what a model is
MIN_LORA_RELEVANCE = 10.0
MAX_TRIGGER_ITEMS = 32  # trigger words looked at for what a LoRA is about
MIN_CORE_RELEVANCE = 5.0  # of which from the prompt's own concepts, not synonyms or style tags
# Meaning (selector/meaning.py): a LoRA that shares no word with the prompt is stacked when its
# text's cosine similarity to the prompt is at least MEANING_STACK (a property of the two texts
# alone, never of the library); between accepted LoRAs, similarity above MEANING_FLOOR adds to
# the rank. Only one LoRA is stacked on meaning alone (coverage.stack_by_coverage).
MEANING_STACK = 0.55
MEANING_FLOOR = 0.3
MEANING_REJECT = 0.35  # a LoRA whose words match but whose text is less like the prompt is not stacked
MEANING_POINTS = 20.0
# Few-step distilled families (Lightning, Turbo, LCM, Schnell): ideal for "fast", a compromise above it.
_DISTILLED_SPECS = frozenset({"sd1_fast", "sdxl_fast", "sd3_fast", "flux_schnell"})
_DISTILLED_PREFERENCE = {"fast": 4.0, "balanced": -1.0, "high": -3.0, "ultra": -5.0}
UNKNOWN_POPULARITY = 0.5  # the popularity share of a checkpoint without CivitAI figures
NSFW_NAMES = {1: "PG", 2: "PG-13", 4: "R", 8: "X", 16: "XXX", 32: "blocked"}


# --- per-record text profiles ------------------------------------------------------------------

_FIELDS_SEP = "\x1e"  # between the fields of one record while they are tokenised together
_EMPTY: frozenset[str] = frozenset()


def split_trigger_words(triggers: Iterable[str]) -> list[str]:
    out: list[str] = []
    for t in triggers:
        out.extend(p.strip() for p in str(t).split(",") if p.strip())
    return out


def _part(part: str) -> tuple[frozenset[str], str]:
    toks = part.split()
    if not toks:
        return _EMPTY, " "
    return frozenset(toks), " " + " ".join(toks) + " "


@dataclass(frozen=True)
class ItemInfo:
    """What the items of a model's tag and trigger lists say beyond their words.

    `heads`: per field, the last word of each item ("ears" of "cat ears"): a word that is only
    ever a qualifier there ("cat") names something else. `identity`: the first trigger word and
    the first tag that is neither a CivitAI category nor generic: what the model is about.
    `subject`: those plus the second such tag (CivitAI authors name the subject first; trainer
    tags come most frequent first, often after the trigger token). `subject_heads`: the subject
    phrases by their last word ("jacket" -> "leather jacket"). `first_trigger`: (words, padded
    text) of the first trigger word. `character`: tagged a character LoRA.
    """

    heads: dict[str, frozenset[str]]
    identity: frozenset[str]
    subject: frozenset[str]
    subject_heads: dict[str, tuple[str, ...]]
    first_trigger: tuple[frozenset[str], str]
    character: bool


def _item_info(fields: dict[str, str]) -> ItemInfo:
    heads: dict[str, frozenset[str]] = {}
    items_of: dict[str, list[str]] = {}
    for name in ("trigger words", "tags"):
        items = [" ".join(x.split()) for x in fields[name].split(FIELD_SEP)]
        items_of[name] = [x for x in items if x]
        heads[name] = frozenset(x.rsplit(" ", 1)[-1] for x in items_of[name])
    subject_tags = [x for x in items_of["tags"] if x not in V.CATEGORY_TAGS and x not in V.GENERIC_WORDS
                    and x not in V.GENERIC_STYLE_WORDS and x not in V.MODIFIER_WORDS][:2]
    first_trigger = items_of["trigger words"][:1]
    subject = frozenset(first_trigger + subject_tags)
    by_head: dict[str, list[str]] = {}
    for x in subject:
        toks = x.split()
        if len(toks) > 1:
            by_head.setdefault(toks[-1], []).append(x)
    return ItemInfo(heads, frozenset(first_trigger + subject_tags[:1]), subject,
                    {h: tuple(v) for h, v in by_head.items()}, _part(first_trigger[0] if first_trigger else ""),
                    any(x in V.CHARACTER_TAGS for x in items_of["tags"]))


class Profile:
    """A model's metadata tokenised for matching, built in two steps.

    On creation only the set of words in its tags, title and trigger words (one `translate`,
    a few microseconds): enough to rule out most models for a prompt. Per-field sets and texts,
    and the description's, are built the first time a model is looked at closely. The profile
    keeps the record's own strings, not the record, so it never keeps a replaced record alive.
    """

    __slots__ = ("words", "has_tags", "_tags", "_title", "_trig", "_desc_raw", "_downloads", "_likes",
                 "_fields", "_all_fields", "_desc_text", "_desc_set", "_style", "_items", "title_is_file_name",
                 "_head", "_trig_items", "memo",
                 "__weakref__")

    def __init__(self, record: ModelRecord) -> None:
        self._tags = record.tags
        self._title = record.title or ""
        # no title of its own: the index fell back to the file's name
        self.title_is_file_name = not self._title or self._title == record.stem
        self._trig = record.trigger_words
        self._desc_raw = record.description or ""
        self._downloads = record.downloads
        self._likes = record.likes
        joined = " ".join(self._tags) + " " + self._title + " " + " ".join(self._trig)
        self.words: frozenset[str] = frozenset(joined.lower().translate(TRANSLATE_TABLE).split())
        self.has_tags = bool(self._tags or self._trig)
        self._fields: tuple[tuple[str, frozenset[str], str], ...] | None = None
        self._all_fields: tuple[tuple[str, frozenset[str], str], ...] | None = None
        self._desc_text: str | None = None
        self._desc_set: frozenset[str] | None = None
        self._style: dict[str, float] | None = None
        self._items: ItemInfo | None = None
        self._head: tuple[frozenset[str], str] | None = None
        self._trig_items: tuple[tuple[str, ...], ...] | None = None
        # what else is derived from the record alone, by who derives it ("sources:<style>", the
        # planner's component needs): computed once per record, not once per plan
        self.memo: dict[str, Any] = {}

    @property
    def popularity(self) -> float:
        """0..1 from log-scaled downloads and likes (1M downloads and 100k likes is about 1)."""
        pop = math.log10(1 + max(0, self._downloads)) + 0.5 * math.log10(1 + max(0, self._likes))
        return min(1.0, pop / 7.0)

    def shares_words(self, wanted: frozenset[str]) -> bool:
        """Whether tags, title or trigger words contain any of `wanted` (the cheap first test)."""
        return not wanted.isdisjoint(self.words)

    def _meta_fields(self) -> tuple[tuple[str, frozenset[str], str], ...]:
        if self._fields is None:
            sep = f" {FIELD_SEP} "
            trig = sep.join(self._trig).replace(",", sep) if self._trig else ""
            joined = f"{sep.join(self._tags)} {_FIELDS_SEP} {self._title} {_FIELDS_SEP} {trig}"
            parts = joined.lower().translate(TRANSLATE_TABLE).split(_FIELDS_SEP)
            if len(parts) != 3:  # the separator inside a tag: tokenise field by field
                parts = [sep.join(self._tags).lower().translate(TRANSLATE_TABLE),
                         self._title.lower().translate(TRANSLATE_TABLE), trig.lower().translate(TRANSLATE_TABLE)]
            tags, title, trigs = (_part(x) for x in parts)
            self._fields = (("trigger words", *trigs), ("tags", *tags), ("title", *title))
        return self._fields

    @property
    def items(self) -> ItemInfo:
        """Heads of the tag and trigger items, and the items that name what the model is."""
        if self._items is None:
            self._items = _item_info({name: text for name, _, text in self._meta_fields()})
        return self._items

    @property
    def desc_text(self) -> str:
        if self._desc_text is None:
            raw = self._desc_raw[:DESCRIPTION_LIMIT]
            self._desc_text = " " + " ".join(words(raw)) + " " if raw else " "
            self._desc_raw = ""
        return self._desc_text

    @property
    def desc_set(self) -> frozenset[str]:
        if self._desc_set is None:
            self._desc_set = frozenset(self.desc_text.split())
        return self._desc_set

    @property
    def title_text(self) -> str:
        return self._meta_fields()[2][2]

    @property
    def trigger_items(self) -> tuple[tuple[str, ...], ...]:
        """The words of each trigger word (comma-separated lists split), the first 32."""
        if self._trig_items is None:
            self._trig_items = tuple(tuple(words(x)) for x in split_trigger_words(self._trig)[:MAX_TRIGGER_ITEMS])
        return self._trig_items

    @property
    def trigger_head(self) -> tuple[frozenset[str], str]:
        """(words, padded text) of the lead of the first trigger word: "saren" of
        "saren_\\(princess_connect!\\)" (Danbooru puts the series in brackets too)."""
        first = split_trigger_words(self._trig[:1])[:1]
        return _part(" ".join(words(title_head(first[0].replace("\\(", "(").replace("\\)", ")"))))) \
            if first else (_EMPTY, " ")

    @property
    def title_head(self) -> tuple[frozenset[str], str]:
        """(words, padded text) of the title's lead: what comes before its first bracket or
        separator. CivitAI character titles put the name there and the series after it ("Saren
        (Princess Connect! Re:Dive)", "Ram - Re:Zero"), so naming the series is not naming her."""
        if self._head is None:
            self._head = _part(" ".join(words(title_head(self._title))))
        return self._head

    def fields(self, with_description: bool = True) -> tuple[tuple[str, frozenset[str], str], ...]:
        if not with_description:
            return self._meta_fields()
        if self._all_fields is None:
            self._all_fields = self._meta_fields() + (("description", self.desc_set, self.desc_text),)
        return self._all_fields


_TITLE_OPENERS = ("(", "[", "{", "<", "\uff08", "\u3010", "\u300c", "\u300e", "\uff3b")
_TITLE_CLOSERS = {"(": ")", "[": "]", "{": "}", "<": ">", "\uff08": "\uff09", "\u3010": "\u3011",
                  "\u300c": "\u300d", "\u300e": "\u300f", "\uff3b": "\uff3d"}
_TITLE_SEPARATORS = (" - ", " | ", " from ", " \u2013 ", " \u2014 ", "|", "/")


def title_head(title: str) -> str:
    """The lead of a title: leading bracketed labels ("[MM_LORA] ...") skipped, then cut at the
    first bracket or separator. Linear: a few `find`s over at most 300 characters."""
    t = title[:300].strip()
    for _ in range(4):  # "[LoRA] [SDXL] Name (Series)"
        if not t or t[0] not in _TITLE_CLOSERS:
            break
        end = t.find(_TITLE_CLOSERS[t[0]], 1)
        if end < 0:
            break
        t = t[end + 1:].strip()
    cut = len(t)
    for mark in _TITLE_OPENERS + _TITLE_SEPARATORS:
        i = t.find(mark)
        if 0 < i < cut:
            cut = i
    return t[:cut] or title[:300]


class _ProfileRef(weakref.ref):
    """A weak reference to a record that also holds its profile (one object per cached record)."""

    __slots__ = ("key", "profile")
    key: int
    profile: Profile


_PROFILES: dict[int, _ProfileRef] = {}


def _forget(ref: _ProfileRef) -> None:
    if _PROFILES.get(ref.key) is ref:
        del _PROFILES[ref.key]


def profile(record: ModelRecord) -> Profile:
    """The cached profile of a record (rebuilt when the record object is replaced).

    Keyed by object identity with a weak reference, so a rescan that replaces records frees
    their profiles, and equal-looking records never share a stale one.
    """
    key = id(record)
    ref = _PROFILES.get(key)
    if ref is not None and ref() is record:
        return ref.profile
    p = Profile(record)
    try:
        ref = _ProfileRef(record, _forget)
    except TypeError:
        return p
    ref.key = key
    ref.profile = p
    _PROFILES[key] = ref
    return p


def warm_profiles(records: Iterable[ModelRecord]) -> int:
    """Tokenise records ahead of the first plan (e.g. after a rescan, off the request path)."""
    n = 0
    for r in records:
        profile(r)
        n += 1
    return n


# --- style affinity of a model -----------------------------------------------------------------

_STYLE_TERMS: list[tuple[str, Term, float]] = [
    (style, make_term(t), w) for style, vocab in V.STYLE_VOCAB.items() for t, w in vocab.items()
]
_STYLE_TERMS_BY_STYLE: dict[str, tuple[Term, ...]] = {
    style: tuple(t for st, t, _ in _STYLE_TERMS if st == style) for style in V.STYLES}
_STYLE_WORDS = frozenset(w for _, t, _ in _STYLE_TERMS for w in t.words)
_FIELD_STYLE_FACTOR = (("tags", 1.0), ("title", 0.9), ("trigger words", 0.5), ("description", 0.3))
_BASE_MODEL_STYLE = {"Illustrious": {"anime": 4.0}, "NoobAI": {"anime": 4.0}, "Pony": {"anime": 2.0, "cartoon": 1.5}}


def style_affinity(record: ModelRecord, prof: Profile | None = None) -> dict[str, float]:
    """Evidence points per style in a model's metadata (tags count most, description least)."""
    p = prof or profile(record)
    if p._style is not None:
        return p._style
    raw = dict.fromkeys(V.STYLES, 0.0)
    desc_pts = dict.fromkeys(V.STYLES, 0.0)
    fields = {name: (s, t) for name, s, t in p.fields(with_description=False)}
    any_meta = p.shares_words(_STYLE_WORDS)
    any_desc = not _STYLE_WORDS.isdisjoint(p.desc_set)
    if any_meta or any_desc:
        for style, term, w in _STYLE_TERMS:
            best = 0.0
            if any_meta:
                for name, factor in _FIELD_STYLE_FACTOR[:3]:
                    fs, ft = fields[name]
                    if factor > best and term.in_text(fs, ft):
                        best = factor
            if best:
                raw[style] += w * best
            elif any_desc and term.in_text(p.desc_set, p.desc_text):
                desc_pts[style] += w * 0.3
    for style in V.STYLES:
        raw[style] += min(4.0, desc_pts[style])
    for style, pts in _BASE_MODEL_STYLE.get(base_models.family(record.base_model), {}).items():
        raw[style] += pts
    p._style = raw
    return raw


def style_sources(record: ModelRecord, style: str, prof: Profile | None = None) -> list[str]:
    """Where a model's metadata says `style`: "tags", "title", "trigger words", "description", "base model"."""
    p = prof or profile(record)
    key = "sources:" + style
    cached = p.memo.get(key)
    if cached is not None:
        return list(cached)
    found: list[str] = []
    fields = p.fields(with_description=bool(p._desc_raw or p._desc_text))
    for name, fs, ft in fields:
        if any(term.in_text(fs, ft) for term in _STYLE_TERMS_BY_STYLE.get(style, ())):
            found.append(name)
    if style in _BASE_MODEL_STYLE.get(base_models.family(record.base_model), {}):
        found.append("base model")
    p.memo[key] = tuple(found)
    return found


def style_match(affinity: dict[str, float], style: str) -> tuple[float, float, float]:
    """(share, strength, total) of `style` in an affinity, related styles counting in part."""
    total = sum(affinity.values())
    if total <= 0:
        return 0.0, 0.0, 0.0
    own = affinity.get(style, 0.0) + sum(f * affinity.get(o, 0.0) for o, f in V.RELATED_STYLES.get(style, {}).items())
    share = min(1.0, own / total)
    strength = min(1.0, own / 5.0)
    return share, strength, total


def _dominant(affinity: dict[str, float]) -> str:
    return max(affinity, key=lambda s: affinity[s])


# --- the query: what to look for ---------------------------------------------------------------

@dataclass(frozen=True)
class QueryTerm:
    term: Term
    weight: float
    kind: str  # "concept", "part" (a word of a phrase), "alias" (a near-equivalent), "tag" (related)
    children: tuple[int, ...] = ()  # indices of the terms this phrase subsumes
    # Prompt phrases this word is the head of, with a qualifier that tells kinds apart ("denim
    # jacket"): a model about another kind ("leather jacket") is no match for the word.
    contrasts: tuple[Term, ...] = ()


@dataclass(frozen=True)
class Query:
    terms: tuple[QueryTerm, ...]
    words: frozenset[str]  # a word each term needs (a phrase: its first): a model sharing none matches nothing
    by_word: dict[str, tuple[int, ...]] = field(default_factory=dict, compare=False)  # word form -> terms
    by_text: dict[str, QueryTerm] = field(default_factory=dict, compare=False)
    # every form of every word of the prompt's own terms (concepts, their words, near-equivalents)
    core_forms: frozenset[str] = field(default=frozenset(), compare=False)

    def candidates(self, present: Iterable[str]) -> list[int]:
        """Indices (in order) of the terms that can match a text with these words."""
        if not self.by_word:
            return list(range(len(self.terms)))
        found: set[int] = set()
        for w in present:
            found.update(self.by_word.get(w, ()))
        return sorted(found)

    @property
    def concept_texts(self) -> tuple[str, ...]:
        return tuple(q.term.text for q in self.terms if q.kind == "concept")

    def _term(self, text: str) -> QueryTerm | None:
        if self.by_text:
            return self.by_text.get(text)
        return next((q for q in self.terms if q.term.text == text), None)

    def kind_of(self, text: str) -> str:
        q = self._term(text)
        return q.kind if q is not None else ""

    def weight_of(self, text: str) -> float:
        q = self._term(text)
        return q.weight if q is not None else 0.0


CORE_KINDS = frozenset({"concept", "part", "alias"})
# Retrieval reads the first concepts of a prompt: past a few hundred, more words add nothing to
# the choice but would make every model that shares a word ("hair") compare against each of them.
MAX_QUERY_CONCEPTS = 256


def concept_weight(text: str) -> float:
    """How much a concept counts: 1.0 specific, 0.4 a colour-like modifier, 0.3 generic (girl, anime)."""
    toks = text.split()
    if text in V.SPECIFIC_PHRASES:
        return 1.0
    if text in V.GENERIC_WORDS or text in V.GENERIC_STYLE_WORDS:
        return 0.3
    if len(toks) == 1:
        return 0.4 if text in V.MODIFIER_WORDS else 1.0
    # A phrase is specific unless every word is generic ("anime girl"); a modifier makes it an
    # attribute worth matching ("pink hair").
    if all(t in V.GENERIC_WORDS or t in V.GENERIC_STYLE_WORDS for t in toks):
        return 0.3
    return 1.0


def lookup_keys(text: str) -> tuple[str, ...]:
    """`text` and its other-number forms ("cats" -> "cat"), to look it up in a vocabulary table."""
    toks = text.split()
    if not toks:
        return ()
    head = " ".join(toks[:-1])
    keys = [text] + sorted(f"{head} {f}".strip() for f in word_forms(toks[-1]) if f != toks[-1])
    return tuple(keys)


def _person_gender(word: str) -> str | None:
    """"male", "female" or "any" for a noun naming a person ("fisherman", "queen", "sailor"), else None."""
    for w in word_forms(word):
        if w in V.PERSON_NOUNS_MALE:
            return "male"
        if w in V.PERSON_NOUNS_FEMALE:
            return "female"
        if w in V.PERSON_NOUNS:
            return "any"
    if word.isalpha() and len(word) > 5:
        if word.endswith(("woman", "women")):
            return "female"
        if word.endswith(("man", "men")) and not word.endswith(("human", "humans")):
            return "male"
    return None


def elderly_terms(concepts: Iterable[str]) -> list[tuple[str, float]]:
    """Tags an elderly-people LoRA carries, when the concepts ask for an elderly person.

    "old fisherman", "elderly woman", "grandpa", "senior couple" ask for one; "old car" does not.
    Terms of the other gender are left out; an unknown gender gets both, weighed lower.
    """
    genders: set[str] = set()
    for c in concepts:
        toks = c.split()
        if any(k in V.ELDERLY_WORDS for k in lookup_keys(c)):  # "elderly", "grandmas", "old age"
            genders.add(_person_gender(toks[-1]) or "any")
        elif len(toks) == 2 and toks[0] in V.ELDERLY_ADJECTIVES:  # "old sailor", not "old car"
            g = _person_gender(toks[1])
            if g is not None:
                genders.add(g)
        elif len(toks) == 2 and toks[1] in V.ELDER_NOUNS:  # "village elder", "wise elders"
            genders.add("any")
    if not genders:
        return []
    out = list(V.ELDERLY_TERMS)
    male, female = "male" in genders, "female" in genders
    if male == female:  # both, or neither said
        w = 0.9 if male else 0.75
        out += [(t, w) for t in V.ELDERLY_MALE_TERMS + V.ELDERLY_FEMALE_TERMS]
    else:
        out += [(t, 0.9) for t in (V.ELDERLY_MALE_TERMS if male else V.ELDERLY_FEMALE_TERMS)]
    return out


def build_query(analysis: PromptAnalysis, prompt: str = "") -> Query:
    """Terms to look for: the analysis' concepts, their words, near-equivalents, recommended tags.

    The prompt's own keyword concepts are merged in, so an LLM analysis that split "pink hair"
    into "pink" and "hair" still finds the phrase. Near-equivalents ("kitty" -> "cat", "old
    sailor" -> "old man", "elderly") count as the prompt's own concepts; related tags (synonyms,
    the style's tags) only support them.
    """
    seen: dict[str, None] = {}  # ordered and O(1) per concept: a long prompt has thousands
    for c in list(analysis.key_concepts) + (extract_concepts(prompt)[0] if prompt else []):
        n = " ".join(words(c))
        if n and n not in V.BOILERPLATE and n not in V.BASE_MODEL_WORDS:
            seen.setdefault(n)
    concepts = list(seen)[:MAX_QUERY_CONCEPTS]
    terms: list[QueryTerm] = []
    index: dict[str, int] = {}

    same: dict[tuple[str, ...], int] = {}  # terms with the same surface forms ("old man", "old men")

    def add(text: str, weight: float, kind: str) -> int:
        i = index.get(text, -1)
        if i < 0:
            t = make_term(text)
            if not t.tokens:
                return -1
            key = t.phrases or tuple(sorted(t.words))
            i = same.get(key, -1)
            if i < 0:
                index[text] = same[key] = len(terms)
                terms.append(QueryTerm(t, weight, kind))
                return index[text]
            index[text] = i
        if terms[i].weight < weight:
            terms[i] = QueryTerm(terms[i].term, weight, kind, terms[i].children)
        return i

    for c in concepts:
        add(c, concept_weight(c), "concept")
    for c in concepts:
        toks = c.split()
        if len(toks) > 1 and c not in V.OPAQUE_COMPOUNDS:
            # The last word of a phrase is its head ("cat ears" is about ears): it stands for
            # the phrase better than the words that qualify it.
            kids = tuple(i for i in (add(w, (0.9 if j == len(toks) - 1 else 0.5) * concept_weight(w), "part")
                                     for j, w in enumerate(toks) if w not in V.STOP_WORDS and len(w) > 1)
                         if i >= 0)
            i = index[c]
            kids = tuple(k for k in kids if k != i)
            terms[i] = QueryTerm(terms[i].term, terms[i].weight, terms[i].kind, kids)
    for c in concepts:
        cw = concept_weight(c)
        for key in lookup_keys(c):
            for alias in V.ALIASES.get(key, ()):
                a = " ".join(words(alias))
                add(a, 0.9 * min(cw, concept_weight(a)), "alias")
    for t, w in elderly_terms(concepts):
        add(t, w, "alias")
    related = list(analysis.recommended_lora_tags)
    for c in concepts:
        for key in lookup_keys(c)[1:]:  # the analysis looked up the concept as written
            related.extend(V.SYNONYMS.get(key, ()))
    for tag in related:
        n = " ".join(words(tag))
        if n and n not in index:
            add(n, (0.4 if n in ("detail", "sharp") else 0.5) * concept_weight(n), "tag")
    for c in concepts:
        toks = c.split()
        if len(toks) > 1 and c not in V.OPAQUE_COMPOUNDS and any(_contrastive(w) for w in toks[:-1]):
            i = index.get(toks[-1], -1)
            if i >= 0 and not terms[i].term.phrases:
                terms[i] = replace(terms[i], contrasts=terms[i].contrasts + (make_term(c),))
    # A phrase needs its first word as written (only the last one varies), and that word is
    # rarer in tags than the last ("old" of "old man", "wrinkled" of "wrinkled skin").
    by_word: dict[str, list[int]] = {}
    for i, q in enumerate(terms):
        for form in (q.term.tokens[:1] if q.term.phrases else q.term.words):
            by_word.setdefault(form, []).append(i)
    by_text: dict[str, QueryTerm] = {}
    for q in terms:
        by_text.setdefault(q.term.text, q)
    core_forms = frozenset(f for q in terms if q.kind in CORE_KINDS for tok in q.term.tokens for f in word_forms(tok))
    return Query(tuple(terms), frozenset(by_word), {f: tuple(v) for f, v in by_word.items()}, by_text, core_forms)


def _contrastive(word: str) -> bool:
    """Whether a qualifier names a kind ("denim", "sports"), not a colour or a size."""
    return not (word in V.MODIFIER_WORDS or word in V.GENERIC_WORDS or word in V.GENERIC_STYLE_WORDS
                or word in V.STOP_WORDS or word.isdigit() or len(word) < 3)


# --- matching a profile ------------------------------------------------------------------------

_WORD_POINTS = {"trigger words": 9.0, "tags": 8.0, "title": 8.0, "description": 3.0}
_PHRASE_POINTS = {"trigger words": 14.0, "tags": 14.0, "title": 12.0, "description": 5.0}
_QUALIFIER_POINTS = 4.0  # a word only ever qualifying another in a tag ("cat" of "cat ears")
_IDENTITY_POINTS = 12.0  # a word that is the model's first trigger word or first subject tag


@dataclass(frozen=True)
class TermMatch:
    index: int
    points: float  # before weight and rarity
    fields: tuple[str, ...]


def match_terms(query: Query, prof: Profile) -> list[TermMatch]:
    """Which query terms a model's metadata contains, and in which fields.

    A word counts fully in a tag or trigger list only as the head of an item ("ears" in "cat
    ears"); a word that is a whole first trigger word or first subject tag names what the model
    is about and counts more; a phrase counts more than a word.
    """
    in_meta = query.words & prof.words
    if not in_meta and prof.has_tags:  # descriptions only refine, unless they are all there is
        return []
    candidates = query.candidates(in_meta | (query.words & prof.desc_set))
    if not candidates:
        return []
    desc_factor = 1.0 if prof.has_tags else 2.0
    fields = prof.fields()
    items = prof.items if in_meta else None
    heads = items.heads if items is not None else {}
    ident = items.identity if items is not None else _EMPTY
    out: list[TermMatch] = []
    for i in candidates:
        q = query.terms[i]
        t = q.term
        tw = t.words
        best = 0.0
        hit: list[str] = []
        if t.phrases:
            for name, fs, ft in fields:
                if not tw.isdisjoint(fs) and any(p in ft for p in t.phrases):
                    hit.append(name)
                    pts = _PHRASE_POINTS[name] * (desc_factor if name == "description" else 1.0)
                    if pts > best:
                        best = pts
            is_identity = bool(ident) and not ident.isdisjoint(t.texts)
        else:
            for name, fs, _ in fields:
                if not tw.isdisjoint(fs):
                    hit.append(name)
                    if name in heads and tw.isdisjoint(heads[name]):
                        pts = _QUALIFIER_POINTS  # only ever qualifying another word there
                    else:
                        pts = _WORD_POINTS[name] * (desc_factor if name == "description" else 1.0)
                    if pts > best:
                        best = pts
            is_identity = bool(ident) and not ident.isdisjoint(tw)
        if not hit:
            continue
        if items is not None:
            if q.contrasts and _other_kind(q, items):
                best = min(best, _QUALIFIER_POINTS)
            elif is_identity:
                best = max(best, _IDENTITY_POINTS)
        out.append(TermMatch(i, best + 2.0 * min(2, len(hit) - 1), tuple(hit)))
    return out


def _other_kind(q: QueryTerm, items: ItemInfo) -> bool:
    """Whether the model is about another kind of the word's thing than the prompt's phrase says:
    its subject is "leather jacket" (not "jacket"), the prompt's "denim jacket"."""
    t = q.term
    if not t.words.isdisjoint(items.subject):
        return False
    kinds = [x for w in t.words for x in items.subject_heads.get(w, ())]
    if not kinds:
        return False
    return not any(p in f" {x} " for x in kinds for c in q.contrasts for p in c.phrases)


def rarity(df: int, pool: int) -> float:
    """1.0 for terms few models match; down to 0.35 for terms a large share of the pool matches."""
    threshold = max(5.0, 0.01 * pool)
    if df <= threshold:
        return 1.0
    return max(0.35, 1.0 - 0.3 * math.log2(df / threshold))


def relevance(query: Query, matches: Sequence[TermMatch], df: dict[int, int] | None = None,
              pool: int = 0) -> tuple[float, list[tuple[str, float, tuple[str, ...]]]]:
    """Total concept points and the per-term breakdown (text, points, fields), phrases subsuming words."""
    by_index = {m.index: m for m in matches}
    scored: dict[int, float] = {}
    for m in matches:
        q = query.terms[m.index]
        r = rarity(df.get(m.index, 0), pool) if df is not None else 1.0
        scored[m.index] = m.points * q.weight * r
    consumed: set[int] = set()
    result: list[tuple[str, float, tuple[str, ...]]] = []
    # Phrases first: a phrase and its words count once, as the better of the two.
    order = sorted(scored, key=lambda i: (not query.terms[i].children, i))
    for i in order:
        if i in consumed:
            continue
        q = query.terms[i]
        pts = scored[i]
        kids = [k for k in q.children if k in scored and k not in consumed]
        if kids:
            kid_pts = sum(scored[k] for k in kids)
            consumed.update(kids)
            if kid_pts > pts:
                for k in kids:
                    result.append((query.terms[k].term.text, scored[k], by_index[k].fields))
                continue
        consumed.add(i)
        result.append((q.term.text, pts, by_index[i].fields))
    total = sum(p for _, p, _ in result)
    return total, result


def could_be_stacked(query: Query, matches: Sequence[TermMatch]) -> bool:
    """A cheap upper bound of `relevance` against the bars of the stack decision: False means no
    LoRA with these matches can be stacked (a phrase and its words never count more than all)."""
    total = core = 0.0
    for m in matches:
        q = query.terms[m.index]
        pts = m.points * q.weight
        total += pts
        if q.kind in CORE_KINDS:
            core += pts
    return total >= MIN_LORA_RELEVANCE and core >= MIN_CORE_RELEVANCE


def _fmt_fields(fields: tuple[str, ...]) -> str:
    return "/".join(fields)


def _nsfw_level(record: ModelRecord) -> int:
    level = record.nsfw_level or 0
    if level > 0:
        return 1 << (level.bit_length() - 1)  # a bitmask of ratings: its highest one
    return 4 if record.nsfw else 0


# --- scores ------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Score:
    """One model's score: the total, its parts (name -> points) and the reasons in words."""

    record: ModelRecord
    total: float
    components: dict[str, float] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    usable: bool = True
    compatibility: str | None = None
    relevance: float = 0.0
    matched: tuple[str, ...] = ()
    architecture: str = "unknown"
    base_model: str = "Unknown"
    guessed_architecture: bool = False
    similarity: float | None = None  # cosine of its text to the prompt's, when meaning was used

    @property
    def by_meaning_alone(self) -> bool:
        """Accepted for its meaning, with no word of the prompt matched."""
        return not self.matched and self.similarity is not None

    def candidate(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.record.name, "score": round(self.total, 2),
                             "components": {k: round(v, 2) for k, v in self.components.items()}}
        return d


class _Acc:
    """Collects components and reasons together, so no point is ever unexplained."""

    def __init__(self) -> None:
        self.components: dict[str, float] = {}
        self.reasons: list[str] = []

    def add(self, name: str, points: float, reason: str) -> None:
        if abs(points) < 0.005:
            return
        self.components[name] = self.components.get(name, 0.0) + points
        self.reasons.append(f"{reason} ({points:+.1f})")

    def note(self, reason: str) -> None:
        self.reasons.append(reason)

    @property
    def total(self) -> float:
        return sum(self.components.values())


def _fmt_count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 1_000:
        return f"{n / 1_000:.1f}k"
    return str(n)


def score_checkpoint(record: ModelRecord, analysis: PromptAnalysis, query: Query, quality: str = "balanced",
                     max_nsfw_level: int = 2, usable: tuple[bool, str] = (True, "")) -> Score:
    """Score one checkpoint or diffusion model for the prompt. `usable` comes from the planner
    (components available); an unusable model keeps its score but is never picked automatically."""
    acc = _Acc()
    guess = effective_architecture(record)
    arch = guess.architecture
    prof = profile(record)
    spec: ArchitectureSpec = spec_for(arch, record.base_model)

    # Style: the main signal. Scaled by how sure the analysis is about the style.
    aff = style_affinity(record, prof)
    share, strength, total = style_match(aff, analysis.style)
    conf = 0.5 + 0.5 * max(0.0, min(1.0, analysis.style_confidence))
    if total > 0:
        pts = 35.0 * share * strength * conf
        if pts > 0:
            where = "/".join(style_sources(record, analysis.style, prof)) or "related style words"
            acc.add("style", pts, f"{where} match style '{analysis.style}'")
        asked = bool(analysis.suggested_base_model) and base_models.family(record.base_model) == \
            base_models.family(analysis.suggested_base_model) != "unknown"
        if share < 0.5 and not asked:  # the family the prompt names is not faulted for its style
            penalty = -12.0 * (1.0 - share) * min(1.0, total / 5.0) * conf
            acc.add("style_mismatch", penalty, f"its metadata says '{_dominant(aff)}', not '{analysis.style}'")
    else:
        acc.note("no style words in its metadata (neutral)")

    # Concepts: a checkpoint for "castles" beats one that never mentions them, but modestly.
    matches = match_terms(query, prof)
    if matches:
        rel, parts = relevance(query, matches)
        pts = min(15.0, 0.5 * rel)
        if pts > 0:
            top = ", ".join(f"'{t}'" for t, _, _ in sorted(parts, key=lambda x: -x[1])[:4])
            acc.add("concepts", pts, f"metadata mentions {top}")

    # The base model the prompt names or implies (score_9 -> Pony, "flux" -> Flux): an explicit ask,
    # so it outweighs a style match (at most +35) on a model of another family.
    if analysis.suggested_base_model:
        want_fam = base_models.family(analysis.suggested_base_model)
        want_arch = base_models.architecture(analysis.suggested_base_model)
        fam = base_models.family(record.base_model)
        if want_fam != "unknown" and fam == want_fam:
            acc.add("base_model", 40.0, f"base model {record.base_model} as the prompt implies")
        elif want_arch != "unknown" and arch == want_arch:
            acc.add("base_model", 15.0, f"{arch} architecture as the prompt implies")

    # Popularity: a tie-breaker between equally fitting models.
    if prof.popularity > 0:
        acc.add("popularity", 8.0 * prof.popularity,
                f"{_fmt_count(record.downloads)} downloads, {_fmt_count(record.likes)} likes")
    elif record.downloads <= 0 and record.likes <= 0:
        # No figures is not few downloads: a model known only by its file is counted as middling,
        # so that a missing sidecar does not decide between two models.
        acc.add("popularity", UNKNOWN_POPULARITY * 8.0, "no download figures: counted as middling")

    # Family size versus the quality asked for.
    tier_pts = spec.quality_tier * preset(quality).tier_weight
    if tier_pts:
        acc.add("quality", tier_pts, f"{spec.label} for quality '{quality}'")

    if spec.key in _DISTILLED_SPECS:
        acc.add("distilled", _DISTILLED_PREFERENCE.get(quality, 0.0),
                f"a few-step distilled model ({record.base_model}) for quality '{quality}'")

    if arch == "unknown":
        acc.add("unknown_family", -8.0, "family unknown: settings and LoRAs cannot be matched to it")
    elif guess.guessed:
        acc.add("guessed_family", -3.0, f"family guessed as {arch} from the file size")

    level = _nsfw_level(record)
    if level > max_nsfw_level and not analysis.nsfw:
        acc.add("nsfw", -20.0, f"rated {NSFW_NAMES.get(level, level)}, above the limit "
                               f"{NSFW_NAMES.get(max_nsfw_level, max_nsfw_level)} for a SFW prompt")

    ok, why = usable
    if arch not in IMAGE_ARCHITECTURES and arch != "unknown":
        ok, why = False, f"a {arch} model, not a text-to-image one"
    if not ok:
        acc.note(f"not usable: {why}")
    return Score(record, acc.total, acc.components, tuple(acc.reasons), ok, None, 0.0,
                 tuple(t for t, _, _ in relevance(query, matches)[1]) if matches else (), arch,
                 record.base_model, guess.guessed)


_ANCHOR_WEIGHT = 0.35  # generic words ("girl" in a title) anchor nothing


def _anchored(query: Query, matches: Sequence[TermMatch], prof: Profile,
              parts: Sequence[tuple[str, float, tuple[str, ...]]]) -> bool:
    """Whether the prompt asks for what the LoRA is about, not for a side detail of it.

    What a LoRA is about is said by the lead of its title, its first trigger word and its first
    subject tags. A match anchors when the prompt says most of the title's lead or of the first
    trigger word (or of any longer trigger phrase), or hits its first subject tag (the second
    too where its title shares a word with the prompt); or when it hits two of the prompt's own
    concepts. So
    "sunset", fifth in the trigger list of a hair LoRA, or "table" in "Breast on Table", is no
    reason to stack them; nor is a "grey hair" tag far down an elderly-portrait LoRA's list.
    """
    strong = [m for m in matches if query.terms[m.index].weight >= _ANCHOR_WEIGHT]
    if any("title" in m.fields for m in strong) and title_covered(query, prof):
        return True
    if any("trigger words" in m.fields for m in strong):
        for i, item in enumerate(prof.trigger_items):
            content, hit = _coverage(query, item)
            if hit and 2 * hit > content and (i == 0 or content >= 2):
                return True
    items = prof.items
    if strong and items.subject:
        hits_identity = hits_subject = False
        for m in strong:
            t = query.terms[m.index].term
            if t.phrases:
                texts = [p.strip() for p in t.phrases]
                hits_identity = hits_identity or any(x in items.identity for x in texts)
                hits_subject = hits_subject or any(x in items.subject for x in texts)
            else:
                hits_identity = hits_identity or not t.words.isdisjoint(items.identity)
                hits_subject = hits_subject or not t.words.isdisjoint(items.subject)
        if hits_identity:
            return True
        if hits_subject:
            # the second subject tag counts where the title agrees, or where there is no
            # title to agree (only the file's name)
            content, hit = _coverage(query, prof.title_head[1].split())
            if hit or not content or prof.title_is_file_name:
                return True
    if not prof.has_tags:
        return True  # a description is all there is: nothing to tell a side remark from the subject
    core = [p for text, p, _ in parts if query.kind_of(text) in CORE_KINDS and p >= 4.0]
    return len(core) >= 2


# Words of a title that say what kind of file it is, not what it shows.
_TITLE_NOISE = (V.GENERIC_WORDS | V.GENERIC_STYLE_WORDS | V.CATEGORY_TAGS | V.STOP_WORDS | V.BASE_MODEL_WORDS
                | {"stable", "diffusion", "lycoris", "locon", "loha", "lokr", "dora", "lora", "version", "final",
                   "beta", "alpha", "test", "sd1", "sd15", "sdxl", "xl", "illustrious", "noobai", "pony", "flux"})


def _coverage(query: Query, tokens: Iterable[str]) -> tuple[int, int]:
    """(content words, of which the prompt has) for a title's lead or a trigger word. A word in
    another script counts only where the prompt has it too; words that say what kind of file it
    is ("LoRA", "style", "v2") do not count."""
    content = 0
    hit = 0
    for w in tokens:
        if w in _TITLE_NOISE or len(w) < 2 or any(ch.isdigit() for ch in w):
            continue
        known = w in query.core_forms
        if not known and not w.isascii():
            continue
        content += 1
        hit += known
    return content, hit


def title_covered(query: Query, prof: Profile) -> bool:
    """Whether the prompt says more than half of the content words of the lead of the title
    ("Medicine Pills" for "pills and capsules... medicine": yes; "Breast on Table" for "on a
    white table": no); a title with no content words ("LoRA v2") says nothing against a match."""
    content, hit = _coverage(query, prof.title_head[1].split())
    return content == 0 or 2 * hit > content


def _names_character(query: Query, prof: Profile, parts: Sequence[tuple[str, float, tuple[str, ...]]]) -> bool:
    """Whether the prompt names a character LoRA's character: a specific term of the prompt in the
    lead of its title (before the series in brackets) or its first trigger word, not only
    attributes it shares (hair colour, outfit) or the series it is from."""
    trig_set, trig_text = prof.trigger_head
    head_set, head_text = prof.title_head
    for text, _, fields in parts:
        if query.kind_of(text) not in CORE_KINDS or query.weight_of(text) < 0.5:
            continue
        term = make_term(text)
        if ("title" in fields and term.in_text(head_set, head_text)) or term.in_text(trig_set, trig_text):
            return True
    return False


@dataclass(frozen=True)
class LoraContext:
    """The checkpoint LoRAs are scored for."""

    architecture: str
    base_model: str
    guessed: bool = False


def score_loras(records: Iterable[ModelRecord], analysis: PromptAnalysis, query: Query, ctx: LoraContext,
                max_nsfw_level: int = 2, skip: Callable[[ModelRecord], bool] | None = None,
                matched: Mapping[str, list[TermMatch]] | None = None, rank: bool = True,
                compatibility: Callable[[ModelRecord], str | None] | None = None,
                pool_size: int | None = None, similarity: Mapping[str, float] | None = None,
                ) -> tuple[list[Score], int]:
    """Scores of the LoRAs that are compatible and match the prompt at all; and the pool size.

    Two passes: the first finds, per compatible LoRA, which terms match (a set look-up for most),
    counting how many LoRAs each term matches; the second decides, from those matches alone,
    whether each LoRA may be stacked, and gives it points for ranking, where a term matched by
    a large share of the library counts less (rarity). `matched` (record name -> its matches,
    from `match_terms`) spares the first look-up when the caller scores the same LoRAs for
    several families; `rank=False` ranks by relevance alone, for a caller that only needs the
    decision; `compatibility` replaces the check against `ctx` (a caller that filters by family
    itself passes one that lets every LoRA through). `pool_size`: how many compatible LoRAs the
    library holds, when `records` are only those retrieved for the prompt (rarity is a share of
    the library, not of what was retrieved); the pool returned is the larger of it and the count.
    `similarity` (record name -> cosine of its text to the prompt, from selector/meaning.py): a
    LoRA matching no term is scored when it reaches MEANING_STACK, and similarity ranks.
    """
    sims = similarity or {}
    pool = 0
    found: list[tuple[ModelRecord, str, Profile, list[TermMatch]]] = []
    df: dict[int, int] = {}
    for r in records:
        if r.kind != "lora":
            continue
        compat = lora_compatibility(r, ctx.architecture, ctx.base_model, ctx.guessed) if compatibility is None \
            else compatibility(r)
        if compat is None:
            continue
        if skip is not None and skip(r):
            continue
        pool += 1
        prof = profile(r)
        matches = match_terms(query, prof) if matched is None else matched.get(r.name, [])
        if not matches:
            if sims.get(r.name, 0.0) >= MEANING_STACK:
                found.append((r, compat, prof, matches))
            continue
        for m in matches:
            df[m.index] = df.get(m.index, 0) + 1
        found.append((r, compat, prof, matches))

    if pool_size is not None:
        pool = max(pool, pool_size)
    out: list[Score] = []
    conf = max(0.0, min(1.0, analysis.style_confidence))
    for r, compat, prof, matches in found:
        acc = _Acc()
        sim = sims.get(r.name)
        if not matches:
            out.append(_by_meaning(r, compat, prof, sim or 0.0, analysis, ctx, max_nsfw_level, rank))
            continue
        # Whether to stack it at all: the prompt's terms it matches, and where, and nothing that
        # depends on the rest of the library (how many other LoRAs match them), so that owning
        # 300 "red dress" LoRAs, or 1,000 unrelated ones, never changes whether one is used.
        rel, parts = relevance(query, matches)
        # How it ranks among the accepted: a term many LoRAs match counts less there (rarity).
        ranked = relevance(query, matches, df, pool)[1] if rank else parts
        for text, pts, fields in sorted(ranked, key=lambda x: -x[1])[:6]:
            acc.add(f"match:{text}", pts, f"{_fmt_fields(fields)} match '{text}'")
        core = sum(p for text, p, _ in parts if query.kind_of(text) in CORE_KINDS)
        relevant = rel >= MIN_LORA_RELEVANCE and core >= MIN_CORE_RELEVANCE
        unnamed = relevant and prof.items.character and not _names_character(query, prof, parts)
        unanchored = relevant and not unnamed and not _anchored(query, matches, prof, parts)
        unlike = relevant and not unnamed and not unanchored and sim is not None and sim < MEANING_REJECT
        relevant = relevant and not unnamed and not unanchored and not unlike
        if relevant:
            if rank and conf >= 0.4:
                aff = style_affinity(r, prof)
                share, strength, total = style_match(aff, analysis.style)
                if share > 0 and strength > 0:
                    acc.add("style", 6.0 * share * strength * conf, f"a LoRA of the '{analysis.style}' style")
                elif total >= 4 and _dominant(aff) != analysis.style:
                    acc.add("style_mismatch", -6.0 * conf,
                            f"a LoRA of the '{_dominant(aff)}' style, the prompt is '{analysis.style}'")
            if rank and prof.popularity > 0:
                acc.add("popularity", 4.0 * prof.popularity,
                        f"{_fmt_count(r.downloads)} downloads, {_fmt_count(r.likes)} likes")
            if rank and sim is not None and sim > MEANING_FLOOR:
                acc.add("meaning", MEANING_POINTS * (sim - MEANING_FLOOR),
                        f"its text means much what the prompt says (similarity {sim:.2f})")
            if compat == "partial":
                acc.add("partial", -6.0, f"{r.base_model} LoRA on a {ctx.base_model} checkpoint: loads, "
                                         "results vary")
        elif unanchored:
            acc.note("matches only a side tag, nothing of what it is about (title, trigger words, first tags)")
        elif unlike:
            acc.note(f"its words match, but its text is unlike the prompt's (similarity {sim:.2f})")
        elif unnamed:
            acc.note("a character LoRA, and the prompt does not name its character (title or first trigger word)")
        elif rel < MIN_LORA_RELEVANCE:
            acc.note(f"relevance {rel:.1f} is below the {MIN_LORA_RELEVANCE:.0f} needed to stack it")
        else:
            acc.note(f"matches mostly related tags, not the prompt's own concepts ({core:.1f} of "
                     f"{MIN_CORE_RELEVANCE:.0f} needed)")
        usable = relevant
        level = _nsfw_level(r)
        if level > max_nsfw_level and not analysis.nsfw:
            usable = False
            acc.note(f"rated {NSFW_NAMES.get(level, level)}, above the limit for a SFW prompt")
        arch_guess = effective_architecture(r)
        out.append(Score(r, acc.total, acc.components, tuple(acc.reasons), usable, compat, rel,
                         tuple(t for t, _, _ in parts), arch_guess.architecture, r.base_model, similarity=sim))
    out.sort(key=lambda s: (-s.total, s.record.name))
    return out, pool


def pick_problem(r: ModelRecord, analysis: PromptAnalysis, query: Query, max_nsfw_level: int) -> str | None:
    """Why a LoRA someone else chose (the LLM) is still not stacked: above the NSFW ceiling for a SFW
    prompt, or a character LoRA whose character the prompt does not name; None when neither."""
    level = _nsfw_level(r)
    if level > max_nsfw_level and not analysis.nsfw:
        return f"rated {NSFW_NAMES.get(level, level)}, above the limit for a SFW prompt"
    prof = profile(r)
    if prof.items.character:
        matches = match_terms(query, prof)
        if not matches or not _names_character(query, prof, relevance(query, matches)[1]):
            return "a character LoRA, and the prompt does not name its character (title or first trigger word)"
    return None


def _by_meaning(r: ModelRecord, compat: str, prof: Profile, sim: float, analysis: PromptAnalysis,
                ctx: LoraContext, max_nsfw_level: int, rank: bool) -> Score:
    """The score of a LoRA that matches no term of the prompt and is as like it as MEANING_STACK:
    stacked for its meaning, unless it is a character LoRA (the prompt would name the character)."""
    acc = _Acc()
    acc.add("meaning", MEANING_POINTS * (sim - MEANING_FLOOR),
            f"no word of the prompt, but its text means much what the prompt says (similarity {sim:.2f})")
    usable = True
    if prof.items.character:
        usable = False
        acc.note("a character LoRA, and the prompt does not name its character (title or first trigger word)")
    if rank and prof.popularity > 0:
        acc.add("popularity", 4.0 * prof.popularity, f"{_fmt_count(r.downloads)} downloads, {_fmt_count(r.likes)} likes")
    if compat == "partial":
        acc.add("partial", -6.0, f"{r.base_model} LoRA on a {ctx.base_model} checkpoint: loads, results vary")
    level = _nsfw_level(r)
    if level > max_nsfw_level and not analysis.nsfw:
        usable = False
        acc.note(f"rated {NSFW_NAMES.get(level, level)}, above the limit for a SFW prompt")
    return Score(r, acc.total, acc.components, tuple(acc.reasons), usable, compat, MIN_LORA_RELEVANCE * sim, (),
                 effective_architecture(r).architecture, r.base_model, similarity=sim)
