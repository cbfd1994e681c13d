"""The memory policy: how much a plan needs, how much is free, and what to do about it.

Levels follow the product's rule: enough free memory -> NONE; at least two thirds of the need
-> BALANCED (free other models first, tile the VAE decode for big images); less -> AGGRESSIVE
(unload everything else, tiled decode, smaller VAE tiles). On a machine without a GPU the
need is compared with available RAM, and the plan says so.
"""
from __future__ import annotations

from typing import Any

from .readings import Readings

GB = 1024 ** 3

# Working memory for sampling, per megapixel of latent work, by architecture (GB).
_ACTIVATION_GB_PER_MPX = {"sd1": 1.2, "sd2": 1.4, "sdxl": 2.0, "sd3": 2.5, "flux": 3.0, "auraflow": 2.5}


def estimate_need_gb(model_bytes: int, lora_bytes: int, width: int, height: int, batch_size: int,
                     architecture: str) -> float:
    """Weights on the device plus activations for the image size and batch."""
    mpx = max(width, 64) * max(height, 64) / 1_000_000
    activations = _ACTIVATION_GB_PER_MPX.get(architecture, 2.0) * mpx * max(batch_size, 1)
    return round((model_bytes + lora_bytes) / GB + activations + 0.3, 2)


def choose_memory(need_gb: float, readings: Readings | None, *, width: int = 512, height: int = 512) -> dict[str, Any]:
    """The plan's `memory` part for a need of `need_gb` given live readings."""
    reasons: list[str] = []
    actions: list[str] = []
    if readings is None:
        return {"level": "NONE", "need_gb": need_gb, "free_gb": None, "actions": [],
                "reasons": ["no resource readings available: running without memory limits"]}
    gpu = readings.primary_gpu
    free: float | None
    if gpu is not None:
        free = gpu.memory_free_gb
        where = f"GPU {gpu.name} has {free:.1f} GB free of {gpu.memory_total_gb:.1f} GB"
    else:
        free = readings.ram.available_gb if readings.ram else None
        where = (f"no GPU ({readings.reason or 'none found'}): CPU run, {free:.1f} GB RAM available"
                 if free is not None else f"no GPU ({readings.reason or 'none found'}) and no RAM reading")
    reasons.append(where)
    if free is None:
        return {"level": "NONE", "need_gb": need_gb, "free_gb": None, "actions": [], "reasons": reasons}
    big_image = width * height > 1024 * 1024
    if free >= need_gb:
        level = "NONE"
        reasons.append(f"needs about {need_gb:.1f} GB: fits")
        if big_image:
            actions.append("tiled_vae_decode")
            reasons.append("image above 1 megapixel: decode the VAE in tiles")
    elif free >= need_gb * 2 / 3:
        level = "BALANCED"
        actions += ["free_other_models", "tiled_vae_decode"]
        reasons.append(f"needs about {need_gb:.1f} GB, {free:.1f} GB free: free other models first and tile the VAE decode")
    else:
        level = "AGGRESSIVE"
        actions += ["unload_all_models", "tiled_vae_decode", "small_vae_tiles"]
        reasons.append(f"needs about {need_gb:.1f} GB, only {free:.1f} GB free: unload everything else, "
                       "let ComfyUI offload weights, decode in small tiles")
    return {"level": level, "need_gb": need_gb, "free_gb": round(free, 2), "actions": actions, "reasons": reasons}
