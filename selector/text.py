"""One tokeniser for prompts and model metadata, so a word means the same thing on both sides.

Prompt analysis, checkpoint scoring and LoRA scoring all go through `words()`: lower-case,
punctuation and `_` split words (Danbooru's `pink_hair` is the phrase "pink hair"), apostrophes
vanish, letters of every script survive. It is `str.translate` + `str.split`, not a regex, because
it runs over the metadata of tens of thousands of models.

Matching is done with `Term`s: a word or a phrase plus the surface forms that count as the same
(plural/singular, British/American spelling), so neither side needs stemming.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable, Iterator

_SPLIT_CHARS = (
    "!\"#$%&()*+,-./:;<=>?@[\\]^_{|}~"
    "\u201c\u201d\u00ab\u00bb\u2013\u2014\u2026\u00b7\u2022\u3001\uff0c\u3002\uff01\uff1f\uff1a\uff1b"
    "\uff08\uff09\u3010\u3011\u300c\u300d\u300e\u300f\u3008\u3009\u300a\u300b\u30fb\u00a0\u2018\u201a"
)
_DROP_CHARS = "'`\u00b4\u2019"
TRANSLATE_TABLE = str.maketrans({**{c: " " for c in _SPLIT_CHARS}, **{c: None for c in _DROP_CHARS}})

# Separates the items of one field (tags, trigger words) in a profile text, so that a phrase
# never matches across two tags. Not touched by _TABLE, never produced by a user.
FIELD_SEP = "\ue000"


def words(text: str | None) -> list[str]:
    """Lower-case words of `text`."""
    if not text:
        return []
    return text.lower().translate(TRANSLATE_TABLE).split()


def phrase_text(items: Iterable[str]) -> str:
    """Tokens of several strings as one searchable text: " pink hair \x1f anime ".

    Leading and trailing spaces let `" pink hair " in text` test word boundaries.
    """
    parts = [" ".join(words(s)) for s in items]
    return " " + f" {FIELD_SEP} ".join(p for p in parts if p) + " "


# --- prompt syntax ---------------------------------------------------------------------------
#
# Prompts are untrusted text of up to 100,000 characters: everything here runs in linear time.
# Angle tags are found by a scanner, not a regex (a lazy name followed by optional spaces and an
# optional weight backtracks without end on `<lora:` + spaces); the regexes left have no nested
# quantifiers and no two adjacent quantifiers that can take the same character
# (tests/unit/test_regex_safety.py holds every regex of the pack to that).

_LORA_KINDS = frozenset({"lora", "lyco", "locon", "loha", "lokr"})
_BRACKET = re.compile(r"[<>]")
_WEIGHT = re.compile(r":\s*[-+]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*(?=[)\]}>])")
_EMBEDDING = re.compile(r"\bembedding:\S+", re.IGNORECASE)
_BREAK = re.compile(r"\bBREAK\b")
_ESCAPE = re.compile(r"\\(.)")
_SPACES = re.compile(r"[ \t]+")


def _angle_tags(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, inside) of every `<...>` with no `<` or `>` inside, left to right: what
    `<[^<>]*>` finds, from one pass over the brackets."""
    opened = -1
    for m in _BRACKET.finditer(text):
        if m.group() == "<":
            opened = m.start()
        elif opened != -1:
            yield opened, m.end(), text[opened + 1:m.start()]
            opened = -1


def _lora_tag(inside: str) -> tuple[str, float | None] | None:
    """(name, strength or None) when `inside` is the inside of an A1111 `<lora:name[:weight[:...]]>` tag."""
    parts = inside.split(":", 3)
    if len(parts) < 2 or parts[0].strip().lower() not in _LORA_KINDS:
        return None
    name = parts[1].strip()
    if not name:
        return None
    strength: float | None = None
    if len(parts) > 2 and parts[2].strip():
        try:
            strength = float(parts[2].strip())
        except ValueError:
            strength = None
    if strength is not None and not (math.isfinite(strength) and -10.0 <= strength <= 10.0):
        strength = None  # nan, inf or absurd: the LoRA's own strength is used instead
    return name, strength


def _replace_tags(text: str, want: Callable[[str], bool]) -> str:
    """`text` with every angle tag whose inside `want`s replaced by a space."""
    out: list[str] = []
    last = 0
    for start, end, inside in _angle_tags(text):
        if want(inside):
            out.append(text[last:start])
            out.append(" ")
            last = end
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _is_lora(inside: str) -> bool:
    return _lora_tag(inside) is not None


def _any_tag(inside: str) -> bool:
    return True


def _without_tags(text: str) -> str:
    """LoRA tags out first, then every other angle tag (as the two regexes it replaces did)."""
    if "<" not in text:
        return text
    return _replace_tags(_replace_tags(text, _is_lora), _any_tag)


def _tidy_commas(text: str) -> str:
    """Runs of two or more commas with only whitespace between (and around) them become ", "."""
    parts = text.split(",")
    out = [parts[0]]
    i, n = 1, len(parts)
    while i < n:
        j = i
        while j < n - 1 and not parts[j].strip():
            j += 1
        if j > i:
            out[-1] = out[-1].rstrip()
            out.append(", " + parts[j].lstrip())
        else:
            out.append("," + parts[j])
        i = j + 1
    return "".join(out)


def extract_prompt_loras(prompt: str) -> tuple[str, list[tuple[str, float | None]]]:
    """Remove A1111 `<lora:name:weight>` tags; return the prompt without them and the pins.

    ComfyUI's text encoders do not read that syntax (it would be encoded as words), so a prompt
    pasted from A1111 is honoured by pinning the LoRAs instead.
    """
    if "<" not in prompt:
        return prompt, []
    pins: list[tuple[str, float | None]] = []
    for _start, _end, inside in _angle_tags(prompt):
        tag = _lora_tag(inside)
        if tag is not None:
            pins.append(tag)
    cleaned = _tidy_commas(_without_tags(prompt))
    cleaned = _SPACES.sub(" ", cleaned)
    cleaned = cleaned.replace(" ,", ",").strip().strip(",").strip()
    return cleaned, pins


def clean_prompt(prompt: str) -> str:
    """Prompt text without weighting syntax, LoRA/embedding tags and BREAK, for analysis only."""
    text = _without_tags(prompt or "")
    text = _EMBEDDING.sub(" ", text)
    text = _ESCAPE.sub(r"\1", text)
    text = _WEIGHT.sub("", text)
    text = _BREAK.sub(",", text)
    return text


_CHUNK_SPLIT = re.compile(r"[,;.!?|\n()\[\]{}\u3001\uff0c\u3002]+")


def chunks(prompt: str) -> list[list[str]]:
    """The prompt as comma/sentence separated chunks of words (weights and tags removed)."""
    out = []
    for part in _CHUNK_SPLIT.split(clean_prompt(prompt)):
        toks = words(part)
        if toks:
            out.append(toks)
    return out


# --- surface forms -----------------------------------------------------------------------------

_IRREGULAR = {
    "man": "men", "woman": "women", "child": "children", "person": "people", "mouse": "mice",
    "wolf": "wolves", "elf": "elves", "leaf": "leaves", "knife": "knives", "foot": "feet",
    "tooth": "teeth", "goose": "geese", "thief": "thieves", "shelf": "shelves", "dwarf": "dwarves",
}
_IRREGULAR_BACK = {v: k for k, v in _IRREGULAR.items()}
_UNCOUNTABLE = {"fish", "sheep", "deer", "hair", "anime", "manga", "armor", "armour", "clothes", "series",
                "species", "glasses", "jeans", "pants", "shorts", "news", "chess", "physics", "scenery"}
SPELLING = {
    "harbour": "harbor", "colour": "color", "colours": "colors", "grey": "gray", "watercolour": "watercolor",
    "armour": "armor", "theatre": "theater", "centre": "center", "neighbour": "neighbor", "jewellery": "jewelry",
    "favourite": "favorite", "colourful": "colorful", "moustache": "mustache", "aeroplane": "airplane",
    "pyjamas": "pajamas", "metre": "meter", "fibre": "fiber", "sombre": "somber", "catalogue": "catalog",
}
_SPELLING_ALL = {**SPELLING, **{v: k for k, v in SPELLING.items()}}


@lru_cache(maxsize=65536)
def word_forms(word: str) -> frozenset[str]:
    """Forms of one word that count as the same word: itself, singular/plural, other spelling."""
    forms = {word}
    if word in _IRREGULAR:
        forms.add(_IRREGULAR[word])
    elif word in _IRREGULAR_BACK:
        forms.add(_IRREGULAR_BACK[word])
    elif word.isalpha() and len(word) >= 3 and word not in _UNCOUNTABLE:
        if word.endswith("ies") and len(word) > 4:
            forms.add(word[:-3] + "y")
        elif word.endswith("es") and word[:-2].endswith(("ss", "x", "ch", "sh", "z")):
            forms.add(word[:-2])
        elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
            forms.add(word[:-1])
        elif word.endswith("y") and word[-2] not in "aeiou":
            forms.add(word[:-1] + "ies")
        elif word.endswith(("s", "x", "ch", "sh", "z")):
            forms.add(word + "es")
        else:
            forms.add(word + "s")
    for f in list(forms):
        if f in _SPELLING_ALL:
            forms.add(_SPELLING_ALL[f])
    return frozenset(forms)


@dataclass(frozen=True)
class Term:
    """A word or phrase to look for, with every surface form that counts as a match.

    `words` are the single-word forms (for set look-ups); `phrases` the space-padded phrase forms
    (for substring look-ups in a profile text). A one-word term has no phrases.
    """

    text: str
    tokens: tuple[str, ...]
    words: frozenset[str]
    phrases: tuple[str, ...]
    texts: frozenset[str] = frozenset()  # the phrase forms unpadded ("old man", "old men")

    @property
    def is_phrase(self) -> bool:
        return len(self.tokens) > 1

    def in_text(self, field_set: frozenset[str] | set[str], field_text: str) -> bool:
        """Whether the term occurs in a field given as (token set, padded text)."""
        if not self.phrases:
            return not self.words.isdisjoint(field_set)
        if self.words.isdisjoint(field_set):  # cheap rejection: the last word is absent
            return False
        return any(p in field_text for p in self.phrases)


@lru_cache(maxsize=16384)
def make_term(text: str) -> Term:
    """The Term for a word or phrase (any case or punctuation: it is tokenised first)."""
    toks = tuple(words(text))
    if not toks:
        return Term(text, (), frozenset(), ())
    if len(toks) == 1:
        return Term(" ".join(toks), toks, word_forms(toks[0]), ())
    last_forms = word_forms(toks[-1])
    head = " ".join(toks[:-1])
    phrases = tuple(sorted(f" {head} {f} " for f in last_forms))
    return Term(" ".join(toks), toks, last_forms, phrases, frozenset(p.strip() for p in phrases))


def contains(text_tokens: frozenset[str] | set[str], padded_text: str, term_text: str) -> bool:
    """Whether a tokenised text contains a word or phrase (any of its forms)."""
    return make_term(term_text).in_text(text_tokens, padded_text)


def pad(tokens: Iterable[str]) -> str:
    return " " + " ".join(tokens) + " "
