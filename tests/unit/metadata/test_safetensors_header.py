"""Header reading: real headers parse; truncated, hostile and non-JSON headers give HeaderError."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from intelligent_pipeline.metadata import HeaderError, read_header
from intelligent_pipeline.metadata.safetensors_header import MAX_HEADER_BYTES


def _raw(path: Path, length: int, body: bytes) -> Path:
    path.write_bytes(struct.pack("<Q", length) + body)
    return path


def test_reads_tensors_and_metadata_without_the_data(tmp_path: Path, kit) -> None:
    path = tmp_path / "m.safetensors"
    size = kit.write_sparse_safetensors(str(path), {"a.weight": ("F16", (4, 8)), "b": ("F32", (3,))},
                                        {"ss_output_name": "my lora"})
    header = read_header(path)
    assert header.tensors == {"a.weight": ("F16", (4, 8)), "b": ("F32", (3,))}
    assert header.metadata == {"ss_output_name": "my lora"}
    assert header.data_size == 4 * 8 * 2 + 3 * 4
    assert header.expected_file_size == size


def test_large_sparse_file_reads_only_the_header(tmp_path: Path, kit) -> None:
    path = tmp_path / "big.safetensors"
    kit.write_sparse_safetensors(str(path), {"w": ("F32", (256, 1024, 1024))})  # a 1 GiB hole
    assert read_header(path).tensors["w"] == ("F32", (256, 1024, 1024))


def test_header_length_beyond_the_file_is_truncated(tmp_path: Path) -> None:
    path = _raw(tmp_path / "t.safetensors", 4096, b'{"a": {"dtype": "F16", "shape": [1], "data_offsets": [0, 2]}}')
    with pytest.raises(HeaderError, match="truncated"):
        read_header(path)


def test_hostile_header_length_is_refused_before_reading(tmp_path: Path) -> None:
    path = _raw(tmp_path / "h.safetensors", 2**62, b"{}")
    with pytest.raises(HeaderError, match="limit"):
        read_header(path)
    path = _raw(tmp_path / "h2.safetensors", MAX_HEADER_BYTES + 1, b"{}")
    with pytest.raises(HeaderError, match="limit"):
        read_header(path)


@pytest.mark.parametrize(("body", "message"), [
    (b"this is not json at all!", "not valid JSON"),
    (b'[1, 2, 3]', "expected an object"),
    (b'"a string"', "expected an object"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b'{"w": {"dtype": "F16", "shape": ["x"]}}', "shape"),
    (b'{"w": [1, 2]}', "not an object"),
    (b'{"w": {"dtype": "F16", "shape": [2], "data_offsets": [8, 4]}}', "data_offsets"),
    (b"[" * 100_000 + b"]" * 100_000, "JSON"),
])
def test_bad_headers_raise_header_error(tmp_path: Path, body: bytes, message: str) -> None:
    path = _raw(tmp_path / "bad.safetensors", len(body), body)
    with pytest.raises(HeaderError, match=message):
        read_header(path)


def test_short_and_empty_files(tmp_path: Path) -> None:
    (tmp_path / "empty.safetensors").write_bytes(b"")
    (tmp_path / "short.safetensors").write_bytes(b"\x01\x02")
    (tmp_path / "zero.safetensors").write_bytes(struct.pack("<Q", 0))
    for name in ("empty", "short", "zero"):
        with pytest.raises(HeaderError):
            read_header(tmp_path / f"{name}.safetensors")


def test_missing_file_is_a_header_error(tmp_path: Path) -> None:
    with pytest.raises(HeaderError, match="cannot read"):
        read_header(tmp_path / "nope.safetensors")


def test_non_string_metadata_values_are_kept_as_text(tmp_path: Path) -> None:
    body = json.dumps({"__metadata__": {"ss_network_dim": 16, "ok": "x", "nested": {"a": 1}}}).encode()
    header = read_header(_raw(tmp_path / "m.safetensors", len(body), body))
    assert header.metadata == {"ss_network_dim": "16", "ok": "x"}
    assert header.tensors == {}


def test_parsing_leaves_the_garbage_collector_alone(tmp_path: Path, kit, monkeypatch) -> None:
    """The parser runs inside ComfyUI's process: it must never switch the cyclic GC off for all
    of it (issue 6), not even for a moment, and a collection may run in the middle of a parse."""
    import gc

    calls: list[str] = []
    monkeypatch.setattr(gc, "disable", lambda: calls.append("disable"))
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    collections: list[int] = []

    def seen(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])
    path = tmp_path / "m.safetensors"
    kit.write_sparse_safetensors(str(path), {f"t{i}": ("F16", (4, 4)) for i in range(5000)})
    gc.callbacks.append(seen)
    try:
        header = read_header(path)
        with pytest.raises(HeaderError):
            read_header(_raw(tmp_path / "bad.safetensors", 3, b"[1]"))
    finally:
        gc.callbacks.remove(seen)
    assert len(header.tensors) == 5000
    assert calls == []
    assert collections, "10,000 new containers and not one collection: the GC was off during the parse"
