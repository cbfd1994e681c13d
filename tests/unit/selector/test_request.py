from __future__ import annotations

import pytest

from intelligent_pipeline.selector.planner import PlanRequestError, parse_overrides, parse_request


def field_of(body) -> str:
    with pytest.raises(PlanRequestError) as e:
        parse_request(body)
    assert isinstance(e.value, ValueError)
    assert e.value.field in str(e.value)
    return e.value.field


def test_minimal_request_defaults():
    r = parse_request({"prompt": "a cat"})
    assert (r.prompt, r.negative_prompt, r.style, r.quality, dict(r.overrides)) == ("a cat", None, "auto", "balanced", {})


def test_full_request_is_normalised():
    r = parse_request({"prompt": "a cat", "negative_prompt": "", "style": "Pixel Art", "quality": "ULTRA",
                       "overrides": {"steps": 40, "cfg_scale": 6, "sampler": "DPM++ 2M Karras", "width": 768,
                                     "height": 1024, "seed": 0, "batch_size": 2, "negative_prompt": "blur",
                                     "checkpoint": "x.safetensors", "max_loras": 0, "exclude": ["bad"],
                                     "loras": ["a", {"name": "b", "strength": 0.5}], "scheduler": "karras",
                                     "sampler_name": "euler"}})
    assert r.style == "pixel art" and r.quality == "ultra" and r.negative_prompt == ""
    ov = r.overrides
    assert ov["cfg"] == 6.0 and isinstance(ov["cfg"], float) and "cfg_scale" not in ov
    assert [dict(p) for p in ov["loras"]] == [{"name": "a"}, {"name": "b", "strength": 0.5}]
    assert r.to_dict()["overrides"]["loras"][1] == {"name": "b", "strength": 0.5}


@pytest.mark.parametrize("body,field", [
    ({}, "prompt"),
    ({"prompt": ""}, "prompt"),
    ({"prompt": "   "}, "prompt"),
    ({"prompt": 3}, "prompt"),
    ({"prompt": "x", "style": "vaporwave"}, "style"),
    ({"prompt": "x", "style": 1}, "style"),
    ({"prompt": "x", "quality": "max"}, "quality"),
    ({"prompt": "x", "negative_prompt": ["a"]}, "negative_prompt"),
    ({"prompt": "x", "colour": "red"}, "colour"),
    ({"prompt": "x", "overrides": []}, "overrides"),
    ({"prompt": "x", "overrides": {"stepz": 3}}, "overrides.stepz"),
    ({"prompt": "x", "overrides": {"steps": "30"}}, "overrides.steps"),
    ({"prompt": "x", "overrides": {"steps": True}}, "overrides.steps"),
    ({"prompt": "x", "overrides": {"steps": 30.0}}, "overrides.steps"),
    ({"prompt": "x", "overrides": {"steps": 0}}, "overrides.steps"),
    ({"prompt": "x", "overrides": {"steps": 1001}}, "overrides.steps"),
    ({"prompt": "x", "overrides": {"cfg": True}}, "overrides.cfg"),
    ({"prompt": "x", "overrides": {"cfg": 101}}, "overrides.cfg"),
    ({"prompt": "x", "overrides": {"cfg_scale": "7"}}, "overrides.cfg_scale"),
    ({"prompt": "x", "overrides": {"cfg": 7, "cfg_scale": 8}}, "overrides.cfg_scale"),
    ({"prompt": "x", "overrides": {"width": 500}}, "overrides.width"),
    ({"prompt": "x", "overrides": {"height": 8200}}, "overrides.height"),
    ({"prompt": "x", "overrides": {"height": 32}}, "overrides.height"),
    ({"prompt": "x", "overrides": {"seed": -1}}, "overrides.seed"),
    ({"prompt": "x", "overrides": {"seed": False}}, "overrides.seed"),
    ({"prompt": "x", "overrides": {"batch_size": 65}}, "overrides.batch_size"),
    ({"prompt": "x", "overrides": {"max_loras": 11}}, "overrides.max_loras"),
    ({"prompt": "x", "overrides": {"max_loras": True}}, "overrides.max_loras"),
    ({"prompt": "x", "overrides": {"sampler": "warp drive"}}, "overrides.sampler"),
    ({"prompt": "x", "overrides": {"sampler_name": 3}}, "overrides.sampler_name"),
    ({"prompt": "x", "overrides": {"checkpoint": ""}}, "overrides.checkpoint"),
    ({"prompt": "x", "overrides": {"loras": "a"}}, "overrides.loras"),
    ({"prompt": "x", "overrides": {"loras": [3]}}, "overrides.loras[0]"),
    ({"prompt": "x", "overrides": {"loras": [{"strength": 1}]}}, "overrides.loras[0].name"),
    ({"prompt": "x", "overrides": {"loras": [{"name": "a", "weight": 1}]}}, "overrides.loras[0].weight"),
    ({"prompt": "x", "overrides": {"loras": [{"name": "a", "strength": "1"}]}}, "overrides.loras[0].strength"),
    ({"prompt": "x", "overrides": {"exclude": "a"}}, "overrides.exclude"),
    ({"prompt": "x", "overrides": {"exclude": [""]}}, "overrides.exclude[0]"),
    ({"prompt": "x", "overrides": {"negative_prompt": 1}}, "overrides.negative_prompt"),
])
def test_bad_requests_name_the_field(body, field):
    assert field_of(body) == field


def test_not_a_dict():
    assert field_of(["prompt"]) == "body"


def test_nulls_mean_not_set():
    r = parse_request({"prompt": "x", "style": None, "negative_prompt": None, "overrides": {"seed": None}})
    assert r.style == "auto" and dict(r.overrides) == {}


def test_parse_overrides_alone():
    assert parse_overrides({"cfg_scale": 7}) == {"cfg": 7.0}
    assert parse_overrides(None) == {}


@pytest.mark.parametrize("weight", ["nan", "inf", "-inf", "1e308"])
def test_prompt_lora_tags_with_absurd_weights_fall_back_to_the_loras_own(weight):
    import json

    from intelligent_pipeline.selector.text import extract_prompt_loras

    cleaned, pins = extract_prompt_loras(f"anime girl <lora:pink_hair_v2:{weight}>")
    assert pins == [("pink_hair_v2", None)]
    json.dumps(pins, allow_nan=False)
