"""Which LoRAs a plan stacks on its checkpoint and at what strengths: pins first, then the best
matches up to the limit; and the final prompt with their trigger words."""
from __future__ import annotations

import copy
import logging
from typing import Any, Iterable

from ..metadata import base_models
from ..metadata.records import ModelRecord
from . import compat
from .checkpoint_choice import similar_for
from .coverage import counts_for_coverage, stack_by_coverage
from .llm import where
from .meaning import Meaning
from .names import Names, close_names, excluded_keys, is_excluded
from .plan import (
    LORA_CANDIDATES_SHOWN,
    RETRIEVAL_MEANING,
    RETRIEVAL_WORDS,
    UNKNOWN_PINS_SHOWN,
    analysis_of,
    merged_overrides,
    request_of,
)
from .prompt_text import inject_triggers, pick_triggers
from .request import DEFAULT_MAX_LORAS, MAX_LORAS_LIMIT, is_number
from .retrieval import Library, all_records, as_source, compatible_count, is_library, per_generation, retrieve_loras
from .scoring import MEANING_FLOOR, LoraContext, build_query, pick_problem, score_loras

log = logging.getLogger(__name__)


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



def choose_loras(plan: dict[str, Any], lora_records: Library | Iterable[ModelRecord], overrides: Any = None,
                 max_loras: int | None = None, strength_scale: float = 1.0, *,
                 max_nsfw_level: int = 2, meaning: Meaning | None = None) -> dict[str, Any]:
    """Pick the LoRAs for the plan's checkpoint, their strengths and trigger words; finish the prompt.

    `lora_records`: a Library (the LoRAs worth scoring are retrieved from it by the prompt's
    words, and by meaning when `meaning` has the library's vectors) or records (all of them are
    scored). Only LoRAs compatible with the checkpoint are considered ("partial" ones with a
    penalty, and recorded). Pins (overrides.loras, `<lora:...>` in the prompt) are always used when
    they can load, even beyond `max_loras`; an incompatible or unknown pin becomes a warning.
    Excludes (overrides.exclude, sidecar `exclude`) are never picked automatically.
    """
    plan = copy.deepcopy(dict(plan))
    ov = merged_overrides(plan, overrides)
    analysis = analysis_of(plan)
    req = request_of(plan)
    prompt_part = plan.setdefault("prompt", {})
    base_positive = prompt_part.get("base_positive", prompt_part.get("positive", ""))
    plan.setdefault("candidates", {"checkpoints": [], "loras": []})
    plan.setdefault("warnings", [])
    ckpt = plan.get("checkpoint")
    # the request's own max_loras wins; the caller's value (a node widget, the setting) is the default
    limit = ov.get("max_loras", max_loras if max_loras is not None else DEFAULT_MAX_LORAS)
    limit = max(0, min(MAX_LORAS_LIMIT, int(limit)))
    scale = float(strength_scale) if is_number(strength_scale) and strength_scale >= 0 else 1.0
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
    excl = excluded_keys(ov)
    warnings: list[str] = []

    # Pins first.
    pins = [dict(p) for p in ov.get("loras", ())] + [dict(p) for p in req.get("prompt_loras", ()) or ()]
    selected: list[dict[str, Any]] = []
    chosen_names: set[str] = set()
    # read only when there is a pin to look up (the names of a Library's LoRAs once per scan)
    everything = all_records(source, "lora") if pins and not is_library(source) else []
    names = None if not pins else (
        per_generation(source, "lora names", lambda lib: Names(lib.records("lora")))  # type: ignore[arg-type]
        if is_library(source) else Names(everything))
    unknown: dict[str, None] = {}
    for pin in pins:
        found = names.find(pin["name"]) if names is not None else []
        if not found:
            if pin["name"] not in unknown and len(unknown) < UNKNOWN_PINS_SHOWN:
                everything = everything or all_records(source, "lora")  # (a Library's, for a pin it lacks)
                close = close_names(everything, pin["name"])
                warnings.append(f"pinned LoRA {pin['name']!r} is not in the library"
                                + (f" (close: {', '.join(close)})" if close else ""))
            unknown[pin["name"]] = None
            continue
        r = found[0]
        if r.name in chosen_names:
            continue
        if is_excluded(r, excl):
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

    # Then the LLM's picks (selector/llm_choice.py), when they load here and pass the same rules,
    # and say something of the prompt (a word of it, or a text at least MEANING_FLOOR like it).
    similar = similar_for(meaning, req, ctx.architecture)
    llm = plan["candidates"].get("llm") or {}
    for name in llm.get("loras", ()):
        r = next((x for x in source if x.name == name), None) if isinstance(source, list) else \
            source.get("lora", name)
        if r is None or r.name in chosen_names:
            continue
        if len(selected) >= limit:
            warnings.append(f"the LLM chose {r.name}: not stacked, max_loras ({limit}) is reached")
            continue
        comp = compat.lora_compatibility(r, ctx.architecture, ctx.base_model, ctx.guessed)
        sim = similar.of((r.kind, r.name)) if similar is not None else None
        own_matches = score_loras([r], analysis, query, ctx, max_nsfw_level=100, compatibility=lambda x: "full")[0]
        problem = ("cannot load on the checkpoint" if comp is None else
                   "excluded" if r.excluded or is_excluded(r, excl) else
                   pick_problem(r, analysis, query, max_nsfw_level) or
                   (None if own_matches or (sim is not None and sim >= MEANING_FLOOR) else
                    "it shares no word with the prompt and its text is unlike it"))
        if problem is not None:
            warnings.append(f"the LLM chose {r.name}: not stacked, {problem}")
            continue
        strength, why = _strength(r, comp or "full")
        own = score_loras([r], analysis, query, ctx, max_nsfw_level=100)[0]
        selected.append({"record": r, "score": own[0] if own else None, "compatibility": comp,
                         "reasons": [f"chosen by the LLM ({where(llm)}) among the LoRAs retrieved for the prompt"],
                         "strength": strength, "strength_why": why, "exact": False, "pinned": False,
                         "found_by": ["llm"]})
        chosen_names.add(r.name)

    # Then the best matches, up to the limit.
    retrieved = retrieve_loras(source, query, ctx.architecture, similar=similar)
    scores, pool = score_loras(retrieved.records, analysis, query, ctx, max_nsfw_level,
                               pool_size=compatible_count(source, ctx), similarity=retrieved.similarity(),
                               skip=lambda r: r.excluded or r.name in chosen_names or is_excluded(r, excl))
    # A pin covers its concepts: no second LoRA for the same thing.
    covered: set[str] = {t for item in selected if item["score"] is not None
                         for t in item["score"].matched if counts_for_coverage(t)}
    picked, notes = stack_by_coverage(scores, max(0, limit - len(selected)), covered,
                                      pinned=any(item["pinned"] or item["found_by"] == ["llm"] for item in selected))
    for item in selected:  # how retrieval found the LLM's picks too
        if item["found_by"] == ["llm"] and item["record"] in retrieved.records:
            item["found_by"] = ["llm", *retrieved.found_by(item["record"])]
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
        triggers = pick_triggers(r, query)
        score_val = round(item["score"].total, 2) if item["score"] is not None else 0.0
        reasons = item["reasons"] + [f"strength {strength:g}: {why}"]
        loras.append({"name": r.name, "strength_model": strength, "strength_clip": strength,
                      "trigger_words": triggers, "score": score_val, "compatibility": item["compatibility"],
                      "found_by": item["found_by"], "reasons": reasons, "pinned": item["pinned"], "title": r.title,
                      "base_model": r.base_model})

    positive, added = inject_triggers(base_positive, loras)
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
