"""The persistent index cache: a restart re-reads nothing that did not change."""
from __future__ import annotations

import builtins
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from intelligent_pipeline.metadata.cache import CACHE_VERSION, load_cache


def _library(lib, kit) -> None:
    p = lib.model("loras", "style/ink.safetensors", kit.SDXL_LORA_KOHYA, {"ss_output_name": "ink"})
    kit.write_json(p.parent / "ink.metadata.json", {
        "model_name": "Ink", "usage_tips": "{\"strength_min\": 0.4, \"strength_max\": 0.9}",
        "civitai": {"baseModel": "Pony", "trainedWords": ["ink style"], "model": {"name": "Ink", "tags": ["Ink"]},
                    "images": [{"meta": {"steps": 20, "cfgScale": 6, "sampler": "Euler a", "Size": "832x1216"}}]}})
    (p.parent / "ink.preview.png").write_bytes(b"png")
    lib.model("checkpoints", "sd15.safetensors", kit.SD1_CHECKPOINT)
    (lib.folder("checkpoints") / "legacy.ckpt").write_bytes(b"not really a pickle")


def test_round_trip_restores_records_and_skips_rereading(lib, kit, monkeypatch) -> None:
    _library(lib, kit)
    first = lib.index(cache_path=lib.cache_path)
    first.scan()
    assert os.path.isfile(lib.cache_path)
    assert [p.name for p in Path(lib.cache_path).parent.iterdir()] == ["index.json"]  # no temp files left

    second = lib.index(cache_path=lib.cache_path)
    assert [r.to_dict() for r in second.records()] == [r.to_dict() for r in first.records()]  # before any scan
    assert second.generation == 1
    opened: list[str] = []
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: opened.append(str(f)) or real_open(f, *a, **k))
    result = second.scan()
    assert result.changed == 0
    assert opened == []  # no header, sidecar or cache file opened
    ink = second.get("lora", "style/ink.safetensors")
    assert ink.strength_range == (0.4, 0.9)
    assert ink.examples[0].width == 832
    assert ink.base_model == "Pony"


def test_cache_is_rewritten_only_when_something_changed(lib, kit, monkeypatch) -> None:
    _library(lib, kit)
    index = lib.index(cache_path=lib.cache_path)
    index.scan()
    writes: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: writes.append(str(b)) or real_replace(a, b))
    index.scan()
    assert writes == []
    lib.model("loras", "new.safetensors", kit.SD1_LORA_KOHYA)
    index.scan()
    assert writes == [lib.cache_path]
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
    assert index.get("checkpoint", "sd15.safetensors").architecture == "sd1"  # the cached view
    assert index.scan().changed == 2
    assert index.get("checkpoint", "sd15.safetensors").architecture == "sdxl"
    assert index.get("checkpoint", "legacy.ckpt") is None


@pytest.mark.parametrize("content", [
    b"{ this is not json",
    b"[]",
    json.dumps({"format": "something-else", "version": CACHE_VERSION, "entries": []}).encode(),
    json.dumps({"format": "intelligent-pipeline/model-index", "version": CACHE_VERSION,
                "entries": [{"record": {"kind": "nonsense", "name": 3}, "fingerprint": []}]}).encode(),
    json.dumps({"format": "intelligent-pipeline/model-index", "version": CACHE_VERSION,
                "entries": [{"record": {"kind": "lora", "name": "x"}, "fingerprint": ["p", 1]}]}).encode(),
])
def test_corrupt_cache_is_ignored_logged_and_replaced(lib, kit, caplog, content: bytes) -> None:
    _library(lib, kit)
    Path(lib.cache_path).parent.mkdir(parents=True)
    Path(lib.cache_path).write_bytes(content)
    with caplog.at_level(logging.WARNING):
        index = lib.index(cache_path=lib.cache_path)
    assert index.records() == []
    assert any("corrupt" in r.getMessage() and lib.cache_path in r.getMessage() for r in caplog.records)
    assert index.scan().total == 3
    assert load_cache(lib.cache_path) is not None  # a good cache replaced the bad one
    assert len(load_cache(lib.cache_path) or {}) == 3


def test_cache_of_another_version_is_rebuilt(lib, kit, caplog) -> None:
    _library(lib, kit)
    lib.index(cache_path=lib.cache_path).scan()
    doc: dict[str, Any] = json.loads(Path(lib.cache_path).read_text(encoding="utf-8"))
    doc["version"] = CACHE_VERSION + 1
    Path(lib.cache_path).write_text(json.dumps(doc), encoding="utf-8")
    index = lib.index(cache_path=lib.cache_path)
    assert index.records() == []
    assert index.scan().changed == 3
    assert load_cache(lib.cache_path) is not None


def test_unwritable_cache_location_does_not_break_scanning(lib, kit, tmp_path: Path, caplog) -> None:
    _library(lib, kit)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    with caplog.at_level(logging.WARNING):
        result = lib.index(cache_path=str(blocker / "index.json")).scan()
    assert result.total == 3
    assert any("cannot write index cache" in r.getMessage() for r in caplog.records)
