"""Shared helpers for the metadata tests: sparse safetensors with real key names and shapes.

`tests/fixtures/safetensors_files.py` is loaded by file path (the suite runs with
--import-mode=importlib and never touches sys.path).
"""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any, Callable

import pytest

from intelligent_pipeline.metadata import ModelIndex, StaticModelPaths


def _load_writer() -> Callable[..., int]:
    path = Path(__file__).resolve().parents[2] / "fixtures" / "safetensors_files.py"
    spec = importlib.util.spec_from_file_location("_ip_test_safetensors_files", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_sparse_safetensors


write_sparse_safetensors = _load_writer()

Tensors = dict[str, tuple[str, tuple[int, ...]]]

# --- realistic key sets (subsets of real files: the keys detection looks at, plus neighbours) ---

SD1_CHECKPOINT: Tensors = {
    "model.diffusion_model.input_blocks.0.0.weight": ("F16", (320, 4, 3, 3)),
    "model.diffusion_model.input_blocks.1.0.in_layers.0.weight": ("F16", (320,)),
    "model.diffusion_model.input_blocks.1.1.proj_in.weight": ("F16", (320, 320, 1, 1)),
    "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight": ("F16", (320, 320)),
    "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": ("F16", (320, 768)),
    "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight": ("F16", (1280, 768)),
    "model.diffusion_model.time_embed.0.weight": ("F16", (1280, 320)),
    "model.diffusion_model.out.2.weight": ("F16", (4, 320, 3, 3)),
    "first_stage_model.decoder.conv_in.weight": ("F16", (512, 4, 3, 3)),
    "first_stage_model.encoder.conv_in.weight": ("F16", (128, 3, 3, 3)),
    "cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.k_proj.weight": ("F16", (768, 768)),
}

SDXL_CHECKPOINT: Tensors = {
    "model.diffusion_model.input_blocks.0.0.weight": ("F16", (320, 4, 3, 3)),
    "model.diffusion_model.label_emb.0.0.weight": ("F16", (1280, 2816)),
    "model.diffusion_model.input_blocks.4.1.proj_in.weight": ("F16", (640, 640)),
    "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": ("F16", (640, 2048)),
    "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight": ("F16", (1280, 2048)),
    "model.diffusion_model.time_embed.0.weight": ("F16", (1280, 320)),
    "model.diffusion_model.out.2.weight": ("F16", (4, 320, 3, 3)),
    "first_stage_model.decoder.conv_in.weight": ("F16", (512, 4, 3, 3)),
    "conditioner.embedders.0.transformer.text_model.encoder.layers.0.self_attn.k_proj.weight": ("F16", (768, 768)),
    "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight": ("F16", (3840, 1280)),
}

# flux1-dev.safetensors as published: a bare diffusion model, no VAE, no text encoders.
FLUX_DEV_DIFFUSION_MODEL: Tensors = {
    "img_in.weight": ("BF16", (3072, 64)),
    "txt_in.weight": ("BF16", (3072, 4096)),
    "time_in.in_layer.weight": ("BF16", (3072, 256)),
    "vector_in.in_layer.weight": ("BF16", (3072, 768)),
    "guidance_in.in_layer.weight": ("BF16", (3072, 256)),
    "double_blocks.0.img_attn.norm.key_norm.scale": ("BF16", (128,)),
    "double_blocks.0.img_attn.qkv.weight": ("BF16", (9216, 3072)),
    "double_blocks.0.img_mod.lin.weight": ("BF16", (18432, 3072)),
    "single_blocks.0.linear1.weight": ("BF16", (21504, 3072)),
    "final_layer.linear.weight": ("BF16", (64, 3072)),
}

# An all-in-one Flux checkpoint (e.g. flux1-dev-fp8): the same under model.diffusion_model. + VAE.
FLUX_CHECKPOINT: Tensors = {
    **{"model.diffusion_model." + k: v for k, v in FLUX_DEV_DIFFUSION_MODEL.items()},
    "vae.decoder.conv_in.weight": ("BF16", (512, 16, 3, 3)),
    "text_encoders.clip_l.transformer.text_model.encoder.layers.0.self_attn.k_proj.weight": ("BF16", (768, 768)),
}

SD3_MEDIUM_CHECKPOINT: Tensors = {
    "model.diffusion_model.joint_blocks.0.context_block.attn.qkv.weight": ("F16", (4608, 1536)),
    "model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight": ("F16", (4608, 1536)),
    "model.diffusion_model.x_embedder.proj.weight": ("F16", (1536, 16, 2, 2)),
    "model.diffusion_model.context_embedder.weight": ("F16", (1536, 4096)),
    "model.diffusion_model.y_embedder.mlp.0.weight": ("F16", (1536, 2048)),
    "model.diffusion_model.final_layer.linear.weight": ("F16", (64, 1536)),
    "first_stage_model.decoder.conv_in.weight": ("F16", (512, 16, 3, 3)),
    "text_encoders.clip_l.transformer.text_model.encoder.layers.0.self_attn.k_proj.weight": ("F16", (768, 768)),
}

SD1_LORA_KOHYA: Tensors = {
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight": ("F16", (16, 320)),
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight": ("F16", (320, 16)),
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": ("F16", (16, 768)),
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": ("F16", (320, 16)),
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.alpha": ("F16", ()),
    "lora_te_text_model_encoder_layers_0_self_attn_k_proj.lora_down.weight": ("F16", (16, 768)),
    "lora_te_text_model_encoder_layers_0_self_attn_k_proj.lora_up.weight": ("F16", (768, 16)),
}

SDXL_LORA_KOHYA: Tensors = {
    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight": ("F16", (32, 640)),
    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": ("F16", (32, 2048)),
    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_up.weight": ("F16", (640, 32)),
    "lora_te1_text_model_encoder_layers_0_self_attn_k_proj.lora_down.weight": ("F16", (32, 768)),
    "lora_te2_text_model_encoder_layers_0_self_attn_k_proj.lora_down.weight": ("F16", (32, 1280)),
}

SDXL_LORA_PEFT: Tensors = {
    "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight": ("F32", (8, 2048)),
    "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight": ("F32", (640, 8)),
    "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight": ("F32", (8, 640)),
}

FLUX_LORA_KOHYA: Tensors = {
    "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": ("BF16", (16, 3072)),
    "lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight": ("BF16", (9216, 16)),
    "lora_unet_double_blocks_0_img_mod_lin.lora_down.weight": ("BF16", (16, 3072)),
    "lora_unet_single_blocks_0_linear1.lora_down.weight": ("BF16", (16, 3072)),
    "lora_unet_single_blocks_0_linear1.alpha": ("BF16", ()),
}

FLUX_LORA_DIFFUSERS: Tensors = {
    "transformer.transformer_blocks.0.attn.to_q.lora_A.weight": ("BF16", (16, 3072)),
    "transformer.transformer_blocks.0.attn.to_q.lora_B.weight": ("BF16", (3072, 16)),
    "transformer.transformer_blocks.0.attn.add_q_proj.lora_A.weight": ("BF16", (16, 3072)),
    "transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight": ("BF16", (16, 3072)),
}

SD3_LORA_COMFY: Tensors = {
    "diffusion_model.joint_blocks.0.x_block.attn.qkv.lora_A.weight": ("BF16", (16, 1536)),
    "diffusion_model.joint_blocks.0.x_block.attn.qkv.lora_B.weight": ("BF16", (4608, 16)),
}


def write_json(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


class Library:
    """A ComfyUI-style models/ folder in tmp_path."""

    def __init__(self, root: Path):
        self.models = root / "models"
        self.models.mkdir()
        self.cache_path = str(root / "cache" / "index.json")

    def folder(self, kind_folder: str) -> Path:
        path = self.models / kind_folder
        path.mkdir(parents=True, exist_ok=True)
        return path

    def model(self, kind_folder: str, rel: str, tensors: Tensors | None = None,
              metadata: dict[str, str] | None = None) -> Path:
        path = self.folder(kind_folder) / rel
        write_sparse_safetensors(str(path), tensors if tensors is not None else SD1_LORA_KOHYA, metadata)
        return path

    def paths(self) -> StaticModelPaths:
        return StaticModelPaths.from_models_dir(str(self.models))

    def index(self, **kwargs: Any) -> ModelIndex:
        return ModelIndex(self.paths(), **kwargs)


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    return Library(tmp_path)


def bump_mtime(path: Path, seconds: float = 10.0) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + int(seconds * 1e9)))


@pytest.fixture
def kit() -> Any:
    """The key sets and helpers above, for test modules (which cannot import a conftest)."""
    import types

    names = [n for n, v in globals().items() if n.isupper() or n in ("write_json", "bump_mtime",
                                                                      "write_sparse_safetensors")]
    return types.SimpleNamespace(**{n: globals()[n] for n in names})


class FuzzFiles:
    """A folder the property tests write their generated files into (one per run: hypothesis
    does not mix with function-scoped fixtures such as tmp_path)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def write(self, name: str, data: bytes) -> str:
        path = self.folder / name
        path.write_bytes(data)
        return str(path)


@pytest.fixture(scope="session")
def fuzz_files(tmp_path_factory: pytest.TempPathFactory) -> FuzzFiles:
    return FuzzFiles(tmp_path_factory.mktemp("fuzz"))
