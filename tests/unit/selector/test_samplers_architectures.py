from __future__ import annotations

import pytest

from intelligent_pipeline.selector import architectures as A
from intelligent_pipeline.selector.samplers import COMFY_SAMPLERS, COMFY_SCHEDULERS, normalize_sampler


@pytest.mark.parametrize("name,expected", [
    ("DPM++ 2M Karras", ("dpmpp_2m", "karras")),
    ("Euler a", ("euler_ancestral", "normal")),
    ("DPM++ SDE Karras", ("dpmpp_sde", "karras")),
    ("DPM++ 2M SDE", ("dpmpp_2m_sde", "normal")),
    ("DPM++ 2M SDE Karras", ("dpmpp_2m_sde", "karras")),
    ("DPM++ 3M SDE Exponential", ("dpmpp_3m_sde", "exponential")),
    ("UniPC", ("uni_pc", "normal")),
    ("DDIM", ("ddim", "ddim_uniform")),
    ("LMS", ("lms", "normal")),
    ("Heun", ("heun", "normal")),
    ("DPM2 a", ("dpm_2_ancestral", "normal")),
    ("Euler", ("euler", "normal")),
    ("LCM", ("lcm", "sgm_uniform")),
    ("dpm++ 2m  karras", ("dpmpp_2m", "karras")),
    ("euler", ("euler", None)),
    ("dpmpp_2m", ("dpmpp_2m", None)),
    ("dpmpp_2m_karras", ("dpmpp_2m", "karras")),
])
def test_a1111_and_comfy_names(name, expected):
    assert normalize_sampler(name) == expected


def test_results_are_valid_for_the_live_lists():
    s, sch = normalize_sampler("DPM++ 2M SDE Heun Karras", ["euler", "dpmpp_2m_sde"], ["normal", "karras"])
    assert (s, sch) == ("dpmpp_2m_sde", "karras")
    s, sch = normalize_sampler("DPM++ 2M Karras", list(COMFY_SAMPLERS), ["normal", "simple"])
    assert s == "dpmpp_2m" and sch == "normal"
    assert normalize_sampler("res_2s", ["res_2s", "euler"]) == ("res_2s", None)  # a custom sampler


@pytest.mark.parametrize("bad", ["nonsense", "", "   ", "karras"])
def test_nonsense_raises(bad):
    with pytest.raises(ValueError):
        normalize_sampler(bad)


def test_unavailable_sampler_raises():
    with pytest.raises(ValueError):
        normalize_sampler("UniPC", ["euler"])


@pytest.mark.parametrize("arch,base,key", [
    ("sd1", "SD 1.5", "sd1"), ("sdxl", "Pony", "pony"), ("sdxl", "Illustrious", "illustrious"),
    ("sdxl", "NoobAI", "noobai"), ("sdxl", "SDXL 1.0", "sdxl"), ("sdxl", "SDXL Lightning", "sdxl_fast"),
    ("flux", "Flux.1 D", "flux"), ("flux", "Flux.1 S", "flux_schnell"), ("sd3", "SD 3.5 Large", "sd3"),
    ("auraflow", "Pony V7", "auraflow"), ("unknown", "Unknown", "unknown"), ("unknown", "SD 1.5", "sd1"),
])
def test_spec_for(arch, base, key):
    assert A.spec_for(arch, base).key == key


def test_every_spec_uses_comfy_names_and_sane_values():
    for spec in A.SPECS.values():
        assert spec.sampler_name in COMFY_SAMPLERS and spec.scheduler in COMFY_SCHEDULERS
        assert spec.min_steps <= spec.steps <= spec.max_steps
        for w, h in spec.sizes.values():
            assert w % 64 == 0 and h % 64 == 0


def test_family_defaults():
    flux = A.SPECS["flux"]
    assert (flux.cfg, flux.guidance) == (1.0, 3.5) and set(flux.text_encoders) == {"clip_l", "t5xxl"}
    assert set(A.SPECS["sd3"].text_encoders) | set(A.SPECS["sd3"].optional_text_encoders) == {"clip_l", "clip_g", "t5xxl"}
    assert A.SPECS["sd1"].native == 512 and A.SPECS["sdxl"].native == 1024
    assert A.SPECS["sd1"].clip_skip == 1 and A.SPECS["pony"].clip_skip == 2 and A.SPECS["illustrious"].clip_skip == 2
    assert "score_6" in A.SPECS["pony"].default_negative and "score_9" in A.SPECS["pony"].positive_prefix
    assert A.SPECS["sdxl"].vae_architecture == "sdxl" and A.SPECS["sd2"].vae_architecture == "sd1"


def test_quality_presets_steps_and_sizes():
    sd1 = A.SPECS["sd1"]
    assert [A.steps_for(sd1, q) for q in ("fast", "balanced", "high", "ultra")] == [12, 25, 35, 50]
    assert A.steps_for(A.SPECS["sdxl_fast"], "fast") >= A.SPECS["sdxl_fast"].min_steps
    assert A.size_for(sd1, "square", "fast") == (512, 512)  # SD1 never below its native size
    assert A.size_for(A.SPECS["sdxl"], "square", "fast") == (896, 896)
    assert A.size_for(A.SPECS["sdxl"], "portrait", "ultra") == (1024, 1536)


def test_memory_need_grows_with_quality_and_family():
    sd1, sdxl, flux = A.SPECS["sd1"], A.SPECS["sdxl"], A.SPECS["flux"]
    assert A.quality_memory_need_gb(sd1, "balanced") < A.quality_memory_need_gb(sdxl, "balanced") \
        < A.quality_memory_need_gb(flux, "balanced")
    assert A.quality_memory_need_gb(sdxl, "fast") < A.quality_memory_need_gb(sdxl, "ultra")
    assert A.memory_need_gb(flux, 1024, 1024, model_gb=11.9) < A.memory_need_gb(flux, 1024, 1024)
