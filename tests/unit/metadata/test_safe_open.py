"""Only regular files are opened, and every read is bounded (issue 5, defects 2 and 4).

FIFOs, devices, sockets and folders are refused before any blocking call; a file swapped for a
FIFO between the stat and the open is caught by the fstat of the opened descriptor.
"""
from __future__ import annotations

import io
import os
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

import pytest

from intelligent_pipeline.metadata.safe_open import (
    FileTooLarge,
    NotRegularFile,
    open_flags,
    open_regular,
    read_limited,
    read_regular,
)

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no os.mkfifo on this platform")
needs_dev_zero = pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero on this platform")
needs_symlinks = pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="symlinks need privileges")


def in_thread(fn: Callable[[], Any], timeout: float = 10.0) -> dict[str, Any]:
    """Run `fn` in a daemon thread; fail (instead of hanging the run) if it has not returned in time."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"still blocked after {timeout}s"
    return box


def test_a_regular_file_is_read_up_to_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "a.metadata.json"
    path.write_bytes(b"abc")
    assert read_regular(str(path), 10) == b"abc"
    assert read_regular(str(path), 3) == b"abc"  # exactly the limit is fine
    with pytest.raises(FileTooLarge, match="over the 2-byte limit"):
        read_regular(str(path), 2)
    with open_regular(str(path)) as f:
        assert f.read() == b"abc"
    (tmp_path / "empty.json").write_bytes(b"")
    assert read_regular(str(tmp_path / "empty.json"), 10) == b""


@needs_symlinks
def test_a_symlink_to_a_regular_file_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_bytes(b"{}")
    os.symlink(tmp_path / "real.json", tmp_path / "link.json")
    assert read_regular(str(tmp_path / "link.json"), 10) == b"{}"


@needs_fifo
@pytest.mark.parametrize("via_symlink", [False, True])
def test_a_fifo_is_refused_without_blocking(tmp_path: Path, via_symlink: bool) -> None:
    fifo = tmp_path / "x.metadata.json"
    os.mkfifo(fifo)
    target = fifo
    if via_symlink:
        target = tmp_path / "link.metadata.json"
        os.symlink(fifo, target)
    for call in (lambda: read_regular(str(target), 100), lambda: open_regular(str(target))):
        box = in_thread(call)
        assert isinstance(box.get("error"), NotRegularFile), box
        assert "FIFO" in str(box["error"])


@needs_dev_zero
@needs_symlinks
def test_a_symlink_to_a_device_is_refused(tmp_path: Path) -> None:
    os.symlink("/dev/zero", tmp_path / "zero.civitai.info")
    box = in_thread(lambda: read_regular(str(tmp_path / "zero.civitai.info"), 100))
    assert isinstance(box.get("error"), NotRegularFile) and "device" in str(box["error"])


def test_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dir.safetensors").mkdir()
    with pytest.raises(NotRegularFile, match="folder"):
        open_regular(str(tmp_path / "dir.safetensors"))


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no unix sockets")
def test_a_socket_is_refused() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp" if os.path.isdir("/tmp") else None) as d:
        path = os.path.join(d, "s.json")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            with pytest.raises(NotRegularFile, match="socket"):
                read_regular(path, 10)
        finally:
            sock.close()


@needs_symlinks
def test_missing_files_broken_and_looping_links_are_os_errors(tmp_path: Path) -> None:
    os.symlink(tmp_path / "nowhere", tmp_path / "broken.json")
    os.symlink(tmp_path / "self.json", tmp_path / "self.json")
    for name in ("missing.json", "broken.json", "self.json"):
        with pytest.raises(OSError) as info:
            read_regular(str(tmp_path / name), 10)
        assert not isinstance(info.value, (NotRegularFile, FileTooLarge))


@needs_fifo
def test_a_file_swapped_for_a_fifo_after_the_stat_is_caught_by_fstat(tmp_path: Path, monkeypatch) -> None:
    regular = tmp_path / "regular.json"
    regular.write_bytes(b"{}")
    fifo = tmp_path / "swapped.json"
    os.mkfifo(fifo)
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda path, *a, **k: real_stat(regular))  # the stat saw a regular file
    box = in_thread(lambda: read_regular(str(fifo), 100))
    assert isinstance(box.get("error"), NotRegularFile), box  # open did not block; fstat said FIFO


class Endless(io.RawIOBase):
    """A stream that never ends (like /dev/zero), counting what it hands out."""

    def __init__(self) -> None:
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = len(buffer)
        buffer[:n] = b"\0" * n
        self.served += n
        return n


def test_a_bounded_read_of_an_endless_stream_stops_after_the_limit() -> None:
    stream = Endless()
    with pytest.raises(FileTooLarge):
        read_limited(stream, 1000)  # type: ignore[arg-type]
    assert stream.served <= 1001
    big = Endless()
    with pytest.raises(FileTooLarge):
        read_limited(big, 5 * 1024 * 1024)  # type: ignore[arg-type]
    assert big.served <= 5 * 1024 * 1024 + 1


@needs_dev_zero
def test_a_bounded_read_of_dev_zero_stops() -> None:
    with open("/dev/zero", "rb", buffering=0) as f:
        with pytest.raises(FileTooLarge):
            read_limited(f, 3 * 1024 * 1024)  # type: ignore[arg-type]


def test_open_flags_use_only_what_the_platform_has(monkeypatch) -> None:
    monkeypatch.delattr(os, "O_NONBLOCK", raising=False)
    monkeypatch.delattr(os, "O_BINARY", raising=False)
    assert open_flags() == os.O_RDONLY  # Windows has no O_NONBLOCK, POSIX no O_BINARY
    monkeypatch.setattr(os, "O_NONBLOCK", 0o4000, raising=False)
    monkeypatch.setattr(os, "O_BINARY", 0x8000, raising=False)
    assert open_flags() == os.O_RDONLY | 0o4000 | 0x8000


def test_regular_files_open_with_those_flags(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "a.json").write_bytes(b"{}")
    seen: list[int] = []
    real_open = os.open

    def spy(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        seen.append(flags)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    assert read_regular(str(tmp_path / "a.json"), 10) == b"{}"
    assert seen == [open_flags()]
    if hasattr(os, "O_NONBLOCK"):
        assert seen[0] & os.O_NONBLOCK
