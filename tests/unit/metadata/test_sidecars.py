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


# --- what the writers' own code writes (issue 6, "Real-world files") ------------------------------------------
# rgthree-comfy at 13b4399c00b5ef5a97b1b6800fc1185874740f5d: py/server/utils_info.py `_merge_metadata` copies every
# `ss_tag_frequency` caption into `trainedWords` as {word, count, metadata: True}; `_merge_civitai_data` adds
# CivitAI's words as {word, civitai: True} (and marks a caption CivitAI also lists); `_update_data` ports the old
# `triggerWords` as {word, user: True}; src_web/comfyui/dialog_info.ts `saveEditableRow` saves `strengthMin` and
# `strengthMax` as text with two decimals (`toFixed(2)`), and `userNote`; `baseModelFile` is `ss_sd_model_name`.

RGTHREE_INFO: dict[str, Any] = {
    "file": "mychar.safetensors", "path": "/m/loras/mychar.safetensors", "modified": 1712345678000.0,
    "name": "My Character - v2", "type": "LORA", "baseModel": "Illustrious", "baseModelFile": "illustriousXL_v01",
    "sha256": SHA.lower(), "strengthMin": "0.50", "strengthMax": "0.90", "userNote": "use with a cape",
    "trainedWords": [
        {"word": "1girl", "count": 120, "metadata": True},
        {"word": "mychar", "count": 118, "metadata": True, "civitai": True},  # a caption CivitAI lists too
        {"word": "solo", "count": 100, "metadata": True},
        {"word": "star_\\(sky\\)", "count": 40, "metadata": True},
        {"word": "red cape", "civitai": True},
        {"word": "my own trigger", "user": True},
    ],
    "raw": {"civitai": {"trainedWords": ["mychar", "red cape"], "model": {"name": "My Character", "tags": ["anime"]}},
            "metadata": {"ss_sd_model_name": "illustriousXL_v01"}},
}


def test_rgthree_training_captions_are_tags_not_trigger_words(tmp_path: Path) -> None:
    facts = read_sidecar("rgthree", _write(tmp_path / "mychar.safetensors.rgthree-info.json", RGTHREE_INFO))
    assert facts is not None and facts.problems == ()
    f = facts.fields
    assert f["trigger_words"] == ("mychar", "red cape", "my own trigger")
    assert f["tags"] == ("anime", "1girl", "solo", "star_(sky)")  # CivitAI's first, then captions by count
    assert f["strength_range"] == (0.5, 0.9)
    assert (f["title"], f["base_model"]) == ("My Character - v2", "Illustrious")
    assert facts.extra["notes"] == "use with a cape" and facts.extra["trained_on"] == "illustriousXL_v01"
    assert (facts.extra["strength_min"], facts.extra["strength_max"]) == (0.5, 0.9)


def test_rgthree_with_only_captions_has_no_trigger_words_and_at_most_the_top_tags(tmp_path: Path) -> None:
    captions = [{"word": f"tag{i}", "count": 1000 - i, "metadata": True} for i in range(64)]
    payload = {"name": "x", "trainedWords": captions, "strengthMax": "1.00"}
    facts = read_sidecar("rgthree", _write(tmp_path / "x.safetensors.rgthree-info.json", payload))
    assert facts is not None
    assert "trigger_words" not in facts.fields  # used to be 64 "trigger words"
    assert facts.fields["tags"] == tuple(f"tag{i}" for i in range(15))
    assert "strength_range" not in facts.fields  # one end of a range is not a range
    assert facts.extra["strength_max"] == 1.0


def test_rgthree_old_trigger_words_list_still_counts(tmp_path: Path) -> None:
    payload = {"triggerWords": ["old word", 3], "trainedWords": [{"word": "plain"}]}
    facts = read_sidecar("rgthree", _write(tmp_path / "o.safetensors.rgthree-info.json", payload))
    assert facts is not None and facts.fields["trigger_words"] == ("plain", "old word")


# ComfyUI-Lora-Manager at 25e72b43cef18c64d6dd235da307e2e51d1c09d2: static/js/components/shared/ModelModal.js saves
# the usage-tips editor's keys `strength_min`, `strength_max`, `strength`, `clip_strength`, `clip_skip` as numbers;
# py/services/lora_service.py `get_recommended_clip_strength_from_lora_data` reads `clipStrength`, and
# static/js/utils/uiHelpers.js `getLoraStrengthsFromUsageTips` reads `clip_strength ?? clipStrength`.

@pytest.mark.parametrize(("tips", "clip"), [
    ('{"strength": 0.8, "clipStrength": 0.6}', 0.6),
    ('{"strength": 0.8, "clip_strength": 0.5, "clipStrength": 0.6}', 0.5),
    ('{"clipStrength": "0.7"}', 0.7),
    ('{"clipStrength": 99}', None),
])
def test_lora_manager_clip_strength_in_either_spelling(tmp_path: Path, tips: str, clip: float | None) -> None:
    assert parse_usage_tips(tips).get("clip_strength") == clip
    facts = read_sidecar("lora-manager", _write(tmp_path / "c.metadata.json", {"model_name": "c", "usage_tips": tips}))
    assert facts is not None and facts.extra.get("clip_strength") == clip


def test_danbooru_tags_with_escaped_brackets_keep_their_brackets(tmp_path: Path) -> None:
    payload = {"model_name": "Sky", "tags": ["star_\\(sky\\)", "Star_(Sky)", "(masterpiece:1.2)", "[blurry]",
                                             "sailor_moon_(character)", "((best quality))", "tag)"],
               "civitai": {"trainedWords": ["star_\\(sky\\), hatsune_miku_\\(append\\)", "star_(sky)"]}}
    facts = read_sidecar("lora-manager", _write(tmp_path / "sky.metadata.json", payload))
    assert facts is not None
    assert facts.fields["tags"] == ("star_(sky)", "masterpiece", "blurry", "sailor_moon_(character)",
                                    "best quality", "tag")
    assert facts.fields["trigger_words"] == ("star_(sky)", "hatsune_miku_(append)")


# sd-civitai-browser-plus at b3d3ecf2684d5cb5ebecfddd4c3c63ac4701f5c5: scripts/civitai_file_manage.py `find_and_save`
# writes A1111's `<stem>.json` keys ("activation text" joined with ", ", "description", "sd version" as SD1, SD2,
# SDXL or Other); scripts/civitai_download.py `info_to_json` adds `modelId` and the downloaded file's upper-case
# `sha256` to the same file, and is all the file holds when the model was not found for find_and_save.

def test_civitai_browser_plus_json(tmp_path: Path) -> None:
    payload = {"activation text": "pixel art, 8-bit", "description": "Crisp pixels", "sd version": "SDXL",
               "modelId": 12345, "sha256": SHA}
    facts = read_sidecar("a1111", _write(tmp_path / "pixel.json", payload))
    assert facts is not None
    assert facts.fields == {"description": "Crisp pixels", "base_model": "SDXL 1.0",
                            "trigger_words": ("pixel art", "8-bit"), "sha256": SHA.lower()}
    assert facts.extra == {"civitai_model_id": 12345}
    only_ids = read_sidecar("a1111", _write(tmp_path / "ids.json", {"modelId": 7, "sha256": SHA, "unpackList": []}))
    assert only_ids is not None and only_ids.fields == {"sha256": SHA.lower()}
    assert only_ids.extra == {"civitai_model_id": 7}
    other = read_sidecar("a1111", _write(tmp_path / "o.json", {"activation text": "x", "sd version": "Other"}))
    assert other is not None and "base_model" not in other.fields
    # still someone else's JSON when it has none of these keys, or only values that are not ids
    assert read_sidecar("a1111", _write(tmp_path / "w.json", {"modelId": "abc", "sha256": "nope"})) is None


# StabilityMatrix at c255230fb76e92ea4c691d3cff25493e08f5de47: StabilityMatrix.Core/Models/ConnectedModelInfo.cs
# writes `AuthorUsername` (the CivitAI creator) beside the fields read above.

def test_stability_matrix_author(tmp_path: Path) -> None:
    payload = {"ModelName": "J", "AuthorUsername": "KandooAI", "Hashes": {"SHA256": SHA}}
    facts = read_sidecar("cm-info", _write(tmp_path / "j.cm-info.json", payload))
    assert facts is not None and facts.extra["creator"] == "KandooAI"


# civitai/civitai at 16a3602b80cabba06ccbedff8518a1b37c0fb4e7: src/pages/api/v1/model-versions/by-hash/[hash].ts finds
# the model file with the hash and answers with its whole version (getModelVersionApiSelect: every file, none marked
# as the match). Civitai Helper (butaixianran/Stable-Diffusion-Webui-Civitai-Helper at
# bcbb4b72a715a97e0c456bca0b3b5536dcd8f005, scripts/ch_lib/model_action_civitai.py) writes that answer as
# `<stem>.civitai.info` for whichever file the user has, which need not be the version's primary file.

def test_civitai_info_takes_the_hash_of_the_models_own_file_not_the_primary(tmp_path: Path) -> None:
    inpaint = read_sidecar("civitai-info", _write(tmp_path / "rv_inpaint.civitai.info", CIVITAI_VERSION))
    assert inpaint is not None and inpaint.fields["sha256"] == "0" * 64
    primary = read_sidecar("civitai-info", _write(tmp_path / "RV.civitai.info", CIVITAI_VERSION))
    assert primary is not None and primary.fields["sha256"] == SHA.lower()  # names match without case
    renamed = read_sidecar("civitai-info", _write(tmp_path / "my_rv.civitai.info", CIVITAI_VERSION))
    assert renamed is not None and "sha256" not in renamed.fields  # two model files: hashing will tell
    one_model = {**CIVITAI_VERSION, "files": [
        {"name": "dataset.zip", "type": "Training Data", "hashes": {"SHA256": "1" * 64}},
        {"name": "style.safetensors", "type": "Model", "hashes": {"SHA256": SHA}}]}
    facts = read_sidecar("civitai-info", _write(tmp_path / "my_style.civitai.info", one_model))
    assert facts is not None and facts.fields["sha256"] == SHA.lower()


def test_lora_manager_pending_hash_and_rgthree_use_the_models_own_file(tmp_path: Path) -> None:
    payload = {"model_name": "x", "sha256": "", "hash_status": "pending", "civitai": CIVITAI_VERSION}
    facts = read_sidecar("lora-manager", _write(tmp_path / "rv_inpaint.metadata.json", payload))
    assert facts is not None and facts.fields["sha256"] == "0" * 64
    rg = read_sidecar("rgthree", _write(tmp_path / "rv_inpaint.safetensors.rgthree-info.json",
                                        {"raw": {"civitai": CIVITAI_VERSION}}))
    assert rg is not None and rg.fields["sha256"] == "0" * 64


# ComfyUI-Lora-Manager at 25e72b43cef18c64d6dd235da307e2e51d1c09d2: py/utils/models.py sets `base_model` from
# `determine_base_model(version_info["baseModel"])` (py/utils/model_utils.py), a substring map: "sdxl" -> "SDXL 1.0",
# "pony" -> "Pony", so "SDXL Lightning" is written "SDXL 1.0" and "Pony V7" (an AuraFlow model) "Pony".

@pytest.mark.parametrize(("lm", "civitai"), [("SDXL 1.0", "SDXL Lightning"), ("Pony", "Pony V7")])
def test_lora_manager_keeps_the_civitai_base_model_its_own_shortened(tmp_path: Path, lm: str, civitai: str) -> None:
    payload = {"model_name": "m", "base_model": lm, "civitai": {"baseModel": civitai, "model": {"name": "m"}}}
    facts = read_sidecar("lora-manager", _write(tmp_path / "m.metadata.json", payload))
    assert facts is not None
    assert facts.fields["base_model"] == lm  # what the tool says, for the merge to weigh
    assert facts.extra["civitai_base_model"] == civitai  # the richer spelling, for the merge to prefer
    same = read_sidecar("lora-manager", _write(tmp_path / "s.metadata.json", {**payload, "base_model": civitai}))
    assert same is not None and "civitai_base_model" not in same.extra


# sd-civitai-browser-plus at b3d3ecf2684d5cb5ebecfddd4c3c63ac4701f5c5: scripts/civitai_file_manage.py `save_model_info`
# writes `gl.json_info` (the CivitAI model object, set by `find_and_save` from GET /api/v1/models) to
# `<stem>.api_info.json` beside the model (`get_save_path_and_name`: the model file's stem) when `save_api_info` is on.

API_INFO: dict[str, Any] = {
    "id": 4384, "name": "DreamShaper", "description": "<p>General purpose</p>", "type": "Checkpoint", "nsfw": False,
    "nsfwLevel": 1, "tags": ["anime", "Photorealistic"], "creator": {"username": "Lykon"},
    "stats": {"downloadCount": 5210, "thumbsUpCount": 640},
    "modelVersions": [
        {"id": 128713, "name": "8", "baseModel": "SD 1.5", "trainedWords": [],
         "files": [{"name": "dreamshaper_8.safetensors", "type": "Model", "primary": True, "hashes": {"SHA256": "1" * 64}}]},
        {"id": 252914, "name": "8 LCM", "baseModel": "SD 1.5 LCM", "trainedWords": ["lcm"],
         "files": [{"name": "dreamshaper_8LCM.safetensors", "type": "Model", "hashes": {"SHA256": SHA}}]},
    ],
}


def test_civitai_browser_plus_api_info_reads_the_version_of_the_models_file(tmp_path: Path) -> None:
    facts = read_sidecar("api-info", _write(tmp_path / "dreamshaper_8LCM.api_info.json", API_INFO))
    assert facts is not None and facts.source == "api-info" and facts.problems == ()
    f = facts.fields
    assert (f["title"], f["base_model"], f["sha256"]) == ("DreamShaper", "SD 1.5 LCM", SHA.lower())
    assert f["tags"] == ("anime", "photorealistic") and f["trigger_words"] == ("lcm",)
    assert (f["downloads"], f["likes"], f["description"]) == (5210, 640, "General purpose")
    assert facts.extra["creator"] == "Lykon" and facts.extra["civitai_model_id"] == 4384
    assert facts.extra["civitai_version_id"] == 252914
    # a renamed file among two versions: the model's facts, not a guessed version's
    renamed = read_sidecar("api-info", _write(tmp_path / "my_dreamshaper.api_info.json", API_INFO))
    assert renamed is not None and renamed.fields["title"] == "DreamShaper"
    assert "base_model" not in renamed.fields and "sha256" not in renamed.fields
    assert read_sidecar("api-info", _write(tmp_path / "bad.api_info.json", [1])).problems  # type: ignore[union-attr]
