"""Scoring and compatibility on their own, and on a second library the planner tests never use."""
from __future__ import annotations

import time

import pytest

from intelligent_pipeline.metadata.records import ExampleParams
from intelligent_pipeline.selector import compat
from intelligent_pipeline.selector.analysis import analyze_keywords
from intelligent_pipeline.selector.planner import build_plan
from intelligent_pipeline.selector.scoring import (
    LoraContext,
    build_query,
    profile,
    score_checkpoint,
    score_loras,
    style_affinity,
    warm_profiles,
)

GB = 1_000_000_000


def test_lora_compatibility_rules(make_record):
    sd15 = make_record("a.safetensors", "lora", architecture="sd1", base_model="SD 1.5")
    pony = make_record("b.safetensors", "lora", architecture="sdxl", base_model="Pony")
    xl = make_record("c.safetensors", "lora", architecture="sdxl", base_model="SDXL 1.0")
    flux = make_record("d.safetensors", "lora", architecture="flux", base_model="Flux.1 D")
    unknown = make_record("e.safetensors", "lora")
    assert compat.lora_compatibility(sd15, "sd1", "SD 1.5") == "full"
    assert compat.lora_compatibility(sd15, "sdxl", "SDXL 1.0") is None
    assert compat.lora_compatibility(pony, "sdxl", "SDXL 1.0") == "partial"
    assert compat.lora_compatibility(xl, "sdxl", "Pony") == "partial"
    assert compat.lora_compatibility(xl, "sdxl", "SDXL Lightning") == "full"
    assert compat.lora_compatibility(flux, "flux", "Flux.1 S") == "full"
    assert compat.lora_compatibility(flux, "sdxl", "SDXL 1.0") is None
    assert compat.lora_compatibility(unknown, "sd1", "SD 1.5") is None
    assert compat.lora_compatibility(sd15, "sd1", "Unknown", ckpt_guessed=True) == "partial"


def test_architecture_from_size_only_when_nothing_else_says(make_record):
    ck = make_record("x.ckpt", "checkpoint", size=int(2.1 * GB))
    guess = compat.effective_architecture(ck)
    assert guess.architecture == "sd1" and guess.guessed
    assert compat.effective_architecture(make_record("y.ckpt", "checkpoint", size=int(3 * GB))).architecture == "unknown"
    named = make_record("z.safetensors", "checkpoint", base_model="SDXL 1.0", size=int(2.1 * GB))
    assert compat.effective_architecture(named).architecture == "sdxl"


def test_text_encoder_roles_and_vae_families(make_record):
    te = lambda name, **kw: make_record(name, "text_encoder", **kw)  # noqa: E731
    assert compat.text_encoder_role(te("clip_l.safetensors")) == "clip_l"
    assert compat.text_encoder_role(te("sd3/clip_g.safetensors")) == "clip_g"
    assert compat.text_encoder_role(te("t5xxl_fp8_e4m3fn_scaled.safetensors")) == "t5xxl"
    assert compat.text_encoder_role(te("t5-v1_1-xxl-encoder-Q8_0.gguf")) == "t5xxl"
    assert compat.text_encoder_role(te("mystery.safetensors", extra={"text_encoder_type": "clip_l"})) == "clip_l"
    assert compat.text_encoder_role(te("umt5_xxl.safetensors", extra={"text_encoder_type": "umt5xxl"})) is None
    vae = lambda name, **kw: make_record(name, "vae", **kw)  # noqa: E731
    assert compat.vae_architecture(vae("sdxl_vae.safetensors")) == "sdxl"
    assert compat.vae_architecture(vae("ae.safetensors")) == "flux"
    assert compat.vae_architecture(vae("vae-ft-mse-840000-ema-pruned.ckpt")) == "sd1"
    assert compat.vae_architecture(vae("mine.safetensors", base_model="SD 1.5")) == "sd1"
    assert compat.vae_fits(vae("mine.safetensors", extra={"latent_channels": 16}), "flux")
    assert not compat.vae_fits(vae("mine.safetensors", extra={"latent_channels": 4}), "flux")


def test_style_affinity_reads_tags_title_description_and_base_model(make_record):
    anime = make_record("a.safetensors", "checkpoint", tags=("anime", "manga"), title="Some Mix")
    ill = make_record("b.safetensors", "checkpoint", base_model="Illustrious", title="Base")
    photo = make_record("c.safetensors", "checkpoint", title="Photon",
                        description="Photorealistic portraits, like a RAW photo from a DSLR.")
    assert max(style_affinity(anime), key=style_affinity(anime).get) == "anime"
    assert style_affinity(ill)["anime"] > 0
    assert max(style_affinity(photo), key=style_affinity(photo).get) == "realistic"


def test_checkpoint_score_components_and_reasons(make_record):
    a = analyze_keywords("anime girl")
    q = build_query(a, "anime girl")
    ck = make_record("a.safetensors", "checkpoint", architecture="sd1", base_model="SD 1.5", tags=("anime",),
                     downloads=100_000, likes=5_000, nsfw_level=8)
    s = score_checkpoint(ck, a, q)
    assert s.components["style"] > 20 and s.components["popularity"] > 0 and s.components["nsfw"] < 0
    assert len(s.reasons) >= len(s.components)
    assert any("anime" in r for r in s.reasons)
    assert s.total == pytest.approx(sum(s.components.values()))


def test_phrase_match_beats_generic_and_unrelated_loras_stay_out(make_record):
    a = analyze_keywords("anime girl with pink hair")
    q = build_query(a, "anime girl with pink hair")
    specific = make_record("p.safetensors", "lora", architecture="sd1", base_model="SD 1.5", tags=("pink hair",))
    generic = make_record("g.safetensors", "lora", architecture="sd1", base_model="SD 1.5",
                          tags=("hair", "hairstyle", "pink", "girl", "anime"), downloads=1_000_000, likes=50_000)
    pink_dress = make_record("d.safetensors", "lora", architecture="sd1", base_model="SD 1.5",
                             tags=("pink dress", "dress", "pink"), title="Pink Dress")
    scores, pool = score_loras([generic, specific, pink_dress], a, q, LoraContext("sd1", "SD 1.5"))
    by = {s.record.name: s for s in scores}
    assert pool == 3
    assert by["p.safetensors"].total > by["g.safetensors"].total
    assert by["p.safetensors"].usable
    assert not by["d.safetensors"].usable


def test_description_only_lora(make_record):
    a = analyze_keywords("a knight in golden armor")
    lo = make_record("k.safetensors", "lora", architecture="sd1", base_model="SD 1.5",
                     description="This LoRA makes ornate golden armor for knights and paladins.")
    scores, _ = score_loras([lo], a, build_query(a), LoraContext("sd1", "SD 1.5"))
    assert scores and scores[0].usable


def test_profiles_are_cached_per_record_object(make_record):
    r = make_record("a.safetensors", "lora", tags=("x",))
    assert profile(r) is profile(r)
    assert warm_profiles([r, make_record("b.safetensors", "lora")]) == 2


# --- a second, differently shaped library ----------------------------------------------------------

@pytest.fixture
def xl_library(make_record):
    ck = lambda name, **kw: make_record(name, "checkpoint", size=int(6.9 * GB), has_vae=True, **kw)  # noqa: E731
    lo = lambda name, **kw: make_record(name, "lora", architecture="sdxl", **kw)  # noqa: E731
    return [
        ck("m1.safetensors", architecture="sdxl", base_model="Illustrious", title="WAI-NSFW-illustrious-SDXL",
           tags=("anime", "base model", "illustration", "girls"), nsfw_level=4, downloads=400_000, likes=30_000,
           examples=(ExampleParams(steps=30, cfg=6.0, sampler="Euler a", clip_skip=2),) * 3),
        ck("m2.safetensors", architecture="sdxl", base_model="SDXL 1.0", title="Juggernaut XL",
           tags=("photorealistic", "photography", "cinematic", "base model"), downloads=600_000, likes=25_000),
        ck("m3.safetensors", architecture="sdxl", base_model="SDXL 1.0", title="DynaVision XL",
           tags=("3d", "pixar", "cartoon", "stylized", "3d render"), downloads=80_000, likes=6_000),
        ck("m4.safetensors", architecture="sdxl", base_model="SDXL 1.0", title="PixelWave",
           tags=("pixel art", "retro", "game"), downloads=20_000, likes=1_500),
        ck("m5.safetensors", architecture="sdxl", base_model="SDXL Lightning", title="RealVis Lightning",
           tags=("photorealistic", "lightning", "fast"), downloads=50_000, likes=2_000),
        lo("l1.safetensors", base_model="SDXL 1.0", title="Studio Ghibli Style",
           tags=("anime", "style", "studio ghibli", "landscape"), trigger_words=("ghibli style",)),
        lo("l2.safetensors", base_model="SDXL 1.0", title="Add More Details",
           tags=("detail", "slider", "tool"), strength_range=(0.3, 1.5)),
        lo("l3.safetensors", base_model="Illustrious", title="Cat Ears",
           tags=("cat ears", "animal ears", "kemonomimi"), trigger_words=("cat ears",)),
        lo("l4.safetensors", base_model="SDXL 1.0", title="Film Photography",
           tags=("photography", "film grain", "analog", "kodak"), trigger_words=("analog film photo",)),
        lo("l5.safetensors", base_model="SDXL 1.0", title="Dragons",
           tags=("dragon", "fantasy", "creature", "wings")),
    ]


@pytest.mark.parametrize("prompt,ckpt,loras", [
    ("1girl with cat ears, looking at viewer", "m1.safetensors", ["l3.safetensors"]),
    ("analog film photo of a woman on a street, kodak portra, film grain", "m2.safetensors", ["l4.safetensors"]),
    ("a cute 3d render of a toy robot, pixar style", "m3.safetensors", []),
    ("pixel art of a dragon", "m4.safetensors", ["l5.safetensors"]),
    ("studio ghibli landscape, anime", "m1.safetensors", ["l1.safetensors"]),
    ("a glass of water on a table", "m2.safetensors", []),
])
def test_second_library(xl_library, prompt, ckpt, loras):
    plan = build_plan({"prompt": prompt}, xl_library)
    assert plan["checkpoint"]["name"] == ckpt
    assert [lo["name"] for lo in plan["loras"]] == loras


def test_illustrious_settings_and_partial_lora(xl_library):
    plan = build_plan({"prompt": "1girl with cat ears, studio ghibli"}, xl_library)
    assert plan["checkpoint"]["name"] == "m1.safetensors"
    s = plan["settings"]
    assert (s["sampler_name"], s["scheduler"], s["steps"], s["cfg"], s["clip_skip"]) == \
        ("euler_ancestral", "normal", 30, 6.0, 2)
    comp = {lo["name"]: lo["compatibility"] for lo in plan["loras"]}
    assert comp == {"l3.safetensors": "full", "l1.safetensors": "partial"}
    assert "masterpiece" in plan["prompt"]["positive"]


def test_lightning_settings_are_not_nudged(xl_library):
    plan = build_plan({"prompt": "photo of a dog", "quality": "ultra",
                       "overrides": {"checkpoint": "RealVis Lightning"}}, xl_library)
    s = plan["settings"]
    assert s["steps"] <= 12 and s["cfg"] <= 2.5 and s["sampler_name"] == "euler"


# --- speed -----------------------------------------------------------------------------------------

def test_planning_grows_linearly_with_the_library(make_record):
    """A plan over 40k LoRAs costs about 8x one over 5k (a ratio in one run, not a wall-clock limit:
    bench/run.py prints the absolute figure over a 50k library)."""
    import random

    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(4000)] + ["anime", "girl", "hair", "pink", "style", "woman", "city", "night"]
    bases = [("SD 1.5", "sd1"), ("SDXL 1.0", "sdxl"), ("Pony", "sdxl"), ("Flux.1 D", "flux"), ("Illustrious", "sdxl")]
    checkpoints, loras = [], []
    for i in range(40_000):
        b, arch = bases[i % len(bases)]
        loras.append(make_record(f"l/{i}.safetensors", "lora", architecture=arch, base_model=b,
                                 title=" ".join(rng.sample(vocab, 3)), tags=tuple(rng.sample(vocab, 8)),
                                 trigger_words=(rng.choice(vocab),), description=" ".join(rng.choices(vocab, k=100)),
                                 downloads=rng.randint(0, 10**5)))
    for i in range(200):
        b, arch = bases[i % len(bases)]
        checkpoints.append(make_record(f"c/{i}.safetensors", "checkpoint", architecture=arch, base_model=b,
                                       has_vae=True, title=" ".join(rng.sample(vocab, 3)),
                                       tags=tuple(rng.sample(vocab, 6)), downloads=rng.randint(0, 10**5)))
    prompt = {"prompt": "anime girl with pink hair, city at night"}

    def warm_plan_s(lib):
        build_plan(prompt, lib)  # the first plan builds the records' search profiles
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            plan = build_plan(prompt, lib)
            best = min(best, time.perf_counter() - t0)
        assert plan["checkpoint"]["name"]
        return best

    small = warm_plan_s(checkpoints + loras[:5_000])
    large = warm_plan_s(checkpoints + loras)
    assert large / small < 16, f"8x the LoRAs took {large / small:.1f}x the time ({small:.3f} s -> {large:.3f} s)"


def test_profiles_of_replaced_records_are_freed(make_record):
    import gc

    from intelligent_pipeline.selector import scoring

    r = make_record("gone.safetensors", "lora", tags=("x",))
    profile(r)
    key = id(r)
    assert key in scoring._PROFILES
    del r
    gc.collect()
    assert key not in scoring._PROFILES
