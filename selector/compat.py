"""What loads with what: LoRA/checkpoint compatibility, VAEs and text encoders for a model.

Compatibility is decided from metadata (base model, detected architecture), never from file
names, because a LoRA of another family loads without error and silently does nothing. Names
are used only where a component has nothing else to say about itself (a text encoder called
`t5xxl_fp16.safetensors`, a VAE called `sdxl_vae.safetensors`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

from ..metadata import base_models
from ..metadata.records import ModelRecord
from .architectures import ArchitectureSpec
from .text import words

log = logging.getLogger(__name__)

IMAGE_ARCHITECTURES = frozenset({"sd1", "sd2", "sdxl", "sd3", "flux", "auraflow"})


# --- architectures -----------------------------------------------------------------------------

def _size_guess(size: int) -> str:
    """Architecture a checkpoint of this many bytes most likely is (only when nothing says).

    SD1 fp16 ~2.1 GB, fp32 ~4.2 GB; SDXL fp16 ~6.9 GB. Other sizes are ambiguous.
    """
    gb = size / 1e9
    if 1.6 <= gb <= 2.45 or 3.9 <= gb <= 4.4:
        return "sd1"
    if 6.4 <= gb <= 7.2:
        return "sdxl"
    return "unknown"


@dataclass(frozen=True)
class ArchitectureGuess:
    architecture: str
    base_model: str
    source: str  # "record", "base_model", "family" (known, unsupported), "size", "none"

    @property
    def guessed(self) -> bool:
        return self.source == "size"


def effective_architecture(record: ModelRecord) -> ArchitectureGuess:
    """The record's architecture, from the index, its base model, or (checkpoints) its size."""
    if record.architecture and record.architecture != "unknown":
        return ArchitectureGuess(record.architecture, record.base_model, "record")
    arch = base_models.architecture(record.base_model)
    if arch != "unknown":
        return ArchitectureGuess(arch, record.base_model, "base_model")
    fam = record.family if record.family not in ("", "unknown") else base_models.family(record.base_model)
    if fam not in ("unknown", "Other"):
        # A family the planner cannot build (Kolors, Qwen, Flux.2 [klein], ...): its size must not
        # make it look like SD1 or SDXL.
        return ArchitectureGuess("unknown", record.base_model, "family")
    if record.kind == "checkpoint" and record.size:
        arch = _size_guess(record.size)
        if arch != "unknown":
            return ArchitectureGuess(arch, record.base_model, "size")
    return ArchitectureGuess("unknown", record.base_model, "none")


# --- LoRAs ---------------------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def _compat(lora_base: str, lora_arch: str, lora_family: str, ckpt_base: str, ckpt_arch: str, ckpt_family: str,
            ckpt_guessed: bool) -> str | None:
    result = base_models.compatibility(lora_base, lora_arch, ckpt_base, ckpt_arch,
                                       lora_family=lora_family, ckpt_family=ckpt_family)
    if result == "full" and ckpt_guessed:
        return "partial"  # the checkpoint's family is only a guess: do not promise full
    return result


def lora_compatibility(lora: ModelRecord, ckpt_architecture: str, ckpt_base_model: str | None,
                       ckpt_guessed: bool = False, ckpt_family: str | None = None) -> str | None:
    """"full", "partial" or None (never stack) for a LoRA on a checkpoint (base_models rules,
    CivitAI's groups and support tables). The records' `family` is used where the index knows it."""
    return group_compatibility(lora_group(lora), ckpt_architecture, ckpt_base_model, ckpt_guessed, ckpt_family)


def lora_group(lora: ModelRecord) -> tuple[str, str, str]:
    """What compatibility reads of a LoRA: (base model, architecture, family)."""
    return (lora.base_model or "Unknown", lora.architecture or "unknown", lora.family or "unknown")


def group_compatibility(group: tuple[str, str, str], ckpt_architecture: str, ckpt_base_model: str | None,
                        ckpt_guessed: bool = False, ckpt_family: str | None = None) -> str | None:
    """lora_compatibility for every LoRA of one `lora_group`."""
    return _compat(group[0], group[1], group[2], ckpt_base_model or "Unknown",
                   ckpt_architecture or "unknown", ckpt_family or "unknown", ckpt_guessed)


# --- text encoders -----------------------------------------------------------------------------

def _norm_name(record: ModelRecord) -> str:
    return "_" + "_".join(words(f"{record.name} {record.title}")) + "_"


_ROLE_HINTS: dict[str, tuple[str, ...]] = {
    "clip_l": ("_clip_l_", "_clipl_", "_clip_vit_l_", "_vit_l_", "_vit_l_14_", "_longclip_l_", "_clip_l",
               "_vit_large_"),
    "clip_g": ("_clip_g_", "_clipg_", "_clip_g", "_vit_bigg_", "_bigg_", "_open_clip_bigg_"),
    "clip_h": ("_clip_h_", "_cliph_", "_vit_h_", "_open_clip_h_"),
    "t5xxl": ("_t5xxl_", "_t5xxl", "_t5_xxl_", "_t5_v1_1_xxl_", "_t5_v1_xxl_", "_flan_t5_xxl_", "_t5xxl_fp"),
    "mistral": ("_mistral_",),
    "pile_t5xl": ("_pile_t5", "_pile_t5xl_", "_auraflow_"),
}
_TYPE_TO_ROLE = {"clip_l": "clip_l", "clip_g": "clip_g", "clip_h": "clip_h", "t5xxl": "t5xxl", "t5": "pile_t5xl"}


def text_encoder_role(record: ModelRecord) -> str | None:
    """Which encoder a text-encoder file is: from the header detection, else from its name."""
    detected = record.extra.get("text_encoder_type") if record.extra else None
    n = _norm_name(record)
    if isinstance(detected, str):
        if detected == "llm":
            return "mistral" if "_mistral_" in n or "flux2" in n else None
        if detected in _TYPE_TO_ROLE:
            return _TYPE_TO_ROLE[detected]
    for role, hints in _ROLE_HINTS.items():
        if any(h in n for h in hints):
            return role
    return None


@dataclass(frozen=True)
class ComponentChoice:
    record: ModelRecord | None
    reasons: tuple[str, ...]


def pick_text_encoders(roles: Sequence[str], records: Iterable[ModelRecord], quality: str = "balanced",
                       optional_roles: Sequence[str] = ()) -> tuple[dict[str, ComponentChoice], list[str]]:
    """One text encoder per role (required, then optional ones found); and the missing required roles.

    High qualities take the largest file of a role (fp16 T5), fast and balanced the smallest
    (fp8), which is what fits most GPUs; excluded files are never used.
    """
    by_role: dict[str, list[ModelRecord]] = {}
    for r in records:
        if r.kind != "text_encoder" or r.excluded:
            continue
        role = text_encoder_role(r)
        if role:
            by_role.setdefault(role, []).append(r)
    chosen: dict[str, ComponentChoice] = {}
    missing: list[str] = []
    big_first = quality in ("high", "ultra")
    for role in list(roles) + [r for r in optional_roles if r not in roles]:
        options = by_role.get(role, [])
        if not options:
            if role in roles:
                missing.append(role)
            continue
        options.sort(key=lambda r: ((-r.size if big_first else r.size), r.name))
        pick = options[0]
        why = f"{role} text encoder"
        if len(options) > 1:
            why += f", the {'largest' if big_first else 'smallest'} of {len(options)} for quality '{quality}'"
        if role not in roles:
            why += " (optional, improves prompt following)"
        chosen[role] = ComponentChoice(pick, (why,))
    return chosen, missing


# --- VAEs --------------------------------------------------------------------------------------

_VAE_HINTS: tuple[tuple[str, str], ...] = (
    ("_flux2_", "flux2"), ("_flux_2_", "flux2"), ("_flux", "flux"), ("_ae_", "flux"), ("_sd3", "sd3"),
    ("_sd_3", "sd3"), ("_sdxl", "sdxl"), ("_xl_", "sdxl"), ("_xl", "sdxl"), ("_pony", "sdxl"),
    ("_illustrious", "sdxl"), ("_ft_mse", "sd1"), ("_ft_ema", "sd1"), ("_840000_", "sd1"), ("_560000_", "sd1"),
    ("_kl_f8", "sd1"), ("_sd15", "sd1"), ("_sd1_", "sd1"), ("_sd_1_5_", "sd1"), ("_orangemix", "sd1"),
    ("_anything", "sd1"), ("_blessed", "sd1"), ("_clearvae", "sd1"), ("_vae_ft_", "sd1"),
)
_FLUX2_VAE_FAMILIES = frozenset({"Flux2", "Flux2Klein_4B", "Flux2Klein_4B_base", "Flux2Klein_9B", "Flux2Klein_9B_base"})
_LATENT_CHANNELS = {"sd1": 4, "sd2": 4, "sdxl": 4, "sd3": 16, "flux": 16, "flux2": 32}


def vae_architecture(record: ModelRecord) -> str:
    """The family a VAE file belongs to: sd1 (also SD2), sdxl, sd3, flux, flux2, or unknown.

    VAE files rarely say; base model first, then the index, then the file's name.
    """
    if base_models.family(record.base_model) in _FLUX2_VAE_FAMILIES:
        return "flux2"
    arch = base_models.architecture(record.base_model)
    if arch in IMAGE_ARCHITECTURES:
        return "sd1" if arch == "sd2" else arch
    if record.architecture in IMAGE_ARCHITECTURES:
        return "sd1" if record.architecture == "sd2" else record.architecture
    n = _norm_name(record)
    for hint, fam in _VAE_HINTS:
        if hint in n:
            return fam
    latent = record.extra.get("latent_channels") if record.extra else None
    if latent == 32:
        return "flux2"
    return "unknown"


def is_mentioned(record: ModelRecord, text: str) -> bool:
    """Whether a padded token text names this file (by title or file stem, 4+ characters)."""
    for label in (record.title, record.stem):
        w = " ".join(words(label))
        if len(w) >= 4 and f" {w} " in text:
            return True
    return False


def vae_fits(record: ModelRecord, wanted: str) -> bool:
    fam = vae_architecture(record)
    if fam != "unknown":
        return fam == wanted
    latent = record.extra.get("latent_channels") if record.extra else None
    return latent is not None and latent == _LATENT_CHANNELS.get(wanted)


def pick_vae(wanted: str, records: Iterable[ModelRecord], mentioned: str = "") -> ComponentChoice:
    """The best VAE of family `wanted`; one the checkpoint's description names comes first.

    `mentioned` is the checkpoint's own padded token text (title + description), in which a
    VAE's stem ("vae-ft-mse-840000-ema-pruned") counts as a recommendation.
    """
    fitting = [r for r in records if r.kind == "vae" and not r.excluded and vae_fits(r, wanted)]
    if not fitting:
        return ComponentChoice(None, (f"no {wanted} VAE in the library",))
    if mentioned:
        for r in fitting:
            if is_mentioned(r, mentioned):
                return ComponentChoice(r, (f"the checkpoint's description recommends {r.title or r.stem}",))
    def rank(r: ModelRecord) -> tuple:
        known = vae_architecture(r) != "unknown"
        return (not known, -(r.downloads + 3 * r.likes), r.name)
    fitting.sort(key=rank)
    pick = fitting[0]
    why = f"a {wanted} VAE"
    if vae_architecture(pick) == "unknown":
        why += " (family read from its latent channels)"
    if len(fitting) > 1:
        why += f", best known of {len(fitting)} that fit"
    return ComponentChoice(pick, (why,))


# --- what a checkpoint needs -------------------------------------------------------------------

_NO_BAKED_VAE = (" no vae ", " without vae ", " vae not included ", " not include vae ", " vae is not included ",
                 " no baked vae ", " not baked ", " requires a vae ", " requires vae ", " needs a vae ",
                 " need a vae ", " use a vae ", " use vae ", " external vae ")


@dataclass(frozen=True)
class Needs:
    """Components a model needs beside its own file.

    `vae` is "required" (it has none), "recommended" (its author suggests one) or "" (built in).
    """

    text_encoders: tuple[str, ...]
    optional_text_encoders: tuple[str, ...]
    vae: str
    vae_reason: str


def needs_of(record: ModelRecord, spec: ArchitectureSpec, own_text: str = "") -> Needs:
    """What must be loaded beside `record` for it to run. `own_text` is its padded description text."""
    if record.kind == "diffusion_model":
        return Needs(spec.text_encoders, spec.optional_text_encoders, "required",
                     "a bare diffusion model has no VAE of its own")
    has_te = record.extra.get("has_text_encoder") if record.extra else None
    tes: tuple[str, ...] = spec.text_encoders if has_te is False else ()
    opt: tuple[str, ...] = spec.optional_text_encoders if has_te is False else ()
    if record.has_vae is False:
        return Needs(tes, opt, "required", "the checkpoint file carries no VAE weights")
    if own_text and any(p in own_text for p in _NO_BAKED_VAE):
        return Needs(tes, opt, "recommended", "the checkpoint's description asks for a separate VAE")
    return Needs(tes, opt, "", "")
