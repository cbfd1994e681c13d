"""The SQLite index store: incremental transactional writes, versions and migrations, setting aside
what it cannot use, full-text search over hostile text, and surviving kill -9 during a scan."""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intelligent_pipeline.metadata import ModelIndex, ModelRecord, StaticModelPaths, base_models, postings_process
from intelligent_pipeline.metadata import postings as postings_module
from intelligent_pipeline.metadata import store as store_module
from intelligent_pipeline.metadata.cache import record_to_json
from intelligent_pipeline.metadata.postings_process import PostingsProcess, WorkerFailed
from intelligent_pipeline.metadata.reader import signature
from intelligent_pipeline.metadata.store import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    IndexStore,
    fts_query,
    query_terms,
)

POSIX_ONLY = pytest.mark.skipif(os.name == "nt", reason="SIGKILL and file names as POSIX has them")
FUZZ = settings(derandomize=True, max_examples=200, deadline=None)


_FIELDS = {f.name for f in dataclasses.fields(ModelRecord)}


def _record(name: str, kind: str = "lora", **kw: Any) -> ModelRecord:
    if "family" in _FIELDS:  # what the merge sets beside base_model
        kw.setdefault("family", base_models.family(kw.get("base_model", "Unknown")))
    return ModelRecord(name=name, kind=kind, path=f"/models/{kind}s/{name}", **kw)


def _fp(record: ModelRecord, mtime_ns: int = 1) -> tuple[Any, ...]:
    return (record.path, 100, mtime_ns, signature((("lora-manager", record.name + ".metadata.json", 5),), None))


def _open(path: Path | str) -> IndexStore:
    store = IndexStore(str(path))
    store.open()
    return store


def _aside(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if ".corrupt-" in p.name)


# --- rows ----------------------------------------------------------------------------------------


def test_rows_round_trip_and_only_what_is_applied_is_written(tmp_path: Path) -> None:
    store = _open(tmp_path / "s.sqlite3")
    a = _record("a.safetensors", title="Alpha", tags=("x", "y"), trigger_words=("aw",), strength_range=(0.4, 0.9),
                extra={"base_model_source": "header"})
    b = _record("sub/b.safetensors", kind="checkpoint", architecture="sdxl", base_model="Pony")
    assert store.apply([(_fp(a), a), (_fp(b), b)], []) == 2
    loaded = store.load()
    assert set(loaded) == {("lora", "a.safetensors"), ("checkpoint", "sub/b.safetensors")}
    fp, rec = loaded[("lora", "a.safetensors")]
    assert fp == _fp(a) and rec == a and rec.extra == a.extra and rec.strength_range == (0.4, 0.9)
    assert store.rows_written == 2 and store.transactions == 1

    a2 = _record("a.safetensors", title="Alpha 2")
    assert store.apply([(_fp(a2, 2), a2)], [("checkpoint", "sub/b.safetensors")]) == 2
    assert store.rows_written == 4
    loaded = store.load()
    assert list(loaded) == [("lora", "a.safetensors")] and loaded[("lora", "a.safetensors")][1].title == "Alpha 2"
    assert store.check() == []
    store.close()


def test_check_finds_rows_and_full_text_indexes_that_drifted_apart(tmp_path: Path) -> None:
    store = _open(tmp_path / "s.sqlite3")
    r = _record("a.safetensors", title="猫の少女")
    store.apply([(_fp(r), r)], [])
    assert store.check() == []
    conn = store._writer()
    conn.execute("DROP TRIGGER models_ai")  # what a write outside one transaction could leave behind
    if store.trigram:
        conn.execute("DROP TRIGGER models_trigram_ai")
    conn.execute("INSERT INTO models (kind, name, path, size, mtime_ns, signature, architecture, family, base_model, "
                 "title, trigger_words, tags, description, record) SELECT kind, 'b', path, size, mtime_ns, signature, "
                 "architecture, family, base_model, title, trigger_words, tags, description, record FROM models")
    problems = store.check()
    assert any("models_fts" in p for p in problems) and any("record of" in p for p in problems), problems
    if store.trigram:
        assert any("models_title_trigram" in p for p in problems), problems


def test_writes_are_batched_into_transactions(tmp_path: Path) -> None:
    store = _open(tmp_path / "s.sqlite3")
    records = [_record(f"l{i}.safetensors") for i in range(25)]
    store.apply([(_fp(r), r) for r in records], [], batch_rows=10)
    assert store.transactions == 3 and store.count() == 25
    assert store.check() == []


def test_a_record_that_cannot_be_stored_is_left_out_and_the_rest_written(tmp_path: Path) -> None:
    store = _open(tmp_path / "s.sqlite3")
    bad = _record("bad\udcff.safetensors")  # a file name that is not UTF-8
    good = _record("good.safetensors")
    assert store.apply([(_fp(bad), bad), (_fp(good), good)], [("lora", "gone\udcff.safetensors")]) == 1
    assert list(store.load()) == [("lora", "good.safetensors")]


def test_schema_is_versioned_wal_and_synchronous_normal(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = _open(path)
    store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA page_size").fetchone()[0] == store_module.PAGE_SIZE
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"models_by_family", "models_by_architecture"} <= indexes
    fts = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'models_fts'").fetchone()[0]
    assert "porter unicode61 remove_diacritics 2" in fts
    conn.close()
    store = _open(path)
    assert store._writer().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_each_migration_step_runs_once_and_keeps_the_rows(tmp_path: Path, monkeypatch, caplog) -> None:
    path = tmp_path / "s.sqlite3"
    store = _open(path)
    r = _record("a.safetensors", title="Kept")
    store.apply([(_fp(r), r)], [])
    store.close()
    steps: list[int] = []

    current = store_module.SCHEMA_VERSION

    def step(conn: sqlite3.Connection) -> None:
        steps.append(1)
        conn.execute("ALTER TABLE models ADD COLUMN rating INTEGER NOT NULL DEFAULT 0")

    monkeypatch.setattr(store_module, "MIGRATIONS", [*store_module.MIGRATIONS, step])
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", current + 1)
    with caplog.at_level(logging.INFO):
        store = _open(path)
    assert steps == [1]
    assert store._writer().execute("PRAGMA user_version").fetchone()[0] == current + 1
    assert store.load()[("lora", "a.safetensors")][1].title == "Kept"
    assert any(f"migrated from schema version {current} to {current + 1}" in m.getMessage() for m in caplog.records)
    store.close()
    _open(path).close()
    assert steps == [1]
    assert _aside(tmp_path) == []


def test_a_schema_1_store_keeps_its_rows_with_fingerprints_as_one_signature(tmp_path: Path) -> None:
    """Schema 1 kept the rest of a fingerprint as JSON arrays; the migration to 2 rewrites each
    as reader.signature's string, so an upgrade re-reads nothing; a value that does not decode
    drops that row only."""
    path = tmp_path / "s.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    store_module._migrate_0_to_1(conn)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(f"PRAGMA application_id = {store_module.APPLICATION_ID}")
    conn.execute("INSERT INTO meta (key, value) VALUES ('records', ?)", (store_module.RECORDS_SIGNATURE,))
    sidecars = [["lora-manager", "a.metadata.json", 7], ["civitai-info", "a.civitai.info", 9]]
    good, bad = _record("a.safetensors", title="Kept"), _record("b.safetensors")
    for rec, rest in ((good, json.dumps([sidecars, "a.preview.png"])), (bad, "[not json")):
        conn.execute("INSERT INTO models (kind, name, path, size, mtime_ns, sidecars, architecture, family, "
                     "base_model, title, trigger_words, tags, description, record) "
                     "VALUES (?, ?, ?, 100, 1, ?, '', '', '', ?, '', '', '', ?)",
                     (rec.kind, rec.name, rec.path, rest, rec.title, record_to_json(rec)))
    conn.close()
    store = _open(path)
    loaded = store.load()
    assert list(loaded) == [("lora", "a.safetensors")]
    fingerprint, record = loaded[("lora", "a.safetensors")]
    assert fingerprint == (good.path, 100, 1, signature(
        (("lora-manager", "a.metadata.json", 7), ("civitai-info", "a.civitai.info", 9)), "a.preview.png"))
    assert record.title == "Kept" and store.check() == []
    store.close()


@pytest.mark.parametrize("case", ["newer version", "foreign sqlite", "garbage", "json cache", "torn pages", "fifo"])
def test_an_unusable_file_is_moved_aside_logged_once_and_rebuilt(tmp_path: Path, caplog, case: str) -> None:
    path = tmp_path / "s.sqlite3"
    if case == "newer version":
        store = _open(path)
        r = _record("a.safetensors")
        store.apply([(_fp(r), r)], [])
        store._writer().execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
        store.close()
    elif case == "foreign sqlite":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, data BLOB)")
        conn.execute("INSERT INTO photos (data) VALUES (x'00ff')")
        conn.commit()
        conn.close()
    elif case == "garbage":
        path.write_bytes(os.urandom(5000))
    elif case == "json cache":
        path.write_text('{"format": "intelligent-pipeline/model-index", "version": 1, "entries": []}')
    elif case == "torn pages":
        store = _open(path)
        rs = [_record(f"l{i}.safetensors", description="x" * 500) for i in range(300)]
        store.apply([(_fp(r), r) for r in rs], [])
        store.close()
        data = bytearray(path.read_bytes())
        for offset in range(4096, len(data), 4096):  # every page but the first scribbled over
            data[offset + 8:offset + 200] = os.urandom(192)
        path.write_bytes(bytes(data))
    elif case == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(path)
    before = path.read_bytes() if path.is_file() else None
    with caplog.at_level(logging.WARNING):
        store = _open(path)
        entries = store.load()
    assert entries == {}
    moved = _aside(tmp_path)
    assert [p.name.split(".corrupt-")[0] for p in moved if not p.name.endswith(("-wal", "-shm"))] == ["s.sqlite3"]
    main = [p for p in moved if not p.name.endswith(("-wal", "-shm"))][0]
    if before is not None:
        assert main.read_bytes() == before  # never deleted, never changed
    warnings = [m for m in caplog.records if m.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "moved aside" in warnings[0].getMessage()
    r = _record("new.safetensors")
    store.apply([(_fp(r), r)], [])
    assert list(store.load()) == [("lora", "new.safetensors")] and store.check() == []


def test_a_journal_left_by_a_deleted_store_is_not_replayed_into_a_new_one(tmp_path: Path, caplog) -> None:
    path = tmp_path / "s.sqlite3"
    store = _open(path)
    rs = [_record(f"l{i}.safetensors") for i in range(50)]
    store.apply([(_fp(r), r) for r in rs], [])
    wal = (tmp_path / "s.sqlite3-wal").read_bytes()
    store.close()
    path.unlink()
    (tmp_path / "s.sqlite3-wal").write_bytes(wal)  # someone deleted the database and not its journal
    with caplog.at_level(logging.WARNING):
        store = _open(path)
    assert store.load() == {} and store.check() == []
    assert [p.name.rsplit("-", 1)[-1] for p in _aside(tmp_path)] == ["wal"]
    assert any("without its database" in m.getMessage() for m in caplog.records)


def test_a_folder_at_the_store_path_is_an_error_not_a_move(tmp_path: Path) -> None:
    (tmp_path / "s.sqlite3").mkdir()
    with pytest.raises(OSError):
        _open(tmp_path / "s.sqlite3")
    assert (tmp_path / "s.sqlite3").is_dir() and _aside(tmp_path) == []


def test_records_of_another_reader_version_are_dropped_and_read_again(lib, kit, monkeypatch, caplog) -> None:
    lib.model("loras", "a.safetensors", kit.SD1_LORA_KOHYA)
    lib.index(cache_path=lib.cache_path).scan()
    monkeypatch.setattr(store_module, "RECORDS_SIGNATURE", "2:another-reader")
    with caplog.at_level(logging.INFO):
        index = lib.index(cache_path=lib.cache_path)
    assert index.records() == []
    assert any("records of another version of the reader dropped" in m.getMessage() for m in caplog.records)
    assert index.scan().changed == 1
    assert _aside(Path(lib.cache_path).parent) == []


def test_the_records_signature_follows_the_record_fields() -> None:
    sig = store_module._records_signature()
    assert sig == store_module.RECORDS_SIGNATURE and sig.startswith(f"{store_module.RECORDS_VERSION}:")
    fields = ",".join(f"{f.name}:{f.type}" for f in dataclasses.fields(ModelRecord))
    assert fields.count(":") == len(dataclasses.fields(ModelRecord))  # every field is part of it


# --- incremental scans through the index ----------------------------------------------------------


def test_a_scan_writes_only_the_rows_that_changed(lib, kit) -> None:
    paths = [lib.model("loras", f"sub{i % 3}/l{i}.safetensors", kit.SD1_LORA_KOHYA) for i in range(30)]
    index = lib.index(cache_path=lib.cache_path)
    index.scan()
    store = index._store
    assert store is not None and store.rows_written == 30 and store.transactions == 1
    index.scan()
    index.scan(force=True)  # everything re-read, nothing different: nothing written
    assert store.rows_written == 30
    kit.write_json(paths[3].parent / "l3.metadata.json", {"model_name": "Three"})
    paths[5].unlink()
    lib.model("loras", "new.safetensors", kit.SDXL_LORA_KOHYA)
    assert index.scan().changed == 3
    assert store.rows_written == 33 and store.transactions == 2
    stored = store.load()
    assert stored[("lora", "sub0/l3.safetensors")][1].title == "Three"
    assert ("lora", "sub2/l5.safetensors") not in stored and ("lora", "new.safetensors") in stored
    assert {k: r.to_dict() for k, (_, r) in stored.items()} == {(r.kind, r.name): r.to_dict()
                                                               for r in index.records()}
    assert store.check() == []


def test_a_failed_write_is_caught_up_by_the_next_scan(lib, kit, monkeypatch, caplog) -> None:
    lib.model("loras", "a.safetensors", kit.SD1_LORA_KOHYA)
    index = lib.index(cache_path=lib.cache_path)
    index.scan()
    store = index._store
    assert store is not None
    real = IndexStore.apply

    def locked(self: IndexStore, *args: Any, **kwargs: Any) -> int:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(IndexStore, "apply", locked)
    lib.model("loras", "b.safetensors", kit.SD1_LORA_KOHYA)
    with caplog.at_level(logging.WARNING):
        assert index.scan().changed == 1
        lib.model("loras", "c.safetensors", kit.SD1_LORA_KOHYA)
        index.scan()
    assert len([m for m in caplog.records if "cannot write the index store" in m.getMessage()]) == 1
    monkeypatch.setattr(IndexStore, "apply", real)
    index.scan()  # nothing changed on disk, but the store is behind: it is caught up
    assert sorted(n for _, n in store.load()) == ["a.safetensors", "b.safetensors", "c.safetensors"]
    assert _aside(Path(lib.cache_path).parent) == []


def test_corruption_found_while_running_sets_the_store_aside_and_refills_it(lib, kit, monkeypatch, caplog) -> None:
    for i in range(5):
        lib.model("loras", f"l{i}.safetensors", kit.SD1_LORA_KOHYA)
    index = lib.index(cache_path=lib.cache_path)
    index.scan()
    real = IndexStore.apply
    calls: list[int] = []

    def corrupt(self: IndexStore, *args: Any, **kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.DatabaseError("database disk image is malformed")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(IndexStore, "apply", corrupt)
    lib.model("loras", "new.safetensors", kit.SD1_LORA_KOHYA)
    with caplog.at_level(logging.WARNING):
        assert index.scan().changed == 1
    assert len(_aside(Path(lib.cache_path).parent)) >= 1
    assert any("moved aside" in m.getMessage() for m in caplog.records)
    index.scan()  # the new, empty store gets every row
    again = lib.index(cache_path=lib.cache_path)
    assert len(again.records()) == 6 and again._store is not None and again._store.check() == []


def test_corruption_a_search_meets_is_repaired_by_the_next_scan(lib, kit, monkeypatch, caplog) -> None:
    lib.model("loras", "pink.safetensors", kit.SD1_LORA_KOHYA)
    index = lib.index(cache_path=lib.cache_path)
    index.scan()
    real = IndexStore.search

    def damaged(self: IndexStore, *args: Any, **kwargs: Any) -> Any:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(IndexStore, "search", damaged)
    with caplog.at_level(logging.WARNING):
        assert index.search("pink") == []
    monkeypatch.setattr(IndexStore, "search", real)
    assert _aside(Path(lib.cache_path).parent) == []  # a reader never moves files
    assert index.scan().changed == 0
    assert len(_aside(Path(lib.cache_path).parent)) >= 1
    assert [n for _, n, _ in index.search("pink")] == ["pink.safetensors"]
    assert index._store is not None and index._store.check() == []


def test_readers_never_touch_the_store(lib, kit, monkeypatch) -> None:
    lib.model("loras", "a.safetensors", kit.SD1_LORA_KOHYA)
    index = lib.index(cache_path=lib.cache_path)
    index.scan()

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the store was used on a read")

    for method in ("load", "apply", "diff", "search", "_writer", "_read_connection", "open", "count"):
        monkeypatch.setattr(IndexStore, method, refuse)
    assert [r.name for r in index.records()] == ["a.safetensors"]
    assert index.get("lora", "a.safetensors") is not None
    assert len(index.find(q="a")) == 1 and index.counts()["lora"] == 1 and index.generation == 1


@pytest.mark.timeout(120)
def test_search_while_a_scan_writes(lib, kit) -> None:
    import threading

    for i in range(200):
        p = lib.model("loras", f"l{i}.safetensors", kit.SD1_LORA_KOHYA)
        kit.write_json(p.parent / f"l{i}.metadata.json", {"model_name": f"Pink {i}"})
    index = lib.index(cache_path=lib.cache_path)
    index.scan()
    errors: list[BaseException] = []
    done = threading.Event()

    def scanner() -> None:
        try:
            for round_ in range(4):
                for i in range(200):
                    kit.bump_mtime(lib.models / "loras" / f"l{i}.safetensors", round_ + 1)
                index.scan()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            done.set()

    t = threading.Thread(target=scanner)
    t.start()
    seen = 0
    while not done.is_set():
        hits = index.search("pink", limit=500)
        assert len(hits) == 200, len(hits)  # each read sees one committed state: every row
        seen += 1
    t.join()
    assert errors == [] and seen > 0
    assert index._store is not None and index._store.check() == []


def test_restart_loads_the_snapshot_and_reads_nothing(lib, kit) -> None:
    for i in range(10):
        p = lib.model("loras", f"l{i}.safetensors", kit.SDXL_LORA_KOHYA)
        kit.write_json(p.parent / f"l{i}.metadata.json", {"model_name": f"L{i}", "tags": ["T"]})
    first = lib.index(cache_path=lib.cache_path)
    first.scan()
    first.close()
    again = lib.index(cache_path=lib.cache_path)
    assert [r.to_dict() for r in again.records()] == [r.to_dict() for r in first.records()]
    assert again.scan().changed == 0
    assert again._store is not None and again._store.rows_written == 0


def test_the_old_json_cache_is_left_alone(lib, kit, tmp_path: Path) -> None:
    old = tmp_path / "cache" / "intelligent-pipeline-index.json"
    old.parent.mkdir(parents=True)
    old.write_text('{"format": "intelligent-pipeline/model-index", "version": 1, "entries": []}')
    lib.model("loras", "a.safetensors", kit.SD1_LORA_KOHYA)
    index = lib.index(cache_path=str(tmp_path / "cache" / "intelligent-pipeline-index.sqlite3"))
    assert index.scan().total == 1
    assert old.read_text().startswith('{"format"')
    assert _aside(old.parent) == []


# --- search --------------------------------------------------------------------------------------


@pytest.fixture
def searchable(tmp_path: Path) -> IndexStore:
    store = _open(tmp_path / "s.sqlite3")
    rows = [
        _record("title.safetensors", title="Pink Hair Style", description="a lora", base_model="SDXL 1.0",
                architecture="sdxl"),
        _record("desc.safetensors", title="Other", description="gives everyone pink hair", base_model="SDXL 1.0",
                architecture="sdxl"),
        _record("trigger.safetensors", title="Trig", trigger_words=("pinkhr",), base_model="SD 1.5",
                architecture="sd1"),
        _record("run.safetensors", title="Running Dogs", tags=("dog",), base_model="Pony", architecture="sdxl"),
        _record("cafe.safetensors", title="Café Néon", base_model="Flux.1 D", architecture="flux"),
        _record("cjk.safetensors", title="猫の少女イラスト", base_model="SD 1.5", architecture="sd1"),
        _record("pink_ckpt.safetensors", kind="checkpoint", title="Pink Hair Checkpoint", base_model="SD 1.5",
                architecture="sd1"),
    ]
    store.apply([(_fp(r), r) for r in rows], [])
    return store


def test_search_ranks_title_over_tags_over_description(searchable: IndexStore) -> None:
    results = searchable.search("pink hair", kind="lora")
    names = [n for _, n, _ in results]
    assert names[:2] == ["title.safetensors", "desc.safetensors"]
    scores = [s for _, _, s in results]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[1] > 0
    assert [n for _, n, _ in searchable.search("pinkhr")] == ["trigger.safetensors"]


def test_search_stems_folds_diacritics_and_finds_cjk_substrings(searchable: IndexStore) -> None:
    assert [n for _, n, _ in searchable.search("run")] == ["run.safetensors"]  # porter: running -> run
    assert [n for _, n, _ in searchable.search("CAFE neon")] == ["cafe.safetensors"]
    if store_module.trigram_supported():
        assert searchable.trigram
        assert [n for _, n, _ in searchable.search("少女イラ")] == ["cjk.safetensors"]
        conn = searchable._writer()
        assert conn.execute("SELECT count(*) FROM models_title_trigram").fetchone()[0] == 2  # non-ASCII titles
        renamed = _record("cjk.safetensors", title="Cat Girl")
        other = _record("cjk2.safetensors", title="少女の猫")
        searchable.apply([(_fp(renamed), renamed), (_fp(other), other)], [("lora", "cafe.safetensors")])
        assert [n for _, n, _ in searchable.search("少女イラ")] == []
        assert [n for _, n, _ in searchable.search("少女の猫")] == ["cjk2.safetensors"]
        assert searchable.check() == []


def test_search_filters_by_kind_family_and_architecture(searchable: IndexStore) -> None:
    assert {n for _, n, _ in searchable.search("pink")} == {"title.safetensors", "desc.safetensors",
                                                            "pink_ckpt.safetensors"}
    assert [n for _, n, _ in searchable.search("pink", kind="checkpoint")] == ["pink_ckpt.safetensors"]
    sdxl = base_models.family("SDXL 1.0")
    assert {n for _, n, _ in searchable.search("pink", family=sdxl)} == {"title.safetensors", "desc.safetensors"}
    assert {n for _, n, _ in searchable.search("pink", family=sdxl.upper())} == {"title.safetensors",
                                                                                "desc.safetensors"}
    assert searchable.search("dog", family=sdxl) == []  # Pony is its own family
    assert [n for _, n, _ in searchable.search("dog", architecture="sdxl")] == ["run.safetensors"]
    assert searchable.search("pink", limit=1)[0][1] in ("title.safetensors", "pink_ckpt.safetensors")
    assert searchable.search("pink", limit=0) == [] and searchable.search("") == []
    with pytest.raises(ValueError):
        searchable.search("pink", kind="loras")


def test_filtered_search_uses_the_fts_index_and_primary_key_never_a_table_scan(searchable: IndexStore) -> None:
    conn = searchable._writer()
    tables = ["models_fts"] + (["models_title_trigram"] if searchable.trigram else [])
    for table in tables:
        sql = store_module.match_sql(table, store_module.FTS_WEIGHTS, ["kind", "architecture", "family"])
        steps = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, ('"pink"', "lora", "sdxl", "x", 5))]
        assert f"SCAN {table} VIRTUAL TABLE INDEX" in steps[0], steps  # the MATCH, through the FTS index
        assert any(s.startswith("SEARCH m USING INTEGER PRIMARY KEY") for s in steps), steps
        assert not any(s.split()[:2] == ["SCAN", "m"] for s in steps), steps
    lookup = " | ".join(r[3] for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT name FROM models WHERE family = ? AND kind = ?", ("x", "lora")))
    assert "USING INDEX models_by_family" in lookup, lookup


def test_without_trigram_the_store_still_builds_and_searches(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(store_module, "trigram_supported", lambda: False)
    with caplog.at_level(logging.INFO):
        store = _open(tmp_path / "s.sqlite3")
    assert not store.trigram
    assert any("no trigram tokenizer" in m.getMessage() for m in caplog.records)
    r = _record("cjk.safetensors", title="猫の少女 イラスト")
    store.apply([(_fp(r), r)], [])
    assert [n for _, n, _ in store.search("少女イラ")] == []  # no substring index
    assert [n for _, n, _ in store.search("イラスト")] == ["cjk.safetensors"]  # whole words still match
    assert store.check() == []


def test_the_index_exposes_search(lib, kit) -> None:
    p = lib.model("loras", "x/eyes.safetensors", kit.SDXL_LORA_KOHYA)
    kit.write_json(p.parent / "eyes.metadata.json", {"model_name": "Sparkle Eyes", "base_model": "Illustrious"})
    lib.model("loras", "plain.safetensors", kit.SD1_LORA_KOHYA)
    index = lib.index()  # no store file: an in-memory store
    assert index.search("sparkle") == []  # not scanned yet
    index.scan()
    assert [n for _, n, _ in index.search("sparkle eyes")] == ["x/eyes.safetensors"]
    illustrious = base_models.family("Illustrious")
    assert [n for _, n, _ in index.search("sparkle", family=illustrious, architecture="sdxl")] == [
        "x/eyes.safetensors"]
    assert index.search("sparkle", kind="checkpoint") == []
    with pytest.raises(ValueError, match="unknown model type"):
        index.search("x", kind="bogus")


HOSTILE = ['"', '""', '"pink', 'pink"', "NEAR(pink hair, 2)", "pink AND OR NOT hair", "*", "pink*", "^pink",
           "title:pink", "{title tags}:pink", "(", ")", "-pink", "+", "\x00", "pink\x00hair", "\\", "'", "';--",
           "AND", "OR", "NOT", "\u200b", "\ufeff", "\U0001f600", "a" * 10_000, "pink " * 5_000, "ﬁ", "Ⅻ",
           "e\u0301", "\udcff", "💥💥💥", "\r\n\t"]


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory: pytest.TempPathFactory) -> IndexStore:
    store = _open(tmp_path_factory.mktemp("store") / "s.sqlite3")
    words = ["pink", "hair", "near", "and", "or", "not", "猫の少女", "café", "title", "x"]
    rows = [_record(f"l{i}.safetensors", title=" ".join(words[i % 10:i % 10 + 3]), tags=(words[i % 7],),
                    description=" ".join(words)) for i in range(60)]
    store.apply([(_fp(r), r) for r in rows], [])
    return store


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_search_text_is_never_fts_syntax(fuzz_store: IndexStore, text: str) -> None:
    results = fuzz_store.search(text)
    assert isinstance(results, list) and all(isinstance(s, float) for _, _, s in results)
    if "pink" in text:
        assert results, "the words around the syntax are still searched"


@FUZZ
@given(text=st.text(max_size=400))
def test_search_takes_any_text(fuzz_store: IndexStore, text: str) -> None:
    results = fuzz_store.search(text, kind="lora", family="sd1")
    assert isinstance(results, list) and len(results) <= 50
    query = fts_query(query_terms(text))
    assert query.count('"') % 2 == 0


@FUZZ
@given(text=st.text(alphabet=st.sampled_from('"*^():-+{}[] ANDORNOTpinkhair猫\x00\\'), max_size=200))
def test_search_takes_text_made_of_fts5_syntax(fuzz_store: IndexStore, text: str) -> None:
    assert isinstance(fuzz_store.search(text), list)


def _repeat(unit: str):
    @functools.lru_cache(maxsize=4)
    def make(n: int) -> str:
        return (unit * (n // len(unit) + 1))[:n]
    return make


@pytest.mark.parametrize("unit", ['"', "pink ", "a", "(pink) OR ", "猫の少女", "NEAR(", "\\x"])
def test_search_is_linear_in_the_text(fuzz_store: IndexStore, assert_linear, unit: str) -> None:
    assert_linear(fuzz_store.search, _repeat(unit), f"search on {unit!r}")


def test_query_terms_are_bounded_and_quoted() -> None:
    terms = query_terms(" ".join(f"w{i}" for i in range(1000)) + " " + "y" * 500)
    assert len(terms) == store_module.MAX_QUERY_TERMS and terms[0] == "w0"
    assert query_terms("Pink pink PINK, hair_style") == ["pink", "hair", "style"]
    assert max(len(t) for t in query_terms("z" * 5000)) == store_module.MAX_TERM_CHARS
    assert fts_query(["a", 'b"c']) == '"a" OR "b""c"'
    assert query_terms(None) == []


# --- kill -9 --------------------------------------------------------------------------------------

SCAN_SCRIPT = """
import sys, time
from intelligent_pipeline.metadata import ModelIndex, StaticModelPaths
from intelligent_pipeline.metadata import store

store.BATCH_ROWS = 50  # many transactions, so that kills land between and inside them
real_apply = store.IndexStore.apply

def apply(self, *args, **kwargs):
    print("writing", flush=True)
    t = time.perf_counter()
    try:
        return real_apply(self, *args, **kwargs)
    finally:
        print("written", time.perf_counter() - t, flush=True)

store.IndexStore.apply = apply
index = ModelIndex(StaticModelPaths.from_models_dir(sys.argv[1]), cache_path=sys.argv[2], load_cache_now=False)
print("start", flush=True)
t = time.perf_counter()
index.load_cache()
result = index.scan()
print("done", result.total, time.perf_counter() - t, flush=True)
"""


def _run_script(script: Path, models: Path, db: Path) -> tuple[int, float, float]:
    """(models indexed, seconds the scan took, seconds its store writes took)."""
    out = subprocess.run([sys.executable, str(script), str(models), str(db)], capture_output=True, text=True,
                         timeout=120, check=True)
    lines = [line.split() for line in out.stdout.strip().splitlines()]
    assert lines[-1][0] == "done", out.stdout
    write_s = sum(float(line[1]) for line in lines if line[0] == "written")
    return int(lines[-1][1]), float(lines[-1][2]), write_s


def _wait_for(proc: subprocess.Popen, marker: str, deadline: float) -> bool:
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            return False
        if line.strip() == marker:
            return True
    return False


@POSIX_ONLY
@pytest.mark.timeout(300)
def test_the_store_survives_kill_9_at_any_point_of_a_scan(lib, kit, tmp_path: Path) -> None:
    rnd = random.Random(9)
    key_sets = [kit.SD1_LORA_KOHYA, kit.SDXL_LORA_KOHYA, kit.FLUX_LORA_KOHYA, kit.SDXL_LORA_PEFT]
    models = []
    for i in range(2000):
        p = lib.model("loras", f"g{i % 25}/lora_{i:04d}.safetensors", key_sets[i % 4], {"ss_output_name": f"o{i}"})
        if i % 10 < 8:
            kit.write_json(p.parent / f"lora_{i:04d}.metadata.json",
                           {"model_name": f"Lora {i} pink hair", "tags": ["style", f"t{i % 13}"],
                            "civitai": {"trainedWords": [f"w{i}"], "baseModel": "SDXL 1.0" if i % 4 == 1 else ""}})
        models.append(p)
    script = tmp_path / "scan.py"
    script.write_text(textwrap.dedent(SCAN_SCRIPT), encoding="utf-8")
    total, scan_s, write_s = _run_script(script, lib.models, tmp_path / "timing.sqlite3")
    assert total == 2000

    db = tmp_path / "killed.sqlite3"
    landed = 0
    for attempt in range(8):
        if attempt:  # change the library between runs: every row rewritten, some removed, some added
            for p in models:
                kit.bump_mtime(p, 1 + attempt)
            for p in rnd.sample(models, 10):
                if p.exists():
                    p.unlink()
            for j in range(10):
                lib.model("loras", f"added/a{attempt}_{j}.safetensors", kit.SD1_LORA_KOHYA)
            models = [p for p in models if p.exists()]
        proc = subprocess.Popen([sys.executable, str(script), str(lib.models), str(db)], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        try:
            deadline = time.monotonic() + 60
            marker = "writing" if attempt % 2 else "start"  # half the kills land in the write phase
            assert _wait_for(proc, marker, deadline), "the scan script did not start"
            # a kill within the write phase (as long as the timing run's, 2k rows in 40 transactions)
            time.sleep(rnd.uniform(0, 0.9 * write_s) if marker == "writing" else rnd.uniform(0, scan_s))
            if proc.poll() is None:
                landed += 1
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if not db.exists():
            continue  # killed before the store was created
        store = _open(db)
        assert store.check() == [], f"after kill {attempt}"
        assert _aside(tmp_path) == [], "a killed scan left a store that had to be set aside"
        store.close()
    assert landed >= 5, f"only {landed} kills landed while the scan ran"

    total, _, _ = _run_script(script, lib.models, db)  # the next scan completes
    clean = tmp_path / "clean.sqlite3"
    assert _run_script(script, lib.models, clean)[0] == total
    after, reference = _open(db), _open(clean)
    assert after.check() == []
    got = {k: (fp, r.to_dict()) for k, (fp, r) in after.load().items()}
    want = {k: (fp, r.to_dict()) for k, (fp, r) in reference.load().items()}
    assert len(got) == total and got == want
    index = ModelIndex(StaticModelPaths.from_models_dir(str(lib.models)), cache_path=str(db))
    assert index.scan().changed == 0


# --- postings: the full-text index in memory -------------------------------------------------------

# Words chosen so the tokenizer has work: stems (run/running/runs), folded accents (café/cafe),
# words in several columns and repeated in one, a CJK run, and words in every row (low idf).
_VOCAB = ["pink", "hair", "running", "runs", "run", "café", "cafe", "neon", "light", "lights", "girl", "sdxl",
          "猫の少女", "style", "portrait", "Château", "chateau", "the", "with", "né", "ne", "ça"]


def _random_rows(rng: random.Random, n: int) -> list[ModelRecord]:
    bases = [("SDXL 1.0", "sdxl"), ("SD 1.5", "sd1"), ("Pony", "sdxl"), ("Flux.1 D", "flux")]
    rows = []
    for i in range(n):
        base, arch = rng.choice(bases)
        rows.append(_record(
            f"r{i}/{rng.choice(_VOCAB)}_{i}.safetensors", kind=rng.choice(["lora", "lora", "checkpoint"]),
            title=" ".join(rng.choices(_VOCAB, k=rng.randint(0, 4))),
            trigger_words=tuple(rng.choices(_VOCAB, k=rng.randint(0, 2))),
            tags=tuple(rng.choices(_VOCAB, k=rng.randint(0, 5))),
            description=" ".join(rng.choices(_VOCAB, k=rng.randint(0, 30))), base_model=base, architecture=arch))
    return rows


def _same(got: list[tuple[str, str, float]], want: list[tuple[str, str, float]]) -> bool:
    """The same rows with the same scores (to rounding: bit for bit with this SQLite, but a build
    of it that fuses multiply-adds may differ in the last place), in the same order of scores."""
    if {(k, n) for k, n, _ in got} != {(k, n) for k, n, _ in want}:
        return False
    mine = {(k, n): s for k, n, s in got}
    return (all(math.isclose(mine[(k, n)], s, rel_tol=1e-12) for k, n, s in want)
            and all(math.isclose(a, b, rel_tol=1e-12) for (_, _, a), (_, _, b) in zip(got, want, strict=True)))


def _pair(tmp_path: Path, rows: list[ModelRecord]) -> tuple[IndexStore, IndexStore]:
    """The same rows in a store ranking with postings and one ranking in SQLite (FTS5's bm25)."""
    fast, slow = IndexStore(str(tmp_path / "fast.sqlite3")), IndexStore(str(tmp_path / "slow.sqlite3"), postings=False)
    for store in (fast, slow):
        store.open()
        store.apply([(_fp(r), r) for r in rows], [])
    assert fast.build_postings() is not None
    return fast, slow


@pytest.mark.parametrize("seed", range(4))
def test_postings_rank_exactly_as_fts5_bm25(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    fast, slow = _pair(tmp_path, _random_rows(rng, 300))
    reads = fast.postings_reads
    sdxl = base_models.family("SDXL 1.0")
    for _ in range(60):
        # no CJK and no accented word of 3+ letters: those take FTS5's trigram path ("né" and "ça" do not)
        text = " ".join(rng.sample([w for w in _VOCAB if w.isascii() or len(w) < 3], rng.randint(1, 7)))
        filters = rng.choice([{}, {"kind": "lora"}, {"kind": "lora", "family": sdxl}, {"architecture": "flux"},
                              {"family": "no such family"}])
        got, want = fast.search(text, limit=1000, **filters), slow.search(text, limit=1000, **filters)
        assert _same(got, want), (text, filters)  # every row, every score, the same order
        top_got, top_want = fast.search(text, limit=5, **filters), slow.search(text, limit=5, **filters)
        assert [s for _, _, s in top_got] == [s for _, _, s in top_want]  # (ties at the cut may differ by name)
    assert fast.postings_reads == reads  # one read served every search


def _alone(store: IndexStore, word: str, filters: dict[str, str]) -> list[tuple[str, str, float]]:
    return store.search(word, limit=1000, **filters)


@pytest.mark.parametrize("seed", range(3))
def test_each_adds_the_best_rows_of_every_word_alone(tmp_path: Path, seed: int) -> None:
    """`each`: beside the `limit` best by all the words, every row that is among the `each` best by
    one word alone (strictly above that word's `each`-th score: ties at the cut may go either way),
    in both rankings (the postings and FTS5), filters applied to both."""
    rng = random.Random(seed)
    fast, slow = _pair(tmp_path, _random_rows(rng, 300))
    for _ in range(25):
        words = rng.sample([w for w in _VOCAB if w.isascii() or len(w) < 3], rng.randint(2, 6))
        text = " ".join(words)
        filters = rng.choice([{}, {"kind": "lora"}, {"architecture": "sdxl"}])
        limit, each = rng.choice([(3, 4), (10, 2), (1, 8)])
        for store in (fast, slow):
            got = store.search(text, limit=limit, each=each, **filters)
            names = {(k, n) for k, n, _ in got}
            top = store.search(text, limit=limit, **filters)
            assert {(k, n) for k, n, s in top if s > top[-1][2]} <= names
            for word in words:
                ranked = _alone(store, word, filters)
                if len(ranked) > each:
                    cut = ranked[each - 1][2]
                    assert {(k, n) for k, n, s in ranked if s > cut} <= names, (text, word, filters)
                else:
                    assert {(k, n) for k, n, _ in ranked} <= names, (text, word, filters)
            rows = {key: record for key, (_, record) in store.load().items()}
            for key in names:  # every row found has the filter values
                assert all(getattr(rows[key], c) == v for c, v in filters.items()), (key, filters)
        assert {(k, n) for k, n, _ in fast.search(text, limit=1000, each=each, **filters)} == {
            (k, n) for k, n, _ in slow.search(text, limit=1000, each=each, **filters)}
    # at most MAX_EACH per word, and nothing without words
    assert fast.search("", limit=5, each=10**9) == []
    assert len(fast.search("pink", limit=1, each=10**9)) <= 1 + store_module.MAX_EACH + postings_module.MAX_TIES


def test_the_index_says_which_generation_its_search_answers_for(lib, kit, monkeypatch) -> None:
    lib.model("loras", "a.safetensors", kit.SD1_LORA_KOHYA)
    index = lib.index(cache_path=lib.cache_path)
    assert index.search_generation == index.generation == 0  # empty, as its store
    index.scan()
    assert index.generation == 1 and index.search_generation == 1
    lib.model("loras", "b.safetensors", kit.SD1_LORA_KOHYA)
    seen: list[tuple[int, int | None]] = []
    real_write = ModelIndex._write_store

    def write(self, state, to_write, gone):  # what a plan between the swap and the write sees
        seen.append((self.generation, self.search_generation))
        real_write(self, state, to_write, gone)

    monkeypatch.setattr(ModelIndex, "_write_store", write)
    index.scan()
    assert seen == [(2, 1)] and index.search_generation == 2
    again = lib.index(cache_path=lib.cache_path)  # a restart: the stored rows are the snapshot
    assert again.generation == 1 and again.search_generation == 1
    index.close()
    assert index.search_generation is None


def test_postings_follow_every_write(tmp_path: Path) -> None:
    rng = random.Random(7)
    rows = _random_rows(rng, 80)
    fast, slow = _pair(tmp_path, rows)
    added = _record("new.safetensors", title="Zebra Stripes", tags=("zebra",))
    changed = dataclasses.replace(rows[0], title="Zebra Pink")
    for store in (fast, slow):
        store.apply([(_fp(added), added), (_fp(changed), changed)], [(rows[1].kind, rows[1].name)])
    assert fast._postings is not None and fast._postings.version != fast._version  # stale: FTS5 ranks
    assert _same(fast.search("zebra pink hair", limit=1000), slow.search("zebra pink hair", limit=1000))
    assert fast.build_postings() is not None and fast._postings.version == fast._version
    got = fast.search("zebra pink hair", limit=1000)
    assert _same(got, slow.search("zebra pink hair", limit=1000))
    names = [n for _, n, _ in got]
    assert "new.safetensors" in names and rows[0].name in names and rows[1].name not in names


def test_a_file_store_reads_postings_in_the_background_and_searches_meanwhile(tmp_path: Path) -> None:
    rows = _random_rows(random.Random(3), 120)
    fast, slow = _pair(tmp_path, rows)
    fast.apply([(_fp(rows[5]), dataclasses.replace(rows[5], title="Quokka"))], [])
    first = fast.search("quokka")  # stale postings: FTS5 answers, and a thread reads them again
    assert [n for _, n, _ in first] == [rows[5].name]
    thread = fast._postings_thread
    assert thread is not None and thread.name == "intelligent-postings"
    thread.join(30)
    assert fast._postings is not None and fast._postings.version == fast._version
    assert fast.search("quokka") == first


def test_an_in_memory_store_reads_postings_on_the_first_search(tmp_path: Path) -> None:
    store = IndexStore(":memory:")
    store.open()
    rows = _random_rows(random.Random(4), 50)
    store.apply([(_fp(r), r) for r in rows], [])
    assert store.postings_reads == 0
    results = store.search("pink hair")
    assert store.postings_reads == 1 and store._postings is not None and store._postings.version == store._version
    assert results and store._postings_thread is None


def test_postings_that_cannot_be_read_cost_one_line_and_fts5_ranks(tmp_path: Path, monkeypatch, caplog) -> None:
    rows = _random_rows(random.Random(5), 60)
    fast, slow = _pair(tmp_path, rows)
    fast._postings = None

    def broken_worker(*args: Any, **kwargs: Any) -> Any:
        raise WorkerFailed("exit status 1: boom")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise sqlite3.OperationalError("disk I/O error")
    monkeypatch.setattr(PostingsProcess, "read", broken_worker)
    monkeypatch.setattr(store_module, "read_postings", broken)
    with caplog.at_level(logging.INFO):
        assert fast.build_postings() is None
        for _ in range(3):
            assert _same(fast.search("pink girl", limit=1000), slow.search("pink girl", limit=1000))
    assert sum("a worker could not: exit status 1: boom" in r.getMessage() for r in caplog.records) == 1
    assert sum("cannot read the full-text index into memory" in r.getMessage() for r in caplog.records) == 1
    assert fast._postings_thread is None  # not retried until the next write


def test_without_a_worker_the_postings_are_read_in_process_and_rank_the_same(tmp_path: Path, monkeypatch) -> None:
    rows = _random_rows(random.Random(15), 80)
    fast, slow = _pair(tmp_path, rows)  # (read by a worker)
    by_worker = fast._postings
    assert by_worker is not None and fast.postings_reads == 1 and not fast._in_process
    monkeypatch.setattr(postings_process.sys, "executable", "")
    fast._postings = None
    in_process = fast.build_postings()
    assert in_process is not None and fast._in_process
    for name in ("starts", "docs", "freqs", "lengths", "rowids"):
        assert np.array_equal(getattr(in_process, name), getattr(by_worker, name)), name
    assert in_process.terms == by_worker.terms and in_process.values == by_worker.values
    assert _same(fast.search("pink hair neon", limit=1000), slow.search("pink hair neon", limit=1000))


def test_postings_cross_processes_as_plain_arrays_and_nothing_else_loads() -> None:
    from intelligent_pipeline.metadata.postings import from_bytes, to_bytes
    store = IndexStore(":memory:")
    store.open()
    rows = _random_rows(random.Random(16), 40)
    store.apply([(_fp(r), r) for r in rows], [])
    p = store.build_postings()
    assert p is not None
    back = from_bytes(to_bytes(p), 7)
    assert back.version == 7 and back.terms == p.terms and back.values == p.values
    assert back.search(["pink", "hair"], {"kind": "lora"}, 50) == p.search(["pink", "hair"], {"kind": "lora"}, 50)
    import io
    import zipfile

    def archive(**changes: Any) -> bytes:
        with np.load(io.BytesIO(to_bytes(p)), allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
        arrays.update(changes)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()
    with pytest.raises(ValueError, match="allow_pickle"):
        from_bytes(archive(rowids=np.asarray([object()] * p.rows, dtype=object)), 1)  # a pickle inside: not loaded
    deflated = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(to_bytes(p))) as src, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
    damaged = bytearray(deflated.getvalue())
    damaged[200:260] = b"\xff" * 60
    bad_shapes = [archive(docs=p.docs.astype(np.float64)), archive(docs=np.asarray(3, dtype=np.int32)),
                  archive(starts=p.starts[::-1].copy()), archive(docs=p.docs + p.rows),
                  archive(counts=np.asarray([len(p.terms) + 1, 1, 1, 1], dtype=np.int64))]
    for bad in (b"", b"not a zip", to_bytes(p)[:-100], bytes(damaged), *bad_shapes):
        with pytest.raises(ValueError, match="not postings"):
            from_bytes(bad, 1)


def test_a_search_during_a_read_of_the_postings_does_not_wait_for_it(tmp_path: Path, monkeypatch) -> None:
    rows = _random_rows(random.Random(12), 60)
    fast, slow = _pair(tmp_path, rows)
    fast.apply([(_fp(rows[0]), dataclasses.replace(rows[0], title="Okapi"))], [])
    slow.apply([(_fp(rows[0]), dataclasses.replace(rows[0], title="Okapi"))], [])
    reading, release = threading.Event(), threading.Event()
    real = PostingsProcess.read

    def slow_read(self: PostingsProcess, *args: Any, **kwargs: Any) -> Any:
        reading.set()
        assert release.wait(30)
        return real(self, *args, **kwargs)
    monkeypatch.setattr(PostingsProcess, "read", slow_read)
    fast.read_postings_in_background()
    assert reading.wait(10)
    t = time.perf_counter()
    got = fast.search("okapi pink", limit=1000)  # FTS5 ranks: the read holds its lock, not this search
    assert time.perf_counter() - t < 2.0 and _same(got, slow.search("okapi pink", limit=1000))
    release.set()
    thread = fast._postings_thread
    assert thread is not None
    thread.join(60)
    assert fast._postings is not None and fast._postings.version == fast._version


def test_closing_the_store_kills_a_running_worker_without_a_warning(tmp_path: Path, monkeypatch, caplog) -> None:
    rows = _random_rows(random.Random(13), 30)
    fast, _ = _pair(tmp_path, rows)
    fast.apply([(_fp(rows[1]), dataclasses.replace(rows[1], title="Kiwi"))], [])
    monkeypatch.setattr(postings_process, "_BOOT", "import time\ntime.sleep(60)\n")  # a worker that hangs
    with caplog.at_level(logging.INFO):
        fast.read_postings_in_background()
        deadline = time.monotonic() + 10
        while fast._worker._proc is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fast._worker._proc is not None
        t = time.perf_counter()
        fast.close()
        thread = fast._postings_thread
        assert thread is not None
        thread.join(30)
        assert time.perf_counter() - t < 10 and not thread.is_alive()
    assert fast._worker.stopped and not fast._in_process  # stopped, not failed: no in-process read after it
    assert not [r for r in caplog.records if "could not" in r.getMessage() or "cannot read" in r.getMessage()]


def test_query_words_become_the_tokens_fts5_looks_for() -> None:
    from intelligent_pipeline.metadata.postings import QueryTokens
    tokens = QueryTokens(store_module.TOKENIZER)
    assert tokens.tokens(["running", "château", "lights", "猫の少女", "x"]) == [
        ("run",), ("chateau",), ("light",), ("猫の少女",), ("x",)]
    assert tokens.tokens(["running"]) == [("run",)]  # remembered


def test_the_index_reads_its_postings_when_asked_and_ranks_as_sqlite(lib, kit, tmp_path: Path) -> None:
    for i, title in enumerate(["Pink Hair", "Neon Pink City", "Hair Light", "Rain"]):
        p = lib.model("loras", f"l{i}.safetensors", kit.SDXL_LORA_KOHYA)
        kit.write_json(p.parent / f"l{i}.metadata.json", {"model_name": title, "base_model": "SDXL 1.0"})
    path = tmp_path / "cache" / "index.sqlite3"
    index = lib.index(cache_path=str(path))
    index.scan()
    store = index._store
    assert store is not None and index.prepare_search() is True
    reads = store.postings_reads
    sqlite_only = IndexStore(str(path), postings=False)
    for text in ["pink hair", "neon city rain", "light"]:
        got = index.search(text, kind="lora")
        assert got and _same(got, sqlite_only.search(text, kind="lora"))
    assert store.postings_reads == reads and store._postings is not None and store._postings.version == store._version


@pytest.mark.parametrize("fetch_rows", [1, 3, 64])
def test_postings_read_in_small_steps_are_the_same(tmp_path: Path, monkeypatch, fetch_rows: int) -> None:
    """Token instances are read FETCH_ROWS at a time; a posting (and a term) may straddle steps."""
    from intelligent_pipeline.metadata import postings as postings_module
    rows = _random_rows(random.Random(11), 40)
    rows.append(_record("many.safetensors", title="pink", description="pink " * 50))  # one posting of 51 hits
    fast, slow = _pair(tmp_path, rows)
    whole = fast._postings
    monkeypatch.setattr(postings_module, "FETCH_ROWS", fetch_rows)
    fast._postings = None
    stepped = fast.build_postings()
    assert whole is not None and stepped is not None
    assert stepped.terms == whole.terms
    for name in ("starts", "docs", "freqs", "lengths", "rowids"):
        assert np.array_equal(getattr(stepped, name), getattr(whole, name)), name
    assert _same(fast.search("pink hair girl", limit=1000), slow.search("pink hair girl", limit=1000))


def test_rows_tied_at_the_limit_are_cut_by_name(tmp_path: Path) -> None:
    rows = [_record(f"m{i:03d}.safetensors", title="Tied Title") for i in reversed(range(20))]
    fast, slow = _pair(tmp_path, rows)
    assert [n for _, n, _ in fast.search("tied", limit=5)] == [f"m{i:03d}.safetensors" for i in range(5)]
    assert len({s for _, _, s in slow.search("tied", limit=5)}) == 1


def test_filters_must_be_strings(tmp_path: Path) -> None:
    fast, _ = _pair(tmp_path, _random_rows(random.Random(14), 10))
    for bad in ({"architecture": ["sdxl"]}, {"family": 5}):
        with pytest.raises(TypeError, match="must be a string"):
            fast.search("pink", **bad)  # type: ignore[arg-type]


def test_a_stop_while_the_worker_starts_is_not_lost(tmp_path: Path, monkeypatch) -> None:
    fast, _ = _pair(tmp_path, _random_rows(random.Random(17), 20))
    worker = PostingsProcess()
    started: list[Any] = []
    real_popen = postings_process.subprocess.Popen

    def popen_then_stop(*args: Any, **kwargs: Any) -> Any:
        proc = real_popen(*args, **kwargs)
        started.append(proc)
        worker.stop()  # the store is closed between the start and the worker's registration
        return proc
    monkeypatch.setattr(postings_process.subprocess, "Popen", popen_then_stop)
    with pytest.raises(WorkerFailed, match="stopped"):
        worker.read(fast.path, "models_fts", store_module.FTS_COLUMNS, store_module.FTS_WEIGHTS, 1)
    assert worker.stopped and started and started[0].poll() is not None  # killed and reaped


def test_the_worker_imports_nothing_from_the_store_folder(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    marker = tmp_path / "imported"
    for name in ("json", "numpy", "sqlite3", "io", "math"):  # shadows a worker would import if it looked here
        (folder / f"{name}.py").write_text(f"open({str(marker)!r}, 'a').write({name!r})\n", encoding="utf-8")
    store = IndexStore(str(folder / "s.sqlite3"))
    store.open()
    rows = _random_rows(random.Random(18), 20)
    store.apply([(_fp(r), r) for r in rows], [])
    assert store.build_postings() is not None and not store._in_process
    assert not marker.exists()


def test_the_worker_never_creates_a_store_that_went_away(tmp_path: Path) -> None:
    from intelligent_pipeline.metadata.postings import worker_main
    gone = tmp_path / "gone.sqlite3"
    with pytest.raises(sqlite3.OperationalError):
        worker_main([str(gone), "models_fts", "[]", "[]"])
    assert not gone.exists()


def test_a_frozen_host_reads_postings_in_process_for_good(tmp_path: Path, monkeypatch) -> None:
    rows = _random_rows(random.Random(19), 30)
    fast, slow = _pair(tmp_path, rows)
    monkeypatch.setattr(postings_process.sys, "frozen", True, raising=False)
    fast._postings = None
    assert fast.build_postings() is not None and fast._in_process
    assert _same(fast.search("pink neon", limit=1000), slow.search("pink neon", limit=1000))
