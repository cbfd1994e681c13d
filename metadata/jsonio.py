"""JSON in and out: orjson (several times faster on big headers and caches) else the stdlib."""
from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    orjson = None  # type: ignore[assignment]


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ValueError (or RecursionError) on bad input, like json.loads."""
    if orjson is not None:
        return orjson.loads(data)
    return json.loads(data)


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON; raises TypeError/ValueError for what JSON cannot hold."""
    if orjson is not None:
        return orjson.dumps(obj)
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
