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
    ("FLUX_LORA_DIFFUSERS", "flux", "Flux.1 D"),
    ("SD3_LORA_COMFY", "sd3", "SD 3.5"),
])
def test_loras(tmp_path: Path, kit: Any, keyset: str, arch: str, base: str) -> None:
    det = _detect(tmp_path, kit, "lora", getattr(kit, keyset))
    assert (det.architecture, det.base_model, det.confident) == (arch, base, True)


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
    assert detect_gguf("diffusion_model", {"general.architecture": "aura"}).architecture == "auraflow"
    assert detect_gguf("text_encoder", {"general.architecture": "t5"}).extra["text_encoder_type"] == "t5xxl"
    assert detect_gguf("diffusion_model", {}).architecture == "unknown"
