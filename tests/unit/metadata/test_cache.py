"""The index persisted in its store: a restart re-reads nothing that did not change; records go
in and out as JSON by following the dataclass fields (metadata/cache.py)."""
from __future__ import annotations

import builtins
import dataclasses
import json
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from intelligent_pipeline.metadata import ExampleParams, ModelRecord
from intelligent_pipeline.metadata.cache import (
    _dataclass_decoder,
    freeze,
    record_from_dict,
    record_from_json,
    record_to_dict,
    record_to_json,
)
from intelligent_pipeline.metadata.store import IndexStore


def _library(lib, kit) -> None:
    p = lib.model("loras", "style/ink.safetensors", kit.SDXL_LORA_KOHYA, {"ss_output_name": "ink"})
    kit.write_json(p.parent / "ink.metadata.json", {
        "model_name": "Ink", "usage_tips": "{\"strength_min\": 0.4, \"strength_max\": 0.9}",
        "civitai": {"baseModel": "Pony", "trainedWords": ["ink style"], "model": {"name": "Ink", "tags": ["Ink"]},
                    "images": [{"meta": {"steps": 20, "cfgScale": 6, "sampler": "Euler a", "Size": "832x1216"}}]}})
    (p.parent / "ink.preview.png").write_bytes(b"png")
    lib.model("checkpoints", "sd15.safetensors", kit.SD1_CHECKPOINT)
    (lib.folder("checkpoints") / "legacy.ckpt").write_bytes(b"not really a pickle")


def _aside(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".corrupt-" in p.name)


def test_round_trip_restores_records_and_skips_rereading(lib, kit, monkeypatch) -> None:
    _library(lib, kit)
    first = lib.index(cache_path=lib.cache_path)
    first.scan()
    assert os.path.isfile(lib.cache_path)
    assert not [p for p in Path(lib.cache_path).parent.iterdir() if p.name.endswith(".tmp")]

    second = lib.index(cache_path=lib.cache_path)
    assert [r.to_dict() for r in second.records()] == [r.to_dict() for r in first.records()]  # before any scan
    assert second.generation == 1
    opened: list[str] = []
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: opened.append(str(f)) or real_open(f, *a, **k))
    result = second.scan()
    assert result.changed == 0
    assert opened == []  # no header or sidecar opened
    ink = second.get("lora", "style/ink.safetensors")
    assert ink.strength_range == (0.4, 0.9)
    assert ink.examples[0].width == 832
    assert ink.base_model == "Pony"


def test_the_store_is_written_only_when_something_changed(lib, kit) -> None:
    _library(lib, kit)
    index = lib.index(cache_path=lib.cache_path)
    index.scan()
    store = index._store
    assert store is not None
    written = store.rows_written
    index.scan()
    assert store.rows_written == written
    lib.model("loras", "new.safetensors", kit.SD1_LORA_KOHYA)
    index.scan()
    assert store.rows_written == written + 1
    reloaded = lib.index(cache_path=lib.cache_path)
    assert reloaded.get("lora", "new.safetensors") is not None


def test_changes_while_stopped_are_picked_up_after_restart(lib, kit) -> None:
    _library(lib, kit)
    lib.index(cache_path=lib.cache_path).scan()
    path = lib.models / "checkpoints" / "sd15.safetensors"
    kit.write_sparse_safetensors(str(path), kit.SDXL_CHECKPOINT)
    kit.bump_mtime(path)
    (lib.models / "checkpoints" / "legacy.ckpt").unlink()
    index = lib.index(cache_path=lib.cache_path)
    assert index.get("checkpoint", "sd15.safetensors").architecture == "sd1"  # the stored view
    assert index.scan().changed == 2
    assert index.get("checkpoint", "sd15.safetensors").architecture == "sdxl"
    assert index.get("checkpoint", "legacy.ckpt") is None
    assert lib.index(cache_path=lib.cache_path).get("checkpoint", "legacy.ckpt") is None


def _foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("write", [
    lambda p: p.write_bytes(b"{ this is not json"),
    lambda p: p.write_bytes(b'{"format": "intelligent-pipeline/model-index", "version": 1, "entries": []}'),
    lambda p: p.write_bytes(b"SQLite format 3\x00" + os.urandom(4000)),
    _foreign,
], ids=["text", "old json cache", "broken sqlite", "foreign sqlite"])
def test_an_unusable_store_is_set_aside_logged_and_replaced(lib, kit, caplog, write) -> None:
    _library(lib, kit)
    path = Path(lib.cache_path)
    path.parent.mkdir(parents=True)
    write(path)
    before = path.read_bytes()
    with caplog.at_level(logging.WARNING):
        index = lib.index(cache_path=lib.cache_path)
    assert index.records() == []
    assert any("moved aside" in r.getMessage() and lib.cache_path in r.getMessage() for r in caplog.records)
    moved = _aside(path.parent)
    assert len([m for m in moved if not m.endswith(("-wal", "-shm"))]) == 1
    assert (path.parent / moved[0]).read_bytes() == before
    assert index.scan().total == 3
    assert len(lib.index(cache_path=lib.cache_path).records()) == 3  # a good store replaced the bad one


def test_unwritable_store_location_does_not_break_scanning(lib, kit, tmp_path: Path, caplog) -> None:
    _library(lib, kit)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    with caplog.at_level(logging.WARNING):
        index = lib.index(cache_path=str(blocker / "index.sqlite3"))
        result = index.scan()
        index.scan()
    assert result.total == 3
    assert len([r for r in caplog.records if "cannot open the index store" in r.getMessage()]) == 1
    assert blocker.read_text() == "a file where a folder should be"
    assert index.search("ink") == []
    generation = index.generation
    blocker.unlink()  # the location becomes usable: the next scan opens the store and fills it
    assert index.scan().changed == 0
    assert index.generation == generation and len(index.records()) == 3
    assert [n for _, n, _ in index.search("ink")] == ["style/ink.safetensors"]
    assert len(lib.index(cache_path=str(blocker / "index.sqlite3")).records()) == 3


# --- the record codec ------------------------------------------------------------------------------


def _full_record() -> ModelRecord:
    return ModelRecord(name="a/b.safetensors", kind="lora", path="/m/a/b.safetensors", size=5, mtime=1.5,
                       architecture="sdxl", base_model="Pony", title="B ✨", description="d", tags=("x", "y"),
                       trigger_words=("w",), preferred_weight=0.7, strength_range=(0.2, 1.0), clip_skip=2,
                       downloads=3, likes=4, nsfw=True, nsfw_level=4,
                       examples=(ExampleParams(steps=20, cfg=6.5, sampler="Euler a", width=832, height=1216),),
                       sha256="ab" * 32, excluded=True, has_vae=False, sources=("lora-manager", "header"),
                       problems=("p",), preview="a/b.png", extra={"k": [1, 2], "n": {"x": None}})


def test_records_round_trip_through_json_field_by_field() -> None:
    rec = _full_record()
    back = record_from_json(record_to_json(rec))
    assert back == rec and back.extra == rec.extra
    for f in dataclasses.fields(ModelRecord):
        assert type(getattr(back, f.name)) is type(getattr(rec, f.name)), f.name
    assert json.loads(record_to_json(rec)) == json.loads(json.dumps(rec.to_dict()))  # what the old cache wrote


def test_decoding_tolerates_added_and_removed_fields_and_refuses_what_is_not_a_record() -> None:
    d: dict[str, Any] = record_to_dict(_full_record())
    d["a_field_from_the_future"] = 1
    del d["likes"]
    back = record_from_dict(d)
    assert back.likes == 0 and back.title == "B ✨"
    for bad in ({"kind": "nonsense", "name": "x"}, {"kind": "lora", "name": 3}, {"kind": "lora"}, [], "x"):
        with pytest.raises((ValueError, TypeError)):
            record_from_dict(bad)  # type: ignore[arg-type]
    with pytest.raises((ValueError, TypeError)):
        record_from_dict({**d, "strength_range": [1, 2, 3]})
    with pytest.raises((ValueError, TypeError)):
        record_from_dict({**d, "examples": [5]})
    with pytest.raises(TypeError):
        record_from_dict({**d, "tags": "not a list"})


def test_decoding_a_dict_leaves_the_callers_dict_as_it_was() -> None:
    d: dict[str, Any] = record_to_dict(_full_record())
    before = json.loads(json.dumps(d))
    back = record_from_dict(d)
    assert d == before and type(d["tags"]) is list and type(d["examples"][0]) is dict  # nothing converted in place
    assert back == _full_record() and type(back.tags) is tuple


@dataclasses.dataclass(frozen=True)
class Inner:
    a: int = 0


@dataclasses.dataclass(frozen=True)
class Outer:
    words: tuple[str, ...] = ()
    pair: tuple[float, float] | None = None
    inners: tuple[Inner, ...] = ()
    one: Inner | None = None
    mapping: dict[str, Any] = dataclasses.field(default_factory=dict)
    ratio: float = 0.0


def test_the_decoder_follows_type_hints_not_a_list_of_fields() -> None:
    decode = _dataclass_decoder(Outer)
    got = decode({"words": ["a", "b"], "pair": [1, 2], "inners": [{"a": 1}, {"a": 2, "zz": 0}], "one": {"a": 3},
                  "mapping": {"k": 1}, "ratio": 1, "unknown": 5})
    assert got == Outer(("a", "b"), (1.0, 2.0), (Inner(1), Inner(2)), Inner(3), {"k": 1}, 1.0)
    assert isinstance(got.ratio, float) and isinstance(got.pair[0], float)
    assert decode({"words": None, "pair": None, "one": None}) == Outer()


def test_freeze_turns_json_arrays_back_into_fingerprint_tuples() -> None:
    fp = ("/p", 1, 2, (("lora-manager", "x.metadata.json", 3),), None)
    assert freeze(json.loads(json.dumps(fp))) == fp


def test_a_store_row_for_another_key_is_not_trusted(tmp_path: Path, caplog) -> None:
    store = IndexStore(str(tmp_path / "s.sqlite3"))
    store.open()
    rec = _full_record()
    store.apply([(("/m/a/b.safetensors", 5, 1, ""), rec)], [])
    store._writer().execute("UPDATE models SET name = 'other.safetensors'")
    with caplog.at_level(logging.WARNING):
        assert store.load() == {}
    assert any("1 row(s) could not be read" in r.getMessage() for r in caplog.records)
