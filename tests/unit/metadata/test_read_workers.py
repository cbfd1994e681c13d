"""Big scans read files in worker processes (metadata/read_workers.py): the same records as reading
in-process, bad files logged once in this process, and in-process reading wherever workers cannot
be used or go away. WORKER_MIN_FILES is lowered so small libraries take the worker path."""
from __future__ import annotations

import logging
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from intelligent_pipeline.metadata import ModelRecord, read_workers
from intelligent_pipeline.metadata import index as index_module

POSIX_ONLY = pytest.mark.skipif(os.name == "nt", reason="file names that are not UTF-8")


def _library(lib, kit) -> None:
    """Every kind of file a scan meets: sidecars of several tools, none, a broken one, bad headers."""
    for i, tensors in enumerate([kit.SD1_LORA_KOHYA, kit.SDXL_LORA_KOHYA, kit.SDXL_LORA_PEFT, kit.FLUX_LORA_KOHYA,
                                 kit.FLUX_LORA_DIFFUSERS, kit.SD3_LORA_COMFY] * 3):
        p = lib.model("loras", f"set{i % 3}/l{i}.safetensors", tensors)
        if i % 3 == 0:
            kit.write_json(p.parent / f"l{i}.metadata.json", {"model_name": f"Lora {i}", "base_model": "SDXL 1.0",
                                                              "tags": ["cat", f"t{i}"]})
        elif i % 3 == 1:
            kit.write_json(p.parent / f"l{i}.civitai.info", {"name": f"Civit {i}", "trainedWords": [f"w{i}"],
                                                             "baseModel": "Pony"})
    for name, tensors in (("sd1.safetensors", kit.SD1_CHECKPOINT), ("xl.safetensors", kit.SDXL_CHECKPOINT)):
        lib.model("checkpoints", name, tensors)
    broken = lib.model("loras", "broken.safetensors", kit.SD1_LORA_KOHYA)
    (broken.parent / "broken.metadata.json").write_text('{"model_name": "X", "tags": [', encoding="utf-8")
    (lib.folder("checkpoints") / "bad.safetensors").write_bytes(struct.pack("<Q", 10_000) + b'{"a": 1}')


def _scan(lib, monkeypatch, workers: bool) -> list[ModelRecord]:
    monkeypatch.setattr(read_workers, "WORKER_MIN_FILES", 1 if workers else 10**9)
    index = lib.index()
    index.scan()
    return index.records()


def _same(a: list[ModelRecord], b: list[ModelRecord]) -> bool:
    return a == b and all(x.extra == y.extra for x, y in zip(a, b, strict=True))


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch) -> None:
    monkeypatch.setattr(index_module, "CHUNK_FILES", 4)  # several chunks in flight, even here
    monkeypatch.setattr(read_workers, "worker_count", lambda: 2)  # workers even on a one-core runner


def test_workers_give_the_records_reading_in_process_gives(lib, kit, monkeypatch, caplog) -> None:
    _library(lib, kit)
    here = _scan(lib, monkeypatch, workers=False)
    with caplog.at_level(logging.INFO):
        there = _scan(lib, monkeypatch, workers=True)
    assert any("read by 2 worker processes" in r.getMessage() for r in caplog.records)
    assert len(there) == 22 and _same(here, there)
    bad = next(r for r in there if r.name == "bad.safetensors")
    assert bad.problems and "truncated" in bad.problems[0]


def test_a_bad_file_read_by_a_worker_is_logged_once_here_under_the_packages_logger(lib, kit, monkeypatch,
                                                                                   caplog) -> None:
    _library(lib, kit)
    with caplog.at_level(logging.INFO):
        _scan(lib, monkeypatch, workers=True)
    lines = [r for r in caplog.records if "broken.metadata.json" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert lines[0].name.startswith("intelligent_pipeline.metadata.")
    assert len([r for r in caplog.records if "bad.safetensors" in r.getMessage()]) == 1


def test_where_workers_cannot_start_the_scan_reads_in_process(lib, kit, monkeypatch, caplog) -> None:
    _library(lib, kit)
    here = _scan(lib, monkeypatch, workers=False)
    monkeypatch.setattr(read_workers.sys, "frozen", True, raising=False)  # a frozen host: no interpreter
    with caplog.at_level(logging.INFO):
        there = _scan(lib, monkeypatch, workers=True)
    assert _same(here, there)
    assert any("reading in this process from file 1 of 22" in r.getMessage() for r in caplog.records)


def test_a_worker_that_dies_mid_scan_leaves_the_rest_to_this_process(lib, kit, monkeypatch, caplog) -> None:
    _library(lib, kit)
    here = _scan(lib, monkeypatch, workers=False)
    real_ask = read_workers._Worker.ask
    asked: list[int] = []

    def dies_on_the_third(self: Any, request: bytes) -> list[Any]:
        asked.append(1)
        if len(asked) == 3:
            self.proc.kill()
            self.proc.wait()
        return real_ask(self, request)
    monkeypatch.setattr(read_workers._Worker, "ask", dies_on_the_third)
    with caplog.at_level(logging.INFO):
        there = _scan(lib, monkeypatch, workers=True)
    assert _same(here, there)  # every file once, none lost or doubled
    assert any("reading in this process from file" in r.getMessage() for r in caplog.records)


@POSIX_ONLY
def test_a_name_json_cannot_carry_is_read_in_process(lib, kit, monkeypatch) -> None:
    _library(lib, kit)
    folder = os.fsencode(str(lib.folder("loras")))
    with open(os.path.join(folder, b"caf\xe9.safetensors"), "wb") as f:  # Latin-1 bytes: not UTF-8
        kit_file = Path(str(lib.model("loras", "plain.safetensors", kit.SD1_LORA_KOHYA)))
        f.write(kit_file.read_bytes())
    here = _scan(lib, monkeypatch, workers=False)
    there = _scan(lib, monkeypatch, workers=True)
    assert _same(here, there) and any(r.name == os.fsdecode(b"caf\xe9.safetensors") for r in there)


def test_the_worker_protocol_answers_each_file_with_its_record_and_log_lines(lib, kit) -> None:
    import io

    from intelligent_pipeline.metadata import jsonio
    from intelligent_pipeline.metadata.cache import record_from_json

    _library(lib, kit)
    index = lib.index()
    files = [f for f in index._walk().values() if f is not None]
    files.sort(key=lambda f: f.name)
    out = io.BytesIO()
    lines = [jsonio.dumps([read_workers.describe_file(f) for f in files[:5]]) + b"\n",
             jsonio.dumps([read_workers.describe_file(f) for f in files[5:]]) + b"\n"]
    assert read_workers.worker_main(iter(lines), out) == 0
    answers = [jsonio.loads(line) for line in out.getvalue().splitlines()]
    assert [len(a) for a in answers] == [5, len(files) - 5]
    records = [record_from_json(data) for a in answers for data, _ in a]
    assert [r.name for r in records] == [f.name for f in files]
    logged = [line for a in answers for _, lines_ in a for line in lines_]
    assert any("broken.metadata.json" in message for _, _, message in logged)
