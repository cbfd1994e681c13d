"""The prompt's text: the family's own tags and negative prompt, and the LoRAs' trigger words
(which ones to use, escaped as prompt text, each added once)."""
from __future__ import annotations

from typing import Any

from ..metadata.records import ModelRecord
from . import architectures as A
from .scoring import Query, split_trigger_words
from .text import make_term, pad, words


def _style_negative(style: str) -> str:
    return {"realistic": "cartoon, anime, illustration, painting", "anime": "photo, realistic, 3d",
            "cartoon": "photo, realistic", "pixel art": "blurry, smooth, photo"}.get(style, "")


def arch_prompt(spec: A.ArchitectureSpec, positive: str, style: str,
                user_negative: str | None) -> tuple[str, str, list[str]]:
    """The prompt with the family's own additions (Pony's score tags), and the negative."""
    reasons: list[str] = []
    toks = set(words(positive))
    if spec.positive_prefix:
        first = words(spec.positive_prefix)[0]
        if first not in toks and "score" not in toks:
            positive = f"{spec.positive_prefix}, {positive}" if positive else spec.positive_prefix
            reasons.append(f"added '{spec.positive_prefix}': {spec.label} models read these quality tags")
    if spec.positive_suffix:
        suffix_words = set(words(spec.positive_suffix))
        if not suffix_words & toks:
            positive = f"{positive}, {spec.positive_suffix}" if positive else spec.positive_suffix
            reasons.append(f"added '{spec.positive_suffix}': the usual quality tags of {spec.label} models")
    if user_negative is not None:
        negative = user_negative
        reasons.append("negative prompt: yours, unchanged")
    elif not spec.uses_negative:
        negative = ""
        reasons.append(f"no negative prompt: {spec.label} runs at cfg 1 and ignores it")
    else:
        extra = _style_negative(style)
        negative = spec.default_negative + (f", {extra}" if extra else "")
        reasons.append(f"negative prompt: the usual one for {spec.label}" + (f", plus '{extra}' for a {style} image"
                                                                          if extra else ""))
    return positive, negative, reasons


def pick_triggers(r: ModelRecord, query: Query) -> list[str]:
    """Trigger words to use: all when few; else those the prompt is about, plus the first."""
    seen: set[str] = set()
    triggers: list[str] = []
    for t in split_trigger_words(r.trigger_words):
        k = " ".join(words(t))
        if k and k not in seen and len(t) <= 100:
            seen.add(k)
            triggers.append(t)
    if len(triggers) <= 3:
        return triggers
    wanted = []
    for t in triggers:
        toks = frozenset(words(t))
        text = pad(words(t))
        if any(q.kind in ("concept", "alias") and q.term.in_text(toks, text) for q in query.terms):
            wanted.append(t)
    if triggers[0] not in wanted:
        wanted.insert(0, triggers[0])
    return wanted[:3]


def prompt_escape(text: str) -> str:
    """A trigger word as prompt text: ComfyUI reads `(x)` as a weight, so a literal bracket (the
    Danbooru tag `star_(sky)`) is written `star_\\(sky\\)`; the index stores words unescaped."""
    return text.replace("(", "\\(").replace(")", "\\)")  # ComfyUI escapes only brackets (sd1_clip.py)


def inject_triggers(positive: str, loras: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """Append each trigger word once (escaped as prompt text), skipping those the prompt already
    has (case-insensitive); returns the prompt and the words added, unescaped."""
    toks = words(positive)
    present_set = set(toks)
    present_text = pad(toks)
    added: list[str] = []
    for lora in loras:
        for t in lora["trigger_words"]:
            tw = words(t)
            if not tw:
                continue
            if make_term(t).in_text(present_set, present_text) or \
                    (len(tw) > 1 and pad(tw) in present_text):
                continue
            added.append(t.strip())
            present_set.update(tw)
            present_text += " ".join(tw) + " "
    if added:
        positive = (positive.rstrip().rstrip(",") + ", " if positive.strip() else "") + \
            ", ".join(map(prompt_escape, added))
    return positive, added

