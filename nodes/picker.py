"""Auto Model Picker: chooses and loads the checkpoint (and VAE / text encoders) the plan calls for."""
from __future__ import annotations

import logging
from typing import Any

import comfy.sd
import comfy.utils
import folder_paths

from ..metadata.records import ModelRecord
from ..selector import planner
from .comfy_api import CATEGORY, PLAN_TYPE, ChoiceOutput, io
from .common import check_choices, library_fingerprint, new_plan, own_plan, publish, samplers, schedulers
from .inputs import first_problem, model_name_problem, number_problem, prompt_problem, unloadable_problem
from .runtime import get_runtime

log = logging.getLogger(__name__)

AUTO = "auto"
NODE = "Auto Model Picker"
SIZE_MAX = 8192
STEPS_MAX = 1000
CFG_MAX = 100.0
CHECKPOINT_KINDS = ("checkpoint", "diffusion_model")


def checkpoint_choices() -> list[str]:
    names = folder_paths.get_filename_list("checkpoints") + folder_paths.get_filename_list("diffusion_models")
    return [AUTO] + sorted(set(names))


def _record_of(name: str) -> ModelRecord | None:
    """What the index knows about a checkpoint or diffusion model name (never waits for a scan)."""
    index = get_runtime().index
    return next((r for r in (index.get(kind, name) for kind in CHECKPOINT_KINDS) if r is not None), None)


def checkpoint_problem(checkpoint: str | None) -> str | None:
    """Why a pinned checkpoint cannot be used: not a name, not in the model folders, or a file the
    index knows ComfyUI cannot load."""
    if checkpoint is None or checkpoint == AUTO:
        return None
    shape = model_name_problem("checkpoint", checkpoint)
    if shape:
        return shape
    known = {n.replace("\\", "/") for n in checkpoint_choices()}
    if checkpoint.replace("\\", "/") not in known:
        return f"checkpoint {checkpoint!r} is not in the checkpoints or diffusion_models folders"
    unloadable = unloadable_problem(_record_of(checkpoint))
    if unloadable:
        return f"checkpoint {checkpoint!r} cannot be loaded: {unloadable}"
    return None


def overrides_from_widgets(checkpoint: str, width: int, height: int, steps: int, cfg: float,
                           sampler_name: str, scheduler: str) -> dict[str, Any]:
    """Widget values that mean "let the plan decide" (0, 0.0, "auto") are left out."""
    out: dict[str, Any] = {}
    if checkpoint and checkpoint != AUTO:
        out["checkpoint"] = checkpoint
    if width:
        out["width"] = int(width)
    if height:
        out["height"] = int(height)
    if steps:
        out["steps"] = int(steps)
    if cfg:
        out["cfg"] = float(cfg)
    if sampler_name and sampler_name != AUTO:
        out["sampler_name"] = sampler_name
    if scheduler and scheduler != AUTO:
        out["scheduler"] = scheduler
    return out


def load_models(plan: dict) -> tuple[Any, Any, Any]:
    """Load MODEL, CLIP, VAE for the plan's checkpoint the way ComfyUI's own loaders do."""
    ckpt = plan["checkpoint"]
    embeddings = folder_paths.get_folder_paths("embeddings")
    if ckpt["kind"] == "diffusion_model":
        model = comfy.sd.load_diffusion_model(folder_paths.get_full_path_or_raise("diffusion_models", ckpt["name"]))
        te_paths = [folder_paths.get_full_path_or_raise("text_encoders", te["name"]) for te in plan["text_encoders"]]
        clip = None
        if te_paths:
            clip_type = {"flux": comfy.sd.CLIPType.FLUX, "sd3": comfy.sd.CLIPType.SD3}.get(
                ckpt["architecture"], comfy.sd.CLIPType.STABLE_DIFFUSION)
            clip = comfy.sd.load_clip(ckpt_paths=te_paths, embedding_directory=embeddings, clip_type=clip_type)
        vae = None
    else:
        path = folder_paths.get_full_path_or_raise("checkpoints", ckpt["name"])
        model, clip, vae = comfy.sd.load_checkpoint_guess_config(
            path, output_vae=True, output_clip=True, embedding_directory=embeddings)[:3]
    vae_name = (plan.get("vae") or {}).get("name")
    if vae_name:
        sd = comfy.utils.load_torch_file(folder_paths.get_full_path_or_raise("vae", vae_name))
        vae = comfy.sd.VAE(sd=sd)
        vae.throw_exception_if_invalid()
    return model, clip, vae


class IntelligentAutoModelPicker(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IntelligentAutoModelPicker",
            display_name="Auto Model Picker",
            category=CATEGORY,
            description="Picks the checkpoint that fits the prompt from your library, with a matching VAE and "
                        "sampler settings, and loads it. Every choice comes with its reasons in the report.",
            inputs=[
                io.Custom(PLAN_TYPE).Input("plan", optional=True, tooltip="From Intelligent Prompt Analyzer."),
                io.String.Input("prompt", multiline=True, default="", optional=True,
                                tooltip="Used only when no plan is connected."),
                io.Combo.Input("checkpoint", options=checkpoint_choices(), default=AUTO,
                               tooltip="auto: the best match for the prompt; or pin one."),
                io.Int.Input("width", default=0, min=0, max=SIZE_MAX, step=8, tooltip="0: the plan decides."),
                io.Int.Input("height", default=0, min=0, max=SIZE_MAX, step=8, tooltip="0: the plan decides."),
                io.Int.Input("steps", default=0, min=0, max=STEPS_MAX, tooltip="0: the plan decides."),
                io.Float.Input("cfg", default=0.0, min=0.0, max=CFG_MAX, step=0.1, round=0.01,
                               tooltip="0: the plan decides."),
                io.Combo.Input("sampler_name", options=[AUTO] + samplers(), default=AUTO),
                io.Combo.Input("scheduler", options=[AUTO] + schedulers(), default=AUTO),
            ],
            outputs=[
                io.Model.Output(display_name="MODEL"),
                io.Clip.Output(display_name="CLIP"),
                io.Vae.Output(display_name="VAE"),
                io.Custom(PLAN_TYPE).Output(display_name="plan"),
                io.Int.Output(display_name="steps"),
                io.Float.Output(display_name="cfg"),
                ChoiceOutput(id="chosen_sampler_name", display_name="sampler_name", options=samplers()),
                ChoiceOutput(id="chosen_scheduler", display_name="scheduler", options=schedulers()),
                io.Int.Output(display_name="width"),
                io.Int.Output(display_name="height"),
                io.String.Output(display_name="report"),
            ],
            hidden=[io.Hidden.unique_id, io.Hidden.prompt, io.Hidden.extra_pnginfo],
        )

    @classmethod
    def validate_inputs(cls, prompt: str | None = None, checkpoint: str = AUTO, width: int = 0, height: int = 0,
                        cfg: float = 0.0, sampler_name: str = AUTO, scheduler: str = AUTO) -> bool | str:
        # ComfyUI skips its own range checks on the inputs named here, so they are done here too (and
        # NaN, which passes them); it does not check V3 combo values in 0.3.75, so the combos are
        # checked here. A linked input arrives as None: execute checks it.
        problem = first_problem(
            prompt_problem("prompt", prompt), checkpoint_problem(checkpoint),
            *(number_problem(field, value, 0, SIZE_MAX) for field, value in (("width", width), ("height", height))),
            *(f"{field} must be 0 (the plan decides) or a multiple of 8 from 64"
              for field, value in (("width", width), ("height", height)) if value and (value % 8 or value < 64)),
            number_problem("cfg", cfg, 0.0, CFG_MAX))
        if problem:
            return f"{NODE}: {problem}"
        return check_choices(NODE, sampler_name=(sampler_name, [AUTO] + samplers()),
                             scheduler=(scheduler, [AUTO] + schedulers()))

    @classmethod
    def fingerprint_inputs(cls, **_) -> tuple:
        return library_fingerprint()

    @classmethod
    def execute(cls, checkpoint: str, width: int, height: int, steps: int, cfg: float, sampler_name: str,
                scheduler: str, plan: dict | None = None, prompt: str | None = None) -> io.NodeOutput:
        overrides = overrides_from_widgets(checkpoint, width, height, steps, cfg, sampler_name, scheduler)
        plan = own_plan(plan)
        if plan is None:
            if not prompt or not prompt.strip():
                raise ValueError("Auto Model Picker needs a plan (from Intelligent Prompt Analyzer) or a prompt")
            problem = prompt_problem("prompt", prompt)
            if problem:
                raise ValueError(f"{NODE}: {problem}")
            plan = new_plan(prompt)
        rt = get_runtime()
        index = rt.ready_index()
        pinned = overrides.get("checkpoint")
        problem = checkpoint_problem(pinned) if pinned else None
        if problem:
            raise ValueError(f"{NODE}: {problem}")
        # a file ComfyUI cannot load is never chosen; a pinned one was refused above
        candidates = [r for r in index.records("checkpoint") + index.records("diffusion_model")
                      if r.name == pinned or not unloadable_problem(r)]
        plan = planner.choose_checkpoint(
            plan, candidates, vaes=index.records("vae"), text_encoders=index.records("text_encoder"),
            overrides=overrides, valid_samplers=samplers(), valid_schedulers=schedulers(),
            max_nsfw_level=int(rt.settings.get("selection.max_nsfw_level")), loras=index, meaning=rt.plan_meaning())
        chosen = plan["checkpoint"]
        unloadable = unloadable_problem(index.get(chosen["kind"], chosen["name"]))
        if unloadable:
            raise ValueError(f"{NODE}: checkpoint {chosen['name']!r} cannot be loaded: {unloadable}")
        model, clip, vae = load_models(plan)
        s = plan["settings"]
        partial = rt.index_warning()
        if partial and partial not in plan["warnings"]:
            plan["warnings"].append(partial)
        publish(cls, 2, plan)
        report = planner.plan_summary(plan)
        return io.NodeOutput(model, clip, vae, plan, s["steps"], s["cfg"], s["sampler_name"], s["scheduler"],
                             s["width"], s["height"], report, ui={"text": [report]})
