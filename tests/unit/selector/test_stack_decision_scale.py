"""Whether a LoRA is stacked does not depend on how many the library holds (the selection issue's
"done when"): with 1, 5, 20, 100 or 300 LoRAs of one concept, each with and without 1,000
unrelated LoRAs, a prompt naming the concept stacks exactly one of them, and a prompt naming
nothing in the library stacks none; the same whether every LoRA is scored or only those an index
store's search retrieves.

The concept LoRAs are written as real authors write them (titles, tags and trigger words that
vary from one to the next); the unrelated ones are about other things entirely, drawn from a
fixed pool of subjects, styles and details so that many share words with each other.
"""
from __future__ import annotations

import random

import pytest

from intelligent_pipeline.metadata.records import ModelRecord
from intelligent_pipeline.selector import planner

from .conftest import StoreLibrary, rec

CHECKPOINT = rec("sd15/base.safetensors", "checkpoint", architecture="sd1", base_model="SD 1.5",
                 title="General Mix", tags=("base model", "general", "photorealistic"), size=2_100_000_000,
                 downloads=10_000, likes=500)

# other things entirely: none of these words is in the prompts below
SUBJECTS = ("samurai", "mecha", "robot", "spaceship", "dragon", "castle", "motorcycle", "owl", "wolf", "knight",
            "witch", "astronaut", "pirate ship", "waterfall", "desert", "volcano", "train station", "library")
STYLES = ("pixel art", "ukiyo-e", "cyberpunk", "steampunk", "low poly", "claymation", "art nouveau",
          "vaporwave", "sketch", "comic book")
DETAILS = ("glowing eyes", "armor", "neon lights", "rain", "snow", "smoke", "lightning", "tattoos", "scars",
           "goggles", "cape", "chains")

CONCEPT_TITLES = ("Red Dress", "Red Dress | Clothing LoRA", "Elegant Red Dress", "red_dress", "Red Evening Dress",
                  "Lady in Red - red dress", "Crimson Red Dress v2", "Red Dress (SD1.5)")


def _concept_loras(n: int, rng: random.Random) -> list[ModelRecord]:
    out = []
    for i in range(n):
        title = rng.choice(CONCEPT_TITLES)
        tags = ("red dress", "clothing", *rng.sample(("dress", "fashion", "red", "outfit", "women"), 2))
        trig = rng.choice((("red dress",), (f"rdrss{i}", "red dress"), ()))
        out.append(rec(f"concept/rd_{i:03d}.safetensors", "lora", architecture="sd1", base_model="SD 1.5",
                       title=title, tags=tags, trigger_words=trig, downloads=rng.randint(50, 50_000),
                       likes=rng.randint(0, 4_000)))
    return out


def _unrelated_loras(n: int, rng: random.Random) -> list[ModelRecord]:
    out = []
    for i in range(n):
        subject, style = rng.choice(SUBJECTS), rng.choice(STYLES)
        details = rng.sample(DETAILS, 2)
        out.append(rec(f"other/o_{i:04d}.safetensors", "lora", architecture="sd1", base_model="SD 1.5",
                       title=f"{style.title()} {subject.title()}", tags=(subject, style, *details),
                       trigger_words=(f"{subject} {style}",), downloads=rng.randint(50, 50_000),
                       likes=rng.randint(0, 4_000)))
    return out


def _stacked(records: list[ModelRecord] | StoreLibrary, prompt: str) -> list[str]:
    plan = planner.build_plan({"prompt": prompt}, records)
    assert plan["checkpoint"]["name"] == CHECKPOINT.name
    return [lo["name"] for lo in plan["loras"]]


@pytest.mark.parametrize("source", ["records", "index"])
@pytest.mark.parametrize("unrelated", [0, 1000])
@pytest.mark.parametrize("n", [1, 5, 20, 100, 300])
def test_one_lora_of_a_concept_whatever_the_library_holds(n: int, unrelated: int, source: str) -> None:
    """`records`: every LoRA scored; `index`: the LoRAs retrieved from an index store by words."""
    rng = random.Random(n * 7 + unrelated)
    everything = [CHECKPOINT, *_concept_loras(n, rng), *_unrelated_loras(unrelated, rng)]
    records = everything if source == "records" else StoreLibrary(everything)
    stacked = _stacked(records, "a woman in a red dress walking through paris at night, photo")
    assert len(stacked) == 1, stacked
    assert stacked[0].startswith("concept/"), stacked
    assert _stacked(records, "a lighthouse on a rocky coast at dusk, photo") == []
