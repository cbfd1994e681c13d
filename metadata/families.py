"""CivitAI's base models, their groups and what loads on what: data only.

Source: civitai/civitai, commit 02282ba458e6e100577848511e58885be49584e4,
src/shared/constants/base-model.constants.ts: `baseModelConfig` (every base-model string and its
`group`), `baseModelGroupConfig` (group display names) and `baseModelGenerationConfig` (per group,
which base models' LoRAs are supported fully or partially on its checkpoints). The group ids below
are CivitAI's own; "SDXLRefiner", "Hunyuan3D" and "unknown" are ours, for models CivitAI does not list.

`architecture` is this pack's contract value (contracts.md): the graph family the planner can build
(`selector/architectures.py`: sd1, sd2, sdxl and its Pony/Illustrious/NoobAI/distilled variants, sd3,
Flux.1 and AuraFlow); `video` for video models; `unknown` for every other family, so an unsupported
model is never planned as a supported one. Flux.2 [dev] (a Mistral text encoder and a 32-channel
VAE) and Playground v2.5 (EDM sampling) read `unknown`: their graphs are not the flux/sdxl ones, and
the family keeps what they are.
"""
from __future__ import annotations

from dataclasses import dataclass

CIVITAI_SOURCE = ("civitai/civitai", "02282ba458e6e100577848511e58885be49584e4",
                  "src/shared/constants/base-model.constants.ts")


@dataclass(frozen=True)
class Group:
    id: str
    label: str  # CivitAI's baseModelGroupConfig name (ours for our own ids)
    architecture: str  # contract value
    media: str = "image"  # "image", "video" or "3d"


def _g(gid: str, label: str, arch: str = "unknown", media: str = "image") -> Group:
    return Group(gid, label, arch, media)


GROUPS: dict[str, Group] = {g.id: g for g in (
    _g("SD1", "Stable Diffusion 1.x", "sd1"),
    _g("SD2", "Stable Diffusion 2.x", "sd2"),
    _g("SDXL", "Stable Diffusion XL", "sdxl"),
    _g("SDXLDistilled", "SDXL Distilled", "sdxl"),
    _g("PlaygroundV2", "Playground v2"),  # v2.5 is EDM-sampled: no graph the planner builds
    _g("Pony", "Pony Diffusion", "sdxl"),
    _g("Illustrious", "Illustrious", "sdxl"),
    _g("NoobAI", "NoobAI", "sdxl"),
    _g("SD3", "Stable Diffusion 3", "sd3"),
    _g("SD3_5M", "Stable Diffusion 3.5 Medium", "sd3"),
    _g("Flux1", "Flux.1", "flux"),
    _g("FluxKrea", "Flux.1 Krea", "flux"),
    _g("Flux1Kontext", "Flux.1 Kontext", "flux"),
    _g("Flux2", "Flux.2"),
    _g("Flux2Klein_9B", "Flux.2 Klein 9B"),
    _g("Flux2Klein_9B_base", "Flux.2 Klein 9B-base"),
    _g("Flux2Klein_4B", "Flux.2 Klein 4B"),
    _g("Flux2Klein_4B_base", "Flux.2 Klein 4B-base"),
    _g("AuraFlow", "AuraFlow", "auraflow"),
    _g("PonyV7", "Pony Diffusion V7", "auraflow"),
    _g("Chroma", "Chroma"),
    _g("Kolors", "Kolors"),
    _g("HyDit1", "Hunyuan DiT"),
    _g("PixArtA", "PixArt Alpha"),
    _g("PixArtE", "PixArt Sigma"),
    _g("Lumina", "Lumina"),
    _g("Qwen", "Qwen"),
    _g("HiDream", "HiDream"),
    _g("SCascade", "Stable Cascade"),
    _g("ZImageTurbo", "ZImageTurbo"),
    _g("ZImageBase", "ZImageBase"),
    _g("Anima", "Anima"),
    _g("ODOR", "ODOR"),
    _g("HyV1", "Hunyuan Video", "video", "video"),
    _g("LTXV", "LTX Video", "video", "video"),
    _g("LTXV2", "LTX Video 2", "video", "video"),
    _g("CogVideoX", "CogVideoX", "video", "video"),
    _g("Mochi", "Mochi", "video", "video"),
    _g("SVD", "Stable Video Diffusion", "video", "video"),
    _g("WanVideo", "Wan Video", "video", "video"),
    _g("WanVideo1_3B_T2V", "Wan Video 1.3B T2V", "video", "video"),
    _g("WanVideo14B_T2V", "Wan Video 14B T2V", "video", "video"),
    _g("WanVideo14B_I2V_480p", "Wan Video 14B I2V 480p", "video", "video"),
    _g("WanVideo14B_I2V_720p", "Wan Video 14B I2V 720p", "video", "video"),
    _g("WanVideo-22-TI2V-5B", "Wan Video 2.2 TI2V 5B", "video", "video"),
    _g("WanVideo-22-I2V-A14B", "Wan Video 2.2 I2V A14B", "video", "video"),
    _g("WanVideo-22-T2V-A14B", "Wan Video 2.2 T2V A14B", "video", "video"),
    _g("WanVideo-25-T2V", "Wan Video 2.5 T2V", "video", "video"),
    _g("WanVideo-25-I2V", "Wan Video 2.5 I2V", "video", "video"),
    # Hosted services CivitAI lists (hidden): never a local file the planner can run.
    _g("Imagen4", "Imagen 4"), _g("NanoBanana", "Nano Banana"), _g("OpenAI", "OpenAI"),
    _g("Seedream", "Seedream"), _g("Kling", "Kling", media="video"), _g("Sora2", "Sora 2", media="video"),
    _g("Veo3", "Veo 3", media="video"), _g("Vidu", "Vidu Q1", media="video"),
    _g("Seedance2", "Seedance 2", media="video"),
    _g("Other", "Other"),
    # Ours: models CivitAI has no group for.
    _g("SDXLRefiner", "SDXL Refiner"),
    _g("Hunyuan3D", "Hunyuan 3D", media="3d"),
    _g("unknown", "unknown"),
)}

# Every CivitAI base-model string (baseModelConfig `name`) -> its group, in CivitAI's spelling.
BASE_MODELS: dict[str, str] = {
    "Anima": "Anima", "AuraFlow": "AuraFlow", "Chroma": "Chroma", "CogVideoX": "CogVideoX",
    "Flux.1 S": "Flux1", "Flux.1 D": "Flux1", "Flux.1 Krea": "FluxKrea", "Flux.1 Kontext": "Flux1Kontext",
    "Flux.2 D": "Flux2", "Flux.2 Klein 9B": "Flux2Klein_9B", "Flux.2 Klein 9B-base": "Flux2Klein_9B_base",
    "Flux.2 Klein 4B": "Flux2Klein_4B", "Flux.2 Klein 4B-base": "Flux2Klein_4B_base",
    "HiDream": "HiDream", "Hunyuan 1": "HyDit1", "Hunyuan Video": "HyV1", "Illustrious": "Illustrious",
    "Imagen4": "Imagen4", "Kling": "Kling", "Kolors": "Kolors", "LTXV": "LTXV", "LTXV2": "LTXV2",
    "Lumina": "Lumina", "Mochi": "Mochi", "Nano Banana": "NanoBanana", "NoobAI": "NoobAI", "ODOR": "ODOR",
    "OpenAI": "OpenAI", "Other": "Other", "PixArt a": "PixArtA", "PixArt E": "PixArtE",
    "Playground v2": "PlaygroundV2", "Pony": "Pony", "Pony V7": "PonyV7", "Qwen": "Qwen",
    "Stable Cascade": "SCascade",
    "SD 1.4": "SD1", "SD 1.5": "SD1", "SD 1.5 LCM": "SD1", "SD 1.5 Hyper": "SD1",
    "SD 2.0": "SD2", "SD 2.0 768": "SD2", "SD 2.1": "SD2", "SD 2.1 768": "SD2", "SD 2.1 Unclip": "SD2",
    "SD 3": "SD3", "SD 3.5": "SD3", "SD 3.5 Large": "SD3", "SD 3.5 Large Turbo": "SD3",
    "SD 3.5 Medium": "SD3_5M",
    "Sora 2": "Sora2",
    "SDXL 0.9": "SDXL", "SDXL 1.0": "SDXL", "SDXL 1.0 LCM": "SDXL", "SDXL Lightning": "SDXL",
    "SDXL Hyper": "SDXL", "SDXL Turbo": "SDXL", "SDXL Distilled": "SDXLDistilled",
    "Seedance 2": "Seedance2", "Seedream": "Seedream", "SVD": "SVD", "SVD XT": "SVD", "Veo 3": "Veo3",
    "Vidu Q1": "Vidu", "Wan Video": "WanVideo", "Wan Video 1.3B t2v": "WanVideo1_3B_T2V",
    "Wan Video 14B t2v": "WanVideo14B_T2V", "Wan Video 14B i2v 480p": "WanVideo14B_I2V_480p",
    "Wan Video 14B i2v 720p": "WanVideo14B_I2V_720p", "Wan Video 2.2 TI2V-5B": "WanVideo-22-TI2V-5B",
    "Wan Video 2.2 I2V-A14B": "WanVideo-22-I2V-A14B", "Wan Video 2.2 T2V-A14B": "WanVideo-22-T2V-A14B",
    "Wan Video 2.5 T2V": "WanVideo-25-T2V", "Wan Video 2.5 I2V": "WanVideo-25-I2V",
    "ZImageTurbo": "ZImageTurbo", "ZImageBase": "ZImageBase",
    # Ours (not CivitAI base models): the SDXL refiner and Hunyuan's 3D models.
    "SDXL Refiner": "SDXLRefiner", "Hunyuan 3D": "Hunyuan3D",
}

# Other spellings seen in sidecars and trainer metadata (lower case) -> the CivitAI string.
ALIASES: dict[str, str] = {
    "sd1": "SD 1.5", "sd 1": "SD 1.5", "sd15": "SD 1.5", "sd 1.x": "SD 1.5", "sd2": "SD 2.1", "sd 2": "SD 2.1",
    "sd 2.x": "SD 2.1", "sdxl": "SDXL 1.0", "sdxl refiner 1.0": "SDXL Refiner", "sd3": "SD 3", "sd 3.5 m": "SD 3.5 Medium",
    "sd 3.5 l": "SD 3.5 Large", "flux": "Flux.1 D", "flux.1": "Flux.1 D", "flux.1 dev": "Flux.1 D",
    "flux.1 schnell": "Flux.1 S", "flux.2": "Flux.2 D", "flux.2 dev": "Flux.2 D",
    "hunyuan dit": "Hunyuan 1", "hunyuan3d": "Hunyuan 3D", "hunyuan 3d 2": "Hunyuan 3D", "ltx video": "LTXV",
    "ltx-video": "LTXV", "ltx video 2": "LTXV2", "ltx-2": "LTXV2", "z image turbo": "ZImageTurbo",
    "z-image turbo": "ZImageTurbo", "z image base": "ZImageBase", "pixart sigma": "PixArt E",
    "pixart alpha": "PixArt a", "qwen image": "Qwen", "qwen-image": "Qwen", "lumina 2": "Lumina",
    "stable cascade": "Stable Cascade", "wan": "Wan Video", "illustrious xl": "Illustrious",
}

# baseModelGenerationConfig, LoRA-like model types only (LORA, DoRA, LoCon): for a checkpoint of
# group G, the LoRA base models supported fully and partially. Groups absent here have no table;
# for them resources of the same group are taken as fully compatible.
_SDXL_BASES = ("SDXL 0.9", "SDXL 1.0", "SDXL 1.0 LCM", "SDXL Lightning", "SDXL Hyper", "SDXL Turbo")
_SDXL_ECOSYSTEM_PARTIAL = ("SDXL 0.9", "SDXL 1.0", "SDXL 1.0 LCM", "Pony", "Illustrious", "NoobAI")
_WAN_21_14B = ("Wan Video 14B t2v", "Wan Video 14B i2v 480p", "Wan Video 14B i2v 720p")
_WAN_22 = ("Wan Video 2.2 T2V-A14B", "Wan Video 2.2 I2V-A14B", "Wan Video 2.2 TI2V-5B")
LORA_SUPPORT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "SD1": (("SD 1.4", "SD 1.5", "SD 1.5 LCM", "SD 1.5 Hyper"), ()),
    "SDXL": (_SDXL_BASES, ("Pony", "Illustrious", "NoobAI")),
    "Pony": (("Pony",), _SDXL_ECOSYSTEM_PARTIAL),
    "PonyV7": (("Pony V7",), ()),
    "Illustrious": (("Illustrious",), _SDXL_ECOSYSTEM_PARTIAL),
    "Chroma": (("Chroma",), ()),
    "NoobAI": (("NoobAI",), _SDXL_ECOSYSTEM_PARTIAL),
    "Flux1": (("Flux.1 S", "Flux.1 D", "Flux.1 Krea"), ()),
    "FluxKrea": (("Flux.1 Krea", "Flux.1 D"), ()),
    "Flux2": (("Flux.2 D",), ()),
    "Flux2Klein_9B": (("Flux.2 Klein 9B",), ()),
    "Flux2Klein_9B_base": (("Flux.2 Klein 9B-base",), ()),
    "Flux2Klein_4B": (("Flux.2 Klein 4B",), ()),
    "Flux2Klein_4B_base": (("Flux.2 Klein 4B-base",), ()),
    "HiDream": (("HiDream",), ()),
    "HyV1": (("Hunyuan Video",), ()),
    "Qwen": (("Qwen",), ()),
    "WanVideo": (("Wan Video",), ()),
    "WanVideo14B_T2V": (("Wan Video 14B t2v",), _WAN_22),
    "WanVideo14B_I2V_480p": (("Wan Video 14B i2v 480p", "Wan Video 14B i2v 720p"), _WAN_22),
    "WanVideo14B_I2V_720p": (("Wan Video 14B i2v 720p",), ("Wan Video 14B i2v 480p",) + _WAN_22),
    "WanVideo-22-T2V-A14B": (("Wan Video 2.2 T2V-A14B",), _WAN_21_14B),
    "WanVideo-22-I2V-A14B": (("Wan Video 2.2 I2V-A14B",), _WAN_21_14B),
    "WanVideo-22-TI2V-5B": (("Wan Video 2.2 TI2V-5B",), _WAN_21_14B),
    "LTXV2": (("LTXV2",), ()),
    "ZImageTurbo": (("ZImageTurbo",), ("ZImageBase",)),
    "ZImageBase": (("ZImageBase",), ()),
}

# Inside one CivitAI group, base models whose networks differ in width, so that a LoRA of one
# cannot load on the other: CivitAI's SD3 group holds SD 3 (Medium, 2B, hidden 1536) beside
# SD 3.5 Large (8B, hidden 2432). "SD 3.5" names no size and stays compatible with both.
INCOMPATIBLE_IN_GROUP: frozenset[frozenset[str]] = frozenset({
    frozenset({"SD 3", "SD 3.5 Large"}), frozenset({"SD 3", "SD 3.5 Large Turbo"}),
})

# Fast (few-step, low-CFG) variants, from the base-model string: name -> kind.
FAST_VARIANTS: dict[str, str] = {
    "SD 1.5 LCM": "lcm", "SD 1.5 Hyper": "hyper", "SDXL 1.0 LCM": "lcm", "SDXL Lightning": "lightning",
    "SDXL Hyper": "hyper", "SDXL Turbo": "turbo", "Flux.1 S": "schnell", "SD 3.5 Large Turbo": "turbo",
    "ZImageTurbo": "turbo", "Flux.2 Klein 4B": "distilled", "Flux.2 Klein 9B": "distilled",
}

# Groups whose checkpoints share the SDXL UNet (CivitAI's "ecosystem: sdxl" and SDXL's own groups).
SDXL_ECOSYSTEM: frozenset[str] = frozenset({"SDXL", "SDXLDistilled", "PlaygroundV2", "Pony", "Illustrious", "NoobAI"})
