"""Property-based tests of the sidecar readers and text helpers in metadata/ (issue 5): every sidecar
format on arbitrary JSON and bytes, usage tips, descriptions, words, tags, hashes, trainer metadata,
base-model names. The header readers are in test_fuzz_headers.py.

Each returns its documented kind of value and never raises (the readers turn every failure into a
problem string). Derandomised and bounded, so `make test` stays short and repeatable. Files are
written to the session folder of the `fuzz_files` fixture (conftest.py).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intelligent_pipeline.metadata import ModelRecord, base_models
from intelligent_pipeline.metadata.merge import merge
from intelligent_pipeline.metadata.sidecars import (
    SIDECARS,
    Facts,
    clean_tags,
    example_from_meta,
    parse_usage_tips,
    plain_text,
    read_sidecar,
    sha256_hex,
    split_words,
    trainer_facts,
    training_tags,
)

FUZZ = settings(derandomize=True, max_examples=100, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUZZ_FILES = settings(FUZZ, max_examples=80)

RECORD_FIELDS = {f.name for f in dataclasses.fields(ModelRecord)}
SOURCES = [name for name, _ in SIDECARS]

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=5), max_leaves=25)
html_pieces = ["<p>", "<br/>", "&amp;", "<script>", "</script>", "<style >", "</style >", "<!--", "-->", "&#x41;",
               "&#65", "</p", "<b>", "<", ">", "/", "!", "-", "&", "#", ";", "a", " ", "\n", "\t", "1", "x", "=", '"']
html_text = st.lists(st.sampled_from(html_pieces), max_size=60).map("".join)
# shapes known to break naive code: deep nesting (RecursionError), digit runs over Python's int limit
deep_or_long = st.one_of(st.integers(500, 3000).map(lambda n: "[" * n + "]" * n),
                         st.integers(500, 3000).map(lambda n: '{"strength": ' + "[" * n),
                         st.integers(4000, 6000).map(lambda n: "&#" + "1" * n + ";"),
                         st.integers(4000, 6000).map(lambda n: '{"clip_skip": ' + "9" * n + "}"))
texts = st.text(max_size=200) | html_text | deep_or_long


def _check_facts(facts: Any, source: str) -> None:
    """What a reader returns is Facts a record can be built from."""
    if facts is None:
        assert source == "a1111"
        return
    assert isinstance(facts, Facts) and facts.source == source
    assert set(facts.fields) <= RECORD_FIELDS - {"extra", "problems", "sources", "name", "kind", "path"}
    assert all(isinstance(p, str) and len(p.splitlines()) <= 1 for p in facts.problems)
    values = merge([facts], None, kind="lora", title="t")
    ModelRecord(name="t.safetensors", kind="lora", path="/t.safetensors", **values)


# --- sidecars ----------------------------------------------------------------------------------------

KNOWN_KEYS = ["model_name", "base_model", "sha256", "modelDescription", "tags", "trainedWords", "exclude",
              "usage_tips", "preview_url", "sub_type", "model_type", "notes", "favorite", "civitai_deleted", "autov3",
              "civitai", "model", "stats", "nsfw", "nsfwLevel", "description", "baseModel", "files", "images",
              "modelId", "id", "name", "creator", "raw", "type", "UserTitle", "ModelName", "ModelDescription", "Nsfw",
              "Tags", "BaseModel", "Hashes", "TrainedWords", "Stats", "InferenceDefaults", "ModelId", "VersionId",
              "VersionName", "sd version", "activation text", "preferred weight", "negative text", "error", "message",
              "meta", "hashes", "primary", "Size", "steps", "cfgScale", "sampler", "word", "downloadCount"]
keyed = st.recursive(scalars | st.just('{"strength": 0.5, "clip_skip": 2}') | deep_or_long,
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=5), inner, max_size=6),
                     max_leaves=30)
sidecar_objects = st.dictionaries(st.sampled_from(KNOWN_KEYS), keyed, max_size=10)


@FUZZ_FILES
@given(st.sampled_from(SOURCES), json_values | sidecar_objects)
def test_every_sidecar_reader_on_arbitrary_json(fuzz_files, source: str, value: Any) -> None:
    try:
        raw = json.dumps(value).encode()
    except ValueError:
        return
    _check_facts(read_sidecar(source, fuzz_files.write(f"json-{source}", raw)), source)


@FUZZ_FILES
@given(st.sampled_from(SOURCES), st.binary(max_size=300))
def test_every_sidecar_reader_on_arbitrary_bytes(fuzz_files, source: str, data: bytes) -> None:
    _check_facts(read_sidecar(source, fuzz_files.write(f"bytes-{source}", data)), source)


@FUZZ
@given(json_values | deep_or_long | st.text(max_size=100) | st.text(alphabet="[]{}\":,0123456789.e-", max_size=200))
def test_usage_tips_on_anything(value: Any) -> None:
    try:
        tips = parse_usage_tips(value)
    except ValueError:  # the documented error: the reader reports the field and keeps the rest
        return
    assert isinstance(tips, dict) and all(isinstance(v, (int, float)) for v in tips.values())


@FUZZ
@given(st.dictionaries(st.sampled_from(KNOWN_KEYS), keyed, max_size=8))
def test_example_from_meta_on_anything(meta: dict[str, Any]) -> None:
    example = example_from_meta(meta)
    assert example is None or example.steps is not None or example.cfg is not None or example.sampler is not None


# --- text helpers ------------------------------------------------------------------------------------

@FUZZ
@given(texts | json_values, st.integers(1, 300))
def test_plain_text_on_anything(text: Any, limit: int) -> None:
    out = plain_text(text, limit)
    assert isinstance(out, str) and len(out.splitlines()) <= 1
    assert len(out) <= limit + 1
    assert out == out.strip()


@FUZZ
@given(json_values | texts, st.integers(1, 80))
def test_split_words_on_anything(values: Any, limit: int) -> None:
    words = split_words(values, limit)
    assert isinstance(words, tuple) and len(words) <= limit
    assert all(isinstance(w, str) and w and "," not in w and w == " ".join(w.split()) for w in words)
    assert len({w.lower() for w in words}) == len(words)


@FUZZ
@given(st.lists(json_values | texts, max_size=20))
def test_clean_tags_on_anything(values: list[Any]) -> None:
    tags = clean_tags(values)
    assert isinstance(tags, tuple) and len(set(tags)) == len(tags)
    assert all(isinstance(t, str) and t and t == t.lower() and t == " ".join(t.split()) for t in tags)


@FUZZ
@given(st.one_of(json_values, st.text(max_size=80), st.text(alphabet="0123456789abcdefABCDEFx ", min_size=60,
                                                             max_size=70)))
def test_sha256_hex_on_anything(value: Any) -> None:
    out = sha256_hex(value)
    assert out is None or (len(out) == 64 and set(out) <= set("0123456789abcdef"))


trainer_meta = st.dictionaries(
    st.sampled_from(["ss_base_model_version", "modelspec.architecture", "ss_v2", "modelspec.title", "ss_output_name",
                     "modelspec.description", "modelspec.trigger_phrase", "ss_tag_frequency", "modelspec.hash_sha256",
                     "sshs_model_hash", "ss_network_dim", "ss_network_alpha", "ss_sd_model_name"]) | st.text(max_size=8),
    st.text(max_size=60) | json_values.map(lambda v: json.dumps(v)), max_size=8)


@FUZZ
@given(trainer_meta)
def test_trainer_facts_on_anything(meta: dict[str, str]) -> None:
    _check_facts(trainer_facts(meta), "header")


@FUZZ
@given(json_values.map(json.dumps) | st.text(max_size=100) | json_values)
def test_training_tags_on_anything(value: Any) -> None:
    tags = training_tags(value)
    assert isinstance(tags, tuple) and len(tags) <= 15 and all(isinstance(t, str) and t for t in tags)


@FUZZ
@given(st.one_of(st.none(), texts), st.one_of(st.none(), texts))
def test_base_model_normalisation_on_anything(a: str | None, b: str | None) -> None:
    families = {fam for fam, _, _ in base_models._TABLE} | {"unknown"}
    assert base_models.family(a) in families
    assert base_models.architecture(a) in {"sd1", "sd2", "sdxl", "sd3", "flux", "auraflow", "video", "unknown"}
    assert isinstance(base_models.is_known(a), bool)
    assert base_models.compatibility(a, "unknown", b, "sdxl") in ("full", "partial", None)
    assert isinstance(base_models.from_a1111_sd_version(a), str)
    assert isinstance(base_models.from_trainer_metadata({"ss_base_model_version": a or "",
                                                         "modelspec.architecture": b or ""}), str)
