"""What each model family needs and likes: components, default settings, sizes, quality presets.

One table, so the picker, the LoRA stack, the sampler and the memory policy agree on what "an
SDXL checkpoint at quality high" means. Values are the families' published/community defaults
(ComfyUI example workflows, model cards); a model's own example images refine them later.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

from ..metadata import base_models

_SDXL_SIZES = {"square": (1024, 1024), "portrait": (832, 1216), "landscape": (1216, 832),
               "wide": (1344, 768), "tall": (768, 1344)}
_SD1_SIZES = {"square": (512, 512), "portrait": (512, 768), "landscape": (768, 512),
              "wide": (896, 512), "tall": (512, 896)}
_SD2_SIZES = {"square": (768, 768), "portrait": (640, 960), "landscape": (960, 640),
              "wide": (1024, 576), "tall": (576, 1024)}

_DEFAULT_NEGATIVE = ("lowres, blurry, bad anatomy, bad hands, extra fingers, missing fingers, deformed, "
                     "watermark, signature, text, jpeg artifacts, worst quality, low quality")


@dataclass(frozen=True)
class ArchitectureSpec:
    """Defaults and needs of one family (a CivitAI family where it matters, e.g. Pony vs SDXL).

    `text_encoders` are the encoder roles a bare diffusion model needs loaded beside it (a
    checkpoint file carries its own); `clip_type` is ComfyUI's CLIPLoader type for them.
    `tunable` is False for distilled/guidance-embedded models whose steps and CFG must not be
    nudged by style suggestions (Flux, Lightning, Turbo, LCM).
    """

    key: str
    architecture: str
    label: str
    steps: int
    cfg: float
    sampler_name: str
    scheduler: str
    native: int
    sizes: dict[str, tuple[int, int]]
    clip_skip: int = 1
    guidance: float | None = None
    vae_in_checkpoint: bool = True
    text_encoders: tuple[str, ...] = ()
    optional_text_encoders: tuple[str, ...] = ()
    clip_type: str | None = None
    vae_architecture: str = "sd1"
    size_gb: float = 2.0
    encoders_gb: float = 0.0
    activation_gb_per_mp: float = 2.0
    min_steps: int = 10
    max_steps: int = 80
    cfg_range: tuple[float, float] = (1.0, 15.0)
    tunable: bool = True
    uses_negative: bool = True
    default_negative: str = _DEFAULT_NEGATIVE
    positive_prefix: str = ""
    positive_suffix: str = ""
    quality_tier: int = 0  # bigger/newer families rank higher when quality asks for it
    min_scale: float = 0.875
    max_scale: float = 1.25
    notes: tuple[str, ...] = field(default=())


SPECS: dict[str, ArchitectureSpec] = {s.key: s for s in (
    ArchitectureSpec("sd1", "sd1", "SD 1.x", 25, 7.0, "dpmpp_2m", "karras", 512, _SD1_SIZES,
                     text_encoders=("clip_l",), clip_type="stable_diffusion", vae_architecture="sd1", size_gb=2.1, activation_gb_per_mp=2.0, max_steps=60, min_scale=1.0),
    ArchitectureSpec("sd1_fast", "sd1", "SD 1.x LCM/Hyper", 6, 1.5, "lcm", "sgm_uniform", 512, _SD1_SIZES,
                     text_encoders=("clip_l",), clip_type="stable_diffusion", vae_architecture="sd1", size_gb=2.1, min_steps=4, max_steps=12, cfg_range=(1.0, 2.5),
                     tunable=False, min_scale=1.0),
    ArchitectureSpec("sd2", "sd2", "SD 2.x", 25, 7.0, "dpmpp_2m", "karras", 768, _SD2_SIZES,
                     text_encoders=("clip_h",), clip_type="stable_diffusion", vae_architecture="sd1", size_gb=2.6, activation_gb_per_mp=2.0, max_steps=60, min_scale=1.0),
    ArchitectureSpec("sdxl", "sdxl", "SDXL", 30, 6.5, "dpmpp_2m_sde", "karras", 1024, _SDXL_SIZES,
                     text_encoders=("clip_l", "clip_g"), clip_type="sdxl", vae_architecture="sdxl", size_gb=6.9, activation_gb_per_mp=1.5, min_steps=12, max_steps=60,
                     quality_tier=1),
    ArchitectureSpec("sdxl_fast", "sdxl", "SDXL Lightning/Turbo/Hyper", 6, 1.5, "euler", "sgm_uniform", 1024,
                     _SDXL_SIZES, text_encoders=("clip_l", "clip_g"), clip_type="sdxl", vae_architecture="sdxl", size_gb=6.9, activation_gb_per_mp=1.5, min_steps=4,
                     max_steps=12, cfg_range=(1.0, 2.5), tunable=False, quality_tier=1),
    ArchitectureSpec("pony", "sdxl", "Pony (SDXL)", 25, 7.0, "euler_ancestral", "normal", 1024, _SDXL_SIZES,
                     clip_skip=2, text_encoders=("clip_l", "clip_g"), clip_type="sdxl", vae_architecture="sdxl", size_gb=6.9, activation_gb_per_mp=1.5, min_steps=12,
                     max_steps=60, quality_tier=1,
                     default_negative="score_6, score_5, score_4, " + _DEFAULT_NEGATIVE,
                     positive_prefix="score_9, score_8_up, score_7_up",
                     notes=("Pony models read the score_* quality tags",)),
    ArchitectureSpec("illustrious", "sdxl", "Illustrious (SDXL)", 28, 5.5, "euler_ancestral", "normal", 1024,
                     _SDXL_SIZES, clip_skip=2, text_encoders=("clip_l", "clip_g"), clip_type="sdxl", vae_architecture="sdxl", size_gb=6.9, activation_gb_per_mp=1.5,
                     min_steps=12, max_steps=60, quality_tier=1, cfg_range=(3.0, 9.0),
                     positive_suffix="masterpiece, best quality",
                     default_negative="worst quality, low quality, " + _DEFAULT_NEGATIVE),
    ArchitectureSpec("noobai", "sdxl", "NoobAI (SDXL)", 28, 5.0, "euler_ancestral", "normal", 1024, _SDXL_SIZES,
                     clip_skip=2, text_encoders=("clip_l", "clip_g"), clip_type="sdxl", vae_architecture="sdxl", size_gb=6.9, activation_gb_per_mp=1.5, min_steps=12,
                     max_steps=60, quality_tier=1, cfg_range=(3.0, 8.0), positive_suffix="masterpiece, best quality",
                     default_negative="worst quality, low quality, " + _DEFAULT_NEGATIVE),
    ArchitectureSpec("sd3", "sd3", "SD 3/3.5", 28, 4.5, "dpmpp_2m", "sgm_uniform", 1024, _SDXL_SIZES,
                     vae_in_checkpoint=True, text_encoders=("clip_l", "clip_g"), optional_text_encoders=("t5xxl",),
                     clip_type="sd3", vae_architecture="sd3", size_gb=5.1, encoders_gb=6.5,
                     activation_gb_per_mp=2.0, min_steps=12, max_steps=60, cfg_range=(1.0, 9.0), quality_tier=1),
    ArchitectureSpec("sd3_fast", "sd3", "SD 3.5 Turbo", 4, 1.0, "euler", "sgm_uniform", 1024, _SDXL_SIZES,
                     text_encoders=("clip_l", "clip_g"), optional_text_encoders=("t5xxl",), clip_type="sd3",
                     vae_architecture="sd3", size_gb=16.0, encoders_gb=6.5, min_steps=4, max_steps=10,
                     cfg_range=(1.0, 2.0), tunable=False, quality_tier=1),
    ArchitectureSpec("flux", "flux", "Flux.1", 20, 1.0, "euler", "simple", 1024, _SDXL_SIZES, guidance=3.5,
                     vae_in_checkpoint=False, text_encoders=("clip_l", "t5xxl"), clip_type="flux",
                     vae_architecture="flux", size_gb=23.8, encoders_gb=5.1, activation_gb_per_mp=2.5, min_steps=8,
                     max_steps=50, cfg_range=(1.0, 1.0), tunable=False, uses_negative=False, default_negative="",
                     quality_tier=2, min_scale=0.75, max_scale=1.5,
                     notes=("Flux is guidance-distilled: cfg stays 1.0 and FluxGuidance sets the strength",)),
    ArchitectureSpec("flux_schnell", "flux", "Flux.1 Schnell", 4, 1.0, "euler", "simple", 1024, _SDXL_SIZES,
                     guidance=None, vae_in_checkpoint=False, text_encoders=("clip_l", "t5xxl"), clip_type="flux",
                     vae_architecture="flux", size_gb=23.8, encoders_gb=5.1, activation_gb_per_mp=2.5, min_steps=2,
                     max_steps=8, cfg_range=(1.0, 1.0), tunable=False, uses_negative=False, default_negative="",
                     quality_tier=2, min_scale=0.75, max_scale=1.5),
    ArchitectureSpec("flux2", "flux", "Flux.2", 20, 1.0, "euler", "simple", 1024, _SDXL_SIZES, guidance=4.0,
                     vae_in_checkpoint=False, text_encoders=("mistral",), clip_type="flux2", vae_architecture="flux2",
                     size_gb=32.0, encoders_gb=12.0, activation_gb_per_mp=3.0, min_steps=8, max_steps=50,
                     cfg_range=(1.0, 1.0), tunable=False, uses_negative=False, default_negative="", quality_tier=2,
                     min_scale=0.75, max_scale=1.5),
    ArchitectureSpec("auraflow", "auraflow", "AuraFlow / Pony V7", 25, 3.5, "uni_pc", "normal", 1024, _SDXL_SIZES,
                     text_encoders=("pile_t5xl",), clip_type=None, vae_architecture="sdxl", size_gb=13.6,
                     encoders_gb=2.4, activation_gb_per_mp=2.0, min_steps=12, max_steps=60, cfg_range=(1.0, 8.0),
                     quality_tier=1),
    # A checkpoint nothing is known about: conservative SD-style settings at a middle size.
    ArchitectureSpec("unknown", "unknown", "unknown family", 25, 7.0, "euler", "normal", 512, _SD1_SIZES,
                     vae_architecture="unknown", size_gb=4.0, min_scale=1.0, max_scale=1.0),
)}

_FLUX1_FAMILIES = ("Flux1", "FluxKrea", "Flux1Kontext")


@lru_cache(maxsize=4096)  # (pure, of two strings; a plan asks it of every checkpoint)
def spec_for(architecture: str | None, base_model: str | None = None) -> ArchitectureSpec:
    """The spec of a model: its CivitAI family where it has one, else its architecture.

    Fast variants (Lightning, Turbo, Hyper, LCM, Flux.1 S, SD 3.5 Large Turbo) are read from the
    base-model string (base_models.speed), so their few-step, low-CFG settings follow.
    """
    fam = base_models.family(base_model)
    speed = base_models.speed(base_model)
    arch = architecture if architecture and architecture != "unknown" else base_models.architecture(base_model)
    if fam in ("Pony", "Illustrious", "NoobAI"):
        return SPECS[fam.lower()]
    if fam == "Flux2":
        return SPECS["flux2"]
    if arch == "flux" or fam in _FLUX1_FAMILIES:
        return SPECS["flux_schnell"] if speed == "schnell" else SPECS["flux"]
    if arch == "sdxl":
        if speed:
            spec = SPECS["sdxl_fast"]
            if speed == "lcm":
                return _replace(spec, sampler_name="lcm", key="sdxl_fast")
            if speed == "turbo":
                return _replace(spec, steps=4, cfg=1.0, sampler_name="euler_ancestral", scheduler="normal")
            return spec
        return SPECS["sdxl"]
    if arch == "sd1":
        if speed:
            spec = SPECS["sd1_fast"]
            return spec if speed == "lcm" else _replace(spec, sampler_name="euler", scheduler="sgm_uniform")
        return SPECS["sd1"]
    if arch == "sd3":
        return SPECS["sd3_fast"] if speed else SPECS["sd3"]
    if arch in SPECS:
        return SPECS[arch]
    return SPECS["unknown"]


def _replace(spec: ArchitectureSpec, **changes: object) -> ArchitectureSpec:
    return replace(spec, **changes)  # type: ignore[arg-type]


# --- quality presets ---------------------------------------------------------------------------

@dataclass(frozen=True)
class QualityPreset:
    """How a quality level changes a family's defaults.

    Steps scale by `steps_multiplier` within the family's [min_steps, max_steps]; the image side
    scales by `resolution_scale` within the family's [min_scale, max_scale]; `tier_weight`
    multiplies a family's quality tier when ranking checkpoints (fast prefers small models).
    """

    name: str
    steps_multiplier: float
    resolution_scale: float
    tier_weight: float


QUALITY_PRESETS: dict[str, QualityPreset] = {
    "fast": QualityPreset("fast", 0.5, 0.875, -1.0),
    "balanced": QualityPreset("balanced", 1.0, 1.0, 1.0),
    "high": QualityPreset("high", 1.4, 1.0, 2.0),
    "ultra": QualityPreset("ultra", 2.0, 1.25, 3.0),
}
QUALITIES = tuple(QUALITY_PRESETS)


def preset(quality: str | None) -> QualityPreset:
    return QUALITY_PRESETS.get(quality or "balanced", QUALITY_PRESETS["balanced"])


def steps_for(spec: ArchitectureSpec, quality: str | None, base_steps: int | None = None) -> int:
    """Steps for a quality level: the base (family default or a model's own) scaled, clamped.

    sd1: fast 12, balanced 25, high 35, ultra 50; never below the family's floor.
    """
    base = base_steps if base_steps else spec.steps
    return int(min(spec.max_steps, max(spec.min_steps, round(base * preset(quality).steps_multiplier))))


def _round64(x: float) -> int:
    return max(64, int(round(x / 64.0)) * 64)


def size_for(spec: ArchitectureSpec, aspect: str, quality: str | None) -> tuple[int, int]:
    """(width, height) for an aspect at a quality level: the family's preset, scaled and snapped to 64."""
    w, h = spec.sizes.get(aspect, spec.sizes["square"])
    scale = min(spec.max_scale, max(spec.min_scale, preset(quality).resolution_scale))
    if scale == 1.0:
        return w, h
    return _round64(w * scale), _round64(h * scale)


def memory_need_gb(spec: ArchitectureSpec, width: int, height: int, batch_size: int = 1,
                   model_gb: float | None = None, encoders_gb: float | None = None) -> float:
    """Rough peak GPU memory (GB) to sample at this size: weights + activations + overhead.

    Text encoders run before sampling and can be offloaded, so only a quarter of them counts.
    `model_gb` is the file size when known (fp8 files are half the family's typical size).
    """
    weights = model_gb if model_gb and model_gb > 0 else spec.size_gb
    enc = spec.encoders_gb if encoders_gb is None else encoders_gb
    megapixels = max(1, width) * max(1, height) / 1_000_000
    activations = spec.activation_gb_per_mp * megapixels * max(1, batch_size)
    return round(weights + 0.25 * enc + activations + 0.6, 2)


def quality_memory_need_gb(spec: ArchitectureSpec, quality: str | None, aspect: str = "square",
                           batch_size: int = 1) -> float:
    """Memory need of a family at a quality level's default size."""
    w, h = size_for(spec, aspect, quality)
    return memory_need_gb(spec, w, h, batch_size)


def clamp_cfg(spec: ArchitectureSpec, cfg: float) -> float:
    lo, hi = spec.cfg_range
    if not math.isfinite(cfg):
        return spec.cfg
    return round(min(hi, max(lo, cfg)), 2)
