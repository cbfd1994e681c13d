"""Tell a model's family from its tensor names and shapes, the way ComfyUI does.

Sidecars are often missing, stale or wrong; the tensors are what ComfyUI will load. One detector per
kind of file: checkpoints and diffusion models in metadata/detect_model.py (ComfyUI's
`comfy/model_detection.py`), LoRAs in metadata/detect_lora.py (ComfyUI's `comfy/lora.py` key maps),
embeddings, VAEs, text encoders and GGUF files here. Each returns a Detection (metadata/detection.py):
the CivitAI family, the contract architecture, a confidence and its evidence, and whether that
evidence is decisive. Only names and shapes are used; no tensor is ever read.
"""
from __future__ import annotations

from typing import Any, Mapping

from . import families as F
from .detect_lora import LoraKeys, detect_lora_keys, looks_like_lora
from .detect_model import detect_model, detect_network, latent_channels, strip_model_prefix
from .detection import Detection, Shape, Tensors, found, with_extra

_SDXL_TEXT = tuple(F.SDXL_ECOSYSTEM)
_WAN_GGUF = tuple(g for g in F.GROUPS if g.startswith("WanVideo"))

__all__ = ["Detection", "detect", "detect_embedding", "detect_gguf", "detect_lora", "detect_model",
           "detect_text_encoder", "detect_vae", "looks_like_lora"]


def detect(kind: str, tensors: Tensors, metadata: Mapping[str, str] | None = None) -> Detection:
    """Detection for a file of folder kind `kind` (a key of FOLDER_KINDS)."""
    if kind == "lora":
        return detect_lora(tensors, metadata)
    if kind in ("checkpoint", "diffusion_model"):
        det = detect_model(tensors)
        if det.family == "unknown" and looks_like_lora(list(tensors)):
            return with_extra(det, looks_like="lora")
        return det
    if kind == "embedding":
        return detect_embedding(tensors)
    if kind == "vae":
        return detect_vae(tensors)
    if kind == "text_encoder":
        return detect_text_encoder(tensors)
    return Detection()


def detect_lora(tensors: Tensors, metadata: Mapping[str, str] | None = None) -> Detection:
    """A LoRA's family from its key format and the widths its adapters have."""
    keys = LoraKeys(tensors)
    if not looks_like_lora(keys.text):
        shapes = {k: s for k, (_, s) in tensors.items()}
        if detect_network(strip_model_prefix(shapes)) is not None:
            return Detection(evidence="no LoRA keys", extra={"looks_like": "checkpoint"})
        return Detection(evidence="no LoRA keys")
    det = detect_lora_keys(keys, metadata or {})
    return det if det is not None else Detection(evidence="LoRA keys of no known family")


# --- embeddings, VAEs, text encoders ----------------------------------------------------------

def detect_embedding(tensors: Tensors) -> Detection:
    """Textual inversion: SDXL files carry `clip_l` + `clip_g`; SD1/SD2 one [n, width] tensor."""
    shapes = {k: s for k, (_, s) in tensors.items()}
    if "clip_g" in shapes and "clip_l" in shapes:
        return found("SDXL 1.0", "clip_l + clip_g vectors", decisive=True, candidates=_SDXL_TEXT)
    for key in ("emb_params", *shapes):
        s = shapes.get(key)
        if s and len(s) in (1, 2):
            width = s[-1]
            if width == 768:
                return found("SD 1.5", f"{key} width 768", decisive=False, confidence=0.6)
            if width == 1024:
                return found("SD 2.1", f"{key} width 1024", decisive=False, confidence=0.6)
    return Detection(evidence="no known embedding width")


def detect_vae(tensors: Tensors) -> Detection:
    """VAEs of SD1 and SDXL (4 latent channels) or SD3 and Flux (16) share shapes, so the
    architecture stays unknown; `latent_channels` is what a picker can match on."""
    shapes = {k: s for k, (_, s) in tensors.items()}
    if any(len(s) == 5 for s in shapes.values()):
        return Detection(architecture="video", confidence=0.4, evidence="3D convolutions (video VAE)")
    latent = latent_channels(shapes, "")
    if latent:
        return Detection(evidence=f"{latent} latent channels", extra={"latent_channels": latent})
    return Detection(evidence="no known VAE keys")


def detect_text_encoder(tensors: Tensors) -> Detection:
    """Which text encoder (clip_l, clip_g, t5xxl, ...) as extra["text_encoder_type"]."""
    shapes = {k: s for k, (_, s) in tensors.items()}
    kind = _text_encoder_type(shapes)
    if kind is None:
        return Detection(evidence="no known text-encoder keys")
    return Detection(evidence=kind, extra={"text_encoder_type": kind})


def _text_encoder_type(shapes: Mapping[str, Shape]) -> str | None:
    for k, s in shapes.items():
        if k.endswith("text_model.encoder.layers.0.self_attn.k_proj.weight") and s:
            return {768: "clip_l", 1024: "clip_h", 1280: "clip_g"}.get(s[0], "clip")
    for k, s in shapes.items():
        if k.endswith("encoder.block.0.layer.0.SelfAttention.k.weight") and s:
            vocab = next((v[0] for key, v in shapes.items()
                          if key.endswith(("shared.weight", "encoder.embed_tokens.weight")) and v), None)
            if vocab == 256384:
                return "umt5xxl"
            return "t5xxl" if s[0] == 4096 else "t5"
    if any(k.endswith("layers.0.self_attn.q_proj.weight") for k in shapes):
        return "llm"
    return None


# --- GGUF -------------------------------------------------------------------------------------

# ComfyUI-GGUF / llama.cpp `general.architecture` -> (base model, groups the converter's name allows)
_FLUX_GGUF = ("Flux1", "FluxKrea", "Flux1Kontext", "Flux2", "Flux2Klein_4B", "Flux2Klein_4B_base",
              "Flux2Klein_9B", "Flux2Klein_9B_base")
_GGUF_ARCHES: dict[str, tuple[str, tuple[str, ...]]] = {
    "flux": ("Flux.1 D", _FLUX_GGUF), "flux2": ("Flux.2 D", ("Flux2",)), "chroma": ("Chroma", ()),
    "sd1": ("SD 1.5", ()), "sdxl": ("SDXL 1.0", _SDXL_TEXT), "sd3": ("SD 3.5", ("SD3", "SD3_5M")),
    "aura": ("AuraFlow", ("AuraFlow", "PonyV7")), "wan": ("Wan Video", _WAN_GGUF),
    "hyvid": ("Hunyuan Video", ()), "ltxv": ("LTXV", ("LTXV", "LTXV2")), "mochi": ("Mochi", ()),
    "hidream": ("HiDream", ()), "lumina2": ("Lumina", ("Lumina", "ZImageTurbo", "ZImageBase")),
    "qwen_image": ("Qwen", ()), "cosmos": ("Other", ()),
}
_GGUF_TEXT_ENCODERS = {"t5": "t5xxl", "t5encoder": "t5xxl", "umt5": "umt5xxl"}


def detect_gguf(kind: str, metadata: Mapping[str, Any]) -> Detection:
    """Detection from a GGUF file's `general.architecture`, written by the converter from the keys."""
    arch_name = str(metadata.get("general.architecture", "")).lower()
    if not arch_name:
        return Detection(evidence="GGUF without general.architecture")
    if kind == "text_encoder" or arch_name in _GGUF_TEXT_ENCODERS:
        te = _GGUF_TEXT_ENCODERS.get(arch_name, "llm")
        return Detection(evidence=f"GGUF {arch_name}", extra={"text_encoder_type": te})
    if arch_name in _GGUF_ARCHES:
        base, cands = _GGUF_ARCHES[arch_name]
        return found(base, f"GGUF general.architecture {arch_name}", decisive=True, candidates=cands,
                     confidence=0.9 if not cands else 0.6)
    return Detection(evidence=f"GGUF general.architecture {arch_name}")
