"""Each field of a sidecar fails on its own (issue 5, defect 7), and every bad sidecar costs one
escaped log line (defect 10)."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

import pytest

from intelligent_pipeline.metadata import HeaderError, read_header, sidecars
from intelligent_pipeline.metadata.sidecars import (
    a1111_facts,
    civitai_info_facts,
    cm_info_facts,
    lora_manager_facts,
    parse_usage_tips,
    read_sidecar,
    rgthree_facts,
    trainer_facts,
)
from intelligent_pipeline.metadata.values import clean_tag


def _write(path: Path, obj: Any) -> str:
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("value", [
    "[" * 100_000 + "]" * 100_000,  # nested too deep: RecursionError in the standard library's parser
    '{"strength": ' + "[" * 5000 + "]" * 5000 + "}",
    '{"strength": 1e999, "clip_skip": -1e999}',  # OverflowError-sized numbers
    '{"clip_skip": ' + "9" * 5000 + "}",  # over the int digit limit
    '{"strength": 123456789012345678901234567890}',
    "[1, 2]", '"text"', "null", "true", "12",  # JSON that is not an object
    '{"strength": {"a": 1}, "strength_min": [0.5], "clip_skip": "two"}',
    "{" * 3 + "not json",
    "\x00\udcff\U0001f600",
    "x" * 1_000_000,
    {"strength": float("nan"), "clip_strength": float("inf")},
    ["strength", 1],
    12,
])
def test_pathological_usage_tips_give_no_tips(value: Any) -> None:
    try:
        tips = parse_usage_tips(value)
    except ValueError:  # the documented error: the reader reports the field and keeps the rest
        return
    assert isinstance(tips, dict)
    assert all(isinstance(v, (int, float)) for v in tips.values())


def test_pathological_usage_tips_keep_the_rest_of_the_sidecar(tmp_path: Path) -> None:
    payload = {"model_name": "Keep me", "tags": ["kept"], "trainedWords": ["word"], "base_model": "SDXL 1.0",
               "usage_tips": "[" * 100_000 + "]" * 100_000, "sha256": "a" * 64}
    facts = read_sidecar("lora-manager", _write(tmp_path / "k.metadata.json", payload))
    assert facts is not None
    assert facts.fields["title"] == "Keep me"
    assert facts.fields["tags"] == ("kept",)
    assert facts.fields["trigger_words"] == ("word",)
    assert facts.fields["base_model"] == "SDXL 1.0"
    assert facts.fields["sha256"] == "a" * 64
    assert "preferred_weight" not in facts.fields
    assert facts.problems == ("metadata.json: usage_tips could not be read (ValueError); dropped",)


class Boom(Exception):
    pass


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise Boom("field extractor failed")


# (reader, payload, the helper made to fail, fields that must be gone, fields that must stay)
READERS: list[tuple[Callable[[Any], Any], dict[str, Any], str, set[str], set[str]]] = [
    (lora_manager_facts, {"model_name": "T", "modelDescription": "<p>d</p>", "tags": ["a"], "trainedWords": ["w"]},
     "plain_text", {"description"}, {"title", "tags", "trigger_words"}),
    (lora_manager_facts, {"model_name": "T", "tags": ["a"], "trainedWords": ["w"], "usage_tips": '{"strength": 1}'},
     "clean_tags", {"tags"}, {"title", "trigger_words", "preferred_weight"}),
    (lora_manager_facts, {"model_name": "T", "tags": ["a"], "usage_tips": '{"strength": 1}'},
     "parse_usage_tips", {"preferred_weight"}, {"title", "tags"}),
    (civitai_info_facts, {"baseModel": "Pony", "trainedWords": ["w"], "model": {"name": "T", "tags": ["a"]},
                          "images": [{"meta": {"steps": 20}}]},
     "split_words", {"trigger_words"}, {"title", "base_model", "tags", "examples"}),
    (civitai_info_facts, {"baseModel": "Pony", "model": {"name": "T"}, "images": [{"meta": {"steps": 20}}]},
     "example_from_meta", {"examples"}, {"title", "base_model"}),
    (rgthree_facts, {"name": "T", "baseModel": "Pony", "sha256": "b" * 64, "trainedWords": [{"word": "w"}]},
     "sha256_hex", {"sha256"}, {"title", "base_model", "trigger_words"}),
    (cm_info_facts, {"ModelName": "T", "ModelDescription": "<p>d</p>", "Tags": ["a"], "BaseModel": "Pony"},
     "plain_text", {"description"}, {"title", "tags", "base_model"}),
    (a1111_facts, {"description": "d", "activation text": "w", "sd version": "SDXL", "preferred weight": 0.5},
     "split_words", {"trigger_words"}, {"description", "base_model", "preferred_weight"}),
]


@pytest.mark.parametrize(("reader", "payload", "helper", "gone", "kept"), READERS)
def test_a_field_that_raises_drops_only_that_field(monkeypatch, reader, payload, helper, gone, kept) -> None:
    whole = reader(payload)
    assert set(whole.fields) >= gone | kept and whole.problems == ()
    monkeypatch.setattr(sidecars, helper, _boom)
    facts = reader(payload)
    assert set(facts.fields) & gone == set()
    assert {k: facts.fields[k] for k in kept} == {k: whole.fields[k] for k in kept}
    assert len(facts.problems) >= 1 and all("Boom" in p and "\n" not in p for p in facts.problems)


def test_trainer_metadata_fields_fail_on_their_own(monkeypatch) -> None:
    meta = {"ss_base_model_version": "sdxl_base_v1-0", "ss_output_name": "me", "ss_network_dim": "16",
            "ss_tag_frequency": json.dumps({"d": {"tag": 3}}), "modelspec.trigger_phrase": "w"}
    monkeypatch.setattr(sidecars, "training_tags", _boom)
    facts = trainer_facts(meta)
    assert "tags" not in facts.fields
    assert (facts.fields["base_model"], facts.fields["title"], facts.fields["trigger_words"]) == ("SDXL 1.0", "me", ("w",))
    assert facts.extra["network_dim"] == 16
    assert any("Boom" in p for p in facts.problems)


def test_a_reader_that_fails_outright_costs_only_that_sidecar(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setitem(sidecars._JSON_READERS, "cm-info", _boom)
    path = _write(tmp_path / "x.cm-info.json", {"ModelName": "x"})
    with caplog.at_level(logging.DEBUG):
        facts = read_sidecar("cm-info", path)
    assert facts is not None and dict(facts.fields) == {} and "Boom" in facts.problems[0]
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(logged) == 1 and logged[0].exc_info is None


@pytest.mark.parametrize(("source", "suffix"), [("lora-manager", ".metadata.json"), ("civitai-info", ".civitai.info"),
                                                ("rgthree", ".safetensors.rgthree-info.json"),
                                                ("cm-info", ".cm-info.json")])
@pytest.mark.parametrize("text", ["[1, 2]", "null", '"a string"', "3"])
def test_json_that_is_not_an_object_is_one_warning_and_a_problem(tmp_path: Path, caplog, source: str, suffix: str,
                                                                  text: str) -> None:
    path = _write(tmp_path / f"m{suffix}", text)
    with caplog.at_level(logging.DEBUG):
        facts = read_sidecar(source, path)
    assert facts is not None and dict(facts.fields) == {}
    assert len(facts.problems) == 1 and "not a JSON object" in facts.problems[0]
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(logged) == 1 and f"m{suffix}" in logged[0].getMessage()


def test_a1111_json_that_is_someone_elses_file_is_not_a_problem(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.DEBUG):
        assert read_sidecar("a1111", _write(tmp_path / "m.json", "[1]")) is None
        assert read_sidecar("a1111", _write(tmp_path / "n.json", {"nodes": []})) is None
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.skipif(os.name == "nt", reason="newlines in file names need a POSIX file system")
@pytest.mark.parametrize("content", ['{"model_name": ', "[1]", "x" * 100])
def test_sidecar_log_lines_escape_the_name(tmp_path: Path, caplog, content: str) -> None:
    path = _write(tmp_path / "m\nERROR forged\r\x1b[31m.metadata.json", content)
    with caplog.at_level(logging.DEBUG):
        facts = read_sidecar("lora-manager", path)
    assert facts is not None and facts.problems
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(logged) == 1
    message = logged[0].getMessage()
    assert "\n" not in message and "\r" not in message and "\x1b" not in message
    assert "\\nERROR forged" in message
    assert all("\n" not in p for p in facts.problems)


def test_pysssss_sha256_file_that_is_not_regular_is_a_problem(tmp_path: Path, caplog) -> None:
    (tmp_path / "m.sha256").mkdir()
    with caplog.at_level(logging.DEBUG):
        facts = read_sidecar("pysssss", str(tmp_path / "m.sha256"))
    assert facts is not None and dict(facts.fields) == {} and "folder" in facts.problems[0]
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_pysssss_reads_only_the_start(tmp_path: Path) -> None:
    digest = "c" * 64
    (tmp_path / "m.sha256").write_text(digest + "  m.safetensors\n" + "x" * 10_000_000)
    facts = read_sidecar("pysssss", str(tmp_path / "m.sha256"))
    assert facts is not None and facts.fields == {"sha256": digest}


@pytest.mark.timeout(20)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no os.mkfifo on this platform")
def test_safetensors_reader_refuses_a_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "f.safetensors")
    with pytest.raises(HeaderError, match="FIFO"):
        read_header(tmp_path / "f.safetensors")


def test_safetensors_reader_refuses_a_folder(tmp_path: Path) -> None:
    (tmp_path / "d.safetensors").mkdir()
    with pytest.raises(HeaderError, match="folder"):
        read_header(tmp_path / "d.safetensors")


@pytest.mark.parametrize(("raw", "tag"), [
    ("star_\\(sky\\)", "star_(sky)"), ("star_(sky)", "star_(sky)"), ("(star_\\(sky\\):1.2)", "star_(sky)"),
    ("\\(smile\\)", "smile"), ("((masterpiece))", "masterpiece"), ("[[tag]", "tag"), ("(a])", "a"),
    ("tag: -0.5", "tag"), ("a (b) c", "a (b) c"), ("(", ""), ("()", ""), ("{ spaced }", "spaced"),
])
def test_clean_tag_takes_off_only_the_brackets_around_the_tag(raw: str, tag: str) -> None:
    assert clean_tag(raw) == tag


@pytest.mark.parametrize("unit", ["(", "\\(", "(a)"])
def test_clean_tag_is_linear_on_bracket_runs(assert_linear, unit: str) -> None:
    assert_linear(lambda text: clean_tag(text), lambda n: "x" + unit * max(1, n // len(unit)) + "y",
                  f"clean_tag {unit!r} run")


def test_a_caption_too_long_to_be_a_tag_still_loses_the_brackets_at_its_ends() -> None:
    caption = "(" + "a girl standing in a field of flowers, " * 20 + "star_(sky))"
    assert len(caption) > 512
    cleaned = clean_tag(caption)
    assert cleaned.startswith("a girl standing") and cleaned.count("field of flowers") == 20
    assert clean_tag("(" + "x" * 600 + ":1.2)") == "x" * 600
