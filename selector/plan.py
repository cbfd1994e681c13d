"""The plan document and its plumbing: its version and shape, the error a library cannot satisfy,
a plan's request, overrides, analysis and quality read back, and `start_plan`, the first stage."""
from __future__ import annotations

from typing import Any, Mapping

from ..metadata import base_models
from . import architectures as A
from .analysis import PromptAnalysis, analyze_keywords
from .generation import settings_for
from .request import QUALITIES, PlanRequest, parse_overrides, parse_request
from .text import extract_prompt_loras

PLAN_VERSION = 1
RETRIEVAL_WORDS = "words"  # analysis.retrieval: LoRAs found by their words (contracts.md)
RETRIEVAL_MEANING = "words+meaning"  # ... and by the meaning of their texts (selector/meaning.py)
CANDIDATES_SHOWN = 5
LORA_CANDIDATES_SHOWN = 10
UNKNOWN_PINS_SHOWN = 5  # pins not in the library that get a warning of their own (with close names)


class PlanError(ValueError):
    """A valid request the library cannot satisfy (no usable checkpoint, a pin that matches nothing).

    `field` names the request field at fault when there is one (a pin), else None."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _empty_memory() -> dict[str, Any]:
    return {"level": "NONE", "need_gb": 0, "free_gb": None, "actions": [], "reasons": []}


def request_of(plan: Mapping[str, Any]) -> dict[str, Any]:
    req = plan.get("request")
    return req if isinstance(req, dict) else {}


def merged_overrides(plan: Mapping[str, Any], overrides: Any) -> dict[str, Any]:
    """The request's overrides with the stage's own on top (a node's widgets)."""
    merged = parse_overrides(request_of(plan).get("overrides") or {})
    if isinstance(overrides, PlanRequest):
        overrides = overrides.overrides
    merged.update(parse_overrides(overrides))
    return merged


def analysis_of(plan: Mapping[str, Any]) -> PromptAnalysis:
    return PromptAnalysis.from_dict(plan.get("analysis") if isinstance(plan.get("analysis"), Mapping) else None)


def quality_of(plan: Mapping[str, Any]) -> str:
    q = request_of(plan).get("quality")
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
                    "prompt_loras": [{"name": n, **({"strength": s} if s is not None else {})}
                                     for n, s in prompt_loras]},
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
    settings, reasons, warnings = settings_for(spec, None, analysis, req.quality, ov, None, None)
    plan["settings"], plan["settings_reasons"] = settings, reasons
    plan["warnings"].extend(warnings)
    return plan

