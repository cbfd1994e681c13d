"""A LoRA is stacked when the prompt asks for what it is about (the lead of its title, its first
trigger word, its first subject tag), not for a side detail it happens to list. The records are
written as CivitAI authors write them: long trigger lists, tags of everything in the images."""
from __future__ import annotations

import pytest

from intelligent_pipeline.selector import planner

from .conftest import rec

CHECKPOINT = rec("sd15/general.safetensors", "checkpoint", architecture="sd1", base_model="SD 1.5",
                 title="General Mix", tags=("base model", "general"), size=2_100_000_000)


def _lora(stem: str, title: str, tags: tuple[str, ...], triggers: tuple[str, ...] = ()):
    return rec(f"loras/{stem}.safetensors", "lora", architecture="sd1", base_model="SD 1.5",
               title=title, tags=tags, trigger_words=triggers, downloads=5_000)


LIBRARY = [
    CHECKPOINT,
    _lora("breast_table", "Breast on Table", ("breasts on table", "breast rest", "female"),
          ("breasts on table", "breast rest")),
    _lora("pills", "Medicine Pills - Pony", ("concept", "medicine", "pharmaceuticals")),
    _lora("hair_reflect", "Hair with scenery reflection", ("starry sky", "galaxy", "sunset", "snow"),
          ("starry sky", "galaxy", "sunset", "snow", "cherry blossoms")),
    _lora("tractor", "Farm Tractors", ("tractor", "farm", "vehicle"), ("trctr",)),
    _lora("enhancer", "Model-EX Enhancer", ("city", "forest", "cityscape", "landscape")),
    _lora("rdrss", "rdrss", ("red dress", "dress", "clothing")),  # no title of its own
]


def _stacked(prompt: str) -> set[str]:
    plan = planner.build_plan({"prompt": prompt}, LIBRARY)
    return {lo["name"].split("/")[-1].removesuffix(".safetensors") for lo in plan["loras"]}


@pytest.mark.parametrize("prompt,wanted", [
    ("a pile of colorful medicine pills and capsules on a white table", {"pills"}),
    ("a girl resting her breasts on a table", {"breast_table"}),
    ("a red tractor in a golden wheat field at sunset", {"tractor"}),  # not the hair LoRA's 3rd trigger
    ("a lighthouse on a cliff at sunset", set()),
    ("hair reflecting a starry sky and a galaxy", {"hair_reflect"}),
    ("a quiet city park in autumn", {"enhancer"}),  # its first subject tag
    ("a woman in a red dress", {"rdrss"}),  # a file-name title says nothing against its tags
])
def test_stacked_for_what_it_is_about_not_for_a_side_detail(prompt, wanted):
    assert _stacked(prompt) == wanted
