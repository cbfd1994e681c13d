from __future__ import annotations

import pytest

from intelligent_pipeline.selector.analysis import (
    ANALYSIS_JSON_SCHEMA,
    PromptAnalysis,
    analysis_from_llm_json,
    analyze_keywords,
    extract_concepts,
)
from intelligent_pipeline.selector.text import clean_prompt, extract_prompt_loras, make_term, pad, words


def test_words_are_lower_case_unicode_and_split_on_punctuation():
    assert words("Pink_Hair, (masterpiece:1.2) Mädchen's 1girl") == ["pink", "hair", "masterpiece", "1", "2",
                                                                      "mädchens", "1girl"]
    assert words("アニメ、少女") == ["アニメ", "少女"]
    assert words("") == []


def test_weight_syntax_and_lora_tags_are_removed_for_analysis():
    text = clean_prompt("(pink hair:1.3), [blue eyes], <lora:pinky_v2:0.8>, embedding:easyneg BREAK sky")
    assert words(text) == ["pink", "hair", "blue", "eyes", "sky"]


def test_prompt_loras_become_pins():
    cleaned, pins = extract_prompt_loras("a girl <lora:style/pinky_v2:0.7>, smiling <lora:detail>")
    assert cleaned == "a girl, smiling"
    assert pins == [("style/pinky_v2", 0.7), ("detail", None)]


def test_terms_match_plurals_and_spellings_but_respect_word_boundaries():
    toks = words("two old men at the harbor | watercolors")
    s, text = frozenset(toks), pad(toks)
    assert make_term("man").in_text(s, text)
    assert make_term("harbour").in_text(s, text)
    assert make_term("watercolor").in_text(s, text)
    assert not make_term("arbor").in_text(s, text)
    assert make_term("old men").in_text(s, text)
    assert not make_term("men at harbor boat").in_text(s, text)


@pytest.mark.parametrize("prompt,style", [
    ("anime girl with pink hair", "anime"),
    ("photo of an old fisherman at dawn", "realistic"),
    ("oil painting of a harbour", "artistic"),
    ("3d render of a cute robot, octane render", "3d"),
    ("pixel art castle, 16-bit", "pixel art"),
    ("a cartoon dog in the style of looney tunes", "cartoon"),
    ("watercolor painting of a fox", "artistic"),
    ("1girl, solo, masterpiece, looking at viewer", "anime"),
])
def test_style_detection(prompt, style):
    assert analyze_keywords(prompt).style == style


def test_everyday_subject_alone_is_a_low_confidence_realistic_default():
    a = analyze_keywords("an old fisherman at dawn")
    b = analyze_keywords("photo of an old fisherman at dawn")
    assert a.style == "realistic" and a.style_confidence < 0.3
    assert b.style == "realistic" and b.style_confidence > 0.8


def test_explicit_style_wins_over_detection():
    a = analyze_keywords("photo of a cat", style="anime")
    assert a.style == "anime" and a.style_confidence == 1.0
    assert analyze_keywords("photo of a cat", style="Pixel-Art").style == "pixel art"


def test_negative_style_words_count_against():
    assert analyze_keywords("a woman, portrait", "anime, cartoon, 3d").style == "realistic"


@pytest.mark.parametrize("prompt,content", [
    ("anime girl with pink hair", "character"),
    ("portrait of a wizard", "portrait"),
    ("a misty mountain landscape with a lake", "landscape"),
    ("cyberpunk city at night", "scene"),
    ("a red bicycle", "object"),
    ("a fox in the snow", "animal"),
    ("gothic cathedral interior", "architecture"),
    ("abstract fractal pattern", "abstract"),
])
def test_content_type(prompt, content):
    assert analyze_keywords(prompt).content_type == content


def test_concepts_keep_phrases_and_drop_stop_words_and_boilerplate():
    concepts, hints = extract_concepts("masterpiece, best quality, anime girl with pink hair, highly detailed")
    assert concepts == ["anime", "girl", "pink hair"]
    assert hints == ["detail"]
    concepts, _ = extract_concepts("cyberpunk city at night with neon lights")
    assert concepts[:3] == ["cyberpunk", "city", "cyberpunk city"]
    assert "neon lights" in concepts and "night" in concepts
    assert extract_concepts("oil painting of a harbour")[0] == ["oil painting", "harbour"]
    assert extract_concepts("photo of an old man")[0] == ["photo", "old man"]


def test_recommended_tags_expand_synonyms():
    a = analyze_keywords("anime girl with pink hair")
    assert "pink hair" in a.recommended_lora_tags
    assert {"woman", "female", "hair color"} <= set(a.recommended_lora_tags)
    assert "cyberpunk" in analyze_keywords("neon lights over a street").recommended_lora_tags


@pytest.mark.parametrize("prompt,base", [
    ("score_9, score_8_up, a girl", "Pony"),
    ("a cat, flux", "Flux.1 D"),
    ("sdxl, a cat", "SDXL 1.0"),
    ("a pony in a field", ""),
    ("a cat", ""),
])
def test_suggested_base_model_only_when_strongly_implied(prompt, base):
    assert analyze_keywords(prompt).suggested_base_model == base


@pytest.mark.parametrize("prompt,concepts", [
    ("man wearing a denim jacket, flux", ["man", "denim jacket"]),
    ("sdxl, a red fox in the snow", ["red fox", "snow"]),
    ("a castle, SD 1.5", ["castle"]),
])
def test_base_model_words_route_the_family_and_are_not_concepts(prompt, concepts):
    # "flux" picks the family; as a concept it would stack any LoRA titled "... (Flux)".
    got = analyze_keywords(prompt)
    assert set(concepts) <= set(got.key_concepts)
    assert set(got.key_concepts) <= set(concepts) | {w for c in concepts for w in c.split()}
    assert not {"flux", "sdxl", "sd", "sd 1 5"} & set(got.key_concepts)
    assert got.suggested_base_model


def test_steps_and_cfg_by_style_and_to_dict_is_the_contract_shape():
    d = analyze_keywords("anime girl").to_dict()
    for key in ("style", "content_type", "suggested_base_model", "key_concepts", "recommended_lora_tags",
                "suggested_steps", "suggested_cfg", "source", "fallback_reason"):
        assert key in d
    assert isinstance(d["key_concepts"], list) and d["source"] == "keywords" and d["fallback_reason"] is None
    assert PromptAnalysis.from_dict(d) == analyze_keywords("anime girl")


def test_nsfw_prompt_detection():
    assert analyze_keywords("nsfw, nude woman on a beach").nsfw
    assert not analyze_keywords("a woman on a beach").nsfw


def test_llm_answer_is_validated_and_clamped():
    data = {"style": "anime", "content_type": "character", "suggested_base_model": "SDXL 1.0",
            "key_concepts": ["girl", "pink", "hair"], "recommended_lora_tags": "anime, pink hair",
            "suggested_steps": 500, "suggested_cfg": -3}
    a = analysis_from_llm_json(data, "anime girl with pink hair")
    assert a.source == "ollama" and a.style == "anime" and a.suggested_base_model == "SDXL 1.0"
    assert a.suggested_steps == 80 and a.suggested_cfg == 1.0
    assert a.key_concepts[:3] == ("girl", "pink", "hair") and "pink hair" in a.key_concepts
    assert a.fallback_reason is None


def test_llm_bad_fields_fall_back_to_keywords():
    a = analysis_from_llm_json({"style": "vaporwave", "content_type": 3, "key_concepts": None,
                                "suggested_base_model": "SD 9", "suggested_steps": "many"},
                               "photo of an old fisherman")
    assert a.style == "realistic" and a.content_type == "character"
    assert "old fisherman" in a.key_concepts
    assert a.suggested_base_model == ""
    assert a.fallback_reason and "style" in a.fallback_reason
    assert analysis_from_llm_json("not json", "a cat").fallback_reason
    assert analysis_from_llm_json({"style": "anime"}, "a cat", style="realistic").style == "realistic"


def test_schema_is_a_json_schema_object():
    assert ANALYSIS_JSON_SCHEMA["type"] == "object"
    assert set(ANALYSIS_JSON_SCHEMA["required"]) == set(ANALYSIS_JSON_SCHEMA["properties"])
