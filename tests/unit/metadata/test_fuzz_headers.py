"""Property-based tests of the header readers (issue 5): safetensors and GGUF, on arbitrary bytes and
on structured headers with hostile values. Each returns its parsed header or raises HeaderError,
never anything else. Derandomised and bounded, so `make test` stays short and repeatable; files are
written to the session folder of the `fuzz_files` fixture (conftest.py).
"""
from __future__ import annotations

import json
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intelligent_pipeline.metadata import HeaderError, read_header
from intelligent_pipeline.metadata.gguf_header import read_gguf_metadata
from intelligent_pipeline.metadata.safetensors_header import SafetensorsHeader, parse_header

FUZZ = settings(derandomize=True, max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUZZ_FILES = settings(FUZZ, max_examples=100)


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=5), max_leaves=25)


# --- headers -----------------------------------------------------------------------------------------

@FUZZ_FILES
@given(st.binary(max_size=300))
def test_safetensors_reader_on_arbitrary_bytes(fuzz_files, data: bytes) -> None:
    path = fuzz_files.write("any.safetensors", data)
    try:
        assert isinstance(read_header(path), SafetensorsHeader)
    except HeaderError as e:
        assert len(str(e).splitlines()) <= 1


@FUZZ
@given(st.binary(max_size=300))
def test_header_parse_on_arbitrary_bytes(raw: bytes) -> None:
    try:
        parse_header(raw)
    except HeaderError:
        pass


tensor_entries = st.fixed_dictionaries({}, optional={"dtype": json_values | st.sampled_from(["F16", "BF16"]),
                                                     "shape": json_values | st.lists(st.integers(-2, 2**70), max_size=4),
                                                     "data_offsets": json_values
                                                     | st.lists(st.integers(-2, 2**66), min_size=2, max_size=2)})
headers = st.dictionaries(st.text(max_size=10), tensor_entries | json_values, max_size=4).flatmap(
    lambda d: st.one_of(st.just(d), json_values.map(lambda meta: {**d, "__metadata__": meta})))


@FUZZ
@given(headers)
def test_header_parse_on_hostile_structured_headers(header: dict[str, Any]) -> None:
    try:
        raw = json.dumps(header).encode()
    except ValueError:
        return
    try:
        parsed = parse_header(raw)
    except HeaderError:
        return
    assert all(isinstance(d, str) and all(type(x) is int and x >= 0 for x in s) for d, s in parsed.tensors.values())
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.metadata.items())


@FUZZ_FILES
@given(st.binary(max_size=300))
def test_gguf_reader_on_arbitrary_bytes(fuzz_files, data: bytes) -> None:
    for prefix in (b"", b"GGUF" + struct.pack("<I", 3)):
        try:
            assert isinstance(read_gguf_metadata(fuzz_files.write("any.gguf", prefix + data)), dict)
        except HeaderError as e:
            assert len(str(e).splitlines()) <= 1


gguf_values = st.one_of(
    st.tuples(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12]), st.binary(min_size=8, max_size=8)).map(
        lambda t: struct.pack("<I", t[0]) + t[1][:{0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1}.get(t[0], 8)]),
    st.binary(max_size=20).map(lambda b: struct.pack("<IQ", 8, len(b)) + b),
    st.tuples(st.integers(0, 13), st.integers(0, 2**64 - 1), st.binary(max_size=40)).map(
        lambda t: struct.pack("<IIQ", 9, t[0], t[1]) + t[2]),
    st.integers(1, 3000).map(lambda depth: struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * depth),
    st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=12)).map(lambda t: struct.pack("<I", t[0]) + t[1]),
)
gguf_keys = st.one_of(st.text(max_size=20).map(lambda t: struct.pack("<Q", len(t.encode())) + t.encode()),
                      st.binary(max_size=30).map(lambda b: struct.pack("<Q", len(b)) + b),
                      st.integers(0, 2**64 - 1).map(lambda n: struct.pack("<Q", n)))


@FUZZ_FILES
@given(st.lists(st.tuples(gguf_keys, gguf_values), max_size=6), st.integers(0, 2**64 - 1))
def test_gguf_reader_on_hostile_structured_headers(fuzz_files, kvs: list[tuple[bytes, bytes]], n_kv: int) -> None:
    body = b"".join(k + v for k, v in kvs)
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, n_kv if n_kv % 2 else len(kvs)) + body
    try:
        out = read_gguf_metadata(fuzz_files.write("structured.gguf", data))
    except HeaderError:
        return
    assert all(isinstance(k, str) for k in out)
