"""Each sidecar format, from payloads shaped like the real tools write them (formats.md)."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from intelligent_pipeline.metadata import ExampleParams
from intelligent_pipeline.metadata.sidecars import (
    civitai_version_facts,
    parse_usage_tips,
    plain_text,
    read_sidecar,
    split_words,
    trainer_facts,
    training_tags,
)

SHA = "AF7ED3E1FC3794BB2F7D7B1E3B5F2C0D9E8A7B6C5D4E3F2A1B0C9D8E7F6A5B4C"

CIVITAI_VERSION: dict[str, Any] = {
    "id": 128713,
    "modelId": 4201,
    "name": "v6.0 (B1 VAE)",
    "baseModel": "SD 1.5",
    "description": "<p>Version notes</p>",
    "trainedWords": ["realvis, photo", " analog style ", "", "Photo"],
    "stats": {"downloadCount": 1523456, "thumbsUpCount": 20311, "rating": 4.9},
    "model": {"name": "Realistic Vision", "type": "Checkpoint", "nsfw": False, "poi": False,
              "tags": ["Photorealistic", "Base Model", "photorealistic"],
              "description": "<h2>Realistic&nbsp;Vision</h2><p>Use <b>DPM++ 2M Karras</b>,<br/>25 steps.</p>"},
    "files": [
        {"id": 1, "name": "rv_inpaint.safetensors", "primary": False,
         "hashes": {"SHA256": "0" * 64, "AutoV2": "0000000000"}},
        {"id": 2, "name": "rv.safetensors", "primary": True, "sizeKB": 2082642.3,
         "hashes": {"AutoV1": "E6415C4F", "AutoV2": "AF7ED3E1FC", "SHA256": SHA, "CRC32": "8E3E2B54"}},
    ],
    "images": [
        {"url": "https://image.civitai.com/a.jpeg", "nsfwLevel": 1, "width": 1024, "height": 1536,
         "meta": {"prompt": "RAW photo, a woman", "negativePrompt": "cartoon", "steps": 25, "sampler": "DPM++ 2M Karras",
                  "cfgScale": 7, "seed": 1234, "Size": "512x768", "Clip skip": "2", "Model": "rv"}},
        {"url": "https://image.civitai.com/b.jpeg", "nsfwLevel": 2, "meta": None},
        {"url": "https://image.civitai.com/c.jpeg", "meta": {"steps": "30", "cfgScale": 4.5, "sampler": "Euler a",
                                                             "clipSkip": 1, "Size": "832 x 1216"}},
    ],
}


def _write(path: Path, obj: Any) -> str:
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj), encoding="utf-8")
    return str(path)


def test_civitai_version_payload() -> None:
    facts = civitai_version_facts(CIVITAI_VERSION, "civitai-info")
    f = facts.fields
    assert f["title"] == "Realistic Vision"
    assert f["base_model"] == "SD 1.5"
    assert f["trigger_words"] == ("realvis", "photo", "analog style")  # split, stripped, de-duplicated
    assert f["tags"] == ("photorealistic", "base model")
    assert (f["downloads"], f["likes"]) == (1523456, 20311)
    assert f["sha256"] == SHA.lower()  # the primary file's, lower-cased
    assert f["description"] == "Realistic Vision Use DPM++ 2M Karras, 25 steps."
    assert "nsfw" not in f
    assert f["examples"] == (
        ExampleParams(steps=25, cfg=7.0, sampler="DPM++ 2M Karras", clip_skip=2, width=512, height=768,
                      prompt="RAW photo, a woman", negative_prompt="cartoon"),
        ExampleParams(steps=30, cfg=4.5, sampler="Euler a", clip_skip=1, width=832, height=1216),
    )
    assert facts.extra["civitai_model_id"] == 4201
    assert facts.extra["civitai_version_id"] == 128713
    assert facts.extra["rating"] == 4.9


def test_civitai_nsfw_level_is_the_highest_rating_in_the_mask() -> None:
    payload = {**CIVITAI_VERSION, "model": {**CIVITAI_VERSION["model"], "nsfw": True, "nsfwLevel": 1 | 2 | 4}}
    f = civitai_version_facts(payload, "civitai-info").fields
    assert (f["nsfw"], f["nsfw_level"]) == (True, 4)
    flagged_only = {**CIVITAI_VERSION, "model": {"name": "x", "nsfw": True}}
    assert civitai_version_facts(flagged_only, "civitai-info").fields["nsfw_level"] == 4


def test_description_is_plain_text_and_capped() -> None:
    text = plain_text("<script>alert(1)</script><p>" + "word " * 1000 + "</p>")
    assert "alert" not in text and "<" not in text
    assert len(text) <= 2001 and text.endswith("…")


def test_split_words() -> None:
    assert split_words(["a, b", "B", " ", "c,,d"]) == ("a", "b", "c", "d")
    assert split_words("masterpiece,  best   quality") == ("masterpiece", "best quality")
    assert split_words([{"word": "zelda", "count": 3}, {"word": "Link"}, 5]) == ("zelda", "Link")
    assert split_words(None) == ()


def test_lora_manager_metadata_json(tmp_path: Path) -> None:
    payload = {
        "file_name": "pixel_art_xl", "model_name": "Pixel Art XL", "file_path": "/old/place/pixel_art_xl.safetensors",
        "size": 170543092, "modified": 1712345678.5, "sha256": SHA.lower(), "base_model": "SDXL 1.0",
        "preview_url": "/old/place/pixel_art_xl.preview.png", "preview_nsfw_level": 1, "notes": "my notes",
        "from_civitai": True, "favorite": True, "exclude": True, "tags": ["Pixel Art", "style"],
        "trainedWords": ["pixel art, 8-bit"], "modelDescription": "<p>Crisp <i>pixels</i></p>",
        "usage_tips": "{\"strength_min\":0.3,\"strength_max\":0.8,\"strength\":0.7,\"clip_strength\":0.6,\"clip_skip\":2}",
        "sub_type": "lora", "hash_status": "completed", "autov3": "9A1B2C3D4E5F",
        "civitai": {**CIVITAI_VERSION, "baseModel": "SDXL 1.0", "trainedWords": ["pixelart", "pixel art"],
                    "model": {"name": "Pixel Art XL (CivitAI)", "tags": ["pixel art", "game"]}},
    }
    facts = read_sidecar("lora-manager", _write(tmp_path / "pixel_art_xl.metadata.json", payload))
    assert facts is not None and facts.problems == ()
    f = facts.fields
    assert f["title"] == "Pixel Art XL"  # the user's name beats CivitAI's
    assert f["base_model"] == "SDXL 1.0"
    assert f["excluded"] is True
    assert f["preferred_weight"] == 0.7
    assert f["strength_range"] == (0.3, 0.8)
    assert f["clip_skip"] == 2
    assert f["trigger_words"] == ("pixel art", "8-bit", "pixelart")  # top level first, then civitai's
    assert f["tags"] == ("pixel art", "style", "game")
    assert f["description"] == "Crisp pixels"
    assert f["sha256"] == SHA.lower()
    assert f["examples"][0].steps == 25  # from civitai.images[].meta
    assert facts.extra["preview_url"] == "/old/place/pixel_art_xl.preview.png"
    assert facts.extra["sub_type"] == "lora"
    assert facts.extra["clip_strength"] == 0.6
    assert facts.extra["notes"] == "my notes"


def test_lora_manager_unknown_base_model_does_not_hide_civitai_one(tmp_path: Path) -> None:
    payload = {"model_name": "x", "base_model": "Unknown", "civitai": {"baseModel": "Pony", "model": {"name": "x"}}}
    facts = read_sidecar("lora-manager", _write(tmp_path / "x.metadata.json", payload))
    assert facts is not None and facts.fields["base_model"] == "Pony"


@pytest.mark.parametrize(("value", "expected"), [
    ('{"strength": 0.8}', {"strength": 0.8}),
    ({"strength_min": 1.0, "strength_max": 0.5}, {"strength_min": 1.0, "strength_max": 0.5}),
    ("not json", None),
    ("", {}),
    ('{"strength": "NaN", "clip_skip": 40}', {}),
])
def test_usage_tips(value: Any, expected: dict | None) -> None:
    """None: the string is not tips at all (ValueError, the field reported as unreadable)."""
    if expected is None:
        with pytest.raises(ValueError):
            parse_usage_tips(value)
    else:
        assert parse_usage_tips(value) == expected


def test_civitai_info_empty_object_means_not_on_civitai(tmp_path: Path) -> None:
    facts = read_sidecar("civitai-info", _write(tmp_path / "x.civitai.info", {}))
    assert facts is not None
    assert dict(facts.fields) == {}
    assert facts.extra == {"civitai_not_found": True}
    assert facts.problems == ()


def test_civitai_info_payload(tmp_path: Path) -> None:
    facts = read_sidecar("civitai-info", _write(tmp_path / "x.civitai.info", CIVITAI_VERSION))
    assert facts is not None and facts.source == "civitai-info"
    assert facts.fields["title"] == "Realistic Vision"


def test_a1111_json(tmp_path: Path) -> None:
    payload = {"description": "Detail tweaker", "sd version": "SD1", "activation text": "add_detail, detailed",
               "preferred weight": 0.5, "negative text": "blurry", "notes": "works at 0.5"}
    facts = read_sidecar("a1111", _write(tmp_path / "add_detail.json", payload))
    assert facts is not None
    assert facts.fields == {"description": "Detail tweaker", "base_model": "SD 1.5",
                            "trigger_words": ("add_detail", "detailed"), "preferred_weight": 0.5}
    assert facts.extra == {"negative_text": "blurry", "notes": "works at 0.5"}


def test_a1111_zero_weight_and_unknown_version_are_unset(tmp_path: Path) -> None:
    payload = {"sd version": "Unknown", "preferred weight": 0, "activation text": ""}
    facts = read_sidecar("a1111", _write(tmp_path / "x.json", payload))
    assert facts is not None and dict(facts.fields) == {}


def test_other_json_named_like_the_model_is_not_a1111(tmp_path: Path) -> None:
    assert read_sidecar("a1111", _write(tmp_path / "x.json", {"last_node_id": 9, "nodes": []})) is None
    assert read_sidecar("a1111", _write(tmp_path / "y.json", [1, 2])) is None


def test_rgthree_info(tmp_path: Path) -> None:
    payload = {"file": "detail.safetensors", "path": "/m/loras/detail.safetensors", "modified": 1712345678000,
               "name": "Detail Slider", "type": "LORA", "baseModel": "SDXL 1.0", "sha256": SHA,
               "trainedWords": [{"word": "detailed", "count": 12}, {"word": "intricate, sharp"}],
               "images": [{"url": "u", "width": 832, "height": 1216, "seed": 1, "positive": "a castle",
                           "negative": "blur", "steps": 30, "sampler": "dpmpp_2m", "cfg": 6.5, "model": "x"}],
               "raw": {"civitai": {"trainedWords": ["detail_slider"], "model": {"name": "Detail (civitai)"}}}}
    facts = read_sidecar("rgthree", _write(tmp_path / "detail.safetensors.rgthree-info.json", payload))
    assert facts is not None
    f = facts.fields
    assert (f["title"], f["base_model"], f["sha256"]) == ("Detail Slider", "SDXL 1.0", SHA.lower())
    assert f["trigger_words"] == ("detailed", "intricate", "sharp", "detail_slider")
    assert f["examples"] == (ExampleParams(steps=30, cfg=6.5, sampler="dpmpp_2m", width=832, height=1216,
                                           prompt="a castle", negative_prompt="blur"),)


def test_stability_matrix_cm_info(tmp_path: Path) -> None:
    payload = {"ModelId": 4201, "ModelName": "Juggernaut XL", "ModelDescription": "<p>All-round</p>", "Nsfw": False,
               "Tags": ["Photorealistic", "Base Model"], "ModelType": "Checkpoint", "VersionId": 9, "VersionName": "v9",
               "BaseModel": "SDXL 1.0", "Hashes": {"SHA256": SHA, "BLAKE3": "ab"}, "TrainedWords": ["juggernaut"],
               "Stats": {"downloadCount": 900, "favoriteCount": 40, "rating": 4.8},
               "InferenceDefaults": {"Steps": 30, "CfgScale": 4.5, "Width": 832, "Height": 1216}}
    facts = read_sidecar("cm-info", _write(tmp_path / "jugg.cm-info.json", payload))
    assert facts is not None
    f = facts.fields
    assert (f["title"], f["base_model"], f["sha256"]) == ("Juggernaut XL", "SDXL 1.0", SHA.lower())
    assert f["tags"] == ("photorealistic", "base model")
    assert (f["downloads"], f["likes"], f["description"]) == (900, 40, "All-round")
    assert f["examples"] == (ExampleParams(steps=30, cfg=4.5, width=832, height=1216),)
    assert facts.extra["civitai_model_id"] == 4201


def test_pysssss_sha256_file(tmp_path: Path) -> None:
    (tmp_path / "m.sha256").write_text(SHA + "\n")
    facts = read_sidecar("pysssss", str(tmp_path / "m.sha256"))
    assert facts is not None and facts.fields == {"sha256": SHA.lower()}
    (tmp_path / "bad.sha256").write_text("not a hash")
    bad = read_sidecar("pysssss", str(tmp_path / "bad.sha256"))
    assert bad is not None and dict(bad.fields) == {}


def test_broken_json_is_skipped_with_one_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _write(tmp_path / "x.metadata.json", '{"model_name": "x", ')
    with caplog.at_level(logging.WARNING):
        facts = read_sidecar("lora-manager", path)
    assert facts is not None and dict(facts.fields) == {}
    assert facts.problems == ("x.metadata.json: not valid JSON; skipped",)
    assert len([r for r in caplog.records if "x.metadata.json" in r.getMessage()]) == 1


def test_sidecar_with_bom_and_wrong_types(tmp_path: Path) -> None:
    path = tmp_path / "x.metadata.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"model_name": 5, "tags": "notalist", "sha256": "zz",
                                                    "exclude": "yes", "usage_tips": 3}).encode())
    facts = read_sidecar("lora-manager", str(path))
    assert facts is not None and facts.problems == () and dict(facts.fields) == {}


def test_trainer_metadata() -> None:
    meta = {
        "ss_base_model_version": "sdxl_base_v1-0",
        "ss_output_name": "myChar",
        "modelspec.title": "My Character",
        "modelspec.trigger_phrase": "mychar, red hoodie",
        "modelspec.hash_sha256": "0x" + SHA.lower(),
        "ss_network_dim": "32",
        "ss_tag_frequency": json.dumps({"10_mychar": {"mychar": 40, "1girl": 38, "(red hoodie:1.2)": 20, "solo": 38},
                                        "5_reg": {"1girl": 10, "\\(smile\\)": 5}}),
    }
    facts = trainer_facts(meta)
    f = facts.fields
    assert f["base_model"] == "SDXL 1.0"
    assert f["title"] == "My Character"
    assert f["trigger_words"] == ("mychar", "red hoodie")
    assert f["tags"] == ("1girl", "mychar", "solo", "red hoodie", "smile")
    # the tensor-data hash is not the file's SHA256: kept apart, as CivitAI's AutoV3 prefix
    assert "sha256" not in f
    assert facts.extra["tensor_sha256"] == SHA.lower()
    assert facts.extra["autov3"] == SHA.lower()[:12]
    assert facts.extra["network_dim"] == 32


def test_training_tags_top_n_and_garbage() -> None:
    freq = {"d": {f"tag{i}": i for i in range(1, 30)}}
    assert training_tags(json.dumps(freq), top=3) == ("tag29", "tag28", "tag27")
    assert training_tags("{not json") == ()
    assert training_tags(json.dumps([1, 2])) == ()
