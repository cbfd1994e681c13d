"""Focused tests for the detection fixes of commit 86b5861 (until then covered by the conformance
corpus only): one group per fix, each with a near miss that must not be taken for that family.

Key names and shapes are read from public source, cited at each test; every key set is written as
a sparse safetensors file and read back, as tests/unit/metadata/test_architecture.py does:

- ComfyUI: yzkee/ComfyUI commit 783545f689a0af730065994b46b382ae24844c99
- diffusers: huggingface/diffusers commit 58eb52c0803ea9af3abec60841c2a093bdf1f951
- musubi-tuner: kohya-ss/musubi-tuner commit 30c658c4f4b0bf05038b3346eff9670259b10fc7
- sd-scripts: kohya-ss/sd-scripts commit 48d368fa557731ad0488c07304dfeba8c07910eb
- LyCORIS: KohakuBlueleaf/LyCORIS commit f49d30d670591ec8841d241d79aaa8449b30a715
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from intelligent_pipeline.metadata import base_models, families, read_header
from intelligent_pipeline.metadata.architecture import Detection, detect, looks_like_lora
from intelligent_pipeline.metadata.merge import merge
from intelligent_pipeline.metadata.sidecars import Facts, trainer_facts

R = 8  # adapter rank: any small value; the widths are what detection reads


def _t(*shape: int) -> tuple[str, tuple[int, ...]]:
    return ("BF16", tuple(shape))


def _detect(tmp_path: Path, kit: Any, kind: str, tensors: dict, metadata: dict | None = None) -> Detection:
    path = tmp_path / "m.safetensors"
    kit.write_sparse_safetensors(str(path), tensors, metadata)
    header = read_header(path)
    return detect(kind, header.tensors, header.metadata)


def _lora(module: str, in_dim: int, out_dim: int) -> dict:
    """A PEFT-style LoRA pair on `module`: lora_A [rank, in], lora_B [out, rank]."""
    return {module + ".lora_A.weight": _t(R, in_dim), module + ".lora_B.weight": _t(out_dim, R)}


def _sidecar(base: str) -> list[Facts]:
    return [Facts("lora-manager", {"base_model": base})]


# --- SD 3 / 3.5 LoRAs in diffusers names ---------------------------------------------------------
#
# diffusers src/diffusers/models/transformers/transformer_sd3.py: SD3Transformer2DModel has
# transformer_blocks of JointTransformerBlock (src/diffusers/models/attention.py: attn with
# to_q/to_k/to_v and the context projections add_q_proj/add_k_proj/add_v_proj, and `attn2` when
# use_dual_attention, i.e. for the blocks in dual_attention_layers: SD 3.5 Medium). inner_dim =
# num_attention_heads x attention_head_dim (64): 24 x 64 = 1536 (SD 3 / 3.5 Medium), 38 x 64 = 2432
# (SD 3.5 Large; ComfyUI comfy/model_detection.py reads the MMDiT depth as hidden // 64).

def _sd3_lora(width: int, *parts: str) -> dict:
    out: dict = {}
    for part in parts:
        out.update(_lora(f"transformer.transformer_blocks.0.{part}", width, width))
    return out


def test_sd3_diffusers_lora_by_its_context_projections(tmp_path: Path, kit: Any) -> None:
    det = _detect(tmp_path, kit, "lora", _sd3_lora(1536, "attn.to_q", "attn.add_k_proj"))
    assert (det.family, det.architecture, det.decisive) == ("SD3", "sd3", True)
    assert det.candidates == {"SD3", "SD3_5M"}  # 1536 wide: SD 3 Medium or SD 3.5 Medium
    assert not det.consistent_with("SD 3.5 Large")
    # add_v_proj alone routes to the same check (it was only add_q/add_k before).
    det = _detect(tmp_path, kit, "lora", _sd3_lora(1536, "attn.add_v_proj"))
    assert (det.family, det.architecture, det.decisive) == ("SD3", "sd3", True)


def test_sd35_large_and_medium_diffusers_loras(tmp_path: Path, kit: Any) -> None:
    large = _detect(tmp_path, kit, "lora", _sd3_lora(2432, "attn.to_k", "attn.add_q_proj"))
    assert (large.family, large.base_model, large.decisive) == ("SD3", "SD 3.5 Large", True)
    assert not large.consistent_with("SD 3")
    # SD 3.5 Medium's second self-attention, without any context projection trained.
    medium = _detect(tmp_path, kit, "lora", _sd3_lora(1536, "attn.to_q", "attn2.to_q"))
    assert (medium.family, medium.architecture, medium.decisive) == ("SD3_5M", "sd3", True)


def test_sd3_width_attention_alone_is_no_sd3(tmp_path: Path, kit: Any) -> None:
    # Near miss: attention of width 1536 with neither context projections nor attn2 proves no MMDiT.
    det = _detect(tmp_path, kit, "lora", _sd3_lora(1536, "attn.to_q", "attn.to_k"))
    assert det.family != "SD3" and det.architecture != "sd3" and not det.decisive
    # Near miss: 3072-wide attention alone is Qwen-Image or Flux, a guess, never SD 3.
    det = _detect(tmp_path, kit, "lora", _sd3_lora(3072, "attn.to_q", "attn.to_k"))
    assert (det.family, det.decisive) == ("Qwen", False) and "SD3" not in det.candidates
    assert {"Flux1", "Qwen"} <= det.candidates


# --- diffusers transformers: SD 3 and Mochi -------------------------------------------------------
#
# transformer_sd3.py: context_embedder = Linear(joint_attention_dim 4096, caption_projection_dim),
# pos_embed = PatchEmbed(in_channels 16, embed_dim inner_dim, patch 2), and add_q_proj maps the
# context (dim) to inner_dim: the hidden width is readable without transformer_blocks.0.attn.to_q.

def _sd3_transformer(hidden: int) -> dict:
    return {"transformer_blocks.0.attn.add_q_proj.weight": _t(hidden, hidden),
            "transformer_blocks.0.attn.add_k_proj.weight": _t(hidden, hidden),
            "context_embedder.weight": _t(hidden, 4096),
            "pos_embed.proj.weight": _t(hidden, 16, 2, 2),
            "time_text_embed.text_embedder.linear_1.weight": _t(hidden, 2048),
            "proj_out.weight": _t(64, hidden)}


def test_sd3_diffusers_transformer_without_to_q(tmp_path: Path, kit: Any) -> None:
    det = _detect(tmp_path, kit, "diffusion_model", _sd3_transformer(1536))
    assert (det.family, det.base_model, det.architecture, det.decisive) == ("SD3", "SD 3", "sd3", True)
    assert not det.consistent_with("SD 3.5 Large")
    large = _detect(tmp_path, kit, "diffusion_model", _sd3_transformer(2432))
    assert (large.base_model, large.decisive) == ("SD 3.5 Large", True) and not large.consistent_with("SD 3")
    medium = {**_sd3_transformer(1536), "transformer_blocks.0.attn2.to_q.weight": _t(1536, 1536)}
    det = _detect(tmp_path, kit, "diffusion_model", medium)
    assert (det.family, det.architecture, det.decisive) == ("SD3_5M", "sd3", True)


def test_a_3072_wide_transformer_without_single_blocks_is_not_sd3(tmp_path: Path, kit: Any) -> None:
    # Near miss: the same stems 3072 wide are neither SD3 width; no single-stream blocks: no Flux either.
    det = _detect(tmp_path, kit, "diffusion_model", _sd3_transformer(3072))
    assert (det.family, det.architecture, det.decisive) == ("unknown", "unknown", False)


# diffusers src/diffusers/models/transformers/transformer_mochi.py (MochiTransformer3DModel defaults:
# 24 heads x 128 = inner_dim 3072, pooled_projection_dim 1536, text_embed_dim 4096):
# time_embed = MochiCombinedTimestepCaptionEmbedding (src/diffusers/models/embeddings.py: pooler =
# MochiAttentionPool with to_kv = Linear(4096, 2 x 4096); caption_proj = Linear(4096, 1536)),
# pos_frequencies [3, heads, head_dim // 2], transformer_blocks.N.attn1 with add_q_proj from 1536.
MOCHI_DIFFUSERS = {
    "patch_embed.proj.weight": _t(3072, 12, 2, 2),
    "time_embed.pooler.to_kv.weight": _t(8192, 4096),
    "time_embed.pooler.to_q.weight": _t(4096, 4096),
    "time_embed.caption_proj.weight": _t(1536, 4096),
    "pos_frequencies": _t(3, 24, 64),
    "transformer_blocks.0.attn1.to_q.weight": _t(3072, 3072),
    "transformer_blocks.0.attn1.add_q_proj.weight": _t(3072, 1536),
}


def test_mochi_diffusers_transformer(tmp_path: Path, kit: Any) -> None:
    det = _detect(tmp_path, kit, "diffusion_model", MOCHI_DIFFUSERS)
    assert (det.family, det.architecture, det.decisive) == ("Mochi", families.GROUPS["Mochi"].architecture, True)
    assert det.architecture == "video"
    # The pooler alone is a guess.
    alone = {"time_embed.pooler.to_kv.weight": _t(8192, 4096), "transformer_blocks.0.attn1.to_q.weight": _t(3072, 3072)}
    det = _detect(tmp_path, kit, "diffusion_model", alone)
    assert (det.family, det.decisive) == ("Mochi", False)


def test_mochi_stems_without_the_pooler_are_not_mochi(tmp_path: Path, kit: Any) -> None:
    # Near miss: every Mochi fact but time_embed.pooler (the marker) is no Mochi.
    near = {k: v for k, v in MOCHI_DIFFUSERS.items() if not k.startswith("time_embed.pooler.")}
    assert _detect(tmp_path, kit, "diffusion_model", near).family != "Mochi"


# --- SDXL distilled (SSD-1B, Segmind Vega) ----------------------------------------------------------
#
# ComfyUI comfy/supported_models.py: SSD1B transformer_depth [0, 0, 2, 2, 4, 4], Segmind_Vega
# [0, 0, 1, 1, 2, 2] (SDXL: [0, 0, 2, 2, 10, 10]), context_dim 2048, adm_in_channels 2816;
# comfy/model_detection.py: depths counted as input_blocks.N.1.transformer_blocks.D (N = 7, 8 at the
# deepest level; output_blocks 0..2 mirror it), and transformer_depth_middle -1 (SSD_1B and
# Segmind_Vega configs) when middle_block.0 has no middle_block.1.proj_in after it.

P = "model.diffusion_model."


def _sdxl_unet(depth: int, *, middle_transformer: bool, output_side: bool = True) -> dict:
    d = {P + "input_blocks.0.0.weight": _t(320, 4, 3, 3), P + "label_emb.0.0.weight": _t(1280, 2816),
         P + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": _t(640, 2048),
         P + "middle_block.0.in_layers.0.weight": _t(1280,),
         P + "out.2.weight": _t(4, 320, 3, 3), "first_stage_model.decoder.conv_in.weight": _t(512, 4, 3, 3)}
    for block in (7, 8):
        for i in range(depth):
            d[P + f"input_blocks.{block}.1.transformer_blocks.{i}.attn2.to_k.weight"] = _t(1280, 2048)
    if output_side:
        for block in (0, 1):
            for i in range(depth):
                d[P + f"output_blocks.{block}.1.transformer_blocks.{i}.attn2.to_k.weight"] = _t(1280, 2048)
    if middle_transformer:
        d[P + "middle_block.1.proj_in.weight"] = _t(1280, 1280)
        d[P + "middle_block.1.transformer_blocks.0.attn2.to_k.weight"] = _t(1280, 2048)
    return d


@pytest.mark.parametrize(("name", "depth"), [("SSD-1B", 4), ("Segmind Vega", 2)])
def test_sdxl_distilled_unets(tmp_path: Path, kit: Any, name: str, depth: int) -> None:
    det = _detect(tmp_path, kit, "checkpoint", _sdxl_unet(depth, middle_transformer=False))
    assert (det.family, det.architecture) == ("SDXLDistilled", "sdxl"), name
    assert det.decisive is False and det.confidence == pytest.approx(0.6)
    assert f"depth {depth}" in det.evidence


def test_sdxl_and_near_misses_are_not_distilled(tmp_path: Path, kit: Any) -> None:
    cases = {"SDXL": _sdxl_unet(10, middle_transformer=True),
             "depth 4 but a middle transformer": _sdxl_unet(4, middle_transformer=True),
             "input side only (an excerpt)": _sdxl_unet(4, middle_transformer=False, output_side=False),
             "depth 10 without a middle transformer": _sdxl_unet(10, middle_transformer=False)}
    for why, tensors in cases.items():
        det = _detect(tmp_path, kit, "checkpoint", tensors)
        assert (det.family, det.architecture, det.decisive) == ("SDXL", "sdxl", True), why
        assert "SDXLDistilled" in det.candidates  # an SDXL-shaped UNet still allows it


def test_a_sidecar_is_not_overruled_by_the_distilled_guess(tmp_path: Path, kit: Any) -> None:
    det = _detect(tmp_path, kit, "checkpoint", _sdxl_unet(4, middle_transformer=False))
    out = merge(_sidecar("SDXL 1.0"), det, kind="checkpoint", title="t")
    assert (out["family"], out["base_model"], out["architecture"]) == ("SDXL", "SDXL 1.0", "sdxl")
    assert len(out["problems"]) == 1 and "not decisively" in out["problems"][0]
    out = merge(_sidecar("SDXL Distilled"), det, kind="checkpoint", title="t")
    assert (out["family"], out["problems"]) == ("SDXLDistilled", ())


# --- Playground v2.5 -----------------------------------------------------------------------------
#
# ComfyUI comfy/supported_models.py SDXL.model_type: `edm_mean` and `edm_std` in the state dict mean
# Playground V2.5 (ModelType.EDM, latent_formats.SDXL_Playground_2_5); `edm_vpred.sigma_max` is
# V_PREDICTION_EDM on a plain SDXL. diffusers src/diffusers/loaders/single_file_utils.py also keys
# "playground-v2-5" on "edm_mean". Both are top-level [1, 4, 1, 1] latent statistics.

def test_playground_v25_by_its_edm_statistics(tmp_path: Path, kit: Any) -> None:
    tensors = {**_sdxl_unet(10, middle_transformer=True), "edm_mean": _t(1, 4, 1, 1), "edm_std": _t(1, 4, 1, 1)}
    det = _detect(tmp_path, kit, "checkpoint", tensors)
    assert (det.family, det.base_model, det.architecture, det.decisive) == \
        ("PlaygroundV2", "Playground v2", "unknown", True)
    assert det.candidates == {"PlaygroundV2"}


def test_edm_near_misses_stay_sdxl(tmp_path: Path, kit: Any) -> None:
    sdxl = _sdxl_unet(10, middle_transformer=True)
    for why, more in {"edm_mean alone": {"edm_mean": _t(1, 4, 1, 1)},
                      "EDM v-prediction": {"edm_vpred.sigma_max": _t(), "edm_vpred.sigma_min": _t()}}.items():
        det = _detect(tmp_path, kit, "checkpoint", {**sdxl, **more})
        assert (det.family, det.architecture) == ("SDXL", "sdxl"), why
    # edm_mean/edm_std beside an SD 1.5 UNet are no Playground (the rule is SDXL's model_type).
    sd1 = {**kit.SD1_CHECKPOINT, "edm_mean": _t(1, 4, 1, 1), "edm_std": _t(1, 4, 1, 1)}
    assert _detect(tmp_path, kit, "checkpoint", sd1).family == "SD1"


# --- Anima before Wan ------------------------------------------------------------------------------
#
# ComfyUI comfy/ldm/cosmos/predict2.py Block: self_attn / cross_attn are Attention with q_proj, k_proj,
# v_proj, output_proj; mlp is GPT2FeedForward with layer1/layer2; comfy/model_detection.py reads
# blocks.0.mlp.layer1 as Cosmos predict2 (model_channels 2048: 16 heads; crossattn_emb_channels 1024)
# and llm_adapter.* as Anima. Wan (comfy/ldm/wan/model.py) names the same places self_attn.q/k/v/o,
# cross_attn.q/k/v/o and ffn.0/ffn.2.

ANIMA_LORA = {
    **_lora("diffusion_model.blocks.0.self_attn.q_proj", 2048, 2048),
    **_lora("diffusion_model.blocks.0.cross_attn.k_proj", 1024, 2048),
    **_lora("diffusion_model.blocks.0.mlp.layer1", 2048, 8192),
}


def test_anima_lora_is_not_read_as_wan(tmp_path: Path, kit: Any) -> None:
    det = _detect(tmp_path, kit, "lora", ANIMA_LORA)
    assert (det.family, det.architecture, det.decisive) == ("Anima", "unknown", True)
    assert det.candidates == {"Anima", "Other"}
    assert not any(c.startswith("WanVideo") for c in det.candidates)
    # kohya spelling (dots as underscores)
    kohya = {"lora_unet_blocks_0_self_attn_q_proj.lora_down.weight": _t(R, 2048),
             "lora_unet_blocks_0_mlp_layer1.lora_down.weight": _t(R, 2048)}
    assert _detect(tmp_path, kit, "lora", kohya).family == "Anima"
    # One Cosmos module name: Anima, as a guess.
    one = _lora("diffusion_model.blocks.0.self_attn.q_proj", 2048, 2048)
    det = _detect(tmp_path, kit, "lora", one)
    assert (det.family, det.decisive, det.confidence) == ("Anima", False, pytest.approx(0.4))


def test_wan_names_in_the_same_blocks_are_not_anima(tmp_path: Path, kit: Any) -> None:
    wan = {**_lora("diffusion_model.blocks.0.self_attn.q", 1536, 1536),
           **_lora("diffusion_model.blocks.0.cross_attn.k", 1536, 1536)}
    det = _detect(tmp_path, kit, "lora", wan)
    assert (det.family, det.architecture, det.decisive) == ("WanVideo1_3B_T2V", "video", True)
    assert "Anima" not in det.candidates


def test_a_sidecar_is_not_overruled_by_a_one_name_anima_guess(tmp_path: Path, kit: Any) -> None:
    det = _detect(tmp_path, kit, "lora", _lora("diffusion_model.blocks.0.self_attn.q_proj", 2048, 2048))
    out = merge(_sidecar("Wan Video 14B t2v"), det, kind="lora", title="t")
    assert (out["family"], out["base_model"]) == ("WanVideo14B_T2V", "Wan Video 14B t2v")
    assert len(out["problems"]) == 1


# --- Wan LoRAs that adapt one module ---------------------------------------------------------------
#
# Widths and ffn hidden sizes: diffusers scripts/convert_wan_to_diffusers.py (Wan-T2V-1.3B: 12 heads x
# 128 = 1536, ffn_dim 8960; Wan-T2V-14B: 40 x 128 = 5120, ffn_dim 13824); ComfyUI
# comfy/model_detection.py reads ffn_dim from blocks.0.ffn.0.weight rows. diffusers
# src/diffusers/models/transformers/transformer_wan.py names the ffn `ffn` (FeedForward: net.0.proj,
# net.2) beside attn1/attn2.

def test_wan_lora_on_the_ffn_alone(tmp_path: Path, kit: Any) -> None:
    det = _detect(tmp_path, kit, "lora", _lora("diffusion_model.blocks.0.ffn.0", 1536, 8960))
    assert (det.family, det.architecture, det.decisive, det.confidence) == \
        ("WanVideo1_3B_T2V", "video", True, pytest.approx(0.8))
    kohya = {"lora_unet_blocks_0_ffn_0.lora_down.weight": _t(R, 1536),
             "lora_unet_blocks_0_ffn_0.lora_up.weight": _t(8960, R)}
    det = _detect(tmp_path, kit, "lora", kohya)
    assert (det.family, det.architecture, det.decisive) == ("WanVideo1_3B_T2V", "video", True)


def test_wan_one_attention_module_is_a_guess(tmp_path: Path, kit: Any) -> None:
    det = _detect(tmp_path, kit, "lora", _lora("diffusion_model.blocks.0.self_attn.q", 1536, 1536))
    assert (det.family, det.architecture, det.decisive, det.confidence) == \
        ("WanVideo1_3B_T2V", "video", False, pytest.approx(0.5))


def test_wan_near_misses(tmp_path: Path, kit: Any) -> None:
    # An ffn hidden size that is not 1.3B's (14336 is Wan 2.2 TI2V-5B's) at 1.3B's width: no proof.
    det = _detect(tmp_path, kit, "lora", _lora("diffusion_model.blocks.0.ffn.0", 1536, 14336))
    assert det.decisive is False
    # `blocks` beside transformer_blocks: another network's nested blocks, never Wan.
    mixed = {**_lora("transformer.transformer_blocks.0.attn1.to_q", 1152, 1152),
             **_lora("transformer.transformer_blocks.0.attn2.to_k", 1152, 1152),
             **_lora("transformer.blocks.0.ffn.0", 1536, 8960)}
    det = _detect(tmp_path, kit, "lora", mixed)
    assert not det.family.startswith("WanVideo") and det.architecture != "video"


def test_wan_refinement_and_sidecar_precedence(tmp_path: Path, kit: Any) -> None:
    decisive = _detect(tmp_path, kit, "lora", _lora("diffusion_model.blocks.0.ffn.0", 1536, 8960))
    out = merge(_sidecar("Wan Video"), decisive, kind="lora", title="t")
    assert (out["family"], out["base_model"], out["problems"]) == ("WanVideo1_3B_T2V", "Wan Video 1.3B t2v", ())
    guess = _detect(tmp_path, kit, "lora", _lora("diffusion_model.blocks.0.self_attn.q", 1536, 1536))
    # A sidecar's "Wan Video" is not refined by a guess ...
    out = merge(_sidecar("Wan Video"), guess, kind="lora", title="t")
    assert (out["family"], out["base_model"]) == ("WanVideo", "Wan Video")
    # ... nor is another Wan size overruled by it.
    out = merge(_sidecar("Wan Video 14B t2v"), guess, kind="lora", title="t")
    assert (out["family"], out["base_model"]) == ("WanVideo14B_T2V", "Wan Video 14B t2v")
    # The file's own trainer lineage (musubi-tuner src/musubi_tuner/utils/sai_model_spec.py:
    # ARCH_WAN = "wan2.1", with "/lora" appended for LoRAs) takes the tensors' best guess.
    out = merge([trainer_facts({"modelspec.architecture": "wan2.1/lora"})], guess, kind="lora", title="t")
    assert (out["family"], out["base_model"]) == ("WanVideo1_3B_T2V", "Wan Video 1.3B t2v")


# --- Lumina 2 in diffusers names -----------------------------------------------------------------------
#
# diffusers src/diffusers/models/transformers/transformer_lumina2.py: Lumina2Transformer2DModel
# (hidden_size 2304) has layers / noise_refiner / context_refiner of Lumina2TransformerBlock with
# `attn` (Attention: to_q, to_k, to_v) and `feed_forward` (LuminaFeedForward, attention.py: linear_1,
# linear_2, linear_3).

def test_lumina2_diffusers_lora(tmp_path: Path, kit: Any) -> None:
    tensors = {**_lora("transformer.layers.0.attn.to_q", 2304, 2304),
               **_lora("transformer.layers.0.feed_forward.linear_1", 2304, 6144)}
    det = _detect(tmp_path, kit, "lora", tensors)
    assert (det.family, det.architecture, det.decisive) == ("Lumina", "unknown", True)
    to_k = {**_lora("transformer.layers.0.attn.to_k", 2304, 2304),
            **_lora("transformer.noise_refiner.0.attn.to_k", 2304, 2304)}
    assert _detect(tmp_path, kit, "lora", to_k).family == "Lumina"


def test_lumina2_near_misses(tmp_path: Path, kit: Any) -> None:
    # layers.N.attn.to_q without feed_forward or a refiner: not Lumina's block.
    attn_only = {**_lora("transformer.layers.0.attn.to_q", 2304, 2304),
                 **_lora("transformer.layers.0.attn.to_k", 2304, 2304)}
    assert _detect(tmp_path, kit, "lora", attn_only).family != "Lumina"
    # Another width is not decisive for Lumina 2.
    odd = {**_lora("transformer.layers.0.attn.to_q", 1024, 1024),
           **_lora("transformer.layers.0.feed_forward.linear_1", 1024, 4096)}
    det = _detect(tmp_path, kit, "lora", odd)
    assert det.decisive is False


# --- GLoRA ----------------------------------------------------------------------------------------------
#
# ComfyUI comfy/weight_adapter/glora.py: a module carries {x}.a1/.a2/.b1/.b2.weight; in the layout it
# calls old_glora (rank = a1.shape[0] = a2.shape[1] = b1.shape[0] = b2.shape[1]) the update is
# b2 @ b1 + W @ a2 @ a1, so a1 and b1 are [rank, in], a2 [in, rank], b2 [out, rank].

def _glora_rank_first(module: str, in_dim: int, out_dim: int) -> dict:
    return {module + ".a1.weight": _t(R, in_dim), module + ".a2.weight": _t(in_dim, R),
            module + ".b1.weight": _t(R, in_dim), module + ".b2.weight": _t(out_dim, R)}


def test_glora_lora_is_read_by_its_widths(tmp_path: Path, kit: Any) -> None:
    m = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    sd1 = _glora_rank_first(m, 768, 320)
    assert looks_like_lora(list(sd1))
    det = _detect(tmp_path, kit, "lora", sd1)
    assert (det.family, det.architecture, det.decisive) == ("SD1", "sd1", True)
    sdxl = _glora_rank_first("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", 2048, 640)
    det = _detect(tmp_path, kit, "lora", sdxl)
    assert (det.family, det.architecture, det.decisive) == ("SDXL", "sdxl", True)


def test_glora_markers_need_both_halves(tmp_path: Path, kit: Any) -> None:
    # a1 without b1 (or a checkpoint tensor that happens to end in `.a1.weight`) is no adapter.
    assert not looks_like_lora(["model.blocks.0.a1.weight", "model.blocks.0.a2.weight"])
    assert looks_like_lora(["x.a1.weight", "x.b1.weight"])
    det = _detect(tmp_path, kit, "lora", {"blocks.0.a1.weight": _t(R, 768), "blocks.0.norm.weight": _t(768,)})
    assert (det.family, det.evidence) == ("unknown", "no LoRA keys")


# --- Kontext and Chroma trainer strings ----------------------------------------------------------------
#
# musubi-tuner src/musubi_tuner/utils/sai_model_spec.py: ARCH_FLUX_KONTEXT = "Flux.1-dev" (its Kontext
# trainer only), "/lora" appended for LoRAs (ADAPTER_LORA). sd-scripts library/sai_model_spec.py:
# ARCH_FLUX_1_DEV = "flux-1-dev", ARCH_FLUX_1_CHROMA = "chroma", ARCH_ANIMA_PREVIEW = "anima-preview",
# with the same "/lora" suffix.

@pytest.mark.parametrize(("arch", "base"), [
    ("Flux.1-dev/lora", "Flux.1 Kontext"), ("chroma/lora", "Chroma"), ("chroma", "Chroma"),
    ("anima-preview/lora", "Anima"),
    # near misses: sd-scripts' Flux.1 [dev] and schnell spellings stay Flux.1
    ("flux-1-dev/lora", "Flux.1 D"), ("flux-1-schnell/lora", "Flux.1 S"),
])
def test_trainer_architecture_strings(arch: str, base: str) -> None:
    assert base_models.from_trainer_metadata({"modelspec.architecture": arch}) == base


def test_kontext_trainer_string_decides_within_flux1(tmp_path: Path, kit: Any) -> None:
    det = _detect(tmp_path, kit, "lora", kit.FLUX_LORA_KOHYA)
    assert "Flux1Kontext" in det.candidates
    meta = {"modelspec.architecture": "Flux.1-dev/lora"}
    out = merge([trainer_facts(meta)], det, kind="lora", title="t")
    assert (out["family"], out["base_model"], out["architecture"]) == ("Flux1Kontext", "Flux.1 Kontext", "flux")
    out = merge([trainer_facts({"modelspec.architecture": "flux-1-dev/lora"})], det, kind="lora", title="t")
    assert (out["family"], out["architecture"]) == ("Flux1", "flux")


def test_chroma_trainer_string_and_what_the_tensors_rule_out(tmp_path: Path, kit: Any) -> None:
    # A Flux-width LoRA without per-block modulation allows Chroma: the trainer string decides.
    unmodulated = {k: v for k, v in kit.FLUX_LORA_KOHYA.items() if "img_mod" not in k}
    det = _detect(tmp_path, kit, "lora", unmodulated)
    assert "Chroma" in det.candidates
    out = merge([trainer_facts({"modelspec.architecture": "chroma/lora"})], det, kind="lora", title="t")
    assert (out["family"], out["architecture"]) == ("Chroma", "unknown")
    # Near miss: img_mod.lin is Flux.1's alone (Chroma has no per-block modulation): the decisive
    # tensors overrule the string, and say so.
    det = _detect(tmp_path, kit, "lora", kit.FLUX_LORA_KOHYA)
    assert det.decisive and "Chroma" not in det.candidates
    out = merge([trainer_facts({"modelspec.architecture": "chroma/lora"})], det, kind="lora", title="t")
    assert out["family"] == "Flux1" and len(out["problems"]) == 1


# --- Flux.2 [dev] and Playground v2 have architecture "unknown" -----------------------------------------
#
# Their graphs are not the flux / sdxl ones (metadata/families.py): Flux.2 [dev] has a Mistral text
# encoder (ComfyUI comfy/model_detection.py: txt_in from 15360 = 3 x 5120) and Playground v2.5 is EDM.

def test_flux2_and_playground_keep_their_family_with_architecture_unknown(tmp_path: Path, kit: Any) -> None:
    assert families.GROUPS["Flux2"].architecture == "unknown"
    assert families.GROUPS["PlaygroundV2"].architecture == "unknown"
    for base, fam in (("Flux.2 D", "Flux2"), ("Playground v2", "PlaygroundV2")):
        assert (base_models.family(base), base_models.family_architecture(fam)) == (fam, "unknown")
        out = merge(_sidecar(base), None, kind="lora", title="t")
        assert (out["family"], out["architecture"]) == (fam, "unknown"), base
    # Flux.2 [dev] LoRA read by the widths of img_attn.proj / linear2 (6144) alone.
    flux2 = {**_lora("diffusion_model.double_blocks.0.img_attn.proj", 6144, 6144),
             **_lora("diffusion_model.single_blocks.0.linear2", 24576, 6144)}
    det = _detect(tmp_path, kit, "lora", flux2)
    assert (det.family, det.architecture, det.decisive) == ("Flux2", "unknown", True)


def test_neighbours_of_flux2_and_playground_keep_their_graphs(tmp_path: Path, kit: Any) -> None:
    for base, arch in (("Flux.1 D", "flux"), ("Flux.1 Kontext", "flux"), ("SDXL 1.0", "sdxl"),
                       ("SDXL Distilled", "sdxl")):
        out = merge(_sidecar(base), None, kind="lora", title="t")
        assert out["architecture"] == arch, base
    flux1 = {**_lora("diffusion_model.double_blocks.0.img_attn.proj", 3072, 3072),
             **_lora("diffusion_model.single_blocks.0.linear2", 15360, 3072)}
    det = _detect(tmp_path, kit, "lora", flux1)
    assert (det.family, det.architecture) == ("Flux1", "flux")


# --- GLoRA in the layout current LyCORIS writes --------------------------------------------------------
#
# LyCORIS lycoris/modules/glora.py (GLoRAModule, Linear case): a2 = Linear(in, rank), a1 = Linear(rank, in),
# b2 = Linear(in, rank), b1 = Linear(rank, out), so the saved weights are a1 [in, rank], a2 [rank, in],
# b1 [out, rank], b2 [rank, in] (update b1 @ b2 + W @ a1 @ a2). ComfyUI comfy/weight_adapter/glora.py
# calculate_weight takes this layout when b2[0] = b1[1] = a1[1] = a2[0] (the rank) and the old one when
# b2[1] = b1[0] = a1[0] = a2[1]; where both hold it asks the adapted weight, which a LoRA file lacks.

def _glora_current(module: str, in_dim: int, out_dim: int, rank: int = R) -> dict:
    return {module + ".a1.weight": _t(in_dim, rank), module + ".a2.weight": _t(rank, in_dim),
            module + ".b1.weight": _t(out_dim, rank), module + ".b2.weight": _t(rank, in_dim)}


def test_glora_current_layout_is_read_by_its_widths(tmp_path: Path, kit: Any) -> None:
    m = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    det = _detect(tmp_path, kit, "lora", _glora_current(m, 768, 320))
    assert (det.family, det.architecture, det.decisive) == ("SD1", "sd1", True)
    sdxl = _glora_current("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", 2048, 640)
    det = _detect(tmp_path, kit, "lora", sdxl)
    assert (det.family, det.architecture, det.decisive) == ("SDXL", "sdxl", True)
    # Conv modules (LyCORIS self.module(..., 1) is a 1x1 Conv2d: [out, in, 1, 1]) read the same way.
    conv = {k: _t(*shape, 1, 1) for k, (_, shape) in _glora_current(m, 768, 320).items()}
    det = _detect(tmp_path, kit, "lora", conv)
    assert (det.family, det.architecture) == ("SD1", "sd1")


def test_glora_square_modules_agree_with_both_layouts(tmp_path: Path, kit: Any) -> None:
    # A square layer (attn1.to_q, 320 -> 320) in the current layout also satisfies the old rule
    # (a1[0] = a2[1] = b1[0] = b2[1] = 320): the smaller common size is the rank, so the widths are
    # 320, not 8. Beside it the cross-attention module decides SD1.
    q = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    k = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    tensors = {**_glora_current(q, 320, 320), **_glora_current(k, 768, 320)}
    det = _detect(tmp_path, kit, "lora", tensors)
    assert (det.family, det.architecture, det.decisive) == ("SD1", "sd1", True)
    # Same with the old layout: a rank-4 square module next to a rank-4 cross-attention one.
    det = _detect(tmp_path, kit, "lora", {**_glora_rank_first(q, 320, 320), **_glora_rank_first(k, 768, 320)})
    assert (det.family, det.architecture, det.decisive) == ("SD1", "sd1", True)


def test_glora_shapes_of_neither_layout_give_no_width(tmp_path: Path, kit: Any) -> None:
    # The rank positions agree in neither layout: no width is read, so only the block layout is left,
    # a guess (the old reader took a1[1] = 768 as the input width whatever the other shapes said).
    m = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    odd = {m + ".a1.weight": _t(8, 768), m + ".a2.weight": _t(16, 768),
           m + ".b1.weight": _t(4, 320), m + ".b2.weight": _t(8, 32)}
    det = _detect(tmp_path, kit, "lora", odd)
    assert det.decisive is False and "attn2.to_k input" not in det.evidence
    # The old layout with SDXL's context width is not read as the current one (a1[0] = 8 is the rank).
    det = _detect(tmp_path, kit, "lora", _glora_rank_first(m, 2048, 640))
    assert (det.family, det.architecture) == ("SDXL", "sdxl")


# --- Wan LoRAs in diffusers names: I2V image cross-attention and the ffn alone ---------------------------
#
# diffusers src/diffusers/models/transformers/transformer_wan.py: WanTransformer3DModel.blocks are
# WanTransformerBlock with attn1 / attn2 (WanAttention: to_q, to_k, to_v, to_out.0, and for I2V
# (added_kv_proj_dim set) add_k_proj / add_v_proj = Linear(added_kv_proj_dim, inner_dim)) and
# ffn = FeedForward(dim, inner_dim=ffn_dim): net.0.proj [dim -> ffn_dim], net.2 [ffn_dim -> dim].
# Widths: scripts/convert_wan_to_diffusers.py (Wan-I2V-14B: 40 heads x 128 = 5120, ffn_dim 13824,
# image_dim 1280; Wan-T2V-1.3B: 1536, ffn_dim 8960).

WAN_I2V_DIFFUSERS = {**_lora("transformer.blocks.0.attn1.to_q", 5120, 5120),
                     **_lora("transformer.blocks.0.attn2.add_k_proj", 1280, 5120),
                     **_lora("transformer.blocks.0.ffn.net.0.proj", 5120, 13824)}


def test_wan_i2v_diffusers_lora_with_image_projections(tmp_path: Path, kit: Any) -> None:
    det = _detect(tmp_path, kit, "lora", WAN_I2V_DIFFUSERS)
    assert (det.family, det.base_model, det.architecture, det.decisive) == \
        ("WanVideo14B_I2V_480p", "Wan Video 14B i2v 480p", "video", True)
    assert "image cross-attention" in det.evidence
    # add_v_proj alone (no add_k_proj) routes the same way.
    v_only = {k.replace("add_k_proj", "add_v_proj"): v for k, v in WAN_I2V_DIFFUSERS.items()}
    assert _detect(tmp_path, kit, "lora", v_only).architecture == "video"
    # Without the image projections it is the text-to-video 14B.
    t2v = {k: v for k, v in WAN_I2V_DIFFUSERS.items() if "add_k_proj" not in k}
    det = _detect(tmp_path, kit, "lora", t2v)
    assert (det.family, det.architecture) == ("WanVideo14B_T2V", "video")


def test_context_projections_in_transformer_blocks_stay_mmdit(tmp_path: Path, kit: Any) -> None:
    # Near miss for the routing: add_k_proj inside transformer_blocks is SD3's / Flux's joint attention.
    det = _detect(tmp_path, kit, "lora", _sd3_lora(1536, "attn.to_q", "attn.add_k_proj"))
    assert (det.family, det.architecture, det.decisive) == ("SD3", "sd3", True)
    flux = {**_lora("transformer.transformer_blocks.0.attn.to_q", 3072, 3072),
            **_lora("transformer.transformer_blocks.0.attn.add_k_proj", 3072, 3072),
            **_lora("transformer.single_transformer_blocks.0.attn.to_q", 3072, 3072)}
    det = _detect(tmp_path, kit, "lora", flux)
    assert det.architecture == "flux" and not det.family.startswith("WanVideo")


def test_wan_diffusers_lora_on_the_ffn_alone(tmp_path: Path, kit: Any) -> None:
    det = _detect(tmp_path, kit, "lora", _lora("transformer.blocks.0.ffn.net.0.proj", 1536, 8960))
    assert (det.family, det.architecture, det.decisive, det.confidence) == \
        ("WanVideo1_3B_T2V", "video", True, pytest.approx(0.8))
    # The down projection alone: its output is the width.
    det = _detect(tmp_path, kit, "lora", _lora("transformer.blocks.0.ffn.net.2", 8960, 1536))
    assert (det.family, det.architecture, det.decisive) == ("WanVideo1_3B_T2V", "video", True)
    # Near miss: 1.3B's width with another ffn hidden size (14336, TI2V-5B's) proves nothing.
    det = _detect(tmp_path, kit, "lora", _lora("transformer.blocks.0.ffn.net.0.proj", 1536, 14336))
    assert det.architecture == "video" and det.decisive is False


# --- Lumina 2, Anima and Flux.2 [dev] trainer strings ---------------------------------------------------
#
# sd-scripts library/sai_model_spec.py: ARCH_LUMINA_2 = "lumina-2", ARCH_LUMINA_UNKNOWN = "lumina",
# ARCH_ANIMA_PREVIEW = "anima-preview", ARCH_ANIMA_UNKNOWN = "anima-unknown", "/lora" appended for
# LoRAs (ADAPTER_LORA). musubi-tuner src/musubi_tuner/utils/sai_model_spec.py: ARCH_FLUX_2_DEV =
# "Flux.2-dev", ARCH_FLUX_2_KLEIN_4B = "Flux.2-klein-4b" (no base/distilled variant in it), "/lora" for LoRAs.

@pytest.mark.parametrize(("arch", "base", "family"), [
    ("lumina-2/lora", "Lumina", "Lumina"), ("lumina-2", "Lumina", "Lumina"), ("lumina/lora", "Lumina", "Lumina"),
    ("anima-unknown/lora", "Anima", "Anima"), ("anima-preview", "Anima", "Anima"),
    ("Flux.2-dev/lora", "Flux.2 D", "Flux2"),
    # near misses: Klein names no variant (Klein 4B and 4B-base are separate groups); Flux.1 strings stay Flux.1
    ("Flux.2-klein-4b/lora", "Unknown", "unknown"), ("flux-1-dev/lora", "Flux.1 D", "Flux1"),
    ("Flux.1-dev/lora", "Flux.1 Kontext", "Flux1Kontext"),
])
def test_lumina_anima_flux2_trainer_strings(arch: str, base: str, family: str) -> None:
    got = base_models.from_trainer_metadata({"modelspec.architecture": arch})
    assert (got, base_models.family(got)) == (base, family)


def test_flux2_trainer_string_with_the_tensors(tmp_path: Path, kit: Any) -> None:
    flux2 = {**_lora("diffusion_model.double_blocks.0.img_attn.proj", 6144, 6144),
             **_lora("diffusion_model.single_blocks.0.linear2", 24576, 6144)}
    det = _detect(tmp_path, kit, "lora", flux2)
    out = merge([trainer_facts({"modelspec.architecture": "Flux.2-dev/lora"})], det, kind="lora", title="t")
    assert (out["family"], out["base_model"], out["architecture"], out["problems"]) == \
        ("Flux2", "Flux.2 D", "unknown", ())
