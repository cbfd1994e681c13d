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


# --- issue 5: the prompt cap, arbitrary JSON, linear time ------------------------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import settings as hyp_settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from intelligent_pipeline.selector import names, planner, request  # noqa: E402
from intelligent_pipeline.selector.samplers import normalize_sampler, normalize_scheduler  # noqa: E402


def test_the_prompt_cap_is_one_constant_of_100000_characters():
    assert planner.MAX_PROMPT_CHARS == 100_000


@pytest.mark.parametrize("body,field", [
    ({"prompt": "a" * 100_001}, "prompt"),
    ({"prompt": "a cat", "negative_prompt": "b" * 100_001}, "negative_prompt"),
    ({"prompt": "a cat", "overrides": {"negative_prompt": "c" * 100_001}}, "overrides.negative_prompt"),
])
def test_text_over_the_cap_is_refused_naming_its_field(body, field):
    assert field_of(body) == field


def test_text_at_the_cap_is_accepted():
    r = parse_request({"prompt": "a" * 100_000, "negative_prompt": "b" * 100_000,
                       "overrides": {"negative_prompt": "c" * 100_000}})
    assert len(r.prompt) == 100_000 and len(r.overrides["negative_prompt"]) == 100_000


@pytest.mark.parametrize("overrides,field", [
    ({"cfg": 10 ** 400}, "overrides.cfg"),
    ({"loras": [{"name": "a", "strength": -(10 ** 400)}]}, "overrides.loras[0].strength"),
    ({"cfg": float("nan")}, "overrides.cfg"),
    ({"cfg_scale": float("inf")}, "overrides.cfg_scale"),
])
def test_numbers_json_can_hold_but_a_float_cannot_are_refused(overrides, field):
    assert field_of({"prompt": "x", "overrides": overrides}) == field


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10 ** 300) | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=16)
TOP_KEY = st.sampled_from(["prompt", "negative_prompt", "style", "quality", "overrides", "use_ollama"]) | \
    st.text(max_size=8)
OVERRIDE_KEY = st.sampled_from(list(request._OVERRIDE_KEYS)) | st.text(max_size=8)
LORA_PIN = st.text(max_size=10) | st.dictionaries(st.sampled_from(["name", "strength", "weight"]), JSON, max_size=3)
OVERRIDE_VALUE = JSON | st.lists(LORA_PIN, max_size=3) | st.sampled_from(["DPM++ 2M Karras", "euler", "karras"])
OVERRIDES = st.dictionaries(OVERRIDE_KEY, OVERRIDE_VALUE, max_size=5)
BODY = st.dictionaries(TOP_KEY, JSON | OVERRIDES | st.text(min_size=1, max_size=40), max_size=6) | JSON


@hyp_settings(derandomize=True, max_examples=200, deadline=None)
@given(body=BODY)
def test_parse_request_returns_or_raises_plan_request_error(body):
    try:
        r = parse_request(body)
    except PlanRequestError as e:
        assert isinstance(e.field, str) and str(e).startswith(e.field)
        return
    assert isinstance(r.prompt, str) and r.prompt.strip() and len(r.prompt) <= planner.MAX_PROMPT_CHARS
    assert r.use_ollama in ("auto", "on", "off")


@hyp_settings(derandomize=True, max_examples=200, deadline=None)
@given(raw=OVERRIDES | JSON)
def test_parse_overrides_returns_or_raises_plan_request_error(raw):
    try:
        out = parse_overrides(raw)
    except PlanRequestError as e:
        assert e.field.startswith("overrides") or e.field == "overrides"
        return
    assert set(out) <= set(request._OVERRIDE_KEYS) - {"cfg_scale"}
    parse_overrides(request._plain(out))  # what it returns parses again (a plan carries it on)


@hyp_settings(derandomize=True, max_examples=200, deadline=None)
@given(name=st.text(max_size=40))
def test_name_normalisers_return_or_raise_their_documented_error(name):
    try:
        sampler, scheduler = normalize_sampler(name)
        assert isinstance(sampler, str) and (scheduler is None or isinstance(scheduler, str))
    except ValueError:
        pass
    assert normalize_scheduler(name) is None or isinstance(normalize_scheduler(name), str)
    norm = names._norm(name)
    assert isinstance(norm, str) and names._norm(norm) == norm
    assert names.find([], name) == []


HOSTILE = [":" + "9" * 9, " ", ",", "\n", "<lora:", ":0.5", "(", "<", "a, "]


@pytest.mark.parametrize("unit", HOSTILE)
def test_parse_request_is_linear_on_hostile_text(assert_linear, unit):
    def make(n):  # n characters over four text fields, each under the prompt cap at 128 KB
        text = "a cat " + unit * (n // 4 // len(unit))
        name = "x" + text
        return {"prompt": text, "negative_prompt": text,
                "overrides": {"negative_prompt": text, "loras": [name, {"name": name, "strength": 0.5}],
                              "exclude": [name], "checkpoint": name}}
    assert_linear(parse_request, make, f"parse_request on {unit!r} x n")
