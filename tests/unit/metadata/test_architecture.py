"""Architecture detection from real key names and shapes, read back from sparse files."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from intelligent_pipeline.metadata import read_header
from intelligent_pipeline.metadata.architecture import detect, detect_gguf


def _detect(tmp_path: Path, kit: Any, kind: str, tensors: dict, metadata: dict | None = None):
    path = tmp_path / "m.safetensors"
    kit.write_sparse_safetensors(str(path), tensors, metadata)
    header = read_header(path)
    return detect(kind, header.tensors, header.metadata)


@pytest.mark.parametrize(("keyset", "arch", "base", "has_vae"), [
    ("SD1_CHECKPOINT", "sd1", "SD 1.5", True),
    ("SDXL_CHECKPOINT", "sdxl", "SDXL 1.0", True),
    ("FLUX_CHECKPOINT", "flux", "Flux.1 D", True),
    ("SD3_MEDIUM_CHECKPOINT", "sd3", "SD 3", True),
])
def test_checkpoints(tmp_path: Path, kit: Any, keyset: str, arch: str, base: str, has_vae: bool) -> None:
    det = _detect(tmp_path, kit, "checkpoint", getattr(kit, keyset))
    assert (det.architecture, det.base_model, det.has_vae, det.confident) == (arch, base, has_vae, True)


def test_bare_flux_diffusion_model_has_no_vae(tmp_path: Path, kit: Any) -> None:
    det = _detect(tmp_path, kit, "diffusion_model", kit.FLUX_DEV_DIFFUSION_MODEL)
    assert (det.architecture, det.base_model, det.has_vae) == ("flux", "Flux.1 D", False)


def test_flux_schnell_has_no_guidance_embedder(tmp_path: Path, kit: Any) -> None:
    tensors = {k: v for k, v in kit.FLUX_DEV_DIFFUSION_MODEL.items() if not k.startswith("guidance_in.")}
    det = _detect(tmp_path, kit, "diffusion_model", tensors)
    assert (det.architecture, det.base_model) == ("flux", "Flux.1 S")


def test_sd2_context_1024_and_sdxl_without_vae(tmp_path: Path, kit: Any) -> None:
    sd2 = {k: ("F16", (v[1][0], 1024)) if k.endswith("attn2.to_k.weight") else v for k, v in kit.SD1_CHECKPOINT.items()}
    assert _detect(tmp_path, kit, "checkpoint", sd2).architecture == "sd2"
    no_vae = {k: v for k, v in kit.SDXL_CHECKPOINT.items() if not k.startswith("first_stage_model.")}
    det = _detect(tmp_path, kit, "checkpoint", no_vae)
    assert (det.architecture, det.has_vae) == ("sdxl", False)


def test_taesd_in_a_checkpoint_counts_as_a_vae(tmp_path: Path, kit: Any) -> None:
    tensors = {k: v for k, v in kit.SD1_CHECKPOINT.items() if not k.startswith("first_stage_model.")}
    tensors["first_stage_model.taesd_decoder.1.weight"] = ("F16", (64, 4, 3, 3))
    det = _detect(tmp_path, kit, "checkpoint", tensors)
    assert det.has_vae is True
    assert det.extra["latent_channels"] == 4


@pytest.mark.parametrize(("keyset", "arch", "base"), [
    ("SD1_LORA_KOHYA", "sd1", "SD 1.5"),
    ("SDXL_LORA_KOHYA", "sdxl", "SDXL 1.0"),
    ("SDXL_LORA_PEFT", "sdxl", "SDXL 1.0"),
    ("FLUX_LORA_KOHYA", "flux", "Flux.1 D"),
    ("SD3_LORA_COMFY", "sd3", "SD 3"),  # width 1536: SD 3 or SD 3.5 Medium, never SD 3.5 Large
])
def test_loras(tmp_path: Path, kit: Any, keyset: str, arch: str, base: str) -> None:
    det = _detect(tmp_path, kit, "lora", getattr(kit, keyset))
    assert (det.architecture, det.base_model, det.confident) == (arch, base, True)


def test_flux_lora_in_diffusers_format_needs_flux_depth_to_be_decisive(tmp_path: Path, kit: Any) -> None:
    # Block 0 alone could be HunyuanVideo's diffusers transformer too (same width, same names).
    det = _detect(tmp_path, kit, "lora", kit.FLUX_LORA_DIFFUSERS)
    assert (det.architecture, det.base_model, det.confident) == ("flux", "Flux.1 D", False)
    assert "HyV1" in det.candidates
    # A whole Flux LoRA adapts single blocks up to 37 (Flux.1 has 38; HunyuanVideo 40).
    full = {**kit.FLUX_LORA_DIFFUSERS,
            "transformer.single_transformer_blocks.37.attn.to_q.lora_A.weight": ("BF16", (16, 3072))}
    det = _detect(tmp_path, kit, "lora", full)
    assert (det.family, det.confident) == ("Flux1", True) and "HyV1" not in det.candidates
    hunyuan = {**kit.FLUX_LORA_DIFFUSERS,
               "transformer.transformer_blocks.19.attn.to_q.lora_A.weight": ("BF16", (16, 3072)),
               "transformer.single_transformer_blocks.39.attn.to_q.lora_A.weight": ("BF16", (16, 3072))}
    det = _detect(tmp_path, kit, "lora", hunyuan)
    assert (det.family, det.architecture, det.confident) == ("HyV1", "video", True)


def test_flux_lora_in_comfyui_format(tmp_path: Path, kit: Any) -> None:
    tensors = {"diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight": ("BF16", (8, 3072)),
               "diffusion_model.double_blocks.0.img_attn.qkv.lora_B.weight": ("BF16", (9216, 8)),
               "diffusion_model.single_blocks.3.linear2.lora_A.weight": ("BF16", (8, 15360))}
    assert _detect(tmp_path, kit, "lora", tensors).architecture == "flux"


def test_flux_lora_on_double_blocks_only_is_told_from_sd3_by_width(tmp_path: Path, kit: Any) -> None:
    tensors = {k: v for k, v in kit.FLUX_LORA_DIFFUSERS.items() if "single_transformer_blocks" not in k}
    assert _detect(tmp_path, kit, "lora", tensors).architecture == "flux"
    sd3 = {k: ("BF16", (16, 1536)) if k.endswith("lora_A.weight") else v for k, v in tensors.items()}
    assert _detect(tmp_path, kit, "lora", sd3).architecture == "sd3"


def test_text_encoder_only_lora_is_a_weak_guess(tmp_path: Path, kit: Any) -> None:
    tensors = {k: v for k, v in kit.SDXL_LORA_KOHYA.items() if k.startswith("lora_te")}
    det = _detect(tmp_path, kit, "lora", tensors)
    assert det.architecture == "sdxl"
    assert det.confident is False
    sd1_te = {k: v for k, v in kit.SD1_LORA_KOHYA.items() if k.startswith("lora_te_")}
    det = _detect(tmp_path, kit, "lora", sd1_te)
    assert (det.architecture, det.confident) == ("sd1", False)


def test_hunyuan_video_lora_is_not_called_flux(tmp_path: Path, kit: Any) -> None:
    det = _detect(tmp_path, kit, "lora", kit.FLUX_LORA_KOHYA, {"ss_base_model_version": "hunyuan_video"})
    assert (det.architecture, det.base_model) == ("video", "Hunyuan Video")
    tensors = {"diffusion_model.double_blocks.0.img_attn_qkv.lora_A.weight": ("BF16", (8, 3072))}
    assert _detect(tmp_path, kit, "lora", tensors).architecture == "video"


def test_checkpoint_in_the_lora_folder_and_lora_in_the_checkpoint_folder(tmp_path: Path, kit: Any) -> None:
    assert _detect(tmp_path, kit, "lora", kit.SD1_CHECKPOINT).extra.get("looks_like") == "checkpoint"
    det = _detect(tmp_path, kit, "checkpoint", kit.SD1_LORA_KOHYA)
    assert det.architecture == "unknown"
    assert det.extra.get("looks_like") == "lora"


def test_unknown_tensors_are_unknown(tmp_path: Path, kit: Any) -> None:
    det = _detect(tmp_path, kit, "checkpoint", {"foo.bar": ("F32", (3, 3))})
    assert (det.architecture, det.base_model, det.confident) == ("unknown", "Unknown", False)


def test_embeddings(tmp_path: Path, kit: Any) -> None:
    sdxl = {"clip_l": ("F32", (4, 768)), "clip_g": ("F32", (4, 1280))}
    assert _detect(tmp_path, kit, "embedding", sdxl).architecture == "sdxl"
    assert _detect(tmp_path, kit, "embedding", {"emb_params": ("F32", (8, 768))}).architecture == "sd1"
    assert _detect(tmp_path, kit, "embedding", {"emb_params": ("F32", (8, 1024))}).architecture == "sd2"


def test_text_encoders_and_vaes(tmp_path: Path, kit: Any) -> None:
    t5 = {"encoder.block.0.layer.0.SelfAttention.k.weight": ("F16", (4096, 4096)), "shared.weight": ("F16", (32128, 4096))}
    assert _detect(tmp_path, kit, "text_encoder", t5).extra["text_encoder_type"] == "t5xxl"
    clip_g = {"text_model.encoder.layers.0.self_attn.k_proj.weight": ("F16", (1280, 1280))}
    assert _detect(tmp_path, kit, "text_encoder", clip_g).extra["text_encoder_type"] == "clip_g"
    flux_vae = {"decoder.conv_in.weight": ("F32", (512, 16, 3, 3)), "encoder.conv_in.weight": ("F32", (128, 3, 3, 3))}
    det = _detect(tmp_path, kit, "vae", flux_vae)
    assert det.extra["latent_channels"] == 16
    assert det.architecture == "unknown"  # SD3 and Flux VAEs share shapes: do not guess


def test_gguf_architecture() -> None:
    det = detect_gguf("diffusion_model", {"general.architecture": "flux"})
    assert (det.architecture, det.base_model, det.confident) == ("flux", "Flux.1 D", True)
    assert det.confidence < 0.9  # the converter's "flux" does not say Flux.1 or Flux.2
    assert detect_gguf("diffusion_model", {"general.architecture": "aura"}).architecture == "auraflow"
    assert detect_gguf("text_encoder", {"general.architecture": "t5"}).extra["text_encoder_type"] == "t5xxl"
    assert detect_gguf("diffusion_model", {}).architecture == "unknown"


# --- every family ComfyUI detects, with confidence (issue 6) -----------------------------------
#
# Key names and the shapes detection reads, from ComfyUI's own detection code (yzkee/ComfyUI commit
# 783545f689a0af730065994b46b382ae24844c99: comfy/model_detection.py `detect_unet_config`,
# comfy/supported_models.py, comfy/lora.py `model_lora_keys_unet`, comfy/weight_adapter/), and for
# widths the models' published configs that ComfyUI's detection reads back. Each case is
# (kind, tensors, family, architecture, decisive).

def _t(*shape: int) -> tuple[str, tuple[int, ...]]:
    return ("BF16", tuple(shape))


MODEL_CASES: dict[str, tuple[str, dict, str, str, bool]] = {
    # supported_models.SDXLRefiner: model_channels 384, context_dim 1280, adm_in_channels 2560
    "sdxl_refiner": ("checkpoint", {
        "model.diffusion_model.input_blocks.0.0.weight": _t(384, 4, 3, 3),
        "model.diffusion_model.label_emb.0.0.weight": _t(1536, 2560),
        "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": _t(768, 1280),
        "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight": _t(1536, 1280),
        "first_stage_model.decoder.conv_in.weight": _t(512, 4, 3, 3)}, "SDXLRefiner", "unknown", True),
    # Kolors (huggingface/diffusers 077f96fc4280bf0e23d0d024e3c64514efeadba1
    # src/diffusers/pipelines/kolors/pipeline_kolors.py): ChatGLM3 embeddings 4096 wide, projected by the
    # UNet's encoder_hid_proj to its 2048 cross-attention width; the pooled 4096 + 6 x 256 time ids make
    # the SDXL-style add_embedding input 5632 (SDXL: 1280 + 6 x 256 = 2816).
    "kolors": ("diffusion_model", {
        "conv_in.weight": _t(320, 4, 3, 3),
        "encoder_hid_proj.weight": _t(2048, 4096),
        "add_embedding.linear_1.weight": _t(1280, 5632),
        "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight": _t(640, 2048)}, "Kolors", "unknown", True),
    # detect_unet_config MMDiT: depth = x_embedder rows // 64; SD 3.5 Large depth 38 (hidden 2432)
    "sd35_large": ("checkpoint", {
        "model.diffusion_model.joint_blocks.0.context_block.attn.qkv.weight": _t(7296, 2432),
        "model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight": _t(7296, 2432),
        "model.diffusion_model.x_embedder.proj.weight": _t(2432, 16, 2, 2),
        "model.diffusion_model.context_embedder.weight": _t(2432, 4096)}, "SD3", "sd3", True),
    # x_block_self_attn_layers (x_block.attn2): SD 3.5 Medium only
    "sd35_medium": ("checkpoint", {
        "model.diffusion_model.joint_blocks.0.context_block.attn.qkv.weight": _t(4608, 1536),
        "model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight": _t(4608, 1536),
        "model.diffusion_model.joint_blocks.0.x_block.attn2.qkv.weight": _t(4608, 1536),
        "model.diffusion_model.x_embedder.proj.weight": _t(1536, 16, 2, 2)}, "SD3_5M", "sd3", True),
    # Flux branch of detect_unet_config: double_stream_modulation_img -> flux2; hidden = img_in rows,
    # text width = txt_in columns (Mistral-3 24B, 3 layers x 5120 = 15360)
    "flux2_dev": ("diffusion_model", {
        "img_in.weight": _t(6144, 128), "txt_in.weight": _t(6144, 15360),
        "double_blocks.0.img_attn.norm.key_norm.scale": _t(128,),
        "double_stream_modulation_img.lin.weight": _t(36864, 6144),
        "single_blocks.0.linear1.weight": _t(55296, 6144)}, "Flux2", "unknown", True),
    # Flux.2 [klein] 4B: Qwen3-4B text encoder, 3 layers x 2560 = 7680; hidden 3072
    "flux2_klein_4b": ("diffusion_model", {
        "img_in.weight": _t(3072, 128), "txt_in.weight": _t(3072, 7680),
        "double_blocks.0.img_attn.norm.key_norm.scale": _t(128,),
        "double_stream_modulation_img.lin.weight": _t(18432, 3072)}, "Flux2Klein_4B", "unknown", True),
    # Flux.2 [klein] 9B: Qwen3-8B, 3 x 4096 = 12288; hidden 4096
    "flux2_klein_9b": ("diffusion_model", {
        "img_in.weight": _t(4096, 128), "txt_in.weight": _t(4096, 12288),
        "double_blocks.0.img_attn.norm.key_norm.scale": _t(128,),
        "double_stream_modulation_img.lin.weight": _t(24576, 4096)}, "Flux2Klein_9B", "unknown", True),
    # Chroma: Flux blocks + distilled_guidance_layer
    "chroma": ("diffusion_model", {
        "img_in.weight": _t(3072, 64), "txt_in.weight": _t(3072, 4096),
        "double_blocks.0.img_attn.norm.key_norm.scale": _t(128,),
        "distilled_guidance_layer.norms.0.scale": _t(5120,),
        "distilled_guidance_layer.in_proj.weight": _t(5120, 64)}, "Chroma", "unknown", True),
    "auraflow": ("checkpoint", {
        "model.double_layers.0.attn.w1q.weight": _t(3072, 3072), "model.positional_encoding": _t(1, 9216, 3072),
        "model.cond_seq_linear.weight": _t(3072, 2048), "model.single_layers.0.attn.w1q.weight": _t(3072, 3072)},
        "AuraFlow", "auraflow", True),
    # Hunyuan DiT: mlp_t5 + extra_embedder (3968 columns: hydit1), x_embedder 1408 wide
    "hunyuan_dit": ("checkpoint", {
        "model.mlp_t5.0.weight": _t(8192, 2048), "model.extra_embedder.0.weight": _t(5632, 3968),
        "model.x_embedder.proj.weight": _t(1408, 4, 2, 2), "model.blocks.0.attn1.Wqkv.weight": _t(4224, 1408)},
        "HyDit1", "unknown", True),
    "hunyuan_video": ("diffusion_model", {
        "txt_in.individual_token_refiner.blocks.0.norm1.weight": _t(3072,),
        "img_in.proj.weight": _t(3072, 16, 1, 2, 2), "txt_in.input_embedder.weight": _t(3072, 4096),
        "double_blocks.0.img_attn_qkv.weight": _t(9216, 3072)}, "HyV1", "video", True),
    "mochi": ("diffusion_model", {
        "t5_yproj.weight": _t(3072, 4096), "blocks.0.attn.qkv_x.weight": _t(9216, 3072)}, "Mochi", "video", True),
    # LTX-Video: adaln_single without pos_embed.proj; cross width = transformer_blocks.0.attn2.to_k columns
    "ltxv": ("diffusion_model", {
        "adaln_single.emb.timestep_embedder.linear_1.bias": _t(2048,),
        "transformer_blocks.0.attn2.to_k.weight": _t(2048, 2048),
        "transformer_blocks.0.attn1.to_q.weight": _t(2048, 2048)}, "LTXV", "video", True),
    "pixart_sigma": ("checkpoint", {
        "model.t_block.1.weight": _t(6912, 1152), "model.blocks.0.attn.qkv.weight": _t(3456, 1152),
        "model.y_embedder.y_embedding": _t(300, 4096), "model.pos_embed": _t(1, 4096, 1152)}, "PixArtE", "unknown", True),
    "pixart_alpha": ("checkpoint", {
        "model.t_block.1.weight": _t(6912, 1152), "model.blocks.0.attn.qkv.weight": _t(3456, 1152),
        "model.ar_embedder.mlp.0.weight": _t(1152, 256)}, "PixArtA", "unknown", True),
    # Lumina 2: cap_embedder + noise_refiner; dim 2304 is Lumina 2, 3840 Z-Image
    "lumina2": ("diffusion_model", {
        "cap_embedder.1.weight": _t(2304, 2304), "noise_refiner.0.attention.k_norm.weight": _t(96,),
        "layers.0.attention.qkv.weight": _t(6912, 2304)}, "Lumina", "unknown", True),
    "z_image": ("diffusion_model", {
        "cap_embedder.1.weight": _t(3840, 2560), "noise_refiner.0.attention.k_norm.weight": _t(128,),
        "layers.0.attention.qkv.weight": _t(11520, 3840)}, "ZImageTurbo", "unknown", True),
    # Wan 2.1: head.modulation [1, 2, dim]; 14B dim 5120, 1.3B dim 1536 (Wan-AI configs)
    "wan_14b_t2v": ("diffusion_model", {
        "head.modulation": _t(1, 2, 5120), "patch_embedding.weight": _t(5120, 16, 1, 2, 2),
        "blocks.0.cross_attn.q.weight": _t(5120, 5120), "head.head.weight": _t(64, 5120)},
        "WanVideo14B_T2V", "video", True),
    "wan_1_3b": ("diffusion_model", {
        "head.modulation": _t(1, 2, 1536), "patch_embedding.weight": _t(1536, 16, 1, 2, 2),
        "blocks.0.cross_attn.q.weight": _t(1536, 1536)}, "WanVideo1_3B_T2V", "video", True),
    "hunyuan3d_2": ("diffusion_model", {
        "latent_in.weight": _t(1024, 64), "cond_in.weight": _t(1024, 1536),
        "double_blocks.0.img_attn.qkv.weight": _t(3072, 1024), "double_blocks.0.img_attn.norm.key_norm.weight": _t(64,),
        "single_blocks.0.linear1.weight": _t(7168, 1024)}, "Hunyuan3D", "unknown", True),
    "hidream": ("diffusion_model", {
        "caption_projection.0.linear.weight": _t(2560, 4096),
        "double_stream_blocks.0.block.attn1.to_q.weight": _t(2560, 2560)}, "HiDream", "unknown", True),
    "qwen_image": ("diffusion_model", {
        "txt_norm.weight": _t(3584,), "img_in.weight": _t(3072, 64),
        "transformer_blocks.0.img_mod.1.weight": _t(18432, 3072),
        "transformer_blocks.0.attn.add_q_proj.weight": _t(3072, 3072)}, "Qwen", "unknown", True),
    "svd": ("checkpoint", {
        "model.diffusion_model.input_blocks.0.0.weight": _t(320, 8, 3, 3),
        "model.diffusion_model.input_blocks.1.1.time_stack.0.attn1.to_q.weight": _t(320, 320),
        "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": _t(320, 1024)},
        "SVD", "video", True),
    "stable_cascade": ("diffusion_model", {
        "clf.1.weight": _t(16, 2048, 1, 1), "clip_txt_mapper.weight": _t(2048, 1280)}, "SCascade", "unknown", True),
}

LORA_CASES: dict[str, tuple[str, dict, str, str, bool]] = {
    # LyCORIS LoKr on SD 1.5 (comfy/weight_adapter/lokr.py: weight = kron(w1, w2), w2 possibly as the
    # low-rank pair w2_a @ w2_b): attn2.to_k is 320 x 768 = kron([8, 8], [40, 96]).
    "sd15_lokr": ("lora", {
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lokr_w1": _t(8, 8),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lokr_w2_a": _t(40, 4),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lokr_w2_b": _t(4, 96),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.alpha": _t(),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lokr_w1": _t(8, 8),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lokr_w2": _t(40, 40)},
        "SD1", "sd1", True),
    # OFT (comfy/weight_adapter/oft.py: `{module}.oft_blocks` [block_num, block_size, block_size], the
    # layer's output = block_num x block_size): 320-wide attention at SD1's first level.
    "sd15_oft": ("lora", {
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.oft_blocks": _t(4, 80, 80),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.oft_blocks": _t(4, 80, 80),
        "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.oft_blocks": _t(4, 160, 160),
        "lora_unet_up_blocks_3_attentions_0_transformer_blocks_0_attn1_to_q.oft_diag": _t(4, 80, 80)},
        "SD1", "sd1", True),
    # musubi-tuner HunyuanVideo default (kohya-ss/musubi-tuner eba48dd2c6c27992e8368f545c79178e591f9ad5
    # docs/advanced_config.md: img_mod/txt_mod/modulation excluded; 20 double blocks, single_blocks.39):
    # module names as in HunyuanVideo (img_attn_qkv, img_mlp.fc1), no modulation layers.
    "hunyuan_video_musubi": ("lora", {
        "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": _t(32, 3072),
        "lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight": _t(9216, 32),
        "lora_unet_double_blocks_0_img_mlp_fc1.lora_down.weight": _t(32, 3072),
        "lora_unet_double_blocks_0_img_mlp_fc1.lora_up.weight": _t(12288, 32),
        "lora_unet_double_blocks_19_txt_attn_qkv.lora_down.weight": _t(32, 3072),
        "lora_unet_single_blocks_39_linear2.lora_down.weight": _t(32, 15360)}, "HyV1", "video", True),
    # Flux.1 in ComfyUI's own LoRA format: linear2 reads hidden + mlp (3072 + 4 x 3072)
    "flux1_comfy": ("lora", {
        "diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight": _t(16, 3072),
        "diffusion_model.double_blocks.0.img_attn.qkv.lora_B.weight": _t(9216, 16),
        "diffusion_model.single_blocks.0.linear2.lora_A.weight": _t(16, 15360)}, "Flux1", "flux", True),
    # XLabs/USO Flux LoRA, as comfy/lora_convert.py `convert_uso_lora` recognises it (double_blocks.18
    # and single_blocks.37: Flux.1's depth)
    "flux1_xlabs": ("lora", {
        "double_blocks.0.processor.qkv_lora1.down.weight": _t(16, 3072),
        "double_blocks.0.processor.qkv_lora1.up.weight": _t(9216, 16),
        "double_blocks.18.processor.qkv_lora2.down.weight": _t(16, 3072),
        "single_blocks.37.processor.qkv_lora.down.weight": _t(16, 3072)}, "Flux1", "flux", True),
    # Flux.2 (detect_unet_config flux2: mlp_ratio 3, gated MLP): linear2 reads hidden + 3 x hidden
    "flux2_klein_4b": ("lora", {
        "diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight": _t(16, 3072),
        "diffusion_model.single_blocks.0.linear2.lora_A.weight": _t(16, 12288),
        "diffusion_model.single_blocks.0.linear1.lora_B.weight": _t(27648, 16)}, "Flux2Klein_4B", "unknown", True),
    "flux2_klein_9b": ("lora", {
        "diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight": _t(16, 4096),
        "diffusion_model.single_blocks.0.linear2.lora_A.weight": _t(16, 16384)}, "Flux2Klein_9B", "unknown", True),
    "flux2_dev": ("lora", {
        "diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight": _t(16, 6144),
        "diffusion_model.single_blocks.0.linear2.lora_A.weight": _t(16, 24576)}, "Flux2", "unknown", True),
    "sd35_large": ("lora", {
        "diffusion_model.joint_blocks.0.x_block.attn.qkv.lora_A.weight": _t(16, 2432),
        "diffusion_model.joint_blocks.0.x_block.attn.qkv.lora_B.weight": _t(7296, 16)}, "SD3", "sd3", True),
    "sd35_medium": ("lora", {
        "lora_unet_joint_blocks_0_x_block_attn_qkv.lora_down.weight": _t(16, 1536),
        "lora_unet_joint_blocks_0_x_block_attn2_qkv.lora_down.weight": _t(16, 1536)}, "SD3_5M", "sd3", True),
    # comfy/lora.py QwenImage: `transformer_blocks.*` with or without `transformer.`; Qwen-Image has
    # img_mod/img_mlp/txt_mlp modules, 60 layers of 24 heads x 128 = 3072 (comfy/ldm/qwen_image/model.py)
    "qwen_image": ("lora", {
        "transformer_blocks.0.attn.to_q.lora_A.weight": _t(16, 3072),
        "transformer_blocks.0.attn.add_q_proj.lora_A.weight": _t(16, 3072),
        "transformer_blocks.0.img_mlp.net.0.proj.lora_A.weight": _t(16, 3072),
        "transformer_blocks.0.txt_mlp.net.0.proj.lora_A.weight": _t(16, 3072)}, "Qwen", "unknown", True),
    # the same names on attention only, but blocks Flux does not have (Qwen-Image has 60)
    "qwen_image_attn_only": ("lora", {
        "transformer.transformer_blocks.0.attn.to_q.lora_A.weight": _t(16, 3072),
        "transformer.transformer_blocks.0.attn.add_k_proj.lora_A.weight": _t(16, 3072),
        "transformer.transformer_blocks.59.attn.to_q.lora_A.weight": _t(16, 3072)}, "Qwen", "unknown", True),
    "auraflow": ("lora", {
        "transformer.joint_transformer_blocks.0.attn.to_q.lora_A.weight": _t(16, 3072),
        "transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight": _t(16, 3072)},
        "AuraFlow", "auraflow", True),
    "wan_14b": ("lora", {
        "diffusion_model.blocks.0.self_attn.q.lora_A.weight": _t(16, 5120),
        "diffusion_model.blocks.0.cross_attn.k.lora_A.weight": _t(16, 4096),
        "diffusion_model.blocks.0.ffn.0.lora_A.weight": _t(16, 5120)}, "WanVideo14B_T2V", "video", True),
    # comfy/lora.py LTXV: plain `diffusion_model.` keys; 32 heads x 64 = 2048 and cross_attention_dim
    # 2048 (comfy/ldm/lightricks/model.py).
    # An SDXL-like width must not make it SDXL: there are no UNet blocks.
    "ltxv": ("lora", {
        "diffusion_model.transformer_blocks.0.attn1.to_q.lora_A.weight": _t(16, 2048),
        "diffusion_model.transformer_blocks.0.attn2.to_k.lora_A.weight": _t(16, 2048),
        "diffusion_model.transformer_blocks.0.ff.net.0.proj.lora_A.weight": _t(16, 2048)}, "LTXV", "video", True),
    "ltx2": ("lora", {
        "diffusion_model.transformer_blocks.0.attn1.to_q.lora_A.weight": _t(16, 4096),
        "diffusion_model.transformer_blocks.0.audio_attn1.to_q.lora_A.weight": _t(16, 2048)}, "LTXV2", "video", True),
    "hidream": ("lora", {
        "diffusion_model.double_stream_blocks.0.block.attn1.to_q.lora_A.weight": _t(16, 2560),
        "diffusion_model.single_stream_blocks.0.block.attn1.to_q.lora_A.weight": _t(16, 2560)},
        "HiDream", "unknown", True),
    "z_image": ("lora", {
        "diffusion_model.layers.0.attention.to_q.lora_A.weight": _t(16, 3840),
        "diffusion_model.layers.0.feed_forward.w1.lora_A.weight": _t(16, 3840)}, "ZImageTurbo", "unknown", True),
    "hunyuan_dit": ("lora", {
        "base_model.model.blocks.0.attn1.Wqkv.lora_A.weight": _t(16, 1408),
        "base_model.model.blocks.0.attn2.kv_proj.lora_A.weight": _t(16, 1024)}, "HyDit1", "unknown", True),
    # Kolors LoRA with its text encoder trained: ChatGLM3 layers (`encoder.layers.N.self_attention.
    # query_key_value`, THUDM/chatglm3-6b modeling_chatglm.py) beside an SDXL-shaped UNet
    "kolors_with_te": ("lora", {
        "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": _t(16, 2048),
        "lora_te_encoder_layers_0_self_attention_query_key_value.lora_down.weight": _t(16, 4096)},
        "Kolors", "unknown", True),
    # diffusers' old attention-processor LoRA format (`...attn2.processor.to_k_lora.down.weight`, the
    # `_lora.down.weight` suffix comfy/lora.py also maps) on SD 1.5
    "sd15_diffusers_processor": ("lora", {
        "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k_lora.down.weight": _t(4, 768),
        "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k_lora.up.weight": _t(320, 4)},
        "SD1", "sd1", True),
    # Flux in diffusers names without the context projections (to_q/to_k/to_v/proj_mlp only), all depths
    "flux1_diffusers_no_add_proj": ("lora", {
        "transformer.transformer_blocks.0.attn.to_q.lora_A.weight": _t(16, 3072),
        "transformer.transformer_blocks.18.attn.to_q.lora_A.weight": _t(16, 3072),
        "transformer.single_transformer_blocks.37.proj_mlp.lora_A.weight": _t(16, 3072)}, "Flux1", "flux", True),
    # OneTrainer's `lora_transformer_` prefix (comfy/lora.py Flux: "lora_transformer_{}" with dots as _)
    "flux1_onetrainer": ("lora", {
        "lora_transformer_transformer_blocks_0_attn_to_q.lora_down.weight": _t(16, 3072),
        "lora_transformer_transformer_blocks_0_attn_add_q_proj.lora_down.weight": _t(16, 3072),
        "lora_transformer_single_transformer_blocks_37_attn_to_q.lora_down.weight": _t(16, 3072)},
        "Flux1", "flux", True),
    # kohya-style Qwen-Image LoRA on attention only, all 60 blocks
    "qwen_image_kohya_attn": ("lora", {
        "lora_unet_transformer_blocks_0_attn_to_q.lora_down.weight": _t(16, 3072),
        "lora_unet_transformer_blocks_0_attn_add_q_proj.lora_down.weight": _t(16, 3072),
        "lora_unet_transformer_blocks_59_attn_to_q.lora_down.weight": _t(16, 3072)}, "Qwen", "unknown", True),
    # Wan in diffusers names (WanTransformer3DModel: blocks.N.attn1/attn2, ffn.net)
    "wan_diffusers_1_3b": ("lora", {
        "transformer.blocks.0.attn1.to_q.lora_A.weight": _t(16, 1536),
        "transformer.blocks.0.attn2.to_k.lora_A.weight": _t(16, 1536),
        "transformer.blocks.0.ffn.net.0.proj.lora_A.weight": _t(16, 1536)}, "WanVideo1_3B_T2V", "video", True),
    "pixart": ("lora", {
        "transformer.transformer_blocks.0.attn1.to_q.lora_A.weight": _t(16, 1152),
        "transformer.transformer_blocks.0.attn2.to_k.lora_A.weight": _t(16, 1152)}, "PixArtE", "unknown", True),
}


# Base models of the true group that are another size (SD 3 is 2B, SD 3.5 Large 8B).
OTHER_SIZES = {"model:sd35_large": ("SD 3",), "lora:sd35_large": ("SD 3",)}

ALL_CASES = {**{f"model:{k}": v for k, v in MODEL_CASES.items()}, **{f"lora:{k}": v for k, v in LORA_CASES.items()}}


@pytest.mark.parametrize("case", sorted(ALL_CASES))
def test_each_family_with_its_confidence(tmp_path: Path, kit: Any, case: str) -> None:
    kind, tensors, family, arch, decisive = ALL_CASES[case]
    det = _detect(tmp_path, kit, kind, tensors)
    assert (det.family, det.architecture, det.decisive) == (family, arch, decisive), det.evidence
    assert family in det.candidates
    assert 0.0 < det.confidence <= 1.0
    assert det.evidence


def test_unsupported_families_are_never_planned_as_supported(tmp_path: Path, kit: Any) -> None:
    """Families the planner cannot build keep architecture unknown, whatever the network resembles."""
    for case in ("flux2_klein_4b", "chroma", "kolors", "qwen_image", "hunyuan3d_2", "sdxl_refiner"):
        kind, tensors, family, _, _ = MODEL_CASES[case]
        assert _detect(tmp_path, kit, kind, tensors).architecture == "unknown", case


def test_random_or_foreign_key_sets_stay_unknown(tmp_path: Path, kit: Any) -> None:
    foreign = {"lora_unet_encoder_layers_0_mixer.lora_down.weight": _t(4, 123),
               "lora_unet_encoder_layers_0_mixer.lora_up.weight": _t(77, 4)}
    det = _detect(tmp_path, kit, "lora", foreign)
    assert (det.family, det.architecture, det.confidence, det.decisive) == ("unknown", "unknown", 0.0, False)
    odd_width = {"diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight": _t(8, 1000),
                 "diffusion_model.single_blocks.0.linear2.lora_A.weight": _t(8, 5000)}
    assert _detect(tmp_path, kit, "lora", odd_width).family == "unknown"
    dit = {"blocks.0.attn.qkv.weight": _t(3072, 1024), "final.weight": _t(16, 1024), "x.weight": _t(1, 2),
           "y.weight": _t(1, 2), "z.weight": _t(1, 2), "w.weight": _t(1, 2)}
    assert _detect(tmp_path, kit, "diffusion_model", dit).family == "unknown"


def test_one_key_pattern_or_one_width_is_not_decisive(tmp_path: Path, kit: Any) -> None:
    # One HunyuanVideo-style key: a guess, not proof.
    one = {"diffusion_model.double_blocks.0.img_attn_qkv.lora_A.weight": _t(8, 3072)}
    det = _detect(tmp_path, kit, "lora", one)
    assert (det.family, det.decisive) == ("HyV1", False)
    # Flux-width attention on the first blocks only: Flux.1, Chroma or Flux.2 [klein] 4B.
    attn = {"diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight": _t(8, 3072)}
    det = _detect(tmp_path, kit, "lora", attn)
    assert det.decisive is False
    assert {"Flux1", "Chroma", "Flux2Klein_4B"} <= det.candidates
    # Diffusers double blocks of width 3072 without single blocks: Flux or Qwen-Image.
    det = _detect(tmp_path, kit, "lora", {k: v for k, v in kit.FLUX_LORA_DIFFUSERS.items()
                                          if "single_transformer_blocks" not in k})
    assert det.decisive is False and "Qwen" in det.candidates


def test_sdxl_shapes_prove_the_unet_not_which_sdxl_family(tmp_path: Path, kit: Any) -> None:
    det = _detect(tmp_path, kit, "lora", kit.SDXL_LORA_KOHYA)
    assert det.decisive and {"SDXL", "Pony", "Illustrious", "NoobAI", "Kolors"} <= det.candidates
    assert det.confidence < 0.9  # the family inside the SDXL UNet ecosystem is a guess
    for base in ("Pony", "Illustrious", "NoobAI", "SDXL Lightning", "Kolors"):
        assert det.consistent_with(base), base
    assert not det.consistent_with("SD 1.5")


def test_sd3_sizes_exclude_each_other(tmp_path: Path, kit: Any) -> None:
    large = _detect(tmp_path, kit, "checkpoint", MODEL_CASES["sd35_large"][1])
    assert large.base_model == "SD 3.5 Large"
    assert large.consistent_with("SD 3.5 Large Turbo") and not large.consistent_with("SD 3")
    medium = _detect(tmp_path, kit, "checkpoint", kit.SD3_MEDIUM_CHECKPOINT)
    assert medium.base_model == "SD 3" and not medium.consistent_with("SD 3.5 Large")


def test_kohya_flux_lora_with_modulation_is_flux1_not_chroma(tmp_path: Path, kit: Any) -> None:
    det = _detect(tmp_path, kit, "lora", kit.FLUX_LORA_KOHYA)
    assert (det.family, det.decisive) == ("Flux1", True)
    assert "Chroma" not in det.candidates and "Flux2Klein_4B" not in det.candidates


def test_a_right_sidecar_survives_its_own_tensors_for_every_family(tmp_path: Path, kit: Any) -> None:
    """The "header guess never replaces a right sidecar" property over all families: for every key
    set above and every CivitAI base model of its true family, merging a sidecar that says so with
    the detection keeps that family."""
    from intelligent_pipeline.metadata import families
    from intelligent_pipeline.metadata.merge import merge
    from intelligent_pipeline.metadata.sidecars import Facts

    for case, (kind, tensors, family, _, _) in ALL_CASES.items():
        det = _detect(tmp_path, kit, kind, tensors)
        names = [n for n, g in families.BASE_MODELS.items() if g == family]
        assert names, family
        for base in names:
            if base in OTHER_SIZES.get(case, ()):  # CivitAI groups them, the shapes do not fit: overruled
                out = merge([Facts("lora-manager", {"base_model": base})], det, kind=kind, title="t")
                assert out["base_model"] == det.base_model and len(out["problems"]) == 1
                continue
            out = merge([Facts("lora-manager", {"base_model": base})], det, kind=kind, title="t")
            assert (out["family"], out["base_model"], out["problems"]) == (family, base, ()), (case, base)
