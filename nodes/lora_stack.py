"""Auto LoRA Stack: picks LoRAs compatible with the loaded model, applies them, encodes the prompts."""
from __future__ import annotations

import logging
from typing import Any

import comfy.sd
import comfy.utils
import folder_paths
import node_helpers

from ..selector import planner
from .comfy_api import CATEGORY, LORA_STACK_TYPE, PLAN_TYPE, io
from .common import library_fingerprint, model_architecture, new_plan, own_plan, publish
from .inputs import first_problem, number_problem, parse_lora_list, pinned_loras_problem, prompt_problem
from .runtime import get_runtime

log = logging.getLogger(__name__)

STRENGTH_SCALE_MIN, STRENGTH_SCALE_MAX = 0.0, 2.0


def apply_loras(model: Any, clip: Any, loras: list[dict]) -> tuple[Any, Any]:
    for lora in loras:
        path = folder_paths.get_full_path_or_raise("loras", lora["name"])
        sd = comfy.utils.load_torch_file(path, safe_load=True)
        model, clip = comfy.sd.load_lora_for_models(model, clip, sd, lora["strength_model"], lora["strength_clip"])
    return model, clip


def encode(clip: Any, text: str, guidance: float | None = None) -> Any:
    """CLIPTextEncode's work; Flux-style guidance (the plan's `settings.guidance`) rides on the
    conditioning, as ComfyUI's FluxGuidance node does it."""
    if clip is None:
        raise RuntimeError("Auto LoRA Stack: the model has no CLIP/text encoder to encode the prompt with")
    cond = clip.encode_from_tokens_scheduled(clip.tokenize(text))
    if guidance is not None:
        cond = node_helpers.conditioning_set_values(cond, {"guidance": float(guidance)})
    return cond


class IntelligentAutoLoraStack(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IntelligentAutoLoraStack",
            display_name="Auto LoRA Stack",
            category=CATEGORY,
            description="Finds LoRAs that match the prompt and are compatible with the loaded model's base model, "
                        "applies them with sensible strengths, adds their trigger words and encodes the prompts.",
            inputs=[
                io.Model.Input("model"),
                io.Clip.Input("clip"),
                io.Custom(PLAN_TYPE).Input("plan", optional=True, tooltip="From Auto Model Picker."),
                io.String.Input("prompt", multiline=True, default="", optional=True,
                                tooltip="Used only when no plan is connected."),
                io.Int.Input("max_loras", default=-1, min=-1, max=10,
                             tooltip="-1: the setting selection.max_loras; 0: none."),
                io.Float.Input("strength_scale", default=1.0, min=STRENGTH_SCALE_MIN, max=STRENGTH_SCALE_MAX, step=0.05,
                               tooltip="Multiplies every chosen strength."),
                io.String.Input("pinned_loras", multiline=True, default="",
                                tooltip="Always use these (comma or line separated; name:0.7 sets a strength)."),
                io.String.Input("banned_loras", multiline=True, default="", tooltip="Never use these."),
            ],
            outputs=[
                io.Model.Output(display_name="MODEL"),
                io.Clip.Output(display_name="CLIP"),
                io.Conditioning.Output(display_name="positive"),
                io.Conditioning.Output(display_name="negative"),
                io.Custom(PLAN_TYPE).Output(display_name="plan"),
                io.String.Output(display_name="positive_text"),
                io.String.Output(display_name="negative_text"),
                io.Custom(LORA_STACK_TYPE).Output(display_name="LORA_STACK"),
            ],
            hidden=[io.Hidden.unique_id, io.Hidden.prompt, io.Hidden.extra_pnginfo],
        )

    @classmethod
    def validate_inputs(cls, prompt: str | None = None, strength_scale: float | None = 1.0,
                        pinned_loras: str | None = "") -> bool | str:
        # ComfyUI skips its own range check on a named input (and NaN passes it), so the range of
        # strength_scale is checked here; max_loras is not named and keeps ComfyUI's check.
        problem = first_problem(prompt_problem("prompt", prompt),
                                number_problem("strength_scale", strength_scale, STRENGTH_SCALE_MIN, STRENGTH_SCALE_MAX),
                                pinned_loras_problem("pinned_loras", pinned_loras))
        return f"Auto LoRA Stack: {problem}" if problem else True

    @classmethod
    def fingerprint_inputs(cls, **_) -> tuple:
        return library_fingerprint()

    @classmethod
    def execute(cls, model: Any, clip: Any, max_loras: int, strength_scale: float, pinned_loras: str,
                banned_loras: str, plan: dict | None = None, prompt: str | None = None) -> io.NodeOutput:
        problem = first_problem(number_problem("strength_scale", strength_scale, STRENGTH_SCALE_MIN, STRENGTH_SCALE_MAX),
                                pinned_loras_problem("pinned_loras", pinned_loras))
        if problem:  # a linked input is only known now
            raise ValueError(f"Auto LoRA Stack: {problem}")
        rt = get_runtime()
        plan = own_plan(plan)
        if plan is None:
            if not prompt or not prompt.strip():
                raise ValueError("Auto LoRA Stack needs a plan (from Auto Model Picker) or a prompt")
            problem = prompt_problem("prompt", prompt)
            if problem:
                raise ValueError(f"Auto LoRA Stack: {problem}")
            plan = new_plan(prompt)
        if not plan.get("checkpoint"):
            plan = planner.describe_loaded_model(plan, model_architecture(model))
        overrides: dict[str, Any] = {}
        pins = parse_lora_list(pinned_loras, "loras")
        if pins:
            overrides["loras"] = pins
        bans = parse_lora_list(banned_loras, "exclude")
        if bans:
            overrides["exclude"] = bans
        limit = int(rt.settings.get("selection.max_loras")) if max_loras < 0 else max_loras
        index = rt.ready_index()
        plan = planner.choose_loras(plan, index, overrides=overrides, max_loras=limit, meaning=rt.plan_meaning(),
                                    strength_scale=float(strength_scale),
                                    max_nsfw_level=int(rt.settings.get("selection.max_nsfw_level")))
        model, clip = apply_loras(model, clip, plan["loras"])
        clip_skip = int(plan["settings"].get("clip_skip") or 1)
        if clip is not None and clip_skip > 1:
            clip = clip.clone()
            clip.clip_layer(-clip_skip)
        positive, negative = plan["prompt"]["positive"], plan["prompt"]["negative"]
        stack = [(lora["name"], lora["strength_model"], lora["strength_clip"]) for lora in plan["loras"]]
        partial = rt.index_warning()
        if partial and partial not in plan["warnings"]:
            plan["warnings"].append(partial)
        publish(cls, 3, plan)
        report = planner.plan_summary(plan)
        guidance = plan["settings"].get("guidance")
        return io.NodeOutput(model, clip, encode(clip, positive, guidance), encode(clip, negative, guidance), plan,
                             positive, negative,
                             stack, ui={"text": [report]})
