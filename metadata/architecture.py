"""Tell a model's architecture from its tensor names and shapes, the way ComfyUI does.

Sidecars are often missing, stale or wrong; the tensors are what ComfyUI will load. The markers follow
ComfyUI's own `comfy/model_detection.py` (`detect_unet_config`, `unet_prefix_from_state_dict`)
and `comfy/lora.py` (the LoRA key formats it accepts: kohya `lora_unet_*`/`lora_te*_*`,
diffusers/peft `unet.`/`transformer.`, ComfyUI `diffusion_model.`), so what we call "sdxl" is
what ComfyUI will load as SDXL. Only names and shapes are used; no tensor is ever read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from . import base_models

Shape = tuple[int, ...]
Tensors = Mapping[str, tuple[str, Shape]]  # name -> (dtype, shape), as SafetensorsHeader.tensors


@dataclass(frozen=True)
class Detection:
    """What the tensors say. `confident` means the evidence is specific enough to overrule a
    sidecar that claims another architecture (a shape or a block name unique to one family)."""

    architecture: str = "unknown"
    base_model: str = "Unknown"  # best guess: DEFAULT_BASE_MODEL of the architecture, or finer
    confident: bool = False
    evidence: str = ""  # which keys decided, for logs and problem strings
    has_vae: bool | None = None  # checkpoints only
    extra: Mapping[str, Any] = field(default_factory=dict)


def detect(kind: str, tensors: Tensors, metadata: Mapping[str, str] | None = None) -> Detection:
    """Detection for a file of folder kind `kind` (a key of FOLDER_KINDS)."""
    if kind == "lora":
        return detect_lora(tensors, metadata)
    if kind in ("checkpoint", "diffusion_model"):
        det = detect_model(tensors)
        if det.architecture == "unknown" and looks_like_lora(tensors):
            return _with_extra(det, looks_like="lora")
        return det
    if kind == "embedding":
        return detect_embedding(tensors)
    if kind == "vae":
        return detect_vae(tensors)
    if kind == "text_encoder":
        return detect_text_encoder(tensors)
    return Detection()


def _found(arch: str, evidence: str, base_model: str | None = None, confident: bool = True,
           **extra: Any) -> Detection:
    return Detection(architecture=arch, base_model=base_model or base_models.DEFAULT_BASE_MODEL[arch],
                     confident=confident and arch != "unknown", evidence=evidence, extra=extra)


def _with_extra(det: Detection, **extra: Any) -> Detection:
    return Detection(det.architecture, det.base_model, det.confident, det.evidence, det.has_vae,
                     {**det.extra, **extra})


# --- checkpoints and diffusion models -------------------------------------------------------

# ComfyUI's unet_prefix_from_state_dict candidates, plus the bare `diffusion_model.` of exports.
_MODEL_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "model.model.", "net.", "model.")
_VAE_PREFIXES = ("first_stage_model.", "vae.")  # first_stage_model.taesd_decoder.* counts too
_TEXT_ENCODER_PREFIXES = ("cond_stage_model.", "conditioner.", "text_encoders.")


def detect_model(tensors: Tensors) -> Detection:
    """Checkpoint or diffusion model: the diffusion network's family, plus has_vae."""
    shapes = {k: s for k, (_, s) in tensors.items()}
    bare = _strip_model_prefix(shapes)
    det = _detect_dit(bare) or _detect_unet(bare) or Detection(evidence="no known diffusion-model keys")
    has_vae = any(k.startswith(_VAE_PREFIXES) for k in shapes)
    extra: dict[str, Any] = dict(det.extra)
    extra["has_text_encoder"] = any(k.startswith(_TEXT_ENCODER_PREFIXES) for k in shapes)
    latent = _latent_channels(shapes, "first_stage_model.") or _latent_channels(shapes, "vae.")
    if latent:
        extra["latent_channels"] = latent
    return Detection(det.architecture, det.base_model, det.confident, det.evidence, has_vae, extra)


def _strip_model_prefix(shapes: Mapping[str, Shape]) -> dict[str, Shape]:
    """Keys relative to the diffusion model, like ComfyUI: the prefix most keys share (> 5)."""
    counts = dict.fromkeys(_MODEL_PREFIXES, 0)
    for k in shapes:
        for p in _MODEL_PREFIXES:
            if k.startswith(p):
                counts[p] += 1
                break
    best = max(counts, key=lambda p: counts[p])
    if counts[best] <= 5:
        return dict(shapes)
    return {k[len(best):]: s for k, s in shapes.items() if k.startswith(best)}


# (marker key, architecture, base model): DiT families, in ComfyUI's detection order.
_DIT_MARKERS: tuple[tuple[str, str, str], ...] = (
    ("double_layers.0.attn.w1q.weight", "auraflow", "AuraFlow"),
    ("joint_transformer_blocks.0.attn.to_q.weight", "auraflow", "AuraFlow"),  # diffusers AuraFlow
    ("mlp_t5.0.weight", "unknown", "Hunyuan 1"),
    ("txt_in.individual_token_refiner.blocks.0.norm1.weight", "video", "Hunyuan Video"),
    ("t5_yproj.weight", "video", "Mochi"),
    ("head.modulation", "video", "Wan Video"),
    ("cap_embedder.1.weight", "unknown", "Lumina"),
    ("caption_projection.0.linear.weight", "unknown", "HiDream"),
    ("txt_norm.weight", "unknown", "Qwen"),
    ("t_block.1.weight", "unknown", "PixArt a"),
    ("clf.1.weight", "unknown", "Stable Cascade"),
)


def _detect_dit(bare: Mapping[str, Shape]) -> Detection | None:
    if "joint_blocks.0.context_block.attn.qkv.weight" in bare:
        return _found("sd3", "joint_blocks (MMDiT)", _sd3_variant(bare))
    for marker, arch, base in _DIT_MARKERS[:4]:  # checked before Flux, as ComfyUI does
        if marker in bare:
            return _found(arch, marker, base)
    if _has_prefix(bare, "double_blocks.") and _has_prefix(bare, "single_blocks."):
        return _found("flux", "double_blocks + single_blocks", _flux_variant(bare))
    if _has_prefix(bare, "single_transformer_blocks.") and _has_prefix(bare, "transformer_blocks."):
        return _found("flux", "diffusers Flux transformer_blocks", "Flux.1 D")
    if "adaln_single.emb.timestep_embedder.linear_1.bias" in bare:
        if "pos_embed.proj.bias" in bare:
            return _found("unknown", "PixArt (diffusers)", "PixArt a")
        return _found("video", "adaln_single (LTXV)", "LTXV")
    for marker, arch, base in _DIT_MARKERS[4:]:
        if marker in bare:
            return _found(arch, marker, base)
    if "transformer_blocks.0.attn.add_q_proj.weight" in bare:  # after Qwen, which shares the name
        return _found("sd3", "diffusers SD3 transformer_blocks", _sd3_variant(bare))
    return None


def _sd3_variant(bare: Mapping[str, Shape]) -> str:
    """SD 3 Medium, SD 3.5 Medium (has x_block attn2) or SD 3.5 Large (hidden 2432)."""
    emb = bare.get("x_embedder.proj.weight") or bare.get("pos_embed.proj.weight")
    if emb and emb[0] >= 2432:
        return "SD 3.5 Large"
    if any(k.startswith("joint_blocks.") and ".x_block.attn2." in k for k in bare):
        return "SD 3.5 Medium"
    return "SD 3"


def _flux_variant(bare: Mapping[str, Shape]) -> str:
    if "double_stream_modulation_img.lin.weight" in bare:
        return "Flux.2 D"
    if _has_prefix(bare, "distilled_guidance_layer."):
        return "Chroma"  # Flux architecture, its own CivitAI family
    if "img_in.weight" in bare and not _has_prefix(bare, "guidance_in."):
        return "Flux.1 S"  # schnell has no guidance embedder; dev does
    return "Flux.1 D"


def _detect_unet(bare: Mapping[str, Shape]) -> Detection | None:
    """SD1/SD2/SDXL/SVD UNets (ldm `input_blocks.*` or diffusers `down_blocks.*` layout)."""
    first = bare.get("input_blocks.0.0.weight") or bare.get("conv_in.weight")
    if first is None:
        return None
    extra: dict[str, Any] = {}
    if len(first) == 4 and first[1] == 9:
        extra["inpainting"] = True
    if any(".time_stack." in k or ".time_mix_blocks." in k for k in bare):
        return _found("video", "UNet with temporal layers (SVD)", "SVD", **extra)
    context = _context_dim(bare)
    adm = bare.get("label_emb.0.0.weight") or bare.get("add_embedding.linear_1.weight")
    adm_in = adm[1] if adm and len(adm) == 2 else None
    if context == 768:
        return _found("sd1", "UNet cross-attention context 768", **extra)
    if context == 1024:
        return _found("sd2", "UNet cross-attention context 1024", **extra)
    if context in (2048, 1280) or adm_in in (2816, 2560):
        return _found("sdxl", f"UNet context {context}, adm_in_channels {adm_in}", **extra)
    return None


def _context_dim(bare: Mapping[str, Shape]) -> int | None:
    """Text-embedding width the UNet cross-attends to: attn2.to_k's input features."""
    for k, s in bare.items():
        if k.endswith("attn2.to_k.weight") and len(s) == 2 and "time_" not in k:
            return s[1]
    return None


def _latent_channels(shapes: Mapping[str, Shape], prefix: str) -> int | None:
    for key in (prefix + "decoder.conv_in.weight", prefix + "taesd_decoder.1.weight"):
        s = shapes.get(key)
        if s and len(s) >= 2:
            return s[1]
    return None


def _has_prefix(keys: Iterable[str], prefix: str) -> bool:
    return any(k.startswith(prefix) for k in keys)


# --- LoRAs ------------------------------------------------------------------------------------

# Suffixes of the tensor that projects the layer input down to the rank: shape [rank, in, ...].
_DOWN_SUFFIXES = (".lora_down.weight", ".lora_A.weight", ".lora.down.weight", "_lora.down.weight", ".hada_w1_b")
_LORA_MARKERS = ("lora_down", "lora_up", "lora_A.", "lora_B.", "lora.down", "lora.up", "hada_w", "lokr_w",
                 ".oft_")


def looks_like_lora(tensors: Iterable[str]) -> bool:
    text = "\n".join(tensors)
    return any(m in text for m in _LORA_MARKERS)


class _Keys:
    """Tensor names with fast substring queries: one joined string answers most questions
    in C, so detection stays cheap on LoRAs with thousands of keys."""

    def __init__(self, shapes: Mapping[str, Shape]):
        self.shapes = shapes
        self.text = "\n".join(shapes)

    def contains(self, *parts: str) -> bool:
        """Some key contains every one of `parts`."""
        if not all(p in self.text for p in parts):
            return False
        return len(parts) == 1 or any(all(p in k for p in parts) for k in self.shapes)

    def down_in_dim(self, *parts: str) -> int | None:
        """Input width of the first down projection whose key contains all `parts`."""
        if not all(p in self.text for p in parts):
            return None
        for k, s in self.shapes.items():
            if len(s) >= 2 and k.endswith(_DOWN_SUFFIXES) and all(p in k for p in parts):
                return s[1]
        return None


def detect_lora(tensors: Tensors, metadata: Mapping[str, str] | None = None) -> Detection:
    """A LoRA's family from its key format and the input width of its down projections."""
    shapes = {k: s for k, (_, s) in tensors.items()}
    keys = _Keys(shapes)
    if not any(m in keys.text for m in _LORA_MARKERS):
        bare = _strip_model_prefix(shapes)
        if _detect_dit(bare) or _detect_unet(bare):
            return Detection(evidence="no LoRA keys", extra={"looks_like": "checkpoint"})
        return Detection(evidence="no LoRA keys")
    for check in _LORA_CHECKS:
        det = check(keys, metadata or {})
        if det is not None:
            return det
    return Detection(evidence="LoRA keys of no known family")


def _lora_hunyuan_video(keys: _Keys, meta: Mapping[str, str]) -> Detection | None:
    # Hunyuan Video shares Flux's double/single block names; its refiner and `img_mod.linear`
    # (Flux: `img_mod.lin`) tell them apart, and musubi-tuner's metadata names it.
    if keys.contains("individual_token_refiner") or keys.contains("img_mod_linear") \
            or keys.contains("img_mod.linear") or keys.contains("double_blocks.", "img_attn_qkv"):
        return _found("video", "Hunyuan Video block names", "Hunyuan Video")
    trained_on = (meta.get("ss_base_model_version", "") + " " + meta.get("modelspec.architecture", "")).lower()
    if "hunyuan" in trained_on and keys.contains("double_blocks"):
        return _found("video", "double_blocks + trainer metadata 'hunyuan'", "Hunyuan Video")
    return None


def _lora_flux(keys: _Keys, meta: Mapping[str, str]) -> Detection | None:
    if not (keys.contains("double_blocks") or keys.contains("single_blocks")
            or keys.contains("single_transformer_blocks")):
        return None
    hidden = keys.down_in_dim("img_attn", "qkv") or keys.down_in_dim("attn.to_q")
    base = "Flux.2 D" if hidden == 6144 else "Flux.1 D"
    return _found("flux", "double_blocks/single_blocks", base)


def _lora_sd3(keys: _Keys, meta: Mapping[str, str]) -> Detection | None:
    if keys.contains("joint_blocks"):
        return _found("sd3", "joint_blocks")
    if not (keys.contains("transformer_blocks", "add_q_proj") or keys.contains("transformer_blocks", "add_k_proj")):
        return None
    # Diffusers names are shared by SD3, Flux (double blocks only) and Qwen-Image; widths differ.
    if keys.contains("img_mod"):
        return _found("unknown", "transformer_blocks + img_mod (Qwen-Image)", "Qwen")
    hidden = keys.down_in_dim("transformer_blocks", "attn.to_q")
    if hidden == 3072:
        return _found("flux", "diffusers transformer_blocks of width 3072")
    if hidden in (1536, 2432):
        return _found("sd3", f"diffusers transformer_blocks of width {hidden}")
    return _found("sd3", "diffusers transformer_blocks with add_q_proj", confident=False)


def _lora_auraflow(keys: _Keys, meta: Mapping[str, str]) -> Detection | None:
    if keys.contains("double_layers") or keys.contains("joint_transformer_blocks"):
        return _found("auraflow", "double_layers (AuraFlow)")
    return None


def _lora_wan(keys: _Keys, meta: Mapping[str, str]) -> Detection | None:
    if keys.contains("blocks", "cross_attn") and keys.contains("blocks", "self_attn"):
        return _found("video", "blocks.*.cross_attn (Wan)", "Wan Video")
    return None


def _lora_sd_unet(keys: _Keys, meta: Mapping[str, str]) -> Detection | None:
    """SD1/SD2/SDXL: the cross-attention key projection reads the text embedding, so its
    input width is the text encoder's: 768 (CLIP-L), 1024 (OpenCLIP-H), 2048 (L+G)."""
    dim = keys.down_in_dim("attn2", "to_k")
    if dim == 768:
        return _found("sd1", "attn2.to_k input 768")
    if dim == 1024:
        return _found("sd2", "attn2.to_k input 1024")
    if dim in (2048, 1280):
        return _found("sdxl", f"attn2.to_k input {dim}")
    return None


def _lora_text_encoders(keys: _Keys, meta: Mapping[str, str]) -> Detection | None:
    """Text-encoder-only evidence: weaker (Flux and SD3 LoRAs may train CLIP too), so not confident."""
    if keys.contains("lora_te2_") or keys.contains("text_encoder_2."):
        return _found("sdxl", "second text encoder (lora_te2_/text_encoder_2)", confident=False)
    dim = keys.down_in_dim("lora_te_", "k_proj") or keys.down_in_dim("text_encoder.", "k_proj")
    if dim == 768:
        return _found("sd1", "text encoder width 768", confident=False)
    if dim == 1024:
        return _found("sd2", "text encoder width 1024", confident=False)
    if keys.contains("lora_unet_input_blocks_") or keys.contains("lora_unet_output_blocks_"):
        return _found("sdxl", "kohya SDXL block names", confident=False)
    return None


_LORA_CHECKS: tuple[Callable[[_Keys, Mapping[str, str]], Detection | None], ...] = (
    _lora_hunyuan_video, _lora_flux, _lora_sd3, _lora_auraflow, _lora_wan, _lora_sd_unet, _lora_text_encoders,
)


# --- embeddings, VAEs, text encoders ----------------------------------------------------------

def detect_embedding(tensors: Tensors) -> Detection:
    """Textual inversion: SDXL files carry `clip_l` + `clip_g`; SD1/SD2 one [n, width] tensor."""
    shapes = {k: s for k, (_, s) in tensors.items()}
    if "clip_g" in shapes and "clip_l" in shapes:
        return _found("sdxl", "clip_l + clip_g vectors")
    for key in ("emb_params", *shapes):
        s = shapes.get(key)
        if s and len(s) in (1, 2):
            width = s[-1]
            if width == 768:
                return _found("sd1", f"{key} width 768")
            if width == 1024:
                return _found("sd2", f"{key} width 1024")
    return Detection(evidence="no known embedding width")


def detect_vae(tensors: Tensors) -> Detection:
    """VAEs of SD1 and SDXL (4 latent channels) or SD3 and Flux (16) share shapes, so the
    architecture stays unknown; `latent_channels` is what a picker can match on."""
    shapes = {k: s for k, (_, s) in tensors.items()}
    if any(len(s) == 5 for s in shapes.values()):
        return _found("video", "3D convolutions (video VAE)", confident=False)
    latent = _latent_channels(shapes, "")
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

# ComfyUI-GGUF / llama.cpp `general.architecture` -> (architecture, base model)
_GGUF_ARCHES: dict[str, tuple[str, str]] = {
    "flux": ("flux", "Flux.1 D"), "chroma": ("flux", "Chroma"), "sd1": ("sd1", "SD 1.5"),
    "sdxl": ("sdxl", "SDXL 1.0"), "sd3": ("sd3", "SD 3.5"), "aura": ("auraflow", "AuraFlow"),
    "wan": ("video", "Wan Video"), "hyvid": ("video", "Hunyuan Video"), "ltxv": ("video", "LTXV"),
    "mochi": ("video", "Mochi"), "hidream": ("unknown", "HiDream"), "lumina2": ("unknown", "Lumina"),
    "qwen_image": ("unknown", "Qwen"),
}
_GGUF_TEXT_ENCODERS = {"t5": "t5xxl", "t5encoder": "t5xxl", "umt5": "umt5xxl"}


def detect_gguf(kind: str, metadata: Mapping[str, Any]) -> Detection:
    """Detection from a GGUF file's `general.architecture`, written by the converter."""
    arch_name = str(metadata.get("general.architecture", "")).lower()
    if not arch_name:
        return Detection(evidence="GGUF without general.architecture")
    if kind == "text_encoder" or arch_name in _GGUF_TEXT_ENCODERS:
        te = _GGUF_TEXT_ENCODERS.get(arch_name, "llm")
        return Detection(evidence=f"GGUF {arch_name}", extra={"text_encoder_type": te})
    if arch_name in _GGUF_ARCHES:
        arch, base = _GGUF_ARCHES[arch_name]
        return _found(arch, f"GGUF general.architecture {arch_name}", base)
    return Detection(evidence=f"GGUF general.architecture {arch_name}")
