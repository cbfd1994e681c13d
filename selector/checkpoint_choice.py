"""Which checkpoint (or diffusion model and text encoders) and VAE a plan uses, with the settings and
prompt of its family; or the same parts for a model that is already loaded."""
from __future__ import annotations

import copy
import logging
from dataclasses import replace
from typing import Any, Iterable, Mapping, Sequence

from ..metadata import base_models
from ..metadata.records import ModelRecord
from ..metadata.safe_open import printable
from . import architectures as A
from . import compat
from .analysis import PromptAnalysis, analyze_keywords
from .coverage import FAMILY_FIT_MAX, NO_FIT, family_fits
from .generation import settings_for
from .llm import LLM_CHECKPOINT_POINTS, where
from .meaning import Meaning, Similar
from .names import close_names, excluded_keys, find, is_excluded
from .plan import CANDIDATES_SHOWN, PlanError, analysis_of, merged_overrides, quality_of, request_of, start_plan
from .prompt_text import arch_prompt
from .request import DEFAULT_MAX_LORAS, MAX_LORAS_LIMIT, QUALITIES, PlanRequest
from .retrieval import Library, as_source, retrieve_loras
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
)
from .text import extract_prompt_loras

log = logging.getLogger(__name__)

MEANING_LIMIT = 50  # LoRAs most like the prompt in meaning that are looked at (and as many of its family)
CHECKPOINT_KINDS = ("checkpoint", "diffusion_model")


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
        if not r.excluded and not is_excluded(r, excl):
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


def similar_for(meaning: Meaning | None, req: Mapping[str, Any], architecture: str | None = None) -> Similar | None:
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
    ov = merged_overrides(plan, overrides)
    analysis = analysis_of(plan)
    quality = quality if quality in QUALITIES else quality_of(plan)
    req = request_of(plan)
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
    excl = excluded_keys(ov)
    if pinned_name:
        found = find(ckpts, pinned_name)
        if not found:
            close = close_names(ckpts, pinned_name)
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
        llm = plan.get("candidates", {}).get("llm") or {}
        for r in ckpts:
            if r.excluded or is_excluded(r, excl):
                continue
            ok, why, _, _ = usable(r)
            s = score_checkpoint(r, analysis, query, quality, max_nsfw_level, (ok, why))
            if llm.get("checkpoint") == r.name and llm.get("checkpoint_kind") in (None, r.kind) and s.usable:
                s = replace(s, total=s.total + LLM_CHECKPOINT_POINTS,
                            components={**s.components, "llm": LLM_CHECKPOINT_POINTS},
                            reasons=s.reasons + (f"chosen by the LLM ({where(llm)}) among "
                                                 f"{llm.get('candidates', 0)} candidates "
                                                 f"(+{LLM_CHECKPOINT_POINTS:g})",))
            scored.append(s)
        scored.sort(key=lambda s: (not s.usable, -s.total, s.record.name))
        scored = _with_family_fit(scored, lora_source, analysis, query, ov, excl, max_nsfw_level,
                                  similar_for(meaning, req))
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

    settings, s_reasons, s_warnings = settings_for(spec, rec, analysis, quality, ov, valid_samplers, valid_schedulers)
    plan["settings"], plan["settings_reasons"] = settings, s_reasons
    warnings.extend(s_warnings)

    base_positive = extract_prompt_loras(req.get("prompt", "") or plan["prompt"].get("base_positive", ""))[0]
    user_negative = ov.get("negative_prompt", req.get("negative_prompt"))
    positive, negative, p_reasons = arch_prompt(spec, base_positive, analysis.style, user_negative)
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
    analysis = analysis_of(plan)
    ov = merged_overrides(plan, None)
    plan["checkpoint"] = {"name": name, "kind": "checkpoint", "architecture": arch,
                          "family": base_models.public_family(base_models.family(bm)), "base_model": bm, "score": 0.0,
                          "reasons": [f"family {arch} read from the loaded MODEL"], "title": name or "",
                          "guessed_architecture": False}
    settings, reasons, warnings = settings_for(spec, None, analysis, quality_of(plan), ov, None, None)
    plan["settings"], plan["settings_reasons"] = settings, reasons
    req = request_of(plan)
    base_positive = extract_prompt_loras(req.get("prompt", "") or plan.get("prompt", {}).get("base_positive", ""))[0]
    user_negative = ov.get("negative_prompt", req.get("negative_prompt"))
    positive, negative, p_reasons = arch_prompt(spec, base_positive, analysis.style, user_negative)
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

