"""GGUF metadata: the keys that matter are read; hostile headers give HeaderError, never another error
or a big allocation (issue 5, defect 6)."""
from __future__ import annotations

import os
import struct
import tracemalloc
from pathlib import Path

import pytest

from intelligent_pipeline.metadata import HeaderError
from intelligent_pipeline.metadata.gguf_header import MAX_ARRAY_DEPTH, MAX_READ_BYTES, read_gguf_metadata


def s(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def gguf(kv: bytes, n_kv: int) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, 0, n_kv) + kv


def nested(depth: int) -> bytes:
    """The value of a key that is an array of arrays ... `depth` arrays deep, the innermost empty."""
    return struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * (depth - 1) + struct.pack("<IQ", 4, 0)


ARCH = s("general.architecture") + struct.pack("<I", 8) + s("flux")


def write(tmp_path: Path, data: bytes, name: str = "m.gguf") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_scalars_strings_and_skipped_arrays(tmp_path: Path) -> None:
    kv = (s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + s("a") + s("b")
          + s("general.file_type") + struct.pack("<II", 4, 7) + ARCH)
    assert read_gguf_metadata(write(tmp_path, gguf(kv, 3))) == {"general.file_type": 7, "general.architecture": "flux"}


def test_arrays_nested_within_the_limit_are_skipped(tmp_path: Path) -> None:
    kv = s("nested") + nested(MAX_ARRAY_DEPTH) + ARCH
    assert read_gguf_metadata(write(tmp_path, gguf(kv, 2))) == {"general.architecture": "flux"}


@pytest.mark.parametrize("depth", [MAX_ARRAY_DEPTH + 1, 5000, 200_000])
def test_arrays_nested_too_deep_are_a_header_error(tmp_path: Path, depth: int) -> None:
    with pytest.raises(HeaderError, match="nested"):
        read_gguf_metadata(write(tmp_path, gguf(s("nested") + nested(depth) + ARCH, 2)))


def test_hostile_counts_and_lengths_allocate_nothing_big(tmp_path: Path) -> None:
    files = {
        "huge_uint8_array": s("t") + struct.pack("<IIQ", 9, 0, 2**62),
        "huge_string_array": s("t") + struct.pack("<IIQ", 9, 8, 2**63),
        "huge_string": s("general.architecture") + struct.pack("<IQ", 8, 2**63),
        "huge_key": struct.pack("<Q", 2**64 - 1),
        "many_empty_arrays": s("t") + struct.pack("<IIQ", 9, 9, 2**40) + struct.pack("<IQ", 4, 0) * 1000,
    }
    tracemalloc.start()
    try:
        for name, kv in files.items():
            try:
                out = read_gguf_metadata(write(tmp_path, gguf(kv, 1), f"{name}.gguf"))
                assert "general.architecture" not in out
            except HeaderError:
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * MAX_READ_BYTES


@pytest.mark.parametrize("data", [
    b"", b"GGU", b"GGUF", b"GGUF\x03\x00", b"NOPE" + b"\0" * 20,
    gguf(b"", 2**64 - 1),  # claims keys that are not there
    gguf(s("general.architecture") + struct.pack("<I", 99), 1),  # unknown value type
    gguf(struct.pack("<Q", 2) + b"\xff\xfe" + struct.pack("<I", 4) + b"\0\0\0\0", 1),  # key not UTF-8
    b"GGUF" + struct.pack("<IQQ", 1, 0, 0),  # version 1
])
def test_broken_files_are_header_errors(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(HeaderError):
        read_gguf_metadata(write(tmp_path, data))


@pytest.mark.timeout(20)
def test_non_regular_files_are_header_errors(tmp_path: Path) -> None:
    (tmp_path / "dir.gguf").mkdir()
    with pytest.raises(HeaderError, match="not a regular file"):
        read_gguf_metadata(str(tmp_path / "dir.gguf"))
    with pytest.raises(HeaderError, match="cannot read"):
        read_gguf_metadata(str(tmp_path / "missing.gguf"))
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.gguf")
        with pytest.raises(HeaderError, match="FIFO"):
            read_gguf_metadata(str(tmp_path / "fifo.gguf"))
