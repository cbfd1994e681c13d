"""Records as JSON, for the index store (metadata/store.py): encoded and decoded by following
`dataclasses.fields(ModelRecord)` and the fields' type hints, so a field added to the record is
stored and read back without a change here.

Decoding is strict about the shape of what it rebuilds (a tuple field gets a tuple, a nested
record its dataclass, a float a float) and tolerant about fields: unknown ones are dropped,
missing ones take their defaults. Anything else is a ValueError/TypeError for the caller, who
treats the row as absent (it is re-read from the file).
"""
from __future__ import annotations

import dataclasses
import sys
import types
import typing
from typing import Any, Callable, Mapping

from . import jsonio
from .records import FOLDER_KINDS, ModelRecord

Key = tuple[str, str]  # (kind, name)

_Convert = Callable[[Any], Any]


def _array(v: Any) -> list[Any] | tuple[Any, ...]:
    """A JSON array (None: an empty one); TypeError for anything else (a string is not a tuple)."""
    if v is None:
        return ()
    if not isinstance(v, (list, tuple)):
        raise TypeError(f"expected an array, got {type(v).__name__}")
    return v


def _tuple_of(convert: _Convert | None) -> _Convert:
    if convert is None:
        return lambda v: tuple(_array(v))
    return lambda v: tuple(convert(x) for x in _array(v))


def _fixed_tuple(converts: list[_Convert | None]) -> _Convert:
    def convert(v: Any) -> tuple[Any, ...]:
        items = tuple(_array(v))
        if len(items) != len(converts):
            raise ValueError(f"expected {len(converts)} items, got {len(items)}")
        return tuple(x if c is None else c(x) for x, c in zip(items, converts, strict=True))
    return convert


def _optional(convert: _Convert) -> _Convert:
    return lambda v: None if v is None else convert(v)


def _converter(hint: Any) -> _Convert | None:
    """How to rebuild a value of type `hint` from JSON; None when the JSON value is already it."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        options = [a for a in args if a is not type(None)]
        if len(options) != 1:
            return None
        inner = _converter(options[0])
        return None if inner is None else _optional(inner)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _tuple_of(_converter(args[0]))
        return _fixed_tuple([_converter(a) for a in args])
    if origin is list:
        item = _converter(args[0]) if args else None
        return (lambda v: list(_array(v))) if item is None else (lambda v: [item(x) for x in _array(v)])
    if origin is dict or hint is dict:
        return lambda v: dict(v or {})
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass_decoder(hint)
    if hint is float:
        return float
    return None


# Fields whose few distinct values repeat across a library: one string object each, shared by every
# record (sys.intern), instead of one per record.
_SHARED_STRINGS = frozenset({"kind", "architecture", "family", "base_model", "tags", "sources"})
_SHARED_MAX_CHARS = 64


def _share(value: Any) -> Any:
    return sys.intern(value) if type(value) is str and len(value) <= _SHARED_MAX_CHARS else value


def _shared(convert: _Convert | None, hint: Any) -> _Convert | None:
    """`convert`, then the result's strings shared (a str field, or a tuple[str, ...] one)."""
    if hint is str:
        return _share
    if typing.get_origin(hint) is tuple and typing.get_args(hint) == (str, Ellipsis):
        return lambda v: tuple(map(_share, v)) if type(v) is list else tuple(map(_share, _array(v)))
    return convert


def _dataclass_decoder(cls: type) -> Callable[..., Any]:
    """A function building `cls` from a JSON object: each field through its converter (only the
    fields that need one are visited), unknown keys dropped, missing ones defaulted by __init__."""
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    names = frozenset(f.name for f in fields)
    converters = {f.name: _converter(hints[f.name]) for f in fields}
    for name in _SHARED_STRINGS & names:
        converters[name] = _shared(converters[name], hints[name])
    converting = tuple((name, convert) for name, convert in converters.items() if convert is not None)

    def decode(d: Mapping[str, Any], owned: bool = False) -> Any:
        """`owned`: `d` was just parsed and nobody else holds it, so it may be changed in place."""
        if type(d) is not dict:
            raise TypeError(f"expected an object for {cls.__name__}, got {type(d).__name__}")
        kw = d if owned and d.keys() <= names else {k: v for k, v in d.items() if k in names}
        for name, convert in converting:
            if name in kw:
                kw[name] = convert(kw[name])
        return cls(**kw)  # (raises TypeError for a missing required field)
    return decode


_decode_record = _dataclass_decoder(ModelRecord)


def record_from_dict(d: Mapping[str, Any], _owned: bool = False) -> ModelRecord:
    """Inverse of record_to_dict (and of ModelRecord.to_dict); tolerates fields added or removed
    since it was written; `d` is left as it was. Raises ValueError/TypeError for what is not a record."""
    if not isinstance(d, dict) or d.get("kind") not in FOLDER_KINDS or not isinstance(d.get("name"), str):
        kind, name = (d.get("kind"), d.get("name")) if isinstance(d, dict) else (None, None)
        raise ValueError(f"bad record kind/name: {kind!r} {name!r}")
    return typing.cast(ModelRecord, _decode_record(d, _owned))


def _plain(value: Any) -> Any:
    """JSON-ready copy: dataclasses as objects, tuples as lists (what dataclasses.asdict gives,
    without its deep copy of every leaf)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(ModelRecord))


def record_to_dict(record: ModelRecord) -> dict[str, Any]:
    """Every field of the record, JSON-ready (the same object ModelRecord.to_dict gives)."""
    return {name: _plain(getattr(record, name)) for name in _RECORD_FIELDS}


def record_to_json(record: ModelRecord) -> bytes:
    """The record as compact UTF-8 JSON (record_to_dict's object); raises TypeError/ValueError/
    UnicodeEncodeError for one that JSON cannot hold (a file name that is not valid UTF-8)."""
    if jsonio.orjson is not None:  # serialises dataclasses itself, as record_to_dict would, 4x faster
        return jsonio.orjson.dumps(record)
    return jsonio.dumps(record_to_dict(record))


def record_from_json(data: bytes | str) -> ModelRecord:
    """Inverse of record_to_json; raises ValueError/TypeError (or RecursionError) on bad input."""
    return record_from_dict(jsonio.loads(data), _owned=True)  # (a dict nobody else holds: decoded in place)


def freeze(value: Any) -> Any:
    """JSON arrays back as tuples, all the way down (fingerprints compare as tuples)."""
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value
