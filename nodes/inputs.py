"""The nodes' text inputs and queue-time checks, in plain Python (no ComfyUI import, unit-tested).

ComfyUI runs its own range checks only on the inputs a node's `validate_inputs` does not name, so
every check here that names an input also does the range check ComfyUI would have done, and
refuses what that check lets through (NaN compares false with every bound). A linked input
arrives as None at queue time: it is checked when the node runs.
"""
from __future__ import annotations

import math
import ntpath
import os
import posixpath
from typing import Any

from ..metadata.records import ModelRecord
from ..metadata.values import is_decimal
from ..selector.planner import MAX_PROMPT_CHARS

# Problems the index records (metadata/reader.py) that mean ComfyUI's loader would fail on the file.
# A pickle is not one of them: ComfyUI loads those itself, with its weights-only unpickler.
UNLOADABLE_PROBLEMS = ("unreadable header", "incomplete file")


def _split_list(text: str) -> list[str]:
    return [part.strip() for line in text.split("\n") for part in line.split(",")]


def parse_lora_list(text: str | None, field: str) -> list[Any]:
    """Names separated by commas or new lines; for `field == "loras"`, `name:0.7` pins a strength
    (the last `:` separates it, so a name may hold colons). Linear in the length of `text`."""
    out: list[Any] = []
    for part in _split_list(text or ""):
        if not part:
            continue
        name, colon, weight = part.rpartition(":")
        weight = weight.strip()
        if field == "loras" and colon and name.strip() and is_decimal(weight):
            strength = float(weight)
            if math.isfinite(strength):
                out.append({"name": name.strip(), "strength": strength})
                continue
        out.append(part)
    return out


def prompt_problem(field: str, text: Any) -> str | None:
    """Why a prompt input cannot be used (None when it can): longer than MAX_PROMPT_CHARS."""
    if isinstance(text, str) and len(text) > MAX_PROMPT_CHARS:
        return f"{field} is {len(text):,} characters long; the most accepted is {MAX_PROMPT_CHARS:,}"
    return None


def number_problem(field: str, value: Any, lo: float, hi: float) -> str | None:
    """ComfyUI's min/max check for an input the node validates itself, plus finiteness."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{field} must be a number from {lo:g} to {hi:g}, got {type(value).__name__}"
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return f"{field} must be a number from {lo:g} to {hi:g}, got a {len(str(abs(value)))}-digit integer"
    if not finite:
        return f"{field} must be a number from {lo:g} to {hi:g}, got {value}"
    if value < lo:
        return f"{field} {value:g} is smaller than the minimum of {lo:g}"
    if value > hi:
        return f"{field} {value:g} is bigger than the maximum of {hi:g}"
    return None


PIN_STRENGTH_MAX = 10.0  # as the plan route's `overrides.loras[].strength` (selector/request.py)


def pinned_loras_problem(field: str, text: Any) -> str | None:
    """Why the pinned-LoRA text cannot be used: a `name:strength` whose strength is outside
    -10..10 (the plan route's range), or a name that is a path."""
    if text is None or not isinstance(text, str):
        return None
    for pin in parse_lora_list(text, "loras"):
        name = pin["name"] if isinstance(pin, dict) else pin
        problem = model_name_problem(field, name)
        if problem:
            return problem
        if isinstance(pin, dict) and not -PIN_STRENGTH_MAX <= pin["strength"] <= PIN_STRENGTH_MAX:
            return (f"{field}: the strength {pin['strength']:g} of {name!r} is outside "
                    f"{-PIN_STRENGTH_MAX:g} to {PIN_STRENGTH_MAX:g}")
    return None


def model_name_problem(field: str, name: Any) -> str | None:
    """Why `name` cannot be a loader name (a path relative to a model folder), on POSIX or Windows:
    an absolute or drive path, a `..` part, control characters."""
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip():
        return f"{field} must be a model name"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return f"{field} {name!r} has control characters"
    if posixpath.isabs(name) or ntpath.isabs(name) or ntpath.splitdrive(name)[0] or name.startswith(("\\", "/")):
        return f"{field} {name!r} is a path; give a name from the model folder's list"
    if ".." in name.replace("\\", "/").split("/"):
        return f"{field} {name!r} leaves the model folder ('..')"
    return None


def unloadable_problem(record: ModelRecord | None) -> str | None:
    """The index's reason why ComfyUI cannot load the file of `record`, or None.

    Only while the file is still the one the index read: a download that has finished since (another
    size or mtime) is not refused on the strength of a stale record."""
    if record is None:
        return None
    problem = next((p for p in record.problems if p.startswith(UNLOADABLE_PROBLEMS)), None)
    if problem is None:
        return None
    try:
        st = os.stat(record.path)
    except OSError:
        return problem
    if st.st_size != record.size or abs(st.st_mtime_ns / 1e9 - record.mtime) > 1e-6:
        return None
    return problem


def first_problem(*problems: str | None) -> str | None:
    return next((p for p in problems if p), None)
