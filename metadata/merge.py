"""Combine what every source says about one model into ModelRecord fields.

One place for the order of trust (formats.md, "Refreshes that overwrite good metadata with
worse"): explicit sidecars (lora-manager > civitai-info > rgthree > cm-info > a1111 > pysssss)
> trainer metadata in the header > what the tensors look like. A higher source's non-empty
value wins field by field; tags and trigger words are unioned; an "Unknown" base model never
replaces a known one; and the tensors overrule any source whose base model is of another
architecture, because loading an SD 1.5 LoRA on SDXL silently does nothing.
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

from . import base_models
from .architecture import Detection
from .safe_open import printable
from .sidecars import Facts, union

log = logging.getLogger(__name__)

_UNION_FIELDS = ("tags", "trigger_words")
_ANY_FIELDS = ("nsfw", "excluded")  # a safety or user flag from any source counts
_MAX_FIELDS = ("nsfw_level",)


def merge(facts: Sequence[Facts], detection: Detection | None, *, kind: str, title: str) -> dict[str, Any]:
    """ModelRecord keyword arguments (facts fields, architecture, base_model, extra, problems).

    `title` is the fallback display name (the file stem).
    """
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
    architecture, base, base_source, problem = resolve_architecture(base, base_source, detection)
    values["architecture"] = architecture
    values["base_model"] = base

    extra: dict[str, Any] = dict(detection.extra) if detection else {}
    for f in reversed(ordered):  # higher sources last, so they win
        extra.update(f.extra)
    if detection is not None and detection.architecture != "unknown":
        extra["detected_architecture"] = detection.architecture
    if base_source:
        extra["base_model_source"] = base_source
    values["extra"] = extra

    if detection is not None and kind in ("checkpoint", "diffusion_model"):
        values["has_vae"] = detection.has_vae
    problems = [p for f in ordered for p in f.problems]
    if problem:
        problems.append(problem)
    values["problems"] = tuple(problems)
    return values


def pick_base_model(ordered: Sequence[Facts]) -> tuple[str, str]:
    """(base model, source): the most trusted known one, else any non-empty one ("Other")."""
    fallback = ("", "")
    for f in ordered:
        value = f.fields.get("base_model")
        if not isinstance(value, str) or not value.strip():
            continue
        if base_models.is_known(value):
            return value.strip(), f.source
        if not fallback[0] and value.strip().lower() != "unknown":
            fallback = (value.strip(), f.source)
    return fallback


def resolve_architecture(base: str, base_source: str, detection: Detection | None) -> tuple[str, str, str, str | None]:
    """(architecture, base model, base model source, problem or None)."""
    claimed = base_models.architecture(base) if base_models.is_known(base) else "unknown"
    detected = detection.architecture if detection is not None else "unknown"
    if detection is not None and detection.confident and claimed not in ("unknown", detected):
        problem = (f"{base_source} says base model {base!r} ({claimed}) but the tensors are {detected} "
                   f"({detection.evidence}); using {detection.base_model!r}")
        log.info("architecture conflict: %s", printable(problem, 500))
        return detected, detection.base_model, "header", problem
    if claimed != "unknown":
        return claimed, base, base_source, None
    if detection is not None and (detected != "unknown" or base_models.is_known(detection.base_model)):
        if base_models.is_known(base):  # a base model ComfyUI has no architecture for, e.g. "Chroma"
            return detected, base, base_source, None
        return detected, detection.base_model, "header-guess", None
    return "unknown", base or "Unknown", base_source, None
