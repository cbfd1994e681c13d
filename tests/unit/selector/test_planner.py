from __future__ import annotations

import copy
import dataclasses
import json
import random
import string

import pytest

from intelligent_pipeline.selector import planner
from intelligent_pipeline.selector.analysis import analysis_from_llm_json
from intelligent_pipeline.selector.planner import PlanError, PlanRequestError, build_plan, plan_summary
from intelligent_pipeline.selector.samplers import COMFY_SAMPLERS, COMFY_SCHEDULERS

ANIME = "sd15/anythingV5_v5PrtRE.safetensors"
PHOTO = "sd15/rv60.safetensors"
PAINT = "sd15/dp_oil.safetensors"
PONY = "xl/ponyDiffusionV6XL.safetensors"
SDXL = "xl/sd_xl_base_1.0.safetensors"
FLUX = "flux1-dev.safetensors"
PINK = "style/pnkhr_v2.safetensors"
PINK_XL = "xl/pinkhair_xl.safetensors"
PINK_FLUX = "flux/animegirl_pink.safetensors"
FRECKLES = "misc/x8f2.safetensors"
CHIBI_PONY = "xl/chibi_pony.safetensors"
WATERCOLOR = "style/wc_v1.safetensors"
DETAIL = "tools/add_detail.safetensors"
CYBER = "style/cyberpunk.safetensors"

CONTRACT_KEYS = {"version", "analysis", "checkpoint", "text_encoders", "vae", "loras", "settings", "prompt",
                 "memory", "candidates", "warnings"}
SETTINGS_KEYS = {"steps", "cfg", "guidance", "sampler_name", "scheduler", "width", "height", "batch_size",
                 "clip_skip", "seed", "denoise"}


def plan_for(library, prompt, **body):
    return build_plan({"prompt": prompt, **body}, library)


def lora_names(plan):
    return [lo["name"] for lo in plan["loras"]]


# --- picks ----------------------------------------------------------------------------------------

def test_anime_girl_with_pink_hair(library):
    plan = plan_for(library, "anime girl with pink hair")
    assert plan["checkpoint"]["name"] == ANIME
    assert plan["checkpoint"]["family"] == "SD 1.x"  # contracts.md's spelling of CivitAI's group
    assert lora_names(plan) == [PINK]
    pos = plan["prompt"]["positive"].lower()
    assert pos.count("pnkhr") == 1 and pos.count("pink hair") == 1
    lora = plan["loras"][0]
    assert lora["compatibility"] == "full" and lora["strength_model"] == 0.7 == lora["strength_clip"]
    assert set(lora["trigger_words"]) == {"pink hair", "pnkhr"}


def test_photo_of_an_old_fisherman(library):
    plan = plan_for(library, "photo of an old fisherman at dawn")
    assert plan["checkpoint"]["name"] == PHOTO
    assert plan["loras"] == []


def test_oil_painting_of_a_harbour(library):
    plan = plan_for(library, "oil painting of a harbour")
    assert plan["checkpoint"]["name"] == PAINT
    assert WATERCOLOR not in lora_names(plan)  # another painting medium is not stacked on "oil"


def test_watercolor_prompt_stacks_the_watercolor_style(library):
    plan = plan_for(library, "watercolor painting of a fox")
    assert WATERCOLOR in lora_names(plan)
    assert "wtrcolor" in plan["prompt"]["positive"]


def test_unrelated_prompt_stacks_no_lora(library):
    plan = plan_for(library, "a red bicycle")
    assert PINK not in lora_names(plan)
    assert plan["loras"] == []
    assert plan["prompt"]["positive"] == "a red bicycle"


def test_lora_known_only_by_trainer_tags(library):
    plan = plan_for(library, "girl with freckles and silver hair")
    assert FRECKLES in lora_names(plan)
    assert PINK not in lora_names(plan)  # "hair color" is a related tag, not the prompt's concept


def test_other_family_loras_never_stack_on_sd15(library):
    for prompt in ("anime girl with pink hair", "anime girl with pink hair, anime girl",
                   "girl with pink hair, hair color"):
        plan = plan_for(library, prompt, overrides={"checkpoint": ANIME, "max_loras": 10})
        names = lora_names(plan) + [c["name"] for c in plan["candidates"]["loras"]]
        assert PINK_XL not in names and PINK_FLUX not in names and CHIBI_PONY not in names


def test_pony_prompt_picks_pony_and_records_partial_compat(library):
    plan = plan_for(library, "score_9, score_8_up, chibi girl with pink hair")
    assert plan["checkpoint"]["name"] == PONY
    by_name = {lo["name"]: lo for lo in plan["loras"]}
    assert by_name[PINK_XL]["compatibility"] == "partial"
    assert any("partial" in r for r in by_name[PINK_XL]["reasons"])
    assert by_name[CHIBI_PONY]["compatibility"] == "full"
    assert PINK not in by_name
    assert plan["prompt"]["positive"].count("score_9") == 1
    assert plan["settings"]["clip_skip"] == 2
    assert plan["prompt"]["negative"].startswith("score_6")


def test_partial_strength_is_lower(library):
    plan = plan_for(library, "chibi girl", overrides={"checkpoint": SDXL})
    lora = {lo["name"]: lo for lo in plan["loras"]}[CHIBI_PONY]
    assert lora["compatibility"] == "partial" and lora["strength_model"] < 0.8


def test_cyberpunk_lora(library):
    plan = plan_for(library, "cyberpunk city at night with neon lights")
    assert lora_names(plan) == [CYBER]
    assert plan["prompt"]["positive"].lower().count("cyberpunk") == 1  # already in the prompt


def test_excluded_and_nsfw_checkpoints(library):
    plan = plan_for(library, "photo of an old man, portrait photography")
    names = [c["name"] for c in plan["candidates"]["checkpoints"]]
    assert "sd15/excluded_real.safetensors" not in names
    assert plan["checkpoint"]["name"] == PHOTO
    spicy = next(c for c in plan["candidates"]["checkpoints"] if c["name"] == "sd15/spicy_mix.safetensors")
    assert spicy["components"]["nsfw"] < 0


def test_recommended_vae_from_description(library):
    plan = plan_for(library, "photo of a woman")
    assert plan["vae"]["name"] == "vae-ft-mse-840000-ema-pruned.safetensors"
    assert plan["text_encoders"] == []
    plan = plan_for(library, "anime girl")
    assert plan["vae"]["name"] is None and plan["vae"]["reasons"]


def test_checkpoint_without_vae_gets_one(library, make_record):
    lib = [dataclasses.replace(r, has_vae=False) if r.name == ANIME else r for r in library]
    plan = plan_for(lib, "anime girl")
    assert plan["checkpoint"]["name"] == ANIME
    assert plan["vae"]["name"] == "vae-ft-mse-840000-ema-pruned.safetensors"
    # With no SD1 VAE at all, the anime checkpoint cannot decode: another one is picked.
    lib = [r for r in lib if r.kind != "vae"]
    plan = plan_for(lib, "anime girl")
    assert plan["checkpoint"]["name"] != ANIME


def test_flux_diffusion_model_gets_text_encoders_and_vae(library):
    plan = plan_for(library, "a cat on a sofa", quality="high", overrides={"checkpoint": "FLUX.1 [dev]"})
    ck = plan["checkpoint"]
    assert (ck["name"], ck["kind"], ck["architecture"]) == (FLUX, "diffusion_model", "flux")
    tes = {t["role"]: t["name"] for t in plan["text_encoders"]}
    assert tes == {"clip_l": "clip_l.safetensors", "t5xxl": "t5xxl_fp16.safetensors"}
    assert all(t["reasons"] for t in plan["text_encoders"])
    assert plan["vae"]["name"] == "ae.safetensors"
    s = plan["settings"]
    assert s["cfg"] == 1.0 and s["guidance"] == 3.5 and s["sampler_name"] == "euler"
    assert plan["prompt"]["negative"] == ""
    fast = plan_for(library, "a cat", quality="fast", overrides={"checkpoint": FLUX})
    assert {t["name"] for t in fast["text_encoders"]} == {"clip_l.safetensors", "t5xxl_fp8_e4m3fn.safetensors"}


def test_flux_without_text_encoders_is_never_picked(library):
    lib = [r for r in library if r.kind != "text_encoder"]
    plan = plan_for(lib, "flux, a cat")
    assert plan["checkpoint"]["name"] != FLUX
    plan = plan_for(library, "flux, a cat")
    assert plan["checkpoint"]["name"] == FLUX  # the prompt implies Flux and it can run
    with_pin = plan_for(lib, "a cat", overrides={"checkpoint": FLUX})
    assert with_pin["checkpoint"]["name"] == FLUX and with_pin["warnings"]


# --- overrides and pins ---------------------------------------------------------------------------

def test_overrides_win(library):
    plan = plan_for(library, "anime girl with pink hair", negative_prompt="ugly",
                    overrides={"steps": 42, "cfg_scale": 4.5, "sampler": "DPM++ 2M SDE Karras", "width": 640,
                               "height": 960, "seed": 1234, "batch_size": 2, "negative_prompt": "blurry"})
    s = plan["settings"]
    assert (s["steps"], s["cfg"], s["sampler_name"], s["scheduler"]) == (42, 4.5, "dpmpp_2m_sde", "karras")
    assert (s["width"], s["height"], s["seed"], s["batch_size"]) == (640, 960, 1234, 2)
    assert plan["prompt"]["negative"] == "blurry"
    assert any("override" in r for r in plan["settings_reasons"])


def test_sampler_name_and_scheduler_overrides_are_checked_against_live_lists(library):
    plan = build_plan({"prompt": "a cat", "overrides": {"sampler_name": "euler", "scheduler": "beta"}}, library,
                      valid_samplers=list(COMFY_SAMPLERS), valid_schedulers=list(COMFY_SCHEDULERS))
    assert (plan["settings"]["sampler_name"], plan["settings"]["scheduler"]) == ("euler", "beta")
    with pytest.raises(PlanRequestError) as e:
        build_plan({"prompt": "a cat", "overrides": {"sampler_name": "warp"}}, library,
                   valid_samplers=["euler"], valid_schedulers=["normal"])
    assert e.value.field == "overrides.sampler_name"


def test_user_negative_prompt_is_kept(library):
    plan = plan_for(library, "anime girl", negative_prompt="lowres")
    assert plan["prompt"]["negative"] == "lowres"
    plan = plan_for(library, "anime girl")
    assert "lowres" in plan["prompt"]["negative"] and "photo" in plan["prompt"]["negative"]


def test_checkpoint_pins(library):
    for pin in (PAINT, "dp_oil", "DreamPainter", "SD15/DP_OIL.safetensors"):
        plan = plan_for(library, "anime girl with pink hair", overrides={"checkpoint": pin})
        assert plan["checkpoint"]["name"] == PAINT
        assert "pinned" in plan["checkpoint"]["reasons"][0]
    with pytest.raises(PlanError) as e:
        plan_for(library, "a cat", overrides={"checkpoint": "dp_oi"})
    assert "dp_oil" in str(e.value)


def test_lora_pins_excludes_and_limits(library):
    plan = plan_for(library, "anime girl with pink hair",
                    overrides={"loras": [{"name": "Detail Tweaker", "strength": 0.4}, "wc_v1"]})
    by_name = {lo["name"]: lo for lo in plan["loras"]}
    assert by_name[DETAIL]["strength_model"] == 0.4 and by_name[DETAIL]["pinned"]
    assert WATERCOLOR in by_name and PINK in by_name
    assert "wtrcolor" in plan["prompt"]["positive"]

    plan = plan_for(library, "anime girl with pink hair", overrides={"exclude": ["Pink Hair"]})
    assert PINK not in lora_names(plan)
    plan = plan_for(library, "anime girl with pink hair", overrides={"max_loras": 0})
    assert plan["loras"] == [] and "pnkhr" not in plan["prompt"]["positive"]
    plan = plan_for(library, "anime girl with pink hair", overrides={"max_loras": 0, "loras": [DETAIL]})
    assert lora_names(plan) == [DETAIL]  # pins are always used


def test_incompatible_and_unknown_pins_are_warnings(library):
    plan = plan_for(library, "anime girl", overrides={"checkpoint": ANIME, "loras": [PINK_XL, "nope_lora"]})
    assert PINK_XL not in lora_names(plan)
    assert any(PINK_XL in w and "cannot load" in w for w in plan["warnings"])
    assert any("nope_lora" in w for w in plan["warnings"])


def test_prompt_lora_syntax_pins(library):
    plan = plan_for(library, "a red bicycle <lora:add_detail:0.5>")
    assert lora_names(plan) == [DETAIL] and plan["loras"][0]["strength_model"] == 0.5
    assert "<lora" not in plan["prompt"]["positive"]


def test_strength_scale_and_stacking(library):
    plan = planner.start_plan(planner.parse_request({"prompt": "anime girl with pink hair"}))
    plan = planner.choose_checkpoint(plan, library)
    scaled = planner.choose_loras(plan, library, strength_scale=0.5)
    assert scaled["loras"][0]["strength_model"] == 0.35
    pins = {"loras": [DETAIL, WATERCOLOR, CYBER]}
    assert len(planner.choose_loras(plan, library, overrides=pins)["loras"]) == 3  # pins fill max_loras 3
    many = planner.choose_loras(plan, library, overrides=pins, max_loras=5)
    assert len(many["loras"]) == 4
    pink = next(lo for lo in many["loras"] if lo["name"] == PINK)
    assert pink["strength_model"] == 0.56  # 0.7, eased x0.8 with four stacked
    assert any("stacked" in r for r in pink["reasons"])


# --- plan shape -----------------------------------------------------------------------------------

def test_plan_is_json_and_has_every_contract_key(library):
    plan = plan_for(library, "anime girl with pink hair")
    assert CONTRACT_KEYS <= set(plan)
    assert plan["version"] == 1
    assert SETTINGS_KEYS <= set(plan["settings"])
    assert {"name", "kind", "architecture", "base_model", "score", "reasons"} <= set(plan["checkpoint"])
    assert {"name", "reasons"} <= set(plan["vae"])
    for lo in plan["loras"]:
        assert {"name", "strength_model", "strength_clip", "trigger_words", "score", "compatibility", "reasons"} <= set(lo)
    assert {"positive", "negative"} <= set(plan["prompt"])
    assert plan["memory"] == {"level": "NONE", "need_gb": 0, "free_gb": None, "actions": [], "reasons": []}
    for c in plan["candidates"]["checkpoints"]:
        assert {"name", "score", "components"} <= set(c)
    assert json.loads(json.dumps(plan)) == plan
    s = plan["settings"]
    assert s["sampler_name"] in COMFY_SAMPLERS and s["scheduler"] in COMFY_SCHEDULERS
    assert s["width"] % 8 == 0 and s["height"] % 8 == 0


@pytest.mark.parametrize("prompt", ["anime girl with pink hair", "photo of an old fisherman at dawn",
                                    "score_9, chibi girl with pink hair", "flux, a cat", "a red bicycle"])
def test_every_choice_has_reasons(library, prompt):
    plan = plan_for(library, prompt)
    assert plan["checkpoint"]["reasons"] and plan["vae"]["reasons"] and plan["settings_reasons"]
    assert all(t["reasons"] for t in plan["text_encoders"])
    assert all(lo["reasons"] for lo in plan["loras"])
    summary = plan_summary(plan)
    assert plan["checkpoint"]["name"] in summary and "Settings:" in summary


def test_stages_never_change_their_input(library):
    plan = planner.start_plan(planner.parse_request({"prompt": "anime girl with pink hair"}))
    before = copy.deepcopy(plan)
    with_ckpt = planner.choose_checkpoint(plan, library)
    assert plan == before
    before = copy.deepcopy(with_ckpt)
    planner.choose_loras(with_ckpt, library)
    assert with_ckpt == before
    assert plan["checkpoint"] is None and plan["settings"]["width"] > 0


def test_llm_analysis_feeds_the_same_planner(library):
    req = planner.parse_request({"prompt": "anime girl with pink hair"})
    analysis = analysis_from_llm_json({"style": "anime", "content_type": "character", "key_concepts": ["pink", "hair"],
                                       "recommended_lora_tags": ["pink hair"], "suggested_steps": 30,
                                       "suggested_cfg": 7}, req.prompt)
    plan = build_plan(req, library, analysis=analysis)
    assert plan["analysis"]["source"] == "ollama"
    assert plan["checkpoint"]["name"] == ANIME and lora_names(plan) == [PINK]


def test_loaded_model_and_default_plans(library):
    plan = planner.start_plan(planner.parse_request({"prompt": "anime girl with pink hair"}))
    plan = planner.describe_loaded_model(plan, "sd1")
    assert plan["checkpoint"]["architecture"] == "sd1"
    plan = planner.choose_loras(plan, library)
    assert lora_names(plan) == [PINK]
    d = planner.default_plan_for_architecture("sdxl")
    assert (d["settings"]["width"], d["settings"]["height"]) == (1024, 1024)
    json.dumps(d)
    unknown = planner.choose_loras(planner.default_plan_for_architecture("unknown"), library)
    assert unknown["loras"] == [] and unknown["warnings"]


def test_quality_changes_steps_and_size(library):
    fast = plan_for(library, "a red bicycle", quality="fast", overrides={"checkpoint": SDXL})
    ultra = plan_for(library, "a red bicycle", quality="ultra", overrides={"checkpoint": SDXL})
    assert fast["settings"]["steps"] < ultra["settings"]["steps"]
    assert fast["settings"]["width"] < ultra["settings"]["width"]
    assert ultra["estimates"]["need_gb"] > fast["estimates"]["need_gb"]


def test_no_checkpoint_at_all(library):
    with pytest.raises(PlanError):
        plan_for([r for r in library if r.kind == "lora"], "a cat")


# --- names do not matter --------------------------------------------------------------------------

def _scramble(library, seed=7):
    rng = random.Random(seed)
    mapping = {}
    out = []
    for r in library:
        new = "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(12)) + ".safetensors"
        mapping[r.name] = new
        out.append(dataclasses.replace(r, name=new, path=f"/m/{new}"))
    return out, mapping


@pytest.mark.parametrize("prompt", ["anime girl with pink hair", "photo of an old fisherman at dawn",
                                    "oil painting of a harbour", "score_9, score_8_up, chibi girl with pink hair",
                                    "girl with freckles and silver hair", "watercolor painting of a fox",
                                    "cyberpunk city at night with neon lights", "flux, a cat", "a red bicycle"])
def test_renamed_library_gives_the_same_picks(library, prompt):
    scrambled, mapping = _scramble(library)
    a = plan_for(library, prompt)
    b = plan_for(scrambled, prompt)
    assert mapping[a["checkpoint"]["name"]] == b["checkpoint"]["name"]
    assert [mapping[n] for n in lora_names(a)] == lora_names(b)
    assert (a["vae"]["name"] and mapping[a["vae"]["name"]]) == b["vae"]["name"]
    assert [mapping[t["name"]] for t in a["text_encoders"]] == [t["name"] for t in b["text_encoders"]]
    assert a["settings"] == b["settings"]


def test_the_requests_max_loras_beats_the_callers_default(library):
    """The route passes the selection.max_loras setting as a default; a request's own value wins."""
    request = planner.parse_request({"prompt": "anime girl with pink hair", "overrides": {"max_loras": 0}})
    assert planner.build_plan(request, library, max_loras=5)["loras"] == []
    request = planner.parse_request({"prompt": "anime girl with pink hair"})
    assert planner.build_plan(request, library, max_loras=0)["loras"] == []
    assert planner.build_plan(request, library, max_loras=5)["loras"]


def test_a_trigger_word_with_brackets_is_written_escaped_into_the_prompt(library, make_record):
    """`star_(sky)` is a Danbooru tag, not a weight: ComfyUI reads `(sky)` as emphasis unless it is
    written `\\(sky\\)` (comfy/sd1_clip.py, escape_important). The plan lists the word as it is."""
    library = [*library, make_record("style/starsky.safetensors", "lora", architecture="sd1", base_model="SD 1.5",
                                     tags=("star sky", "night sky", "starry sky"), trigger_words=("star_(sky)",))]
    plan = plan_for(library, "anime girl at night under a starry sky")
    assert lora_names(plan) == ["style/starsky.safetensors"]
    assert plan["loras"][0]["trigger_words"] == ["star_(sky)"]
    assert plan["prompt"]["positive"].endswith(", star_\\(sky\\)")
