"""ModelIndex: the walk, the merge of sources into records, incremental rescans, queries."""
from __future__ import annotations

import builtins
import json
import logging
import os
import pickle
import struct
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from intelligent_pipeline.metadata import FOLDER_KINDS, ModelIndex, StaticModelPaths


class FakeClock:
    def __init__(self, step: float = 0.0):
        self.t = 1000.0
        self.step = step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


class OpenSpy:
    """Records every path opened through builtins.open or os.open (how the readers open files)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.paths: list[str] = []
        real_open = builtins.open
        real_os_open = os.open

        def spy(file: Any, *args: Any, **kwargs: Any) -> Any:
            self.paths.append(os.fspath(file) if not isinstance(file, int) else f"fd:{file}")
            return real_open(file, *args, **kwargs)

        def os_spy(path: Any, *args: Any, **kwargs: Any) -> int:
            self.paths.append(os.fspath(path))
            return real_os_open(path, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", spy)
        monkeypatch.setattr(os, "open", os_spy)


def test_scan_indexes_every_kind_with_names_relative_to_the_root(lib, kit) -> None:
    lib.model("checkpoints", "sd15/realistic.safetensors", kit.SD1_CHECKPOINT)
    lib.model("checkpoints", "xl.safetensors", kit.SDXL_CHECKPOINT)
    lib.model("loras", "style/pixel.safetensors", kit.SDXL_LORA_KOHYA)
    lib.model("unet", "flux1-dev.safetensors", kit.FLUX_DEV_DIFFUSION_MODEL)  # the legacy second root
    (lib.folder("loras") / "notes.txt").write_text("not a model")
    (lib.folder("loras") / "partial.safetensors.part").write_bytes(b"x")
    index = lib.index()
    result = index.scan()
    assert result.total == 4
    assert result.changed == 4
    assert result.by_type == {"checkpoint": 2, "lora": 1, "vae": 0, "diffusion_model": 1, "text_encoder": 0,
                              "embedding": 0}
    assert index.counts() == result.by_type
    assert set(result.to_dict()) == {"total", "by_type", "changed", "seconds"}
    assert [(r.kind, r.name) for r in index.records()] == [
        ("checkpoint", "sd15/realistic.safetensors"), ("checkpoint", "xl.safetensors"),
        ("diffusion_model", "flux1-dev.safetensors"), ("lora", "style/pixel.safetensors")]
    rec = index.get("checkpoint", "sd15/realistic.safetensors")
    assert rec is not None
    assert (rec.architecture, rec.base_model, rec.has_vae, rec.title) == ("sd1", "SD 1.5", True, "realistic")
    assert rec.path == str(lib.models / "checkpoints" / "sd15" / "realistic.safetensors")
    assert index.get("checkpoint", "sd15\\realistic.safetensors") == rec  # Windows-style separators
    assert index.get("lora", "sd15/realistic.safetensors") is None
    assert index.get("diffusion_model", "flux1-dev.safetensors").architecture == "flux"


def test_sidecars_are_merged_in_order_of_trust(lib, kit) -> None:
    path = lib.model("loras", "detail.safetensors", kit.SDXL_LORA_KOHYA,
                     {"ss_output_name": "detail_v2", "ss_tag_frequency": json.dumps({"1_x": {"Castle": 3}})})
    folder = path.parent
    kit.write_json(folder / "detail.metadata.json", {
        "model_name": "Detail Tweaker XL", "base_model": "Unknown", "tags": ["Detail"], "trainedWords": ["detailed"],
        "usage_tips": "{\"strength\": 0.6}", "exclude": False})
    kit.write_json(folder / "detail.civitai.info", {
        "baseModel": "SDXL 1.0", "trainedWords": ["intricate"], "model": {"name": "Detail (CivitAI)", "tags": ["tool"]},
        "stats": {"downloadCount": 50}})
    kit.write_json(folder / "detail.json", {"activation text": "sharp", "preferred weight": 1.0, "sd version": "SDXL"})
    (folder / "detail.preview.png").write_bytes(b"png")
    index = lib.index()
    index.scan()
    rec = index.get("lora", "detail.safetensors")
    assert rec.title == "Detail Tweaker XL"  # lora-manager beats civitai-info and the header
    assert rec.base_model == "SDXL 1.0"  # lora-manager's "Unknown" does not override civitai-info
    assert rec.extra["base_model_source"] == "civitai-info"
    assert rec.architecture == "sdxl"
    assert rec.trigger_words == ("detailed", "intricate", "sharp")
    assert rec.tags == ("detail", "tool", "castle")
    assert rec.preferred_weight == 0.6  # lora-manager's usage tips beat a1111's preferred weight
    assert rec.downloads == 50
    assert rec.excluded is False
    assert rec.sources == ("lora-manager", "civitai-info", "a1111", "header")
    assert rec.preview == "detail.preview.png"
    assert rec.problems == ()


def test_preview_lookup_order_and_lora_manager_preview_url(lib, kit, tmp_path: Path) -> None:
    first = lib.model("loras", "sub/a.safetensors", kit.SD1_LORA_KOHYA)
    (first.parent / "a.png").write_bytes(b"1")
    (first.parent / "a.preview.png").write_bytes(b"2")
    second = lib.model("loras", "b.safetensors", kit.SD1_LORA_KOHYA)
    kit.write_json(second.parent / "b.metadata.json", {"preview_url": str(lib.folder("loras") / "previews" / "b.jpg")})
    (lib.folder("loras") / "previews").mkdir()
    (lib.folder("loras") / "previews" / "b.jpg").write_bytes(b"3")
    third = lib.model("loras", "c.safetensors", kit.SD1_LORA_KOHYA)
    (tmp_path / "outside.jpg").write_bytes(b"4")
    kit.write_json(third.parent / "c.metadata.json", {"preview_url": str(tmp_path / "outside.jpg")})
    index = lib.index()
    index.scan()
    assert index.get("lora", "sub/a.safetensors").preview == "sub/a.preview.png"
    assert index.get("lora", "b.safetensors").preview == "previews/b.jpg"
    assert index.get("lora", "c.safetensors").preview is None  # never point outside a model root


def test_broken_sidecar_is_skipped_logged_once_and_the_rest_indexes(lib, kit, caplog) -> None:
    path = lib.model("loras", "x.safetensors", kit.SD1_LORA_KOHYA)
    (path.parent / "x.metadata.json").write_text('{"model_name": "X", "tags": [', encoding="utf-8")
    kit.write_json(path.parent / "x.json", {"activation text": "xword"})
    with caplog.at_level(logging.INFO):
        lib.index().scan()
        index = lib.index()
        index.scan()
    rec = index.get("lora", "x.safetensors")
    assert rec is not None
    assert rec.trigger_words == ("xword",)
    assert rec.architecture == "sd1"
    assert any("x.metadata.json" in p and "not valid JSON" in p for p in rec.problems)
    assert "lora-manager" not in rec.sources
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "x.metadata.json" in r.getMessage()]
    assert len(warnings) == 2  # one per index that read it, no more


@pytest.mark.parametrize(("content", "problem"), [
    (struct.pack("<Q", 10_000) + b'{"a": 1}', "truncated"),
    (struct.pack("<Q", 2**62) + b"{}", "limit"),
    (struct.pack("<Q", 12) + b"not json!!!!", "not valid JSON"),
    (struct.pack("<Q", 9) + b"[1, 2, 3]", "expected an object"),
])
def test_bad_safetensors_are_indexed_with_a_problem(lib, caplog, content: bytes, problem: str) -> None:
    (lib.folder("checkpoints") / "bad.safetensors").write_bytes(content)
    with caplog.at_level(logging.WARNING):
        index = lib.index()
        result = index.scan()
    assert result.total == 1
    rec = index.get("checkpoint", "bad.safetensors")
    assert rec.architecture == "unknown"
    assert len(rec.problems) == 1 and rec.problems[0].startswith("unreadable header") and problem in rec.problems[0]
    assert len([r for r in caplog.records if "bad.safetensors" in r.getMessage()]) == 1


def test_incomplete_download_is_a_problem(lib, kit) -> None:
    path = lib.model("checkpoints", "half.safetensors", kit.SD1_CHECKPOINT)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    index = lib.index()
    index.scan()
    rec = index.get("checkpoint", "half.safetensors")
    assert rec.architecture == "sd1"  # the header is still whole
    assert any(p.startswith("incomplete file") for p in rec.problems)


class _Detonator:
    """Unpickling this creates a folder: proof that a pickle was loaded."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (self.marker,))


def test_pickles_are_indexed_by_name_and_never_opened(lib, tmp_path: Path, monkeypatch, caplog) -> None:
    probe = tmp_path / "probe_marker"
    pickle.loads(pickle.dumps(_Detonator(str(probe))))
    assert probe.is_dir()  # the payload does go off when unpickled
    marker = tmp_path / "loaded_marker"
    ckpt = lib.folder("checkpoints") / "old_model.ckpt"
    ckpt.write_bytes(pickle.dumps(_Detonator(str(marker))))
    for name in ("emb.pt", "weights.pth", "pytorch_model.bin"):
        (lib.folder("embeddings") / name).write_bytes(pickle.dumps(_Detonator(str(marker))))
    kit_json = {"sd version": "SD1", "activation text": "oldstyle"}
    (lib.folder("checkpoints") / "old_model.json").write_text(json.dumps(kit_json), encoding="utf-8")
    spy = OpenSpy(monkeypatch)
    with caplog.at_level(logging.INFO):
        index = lib.index()
        index.scan()
    assert not marker.exists()
    assert not any(p.endswith((".ckpt", ".pt", ".pth", ".bin")) for p in spy.paths)
    rec = index.get("checkpoint", "old_model.ckpt")
    assert rec.problems == ("pickle file: not opened (architecture from sidecars only)",)
    assert (rec.architecture, rec.base_model, rec.trigger_words) == ("sd1", "SD 1.5", ("oldstyle",))
    assert "header" not in rec.sources
    assert index.counts()["embedding"] == 3
    assert len([r for r in caplog.records if "old_model.ckpt" in r.getMessage()]) == 1


def test_sidecar_contradicting_confident_tensors_loses(lib, kit) -> None:
    path = lib.model("loras", "mislabeled.safetensors", kit.SDXL_LORA_KOHYA)
    kit.write_json(path.parent / "mislabeled.metadata.json", {"model_name": "M", "base_model": "SD 1.5"})
    index = lib.index()
    index.scan()
    rec = index.get("lora", "mislabeled.safetensors")
    assert (rec.architecture, rec.base_model) == ("sdxl", "SDXL 1.0")
    assert rec.extra["base_model_source"] == "header"
    assert len(rec.problems) == 1 and "SD 1.5" in rec.problems[0] and "sdxl" in rec.problems[0]
    assert rec.title == "M"  # the sidecar's other facts still count


def test_sidecar_family_within_the_detected_architecture_is_kept(lib, kit) -> None:
    path = lib.model("loras", "pony_style.safetensors", kit.SDXL_LORA_KOHYA)
    kit.write_json(path.parent / "pony_style.civitai.info", {"baseModel": "Pony", "model": {"name": "P"}})
    weak = lib.model("loras", "te_only.safetensors",
                     {k: v for k, v in kit.SDXL_LORA_KOHYA.items() if k.startswith("lora_te")})
    kit.write_json(weak.parent / "te_only.json", {"sd version": "SD1"})
    index = lib.index()
    index.scan()
    pony = index.get("lora", "pony_style.safetensors")
    assert (pony.architecture, pony.base_model, pony.problems) == ("sdxl", "Pony", ())
    # text-encoder-only evidence is too weak to overrule a sidecar
    assert index.get("lora", "te_only.safetensors").architecture == "sd1"


def test_trainer_metadata_base_model_used_when_no_sidecar(lib, kit) -> None:
    lib.model("loras", "kohya.safetensors", {k: v for k, v in kit.SDXL_LORA_KOHYA.items() if k.startswith("lora_te")},
              {"ss_base_model_version": "sdxl_base_v1-0", "modelspec.trigger_phrase": "kw1, kw2"})
    index = lib.index()
    index.scan()
    rec = index.get("lora", "kohya.safetensors")
    assert (rec.base_model, rec.architecture, rec.trigger_words) == ("SDXL 1.0", "sdxl", ("kw1", "kw2"))
    assert rec.extra["base_model_source"] == "header"


def test_incremental_rescan_counts_added_modified_removed(lib, kit) -> None:
    a = lib.model("loras", "a.safetensors", kit.SD1_LORA_KOHYA)
    b = lib.model("loras", "b.safetensors", kit.SDXL_LORA_KOHYA)
    index = lib.index()
    assert index.generation == 0
    assert index.scan().changed == 2
    g = index.generation
    assert g == 1
    assert index.scan().changed == 0
    assert index.generation == g

    c = lib.model("loras", "c.safetensors", kit.FLUX_LORA_KOHYA)
    assert index.scan().changed == 1
    assert index.get("lora", "c.safetensors").architecture == "flux"
    assert index.generation == g + 1

    kit.write_sparse_safetensors(str(b), kit.SD1_LORA_KOHYA)  # same name, new content
    kit.bump_mtime(b)
    assert index.scan().changed == 1
    assert index.get("lora", "b.safetensors").architecture == "sd1"

    kit.write_json(a.parent / "a.json", {"activation text": "newword"})  # a sidecar appears
    assert index.scan().changed == 1
    assert index.get("lora", "a.safetensors").trigger_words == ("newword",)
    kit.write_json(a.parent / "a.json", {"activation text": "other"})  # the sidecar changes
    kit.bump_mtime(a.parent / "a.json")
    assert index.scan().changed == 1
    assert index.get("lora", "a.safetensors").trigger_words == ("other",)

    c.unlink()
    assert index.scan().changed == 1
    assert index.get("lora", "c.safetensors") is None

    d = lib.model("loras", "d.safetensors", kit.SD1_LORA_KOHYA)
    a.unlink()
    kit.bump_mtime(b)
    assert index.scan().changed == 3
    assert [r.name for r in index.records("lora")] == ["b.safetensors", "d.safetensors"]
    assert d.exists()
    assert index.generation == g + 6  # one bump per scan that changed something


def test_unchanged_rescan_is_a_pure_stat_walk(lib, kit, monkeypatch) -> None:
    for i in range(40):
        p = lib.model("loras", f"sub{i % 3}/l{i}.safetensors", kit.SD1_LORA_KOHYA)
        kit.write_json(p.parent / f"l{i}.metadata.json", {"model_name": f"L{i}"})
    index = lib.index(cache_path=lib.cache_path)
    index.scan()
    spy = OpenSpy(monkeypatch)
    result = index.scan()
    assert result.changed == 0
    assert spy.paths == []


def test_force_rescan_rereads_everything_but_counts_only_real_changes(lib, kit, monkeypatch) -> None:
    lib.model("loras", "a.safetensors", kit.SD1_LORA_KOHYA)
    index = lib.index()
    index.scan()
    spy = OpenSpy(monkeypatch)
    result = index.scan(force=True)
    assert result.changed == 0
    assert any(p.endswith("a.safetensors") for p in spy.paths)


def test_recheck_if_due_uses_the_clock(lib, kit) -> None:
    clock = FakeClock()
    lib.model("loras", "a.safetensors", kit.SD1_LORA_KOHYA)
    index = lib.index(clock=clock)
    assert index.recheck_if_due(10) is True  # never scanned: due, and a file appeared
    assert index.recheck_if_due(10) is False
    lib.model("loras", "b.safetensors", kit.SD1_LORA_KOHYA)
    clock.t += 9.9
    assert index.recheck_if_due(10) is False  # not yet due: the new file is not seen
    assert index.get("lora", "b.safetensors") is None
    clock.t += 0.1
    assert index.recheck_if_due(10) is True
    assert index.get("lora", "b.safetensors") is not None
    clock.t += 10
    assert index.recheck_if_due(10) is False  # due, but nothing changed


def test_recheck_does_not_wait_for_a_running_scan(lib, kit) -> None:
    lib.model("loras", "a.safetensors", kit.SD1_LORA_KOHYA)
    index = lib.index()
    with index._scan_lock:  # a scan in progress on another thread
        assert index.recheck_if_due(0) is False


def test_same_file_name_in_two_subfolders_is_two_models(lib, kit) -> None:
    lib.model("loras", "anime/detail.safetensors", kit.SD1_LORA_KOHYA)
    lib.model("loras", "photo/detail.safetensors", kit.SDXL_LORA_KOHYA)
    index = lib.index()
    assert index.scan().total == 2
    assert index.get("lora", "anime/detail.safetensors").architecture == "sd1"
    assert index.get("lora", "photo/detail.safetensors").architecture == "sdxl"


def test_same_name_in_two_roots_first_root_wins(tmp_path: Path, kit, caplog) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    kit.write_sparse_safetensors(str(first / "x.safetensors"), kit.SD1_LORA_KOHYA)
    kit.write_sparse_safetensors(str(second / "x.safetensors"), kit.SDXL_LORA_KOHYA)
    kit.write_sparse_safetensors(str(second / "y.safetensors"), kit.SDXL_LORA_KOHYA)
    index = ModelIndex(StaticModelPaths({"lora": [str(first), str(second)]}))
    with caplog.at_level(logging.INFO):
        assert index.scan().total == 2
        index.scan()
    rec = index.get("lora", "x.safetensors")
    assert rec.path == str(first / "x.safetensors") and rec.architecture == "sd1"
    assert index.get("lora", "y.safetensors").path == str(second / "y.safetensors")
    logged = [r for r in caplog.records if str(second / "x.safetensors") in r.getMessage()]
    assert len(logged) == 1  # logged when first seen, not on every rescan


def test_unicode_names(lib, kit) -> None:
    path = lib.model("loras", "日本語/café_ネオン.safetensors", kit.SDXL_LORA_KOHYA)
    kit.write_json(path.parent / "café_ネオン.metadata.json", {"model_name": "Café Néon ✨", "tags": ["ÉCLAIR"]})
    (path.parent / "café_ネオン.preview.webp").write_bytes(b"x")
    index = lib.index(cache_path=lib.cache_path)
    index.scan()
    rec = index.get("lora", "日本語/café_ネオン.safetensors")
    assert rec is not None
    assert (rec.title, rec.tags, rec.preview) == ("Café Néon ✨", ("éclair",), "日本語/café_ネオン.preview.webp")
    assert index.find(q="ネオン") == [rec]
    again = lib.index(cache_path=lib.cache_path)
    assert again.get("lora", "日本語/café_ネオン.safetensors") == rec


@pytest.mark.timeout(30)
def test_symlink_loops_do_not_hang_and_links_are_followed(lib, kit, tmp_path: Path) -> None:
    loras = lib.folder("loras")
    lib.model("loras", "sub/a.safetensors", kit.SD1_LORA_KOHYA)
    os.symlink(loras, loras / "sub" / "back_to_root")
    os.symlink(loras / "sub", loras / "sub" / "self")
    elsewhere = tmp_path / "elsewhere"
    kit.write_sparse_safetensors(str(elsewhere / "linked.safetensors"), kit.SDXL_LORA_KOHYA)
    os.symlink(elsewhere, loras / "shared")
    os.symlink(loras / "missing_target", loras / "dangling.safetensors")
    index = lib.index()
    result = index.scan()
    assert sorted(r.name for r in index.records()) == ["shared/linked.safetensors", "sub/a.safetensors"]
    assert result.total == 2


def test_exclude_folders_by_name_absolute_and_relative_path(lib, kit) -> None:
    lib.model("loras", "keep/a.safetensors", kit.SD1_LORA_KOHYA)
    lib.model("loras", "archive/b.safetensors", kit.SD1_LORA_KOHYA)
    lib.model("checkpoints", "x/archive/c.safetensors", kit.SD1_CHECKPOINT)
    lib.model("loras", "old/d.safetensors", kit.SD1_LORA_KOHYA)
    lib.model("loras", "nested/skip/e.safetensors", kit.SD1_LORA_KOHYA)
    lib.model("loras", "other/nested/skip/f.safetensors", kit.SD1_LORA_KOHYA)
    lib.model("loras", ".trash/g.safetensors", kit.SD1_LORA_KOHYA)
    (lib.folder("loras") / "keep" / "._a.safetensors").write_bytes(b"\x00" * 16)  # macOS resource fork junk
    index = lib.index(exclude_folders=["archive", str(lib.models / "loras" / "old"), "nested/skip"])
    index.scan()
    assert [r.name for r in index.records()] == ["keep/a.safetensors", "other/nested/skip/f.safetensors"]


def test_find_and_records_filters(lib, kit) -> None:
    a = lib.model("loras", "anime/eyes.safetensors", kit.SDXL_LORA_KOHYA)
    kit.write_json(a.parent / "eyes.civitai.info", {"baseModel": "Illustrious", "trainedWords": ["Sparkle Eyes"],
                                                    "model": {"name": "Beautiful Eyes", "tags": ["Anime"]}})
    b = lib.model("loras", "photo.safetensors", kit.SDXL_LORA_KOHYA)
    kit.write_json(b.parent / "photo.civitai.info", {"baseModel": "SDXL Lightning", "model": {"name": "Photo"}})
    lib.model("loras", "sd1.safetensors", kit.SD1_LORA_KOHYA)
    lib.model("checkpoints", "anime_model.safetensors", kit.SDXL_CHECKPOINT)
    index = lib.index()
    index.scan()
    assert [r.name for r in index.find(q="SPARKLE")] == ["anime/eyes.safetensors"]
    assert [r.name for r in index.find(q="beautiful eyes")] == ["anime/eyes.safetensors"]
    assert [r.name for r in index.find(q="anime")] == ["anime_model.safetensors", "anime/eyes.safetensors"]
    assert [r.name for r in index.find(type="lora", q="anime")] == ["anime/eyes.safetensors"]
    assert [r.name for r in index.find(type="lora", base_model="sdxl")] == ["photo.safetensors"]
    assert [r.name for r in index.find(type="lora", base_model="illustrious")] == ["anime/eyes.safetensors"]
    assert [r.name for r in index.find(base_model="SD 1.5")] == ["sd1.safetensors"]
    assert len(index.find()) == 4
    assert [r.kind for r in index.records("checkpoint")] == ["checkpoint"]
    assert index.counts() == {**dict.fromkeys(FOLDER_KINDS, 0), "checkpoint": 1, "lora": 3}
    with pytest.raises(ValueError, match="unknown model type"):
        index.find(type="loras")
    with pytest.raises(ValueError):
        index.records("bogus")


def test_progress_events_are_throttled_and_end_with_the_total(lib, kit) -> None:
    sent: list[tuple[str, dict]] = []

    class Sink:
        def send(self, event: str, data: dict) -> None:
            sent.append((event, data))

    for i in range(60):
        lib.model("loras", f"l{i:02}.safetensors", kit.SD1_LORA_KOHYA)
    index = lib.index(events=Sink(), clock=FakeClock(step=0.1))
    index.scan()
    assert 3 <= len(sent) < 30
    assert {e for e, _ in sent} == {"intelligent.progress"}
    assert all(d["task"] == "index" and set(d) == {"task", "done", "total", "message"} for _, d in sent)
    assert sent[-1][1]["done"] == sent[-1][1]["total"] == 60
    dones = [d["done"] for _, d in sent]
    assert dones == sorted(dones)
    sent.clear()
    index.scan()
    assert sent == []  # a rescan that finds nothing new stays quiet


def test_a_failing_event_sink_does_not_break_the_scan(lib, kit) -> None:
    class Broken:
        def send(self, event: str, data: dict) -> None:
            raise ConnectionError("socket closed")

    lib.model("loras", "a.safetensors", kit.SD1_LORA_KOHYA)
    assert lib.index(events=Broken()).scan().total == 1


def test_readers_see_consistent_snapshots_during_scans(lib, kit) -> None:
    for i in range(50):
        lib.model("loras", f"l{i}.safetensors", kit.SD1_LORA_KOHYA)
    index = lib.index()
    errors: list[BaseException] = []
    done = threading.Event()

    def scanner() -> None:
        try:
            for _ in range(5):
                index.scan(force=True)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            done.set()

    t = threading.Thread(target=scanner)
    t.start()
    while not done.is_set():
        records = index.records()
        assert len(records) in (0, 50)
        assert len(index.find(q="l1")) in (0, 11)
    t.join()
    assert errors == []


def _gguf(kv: dict[str, str]) -> bytes:
    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw
    body = s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 3) + s("a") + s("b") + s("c")
    for k, v in kv.items():
        body += s(k) + struct.pack("<I", 8) + s(v)
    body += s("general.file_type") + struct.pack("<II", 4, 1)
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv) + 2) + body


def test_gguf_models_get_their_architecture_from_the_header(lib) -> None:
    (lib.folder("unet") / "flux1-dev-Q4_K_S.gguf").write_bytes(_gguf({"general.architecture": "flux"}))
    (lib.folder("unet") / "broken.gguf").write_bytes(b"GGUF\x03\x00")
    index = lib.index()
    index.scan()
    rec = index.get("diffusion_model", "flux1-dev-Q4_K_S.gguf")
    assert (rec.architecture, rec.base_model, rec.sources, rec.problems) == ("flux", "Flux.1 D", ("header",), ())
    broken = index.get("diffusion_model", "broken.gguf")
    assert broken.architecture == "unknown" and broken.problems[0].startswith("unreadable header")


def test_changing_exclude_folders_applies_at_the_next_recheck(tmp_path):
    from intelligent_pipeline.metadata import ModelIndex, StaticModelPaths

    loras = tmp_path / "loras"
    (loras / "old").mkdir(parents=True)
    (loras / "keep.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    (loras / "old" / "gone.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    now = [0.0]
    index = ModelIndex(StaticModelPaths({"lora": [str(loras)]}), clock=lambda: now[0])
    index.scan()
    assert {r.name for r in index.records("lora")} == {"keep.safetensors", "old/gone.safetensors"}
    assert index.set_exclude_folders(["old"]) is True
    assert index.set_exclude_folders(["old"]) is False
    assert index.recheck_if_due(3600) is True, "a changed exclude list makes the re-check due at once"
    assert {r.name for r in index.records("lora")} == {"keep.safetensors"}


def test_cache_can_be_loaded_later_off_the_start_path(tmp_path):
    from intelligent_pipeline.metadata import ModelIndex, StaticModelPaths

    loras = tmp_path / "loras"
    loras.mkdir()
    (loras / "a.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    cache = str(tmp_path / "cache.json")
    paths = StaticModelPaths({"lora": [str(loras)]})
    ModelIndex(paths, cache_path=cache).scan()
    later = ModelIndex(paths, cache_path=cache, load_cache_now=False)
    assert later.records() == [], "nothing is read at construction"
    later.load_cache()
    assert [r.name for r in later.records()] == ["a.safetensors"]


def test_a_record_that_cannot_be_built_costs_one_line_and_no_traceback(lib, kit, monkeypatch, caplog) -> None:
    from intelligent_pipeline.metadata import index as index_module

    lib.model("loras", "ok.safetensors", kit.SD1_LORA_KOHYA)
    lib.model("loras", "bad\nERROR forged.safetensors", kit.SD1_LORA_KOHYA)
    real = index_module.build_record

    def flaky(file: Any) -> Any:
        if "forged" in file.name:
            raise RuntimeError("a bug\nERROR also forged")
        return real(file)

    monkeypatch.setattr(index_module, "build_record", flaky)
    with caplog.at_level(logging.DEBUG):
        index = lib.index()
        assert index.scan().total == 2
    rec = index.get("lora", "bad\nERROR forged.safetensors")
    assert rec is not None and "RuntimeError" in rec.problems[0] and "\n" not in rec.problems[0]
    assert index.get("lora", "ok.safetensors").architecture == "sd1"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].exc_info is None
    assert "\n" not in warnings[0].getMessage()


def test_a_find_query_uses_its_first_16_distinct_words_longest_first(lib, kit) -> None:
    """`q` comes from a URL: 4,000 words must not mean 4,000 substring tests per record (it took
    8.6 s over 10k records on the event loop before the cap). The 16 longest distinct words are
    used, so a query's cost per record is bounded however it is written."""
    for i in range(300):
        lib.model("loras", f"lora_{i}.safetensors", kit.SD1_LORA_KOHYA)
    index = lib.index()
    index.scan()
    assert len(index.find(q=" ".join(["."] * 4000))) == 300  # every haystack holds "." (the suffix)
    assert index.find(q=" ".join(f"w{i}" for i in range(4000))) == []
    present = ["safetensors", "afetensors", "fetensors", "etensors", "tensors", "ensors", "nsors", "sors",
               "safetenso", "safeten", "safete", "safet", "lora_", "lora", "afet", "fete"]  # 16, each of 4+ letters
    absent = [f"z{i % 100:02d}" for i in range(4000)]  # 3 letters: shorter than all of them, never used
    assert len(index.find(q=" ".join(absent + present))) == 300
    assert index.find(q=" ".join(present[1:] + absent)) == []  # 15 long words leave room for a short one


def _threads_used_by_reads(lib, kit, monkeypatch, build) -> set[str]:
    """The names of the threads that built records for 100 files, with `build` as the reader."""
    from intelligent_pipeline.metadata import index as index_module

    for i in range(100):
        lib.model("loras", f"t/l{i}.safetensors", kit.SD1_LORA_KOHYA)
    threads: set[str] = set()

    def spy(file: Any) -> Any:
        threads.add(threading.current_thread().name)
        return build(file)

    monkeypatch.setattr(index_module, "build_record", spy)
    index = lib.index()
    assert index.scan().total == 100
    assert all(r.title for r in index.records("lora"))
    return threads


def test_reads_that_cost_cpu_stay_on_one_thread(lib, kit, monkeypatch) -> None:
    """A warm local disk: threads would only contend for the GIL."""
    from intelligent_pipeline.metadata import index as index_module

    real = index_module.build_record

    def busy(file: Any) -> Any:
        sum(range(20000))  # CPU, as parsing is
        return real(file)

    assert _threads_used_by_reads(lib, kit, monkeypatch, busy) == {threading.current_thread().name}


def test_reads_that_wait_on_the_disk_are_overlapped_on_threads(lib, kit, monkeypatch) -> None:
    """A network share: each read waits (a sleep uses no CPU), so the rest go to a pool."""
    import time as time_module

    from intelligent_pipeline.metadata import index as index_module

    real = index_module.build_record

    def slow(file: Any) -> Any:
        time_module.sleep(0.002)
        return real(file)

    threads = _threads_used_by_reads(lib, kit, monkeypatch, slow)
    assert threading.current_thread().name in threads  # the first chunk
    assert any(name.startswith("model-index") for name in threads)


def test_io_bound_needs_mostly_waiting_and_enough_time_to_tell() -> None:
    from intelligent_pipeline.metadata.index import io_bound

    assert io_bound(1.0, 0.1) and not io_bound(1.0, 0.5)
    assert not io_bound(0.01, 0.0)  # 64 files in 10 ms: nothing to gain
    assert io_bound(0.2, 0.0)


def test_reading_goes_back_to_one_thread_when_the_waiting_stops(lib, kit, monkeypatch) -> None:
    """A cold cache that warms up (or a share that gets fast): CPU-bound chunks leave the pool."""
    import time as time_module

    from intelligent_pipeline.metadata import index as index_module

    real = index_module.build_record
    order: list[str] = []

    def cold_then_warm(file: Any) -> Any:
        order.append(threading.current_thread().name)
        if len(order) <= 64:
            time_module.sleep(0.002)  # chunks 1 and 2 wait
        else:
            sum(range(20000))  # chunk 3 computes, on the pool; chunk 4 is back on one thread
        return real(file)

    monkeypatch.setattr(index_module, "CHUNK_FILES", 32)
    threads = _threads_used_by_reads(lib, kit, monkeypatch, cold_then_warm)
    assert any(name.startswith("model-index") for name in threads)
    assert order[:32] == [threading.current_thread().name] * 32
    assert order[96:] == [threading.current_thread().name] * 4


def test_an_unchanged_rescan_keeps_the_snapshot_and_a_change_redoes_only_its_record(lib, kit) -> None:
    for i in range(30):
        p = lib.model("loras", f"l{i}.safetensors", kit.SD1_LORA_KOHYA)
        kit.write_json(p.parent / f"l{i}.metadata.json", {"model_name": f"Lora {i}", "tags": ["cat"]})
    index = lib.index()
    index.scan()
    before = index._snapshot()
    assert index.scan().changed == 0
    assert index._snapshot() is before  # nothing copied or rebuilt
    kit.write_json(lib.models / "loras" / "l3.metadata.json", {"model_name": "Lora 3", "tags": ["dog"]})
    kit.bump_mtime(lib.models / "loras" / "l3.metadata.json", 5)
    assert index.scan().changed == 1
    after = index._snapshot()
    assert [r.name for r in index.find("lora", q="dog")] == ["l3.safetensors"]
    assert len(index.find("lora", q="cat")) == 29
    kept = [k for k in after.haystacks if k != ("lora", "l3.safetensors")]
    assert all(after.haystacks[k] is before.haystacks[k] for k in kept)
    assert after.generation == before.generation + 1


def test_a_changed_record_takes_its_place_in_every_view_when_no_key_came_or_went(lib, kit) -> None:
    for kind, names in (("loras", "bdf"), ("checkpoints", "ace"), ("vae", "z")):
        for name in names:
            p = lib.model(kind, f"{name}.safetensors", kit.SD1_LORA_KOHYA)
            kit.write_json(p.parent / f"{name}.metadata.json", {"model_name": f"Old {name}"})
    index = lib.index()
    index.scan()
    before = index._snapshot()
    kit.write_json(lib.models / "loras" / "d.metadata.json", {"model_name": "New d"})
    kit.bump_mtime(lib.models / "loras" / "d.metadata.json", 5)
    kit.write_json(lib.models / "checkpoints" / "a.metadata.json", {"model_name": "New a"})
    kit.bump_mtime(lib.models / "checkpoints" / "a.metadata.json", 5)
    assert index.scan().changed == 2
    after = index._snapshot()
    assert after.keys is before.keys  # the key order was kept, not sorted again
    assert [(r.kind, r.name) for r in after.ordered] == list(after.keys)
    assert [r.title for r in index.records("lora")] == ["Old b", "New d", "Old f"]
    assert [r.title for r in index.records("checkpoint")] == ["New a", "Old c", "Old e"]
    assert [r.title for r in index.records("vae")] == ["Old z"] and index.counts()["vae"] == 1
    assert all(after.by_kind[k] == tuple(r for r in after.ordered if r.kind == k) for k in after.by_kind)


def test_a_rescan_that_adds_one_and_removes_another_keeps_order_and_search_right(lib, kit) -> None:
    for name in ("b", "d", "f"):
        lib.model("loras", f"{name}.safetensors", kit.SD1_LORA_KOHYA)
    index = lib.index()
    index.scan()
    (lib.models / "loras" / "d.safetensors").unlink()
    lib.model("loras", "a.safetensors", kit.SD1_LORA_KOHYA)
    assert index.scan().changed == 2
    assert [r.name for r in index.records("lora")] == ["a.safetensors", "b.safetensors", "f.safetensors"]
    assert [r.name for r in index.find("lora", q="a.safetensors")] == ["a.safetensors"]
    assert index.find("lora", q="d.safetensors") == [] and index.get("lora", "d.safetensors") is None
    assert set(index._snapshot().haystacks) == {("lora", n) for n in ("a.safetensors", "b.safetensors", "f.safetensors")}


def test_the_walk_signs_each_file_as_reader_signature_does(lib, kit) -> None:
    """The walk builds the fingerprint's signature inline (it runs for every file on every rescan):
    it must be exactly reader.signature of what it saw, or every rescan would re-read everything."""
    from intelligent_pipeline.metadata.reader import signature

    a = lib.model("loras", "a.safetensors", kit.SD1_LORA_KOHYA)
    kit.write_json(a.parent / "a.metadata.json", {"model_name": "A"})
    (a.parent / "a.civitai.info").write_text("{}", encoding="utf-8")
    (a.parent / "a.preview.png").write_bytes(b"png")
    b = lib.model("loras", "sub/b.safetensors", kit.SD1_LORA_KOHYA)
    (b.parent / "b.webp").write_bytes(b"webp")
    c = lib.model("loras", "sub/c.safetensors", kit.SD1_LORA_KOHYA)
    (c.parent / "c.safetensors.rgthree-info.json").write_text("{}", encoding="utf-8")
    lib.model("loras", "d.safetensors", kit.SD1_LORA_KOHYA)
    found = lib.index()._walk()
    assert len(found) == 4
    for f in found.values():
        assert f.sig == signature(f.sidecars, f.preview)
    by_name = {f.name: f for f in found.values()}
    assert [s[0] for s in by_name["a.safetensors"].sidecars] == ["lora-manager", "civitai-info"]
    assert by_name["a.safetensors"].preview == "a.preview.png" and by_name["sub/b.safetensors"].preview == "sub/b.webp"
    assert [s[0] for s in by_name["sub/c.safetensors"].sidecars] == ["rgthree"]
    assert by_name["d.safetensors"].sig == ""


def test_a_pausable_scan_waits_while_busy_and_a_plain_one_does_not(lib, kit, monkeypatch) -> None:
    """A background scan does not read while a prompt executes; scans on a request's path never wait."""
    from intelligent_pipeline.metadata import index as index_module

    for i in range(10):
        lib.model("loras", f"l{i}.safetensors", kit.SD1_LORA_KOHYA)
    busy = threading.Event()
    busy.set()
    reads: list[str] = []
    real = index_module.build_record
    monkeypatch.setattr(index_module, "build_record", lambda f: reads.append(f.name) or real(f))
    monkeypatch.setattr(index_module, "PAUSE_POLL_S", 0.01)
    index = lib.index(busy=busy.is_set)
    results: list[Any] = []
    scan = threading.Thread(target=lambda: results.append(index.scan(pausable=True)))
    scan.start()
    scan.join(0.3)
    assert scan.is_alive() and reads == []  # waiting, nothing read
    busy.clear()
    scan.join(10)
    assert not scan.is_alive() and results[0].total == 10 and len(reads) == 10

    busy.set()  # not pausable: reads at once, busy or not
    (lib.models / "loras" / "l0.safetensors").unlink()
    lib.model("loras", "new.safetensors", kit.SD1_LORA_KOHYA)
    assert index.scan().changed == 2 and reads[-1] == "new.safetensors"


def test_a_failing_busy_probe_does_not_stop_a_scan(lib, kit) -> None:
    lib.model("loras", "a.safetensors", kit.SD1_LORA_KOHYA)

    def broken() -> bool:
        raise RuntimeError("no queue")

    assert lib.index(busy=broken).scan(pausable=True).total == 1


def _keep_folder_mtime(folder: Path):
    """Restores `folder`'s mtime afterwards: a change that leaves its folder's mtime as it was."""
    st = folder.stat()

    class Keep:
        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: Any) -> None:
            os.utime(folder, ns=(st.st_atime_ns, st.st_mtime_ns))
    return Keep()


def _age_folders(root: Path, seconds: float = 60.0) -> None:
    """Set the mtime of `root` and every folder under it `seconds` into the past: folders a quick
    re-check may trust (one modified within RACY_S of its listing is listed again)."""
    then = time.time_ns() - int(seconds * 1e9)
    for folder, _, _ in os.walk(root):
        os.utime(folder, ns=(then, then))


def _scandir_spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The folders os.scandir lists from now on, in order."""
    listed: list[str] = []
    real_scandir = os.scandir

    def spy(path: Any) -> Any:
        listed.append(os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", spy)
    return listed


def test_a_quick_recheck_lists_only_folders_whose_mtime_changed(lib, kit, monkeypatch) -> None:
    clock = FakeClock()
    for i in range(12):
        p = lib.model("loras", f"f{i % 3}/l{i}.safetensors", kit.SD1_LORA_KOHYA)
        kit.write_json(p.parent / f"l{i}.metadata.json", {"model_name": f"L{i}"})
    _age_folders(lib.models)
    index = lib.index(clock=clock)
    assert index.scan().total == 12 and not index.full_scan_due(10)
    listed = _scandir_spy(monkeypatch)
    clock.t += 10
    assert index.recheck_if_due(10, quick=True) is False
    assert listed == []  # nothing listed, no file stat'ed: every folder's mtime was the same
    lib.model("loras", "f1/new.safetensors", kit.SD1_LORA_KOHYA)  # f1's mtime changes
    clock.t += 10
    assert index.recheck_if_due(10, quick=True) is True
    assert [os.path.basename(p) for p in listed] == ["f1"]
    assert index.get("lora", "f1/new.safetensors") is not None and index.counts()["lora"] == 13
    assert index.full_scan_due(10)  # quick re-checks do not count as full scans


def test_an_in_place_edit_waits_for_the_next_full_scan(lib, kit) -> None:
    clock = FakeClock()
    p = lib.model("loras", "f/a.safetensors", kit.SD1_LORA_KOHYA)
    sidecar = p.parent / "a.metadata.json"
    kit.write_json(sidecar, {"model_name": "Before"})
    _age_folders(lib.models)
    index = lib.index(clock=clock)
    index.scan()
    with _keep_folder_mtime(p.parent):
        kit.write_json(sidecar, {"model_name": "After"})  # rewritten in place, folder mtime kept
        kit.bump_mtime(sidecar, 5)
    clock.t += 10
    assert index.recheck_if_due(10, quick=True) is False and index.get("lora", "f/a.safetensors").title == "Before"
    assert index.full_scan_due(10)
    assert index.scan().changed == 1 and index.get("lora", "f/a.safetensors").title == "After"
    assert not index.full_scan_due(10)


def test_a_quick_recheck_keeps_the_first_root_winning_and_bad_files_logged_once(tmp_path: Path, kit, caplog) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    kit.write_sparse_safetensors(str(first / "x.safetensors"), kit.SD1_LORA_KOHYA)
    kit.write_sparse_safetensors(str(second / "x.safetensors"), kit.SDXL_LORA_KOHYA)
    os.mkfifo(second / "pipe.safetensors")
    clock = FakeClock()
    index = ModelIndex(StaticModelPaths({"lora": [str(first), str(second)]}), clock=clock)
    with caplog.at_level(logging.INFO):
        assert index.scan().total == 1
        clock.t += 10
        assert index.recheck_if_due(10, quick=True) is False
        kit.write_sparse_safetensors(str(second / "y.safetensors"), kit.SDXL_LORA_KOHYA)
        clock.t += 10
        assert index.recheck_if_due(10, quick=True) is True
    assert index.get("lora", "x.safetensors").path == str(first / "x.safetensors")
    assert index.counts()["lora"] == 2
    messages = [r.getMessage() for r in caplog.records]
    assert sum(str(second / "x.safetensors") in m for m in messages) == 1
    assert sum("pipe.safetensors" in m for m in messages) == 1


def test_a_changed_exclude_list_makes_the_quick_recheck_list_again(lib, kit) -> None:
    clock = FakeClock()
    lib.model("loras", "keep/a.safetensors", kit.SD1_LORA_KOHYA)
    lib.model("loras", "old/b.safetensors", kit.SD1_LORA_KOHYA)
    index = lib.index(clock=clock)
    index.scan()
    assert index.set_exclude_folders(["old"])
    assert index.recheck_if_due(10, quick=True) is True
    assert [r.name for r in index.records("lora")] == ["keep/a.safetensors"]


def test_a_quick_recheck_sees_a_duplicate_name_in_an_earlier_root_go_away(tmp_path: Path, kit) -> None:
    """Roots A and B both hold sub/x: deleting A's makes B's the one ComfyUI loads, though B's
    folder did not change."""
    first, second = tmp_path / "first", tmp_path / "second"
    kit.write_sparse_safetensors(str(first / "sub" / "x.safetensors"), kit.SD1_LORA_KOHYA)
    kit.write_sparse_safetensors(str(first / "sub" / "keep.safetensors"), kit.SD1_LORA_KOHYA)
    kit.write_sparse_safetensors(str(second / "sub" / "x.safetensors"), kit.SDXL_LORA_KOHYA)
    clock = FakeClock()
    index = ModelIndex(StaticModelPaths({"lora": [str(first), str(second)]}), clock=clock)
    index.scan()
    assert index.get("lora", "sub/x.safetensors").path == str(first / "sub" / "x.safetensors")
    (first / "sub" / "x.safetensors").unlink()
    clock.t += 10
    assert index.recheck_if_due(10, quick=True) is True
    rec = index.get("lora", "sub/x.safetensors")
    assert rec.path == str(second / "sub" / "x.safetensors") and rec.architecture == "sdxl"


class _ExcludeMidWalk(StaticModelPaths):
    """Model paths whose roots() for `when` changes the index's exclude list, once armed: an
    exclude change (the settings route) landing while a scan walks."""

    def __init__(self, roots: dict[str, list[str]], when: str, exclude: list[str]):
        super().__init__(roots)
        self.index: ModelIndex | None = None
        self.when, self.exclude = when, exclude

    def roots(self, kind: str) -> list[str]:
        if kind == self.when and self.index is not None:
            index, self.index = self.index, None
            assert index.set_exclude_folders(self.exclude)
        return super().roots(kind)


def test_an_exclude_change_during_a_scan_is_not_lost_for_quick_rechecks(lib, kit) -> None:
    """The scan running while the list changes walked with the old one: it keeps no folders and
    leaves the re-check due, so the next quick re-check lists everything with the new list."""
    lib.model("loras", "keep/a.safetensors", kit.SD1_LORA_KOHYA)
    lib.model("loras", "old/b.safetensors", kit.SD1_LORA_KOHYA)
    _age_folders(lib.models)
    clock = FakeClock()
    paths = _ExcludeMidWalk({"lora": [str(lib.models / "loras")]}, when="vae", exclude=["old"])  # after loras
    index = ModelIndex(paths, clock=clock)
    index.scan()
    paths.index = index
    assert index.scan().changed == 0 and paths.index is None  # the change landed during this scan
    assert index.recheck_if_due(3600, quick=True) is True, "the re-check is due at once and lists again"
    assert [r.name for r in index.records("lora")] == ["keep/a.safetensors"]


def test_a_folder_listed_within_racy_s_of_its_mtime_is_listed_again(lib, kit, monkeypatch) -> None:
    """Coarse mtimes: a folder changed in the same mtime tick as it was listed keeps its mtime; it
    is not trusted until its mtime is RACY_S old at listing."""
    from intelligent_pipeline.metadata import index as index_module

    lib.model("loras", "fresh/a.safetensors", kit.SD1_LORA_KOHYA)
    lib.model("loras", "aged/b.safetensors", kit.SD1_LORA_KOHYA)
    _age_folders(lib.models)
    fresh = lib.models / "loras" / "fresh"
    just_now = time.time_ns() + int(0.5e9)  # "just written" (ahead of the clock: the test may run slowly)
    os.utime(fresh, ns=(just_now, just_now))
    clock = FakeClock()
    index = lib.index(clock=clock)
    assert index.scan().total == 2
    with _keep_folder_mtime(fresh):  # a file added in the same mtime tick: the folder's mtime is unchanged
        lib.model("loras", "fresh/c.safetensors", kit.SD1_LORA_KOHYA)
    assert fresh.stat().st_mtime_ns == just_now
    listed = _scandir_spy(monkeypatch)
    clock.t += 10
    assert index.recheck_if_due(10, quick=True) is True
    assert [os.path.basename(p) for p in listed] == ["fresh"]  # the aged folders are trusted
    assert index.get("lora", "fresh/c.safetensors") is not None
    assert index_module.RACY_S == 2.0
    old = time.time_ns() - int(index_module.RACY_S * 1e9) - int(1e9)  # now older than RACY_S: trusted next time
    os.utime(fresh, ns=(old, old))
    clock.t += 10
    assert index.recheck_if_due(10, quick=True) is False  # mtime changed: listed once more, then trusted
    listed.clear()
    clock.t += 10
    assert index.recheck_if_due(10, quick=True) is False and listed == []


@pytest.mark.timeout(30)
def test_a_quick_recheck_through_a_trusted_folder_still_stops_symlink_loops(lib, kit, monkeypatch) -> None:
    """The root is trusted (unchanged), its subfolder changed: the folders the root's record pushes
    count as walked, so sub/self (a link to sub) and sub/back (to the root) are not walked again."""
    loras = lib.folder("loras")
    lib.model("loras", "sub/a.safetensors", kit.SD1_LORA_KOHYA)
    os.symlink(loras / "sub", loras / "sub" / "self")
    os.symlink(loras, loras / "sub" / "back")
    _age_folders(lib.models)
    clock = FakeClock()
    index = lib.index(clock=clock)
    assert [r.name for r in index.records()] == [] and index.scan().total == 1
    lib.model("loras", "sub/b.safetensors", kit.SD1_LORA_KOHYA)  # sub's mtime changes; the root's does not
    listed = _scandir_spy(monkeypatch)
    clock.t += 10
    assert index.recheck_if_due(10, quick=True) is True
    assert [os.path.basename(p) for p in listed] == ["sub"]
    assert [r.name for r in index.records()] == ["sub/a.safetensors", "sub/b.safetensors"]
    clock.t += 10
    assert index.recheck_if_due(10, quick=True) is False
    assert [r.name for r in index.records()] == ["sub/a.safetensors", "sub/b.safetensors"]


def test_subfolders_are_walked_in_name_order_and_the_first_link_to_a_folder_wins(lib, kit, monkeypatch) -> None:
    """Whatever order the filesystem lists them in (here: reverse name order)."""
    loras = lib.folder("loras")
    names = ["b", "d", "a", "e", "c"]
    for name in names:
        lib.model("loras", f"{name}/m.safetensors", kit.SD1_LORA_KOHYA)
    os.symlink(loras / "e", loras / "0_link")  # sorts first: the link's path wins the folder
    real_scandir = os.scandir
    listed: list[str] = []

    class Reversed:
        def __init__(self, path: Any):
            listed.append(os.path.basename(os.fspath(path)))
            with real_scandir(path) as it:
                self.entries = sorted(it, key=lambda e: e.name, reverse=True)

        def __enter__(self) -> Any:
            return iter(self.entries)

        def __exit__(self, *exc: Any) -> None:
            return None

    monkeypatch.setattr(os, "scandir", Reversed)
    for _ in range(2):  # the same walk each time
        listed.clear()
        index = lib.index()
        index.scan()
        assert listed == ["loras", "0_link", "a", "b", "c", "d"]
        assert [r.name for r in index.records()] == ["0_link/m.safetensors", "a/m.safetensors", "b/m.safetensors",
                                                     "c/m.safetensors", "d/m.safetensors"]
