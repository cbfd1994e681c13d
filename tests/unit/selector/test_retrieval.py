"""Candidate retrieval (selector/retrieval.py): a plan over a library scores the LoRAs its prompt's
words find in the index store, never every record, and decides as it would over all of them."""
from __future__ import annotations

import random

import pytest

from intelligent_pipeline.metadata.records import ModelRecord
from intelligent_pipeline.selector import planner, retrieval
from intelligent_pipeline.selector.analysis import analyze_keywords
from intelligent_pipeline.selector.scoring import LoraContext, build_query

from .conftest import StoreLibrary, build_library, rec

PROMPTS = (
    "anime girl with pink hair, cel shading",
    "a RAW photo portrait of an old fisherman, 85mm",
    "oil painting of a harbour at dusk, visible brush strokes",
    "pixel art of a small castle",
    "a cat sleeping on a windowsill",
    "score_9, score_8_up, a pony character in a forest",
    "flux, a neon sign in the rain",
    "watercolor landscape with mountains",
    "a lighthouse",
)


def _query(prompt: str):
    analysis = analyze_keywords(prompt, "", None)
    return build_query(analysis, prompt)


def _picks(plan: dict) -> tuple[str, list[str]]:
    return plan["checkpoint"]["name"], [lo["name"] for lo in plan["loras"]]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_a_plan_over_a_library_decides_as_over_all_its_records(prompt: str) -> None:
    records = build_library()
    library = StoreLibrary(records)
    over_index = planner.build_plan({"prompt": prompt}, library)
    over_records = planner.build_plan({"prompt": prompt}, records)
    assert _picks(over_index) == _picks(over_records)
    assert [lo["strength_model"] for lo in over_index["loras"]] == [lo["strength_model"] for lo in over_records["loras"]]
    assert over_index["analysis"]["retrieval"] == "words"
    assert all(lo["found_by"] == ["words"] for lo in over_index["loras"])
    assert library.searches > 0
    # the LoRAs are read whole once per generation (how many load on each family); a plan then
    # reads none of them
    library.full_reads.clear()
    again = planner.build_plan({"prompt": prompt + ", high detail"}, library)
    assert "lora" not in library.full_reads and None not in library.full_reads
    assert again["checkpoint"]["name"] == over_index["checkpoint"]["name"] or again["analysis"] != over_index["analysis"]


COMMON = ("anime", "girl", "portrait", "style", "detailed", "soft", "light", "colorful", "forest", "city",
          "night", "rain", "flower", "dress", "smile", "window", "cafe", "summer", "winter", "beach", "sky",
          "cloud", "street", "river", "garden", "castle", "knight", "sword", "armor", "dragon", "cat", "dog",
          "school", "uniform", "hat", "glasses", "book", "tea", "moon", "star")


def _crowd(n: int, rng: random.Random) -> list[ModelRecord]:
    """LoRAs that each hold several of the prompt's common words (none of its rare one) in their
    titles and tags."""
    return [rec(f"crowd/c{i:04d}.safetensors", "lora", architecture="sd1", base_model="SD 1.5",
                title=" ".join(rng.sample(COMMON[:16], 4)).title(), tags=tuple(rng.sample(COMMON, 4)),
                downloads=rng.randint(100, 90_000)) for i in range(n)]


def test_a_lora_about_one_rare_word_is_found_among_many_holding_common_ones() -> None:
    rng = random.Random(3)
    target = rec("rare/harbour.safetensors", "lora", architecture="sd1", base_model="SD 1.5",
                 title="Harbour Scenery", tags=("seascape", "coast", "architecture", "building", "lighthouse"),
                 description="Rocks, waves, harbour walls, fishing boats and gulls at the shore. " * 6, downloads=40)
    library = StoreLibrary([*_crowd(1500, rng), target])
    query = _query(" ".join(COMMON[:16]) + ", a lighthouse")
    found = retrieval.retrieve_loras(library, query, "sd1")
    names = {r.name for r in found.records}
    assert target.name in names
    assert found.method == "words"
    # only the best by all words and by each word alone, not the 1,500 that share words with it
    assert len(names) < 500
    without_each = retrieval.retrieve_loras(library, query, "sd1", each=0)
    assert target.name not in {r.name for r in without_each.records}  # what `each` is for


def test_only_loras_sharing_a_word_are_retrieved_and_records_are_resolved_now() -> None:
    a = rec("a/koi.safetensors", "lora", architecture="sd1", base_model="SD 1.5", title="Koi Pond", tags=("koi",))
    b = rec("b/tank.safetensors", "lora", architecture="sd1", base_model="SD 1.5", title="Army Tank", tags=("tank",))
    ckpt = rec("base.safetensors", "checkpoint", architecture="sd1", base_model="SD 1.5", title="Base")
    library = StoreLibrary([a, b, ckpt])
    found = retrieval.retrieve_loras(library, _query("koi fish in a pond"), "sd1")
    assert [r.name for r in found.records] == [a.name]  # never the checkpoint, never the tank
    library._records.pop(("lora", a.name))  # gone from the index since the store was written
    library.generation += 1
    assert retrieval.retrieve_loras(library, _query("koi fish in a pond"), "sd1").records == ()
    # a plain list of records is looked at whole
    plain = retrieval.retrieve_loras([a, b, ckpt], _query("koi fish"), "sd1")
    assert plain.method == "all" and [r.name for r in plain.records] == [a.name, b.name]


def test_a_library_that_cannot_be_searched_is_looked_at_whole() -> None:
    a = rec("a/koi.safetensors", "lora", architecture="sd1", base_model="SD 1.5", title="Koi Pond")
    b = rec("b/tank.safetensors", "lora", architecture="sd1", base_model="SD 1.5", title="Army Tank")
    library = StoreLibrary([a, b])
    library.search_generation = None  # the store could not be opened or written
    found = retrieval.retrieve_loras(library, _query("koi"), "sd1")
    assert found.method == "all" and {r.name for r in found.records} == {a.name, b.name}
    assert library.searches == 0


def test_a_prompts_searches_are_made_once_until_the_library_changes() -> None:
    library = StoreLibrary([rec("a/koi.safetensors", "lora", architecture="sd1", base_model="SD 1.5",
                                title="Koi Pond")])
    query = _query("koi pond at dawn")
    first = retrieval.retrieve_loras(library, query, "sd1")
    made = library.searches
    assert made >= 2 and first.searches == made  # unfiltered and among sd1 LoRAs
    again = retrieval.retrieve_loras(library, query, "sd1")
    assert library.searches == made and again.searches == 0 and again.records == first.records
    late = rec("b/koi2.safetensors", "lora", architecture="sd1", base_model="SD 1.5", title="Koi Fish")
    library.add([late])
    third = retrieval.retrieve_loras(library, query, "sd1")
    assert library.searches > made and late.name in {r.name for r in third.records}
    # what a scan found but has not written yet is not kept once it is written
    library.generation += 1
    library.search_generation = library.generation - 1
    retrieval.retrieve_loras(library, query, "sd1")
    before = library.searches
    library.search_generation = library.generation
    retrieval.retrieve_loras(library, query, "sd1")
    assert library.searches > before


def test_the_compatible_count_follows_the_library() -> None:
    sd1 = [rec(f"sd1/{i}.safetensors", "lora", architecture="sd1", base_model="SD 1.5") for i in range(5)]
    xl = [rec(f"xl/{i}.safetensors", "lora", architecture="sdxl", base_model="SDXL 1.0") for i in range(3)]
    library = StoreLibrary([*sd1, *xl])
    ctx = LoraContext(architecture="sd1", base_model="SD 1.5")
    assert retrieval.compatible_count(library, ctx) == 5
    assert retrieval.compatible_count(library, LoraContext(architecture="sdxl", base_model="SDXL 1.0")) == 3
    reads = len(library.full_reads)
    assert retrieval.compatible_count(library, ctx) == 5
    assert len(library.full_reads) == reads  # counted once per generation
    library.add([rec("sd1/new.safetensors", "lora", architecture="sd1", base_model="SD 1.5")])
    assert retrieval.compatible_count(library, ctx) == 6
    assert retrieval.compatible_count(sd1, ctx) is None  # plain records: the scorer counts them


def test_a_pin_is_found_by_pin_and_the_rest_by_words() -> None:
    records = build_library()
    library = StoreLibrary(records)
    lora = next(r for r in records if r.kind == "lora" and r.architecture == "sd1")
    plan = planner.build_plan({"prompt": f"anime girl with pink hair <lora:{lora.stem}:0.7>"}, library)
    pinned = [lo for lo in plan["loras"] if lo["pinned"]]
    assert pinned and all(lo["found_by"] == ["pin"] for lo in pinned)
    assert all(lo["found_by"] == ["words"] for lo in plan["loras"] if not lo["pinned"])


def test_pins_are_looked_up_among_all_the_loras_of_a_library_once_per_scan() -> None:
    records = build_library()
    library = StoreLibrary(records)
    lora = next(r for r in records if r.kind == "lora")
    planner.build_plan({"prompt": f"a photo <lora:{lora.stem}>"}, library)
    library.full_reads.clear()
    plan = planner.build_plan({"prompt": f"a painting <lora:{lora.stem}:0.5>"}, library)
    assert [lo["name"] for lo in plan["loras"] if lo["pinned"]] == [lora.name]
    assert "lora" not in library.full_reads  # the names were kept from the first plan
    missing = planner.build_plan({"prompt": f"a photo <lora:{lora.stem}x>"}, library)
    assert any(f"{lora.stem}x" in w and lora.name in w for w in missing["warnings"])  # close names
