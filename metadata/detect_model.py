"""Checkpoints and diffusion models: the family from the diffusion network's key names and shapes.

The markers follow ComfyUI's `comfy/model_detection.py` (`detect_unet_config`,
`unet_prefix_from_state_dict`; yzkee/ComfyUI commit 783545f689a0af730065994b46b382ae24844c99), in
its order, plus its `supported_models.py` for the UNet widths (SDXL context 2048 / adm 2816, the
refiner 1280 / 2560) and Flux.2's text widths (Klein 4B: Qwen3-4B, 3 layers of 2560; Klein 9B:
Qwen3-8B, 3 x 4096; Flux.2 [dev]: Mistral-3 24B, 3 x 5120). Decisive means the marker key *and* a
shape or second key that only that family has; one key alone gives a guess that never overrules
a sidecar. Only names and shapes are read, never a tensor.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from . import families as F
from .detection import Detection, Shape, Tensors, found

# ComfyUI's unet_prefix_from_state_dict candidates, plus the bare `diffusion_model.` of exports.
_MODEL_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "model.model.", "net.", "model.")
_VAE_PREFIXES = ("first_stage_model.", "vae.")  # first_stage_model.taesd_decoder.* counts too
_TEXT_ENCODER_PREFIXES = ("cond_stage_model.", "conditioner.", "text_encoders.")

_FLUX1_DEV = ("Flux1", "FluxKrea", "Flux1Kontext")
_SDXL_UNET = tuple(F.SDXL_ECOSYSTEM)


def detect_model(tensors: Tensors) -> Detection:
    """Checkpoint or diffusion model: the diffusion network's family, plus has_vae."""
    shapes = {k: s for k, (_, s) in tensors.items()}
    bare = strip_model_prefix(shapes)
    det = detect_network(bare) or Detection(evidence="no known diffusion-model keys")
    extra: dict[str, Any] = dict(det.extra)
    extra["has_text_encoder"] = any(k.startswith(_TEXT_ENCODER_PREFIXES) for k in shapes)
    latent = latent_channels(shapes, "first_stage_model.") or latent_channels(shapes, "vae.")
    if latent:
        extra["latent_channels"] = latent
    has_vae = any(k.startswith(_VAE_PREFIXES) for k in shapes)
    det = _kolors_by_encoder(det, shapes)
    det = _playground_by_edm(det, shapes)
    return Detection(architecture=det.architecture, base_model=det.base_model, confidence=det.confidence,
                     evidence=det.evidence, has_vae=has_vae, extra=extra, family=det.family,
                     candidates=det.candidates, decisive=det.decisive, excludes=det.excludes)


def detect_network(bare: Mapping[str, Shape]) -> Detection | None:
    """The family of a diffusion network's keys (prefix already stripped), or None."""
    for check in _CHECKS:
        det = check(bare)
        if det is not None:
            return det
    return None


def strip_model_prefix(shapes: Mapping[str, Shape]) -> dict[str, Shape]:
    """Keys relative to the diffusion model, like ComfyUI: the prefix most keys share (> 5)."""
    counts = dict.fromkeys(_MODEL_PREFIXES, 0)
    for k in shapes:
        for p in _MODEL_PREFIXES:
            if k.startswith(p):
                counts[p] += 1
                break
    best = max(counts, key=lambda p: counts[p])
    # ComfyUI needs more than 5 keys under a prefix; an excerpt of a file may have fewer, so a prefix
    # also counts when it holds most keys outside the VAE and text encoders.
    own = sum(1 for k in shapes if not k.startswith(_VAE_PREFIXES + _TEXT_ENCODER_PREFIXES))
    if counts[best] <= 5 and not (counts[best] > 0 and 2 * counts[best] >= own):
        return dict(shapes)
    return {k[len(best):]: s for k, s in shapes.items() if k.startswith(best)}


def latent_channels(shapes: Mapping[str, Shape], prefix: str) -> int | None:
    for key in (prefix + "decoder.conv_in.weight", prefix + "taesd_decoder.1.weight"):
        s = shapes.get(key)
        if s and len(s) >= 2:
            return s[1]
    return None


def _has_prefix(keys: Mapping[str, Shape], prefix: str) -> bool:
    return any(k.startswith(prefix) for k in keys)


def _dim(bare: Mapping[str, Shape], key: str, axis: int) -> int | None:
    s = bare.get(key)
    return s[axis] if s is not None and len(s) > axis else None


def _any(bare: Mapping[str, Shape], *keys: str) -> bool:
    return any(k in bare for k in keys)


# --- the checks, in ComfyUI's order ------------------------------------------------------------

def _sd3(bare: Mapping[str, Shape]) -> Detection | None:
    if "joint_blocks.0.context_block.attn.qkv.weight" not in bare:
        return None
    hidden = _dim(bare, "x_embedder.proj.weight", 0) or _dim(bare, "joint_blocks.0.x_block.attn.qkv.weight", 1)
    self_attn = any(k.startswith("joint_blocks.") and k.endswith(".x_block.attn2.qkv.weight") for k in bare)
    if hidden is None:
        return found("SD 3.5", "joint_blocks (MMDiT) without x_embedder", decisive=False,
                     candidates=("SD3", "SD3_5M"))
    depth = hidden // 64
    if self_attn:  # ComfyUI's x_block_self_attn_layers: SD 3.5 Medium only
        return found("SD 3.5 Medium", f"MMDiT depth {depth} with x_block.attn2 (x_block_self_attn)", decisive=True)
    if depth >= 38:
        return found("SD 3.5 Large", f"MMDiT depth {depth} (hidden {hidden})", decisive=True, excludes=("SD 3",))
    if depth == 24:
        return found("SD 3", f"MMDiT depth 24 (hidden {hidden}) without x_block self-attention", decisive=True,
                     excludes=("SD 3.5 Large", "SD 3.5 Large Turbo"))
    return found("SD 3.5", f"MMDiT depth {depth}", decisive=False, candidates=("SD3", "SD3_5M"))


def _stable_cascade(bare: Mapping[str, Shape]) -> Detection | None:
    if "clf.1.weight" not in bare:
        return None
    sure = _any(bare, "clip_txt_mapper.weight", "clip_mapper.weight")
    return found("Stable Cascade", "clf.1 + clip mapper (Stable Cascade)", decisive=sure)


def _auraflow(bare: Mapping[str, Shape]) -> Detection | None:
    if "double_layers.0.attn.w1q.weight" not in bare and "joint_transformer_blocks.0.attn.to_q.weight" not in bare:
        return None
    sure = _any(bare, "positional_encoding", "cond_seq_linear.weight", "pos_embed.pos_embed", "context_embedder.weight")
    # Pony V7 is an AuraFlow network: the shapes cannot tell them apart.
    return found("AuraFlow", "AuraFlow double_layers (MMDiT of AuraFlow)", decisive=sure,
                 candidates=("AuraFlow", "PonyV7"), confidence=0.6 if sure else 0.4)


def _hunyuan_dit(bare: Mapping[str, Shape]) -> Detection | None:
    if "mlp_t5.0.weight" not in bare:
        return None
    sure = _any(bare, "extra_embedder.0.weight", "x_embedder.proj.weight")
    return found("Hunyuan 1", "mlp_t5 + extra_embedder (Hunyuan DiT)", decisive=sure)


def _hunyuan_video(bare: Mapping[str, Shape]) -> Detection | None:
    if "txt_in.individual_token_refiner.blocks.0.norm1.weight" not in bare:
        return None
    sure = _any(bare, "img_in.proj.weight", "txt_in.input_embedder.weight")
    return found("Hunyuan Video", "txt_in.individual_token_refiner + img_in.proj (HunyuanVideo)", decisive=sure)


# Flux.2 by hidden width (img_in rows) and text width (txt_in columns): (base model, candidates).
_FLUX2_BY_HIDDEN: dict[int, tuple[str, tuple[str, ...], int]] = {
    6144: ("Flux.2 D", ("Flux2",), 15360),
    3072: ("Flux.2 Klein 4B", ("Flux2Klein_4B", "Flux2Klein_4B_base"), 7680),
    4096: ("Flux.2 Klein 9B", ("Flux2Klein_9B", "Flux2Klein_9B_base"), 12288),
}


def _flux(bare: Mapping[str, Shape]) -> Detection | None:
    key_norm = _any(bare, "double_blocks.0.img_attn.norm.key_norm.weight", "double_blocks.0.img_attn.norm.key_norm.scale")
    chroma = _any(bare, "distilled_guidance_layer.norms.0.weight", "distilled_guidance_layer.norms.0.scale",
                  "distilled_guidance_layer.0.norms.0.weight", "distilled_guidance_layer.0.norms.0.scale") \
        or _has_prefix(bare, "distilled_guidance_layer.")
    if not (key_norm and ("img_in.weight" in bare or chroma)):
        return None
    hidden = _dim(bare, "img_in.weight", 0) or _dim(bare, "txt_in.weight", 0)
    context = _dim(bare, "txt_in.weight", 1)
    if "double_stream_modulation_img.lin.weight" in bare:
        spec = _FLUX2_BY_HIDDEN.get(hidden or 0)
        if spec is None:
            return found("Flux.2 D", f"Flux.2 global modulation, hidden {hidden}", decisive=False,
                         candidates=("Flux2", "Flux2Klein_4B", "Flux2Klein_9B", "Flux2Klein_4B_base",
                                     "Flux2Klein_9B_base"), confidence=0.3)
        base, cands, want_context = spec
        sure = context is None or context == want_context
        return found(base, f"Flux.2 global modulation, hidden {hidden}, text width {context}", decisive=sure,
                     candidates=cands, confidence=0.95 if len(cands) == 1 else 0.7)
    if chroma:
        return found("Chroma", "Flux blocks with distilled_guidance_layer (Chroma)", decisive=True)
    if _any(bare, "double_blocks.0.img_mlp.gate_proj.weight") or (context == 3584 and "vector_in.in_layer.weight" not in bare):
        return found("Other", "Flux-like blocks of Ovis/LongCat-Image", decisive=True)
    if hidden != 3072:
        return found("Flux.1 D", f"Flux blocks of hidden {hidden}", decisive=False, candidates=_FLUX1_DEV,
                     confidence=0.3)
    if _has_prefix(bare, "guidance_in."):
        return found("Flux.1 D", "Flux blocks, hidden 3072, guidance embedder (dev)", decisive=True,
                     candidates=_FLUX1_DEV, confidence=0.8)
    return found("Flux.1 S", "Flux blocks, hidden 3072, no guidance embedder (schnell)", decisive=True,
                 candidates=("Flux1",), confidence=0.85)


def _mochi(bare: Mapping[str, Shape]) -> Detection | None:
    if "t5_yproj.weight" in bare:
        return found("Mochi", "t5_yproj (Mochi)", decisive=_has_prefix(bare, "blocks.0.attn.qkv_x"))
    # diffusers' MochiTransformer3DModel (src/diffusers/models/transformers/transformer_mochi.py):
    # attention pooling of the T5 caption (time_embed.pooler) and joint attn1.add_*_proj.
    if "time_embed.pooler.to_kv.weight" not in bare:
        return None
    facts = [f for f, hit in (("attn1.add_q_proj", _has_prefix(bare, "transformer_blocks.0.attn1.add_q_proj.")),
                              ("pos_frequencies", "pos_frequencies" in bare),
                              ("time_embed.caption_proj", "time_embed.caption_proj.weight" in bare)) if hit]
    return found("Mochi", "diffusers time_embed.pooler" + "".join(" + " + f for f in facts) + " (Mochi)",
                 decisive=bool(facts))


def _adaln_single(bare: Mapping[str, Shape]) -> Detection | None:
    if "adaln_single.emb.timestep_embedder.linear_1.bias" not in bare:
        return None
    if "pos_embed.proj.bias" in bare:  # PixArt in diffusers layout
        alpha = _has_prefix(bare, "adaln_single.emb.resolution_embedder.")
        return found("PixArt a" if alpha else "PixArt E", "adaln_single + pos_embed.proj (PixArt, diffusers)",
                     decisive=True)
    cross = _dim(bare, "transformer_blocks.0.attn2.to_k.weight", 1)
    if "audio_adaln_single.linear.weight" in bare or _has_prefix(bare, "audio_adaln_single."):
        return found("LTXV2", "adaln_single + audio_adaln_single (LTX-2)", decisive=True)
    return found("LTXV", f"adaln_single + transformer_blocks.attn2 of width {cross} (LTX-Video)",
                 decisive=cross is not None, candidates=("LTXV", "LTXV2"), confidence=0.8)


def _pixart(bare: Mapping[str, Shape]) -> Detection | None:
    if "t_block.1.weight" not in bare:
        return None
    alpha = "ar_embedder.mlp.0.weight" in bare
    return found("PixArt a" if alpha else "PixArt E", "t_block (PixArt)" + (" + ar_embedder" if alpha else ""),
                 decisive=_has_prefix(bare, "blocks.0."))


def _lumina(bare: Mapping[str, Shape]) -> Detection | None:
    if "cap_embedder.1.weight" not in bare:
        return None
    dim = _dim(bare, "cap_embedder.1.weight", 0)
    sure = "noise_refiner.0.attention.k_norm.weight" in bare
    if dim == 3840:  # ComfyUI: Z Image; turbo and base share the network
        return found("ZImageTurbo", "Lumina 2 network of dim 3840 (Z-Image)", decisive=sure,
                     candidates=("ZImageTurbo", "ZImageBase"), confidence=0.6)
    return found("Lumina", f"cap_embedder + noise_refiner, dim {dim} (Lumina 2)", decisive=sure and dim == 2304)


def _cogvideox(bare: Mapping[str, Shape]) -> Detection | None:
    if "blocks.0.norm1.linear.weight" not in bare:
        return None
    return found("CogVideoX", "blocks.norm1.linear (CogVideoX)", decisive=_has_prefix(bare, "patch_embed."))


# Wan by model dim (head.modulation width): base model, candidates.
_WAN_BY_DIM: dict[int, tuple[str, tuple[str, ...]]] = {
    1536: ("Wan Video 1.3B t2v", ("WanVideo1_3B_T2V", "WanVideo")),
    3072: ("Wan Video 2.2 TI2V-5B", ("WanVideo-22-TI2V-5B", "WanVideo")),
}
_WAN_14B_T2V = ("WanVideo14B_T2V", "WanVideo-22-T2V-A14B", "WanVideo", "WanVideo-25-T2V")
_WAN_14B_I2V = ("WanVideo14B_I2V_480p", "WanVideo14B_I2V_720p", "WanVideo-22-I2V-A14B", "WanVideo", "WanVideo-25-I2V")


def _wan(bare: Mapping[str, Shape]) -> Detection | None:
    if "head.modulation" not in bare:
        return None
    dim = (bare["head.modulation"] or (0,))[-1]
    sure = _has_prefix(bare, "blocks.0.cross_attn.") or "patch_embedding.weight" in bare
    if dim in _WAN_BY_DIM:
        base, cands = _WAN_BY_DIM[dim]
        return found(base, f"head.modulation of dim {dim} (Wan)", decisive=sure, candidates=cands, confidence=0.8)
    i2v = "img_emb.proj.0.bias" in bare or _has_prefix(bare, "img_emb.")
    if i2v:
        return found("Wan Video 14B i2v 480p", f"head.modulation of dim {dim} with img_emb (Wan 14B i2v)",
                     decisive=sure, candidates=_WAN_14B_I2V, confidence=0.5)
    return found("Wan Video 14B t2v", f"head.modulation of dim {dim} (Wan 14B t2v)", decisive=sure,
                 candidates=_WAN_14B_T2V, confidence=0.5)


def _hunyuan3d(bare: Mapping[str, Shape]) -> Detection | None:
    if "latent_in.weight" in bare and "cond_in.weight" in bare:
        return found("Hunyuan 3D", "latent_in + cond_in (Hunyuan3D 2)", decisive=True)
    if "t_embedder.mlp.2.weight" in bare and "blocks.0.attn1.k_norm.weight" in bare:
        return found("Hunyuan 3D", "t_embedder.mlp.2 + blocks.attn1.k_norm (Hunyuan3D 2.1)", decisive=True)
    return None


def _hidream(bare: Mapping[str, Shape]) -> Detection | None:
    if "caption_projection.0.linear.weight" not in bare:
        return None
    return found("HiDream", "caption_projection (HiDream)", decisive=_has_prefix(bare, "double_stream_blocks."))


def _cosmos(bare: Mapping[str, Shape]) -> Detection | None:
    if "blocks.0.mlp.layer1.weight" in bare:
        if _has_prefix(bare, "llm_adapter."):
            return found("Anima", "Cosmos predict2 blocks + llm_adapter (Anima)", decisive=True)
        return found("Other", "Cosmos predict2 blocks", decisive=True)
    if "blocks.block0.blocks.0.block.attn.to_q.0.weight" in bare:
        return found("Other", "Cosmos blocks", decisive=True)
    return None


def _qwen(bare: Mapping[str, Shape]) -> Detection | None:
    if "txt_norm.weight" not in bare:
        return None
    width = _dim(bare, "txt_norm.weight", 0)
    out = _dim(bare, "proj_out.weight", 0)
    if width == 2560 and out == 128:
        return found("Other", "txt_norm 2560 + proj_out 128 (Mage-Flow)", decisive=True)
    sure = _has_prefix(bare, "transformer_blocks.0.img_mod.") and "img_in.weight" in bare
    return found("Qwen", f"txt_norm {width} + transformer_blocks.img_mod (Qwen-Image)", decisive=sure)


def _diffusers_dit(bare: Mapping[str, Shape]) -> Detection | None:
    """Diffusers-layout SD3, Flux and Flux.2 transformers (`transformer_blocks.*` with add_q_proj)."""
    if "transformer_blocks.0.attn.add_q_proj.weight" not in bare:
        return None
    if _has_prefix(bare, "transformer_blocks.0.img_mod."):
        return found("Qwen", "diffusers transformer_blocks with img_mod (Qwen-Image)", decisive=True)
    # The hidden width from the first attention, or the stems that project into it (a header
    # excerpt, or a sharded checkpoint's index, may lack any one of them).
    hidden = _dim(bare, "transformer_blocks.0.attn.to_q.weight", 1) \
        or _dim(bare, "transformer_blocks.0.attn.add_q_proj.weight", 0) \
        or _dim(bare, "context_embedder.weight", 0) or _dim(bare, "x_embedder.weight", 0) \
        or _dim(bare, "pos_embed.proj.weight", 0)
    if _has_prefix(bare, "single_transformer_blocks."):
        if _has_prefix(bare, "double_stream_modulation_img."):
            spec = _FLUX2_BY_HIDDEN.get(hidden or 0)
            if spec:
                return found(spec[0], f"diffusers Flux.2 transformer, hidden {hidden}", decisive=True,
                             candidates=spec[1], confidence=0.95 if len(spec[1]) == 1 else 0.7)
            return None
        if hidden == 3072:
            guided = _has_prefix(bare, "time_text_embed.guidance_embedder.")
            return found("Flux.1 D" if guided else "Flux.1 S", "diffusers Flux transformer, hidden 3072",
                         decisive=True, candidates=_FLUX1_DEV if guided else ("Flux1",), confidence=0.8)
        return None
    if hidden in (1536, 2432):
        medium = _has_prefix(bare, "transformer_blocks.0.attn2.")
        if medium:
            return found("SD 3.5 Medium", "diffusers SD3 transformer with attn2", decisive=True)
        if hidden == 2432:
            return found("SD 3.5 Large", "diffusers SD3 transformer, hidden 2432", decisive=True, excludes=("SD 3",))
        return found("SD 3", "diffusers SD3 transformer, hidden 1536", decisive=True,
                     excludes=("SD 3.5 Large", "SD 3.5 Large Turbo"))
    return None


def _unet(bare: Mapping[str, Shape]) -> Detection | None:
    """SD1/SD2/SDXL/SVD/Kolors UNets (ldm `input_blocks.*` or diffusers `down_blocks.*` layout)."""
    first = bare.get("input_blocks.0.0.weight") or bare.get("conv_in.weight")
    if first is None:
        return None
    extra: dict[str, Any] = {}
    if len(first) == 4 and first[1] == 9:
        extra["inpainting"] = True
    channels = first[0] if first else None
    if any(".time_stack." in k or ".time_mix_blocks." in k for k in bare):
        return found("SVD", "UNet with temporal layers (SVD)", decisive=True, **extra)
    context = _context_dim(bare)
    adm = bare.get("label_emb.0.0.weight") or bare.get("add_embedding.linear_1.weight")
    adm_in = adm[1] if adm and len(adm) == 2 else None
    hid_proj = bare.get("encoder_hid_proj.weight")
    if adm_in == 5632 or (hid_proj is not None and len(hid_proj) == 2 and hid_proj[1] == 4096):
        return found("Kolors", f"UNet adm_in_channels {adm_in} / encoder_hid_proj from 4096 (ChatGLM, Kolors)",
                     decisive=True, **extra)
    sized = channels in (320, 384)  # model_channels of SD UNets (384: SDXL refiner)
    if context == 768:
        return found("SD 1.5", "UNet cross-attention context 768 (CLIP-L)", decisive=sized, **extra)
    if context == 1024:
        return found("SD 2.1", f"UNet cross-attention context 1024 (OpenCLIP-H), adm {adm_in}", decisive=sized,
                     **extra)
    if context == 1280 or adm_in == 2560:
        return found("SDXL Refiner", f"UNet context {context}, adm_in_channels {adm_in} (SDXL refiner)",
                     decisive=context == 1280 and adm_in in (2560, None), **extra)
    if context == 2048 or adm_in == 2816:
        sure = context == 2048 and adm_in in (2816, None) and sized
        depth = _sdxl_depth(bare)
        if depth is not None:
            return found("SDXL Distilled", f"SDXL UNet with transformer depth {depth} at the deepest level and "
                         "no middle-block transformer (ComfyUI SSD1B / Segmind_Vega)", decisive=False,
                         candidates=("SDXLDistilled",), confidence=0.6, **extra)
        return found("SDXL 1.0", f"UNet context {context}, adm_in_channels {adm_in} (SDXL UNet)", decisive=sure,
                     candidates=_SDXL_UNET, confidence=0.5, **extra)
    return None


def _sdxl_depth(bare: Mapping[str, Shape]) -> int | None:
    """The transformer depth of an SDXL-shaped UNet's deepest level when it is a distilled one's.

    ComfyUI counts `input_blocks.N.1.transformer_blocks.D` keys for each level's depth
    (model_detection.detect_unet_config): SDXL has 10 at input_blocks 7 and 8 and a middle-block
    transformer; SSD-1B 4 and Segmind Vega 2, with none in the middle (supported_models.py). Only
    a header that shows the deep level's blocks on both sides and no middle transformer counts; a
    depth of 5 or more on the input side is SDXL's."""
    deep = ("input_blocks.7.1.transformer_blocks.", "input_blocks.8.1.transformer_blocks.",
            "output_blocks.0.1.transformer_blocks.", "output_blocks.1.1.transformer_blocks.",
            "output_blocks.2.1.transformer_blocks.")
    most = -1
    sides = set()
    for k in bare:
        if k.startswith("middle_block.1."):
            return None
        for i, p in enumerate(deep):
            if k.startswith(p):
                sides.add(i < 2)
                n = k[len(p):].split(".", 1)[0]
                if i < 2 and n.isdigit():  # ComfyUI matches the input side's depths only
                    most = max(most, int(n))
    if sides != {True, False} or most < 0 or most >= 4:
        return None
    return most + 1


def _context_dim(bare: Mapping[str, Shape]) -> int | None:
    """Text-embedding width the UNet cross-attends to: attn2.to_k's input features."""
    for k, s in bare.items():
        if k.endswith("attn2.to_k.weight") and len(s) == 2 and "time_" not in k:
            return s[1]
    return None


def _kolors_by_encoder(det: Detection, shapes: Mapping[str, Shape]) -> Detection:
    """A checkpoint carrying ChatGLM (Kolors' text encoder, 4096 wide) is Kolors even if the UNet
    looks like SDXL's."""
    if det.family != "SDXL":
        return det
    if any(k.startswith(("text_encoders.chatglm", "conditioner.embedders.0.transformer.encoder.layers"))
           and ("query_key_value" in k) for k in shapes):
        return found("Kolors", det.evidence + " + ChatGLM text encoder (Kolors)", decisive=True, **dict(det.extra))
    return det


def _playground_by_edm(det: Detection, shapes: Mapping[str, Shape]) -> Detection:
    """ComfyUI supported_models.SDXL.model_type: a checkpoint with top-level `edm_mean` and
    `edm_std` beside its SDXL UNet is Playground v2.5, sampled as EDM (not an SDXL graph)."""
    if det.family not in _SDXL_UNET or "edm_mean" not in shapes or "edm_std" not in shapes:
        return det
    return found("Playground v2", det.evidence + " + edm_mean/edm_std (Playground v2.5, EDM)",
                 decisive=det.decisive, **dict(det.extra))


def _flux_like(bare: Mapping[str, Shape]) -> Detection | None:
    """Flux-style double/single blocks without any stem ComfyUI knows: a guess, never decisive
    (HunyuanVideo, Hunyuan3D and Flux.2 name their blocks the same way)."""
    if _has_prefix(bare, "double_blocks.") and _has_prefix(bare, "single_blocks."):
        return found("Flux.1 D", "double_blocks + single_blocks without Flux's stems", decisive=False,
                     candidates=_FLUX1_DEV + ("Chroma", "HyV1", "Hunyuan3D"), confidence=0.3)
    return None


_CHECKS: tuple[Callable[[Mapping[str, Shape]], Detection | None], ...] = (
    _sd3, _stable_cascade, _auraflow, _hunyuan_dit, _hunyuan_video, _flux, _mochi, _adaln_single, _pixart,
    _cosmos, _lumina, _cogvideox, _wan, _hunyuan3d, _hidream, _qwen, _diffusers_dit, _unet, _flux_like,
)
