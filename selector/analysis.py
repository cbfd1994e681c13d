"""Prompt analysis: what the user asks for, in terms the selector can match against metadata.

Two sources fill the same `PromptAnalysis`: a local LLM (Ollama, when one answers) and the
keyword analyser here, which is always available and is also the fallback for every field the
LLM gets wrong. The keyword analyser is deliberately vocabulary-driven (see `vocabulary.py`)
rather than tuned to any model library: it has to generalise to libraries it never saw.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any, Mapping

from ..metadata import base_models
from . import vocabulary as V
from .text import chunks, clean_prompt, make_term, pad, words

log = logging.getLogger(__name__)

STYLE_CHOICES = ("auto",) + V.STYLES
ASPECTS = ("square", "portrait", "landscape", "wide", "tall")

# Suggested steps / CFG per style for classic (CFG-guided) models; architectures clamp them.
_STYLE_SETTINGS: dict[str, tuple[int, float]] = {
    "realistic": (30, 6.0), "anime": (25, 7.0), "artistic": (30, 7.5), "3d": (30, 7.0),
    "cartoon": (25, 7.0), "pixel art": (25, 7.0),
}
_DEFAULT_STYLE = "realistic"
_MIN_STYLE_EVIDENCE = 2.0


def _norm_phrase(p: str) -> str:
    return " ".join(words(p))


def _edge_ok(p: str) -> bool:
    toks = p.split()
    return bool(toks) and toks[0] not in V.STOP_WORDS and toks[-1] not in V.STOP_WORDS


_KNOWN_PHRASES = frozenset(q for q in (_norm_phrase(p) for p in V.KNOWN_PHRASES) if " " in q and _edge_ok(q))
_BOILERPLATE = frozenset(_norm_phrase(p) for p in V.BOILERPLATE | V.BASE_MODEL_WORDS)
_MAX_PHRASE = max(len(p.split()) for p in _KNOWN_PHRASES | _BOILERPLATE)
_QUALITY_HINTS = {_norm_phrase(k): v for k, v in V.QUALITY_HINTS.items()}


@dataclass(frozen=True)
class PromptAnalysis:
    """What the prompt asks for. Tuples, not lists, so analyses can be cached and compared.

    `style_confidence` (0..1) says how sure the style is: an explicit style is 1.0, a style read
    from strong words ("photo of", "oil painting") is high, the default for prompts that name no
    style is low, so scoring leans on it only as far as it deserves.
    """

    style: str = _DEFAULT_STYLE
    content_type: str = "scene"
    suggested_base_model: str = ""
    key_concepts: tuple[str, ...] = ()
    recommended_lora_tags: tuple[str, ...] = ()
    suggested_steps: int = 30
    suggested_cfg: float = 7.0
    source: str = "keywords"
    fallback_reason: str | None = None
    style_confidence: float = 0.0
    aspect: str = "square"
    nsfw: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The contract's `analysis` object (plus style_confidence, aspect, nsfw)."""
        return {
            "style": self.style, "content_type": self.content_type,
            "suggested_base_model": self.suggested_base_model, "key_concepts": list(self.key_concepts),
            "recommended_lora_tags": list(self.recommended_lora_tags), "suggested_steps": self.suggested_steps,
            "suggested_cfg": self.suggested_cfg, "source": self.source, "fallback_reason": self.fallback_reason,
            "style_confidence": round(self.style_confidence, 3), "aspect": self.aspect, "nsfw": self.nsfw,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> PromptAnalysis:
        """Rebuild from a plan's `analysis` object (lenient: later stages only have the plan)."""
        if not d:
            return cls()
        def strs(v: Any) -> tuple[str, ...]:
            return tuple(str(x) for x in v) if isinstance(v, (list, tuple)) else ()
        style = d.get("style") if d.get("style") in V.STYLES else _DEFAULT_STYLE
        content = d.get("content_type") if d.get("content_type") in V.CONTENT_TYPES else "scene"
        return cls(
            style=str(style), content_type=str(content),
            suggested_base_model=str(d.get("suggested_base_model") or ""),
            key_concepts=strs(d.get("key_concepts")), recommended_lora_tags=strs(d.get("recommended_lora_tags")),
            suggested_steps=_int_or(d.get("suggested_steps"), 30), suggested_cfg=_float_or(d.get("suggested_cfg"), 7.0),
            source="ollama" if d.get("source") == "ollama" else "keywords",
            fallback_reason=d.get("fallback_reason") if isinstance(d.get("fallback_reason"), str) else None,
            style_confidence=_float_or(d.get("style_confidence"), 0.5),
            aspect=str(d.get("aspect")) if d.get("aspect") in ASPECTS else "square",
            nsfw=bool(d.get("nsfw", False)),
        )


def _int_or(v: Any, default: int) -> int:
    if isinstance(v, bool):
        return default
    if isinstance(v, (int, float)) and math.isfinite(v):
        return int(round(v))
    return default


def _float_or(v: Any, default: float) -> float:
    if isinstance(v, bool):
        return default
    if isinstance(v, (int, float)) and math.isfinite(v):
        return float(v)
    return default


# --- vocabulary matching on one text -----------------------------------------------------------

class _Text:
    """A tokenised text ready for term look-ups."""

    __slots__ = ("tokens", "set", "padded")

    def __init__(self, text: str) -> None:
        self.tokens = words(clean_prompt(text))
        self.set = frozenset(self.tokens)
        self.padded = pad(self.tokens)

    def has(self, term: str) -> bool:
        return make_term(term).in_text(self.set, self.padded)


def style_scores(text: str) -> dict[str, float]:
    """Evidence points per style in a text (each vocabulary term counted once)."""
    t = _Text(text)
    return {style: sum(w for term, w in vocab.items() if t.has(term)) for style, vocab in V.STYLE_VOCAB.items()}


def detect_style(prompt: str, negative_prompt: str = "") -> tuple[str, float, dict[str, float]]:
    """(style, confidence, scores) read from the prompt; style words in the negative count against."""
    scores = style_scores(prompt)
    if negative_prompt:
        for style, pts in style_scores(negative_prompt).items():
            scores[style] -= 0.5 * pts
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    best_style, best = ranked[0]
    second = max(ranked[1][1], 0.0)
    if best < _MIN_STYLE_EVIDENCE:
        return _DEFAULT_STYLE, 0.15, scores
    confidence = min(1.0, 0.35 + 0.08 * best) * (1.0 - 0.5 * second / best)
    return best_style, round(max(0.2, confidence), 3), scores


def detect_content_type(text: _Text) -> str:
    scores = {ct: sum(w for term, w in vocab.items() if text.has(term)) for ct, vocab in V.CONTENT_VOCAB.items()}
    if scores["portrait"] >= 2.5 and (scores["character"] > 0 or scores["portrait"] >= 4):
        return "portrait"
    best = max(scores, key=lambda k: scores[k])
    if scores[best] <= 0:
        return "scene"
    # A person in a place is a picture of the person.
    if scores["character"] > 0 and scores["character"] >= 0.6 * scores[best]:
        return "character"
    return best


def detect_aspect(text: _Text, content_type: str) -> str:
    if any(text.has(w) for w in ("panorama", "panoramic", "widescreen", "wide shot", "ultrawide", "cinematic",
                                  "wide angle", "banner", "16 9", "21 9")):
        return "wide"
    if any(text.has(w) for w in ("phone wallpaper", "vertical", "9 16", "tall", "full body", "standing")):
        return "tall" if content_type in ("character", "portrait") and text.has("full body") else "portrait"
    if text.has("square") or text.has("1 1"):
        return "square"
    return {"character": "portrait", "portrait": "portrait", "landscape": "landscape", "scene": "landscape",
            "architecture": "landscape"}.get(content_type, "square")


def _is_weak(word: str) -> bool:
    return word in V.GENERIC_WORDS or word in V.GENERIC_STYLE_WORDS or word in V.MODIFIER_WORDS


def extract_concepts(prompt: str) -> tuple[list[str], list[str]]:
    """(key concepts, quality hints) in prompt order.

    Known multi-word ideas ("pink hair", "oil painting", "old man") are kept whole; other runs
    of content words give their words plus adjacent pairs ("cyberpunk city"), so a phrase match
    in metadata can count more than scattered words. Stop-words and boilerplate are dropped.
    """
    concepts: list[str] = []
    hints: list[str] = []
    seen: set[str] = set()

    def add(c: str) -> None:
        if c not in seen:
            seen.add(c)
            concepts.append(c)

    def flush(run: list[str]) -> None:
        for w in run:
            add(w)
        for a, b in zip(run, run[1:], strict=False):
            if not (_is_weak(a) and _is_weak(b)):
                add(f"{a} {b}")
        run.clear()

    for chunk in chunks(prompt):
        run: list[str] = []
        i = 0
        while i < len(chunk):
            hit = 0
            for n in range(min(_MAX_PHRASE, len(chunk) - i), 0, -1):
                cand = " ".join(chunk[i:i + n])
                if cand in _BOILERPLATE:
                    flush(run)
                    hints.extend(h for h in _QUALITY_HINTS.get(cand, ()) if h not in hints)
                    hit = n
                    break
                if n > 1 and cand in _KNOWN_PHRASES:
                    flush(run)
                    add(cand)
                    hit = n
                    break
            if hit:
                i += hit
                continue
            tok = chunk[i]
            if tok in V.STOP_WORDS or tok.isdigit() or len(tok) < 2:
                flush(run)
            else:
                run.append(tok)
            i += 1
        flush(run)
    return concepts, hints


def suggest_base_model(text: _Text) -> str:
    for hint, base in V.BASE_MODEL_HINTS:
        if text.has(hint):
            return base
    return ""


def recommend_lora_tags(concepts: list[str], style: str, style_confidence: float, hints: list[str]) -> list[str]:
    """Concepts, then the style's tags (when the style is more than a default), synonyms, hints."""
    out: list[str] = []
    seen: set[str] = set()

    def add(t: str) -> None:
        n = _norm_phrase(t)
        if n and n not in seen:
            seen.add(n)
            out.append(n)

    for c in concepts:
        add(c)
    if style_confidence >= 0.4:
        for t in V.STYLE_TAGS.get(style, ()):
            add(t)
    for c in concepts:
        for s in V.SYNONYMS.get(c, ()):
            add(s)
        toks = c.split()
        if len(toks) == 2 and toks[1] in ("hair", "eyes") and toks[0] not in ("long", "short"):
            add(f"{toks[1]} color")
    for h in hints:
        add(h)
    return out[:32]


def analyze_keywords(prompt: str, negative_prompt: str = "", style: str = "auto") -> PromptAnalysis:
    """The keyword analysis of a prompt; `style` other than "auto" wins over detection."""
    text = _Text(prompt or "")
    detected, confidence, _ = detect_style(prompt or "", negative_prompt or "")
    style_norm = normalize_style(style)
    if style_norm and style_norm != "auto":
        chosen, confidence = style_norm, 1.0
    else:
        chosen = detected
    content = detect_content_type(text)
    concepts, hints = extract_concepts(prompt or "")
    steps, cfg = _STYLE_SETTINGS[chosen]
    nsfw = any(text.has(w) for w in V.NSFW_WORDS)
    return PromptAnalysis(
        style=chosen, content_type=content, suggested_base_model=suggest_base_model(text),
        key_concepts=tuple(concepts[:24]),
        recommended_lora_tags=tuple(recommend_lora_tags(concepts, chosen, confidence, hints)),
        suggested_steps=steps, suggested_cfg=cfg, source="keywords", fallback_reason=None,
        style_confidence=confidence, aspect=detect_aspect(text, content), nsfw=nsfw,
    )


def normalize_style(style: str | None) -> str | None:
    """"Pixel-Art" -> "pixel art"; None when it is not a known style (or "auto")."""
    if not isinstance(style, str):
        return None
    s = " ".join(words(style))
    aliases = {"pixelart": "pixel art", "photo": "realistic", "photorealistic": "realistic", "art": "artistic",
               "painting": "artistic", "3d render": "3d", "render": "3d"}
    s = aliases.get(s, s)
    return s if s in STYLE_CHOICES else None


# --- LLM answers ---------------------------------------------------------------------------------

ANALYSIS_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "style": {"type": "string", "enum": list(V.STYLES),
                  "description": "the visual style the prompt asks for; realistic when it names none"},
        "content_type": {"type": "string", "enum": list(V.CONTENT_TYPES), "description": "the main subject"},
        "suggested_base_model": {"type": "string",
                                 "description": "a CivitAI base model (\"SD 1.5\", \"SDXL 1.0\", \"Pony\", "
                                                "\"Illustrious\", \"Flux.1 D\") only if the prompt implies one, else \"\""},
        "key_concepts": {"type": "array", "items": {"type": "string"}, "maxItems": 12,
                         "description": "the subjects, attributes and themes, short lower-case words or phrases "
                                        "such as \"pink hair\" or \"old man\""},
        "recommended_lora_tags": {"type": "array", "items": {"type": "string"}, "maxItems": 16,
                                  "description": "CivitAI-style tags a LoRA for this prompt would carry"},
        "suggested_steps": {"type": "integer", "minimum": 10, "maximum": 80},
        "suggested_cfg": {"type": "number", "minimum": 1, "maximum": 15},
    },
    "required": ["style", "content_type", "suggested_base_model", "key_concepts", "recommended_lora_tags",
                 "suggested_steps", "suggested_cfg"],
}


def _clean_list(value: Any, limit: int) -> list[str] | None:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, (list, tuple)):
        return None
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            continue
        n = _norm_phrase(item)
        if n and len(n) <= 60 and n not in out:
            out.append(n)
    return out[:limit]


def analysis_from_llm_json(data: Any, prompt: str, style: str = "auto", negative_prompt: str = "") -> PromptAnalysis:
    """Validate and clamp an LLM's answer; each bad field falls back to the keyword analysis.

    The keyword concepts are merged in after the LLM's so that phrase matches ("pink hair") are
    never lost when the LLM splits them into words. An explicit `style` still wins.
    """
    base = analyze_keywords(prompt, negative_prompt, style)
    if not isinstance(data, Mapping):
        return replace(base, fallback_reason="the Ollama answer was not a JSON object")
    replaced: list[str] = []

    llm_style = normalize_style(data.get("style"))
    explicit = normalize_style(style)
    if explicit and explicit != "auto":
        chosen_style, conf = explicit, 1.0
    elif llm_style and llm_style != "auto":
        chosen_style = llm_style
        conf = max(base.style_confidence, 0.6) if llm_style == base.style else 0.6
    else:
        chosen_style, conf = base.style, base.style_confidence
        replaced.append("style")

    content = data.get("content_type")
    if content not in V.CONTENT_TYPES:
        content = base.content_type
        replaced.append("content_type")

    sbm = data.get("suggested_base_model")
    if isinstance(sbm, str) and base_models.is_known(sbm) and base_models.family(sbm) != "unknown":
        suggested = sbm.strip()
    else:
        suggested = base.suggested_base_model
        if sbm not in ("", None):
            replaced.append("suggested_base_model")

    concepts = _clean_list(data.get("key_concepts"), 12)
    if not concepts:
        concepts = []
        replaced.append("key_concepts")
    for c in base.key_concepts:
        if c not in concepts:
            concepts.append(c)

    tags = _clean_list(data.get("recommended_lora_tags"), 16)
    if tags is None:
        tags = []
        replaced.append("recommended_lora_tags")
    for t in base.recommended_lora_tags:
        if t not in tags:
            tags.append(t)

    raw_steps = data.get("suggested_steps")
    if isinstance(raw_steps, (int, float)) and not isinstance(raw_steps, bool) and math.isfinite(raw_steps):
        steps = int(min(80, max(10, round(raw_steps))))
    else:
        steps = _STYLE_SETTINGS[chosen_style][0]
        replaced.append("suggested_steps")
    raw_cfg = data.get("suggested_cfg")
    if isinstance(raw_cfg, (int, float)) and not isinstance(raw_cfg, bool) and math.isfinite(raw_cfg):
        cfg = float(min(15.0, max(1.0, raw_cfg)))
    else:
        cfg = _STYLE_SETTINGS[chosen_style][1]
        replaced.append("suggested_cfg")

    reason = None
    if replaced:
        reason = "the Ollama answer had no usable " + ", ".join(replaced) + ": keyword analysis used for it"
        log.info("LLM analysis: %r", reason)
    return PromptAnalysis(
        style=chosen_style, content_type=str(content), suggested_base_model=suggested,
        key_concepts=tuple(concepts[:24]), recommended_lora_tags=tuple(tags[:32]), suggested_steps=steps,
        suggested_cfg=round(cfg, 2), source="ollama", fallback_reason=reason, style_confidence=conf,
        aspect=base.aspect, nsfw=base.nsfw,
    )
