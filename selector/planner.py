"""The plan's entry point: `build_plan`, the staged decisions the nodes and the route share, in order.

A plan is built in stages so each node adds its part and the next one knows what came before:
`start_plan` (analysis, prompt) -> `choose_checkpoint` (model, VAE, text encoders, settings) ->
`choose_loras` (LoRAs, trigger words, final prompt); the memory part is filled by `monitor/`.
Every stage returns a new plan (deep copy) and never changes the one it was given, because
ComfyUI caches node outputs and an upstream plan must stay as it was. Everything in a plan is
plain JSON data, and every decision in it carries its reasons.

Each decision lives in a module of its own (request, names, plan, generation, prompt_text,
checkpoint_choice, lora_choice, report); this one re-exports the names callers import from it.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from ..metadata.records import ModelRecord
from .analysis import PromptAnalysis, analyze_keywords
from .checkpoint_choice import choose_checkpoint, default_plan_for_architecture, describe_loaded_model
from .llm import OllamaAnalyst
from .llm_choice import consult_llm
from .lora_choice import choose_loras
from .meaning import Meaning
from .plan import UNKNOWN_PINS_SHOWN, PlanError, start_plan
from .report import plan_summary
from .request import MAX_PROMPT_CHARS, PlanRequest, PlanRequestError, parse_overrides, parse_request
from .retrieval import Library, as_source

__all__ = [
    "MAX_PROMPT_CHARS",
    "UNKNOWN_PINS_SHOWN",
    "PlanError",
    "PlanRequest",
    "PlanRequestError",
    "build_plan",
    "choose_checkpoint",
    "choose_loras",
    "consult_llm",
    "default_plan_for_architecture",
    "describe_loaded_model",
    "parse_overrides",
    "parse_request",
    "plan_summary",
    "start_plan",
]


def build_plan(request: PlanRequest | Mapping[str, Any], records: Library | Iterable[ModelRecord],
               analysis: PromptAnalysis | None = None, *, valid_samplers: Sequence[str] | None = None,
               valid_schedulers: Sequence[str] | None = None, max_nsfw_level: int = 2,
               max_loras: int | None = None, strength_scale: float = 1.0,
               meaning: Meaning | None = None, llm: OllamaAnalyst | None = None) -> dict[str, Any]:
    """start -> checkpoint -> LoRAs over a Library (LoRAs retrieved by words, and by meaning with
    `meaning`), or over one sequence of records of all kinds (every LoRA scored); with `llm`, the
    LLM's analysis and picks among the candidates retrieved for the prompt (selector/llm_choice.py)."""
    req = request if isinstance(request, PlanRequest) else parse_request(request)
    if analysis is None:
        analysis = analyze_keywords(req.prompt, req.negative_prompt or "", req.style)
    source = as_source(records)
    plan = start_plan(req, analysis)
    if llm is not None:
        plan = consult_llm(plan, source, llm, meaning=meaning, max_nsfw_level=max_nsfw_level)
    plan = choose_checkpoint(plan, source, valid_samplers=valid_samplers, valid_schedulers=valid_schedulers,
                             max_nsfw_level=max_nsfw_level, meaning=meaning)
    return choose_loras(plan, source, max_loras=max_loras,
                        strength_scale=strength_scale, max_nsfw_level=max_nsfw_level, meaning=meaning)
