"""Every parser in metadata/ that sees untrusted bytes or text runs in linear time (issue 5): headers
(safetensors JSON, GGUF), base-model names, sizes, hashes, usage tips, trainer tag frequencies.

Inputs are built to hurt each one (long runs of what it loops over). `assert_linear` (tests/conftest.py)
times 16 KB against 128 KB, best of 3: linear code gives a ratio of ~8, quadratic ~64; the limit is 16.
"""
from __future__ import annotations

import json
import struct
from typing import Any, Callable

import pytest

from intelligent_pipeline.metadata import base_models
from intelligent_pipeline.metadata.gguf_header import read_gguf_metadata
from intelligent_pipeline.metadata.safetensors_header import HeaderError, parse_header
from intelligent_pipeline.metadata.sidecars import _size, parse_usage_tips, sha256_hex, training_tags


def repeat(prefix: str, unit: str, suffix: str = "") -> Callable[[int], str]:
    def make(n: int) -> str:
        return prefix + unit * max(1, (n - len(prefix) - len(suffix)) // len(unit)) + suffix
    return make


def test_base_model_normalisation_is_linear(assert_linear) -> None:
    for make, label in ((repeat("sdxl", " ", "x"), "spaces"), (repeat("", "\t \n"), "mixed whitespace"),
                        (repeat("pony", " v"), "words")):
        assert_linear(base_models.family, make, f"family {label}")
        assert_linear(lambda t: base_models.from_trainer_metadata({"ss_base_model_version": t,
                                                                   "modelspec.architecture": t}), make,
                      f"from_trainer_metadata {label}")


def test_size_and_hash_parsing_are_linear(assert_linear) -> None:
    assert_linear(_size, repeat("", " ", "1x"), "_size leading spaces")
    assert_linear(_size, repeat("12", " ", "x"), "_size spaces before x")
    assert_linear(_size, repeat("", "1"), "_size digits")
    assert_linear(_size, repeat("12x", " ", "z"), "_size spaces after x")
    assert_linear(sha256_hex, repeat("", "0"), "sha256_hex hex digits")
    assert_linear(sha256_hex, repeat("", "0x"), "sha256_hex 0x")
    assert_linear(sha256_hex, repeat("", " "), "sha256_hex spaces")


def _tips(text: str) -> Any:
    try:
        return parse_usage_tips(text)
    except ValueError:
        return None


def test_usage_tips_and_training_tags_are_linear(assert_linear) -> None:
    assert_linear(_tips, repeat("", "["), "usage_tips brackets")
    assert_linear(_tips, repeat('{"strength": ', "1"), "usage_tips digits")

    def tag_frequency(n: int) -> str:
        return json.dumps({"d": {f"tag{i}:1.{i}": i for i in range(n // 16)}})
    assert_linear(training_tags, tag_frequency, "training_tags many tags")


def _header(fn: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def run(raw: bytes) -> Any:
        try:
            return fn(raw)
        except HeaderError:
            return None
    return run


HEADER_INPUTS: dict[str, Callable[[int], bytes]] = {
    "brackets": lambda n: b"[" * n,
    "long_shape": lambda n: b'{"a": {"dtype": "F16", "shape": [' + b"1," * (n // 2) + b'1], "data_offsets": [0, 2]}}',
    "many_tensors": lambda n: json.dumps({f"t{i}": {"dtype": "F16", "shape": [1], "data_offsets": [2 * i, 2 * i + 2]}
                                          for i in range(n // 60)}).encode(),
    "escaped_key": lambda n: b'{"' + b"\\u0041" * (n // 6) + b'": {"dtype": "F16", "shape": []}}',
    "spaces": lambda n: b"{" + b" " * n + b"}",
    "unterminated_string": lambda n: b'{"' + b"a" * n,
    "metadata_values": lambda n: json.dumps({"__metadata__": {f"k{i}": i for i in range(n // 12)}}).encode(),
}


@pytest.mark.parametrize("shape", sorted(HEADER_INPUTS))
def test_header_json_parse_is_linear(assert_linear, shape: str) -> None:
    assert_linear(_header(parse_header), HEADER_INPUTS[shape], f"parse_header {shape}")


def test_gguf_reader_is_linear(assert_linear, tmp_path) -> None:
    folder = str(tmp_path)

    def file_of(data: bytes, n: int) -> str:
        path = f"{folder}/{n}.gguf"
        with open(path, "wb") as f:
            f.write(data)
        return path

    def strings(n: int) -> str:
        count = n // 9
        body = struct.pack("<Q", 1) + b"t" + struct.pack("<IIQ", 9, 8, count) + (struct.pack("<Q", 1) + b"x") * count
        return file_of(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + body, n)

    def nested(n: int) -> str:
        depth = n // 12
        body = struct.pack("<Q", 1) + b"t" + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * depth
        return file_of(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + body, n)

    def read(path: str) -> Any:
        try:
            return read_gguf_metadata(path)
        except HeaderError:
            return None
    assert_linear(read, strings, "gguf string array")
    assert_linear(read, nested, "gguf nested arrays")
