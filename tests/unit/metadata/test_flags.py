"""The user's own flags file (contracts.md, `POST models/flags`): versioned, atomic, thread-safe, and it
never loses what is there (an unreadable file is set aside, never overwritten)."""
from __future__ import annotations

import json
import logging
import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from intelligent_pipeline.metadata import flags as flags_mod
from intelligent_pipeline.metadata.flags import (
    FLAGS_FILE,
    FlaggedIndex,
    Flags,
    FlagsError,
    UserFlags,
    apply_flags,
    is_favorite,
)
from intelligent_pipeline.metadata.records import ModelRecord

FIXED_TIME = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC


def _flags(tmp_path: Path) -> UserFlags:
    return UserFlags(str(tmp_path / "default" / FLAGS_FILE), clock=lambda: FIXED_TIME)


def _doc(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "default" / FLAGS_FILE).read_text(encoding="utf-8"))


def test_no_file_means_no_flags_and_a_write_creates_the_versioned_file(tmp_path: Path) -> None:
    f = _flags(tmp_path)
    assert f.get("lora", "a.safetensors") == Flags() and f.all() == {}
    assert f.set("lora", "sub\\a.safetensors", excluded=True) == Flags(excluded=True)
    assert _doc(tmp_path) == {"version": 1, "models": {"lora": {"sub/a.safetensors": {"excluded": True}}}}
    again = _flags(tmp_path)  # a restart reads what was written; either separator names the model
    assert again.get("lora", "sub/a.safetensors") == Flags(excluded=True)
    assert again.get("lora", "sub\\a.safetensors") == Flags(excluded=True)
    assert again.get("checkpoint", "sub/a.safetensors") == Flags()


def test_flags_turn_on_and_off_and_the_last_one_off_removes_the_entry(tmp_path: Path) -> None:
    f = _flags(tmp_path)
    f.set("checkpoint", "m.safetensors", favorite=True)
    assert f.set("checkpoint", "m.safetensors", excluded=True) == Flags(excluded=True, favorite=True)
    assert f.set("checkpoint", "m.safetensors", favorite=False) == Flags(excluded=True)
    assert _doc(tmp_path)["models"] == {"checkpoint": {"m.safetensors": {"excluded": True}}}
    f.set("checkpoint", "m.safetensors", excluded=False)
    assert _doc(tmp_path)["models"] == {}
    assert f.all() == {}


def test_keys_this_version_does_not_know_are_kept_when_the_file_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "default" / FLAGS_FILE
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 1, "note": "mine", "models": {
        "lora": {"a.safetensors": {"excluded": True, "rating": 5}, "weird": "not an entry"},
        "upscaler": {"x.pth": {"favorite": True}}}}), encoding="utf-8")
    f = _flags(tmp_path)
    assert f.all() == {("lora", "a.safetensors"): Flags(excluded=True)}  # the kind we do not know is skipped
    f.set("lora", "b.safetensors", favorite=True)
    f.set("lora", "a.safetensors", excluded=False)
    doc = _doc(tmp_path)
    assert doc["note"] == "mine" and doc["models"]["upscaler"] == {"x.pth": {"favorite": True}}
    assert doc["models"]["lora"] == {"a.safetensors": {"rating": 5}, "weird": "not an entry",
                                     "b.safetensors": {"favorite": True}}


@pytest.mark.parametrize("content", [b'{"version": 1, "models": {"lora": ', b"\xff\xfe garbage",
                                     b'{"version": 2, "models": {}}', b'["version", 1]',
                                     b'{"version": "1", "models": {}}', b'{"version": 1, "models": []}'])
def test_an_unreadable_file_is_set_aside_never_overwritten(tmp_path: Path, caplog, content: bytes) -> None:
    path = tmp_path / "default" / FLAGS_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    f = _flags(tmp_path)
    with caplog.at_level(logging.WARNING, logger="intelligent_pipeline.metadata.flags"):
        assert f.get("lora", "a.safetensors") == Flags()
        assert f.get("lora", "b.safetensors") == Flags()  # one log line, not one per read
        assert f.problem
        assert path.read_bytes() == content  # reading never touches it
        f.set("lora", "a.safetensors", excluded=True)
    aside = tmp_path / "default" / f"{FLAGS_FILE}.corrupt-20260101-000000"
    assert aside.read_bytes() == content
    assert _doc(tmp_path) == {"version": 1, "models": {"lora": {"a.safetensors": {"excluded": True}}}}
    lines = [r.getMessage() for r in caplog.records]
    assert len([m for m in lines if "is not used" in m]) == 1, lines
    assert len([m for m in lines if "was moved to" in m]) == 1, lines
    assert f.problem is None
    # a second corrupt file the same second gets a name of its own
    path.write_bytes(content)
    f.set("lora", "b.safetensors", favorite=True)
    assert (tmp_path / "default" / f"{FLAGS_FILE}.corrupt-20260101-000000-2").read_bytes() == content


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_or_folder_at_the_path_is_never_opened_or_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "default" / FLAGS_FILE
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    f = _flags(tmp_path)
    assert f.get("lora", "a.safetensors") == Flags()  # returns at once: a FIFO would block open()
    assert "FIFO" in (f.problem or "")
    f.set("lora", "a.safetensors", excluded=True)
    assert stat.S_ISFIFO(os.lstat(tmp_path / "default" / f"{FLAGS_FILE}.corrupt-20260101-000000").st_mode)
    assert _doc(tmp_path)["models"]["lora"] == {"a.safetensors": {"excluded": True}}


def test_a_file_over_the_size_limit_is_not_read(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "default" / FLAGS_FILE
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 1, "models": {"lora": {"a": {"excluded": True}}}}), encoding="utf-8")
    monkeypatch.setattr(flags_mod, "MAX_FLAGS_BYTES", 16)
    f = _flags(tmp_path)
    assert f.all() == {} and "too large" in (f.problem or "")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_a_rewrite_keeps_the_files_mode(tmp_path: Path) -> None:
    f = _flags(tmp_path)
    f.set("lora", "a.safetensors", excluded=True)
    path = tmp_path / "default" / FLAGS_FILE
    os.chmod(path, 0o600)
    f.set("lora", "b.safetensors", excluded=True)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not [p for p in os.listdir(path.parent) if p.endswith(".tmp")]


def test_an_edit_on_disk_is_seen_without_a_restart(tmp_path: Path) -> None:
    f = _flags(tmp_path)
    f.set("lora", "a.safetensors", excluded=True)
    before = f.version
    path = tmp_path / "default" / FLAGS_FILE
    path.write_text(json.dumps({"version": 1, "models": {"vae": {"v.safetensors": {"favorite": True}}}}) + " " * 7,
                    encoding="utf-8")
    assert f.all() == {("vae", "v.safetensors"): Flags(favorite=True)}
    assert f.version != before
    os.unlink(path)
    assert f.all() == {}


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"kind": "spaceship", "name": "a"}, "type"),
    ({"kind": "lora", "name": ""}, "name"),
    ({"kind": "lora", "name": "x" * 5000}, "name"),
    ({"kind": "lora", "name": "bad\udcff.safetensors"}, "name"),
    ({"kind": "lora", "name": "a", "excluded": "yes"}, "excluded"),
    ({"kind": "lora", "name": "a", "favorite": 1}, "favorite"),
])
def test_bad_requests_name_the_field_and_write_nothing(tmp_path: Path, kwargs: dict, field: str) -> None:
    f = _flags(tmp_path)
    kind, name = kwargs.pop("kind"), kwargs.pop("name")
    with pytest.raises(FlagsError) as e:
        f.set(kind, name, **kwargs)
    assert e.value.field == field
    assert not (tmp_path / "default" / FLAGS_FILE).exists()


def test_concurrent_writers_lose_no_flag(tmp_path: Path) -> None:
    f = _flags(tmp_path)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(20):
                f.set("lora", f"t{t}/m{i}.safetensors", favorite=True)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(_doc(tmp_path)["models"]["lora"]) == 120
    assert len(_flags(tmp_path).all()) == 120


def _record(name: str, kind: str = "lora", excluded: bool = False, **extra) -> ModelRecord:
    return ModelRecord(name=name, kind=kind, path=f"/m/{name}", excluded=excluded, extra=dict(extra))


class _Index:
    def __init__(self, records: list[ModelRecord]):
        self._records = records
        self.generation = 3

    def records(self, kind: str | None = None) -> list[ModelRecord]:
        return [r for r in self._records if kind is None or r.kind == kind]

    def get(self, kind: str, name: str) -> ModelRecord | None:
        return next((r for r in self._records if (r.kind, r.name) == (kind, name)), None)

    def find(self, type: str | None = None, q: str | None = None) -> list[ModelRecord]:
        return [r for r in self.records(type) if not q or q in r.name]

    def counts(self) -> dict[str, int]:
        return {"lora": len(self._records)}

    def candidates(self, limit: int) -> tuple[ModelRecord, ...]:  # a method FlaggedIndex does not name
        return tuple(self._records[:limit])

    def first(self) -> ModelRecord:
        return self._records[0]


def test_the_flagged_index_gives_the_planner_records_with_the_users_flags(tmp_path: Path) -> None:
    f = _flags(tmp_path)
    index = FlaggedIndex(_Index([_record("a.safetensors"), _record("b.safetensors", excluded=True),
                                 _record("c.safetensors", favorite=True)]), f)
    gen = index.generation
    assert [r.excluded for r in index.records("lora")] == [False, True, False]
    f.set("lora", "a.safetensors", excluded=True)
    f.set("lora", "b.safetensors", favorite=True)
    assert index.generation != gen  # node results cached on the library are re-run
    records = {r.name: r for r in index.records()}
    assert records["a.safetensors"].excluded and records["b.safetensors"].excluded
    assert is_favorite(records["b.safetensors"]) and is_favorite(records["c.safetensors"])  # sidecar's counts
    assert not is_favorite(records["a.safetensors"])
    got = index.get("lora", "a.safetensors")
    assert got is not None and got.excluded
    assert index.get("lora", "zzz") is None
    assert [r.excluded for r in index.find(type="lora", q="a.")] == [True]
    assert index.counts() == {"lora": 3}  # anything else is the index's own
    # any other method giving records gives them flagged too (a store's candidate lookup)
    assert [r.excluded for r in index.candidates(2)] == [True, True] and isinstance(index.candidates(1), tuple)
    assert index.first().excluded
    # a sidecar's `exclude: true` still counts when the user's flag is off
    f.set("lora", "b.safetensors", excluded=False, favorite=False)
    assert index.get("lora", "b.safetensors").excluded  # type: ignore[union-attr]


def test_apply_flags_leaves_an_unflagged_record_as_it_is() -> None:
    r = _record("a.safetensors")
    assert apply_flags(r, Flags()) is r
    assert apply_flags(r, Flags(excluded=True)).excluded
    assert r.excluded is False and "favorite" not in r.extra  # records are never changed in place
    assert is_favorite(apply_flags(r, Flags(favorite=True))) and "favorite" not in r.extra
