"""Memory-Aware Sampler: samples with the plan's settings after fitting the run to live memory."""
from __future__ import annotations

import logging
from typing import Any

import comfy.model_management as mm
import torch

from nodes import common_ksampler

from ..monitor import choose_memory, estimate_need_gb
from ..selector import planner
from ..selector.llm import OllamaAnalyst
from .comfy_api import CATEGORY, PLAN_TYPE, io
from .common import model_architecture, own_plan, publish
from .inputs import number_problem
from .runtime import get_runtime

log = logging.getLogger(__name__)


def _file_size(kind: str, name: str | None) -> int:
    if not name:
        return 0
    record = get_runtime().index.get(kind, name)
    return record.size if record else 0


def memory_for(plan: dict) -> dict:
    """Fill the plan's memory part from live readings and the sizes of what it loads."""
    s = plan["settings"]
    ckpt = plan.get("checkpoint") or {}
    model_bytes = _file_size(ckpt.get("kind") or "checkpoint", ckpt.get("name"))
    lora_bytes = sum(_file_size("lora", lora["name"]) for lora in plan.get("loras", []))
    need = estimate_need_gb(model_bytes, lora_bytes, s["width"], s["height"], s.get("batch_size") or 1,
                            ckpt.get("architecture") or "unknown")
    return choose_memory(need, get_runtime().monitor.read(), width=s["width"], height=s["height"])


def apply_memory_actions(memory: dict, model: Any) -> None:
    actions = memory.get("actions", [])
    device = mm.get_torch_device()
    if "unload_all_models" in actions:
        mm.unload_all_models()
        mm.soft_empty_cache()
    elif "free_other_models" in actions:
        keep = [lm for lm in mm.current_loaded_models if lm.model is model]
        mm.free_memory(memory["need_gb"] * 1024 ** 3, device, keep_loaded=keep)


UNLOAD_TIMEOUT_S = 2.0


def unload_llm(plan: dict) -> None:
    """A plan the Ollama model analysed: ask its server to unload the model before sampling needs the
    memory (it would otherwise stay loaded for llm.KEEP_ALIVE); at most UNLOAD_TIMEOUT_S, errors ignored."""
    llm = (plan.get("candidates") or {}).get("llm")
    if not isinstance(llm, dict) or not isinstance(llm.get("model"), str):
        return
    if llm.get("host") != get_runtime().settings.get("ollama.host") or llm.get("local") is not True:
        return  # only ever the host the user set, and only on this machine (another's memory is not ours)
    OllamaAnalyst(llm["host"], llm["model"], UNLOAD_TIMEOUT_S).unload()


def decode(vae: Any, samples: torch.Tensor, memory: dict) -> torch.Tensor:
    actions = memory.get("actions", [])
    if "tiled_vae_decode" in actions:
        tile = 256 if "small_vae_tiles" in actions else 512
        images = vae.decode_tiled(samples, tile_x=tile // 8, tile_y=tile // 8, overlap=16)
    else:
        images = vae.decode(samples)
    if len(images.shape) == 5:
        images = images.reshape(-1, images.shape[-3], images.shape[-2], images.shape[-1])
    return images


class IntelligentMemoryAwareSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IntelligentMemoryAwareSampler",
            display_name="Memory-Aware Sampler",
            category=CATEGORY,
            description="Samples with the plan's steps, cfg, sampler and size after checking live GPU/RAM: "
                        "frees or unloads other models and tiles the VAE decode when memory is short.",
            inputs=[
                io.Model.Input("model"),
                io.Conditioning.Input("positive"),
                io.Conditioning.Input("negative"),
                io.Custom(PLAN_TYPE).Input("plan", optional=True, tooltip="From Auto LoRA Stack."),
                io.Latent.Input("latent", optional=True,
                                tooltip="Start from this latent; else an empty one of the plan's size and batch."),
                io.Vae.Input("vae", optional=True, tooltip="Give a VAE to also get the decoded IMAGE."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True),
                io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01),
            ],
            outputs=[
                io.Latent.Output(display_name="LATENT"),
                io.Image.Output(display_name="IMAGE"),
                io.String.Output(display_name="report"),
            ],
            hidden=[io.Hidden.unique_id, io.Hidden.prompt, io.Hidden.extra_pnginfo],
        )

    @classmethod
    def validate_inputs(cls, denoise: float = 1.0) -> bool | str:
        # ComfyUI skips its range check on a named input, so it is done here, NaN included
        problem = number_problem("denoise", denoise, 0.0, 1.0)
        return f"Memory-Aware Sampler: {problem}" if problem else True

    @classmethod
    def execute(cls, model: Any, positive: Any, negative: Any, seed: int, denoise: float,
                plan: dict | None = None, latent: dict | None = None, vae: Any = None) -> io.NodeOutput:
        problem = number_problem("denoise", denoise, 0.0, 1.0)
        if problem:
            raise ValueError(f"Memory-Aware Sampler: {problem}")
        standalone = plan is None
        plan = own_plan(plan)
        if plan is None:
            plan = planner.default_plan_for_architecture(model_architecture(model))
        s = plan["settings"]
        s["seed"], s["denoise"] = int(seed), float(denoise)
        if latent is None:
            latent = {"samples": torch.zeros([s.get("batch_size") or 1, 4, s["height"] // 8, s["width"] // 8],
                                             device=mm.intermediate_device())}
        plan["memory"] = memory_for(plan)
        apply_memory_actions(plan["memory"], model)
        unload_llm(plan)
        out = common_ksampler(model, seed, s["steps"], s["cfg"], s["sampler_name"], s["scheduler"],
                              positive, negative, latent, denoise=denoise)[0]
        image = decode(vae, out["samples"], plan["memory"]) if vae is not None else None
        plan = publish(cls, 4, plan, standalone=standalone)
        report = planner.plan_summary(plan)
        return io.NodeOutput(out, image, report, ui={"text": [report]})
