"""A character LoRA is stacked only when the prompt names its character, not when it names only
the series she is from or attributes she shares. Titles are written as CivitAI authors write
them: the name first, the series in brackets or after a dash."""
from __future__ import annotations

import pytest

from intelligent_pipeline.selector import planner
from intelligent_pipeline.selector.scoring import title_head

from .conftest import rec

CHECKPOINT = rec("sd15/anime.safetensors", "checkpoint", architecture="sd1", base_model="SD 1.5",
                 title="Anime Mix", tags=("base model", "anime"), size=2_100_000_000)


def _character(stem: str, title: str, tags: tuple[str, ...], triggers: tuple[str, ...] = ()):
    return rec(f"characters/{stem}.safetensors", "lora", architecture="sd1", base_model="SD 1.5",
               title=title, tags=("character", "anime", *tags), trigger_words=triggers, downloads=5_000)


LIBRARY = [
    CHECKPOINT,
    _character("saren", "Saren (Princess Connect! Re:Dive)", ("princess connect", "girls"), ("saren",)),
    _character("karyl", "Karyl (Princess Connect! Re:Dive) Character LoRA", ("princess connect",)),
    _character("rem", "Rem - Re:Zero", ("re zero", "maid"), ("rem_rz, blue hair",)),
    _character("tamamo", "Tamamo Cross (umamusume)", ("umamusume", "horse girl")),
    _character("powerpuff", "[MM_LORA] Powerpuff Girls", ("powerpuff girls", "cartoon")),
]


def _stacked(prompt: str) -> set[str]:
    plan = planner.build_plan({"prompt": prompt}, LIBRARY)
    return {lo["name"].split("/")[-1].removesuffix(".safetensors") for lo in plan["loras"]}


@pytest.mark.parametrize("title,head", [
    ("Saren (Princess Connect! Re:Dive)", "Saren"),
    ("Ram - Re:Zero", "Ram"),
    ("[MM_LORA] Powerpuff_Girls", "Powerpuff_Girls"),
    ("almond eye (umamusume) [アーモンドアイ] <ウマ娘>", "almond eye"),
    ("Misora ミソラ（魅空）Princess Connect!Re:Dive", "Misora ミソラ"),
    ("Tifa Lockhart from Final Fantasy VII", "Tifa Lockhart"),
    ("(LoRA)", "(LoRA)"),
    ("", ""),
])
def test_the_lead_of_a_title_is_what_comes_before_the_series(title, head):
    assert title_head(title).strip() == head


def test_a_hostile_title_is_read_only_at_its_start():
    # only the first 300 characters are looked at, a few leading labels are skipped
    assert title_head("(" * 100_000) == "(" * 300
    assert title_head("[x]" * 100_000 + "Name (Series)") == ("[x]" * 100)[12:]
    assert title_head("[a] [b] Name (Series)") == "Name "


@pytest.mark.parametrize("prompt,wanted", [
    ("Misora from Princess Connect! Re:Dive, smiling, fantasy town", set()),  # the series, not her
    ("Saren from Princess Connect! Re:Dive, smiling", {"saren"}),
    ("Karyl (Princess Connect), cat ears, smug", {"karyl"}),
    ("Ram (Re:Zero), maid outfit, pink hair", set()),  # Rem's LoRA shares the series and the maid
    ("rem, re zero, maid outfit, blue hair", {"rem"}),
    ("Almond Eye from Umamusume Pretty Derby, racing", set()),
    ("Tamamo Cross, umamusume, racing", {"tamamo"}),
    ("the Powerpuff Girls flying over a city", {"powerpuff"}),
])
def test_a_character_lora_needs_its_character_named(prompt, wanted):
    assert _stacked(prompt) == wanted
