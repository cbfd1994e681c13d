"""What the LLM is asked for a plan and what of its answer the plan keeps (selector/llm.py asks).

After the keyword analysis, `consult_llm` retrieves the candidates the planner would look at (the
checkpoints a words-only choice ranks first; the LoRAs the prompt's words and meaning find, in
every family), sends their digest, and keeps the answer in the plan: its style (when the request
left it `auto`) in the analysis, its checkpoint and LoRA picks under `candidates.llm`, read by
the checkpoint choice (a bonus, never more) and the LoRA choice (stacked first when they load on
the chosen checkpoint and pass the NSFW ceiling and the character rule). A failure leaves the
keyword analysis with the reason in `analysis.fallback_reason` and a warning.
"""
from __future__ import annotations

import copy
import logging
from typing import Any, Iterable

from ..metadata.records import ModelRecord
from .checkpoint_choice import CHECKPOINT_KINDS, choose_checkpoint, similar_for
from .llm import LlmFailure, OllamaAnalyst, build_digest, is_local_host, where
from .meaning import Meaning
from .plan import PlanError, analysis_of, request_of
from .retrieval import Library, as_source, retrieve_loras
from .scoring import LoraContext, build_query, pick_problem, score_loras
from .text import extract_prompt_loras

log = logging.getLogger(__name__)

STYLE_CONFIDENCE = 0.8  # how sure the analysis is of a style the LLM answered

def _record(source: Library | list[ModelRecord], kinds: Iterable[str], name: str) -> ModelRecord | None:
    for kind in kinds:
        if isinstance(source, list):
            hit = next((r for r in source if r.kind == kind and r.name == name), None)
        else:
            hit = source.get(kind, name)
        if hit is not None:
            return hit
    return None


def consult_llm(plan: dict[str, Any], records: Library | Iterable[ModelRecord], analyst: OllamaAnalyst, *,
                meaning: Meaning | None = None, max_nsfw_level: int = 2) -> dict[str, Any]:
    """The plan with the LLM's analysis and picks (see the module's docstring); a new plan."""
    plan = copy.deepcopy(dict(plan))
    source = as_source(records)
    analysis = plan.setdefault("analysis", {})
    req = request_of(plan)
    prompt = extract_prompt_loras(req.get("prompt", "") or "")[0]
    try:
        ranked = choose_checkpoint(plan, source, max_nsfw_level=max_nsfw_level, meaning=meaning)
        names = [c["name"] for c in ranked["candidates"]["checkpoints"]]
    except PlanError:
        names = []
    checkpoints = [r for r in (_record(source, CHECKPOINT_KINDS, n) for n in names) if r is not None]
    query = build_query(analysis_of(plan), req.get("prompt", "") or "")
    retrieved = retrieve_loras(source, query, similar=similar_for(meaning, req))
    scores, _ = score_loras(retrieved.records, analysis_of(plan), query, LoraContext("unknown", "Unknown"),
                            max_nsfw_level, compatibility=lambda r: "full", similarity=retrieved.similarity(),
                            skip=lambda r: r.excluded)
    # never a LoRA the plan could not use for this prompt (above the NSFW ceiling) in what is sent
    keyword_analysis = analysis_of(plan)
    digest = build_digest(checkpoints, [s.record for s in scores
                                        if pick_problem(s.record, keyword_analysis, query, max_nsfw_level) is None
                                        or s.record.kind != "lora"])
    if not is_local_host(analyst.host):
        plan.setdefault("warnings", []).append(
            f"the prompt and {len(digest.checkpoints) + len(digest.loras)} candidates' titles and tags were sent to "
            f"Ollama at {analyst.host}, another machine (setting ollama.host)")
    try:
        answer = analyst.analyse(prompt, digest)
    except Exception as e:  # LlmFailure, or anything the client let through: the plan goes on by keywords
        reason = str(e) if isinstance(e, LlmFailure) else f"Ollama at {analyst.host} failed: {type(e).__name__}"
        if not isinstance(e, LlmFailure):
            log.warning("Ollama analysis failed: %s", reason)
        analysis["source"] = "keywords"
        analysis["fallback_reason"] = reason
        plan.setdefault("warnings", []).append(f"Ollama analysis not used, the keyword analyser was: {reason}")
        return plan
    analysis["source"] = "ollama"
    analysis["fallback_reason"] = None
    if answer.style and (req.get("style") in (None, "", "auto")) and answer.style != analysis.get("style"):
        analysis["style"] = answer.style
        # the model's answer is as sure as a named style: scoring reads the style at this confidence
        analysis["style_confidence"] = max(float(analysis.get("style_confidence") or 0.0), STYLE_CONFIDENCE)
    llm = {"host": answer.host, "model": answer.model, "local": is_local_host(answer.host),
           "checkpoint": answer.checkpoint.name if answer.checkpoint is not None else None,
           "checkpoint_kind": answer.checkpoint.kind if answer.checkpoint is not None else None,
           "loras": [r.name for r in answer.loras], "key_concepts": list(answer.key_concepts),
           "dropped": list(answer.dropped), "candidates": len(digest.checkpoints) + len(digest.loras)}
    plan.setdefault("candidates", {"checkpoints": [], "loras": []})["llm"] = llm
    if answer.dropped:
        plan.setdefault("warnings", []).append(f"the LLM ({where(llm)}) answered what is not a candidate, left "
                                               f"out: {', '.join(answer.dropped[:5])}")
    log.debug("LLM picks: checkpoint %s, LoRAs %s", llm["checkpoint"], llm["loras"])
    return plan
