"""Untrusted values from other programs' files made into typed ones: numbers in range, strings,
plain text from CivitAI's HTML descriptions, trigger words, tags, hashes.

Every function here takes any value (a sidecar's JSON, a header's text) and returns a typed value
or an empty one, never raising on bad input; the text functions run in linear time on hostile
text (one pass over a bounded prefix, no regexes).
"""
from __future__ import annotations

import html
import string
from typing import Any, Callable, Iterable, Mapping

DESCRIPTION_CHARS = 2000
MAX_TRIGGER_WORDS = 64
MAX_TAGS = 100


# --- value helpers: untrusted JSON -> typed values ---------------------------------------------

def as_int(value: Any, lo: int = 0, hi: int = 2**62) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        n = int(float(value)) if isinstance(value, (str, float)) else int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return n if lo <= n <= hi else None


def as_float(value: Any, lo: float = float("-inf"), hi: float = float("inf")) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return x if lo <= x <= hi else None  # NaN fails both comparisons


def as_str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def as_dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# --- text: descriptions, words, tags, hashes ---------------------------------------------------

# HTML read per character of plain text kept: generous for markup-heavy CivitAI descriptions,
# and a bound on the work a multi-megabyte hostile description can cause.
HTML_PER_TEXT_CHAR = 64
_BLOCK_TAGS = frozenset({"p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th",
                         "table", "blockquote", "pre", "hr"})
_RAW_TEXT_TAGS = frozenset({"script", "style"})  # their content is code, never text
_LONGEST_TAG_NAME = max(map(len, _BLOCK_TAGS | _RAW_TEXT_TAGS))
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def plain_text(text: Any, limit: int = DESCRIPTION_CHARS) -> str:
    """HTML (CivitAI descriptions) to one line of plain text, capped at `limit` characters.

    Block tags separate words, inline ones (<b>, <a>) do not, script and style content and
    comments are dropped, entities are unescaped. One pass over a bounded prefix of the input:
    linear time whatever the markup (a run of `<` once took quadratic time)."""
    if not isinstance(text, str) or not text:
        return ""
    text = _unescape(_strip_tags(text[:limit * HTML_PER_TEXT_CHAR]))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def _strip_tags(html_text: str) -> str:
    """The text between the tags of `html_text`: a single left-to-right scan.

    Every search starts where the last one ended, and a search that finds nothing is never
    repeated (nothing later can close either), so no character is looked at more than a few times."""
    parts: list[str] = []
    lower: str | None = None  # ASCII-lower-cased copy (same length), made when a script/style tag appears
    comments_close = True
    pos = 0
    while True:
        lt = html_text.find("<", pos)
        if lt < 0:
            parts.append(html_text[pos:])
            break
        parts.append(html_text[pos:lt])
        if comments_close and html_text.startswith("<!--", lt):
            end = html_text.find("-->", lt + 4)
            if end >= 0:
                pos = end + 3
                continue
            comments_close = False  # no comment closes from here on: treat `<!--` as a tag
        gt = html_text.find(">", lt + 1)
        if gt < 0:  # no tag closes from here on: the rest is text, `<` and all
            parts.append(html_text[lt:])
            break
        closing = html_text.startswith("/", lt + 1)
        name = _tag_name(html_text, lt + 2 if closing else lt + 1, gt)
        if name in _RAW_TEXT_TAGS and not closing:
            if lower is None:
                lower = html_text.translate(_ASCII_LOWER)
            pos = _raw_text_end(lower, name, gt + 1)
            if pos < 0:  # never closed: like a browser, the rest is script
                break
            parts.append(" ")
            continue
        parts.append(" " if name in _BLOCK_TAGS else "")
        pos = gt + 1
    return "".join(parts)


def _tag_name(html_text: str, start: int, end: int) -> str:
    """The lower-cased tag name at `start` (letters, digits, `_`), if it could be one we know."""
    window = html_text[start:min(end, start + _LONGEST_TAG_NAME + 1)]
    n = 0
    while n < len(window) and (window[n].isalnum() or window[n] == "_"):
        n += 1
    return window[:n].lower() if n <= _LONGEST_TAG_NAME else ""


def _raw_text_end(lower: str, name: str, pos: int) -> int:
    """Index after the `</name\\s*>` that ends a script or style element begun before `pos`, or -1."""
    closer = "</" + name
    while True:
        at = lower.find(closer, pos)
        if at < 0:
            return -1
        i = at + len(closer)
        while i < len(lower) and lower[i].isspace():
            i += 1
        if i < len(lower) and lower[i] == ">":
            return i + 1
        pos = at + 1


def _unescape(text: str) -> str:
    try:
        return html.unescape(text)
    except ValueError:  # `&#` and thousands of digits: over Python's int digit limit
        return text


def split_words(values: Any, limit: int = MAX_TRIGGER_WORDS) -> tuple[str, ...]:
    """Trigger words from a string or a list (of strings or `{word: ...}`): split on commas,
    strip, drop empties and case-insensitive duplicates, keep the first spelling and order.
    Prompt-escaped brackets are unescaped (`star_\\(sky\\)` -> `star_(sky)`): the word is stored
    as the tag it names, and whoever writes it into a prompt escapes it for that prompt's syntax."""
    items = [values] if isinstance(values, str) else as_list(values)
    out: list[str] = []
    seen: set[str] = set()
    for item in items:
        if isinstance(item, dict):
            item = item.get("word")
        if not isinstance(item, str):
            continue
        for word in unescape_brackets(item).split(","):
            word = " ".join(word.split())
            if word and word.lower() not in seen:
                seen.add(word.lower())
                out.append(word)
                if len(out) >= limit:
                    return tuple(out)
    return tuple(out)


def unescape_brackets(text: str) -> str:
    """`\\(`, `\\)`, `\\[`, `\\]` (how A1111 and ComfyUI prompts write a literal bracket, and how
    Danbooru tags such as `star_\\(sky\\)` are pasted into them) as the brackets themselves."""
    if "\\" not in text:
        return text
    return text.replace("\\(", "(").replace("\\)", ")").replace("\\[", "[").replace("\\]", "]")


def clean_tags(values: Iterable[Any], limit: int = MAX_TAGS) -> tuple[str, ...]:
    """Lower-case, de-duplicated tags (at most `limit`); prompt syntax (`(tag:1.2)`, `\\(x\\)`) stripped."""
    out: list[str] = []
    seen: set[str] = set()
    for value in values:
        if isinstance(value, dict):
            value = value.get("name")
        if not isinstance(value, str):
            continue
        tag = clean_tag(value)
        if tag and tag not in seen:
            seen.add(tag)
            out.append(tag)
            if len(out) >= limit:
                break
    return tuple(out)


def clean_tag(tag: str) -> str:
    """One tag as a lower-case phrase: prompt syntax around it removed, its own brackets kept.

    `(tag:1.2)`, `((tag))`, `[tag]`, `\\(tag\\)` -> `tag`; but `star_(sky)` and `star_\\(sky\\)`
    (a Danbooru tag whose name holds brackets) -> `star_(sky)`: only brackets that wrap the whole
    tag, or that nothing matches, are taken off its ends. Linear time (one stack scan per step)."""
    tag = _tidy(unescape_brackets(tag))
    head, colon, weight = tag.rpartition(":")
    if colon and is_decimal(weight.strip()):  # "tag:1.2", "tag: -0.5"
        tag = _tidy(head)
    return " ".join(tag.lower().split())


_CLOSER_OF = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(_CLOSER_OF.values())
_BRACKETS = frozenset(_CLOSER_OF) | _CLOSERS


def _tidy(text: str) -> str:
    """`text` without unmatched brackets or spaces at its ends, then without the bracket pairs
    that wrap all of it."""
    text = text.strip()
    if _BRACKETS.isdisjoint(text):  # most tags: no scan
        return text
    if len(text) > MAX_BRACKET_SCAN:  # a sentence, not a tag: brackets off the ends, in C
        return text.strip("()[]{} \t\r\n")
    partner = _bracket_partners(text)
    lo, hi = 0, len(text)
    while True:
        while lo < hi and (partner[lo] == _UNMATCHED or text[lo].isspace()):
            lo += 1
        while hi > lo and (partner[hi - 1] == _UNMATCHED or text[hi - 1].isspace()):
            hi -= 1
        if hi - lo < 2 or partner[lo] != hi - 1:
            return text[lo:hi]
        lo, hi = lo + 1, hi - 1


_UNMATCHED = -2
# Tags longer than this (natural-language captions in `ss_tag_frequency`) are not scanned for
# bracket pairs: hostile sidecars hold thousands of 16 KB "tags", and a Python scan of each costs
# milliseconds where the C string methods cost microseconds.
MAX_BRACKET_SCAN = 512


def _bracket_partners(text: str) -> list[int]:
    """Per character: the index of the bracket that matches it, _UNMATCHED for a bracket nothing
    matches, -1 for any other character. One stack scan; a closer of another kind than the
    innermost open bracket matches nothing."""
    partner = [-1] * len(text)
    stack: list[int] = []
    for i, ch in enumerate(text):
        if ch in _CLOSER_OF:
            stack.append(i)
        elif ch in _CLOSERS:
            if stack and _CLOSER_OF[text[stack[-1]]] == ch:
                j = stack.pop()
                partner[i], partner[j] = j, i
            else:
                partner[i] = _UNMATCHED
    for j in stack:
        partner[j] = _UNMATCHED
    return partner


_ASCII_DIGITS = frozenset("0123456789")


def is_decimal(text: str) -> bool:
    """`-?digits(.digits)?` in ASCII digits: a weight or strength as prompts, tags and pin lists
    write it (plain string code: no pattern to backtrack)."""
    body = text[1:] if text.startswith("-") else text
    whole, dot, fraction = body.partition(".")
    return (bool(whole) and set(whole) <= _ASCII_DIGITS
            and (not dot or (bool(fraction) and set(fraction) <= _ASCII_DIGITS)))


def union(*groups: Iterable[str], key: Callable[[str], str] = str.lower) -> tuple[str, ...]:
    """Concatenate keeping the first of each (case-insensitive) duplicate."""
    out: list[str] = []
    seen: set[str] = set()
    for group in groups:
        for item in group:
            if key(item) not in seen:
                seen.add(key(item))
                out.append(item)
    return tuple(out)


_HEX_DIGITS = frozenset("0123456789abcdef")


def sha256_hex(value: Any) -> str | None:
    """64 hex digits (optionally 0x-prefixed), lower-cased; None for anything else."""
    text = as_str(value)
    if len(text) not in (64, 66):
        return None
    text = text.lower()
    if text.startswith("0x"):
        text = text[2:]
    return text if len(text) == 64 and _HEX_DIGITS.issuperset(text) else None
