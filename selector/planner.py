"""The plan: request parsing and the staged decisions the nodes and the route share.

A plan is built in stages so each node adds its part and the next one knows what came before:
`start_plan` (analysis, prompt) -> `choose_checkpoint` (model, VAE, text encoders, settings) ->
`choose_loras` (LoRAs, trigger words, final prompt); the memory part is filled by `monitor/`.
Every stage returns a new plan (deep copy) and never changes the one it was given, because
ComfyUI caches node outputs and an upstream plan must stay as it was. Everything in a plan is
plain JSON data, and every decision in it carries its reasons.
"""
from __future__ import annotations

import copy
import difflib
import logging
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence

from ..metadata import base_models
from ..metadata.records import ModelRecord
from ..metadata.safe_open import printable
from . import architectures as A
from . import compat
from .analysis import STYLE_CHOICES, PromptAnalysis, analyze_keywords, normalize_style
from .coverage import FAMILY_FIT_MAX, NO_FIT, counts_for_coverage, family_fits, stack_by_coverage
from .meaning import Meaning, Similar
from .retrieval import (
    Library,
    all_records,
    as_source,
    compatible_count,
    is_library,
    per_generation,
    retrieve_loras,
)
from .samplers import is_a1111_name, normalize_sampler, normalize_scheduler
from .scoring import (
    CORE_KINDS,
    MEANING_REJECT,
    MEANING_STACK,
    LoraContext,
    Query,
    Score,
    TermMatch,
    build_query,
    could_be_stacked,
    match_terms,
    profile,
    score_checkpoint,
    score_loras,
    split_trigger_words,
)
from .text import extract_prompt_loras, make_term, pad, words

log = logging.getLogger(__name__)

PLAN_VERSION = 1
RETRIEVAL_WORDS = "words"  # analysis.retrieval: LoRAs found by their words (contracts.md)
RETRIEVAL_MEANING = "words+meaning"  # ... and by the meaning of their texts (selector/meaning.py)
MEANING_LIMIT = 50  # LoRAs most like the prompt in meaning that are looked at (and as many of its family)
DEFAULT_MAX_LORAS = 3
MAX_LORAS_LIMIT = 10
CANDIDATES_SHOWN = 5
LORA_CANDIDATES_SHOWN = 10
UNKNOWN_PINS_SHOWN = 5  # pins not in the library that get a warning of their own (with close names)
CHECKPOINT_KINDS = ("checkpoint", "diffusion_model")
QUALITIES = A.QUALITIES
USE_OLLAMA = ("auto", "on", "off")
# The longest prompt or negative prompt accepted (contracts.md): the route, the parser and the nodes use this.
MAX_PROMPT_CHARS = 100_000


class PlanRequestError(ValueError):
    """A request the plan cannot be made from (a 400): `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PlanError(ValueError):
    """A valid request the library cannot satisfy (no usable checkpoint, a pin that matches nothing).

    `field` names the request field at fault when there is one (a pin), else None."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# --- the request -------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlanRequest:
    """A validated request. `overrides` holds only the keys given, normalised
    (`cfg_scale` -> `cfg`, LoRA pins as `{"name", "strength"?}`), read-only."""

    prompt: str
    negative_prompt: str | None = None
    style: str = "auto"
    quality: str = "balanced"
    overrides: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    use_ollama: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "negative_prompt": self.negative_prompt, "style": self.style,
                "quality": self.quality, "overrides": _plain(dict(self.overrides)), "use_ollama": self.use_ollama}


def _plain(v: Any) -> Any:
    """Tuples and mapping proxies -> lists and dicts, for JSON."""
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


_OVERRIDE_KEYS = ("steps", "cfg", "cfg_scale", "sampler", "sampler_name", "scheduler", "width", "height",
                  "negative_prompt", "seed", "batch_size", "checkpoint", "loras", "exclude", "max_loras")
_TOP_KEYS = ("prompt", "negative_prompt", "style", "quality", "overrides", "use_ollama")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # a JSON integer too large for a float
        return False


def _int_in(v: Any, name: str, lo: int, hi: int) -> int:
    if not _is_int(v):
        raise PlanRequestError(name, f"must be a whole number from {lo} to {hi}, got {type(v).__name__}")
    if not lo <= v <= hi:
        raise PlanRequestError(name, f"must be from {lo} to {hi}, got {v}")
    return int(v)


def _float_in(v: Any, name: str, lo: float, hi: float) -> float:
    if not _is_number(v):
        raise PlanRequestError(name, f"must be a number from {lo:g} to {hi:g}, got {type(v).__name__}")
    if not lo <= v <= hi:
        raise PlanRequestError(name, f"must be from {lo:g} to {hi:g}, got {v}")
    return float(v)


def _str(v: Any, name: str, allow_empty: bool = False) -> str:
    if not isinstance(v, str):
        raise PlanRequestError(name, f"must be a string, got {type(v).__name__}")
    if not allow_empty and not v.strip():
        raise PlanRequestError(name, "must not be empty")
    return v


def _prompt_text(v: Any, name: str, allow_empty: bool = False) -> str:
    """A prompt or negative prompt: a string of at most MAX_PROMPT_CHARS characters."""
    text = _str(v, name, allow_empty)
    if len(text) > MAX_PROMPT_CHARS:
        raise PlanRequestError(name, f"is {len(text):,} characters long; the most accepted is {MAX_PROMPT_CHARS:,}")
    return text


def _size(v: Any, name: str) -> int:
    n = _int_in(v, name, 64, 8192)
    if n % 8:
        raise PlanRequestError(name, f"must be a multiple of 8, got {n}")
    return n


def _name_list(v: Any, name: str) -> tuple[str, ...]:
    if isinstance(v, str) or not isinstance(v, (list, tuple)):
        raise PlanRequestError(name, "must be a list of names")
    return tuple(_str(x, f"{name}[{i}]").strip() for i, x in enumerate(v))


def _lora_pins(v: Any, name: str) -> tuple[Mapping[str, Any], ...]:
    if isinstance(v, str) or not isinstance(v, (list, tuple)):
        raise PlanRequestError(name, "must be a list of names or {name, strength} objects")
    out: list[Mapping[str, Any]] = []
    for i, item in enumerate(v):
        where = f"{name}[{i}]"
        if isinstance(item, str):
            out.append(MappingProxyType({"name": _str(item, where).strip()}))
            continue
        if not isinstance(item, Mapping):
            raise PlanRequestError(where, "must be a name or a {name, strength} object")
        for k in item:
            if k not in ("name", "strength"):
                raise PlanRequestError(f"{where}.{k}", "unknown key: a LoRA pin has only name and strength")
        if "name" not in item:
            raise PlanRequestError(f"{where}.name", "is required")
        pin: dict[str, Any] = {"name": _str(item["name"], f"{where}.name").strip()}
        if item.get("strength") is not None:
            pin["strength"] = _float_in(item["strength"], f"{where}.strength", -10.0, 10.0)
        out.append(MappingProxyType(pin))
    return tuple(out)


def parse_overrides(raw: Any, prefix: str = "overrides") -> dict[str, Any]:
    """Validate an `overrides` object (contracts.md); returns the normalised keys that were given.

    `null` values mean "not set". `bool` is never accepted where a number is expected.
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise PlanRequestError(prefix, "must be an object")
    out: dict[str, Any] = {}
    for key in raw:
        if not isinstance(key, str) or key not in _OVERRIDE_KEYS:
            raise PlanRequestError(f"{prefix}.{key}", f"unknown override; allowed: {', '.join(_OVERRIDE_KEYS)}")
    for key, v in raw.items():
        if v is None:
            continue
        name = f"{prefix}.{key}"
        if key == "steps":
            out["steps"] = _int_in(v, name, 1, 1000)
        elif key in ("cfg", "cfg_scale"):
            cfg = _float_in(v, name, 0.0, 100.0)
            if "cfg" in out and out["cfg"] != cfg:
                raise PlanRequestError(name, "cfg and cfg_scale are the same setting and disagree")
            out["cfg"] = cfg
        elif key == "sampler":
            s = _str(v, name).strip()
            try:
                normalize_sampler(s)
            except ValueError as e:
                raise PlanRequestError(name, str(e)) from None
            out["sampler"] = s
        elif key in ("sampler_name", "scheduler"):
            out[key] = _str(v, name).strip()
        elif key in ("width", "height"):
            out[key] = _size(v, name)
        elif key == "negative_prompt":
            out[key] = _prompt_text(v, name, allow_empty=True)
        elif key == "seed":
            out[key] = _int_in(v, name, 0, 2 ** 64 - 1)
        elif key == "batch_size":
            out[key] = _int_in(v, name, 1, 64)
        elif key == "checkpoint":
            out[key] = _str(v, name).strip()
        elif key == "loras":
            out[key] = _lora_pins(v, name)
        elif key == "exclude":
            out[key] = _name_list(v, name)
        elif key == "max_loras":
            out[key] = _int_in(v, name, 0, MAX_LORAS_LIMIT)
    return out


def parse_request(body: Any) -> PlanRequest:
    """Validate a plan request body exactly as contracts.md says; PlanRequestError names the field."""
    if not isinstance(body, Mapping):
        raise PlanRequestError("body", "must be a JSON object")
    for key in body:
        if key not in _TOP_KEYS:
            raise PlanRequestError(str(key), f"unknown field; allowed: {', '.join(_TOP_KEYS)}")
    if "prompt" not in body or body["prompt"] is None:
        raise PlanRequestError("prompt", "is required")
    prompt = _prompt_text(body["prompt"], "prompt")
    negative = body.get("negative_prompt")
    if negative is not None:
        negative = _prompt_text(negative, "negative_prompt", allow_empty=True)
    style = body.get("style")
    if style is None:
        style = "auto"
    else:
        _str(style, "style")
        norm = normalize_style(style)
        if norm is None:
            raise PlanRequestError("style", f"must be one of {', '.join(STYLE_CHOICES)}, got {style!r}")
        style = norm
    quality = body.get("quality")
    if quality is None:
        quality = "balanced"
    else:
        q = _str(quality, "quality").strip().lower()
        if q not in QUALITIES:
            raise PlanRequestError("quality", f"must be one of {', '.join(QUALITIES)}, got {quality!r}")
        quality = q
    use_ollama = body.get("use_ollama", "auto")
    if isinstance(use_ollama, bool):
        use_ollama = "on" if use_ollama else "off"
    if use_ollama is None:
        use_ollama = "auto"
    if use_ollama not in USE_OLLAMA:
        raise PlanRequestError("use_ollama", f"must be one of {', '.join(USE_OLLAMA)}")
    overrides = parse_overrides(body.get("overrides"))
    return PlanRequest(prompt=prompt, negative_prompt=negative, style=style, quality=quality,
                       overrides=MappingProxyType(overrides), use_ollama=use_ollama)


# --- plan plumbing -----------------------------------------------------------------------------

def _empty_memory() -> dict[str, Any]:
    return {"level": "NONE", "need_gb": 0, "free_gb": None, "actions": [], "reasons": []}


def _request_of(plan: Mapping[str, Any]) -> dict[str, Any]:
    req = plan.get("request")
    return req if isinstance(req, dict) else {}


def _merged_overrides(plan: Mapping[str, Any], overrides: Any) -> dict[str, Any]:
    """The request's overrides with the stage's own on top (a node's widgets)."""
    merged = parse_overrides(_request_of(plan).get("overrides") or {})
    if isinstance(overrides, PlanRequest):
        overrides = overrides.overrides
    merged.update(parse_overrides(overrides))
    return merged


def _analysis_of(plan: Mapping[str, Any]) -> PromptAnalysis:
    return PromptAnalysis.from_dict(plan.get("analysis") if isinstance(plan.get("analysis"), Mapping) else None)


def _quality_of(plan: Mapping[str, Any]) -> str:
    q = _request_of(plan).get("quality")
    return q if q in QUALITIES else "balanced"


def start_plan(request: PlanRequest | Mapping[str, Any], analysis: PromptAnalysis | None = None) -> dict[str, Any]:
    """A new plan: the analysis, the prompt (A1111 `<lora:...>` tags become pins), empty parts.

    `checkpoint` stays None until `choose_checkpoint` (or `describe_loaded_model`) fills it; the
    settings are the defaults of the family the prompt implies, with the request's overrides.
    """
    req = request if isinstance(request, PlanRequest) else parse_request(request)
    if analysis is None:
        analysis = analyze_keywords(req.prompt, req.negative_prompt or "", req.style)
    positive, prompt_loras = extract_prompt_loras(req.prompt)
    ov = dict(req.overrides)
    user_negative = ov.get("negative_prompt", req.negative_prompt)
    plan: dict[str, Any] = {
        "version": PLAN_VERSION,
        "request": {**req.to_dict(),
                    "prompt_loras": [{"name": n, **({"strength": s} if s is not None else {})} for n, s in prompt_loras]},
        "analysis": {**analysis.to_dict(), "retrieval": RETRIEVAL_WORDS},
        "checkpoint": None,
        "text_encoders": [],
        "vae": {"name": None, "reasons": []},
        "loras": [],
        "settings": {},
        "settings_reasons": [],
        "prompt": {"positive": positive, "negative": user_negative or "", "base_positive": positive,
                   "user_negative": user_negative},
        "memory": _empty_memory(),
        "candidates": {"checkpoints": [], "loras": []},
        "estimates": {},
        "warnings": [],
    }
    spec = A.spec_for(base_models.architecture(analysis.suggested_base_model), analysis.suggested_base_model) \
        if analysis.suggested_base_model else A.SPECS["unknown"]
    settings, reasons, warnings = _settings(spec, None, analysis, req.quality, ov, None, None)
    plan["settings"], plan["settings_reasons"] = settings, reasons
    plan["warnings"].extend(warnings)
    return plan


# --- finding records by name -------------------------------------------------------------------

def _norm(s: str) -> str:
    return s.replace("\\", "/").strip().lower()


def _stem_of(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


def _name_keys(r: ModelRecord) -> tuple[str, ...]:
    return tuple(k for k in (_norm(r.name), _norm(_stem_of(r.name)), _norm(r.name.rsplit(".", 1)[0]),
                             _norm(r.title)) if k)


class _Names:
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


def _find(records: Sequence[ModelRecord], wanted: str) -> list[ModelRecord]:
    """Records a user-given name means: exact loader name, else case-insensitive name/stem/title."""
    return _Names(records).find(wanted)


def _close_names(records: Sequence[ModelRecord], wanted: str, n: int = 5) -> list[str]:
    w = _norm(wanted)
    names = [r.name for r in records]
    contains = [nm for nm in names if w and (w in _norm(nm) or _norm(_stem_of(nm)) in w)]
    if contains:
        return sorted(contains)[:n]
    stems = {_norm(_stem_of(nm)): nm for nm in names[:20000]}
    return [stems[s] for s in difflib.get_close_matches(_norm(_stem_of(wanted)), list(stems), n=n, cutoff=0.5)]


def _excluded_keys(ov: Mapping[str, Any]) -> set[str]:
    return {_norm(x) for x in ov.get("exclude", ())}


def _is_excluded(r: ModelRecord, keys: set[str]) -> bool:
    return bool(keys) and any(k in keys for k in _name_keys(r))


# --- settings ----------------------------------------------------------------------------------

def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


def _median(values: Iterable[float]) -> float | None:
    vals = list(values)
    return statistics.median(vals) if vals else None


def _settings(spec: A.ArchitectureSpec, record: ModelRecord | None, analysis: PromptAnalysis, quality: str,
              ov: Mapping[str, Any], valid_samplers: Sequence[str] | None, valid_schedulers: Sequence[str] | None,
              ) -> tuple[dict[str, Any], list[str], list[str]]:
    """Settings from: family defaults -> the model's example images -> the analysis -> the quality
    preset -> overrides. Returns (settings, reasons, warnings)."""
    reasons: list[str] = []
    warnings: list[str] = []
    steps, cfg, guidance = spec.steps, spec.cfg, spec.guidance
    sampler, scheduler, clip_skip = spec.sampler_name, spec.scheduler, spec.clip_skip
    reasons.append(f"{spec.label} defaults: {steps} steps, cfg {cfg:g}, {sampler}/{scheduler}, clip skip {clip_skip}"
                   + (f", guidance {guidance:g}" if guidance is not None else ""))
    from_examples: set[str] = set()

    if record is not None:
        ex = record.examples
        st = _median(e.steps for e in ex if e.steps and 1 <= e.steps <= 150)
        if st is not None:
            steps = int(min(spec.max_steps, max(spec.min_steps, round(st))))
            from_examples.add("steps")
            reasons.append(f"steps {steps}: median of the model's example images")
        cf = _median(e.cfg for e in ex if e.cfg is not None and 0 < e.cfg <= 30)
        if cf is not None:
            if spec.guidance is not None and spec.cfg_range == (1.0, 1.0):
                if 1.5 <= cf <= 10:
                    guidance = round(float(cf), 2)
                    reasons.append(f"guidance {guidance:g}: the example images' cfg (Flux-style models use it as guidance)")
            else:
                cfg = A.clamp_cfg(spec, float(cf))
                from_examples.add("cfg")
                reasons.append(f"cfg {cfg:g}: median of the model's example images")
        mapped: list[tuple[str, str | None]] = []
        for e in ex:
            if e.sampler:
                try:
                    mapped.append(normalize_sampler(e.sampler, valid_samplers, valid_schedulers))
                except ValueError:
                    continue
        if mapped:
            (s_name, s_sched), count = Counter(mapped).most_common(1)[0]
            sampler = s_name
            if s_sched:
                scheduler = s_sched
            from_examples.add("sampler")
            reasons.append(f"{sampler}/{scheduler}: used by {count} of the model's {len(ex)} example images")
        cs: float | None
        if record.clip_skip and 1 <= record.clip_skip <= 12:
            cs = record.clip_skip
            reasons.append(f"clip skip {cs}: the model's usage tips")
        else:
            cs = _median(e.clip_skip for e in ex if e.clip_skip and 1 <= e.clip_skip <= 12)
            if cs is not None:
                reasons.append(f"clip skip {int(cs)}: the model's example images")
        if cs is not None:
            clip_skip = int(cs)

    if spec.tunable:
        if "steps" not in from_examples and analysis.suggested_steps:
            s2 = int(min(spec.max_steps, max(spec.min_steps, analysis.suggested_steps)))
            if s2 != steps:
                steps = s2
                reasons.append(f"steps {steps}: suggested for a '{analysis.style}' prompt ({analysis.source} analysis)")
        if "cfg" not in from_examples and analysis.suggested_cfg:
            c2 = A.clamp_cfg(spec, analysis.suggested_cfg)
            if c2 != cfg:
                cfg = c2
                reasons.append(f"cfg {cfg:g}: suggested for a '{analysis.style}' prompt ({analysis.source} analysis)")

    q_steps = A.steps_for(spec, quality, steps)
    if q_steps != steps:
        reasons.append(f"steps {q_steps}: quality '{quality}' (x{A.preset(quality).steps_multiplier:g} of {steps})")
        steps = q_steps
    width, height = A.size_for(spec, analysis.aspect, quality)
    reasons.append(f"{width}x{height}: {analysis.aspect} framing for {_a(analysis.content_type)} at {spec.label}'s "
                   f"native {spec.native}px" + (f", scaled for quality '{quality}'"
                                                if (width, height) != spec.sizes.get(analysis.aspect) else ""))

    # Keep automatic choices valid for the running ComfyUI.
    if valid_samplers is not None and sampler not in valid_samplers:
        alt = "euler" if "euler" in valid_samplers else (valid_samplers[0] if valid_samplers else sampler)
        warnings.append(f"sampler {sampler} is not offered by this ComfyUI; using {alt}")
        sampler = alt
    if valid_schedulers is not None and scheduler not in valid_schedulers:
        alt_s = normalize_scheduler(scheduler, valid_schedulers) or \
            ("normal" if "normal" in valid_schedulers else (valid_schedulers[0] if valid_schedulers else scheduler))
        warnings.append(f"scheduler {scheduler} is not offered by this ComfyUI; using {alt_s}")
        scheduler = alt_s

    batch_size, seed = 1, None
    # Overrides: the user's word is final.
    if "steps" in ov:
        steps = ov["steps"]
        reasons.append(f"steps {steps}: override")
    if "cfg" in ov:
        cfg = float(ov["cfg"])
        reasons.append(f"cfg {cfg:g}: override")
        if spec.cfg_range == (1.0, 1.0) and cfg > 1.0:
            warnings.append(f"cfg {cfg:g} on a guidance-distilled {spec.label} model: it expects cfg 1.0 "
                            "(strength comes from guidance); sampling will be slower and may burn")
    if "sampler" in ov:
        try:
            s_name, s_sched = normalize_sampler(ov["sampler"], valid_samplers, valid_schedulers)
        except ValueError as e:
            raise PlanRequestError("overrides.sampler", str(e)) from None
        sampler = s_name
        note = f"sampler {sampler}: override {ov['sampler']!r}"
        if s_sched and is_a1111_name(ov["sampler"]):
            scheduler = s_sched
            note += f" (A1111 name: scheduler {scheduler})"
        reasons.append(note)
    if "sampler_name" in ov:
        name = ov["sampler_name"]
        if valid_samplers is not None and name in valid_samplers:
            sampler = name
        else:
            try:
                sampler, s_sched = normalize_sampler(name, valid_samplers, valid_schedulers)
            except ValueError as e:
                if valid_samplers is not None:
                    raise PlanRequestError("overrides.sampler_name", str(e)) from None
                sampler, s_sched = name, None  # no live list to check against (e.g. a custom sampler)
            if s_sched and "scheduler" not in ov and is_a1111_name(name):
                scheduler = s_sched
        reasons.append(f"sampler {sampler}: override")
    if "scheduler" in ov:
        sched = ov["scheduler"] if valid_schedulers is not None and ov["scheduler"] in valid_schedulers \
            else normalize_scheduler(ov["scheduler"], valid_schedulers)
        if sched is None:
            if valid_schedulers is not None:
                raise PlanRequestError("overrides.scheduler", f"unknown scheduler {ov['scheduler']!r}; this "
                                       f"ComfyUI offers {', '.join(valid_schedulers)}")
            sched = ov["scheduler"]
        scheduler = sched
        reasons.append(f"scheduler {scheduler}: override")
    if "width" in ov or "height" in ov:
        width, height = ov.get("width", width), ov.get("height", height)
        reasons.append(f"{width}x{height}: override")
    if "batch_size" in ov:
        batch_size = ov["batch_size"]
        reasons.append(f"batch size {batch_size}: override")
    if "seed" in ov:
        seed = ov["seed"]
        reasons.append(f"seed {seed}: override")
    settings = {"steps": int(steps), "cfg": float(cfg), "guidance": guidance, "sampler_name": sampler,
                "scheduler": scheduler, "width": int(width), "height": int(height), "batch_size": int(batch_size),
                "clip_skip": int(clip_skip), "seed": seed, "denoise": 1.0}
    return settings, reasons, warnings


# --- checkpoint ----------------------------------------------------------------------------------

def _collect(records: Iterable[ModelRecord] | None, kinds: Sequence[str]) -> list[ModelRecord]:
    return [r for r in (records or ()) if r.kind in kinds]


def _dedupe(records: Iterable[ModelRecord]) -> list[ModelRecord]:
    seen: set[tuple[str, str]] = set()
    out = []
    for r in records:
        k = (r.kind, r.name)
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


def _mentioned_text(record: ModelRecord) -> str:
    prof = profile(record)
    return prof.title_text + prof.desc_text


def _style_negative(style: str) -> str:
    return {"realistic": "cartoon, anime, illustration, painting", "anime": "photo, realistic, 3d",
            "cartoon": "photo, realistic", "pixel art": "blurry, smooth, photo"}.get(style, "")


def _arch_prompt(spec: A.ArchitectureSpec, positive: str, style: str, user_negative: str | None) -> tuple[str, str, list[str]]:
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


def _checkpoint_entry(s: Score, kind: str, reasons: list[str]) -> dict[str, Any]:
    r = s.record
    family = r.family if r.family != "unknown" else base_models.family(r.base_model)
    return {"name": r.name, "kind": kind, "architecture": s.architecture,
            "family": base_models.public_family(family), "base_model": r.base_model,
            "score": round(s.total, 2), "reasons": reasons, "title": r.title,
            "guessed_architecture": s.guessed_architecture}


def _with_family_fit(scored: list[Score], source: Library | Iterable[ModelRecord], analysis: PromptAnalysis,
                     query: Query, ov: Mapping[str, Any], excl: set[str], max_nsfw_level: int,
                     similar: Similar | None = None) -> list[Score]:
    """The checkpoint scores with what each one's family has in LoRAs for the prompt added, for
    the checkpoints close enough to the best for that to matter; sorted again."""
    usable = [s for s in scored if s.usable]
    if len(usable) < 2:
        return scored
    floor = usable[0].total - FAMILY_FIT_MAX

    def context(s: Score) -> LoraContext | None:
        if not s.usable or s.total < floor or (s.architecture == "unknown" and not base_models.is_known(s.base_model)):
            return None
        return LoraContext(s.architecture, s.base_model or "Unknown", s.guessed_architecture)

    contexts = {id(s): context(s) for s in scored}
    distinct = list(dict.fromkeys(c for c in contexts.values() if c is not None))
    if len(distinct) < 2:
        return scored  # one family among the close ones: its LoRAs cannot decide between them
    # The LoRAs that could be stacked for the prompt's specific concepts (generic words such as
    # "girl" or "anime" prefer no family), their matches found once for every family looked at.
    strong = frozenset(f for q in query.terms if q.kind in CORE_KINDS and q.weight >= 0.5
                       for f in (q.term.words if not q.term.phrases else q.term.tokens[:1]))
    matched: dict[str, list[TermMatch]] = {}
    loras: list[ModelRecord] = []
    for r in retrieve_loras(source, query).records:
        if not r.excluded and not _is_excluded(r, excl):
            prof = profile(r)
            if not prof.shares_words(strong):
                continue
            sim = similar.of((r.kind, r.name)) if similar is not None else None
            if sim is not None and sim < MEANING_REJECT:
                continue  # its words match, its text is unlike the prompt: the stack would not take it
            found = match_terms(query, prof)
            if found and could_be_stacked(query, found):
                matched[r.name] = found
                loras.append(r)
    if not loras:
        return scored
    slots = max(0, min(MAX_LORAS_LIMIT, int(ov.get("max_loras", DEFAULT_MAX_LORAS))))
    fits = family_fits(loras, analysis, query, distinct, slots=slots, max_nsfw_level=max_nsfw_level,
                       matched=matched)
    out: list[Score] = []
    for s in scored:
        ctx = contexts[id(s)]
        fit = fits.get(ctx, NO_FIT) if ctx is not None else NO_FIT
        if fit.points > 0:
            s = replace(s, total=s.total + fit.points, components={**s.components, "loras": fit.points},
                        reasons=s.reasons + (fit.reason(),))
        out.append(s)
    out.sort(key=lambda s: (not s.usable, -s.total, s.record.name))
    return out


def _similar(meaning: Meaning | None, req: Mapping[str, Any], architecture: str | None = None) -> Similar | None:
    """What meaning finds for the request's prompt (its `<lora:>` tags left out), or None: without
    meaning, and when embedding fails (one log line; the plan goes on by words)."""
    if meaning is None:
        return None
    try:
        return meaning.similar(extract_prompt_loras(req.get("prompt", "") or "")[0], MEANING_LIMIT, architecture,
                               at_least=MEANING_STACK)
    except Exception as e:
        log.warning("retrieval by meaning failed, words only: %s: %s", type(e).__name__, printable(str(e), 300))
        return None


def _needs(r: ModelRecord) -> tuple[A.ArchitectureSpec, compat.Needs]:
    """The spec of a checkpoint and the components it needs (of the record alone: kept with its profile)."""
    memo = profile(r).memo
    hit = memo.get("needs")
    if hit is None:
        spec = A.spec_for(compat.effective_architecture(r).architecture, r.base_model)
        hit = memo["needs"] = (spec, compat.needs_of(r, spec, _mentioned_text(r) if r.description else ""))
    return hit


def choose_checkpoint(plan: dict[str, Any], records: Library | Iterable[ModelRecord], overrides: Any = None, *,
                      vaes: Iterable[ModelRecord] | None = None, text_encoders: Iterable[ModelRecord] | None = None,
                      valid_samplers: Sequence[str] | None = None, valid_schedulers: Sequence[str] | None = None,
                      max_nsfw_level: int = 2, quality: str | None = None,
                      loras: Library | Iterable[ModelRecord] | None = None,
                      meaning: Meaning | None = None) -> dict[str, Any]:
    """Pick the checkpoint (or diffusion model + text encoders), its VAE and the settings.

    `records` may hold the whole library, or be a Library (only checkpoints/diffusion models are
    ranked; VAEs and text encoders in it are used too). `loras` (a Library, or records; default:
    those of `records`) are what a family has for the prompt, which decides between close
    checkpoints; `meaning` leaves out of that the LoRAs whose text is unlike the prompt, as the stack
    does. `overrides` (a dict as in the request, or a PlanRequest)
    go on top of the plan's own. A pin that matches nothing raises PlanError; no usable model
    raises PlanError. LoRAs chosen earlier are dropped (they were for another checkpoint).
    """
    plan = copy.deepcopy(dict(plan))
    ov = _merged_overrides(plan, overrides)
    analysis = _analysis_of(plan)
    quality = quality if quality in QUALITIES else _quality_of(plan)
    req = _request_of(plan)
    source = as_source(records)
    if isinstance(source, list):
        everything = source
        lora_source: Library | Iterable[ModelRecord] = everything if loras is None else loras
    else:
        everything = [r for k in (*CHECKPOINT_KINDS, "vae", "text_encoder") for r in source.records(k)]
        lora_source = source if loras is None else loras
    ckpts = _dedupe(_collect(everything, CHECKPOINT_KINDS))
    vae_records = _dedupe(_collect(everything, ("vae",)) + _collect(vaes, ("vae",)))
    te_records = _dedupe(_collect(everything, ("text_encoder",)) + _collect(text_encoders, ("text_encoder",)))
    query = build_query(analysis, req.get("prompt", "") or "")
    te_roles = {compat.text_encoder_role(r) for r in te_records if not r.excluded}
    vae_fams = {compat.vae_architecture(r) for r in vae_records if not r.excluded}
    has_unknown_vae = "unknown" in vae_fams

    def usable(r: ModelRecord) -> tuple[bool, str, compat.Needs, A.ArchitectureSpec]:
        spec, needs = _needs(r)
        missing = [role for role in needs.text_encoders if role not in te_roles]
        problems = []
        if missing:
            problems.append(f"needs text encoder(s) {', '.join(missing)}, none in the library")
        if needs.vae == "required" and spec.vae_architecture not in vae_fams and not (
                has_unknown_vae and any(compat.vae_fits(v, spec.vae_architecture) for v in vae_records)):
            problems.append(f"needs a {spec.vae_architecture} VAE ({needs.vae_reason}), none in the library")
        return not problems, "; ".join(problems), needs, spec

    pinned_name = ov.get("checkpoint")
    if pinned_name and pinned_name.lower() == "auto":
        pinned_name = None
    warnings: list[str] = []
    excl = _excluded_keys(ov)
    if pinned_name:
        found = _find(ckpts, pinned_name)
        if not found:
            close = _close_names(ckpts, pinned_name)
            hint = f"; close names: {', '.join(close)}" if close else ""
            raise PlanError(f"pinned checkpoint {pinned_name!r} is not in the library{hint}", "overrides.checkpoint")
        if len(found) > 1:
            warnings.append(f"checkpoint pin {pinned_name!r} matches {len(found)} models; using {found[0].name}")
        rec = found[0]
        ok, why, needs, spec = usable(rec)
        best = score_checkpoint(rec, analysis, query, quality, max_nsfw_level, (ok, why))
        reasons = ["pinned by the request (overrides.checkpoint)"]
        if rec.excluded:
            warnings.append(f"{rec.name} is marked 'exclude' in its metadata; used because it was pinned")
        if not ok:
            warnings.append(f"pinned checkpoint {rec.name}: {why}")
        scored = [best]
    else:
        scored = []
        for r in ckpts:
            if r.excluded or _is_excluded(r, excl):
                continue
            ok, why, _, _ = usable(r)
            scored.append(score_checkpoint(r, analysis, query, quality, max_nsfw_level, (ok, why)))
        scored.sort(key=lambda s: (not s.usable, -s.total, s.record.name))
        scored = _with_family_fit(scored, lora_source, analysis, query, ov, excl, max_nsfw_level,
                                  _similar(meaning, req))
        if not scored or not scored[0].usable:
            if not ckpts:
                raise PlanError("no checkpoint or diffusion model in the library")
            detail = "; ".join(f"{s.record.name}: {s.reasons[-1]}" for s in scored[:3]) if scored else \
                "every model is excluded"
            raise PlanError(f"no usable checkpoint ({detail})")
        best = scored[0]
        rec = best.record
        _, _, needs, spec = usable(rec)
        reasons = []
        for s in scored[1:4]:
            if not s.usable:
                warnings.append(f"skipped {s.record.name}: {s.reasons[-1]}")
    reasons.extend(best.reasons)
    if not pinned_name and len(scored) > 1:
        runner = next((s for s in scored[1:] if s.usable), None)
        if runner is not None:
            reasons.append(f"ahead of {runner.record.name} ({runner.total:.1f}) among {len(scored)} models")
    if best.guessed_architecture:
        warnings.append(f"{rec.name}: family guessed as {best.architecture} from its size; metadata would make "
                        "settings and LoRA matching surer")
    kind = "diffusion_model" if rec.kind == "diffusion_model" else "checkpoint"
    plan["checkpoint"] = _checkpoint_entry(best, kind, reasons)
    plan["candidates"]["checkpoints"] = [
        {**s.candidate(), "architecture": s.architecture, "base_model": s.record.base_model, "usable": s.usable}
        for s in scored[:CANDIDATES_SHOWN]]

    # Text encoders: only for files that carry none.
    tes: list[dict[str, Any]] = []
    if needs.text_encoders:
        chosen, missing = compat.pick_text_encoders(needs.text_encoders, te_records, quality,
                                                    needs.optional_text_encoders)
        for role, choice in chosen.items():
            if choice.record is not None:
                tes.append({"name": choice.record.name, "role": role, "reasons": list(choice.reasons)})
        if missing:
            warnings.append(f"{rec.name} needs text encoder(s) {', '.join(missing)}: none found")
    plan["text_encoders"] = tes

    # VAE: a separate one only when the file has none, or its author asks for one.
    mentioned = _mentioned_text(rec)
    if needs.vae:
        choice = compat.pick_vae(spec.vae_architecture, vae_records, mentioned)
        if choice.record is None:
            plan["vae"] = {"name": None, "reasons": [f"{needs.vae_reason}, but " + choice.reasons[0]]}
            if needs.vae == "required":
                warnings.append(f"{rec.name} has no VAE and no {spec.vae_architecture} VAE was found")
        else:
            plan["vae"] = {"name": choice.record.name, "reasons": [needs.vae_reason, *choice.reasons]}
    else:
        rec_vae = next((v for v in vae_records if not v.excluded and compat.vae_fits(v, spec.vae_architecture)
                        and compat.is_mentioned(v, mentioned)), None)
        if rec_vae is not None:
            plan["vae"] = {"name": rec_vae.name,
                           "reasons": [f"the checkpoint's description recommends {rec_vae.title or rec_vae.stem}"]}
        else:
            plan["vae"] = {"name": None, "reasons": ["uses the VAE built into the checkpoint"]}

    settings, s_reasons, s_warnings = _settings(spec, rec, analysis, quality, ov, valid_samplers, valid_schedulers)
    plan["settings"], plan["settings_reasons"] = settings, s_reasons
    warnings.extend(s_warnings)

    base_positive = extract_prompt_loras(req.get("prompt", "") or plan["prompt"].get("base_positive", ""))[0]
    user_negative = ov.get("negative_prompt", req.get("negative_prompt"))
    positive, negative, p_reasons = _arch_prompt(spec, base_positive, analysis.style, user_negative)
    plan["prompt"] = {"positive": positive, "negative": negative, "base_positive": positive,
                      "user_negative": user_negative, "reasons": p_reasons}
    plan["loras"] = []
    plan["candidates"]["loras"] = []

    model_gb = rec.size / 1e9 if rec.size else spec.size_gb
    enc_gb = sum((next((r.size for r in te_records if r.name == t["name"]), 0) for t in tes), 0) / 1e9
    plan["estimates"] = {
        "model_gb": round(model_gb, 2), "text_encoders_gb": round(enc_gb, 2), "family": spec.key,
        "need_gb": A.memory_need_gb(spec, settings["width"], settings["height"], settings["batch_size"],
                                    model_gb, enc_gb if tes else 0.0),
    }
    for note in spec.notes:
        if note not in plan["settings_reasons"]:
            plan["settings_reasons"].append(note)
    plan["warnings"].extend(w for w in warnings if w not in plan["warnings"])
    log.debug("checkpoint %r (%s, %.1f) from %d candidates", rec.name, spec.key, best.total, len(scored))
    return plan


def describe_loaded_model(plan: dict[str, Any], architecture: str, base_model: str | None = None,
                          name: str | None = None) -> dict[str, Any]:
    """Fill `checkpoint` from a model that is already loaded (a node without a picker upstream).

    Only the family is known (from ComfyUI's detection), so LoRAs are matched by architecture and
    settings are the family defaults with the request's overrides.
    """
    plan = copy.deepcopy(dict(plan))
    arch = architecture if architecture in A.SPECS or architecture in compat.IMAGE_ARCHITECTURES else "unknown"
    bm = base_model or "Unknown"
    spec = A.spec_for(arch, bm)
    analysis = _analysis_of(plan)
    ov = _merged_overrides(plan, None)
    plan["checkpoint"] = {"name": name, "kind": "checkpoint", "architecture": arch,
                          "family": base_models.public_family(base_models.family(bm)), "base_model": bm, "score": 0.0,
                          "reasons": [f"family {arch} read from the loaded MODEL"], "title": name or "",
                          "guessed_architecture": False}
    settings, reasons, warnings = _settings(spec, None, analysis, _quality_of(plan), ov, None, None)
    plan["settings"], plan["settings_reasons"] = settings, reasons
    req = _request_of(plan)
    base_positive = extract_prompt_loras(req.get("prompt", "") or plan.get("prompt", {}).get("base_positive", ""))[0]
    user_negative = ov.get("negative_prompt", req.get("negative_prompt"))
    positive, negative, p_reasons = _arch_prompt(spec, base_positive, analysis.style, user_negative)
    plan["prompt"] = {"positive": positive, "negative": negative, "base_positive": positive,
                      "user_negative": user_negative, "reasons": p_reasons}
    plan.setdefault("warnings", []).extend(warnings)
    if arch == "unknown":
        plan["warnings"].append("the loaded model's family is unknown: no LoRA can be matched to it")
    return plan


def default_plan_for_architecture(architecture: str, base_model: str | None = None, prompt: str = "",
                                  quality: str = "balanced") -> dict[str, Any]:
    """A plan with only a family's default settings (a sampler node with no plan connected)."""
    req = PlanRequest(prompt=prompt, quality=quality if quality in QUALITIES else "balanced")
    plan = start_plan(req, analyze_keywords(prompt) if prompt else PromptAnalysis(aspect="square"))
    return describe_loaded_model(plan, architecture, base_model)


# --- LoRAs -----------------------------------------------------------------------------------------

def _strength(r: ModelRecord, compatibility: str) -> tuple[float, str]:
    """(strength, why) before scaling: the author's preference, else the range's middle, else a default."""
    lo_hi = r.strength_range if r.strength_range and r.strength_range[0] <= r.strength_range[1] else None
    if r.preferred_weight and r.preferred_weight > 0:
        s, why = float(r.preferred_weight), f"the author's preferred weight {r.preferred_weight:g}"
    elif lo_hi:
        s, why = (lo_hi[0] + lo_hi[1]) / 2.0, f"the middle of the recommended range {lo_hi[0]:g}-{lo_hi[1]:g}"
    else:
        s, why = (0.8, "default 0.8") if compatibility == "full" else (0.6, "default 0.6 for a partial fit")
        return s, why
    if compatibility == "partial":
        s *= 0.85
        why += ", lowered for a partial fit"
    if lo_hi:
        s = min(lo_hi[1], max(lo_hi[0], s))
    return s, why


def _pick_triggers(r: ModelRecord, query: Query) -> list[str]:
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


def _inject_triggers(positive: str, loras: list[dict[str, Any]]) -> tuple[str, list[str]]:
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


def choose_loras(plan: dict[str, Any], lora_records: Library | Iterable[ModelRecord], overrides: Any = None,
                 max_loras: int | None = None, strength_scale: float = 1.0, *,
                 max_nsfw_level: int = 2, meaning: Meaning | None = None) -> dict[str, Any]:
    """Pick the LoRAs for the plan's checkpoint, their strengths and trigger words; finish the prompt.

    `lora_records`: a Library (the LoRAs worth scoring are retrieved from it by the prompt's
    words, and by meaning when `meaning` has the library's vectors) or records (all of them are
    scored). Only LoRAs compatible with the checkpoint are
    considered ("partial" ones with a penalty, and recorded). Pins (overrides.loras, `<lora:...>` in the prompt) are always used when they can
    load, even beyond `max_loras`; an incompatible or unknown pin becomes a warning. Excludes
    (overrides.exclude, sidecar `exclude`) are never picked automatically.
    """
    plan = copy.deepcopy(dict(plan))
    ov = _merged_overrides(plan, overrides)
    analysis = _analysis_of(plan)
    req = _request_of(plan)
    prompt_part = plan.setdefault("prompt", {})
    base_positive = prompt_part.get("base_positive", prompt_part.get("positive", ""))
    plan.setdefault("candidates", {"checkpoints": [], "loras": []})
    plan.setdefault("warnings", [])
    ckpt = plan.get("checkpoint")
    # the request's own max_loras wins; the caller's value (a node widget, the setting) is the default
    limit = ov.get("max_loras", max_loras if max_loras is not None else DEFAULT_MAX_LORAS)
    limit = max(0, min(MAX_LORAS_LIMIT, int(limit)))
    scale = float(strength_scale) if _is_number(strength_scale) and strength_scale >= 0 else 1.0
    source = as_source(lora_records, "lora")

    if not ckpt or not ckpt.get("architecture") or (
            ckpt.get("architecture") == "unknown" and not base_models.is_known(ckpt.get("base_model"))):
        plan["loras"] = []
        plan["candidates"]["loras"] = []
        prompt_part["positive"] = base_positive
        plan["warnings"].append("no checkpoint family known: LoRAs are left out (they must match the model)")
        return plan

    ctx = LoraContext(ckpt["architecture"], ckpt.get("base_model") or "Unknown", bool(ckpt.get("guessed_architecture")))
    query = build_query(analysis, req.get("prompt", "") or "")
    excl = _excluded_keys(ov)
    warnings: list[str] = []

    # Pins first.
    pins = [dict(p) for p in ov.get("loras", ())] + [dict(p) for p in req.get("prompt_loras", ()) or ()]
    selected: list[dict[str, Any]] = []
    chosen_names: set[str] = set()
    # read only when there is a pin to look up (the names of a Library's LoRAs once per scan)
    everything = all_records(source, "lora") if pins and not is_library(source) else []
    names = None if not pins else (
        per_generation(source, "lora names", lambda lib: _Names(lib.records("lora")))  # type: ignore[arg-type]
        if is_library(source) else _Names(everything))
    unknown: dict[str, None] = {}
    for pin in pins:
        found = names.find(pin["name"]) if names is not None else []
        if not found:
            if pin["name"] not in unknown and len(unknown) < UNKNOWN_PINS_SHOWN:
                everything = everything or all_records(source, "lora")  # (a Library's, for a pin it lacks)
                close = _close_names(everything, pin["name"])
                warnings.append(f"pinned LoRA {pin['name']!r} is not in the library"
                                + (f" (close: {', '.join(close)})" if close else ""))
            unknown[pin["name"]] = None
            continue
        r = found[0]
        if r.name in chosen_names:
            continue
        if _is_excluded(r, excl):
            warnings.append(f"pinned LoRA {r.name} is also excluded by the request: left out")
            continue
        comp = compat.lora_compatibility(r, ctx.architecture, ctx.base_model, ctx.guessed)
        if comp is None:
            warnings.append(f"pinned LoRA {r.name} ({r.base_model}) cannot load on the {ctx.base_model} "
                            f"({ctx.architecture}) checkpoint: left out")
            continue
        reasons = ["pinned by the request"]
        if comp == "partial":
            reasons.append(f"partial fit: a {r.base_model} LoRA on a {ctx.base_model} checkpoint")
        if r.excluded:
            reasons.append("marked 'exclude' in its metadata, used because it was pinned")
        if pin.get("strength") is not None:
            strength, why, exact = float(pin["strength"]), "the pinned strength", True
        else:
            strength, why = _strength(r, comp)
            exact = False
        own = score_loras([r], analysis, query, ctx, max_nsfw_level=100)[0]
        selected.append({"record": r, "score": own[0] if own else None, "compatibility": comp, "reasons": reasons,
                         "strength": strength, "strength_why": why, "exact": exact, "pinned": True,
                         "found_by": ["pin"]})
        chosen_names.add(r.name)

    if len(unknown) > UNKNOWN_PINS_SHOWN:
        warnings.append(f"{len(unknown) - UNKNOWN_PINS_SHOWN} more pinned LoRAs are not in the library")

    # Then the best matches, up to the limit.
    auto_slots = max(0, limit - len(selected))
    similar = _similar(meaning, req, ctx.architecture)
    retrieved = retrieve_loras(source, query, ctx.architecture, similar=similar)
    scores, pool = score_loras(retrieved.records, analysis, query, ctx, max_nsfw_level,
                               pool_size=compatible_count(source, ctx), similarity=retrieved.similarity(),
                               skip=lambda r: r.excluded or r.name in chosen_names or _is_excluded(r, excl))
    # A pin covers its concepts: no second LoRA for the same thing.
    covered: set[str] = {t for item in selected if item["score"] is not None
                         for t in item["score"].matched if counts_for_coverage(t)}
    picked, notes = stack_by_coverage(scores, auto_slots, covered, pinned=bool(selected))
    for s in picked:
        strength, why = _strength(s.record, s.compatibility or "full")
        reasons = list(s.reasons)
        if s.compatibility == "partial":
            reasons.append(f"partial fit: a {s.record.base_model} LoRA on a {ctx.base_model} checkpoint")
        selected.append({"record": s.record, "score": s, "compatibility": s.compatibility, "reasons": reasons,
                         "strength": strength, "strength_why": why, "exact": False, "pinned": False,
                         "found_by": ["meaning"] if s.by_meaning_alone else retrieved.found_by(s.record)})
    if limit == 0 and scores:
        notes.setdefault(scores[0].record.name, "max_loras is 0")

    # Strengths: scaled, and eased when several stack.
    n = len(selected)
    stack_factor = max(0.7, 1.0 - 0.1 * (n - 2)) if n >= 3 else 1.0
    loras: list[dict[str, Any]] = []
    for item in selected:
        r = item["record"]
        strength = item["strength"]
        why = item["strength_why"]
        if not item["exact"]:
            if scale != 1.0:
                strength *= scale
                why += f", x{scale:g} strength scale"
            if stack_factor != 1.0:
                strength *= stack_factor
                why += f", x{stack_factor:g} with {n} LoRAs stacked"
        strength = round(strength, 2)
        triggers = _pick_triggers(r, query)
        score_val = round(item["score"].total, 2) if item["score"] is not None else 0.0
        reasons = item["reasons"] + [f"strength {strength:g}: {why}"]
        loras.append({"name": r.name, "strength_model": strength, "strength_clip": strength,
                      "trigger_words": triggers, "score": score_val, "compatibility": item["compatibility"],
                      "found_by": item["found_by"], "reasons": reasons, "pinned": item["pinned"], "title": r.title,
                      "base_model": r.base_model})

    positive, added = _inject_triggers(base_positive, loras)
    for lora in loras:
        mine = [t for t in lora["trigger_words"] if t.strip() in added]
        if mine:
            lora["reasons"].append("trigger words added to the prompt: " + ", ".join(mine))
        elif lora["trigger_words"]:
            lora["reasons"].append("its trigger words are already in the prompt")
        else:
            lora["reasons"].append("no trigger words needed")
    prompt_part["positive"] = positive
    prompt_part["trigger_words_added"] = added
    plan["loras"] = loras
    chosen = {lo["name"] for lo in loras}
    plan["candidates"]["loras"] = [
        {**s.candidate(), "compatibility": s.compatibility, "relevance": round(s.relevance, 2),
         "selected": s.record.name in chosen,
         "note": notes.get(s.record.name) or ("" if s.usable else (s.reasons[-1] if s.reasons else ""))}
        for s in scores[:LORA_CANDIDATES_SHOWN]]
    plan["candidates"]["lora_pool"] = pool
    plan.setdefault("analysis", {})["retrieval"] = RETRIEVAL_WORDS if similar is None else RETRIEVAL_MEANING
    if not loras:
        plan["candidates"]["lora_note"] = (
            "max_loras is 0" if limit == 0 else
            f"no compatible LoRA matches the prompt well enough ({pool} compatible LoRAs looked at)")
    plan["warnings"].extend(w for w in warnings if w not in plan["warnings"])
    log.debug("LoRAs %s from %d compatible", [lo["name"] for lo in loras], pool)
    return plan


# --- the whole plan, and its summary -------------------------------------------------------------

def build_plan(request: PlanRequest | Mapping[str, Any], records: Library | Iterable[ModelRecord],
               analysis: PromptAnalysis | None = None, *, valid_samplers: Sequence[str] | None = None,
               valid_schedulers: Sequence[str] | None = None, max_nsfw_level: int = 2,
               max_loras: int | None = None, strength_scale: float = 1.0,
               meaning: Meaning | None = None) -> dict[str, Any]:
    """start -> checkpoint -> LoRAs over a Library (LoRAs retrieved by words), or over one sequence of
    records of all kinds (every LoRA scored)."""
    req = request if isinstance(request, PlanRequest) else parse_request(request)
    if analysis is None:
        analysis = analyze_keywords(req.prompt, req.negative_prompt or "", req.style)
    source = as_source(records)
    plan = start_plan(req, analysis)
    plan = choose_checkpoint(plan, source, valid_samplers=valid_samplers, valid_schedulers=valid_schedulers,
                             max_nsfw_level=max_nsfw_level, meaning=meaning)
    return choose_loras(plan, source, max_loras=max_loras,
                        strength_scale=strength_scale, max_nsfw_level=max_nsfw_level, meaning=meaning)


def plan_summary(plan: Mapping[str, Any]) -> str:
    """A human report of the plan: what was chosen and why, the settings, the prompt, warnings."""
    lines: list[str] = []
    a = plan.get("analysis") or {}
    if a:
        src = a.get("source", "keywords")
        lines.append(f"Prompt read as {a.get('style')} {a.get('content_type')} ({src} analysis)"
                     + (f"; concepts: {', '.join(a.get('key_concepts') or [])}" if a.get("key_concepts") else ""))
        if a.get("fallback_reason"):
            lines.append(f"  note: {a['fallback_reason']}")
    ck = plan.get("checkpoint")
    if ck:
        label = ck.get("name") or "(loaded model)"
        lines.append(f"Checkpoint: {label} [{ck.get('architecture')}, {ck.get('base_model')}]"
                     + (f" score {ck.get('score'):.1f}" if isinstance(ck.get("score"), (int, float)) and ck.get("name") else ""))
        for r in (ck.get("reasons") or [])[:6]:
            lines.append(f"  - {r}")
    else:
        lines.append("Checkpoint: not chosen yet")
    for te in plan.get("text_encoders") or []:
        lines.append(f"Text encoder: {te.get('name')} ({'; '.join(te.get('reasons') or [])})")
    vae = plan.get("vae") or {}
    if ck:
        lines.append(f"VAE: {vae.get('name') or 'built in'}" + (f" ({'; '.join(vae.get('reasons') or [])})"
                                                             if vae.get("reasons") else ""))
    loras = plan.get("loras") or []
    if loras:
        lines.append("LoRAs:")
        for lo in loras:
            trig = f"; triggers: {', '.join(lo.get('trigger_words') or [])}" if lo.get("trigger_words") else ""
            lines.append(f"  - {lo.get('name')} @ {lo.get('strength_model')}/{lo.get('strength_clip')} "
                         f"[{lo.get('compatibility')}]{trig}")
            for r in (lo.get("reasons") or [])[:4]:
                lines.append(f"      {r}")
    elif ck:
        note = (plan.get("candidates") or {}).get("lora_note")
        lines.append("LoRAs: none" + (f" ({note})" if note else ""))
    s = plan.get("settings") or {}
    if s:
        seed = s.get("seed")
        lines.append(f"Settings: {s.get('steps')} steps, cfg {s.get('cfg')}"
                     + (f", guidance {s.get('guidance')}" if s.get("guidance") is not None else "")
                     + f", {s.get('sampler_name')}/{s.get('scheduler')}, {s.get('width')}x{s.get('height')}"
                     + f", batch {s.get('batch_size')}, clip skip {s.get('clip_skip')}"
                     + f", seed {seed if seed is not None else 'random'}, denoise {s.get('denoise')}")
        for r in (plan.get("settings_reasons") or [])[1:11]:
            lines.append(f"  - {r}")
    p = plan.get("prompt") or {}
    if p:
        lines.append(f"Positive: {p.get('positive', '')}")
        lines.append(f"Negative: {p.get('negative', '')}")
    mem = plan.get("memory") or {}
    if mem.get("reasons") or mem.get("actions"):
        lines.append(f"Memory: {mem.get('level')} (need {mem.get('need_gb')} GB, free {mem.get('free_gb')} GB)"
                     + (f"; actions: {', '.join(mem.get('actions') or [])}" if mem.get("actions") else ""))
    for w in plan.get("warnings") or []:
        lines.append(f"Warning: {w}")
    return "\n".join(lines)
