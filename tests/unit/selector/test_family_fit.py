"""Checkpoint choice prefers, among checkpoints that are otherwise close, the family that has the
right LoRAs for the prompt; never a clearly worse checkpoint for it, and never by how many LoRAs
a family holds."""
from __future__ import annotations

from intelligent_pipeline.selector import planner
from intelligent_pipeline.selector.coverage import FAMILY_FIT_MAX

from .conftest import rec

SD15 = rec("sd15/photo.safetensors", "checkpoint", architecture="sd1", base_model="SD 1.5", title="Photo Mix",
           tags=("photorealistic", "realistic", "photography"), size=2_100_000_000, downloads=90_000, likes=3_000)
SDXL = rec("sdxl/photo_xl.safetensors", "checkpoint", architecture="sdxl", base_model="SDXL 1.0",
           title="Photo XL", tags=("photorealistic", "realistic", "photography"), size=6_900_000_000)
SDXL_ANIME = rec("sdxl/anime_xl.safetensors", "checkpoint", architecture="sdxl", base_model="SDXL 1.0",
                 title="Anime XL", tags=("anime", "illustration", "manga"), size=6_900_000_000)


def _pills(i: int, base: str = "SDXL 1.0", arch: str = "sdxl"):
    return rec(f"loras/pills_{i}.safetensors", "lora", architecture=arch, base_model=base,
               title="Medicine Pills", tags=("medicine", "pills", "concept"), downloads=2_000)


def _plan(prompt: str, library):
    return planner.build_plan({"prompt": prompt}, library)


PROMPT = "a pile of medicine pills on a white table, product photography"


def test_the_family_with_the_right_lora_wins_between_close_checkpoints():
    without = _plan(PROMPT, [SD15, SDXL])
    assert without["checkpoint"]["name"] == SD15.name  # more popular, otherwise the same
    plan = _plan(PROMPT, [SD15, SDXL, _pills(0)])
    assert plan["checkpoint"]["name"] == SDXL.name
    assert [lo["name"] for lo in plan["loras"]] == ["loras/pills_0.safetensors"]
    assert any("LoRA for this prompt load on it: Medicine Pills" in r for r in plan["checkpoint"]["reasons"])
    # the same LoRA for SD 1.5 keeps SD 1.5
    assert _plan(PROMPT, [SD15, SDXL, _pills(1, "SD 1.5", "sd1")])["checkpoint"]["name"] == SD15.name


def test_how_many_loras_a_family_holds_does_not_tilt_it():
    one = _plan(PROMPT, [SD15, SDXL, _pills(0)])
    many = _plan(PROMPT, [SD15, SDXL, *(_pills(i) for i in range(60))])
    assert many["checkpoint"]["name"] == one["checkpoint"]["name"] == SDXL.name
    assert many["checkpoint"]["score"] == one["checkpoint"]["score"]


def test_it_never_carries_a_checkpoint_of_the_wrong_style():
    # a photo prompt: the anime checkpoint is far behind, a LoRA for its family does not pull it up
    plan = _plan(PROMPT, [SD15, SDXL_ANIME, _pills(0)])
    assert plan["checkpoint"]["name"] == SD15.name
    anime = next(c for c in plan["candidates"]["checkpoints"] if c["name"] == SDXL_ANIME.name)
    assert anime["components"].get("loras", 0.0) <= FAMILY_FIT_MAX
    assert plan["loras"] == []


def test_a_pinned_checkpoint_is_kept_whatever_the_loras():
    plan = planner.build_plan({"prompt": PROMPT, "overrides": {"checkpoint": SD15.name}}, [SD15, SDXL, _pills(0)])
    assert plan["checkpoint"]["name"] == SD15.name
