"""Combine what every source says about one model into ModelRecord fields.

Precedence (formats.md, "Refreshes that overwrite good metadata with worse"):

1. Field by field, the most trusted source with a non-empty value wins: explicit sidecars
   (lora-manager > civitai-info > rgthree > cm-info > api-info > a1111 > pysssss), then trainer metadata in
   the header. Tags and trigger words are unioned; safety and user flags count from any source.
   Lora-Manager's own fields are the ones its user edits, so they rank first.
2. Base model: the most trusted known one, except that a *richer* spelling of the same model from
   any source replaces it (base_models.richer): Lora-Manager shortens `civitai.baseModel` ("Pony"
   for "Pony V7", "SDXL 1.0" for "SDXL Lightning"), so the richer CivitAI string is kept. Richer is
   never replaced by poorer, and a value naming another model (a user's correction) is never
   replaced at all. "Unknown"/"Other" never replace a known base model. The tensors' own base model
   counts as a richer spelling where it refines the claim inside the claimed family (merge._refinement).
3. The tensors (metadata/detection.py) overrule that base model only with decisive evidence (names
   and shapes only the candidate families have) and only when it names a family outside the
   candidates; a guess never replaces a sidecar: the sidecar stands and the disagreement is one
   line in `problems`. With no known base model from any source, the detection's guess is used.

Every record gets `family` (CivitAI group id) and `confidence` (how sure that family is, 0..1).
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

from . import base_models
from . import families as F
from .detection import Detection
from .safe_open import printable
from .sidecars import HEADER_SOURCE, Facts, union

log = logging.getLogger(__name__)

_UNION_FIELDS = ("tags", "trigger_words")
_ANY_FIELDS = ("nsfw", "excluded")  # a safety or user flag from any source counts
_MAX_FIELDS = ("nsfw_level",)
RICHER_BASE_MODEL_EXTRA = "civitai_base_model"  # a source's second, CivitAI-written base model

# How sure a family is when it comes from a source's base model (before the tensors are heard).
_CLAIM_CONFIDENCE = {"lora-manager": 0.85, "civitai-info": 0.85, "api-info": 0.85, "civitai-cache": 0.85, "rgthree": 0.8,
                     "cm-info": 0.8, "a1111": 0.6, HEADER_SOURCE: 0.6}


def merge(facts: Sequence[Facts], detection: Detection | None, *, kind: str, title: str) -> dict[str, Any]:
    """ModelRecord keyword arguments (facts fields, architecture, family, confidence, base_model,
    extra, problems). `title` is the fallback display name (the file stem)."""
    ordered = sorted(facts, key=lambda f: f.rank)  # stable: equal ranks keep their order
    values: dict[str, Any] = {}
    for f in ordered:
        for key, value in f.fields.items():
            if key == "base_model":
                continue
            if key in _UNION_FIELDS:
                values[key] = union(values.get(key, ()), value)
            elif key in _ANY_FIELDS:
                values[key] = bool(values.get(key)) or bool(value)
            elif key in _MAX_FIELDS:
                values[key] = max(values.get(key, 0), value)
            else:
                values.setdefault(key, value)
    values.setdefault("title", title)

    base, base_source = pick_base_model(ordered)
    resolved = resolve(base, base_source, detection)
    values["architecture"] = resolved.architecture
    values["base_model"] = resolved.base_model
    values["family"] = resolved.family
    values["confidence"] = resolved.confidence

    extra: dict[str, Any] = dict(detection.extra) if detection else {}
    for f in reversed(ordered):  # higher sources last, so they win
        extra.update(f.extra)
    if detection is not None and (detection.family != "unknown" or detection.architecture != "unknown"):
        extra["detected_architecture"] = detection.architecture
        extra["detected_family"] = detection.family
        extra["detection_confidence"] = detection.confidence
        extra["detection_evidence"] = detection.evidence
    if resolved.source:
        extra["base_model_source"] = resolved.source
    values["extra"] = extra

    if detection is not None and kind in ("checkpoint", "diffusion_model"):
        values["has_vae"] = detection.has_vae
    problems = [p for f in ordered for p in f.problems]
    if resolved.problem:
        problems.append(resolved.problem)
    values["problems"] = tuple(problems)
    return values


def pick_base_model(ordered: Sequence[Facts]) -> tuple[str, str]:
    """(base model, source): the most trusted known one, or a richer spelling of it; else any
    non-empty one ("Other"). `ordered` is by trust, most trusted first."""
    best, best_source = "", ""
    fallback = ("", "")
    for f in ordered:
        for value in (f.fields.get("base_model"), f.extra.get(RICHER_BASE_MODEL_EXTRA)):
            if not isinstance(value, str) or not value.strip():
                continue
            value = value.strip()
            if base_models.is_known(value):
                if not best or base_models.richer(value, best):
                    best, best_source = value, f.source
            elif not fallback[0] and value.lower() != "unknown":
                fallback = (value, f.source)
    return (best, best_source) if best else fallback


class Resolved:
    """The record's family as decided from the claimed base model and the tensors."""

    __slots__ = ("architecture", "base_model", "family", "confidence", "source", "problem")

    def __init__(self, architecture: str, base_model: str, family: str, confidence: float, source: str,
                 problem: str | None = None):
        self.architecture = architecture
        self.base_model = base_model
        self.family = family
        self.confidence = round(min(1.0, max(0.0, confidence)), 2)
        self.source = source
        self.problem = problem


def _fuller_name(base: str, det: Detection) -> str | None:
    """A base model of the detected candidates that `base` is a shortening of, if exactly one."""
    names = [n for n, g in F.BASE_MODELS.items() if g in det.candidates and n not in det.excludes
             and base_models.richer(n, base)]
    return names[0] if len(names) == 1 else None


def _refinement(base: str, base_source: str, claimed: str, det: Detection) -> Resolved | None:
    """The tensors' base model where it names the claimed one more precisely ("Wan Video 1.3B t2v"
    for a trainer's or a sidecar's "Wan Video"), or None. From a sidecar only when the tensors are
    decisive and allow no other group but the claimed one; from the file's own trainer metadata
    (which names a lineage, "wan2.1", rarely a model) their best guess is enough, since it stays
    inside what the trainer said."""
    if det.family in ("unknown", claimed) or not base_models.richer(det.base_model, base):
        return None
    unique = det.decisive and det.candidates - {claimed} == {det.family}
    if not (unique or base_source == HEADER_SOURCE):
        return None
    conf = max(det.confidence, _CLAIM_CONFIDENCE.get(base_source, 0.7)) if unique else det.confidence
    return Resolved(det.architecture, det.base_model, det.family, conf, "header")


def resolve(base: str, base_source: str, detection: Detection | None) -> Resolved:
    """Family, architecture and base model from a claimed base model and the tensors (module doc, 3)."""
    claimed = base_models.family(base) if base_models.is_known(base) else "unknown"
    det = detection if detection is not None else Detection()
    if claimed not in ("unknown", "Other"):
        claim_conf = _CLAIM_CONFIDENCE.get(base_source, 0.7)
        if det.consistent_with(base):
            refined = _refinement(base, base_source, claimed, det)
            if refined is not None:
                return refined
            agrees = bool(det.candidates)
            conf = max(claim_conf, 0.97 if det.decisive and agrees else claim_conf + (0.05 if agrees else 0.0))
            return Resolved(base_models.family_architecture(claimed), base, claimed, conf, base_source)
        if det.decisive:
            fuller = _fuller_name(base, det)
            if fuller is not None:  # "Pony" on an AuraFlow network is Lora-Manager's "Pony V7"
                fam = base_models.family(fuller)
                problem = (f"{base_source} says base model {base!r}; the tensors are {det.family} "
                           f"({det.architecture}: {det.evidence}), so it is {fuller!r}")
                return Resolved(base_models.family_architecture(fam), fuller, fam, max(det.confidence, 0.9),
                                base_source, problem)
            problem = (f"{base_source} says base model {base!r} (family {claimed}) but the tensors are {det.family} "
                       f"({det.architecture}: {det.evidence}); using {det.base_model!r}")
            log.info("family conflict: %s", printable(problem, 500))
            return Resolved(det.architecture, det.base_model, det.family, det.confidence, "header", problem)
        problem = (f"{base_source} says base model {base!r} (family {claimed}); the tensors suggest {det.family} "
                   f"({det.architecture}: {det.evidence}), not decisively; keeping {base!r}")
        return Resolved(base_models.family_architecture(claimed), base, claimed, min(claim_conf, 0.6), base_source,
                        problem)
    if det.family != "unknown":
        if base_models.is_known(base) and base_models.canonical(base) is None:
            # A base model we have no group for (newer than our table): keep its name, take the family
            # from the tensors only when they are certain.
            fam = det.family if det.decisive else "unknown"
            return Resolved(base_models.family_architecture(fam), base, fam, det.confidence if det.decisive else 0.0,
                            base_source)
        return Resolved(det.architecture, det.base_model, det.family, det.confidence, "header-guess")
    return Resolved(det.architecture, base or "Unknown", base_models.family(base), 0.0, base_source)
