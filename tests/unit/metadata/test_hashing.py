"""Lazy hashing (issue 6, point 5): streamed SHA256 of regular files only, cached by (path, size,
mtime_ns), bulk jobs in the background with progress events, a gate and cancellation."""
from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from intelligent_pipeline.metadata import hashing
from intelligent_pipeline.metadata.hashing import FileChanged, Hasher, MemoryHashCache, autov2, sha256_file
from intelligent_pipeline.metadata.safe_open import NotRegularFile

POSIX_ONLY = pytest.mark.skipif(os.name == "nt", reason="FIFOs and /dev/zero as POSIX has them")


class Events:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, event: str, data: dict[str, Any]) -> None:
        self.sent.append((event, data))


def _file(path: Path, size: int, seed: int = 0) -> Path:
    block = hashlib.sha256(str(seed).encode()).digest() * 4096
    with open(path, "wb") as f:
        left = size
        while left:
            f.write(block[:min(left, len(block))])
            left -= min(left, len(block))
    return path


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096 + 5])
def test_hash_matches_hashlib_across_chunk_boundaries(tmp_path: Path, monkeypatch, size: int) -> None:
    monkeypatch.setattr(hashing, "CHUNK_BYTES", 4096)
    path = _file(tmp_path / "m.safetensors", size, seed=size)
    sha, st = sha256_file(str(path))
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    assert st.st_size == size


def test_autov2_is_the_first_ten_hex_digits_upper_case() -> None:
    assert autov2("ab" * 32) == "ABABABABAB"


@POSIX_ONLY
def test_only_regular_files_are_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    link = tmp_path / "zero.safetensors"
    link.symlink_to("/dev/zero")
    for path in (fifo, link, tmp_path):
        started = time.monotonic()
        with pytest.raises(NotRegularFile):
            sha256_file(str(path))
        assert time.monotonic() - started < 1.0


def test_a_file_that_grows_while_read_has_no_hash(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(hashing, "CHUNK_BYTES", 4096)
    path = _file(tmp_path / "downloading.safetensors", 3 * 4096)

    def append(_n: int) -> None:
        with open(path, "ab") as f:
            f.write(b"x" * 4096)
    with pytest.raises(FileChanged):
        sha256_file(str(path), on_bytes=append)


def test_a_hash_is_cached_until_the_file_changes(tmp_path: Path, monkeypatch) -> None:
    path = _file(tmp_path / "m.safetensors", 10_000)
    reads: list[str] = []
    real = hashing.sha256_file

    def counting(p: str, **kw: Any) -> Any:
        reads.append(p)
        return real(p, **kw)
    monkeypatch.setattr(hashing, "sha256_file", counting)
    hasher = Hasher(MemoryHashCache())
    assert hasher.cached(str(path)) is None
    first = hasher.sha256(str(path))
    assert hasher.sha256(str(path)) == first and hasher.cached(str(path)) == first
    assert len(reads) == 1
    _file(path, 10_000, seed=7)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert hasher.cached(str(path)) is None
    second = hasher.sha256(str(path))
    assert second != first and second == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(reads) == 2


@POSIX_ONLY
def test_a_bulk_job_hashes_every_file_and_reports_the_rest(tmp_path: Path) -> None:
    good = [_file(tmp_path / f"m{i}.safetensors", 5000 + i, seed=i) for i in range(12)]
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    missing = tmp_path / "gone.safetensors"
    events = Events()
    job = Hasher(events=events, workers=3).start([str(p) for p in (*good, fifo, missing)] + [str(good[0])])
    assert job.wait(10)
    assert job.total == 14 and job.done == 14 and not job.cancelled
    assert job.results == {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in good}
    assert set(job.errors) == {str(fifo), str(missing)}
    assert "FIFO" in job.errors[str(fifo)]
    assert job.bytes_done == sum(p.stat().st_size for p in good)
    assert events.sent[0][1]["task"] == "hash" and events.sent[0][1]["done"] == 0
    assert events.sent[-1] == ("intelligent.progress", {"task": "hash", "done": 14, "total": 14,
                                                        "message": "hashed 12 files, 2 failed"})


def test_a_closed_gate_holds_the_job_and_cancel_stops_it(tmp_path: Path) -> None:
    files = [_file(tmp_path / f"m{i}.safetensors", 20_000, seed=i) for i in range(4)]
    open_gate = threading.Event()
    job = Hasher(workers=2, gate=open_gate.is_set).start([str(p) for p in files])
    time.sleep(0.6)
    assert job.running and job.bytes_done == 0 and job.results == {}
    job.cancel()
    assert job.wait(5)
    assert job.cancelled and job.results == {} and job.errors == {}


def test_an_opened_gate_lets_the_job_finish(tmp_path: Path) -> None:
    files = [_file(tmp_path / f"m{i}.safetensors", 20_000, seed=i) for i in range(4)]
    open_gate = threading.Event()
    job = Hasher(workers=2, gate=open_gate.is_set).start([str(p) for p in files])
    time.sleep(0.3)
    assert job.bytes_done == 0
    open_gate.set()
    assert job.wait(5)
    assert len(job.results) == 4 and not job.cancelled


def test_a_cached_file_is_not_read_again_by_a_bulk_job(tmp_path: Path, monkeypatch) -> None:
    path = _file(tmp_path / "m.safetensors", 5000)
    cache = MemoryHashCache()
    hasher = Hasher(cache)
    sha = hasher.sha256(str(path))
    monkeypatch.setattr(hashing, "sha256_file", lambda *a, **k: pytest.fail("read a cached file again"))
    job = hasher.start([str(path)])
    assert job.wait(5)
    assert job.results == {str(path): sha} and job.bytes_done == 0
