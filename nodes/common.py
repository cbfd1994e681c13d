"""Glue shared by the four nodes: plans in and out, ComfyUI's sampler lists, PNG metadata."""
from __future__ import annotations

import copy
import logging
from typing import Any

import comfy.samplers

from ..selector import planner
from ..selector.analysis import analyze_keywords
from .pnginfo import remember_plan
from .runtime import get_runtime

log = logging.getLogger(__name__)

STYLES = ["auto", "realistic", "anime", "artistic", "3d", "cartoon", "pixel art"]
QUALITIES = ["fast", "balanced", "high", "ultra"]

# ComfyUI model_config class names -> the plan's architecture names.
_ARCH_BY_CONFIG = {
    "SD15": "sd1", "SD15_instructpix2pix": "sd1", "SD20": "sd2", "SD21UnclipL": "sd2", "SD21UnclipH": "sd2",
    "SDXL": "sdxl", "SDXLRefiner": "sdxl", "SSD1B": "sdxl", "Segmind_Vega": "sdxl", "KOALA_700M": "sdxl",
    "KOALA_1B": "sdxl", "SDXL_instructpix2pix": "sdxl", "SD3": "sd3", "Flux": "flux", "FluxSchnell": "flux",
    "FluxInpaint": "flux", "AuraFlow": "auraflow",
}


def check_choices(node: str, **fields: tuple[Any, list[str]]) -> bool | str:
    """True, or a message naming the first field whose value is not one of its choices
    (None: a linked input, whose value is not known at queue time)."""
    for field, (value, choices) in fields.items():
        if value is not None and value not in choices:
            return f"{node}: {field} {value!r} is not one of {', '.join(map(str, choices))}"
    return True


def samplers() -> list[str]:
    return list(comfy.samplers.KSampler.SAMPLERS)


def schedulers() -> list[str]:
    return list(comfy.samplers.KSampler.SCHEDULERS)


def model_architecture(model: Any) -> str:
    """Architecture of a loaded MODEL, read from ComfyUI's own detection."""
    try:
        name = type(model.model.model_config).__name__
    except AttributeError:
        return "unknown"
    return _ARCH_BY_CONFIG.get(name, "video" if "video" in name.lower() or "wan" in name.lower() else "unknown")


def own_plan(plan: dict | None) -> dict | None:
    """A private copy: an upstream node's cached output must never be changed in place."""
    return copy.deepcopy(plan) if plan is not None else None


def new_plan(prompt: str, negative_prompt: str = "", style: str = "auto", quality: str = "balanced",
             overrides: dict | None = None) -> dict:
    """Start a plan from text alone (a node used without the Analyzer upstream)."""
    body: dict[str, Any] = {"prompt": prompt, "style": style, "quality": quality}
    if negative_prompt:
        body["negative_prompt"] = negative_prompt
    if overrides:
        body["overrides"] = overrides
    request = planner.parse_request(body)
    analysis = analyze_keywords(request.prompt, request.negative_prompt or "", request.style)
    return planner.start_plan(request, analysis)


def settings_fingerprint(*prefixes: str) -> tuple:
    """The settings a node's result depends on (keys starting with `prefixes`), as a cache key part:
    a change to an unrelated setting must not make ComfyUI reload a checkpoint."""
    s = get_runtime().settings.as_dict()
    return tuple(sorted((k, repr(v)) for k, v in s.items() if k.startswith(prefixes)))


def library_fingerprint() -> tuple:
    """Changes when the library (re-checked here, when a prompt is queued), the selection settings or
    what retrieval by meaning has built change."""
    rt = get_runtime()
    meaning = rt.plan_meaning()
    built = meaning.index.generation if meaning is not None and meaning.index is not None else None
    return (rt.ready_index().generation, built, settings_fingerprint("selection.", "index.exclude_folders"))


def publish(node_cls: Any, stage: int, plan: dict, standalone: bool = False) -> dict:
    """Record a node's decision: PNG metadata for this run, memory for cached re-runs, websocket event.

    A `standalone` node (no plan socket connected) that runs after another Intelligent node in the
    same graph adds its own settings and memory to that node's plan instead of replacing a more
    complete plan with its partial one. Returns the plan as recorded.
    """
    hidden = getattr(node_cls, "hidden", None)
    unique_id = getattr(hidden, "unique_id", None)
    prompt = getattr(hidden, "prompt", None)
    pnginfo = getattr(hidden, "extra_pnginfo", None)
    if isinstance(pnginfo, dict):
        existing = pnginfo.get("intelligent_plan")
        if standalone and isinstance(existing, dict) and existing.get("checkpoint"):
            merged = copy.deepcopy(existing)
            merged.setdefault("settings", {}).update(plan.get("settings", {}))
            merged["memory"] = plan.get("memory", merged.get("memory"))
            plan = merged
        pnginfo["intelligent_plan"] = plan
    if unique_id is not None and isinstance(prompt, dict):
        remember_plan(prompt, str(unique_id), stage, plan)
    # only the client that queued the prompt gets it: the plan holds the prompt text
    get_runtime().events.send_to_prompt_client("intelligent.plan", {
        "node": str(unique_id) if unique_id is not None else None, "plan": plan})
    return plan
