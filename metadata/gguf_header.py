"""Read the leading key/value metadata of a GGUF file (quantized Flux, SD3, Wan, T5 ...).

GGUF is plain data like safetensors, so reading it is safe; the one key that matters to the
index is `general.architecture` (ComfyUI-GGUF writes `flux`, `sd1`, `sdxl`, `sd3`, `aura`,
`wan`, `ltxv`, `hyvid`, ...; llama.cpp text encoders write `t5`, `t5encoder`, `llama`, ...).
It comes first, so the reader stops after a bounded number of bytes and keys: text-encoder
files carry multi-megabyte tokenizer arrays further on, which are skipped, never held.
"""
from __future__ import annotations

import struct
from typing import IO, Any

from .safe_open import NotRegularFile, describe, open_regular
from .safetensors_header import HeaderError

MAGIC = b"GGUF"
MAX_KEYS = 64  # general.* keys come first; stop long before the tokenizer tables
MAX_READ_BYTES = 4 * 1024 * 1024  # every count and length is checked against this before reading
MAX_STRING_BYTES = 64 * 1024
MAX_ARRAY_DEPTH = 8  # converters write flat arrays; deeper nesting is a crafted file

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class _Budget:
    """A file reader that refuses to read past MAX_READ_BYTES in total."""

    def __init__(self, f: IO[bytes]):
        self._f = f
        self.used = 0

    def read(self, n: int) -> bytes:
        if n < 0 or self.used + n > MAX_READ_BYTES:
            raise _Stop
        data = self._f.read(n)
        if len(data) < n:
            raise HeaderError("truncated GGUF metadata")
        self.used += n
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]


class _Stop(Exception):
    """The read budget ran out: return what was read so far."""


def read_gguf_metadata(path: str) -> dict[str, Any]:
    """Scalar and string metadata from the start of a GGUF file; arrays are skipped."""
    try:
        with open_regular(path) as f:
            r = _Budget(f)
            if r.read(4) != MAGIC:
                raise HeaderError("not a GGUF file (bad magic)")
            version = r.unpack("<I")
            if version < 2:
                raise HeaderError(f"GGUF version {version} is not supported")
            r.unpack("<Q")  # tensor count
            n_kv = r.unpack("<Q")
            out: dict[str, Any] = {}
            try:
                for _ in range(min(n_kv, MAX_KEYS)):
                    key = _string(r)
                    value = _value(r, r.unpack("<I"))
                    if value is not None:
                        out[key] = value
            except _Stop:
                pass
            return out
    except _Stop:
        raise HeaderError("GGUF header is larger than the read limit") from None
    except NotRegularFile as e:
        raise HeaderError(str(e)) from e
    except OSError as e:
        raise HeaderError(f"cannot read: {describe(e)}") from e
    except (struct.error, UnicodeDecodeError) as e:
        raise HeaderError(f"corrupt GGUF metadata: {e}") from e


def _string(r: _Budget) -> str:
    n = r.unpack("<Q")
    if n > MAX_STRING_BYTES:
        raise _Stop
    return r.read(n).decode("utf-8")


def _value(r: _Budget, vtype: int, depth: int = 0) -> Any:
    if vtype in _SCALARS:
        return r.unpack(_SCALARS[vtype])
    if vtype == _STRING:
        return _string(r)
    if vtype == _ARRAY:
        _skip_array(r, depth + 1)
        return None
    raise HeaderError(f"unknown GGUF value type {vtype}")


def _skip_array(r: _Budget, depth: int) -> None:
    """Skip an array without holding it: scalars in one bounded read, other elements one by one
    (each costs at least 8 bytes of the budget, so a hostile count ends at the budget)."""
    if depth > MAX_ARRAY_DEPTH:
        raise HeaderError(f"GGUF arrays nested more than {MAX_ARRAY_DEPTH} deep")
    etype, count = r.unpack("<I"), r.unpack("<Q")
    if etype in _SCALARS:
        r.read(count * struct.calcsize(_SCALARS[etype]))
        return
    for _ in range(count):
        _value(r, etype, depth)
