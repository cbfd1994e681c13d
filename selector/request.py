"""The request: what a plan may be asked for, checked field by field as contracts.md says;
`parse_request` and `parse_overrides` return the values given, normalised, or raise PlanRequestError
naming the field."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from . import architectures as A
from .analysis import STYLE_CHOICES, normalize_style
from .samplers import normalize_sampler

DEFAULT_MAX_LORAS = 3
MAX_LORAS_LIMIT = 10
QUALITIES = A.QUALITIES
USE_OLLAMA = ("auto", "on", "off")
# The longest prompt or negative prompt accepted (contracts.md): the route, the parser and the nodes use this.
MAX_PROMPT_CHARS = 100_000


class PlanRequestError(ValueError):
    """A request the plan cannot be made from (a 400): `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class PlanRequest:
    """A validated request. `overrides` holds only the keys given, normalised
    (`cfg_scale` -> `cfg`, LoRA pins as `{"name", "strength"?}`), read-only."""

    prompt: str
    negative_prompt: str | None = None
    style: str = "auto"
    quality: str = "balanced"
    overrides: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    use_ollama: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "negative_prompt": self.negative_prompt, "style": self.style,
                "quality": self.quality, "overrides": _plain(dict(self.overrides)), "use_ollama": self.use_ollama}


def _plain(v: Any) -> Any:
    """Tuples and mapping proxies -> lists and dicts, for JSON."""
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


_OVERRIDE_KEYS = ("steps", "cfg", "cfg_scale", "sampler", "sampler_name", "scheduler", "width", "height",
                  "negative_prompt", "seed", "batch_size", "checkpoint", "loras", "exclude", "max_loras")
_TOP_KEYS = ("prompt", "negative_prompt", "style", "quality", "overrides", "use_ollama")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # a JSON integer too large for a float
        return False


def _in_range(v: Any, name: str, lo: float, hi: float, whole: bool) -> Any:
    """`v` when it is a (whole) number from `lo` to `hi`; else PlanRequestError naming `name`."""
    span = f"{lo} to {hi}" if whole else f"{lo:g} to {hi:g}"
    if not (_is_int(v) if whole else is_number(v)):
        raise PlanRequestError(name, f"must be {'a whole number' if whole else 'a number'} from {span}, "
                                     f"got {type(v).__name__}")
    if not lo <= v <= hi:
        raise PlanRequestError(name, f"must be from {span}, got {v}")
    return v


def _int_in(v: Any, name: str, lo: int, hi: int) -> int:
    return int(_in_range(v, name, lo, hi, whole=True))


def _float_in(v: Any, name: str, lo: float, hi: float) -> float:
    return float(_in_range(v, name, lo, hi, whole=False))


def _str(v: Any, name: str, allow_empty: bool = False) -> str:
    if not isinstance(v, str):
        raise PlanRequestError(name, f"must be a string, got {type(v).__name__}")
    if not allow_empty and not v.strip():
        raise PlanRequestError(name, "must not be empty")
    return v


def _prompt_text(v: Any, name: str, allow_empty: bool = False) -> str:
    """A prompt or negative prompt: a string of at most MAX_PROMPT_CHARS characters."""
    text = _str(v, name, allow_empty)
    if len(text) > MAX_PROMPT_CHARS:
        raise PlanRequestError(name, f"is {len(text):,} characters long; the most accepted is {MAX_PROMPT_CHARS:,}")
    return text


def _size(v: Any, name: str) -> int:
    n = _int_in(v, name, 64, 8192)
    if n % 8:
        raise PlanRequestError(name, f"must be a multiple of 8, got {n}")
    return n


def _name_list(v: Any, name: str) -> tuple[str, ...]:
    if isinstance(v, str) or not isinstance(v, (list, tuple)):
        raise PlanRequestError(name, "must be a list of names")
    return tuple(_str(x, f"{name}[{i}]").strip() for i, x in enumerate(v))


def _lora_pins(v: Any, name: str) -> tuple[Mapping[str, Any], ...]:
    if isinstance(v, str) or not isinstance(v, (list, tuple)):
        raise PlanRequestError(name, "must be a list of names or {name, strength} objects")
    out: list[Mapping[str, Any]] = []
    for i, item in enumerate(v):
        where = f"{name}[{i}]"
        if isinstance(item, str):
            out.append(MappingProxyType({"name": _str(item, where).strip()}))
            continue
        if not isinstance(item, Mapping):
            raise PlanRequestError(where, "must be a name or a {name, strength} object")
        for k in item:
            if k not in ("name", "strength"):
                raise PlanRequestError(f"{where}.{k}", "unknown key: a LoRA pin has only name and strength")
        if "name" not in item:
            raise PlanRequestError(f"{where}.name", "is required")
        pin: dict[str, Any] = {"name": _str(item["name"], f"{where}.name").strip()}
        if item.get("strength") is not None:
            pin["strength"] = _float_in(item["strength"], f"{where}.strength", -10.0, 10.0)
        out.append(MappingProxyType(pin))
    return tuple(out)


def parse_overrides(raw: Any, prefix: str = "overrides") -> dict[str, Any]:
    """Validate an `overrides` object (contracts.md); returns the normalised keys that were given.

    `null` values mean "not set". `bool` is never accepted where a number is expected.
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise PlanRequestError(prefix, "must be an object")
    out: dict[str, Any] = {}
    for key in raw:
        if not isinstance(key, str) or key not in _OVERRIDE_KEYS:
            raise PlanRequestError(f"{prefix}.{key}", f"unknown override; allowed: {', '.join(_OVERRIDE_KEYS)}")
    for key, v in raw.items():
        if v is None:
            continue
        name = f"{prefix}.{key}"
        if key == "steps":
            out["steps"] = _int_in(v, name, 1, 1000)
        elif key in ("cfg", "cfg_scale"):
            cfg = _float_in(v, name, 0.0, 100.0)
            if "cfg" in out and out["cfg"] != cfg:
                raise PlanRequestError(name, "cfg and cfg_scale are the same setting and disagree")
            out["cfg"] = cfg
        elif key == "sampler":
            s = _str(v, name).strip()
            try:
                normalize_sampler(s)
            except ValueError as e:
                raise PlanRequestError(name, str(e)) from None
            out["sampler"] = s
        elif key in ("sampler_name", "scheduler"):
            out[key] = _str(v, name).strip()
        elif key in ("width", "height"):
            out[key] = _size(v, name)
        elif key == "negative_prompt":
            out[key] = _prompt_text(v, name, allow_empty=True)
        elif key == "seed":
            out[key] = _int_in(v, name, 0, 2 ** 64 - 1)
        elif key == "batch_size":
            out[key] = _int_in(v, name, 1, 64)
        elif key == "checkpoint":
            out[key] = _str(v, name).strip()
        elif key == "loras":
            out[key] = _lora_pins(v, name)
        elif key == "exclude":
            out[key] = _name_list(v, name)
        elif key == "max_loras":
            out[key] = _int_in(v, name, 0, MAX_LORAS_LIMIT)
    return out


def parse_request(body: Any) -> PlanRequest:
    """Validate a plan request body exactly as contracts.md says; PlanRequestError names the field."""
    if not isinstance(body, Mapping):
        raise PlanRequestError("body", "must be a JSON object")
    for key in body:
        if key not in _TOP_KEYS:
            raise PlanRequestError(str(key), f"unknown field; allowed: {', '.join(_TOP_KEYS)}")
    if "prompt" not in body or body["prompt"] is None:
        raise PlanRequestError("prompt", "is required")
    prompt = _prompt_text(body["prompt"], "prompt")
    negative = body.get("negative_prompt")
    if negative is not None:
        negative = _prompt_text(negative, "negative_prompt", allow_empty=True)
    style = body.get("style")
    if style is None:
        style = "auto"
    else:
        _str(style, "style")
        norm = normalize_style(style)
        if norm is None:
            raise PlanRequestError("style", f"must be one of {', '.join(STYLE_CHOICES)}, got {style!r}")
        style = norm
    quality = body.get("quality")
    if quality is None:
        quality = "balanced"
    else:
        q = _str(quality, "quality").strip().lower()
        if q not in QUALITIES:
            raise PlanRequestError("quality", f"must be one of {', '.join(QUALITIES)}, got {quality!r}")
        quality = q
    use_ollama = body.get("use_ollama", "auto")
    if isinstance(use_ollama, bool):
        use_ollama = "on" if use_ollama else "off"
    if use_ollama is None:
        use_ollama = "auto"
    if use_ollama not in USE_OLLAMA:
        raise PlanRequestError("use_ollama", f"must be one of {', '.join(USE_OLLAMA)}")
    overrides = parse_overrides(body.get("overrides"))
    return PlanRequest(prompt=prompt, negative_prompt=negative, style=style, quality=quality,
                       overrides=MappingProxyType(overrides), use_ollama=use_ollama)
