"""The pack's one settings file: `<ComfyUI user dir>/default/intelligent-pipeline.json`.

Every part reads its keys here (contracts.md, "Settings"). The file is reloaded when its
mtime changes, so edits from the settings route, ComfyUI's settings dialog or a text editor
apply without a restart. Writes are atomic and keep keys this version does not know.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, Callable, Mapping

log = logging.getLogger(__name__)

FILE_NAME = "intelligent-pipeline.json"


@dataclass(frozen=True)
class _Key:
    default: Any
    check: Callable[[Any], str | None]  # returns an error message, or None when valid


def _bool_or_auto(v: Any) -> str | None:
    return None if isinstance(v, bool) or v == "auto" else "must be true, false or \"auto\""


def _str(v: Any) -> str | None:
    return None if isinstance(v, str) and v.strip() else "must be a non-empty string"


def _url(v: Any) -> str | None:
    if not isinstance(v, str) or not v.startswith(("http://", "https://")):
        return "must be an http:// or https:// URL"
    return None


def _url_list(v: Any) -> str | None:
    if not isinstance(v, list) or any(_url(x) for x in v):
        return "must be a list of http:// or https:// URLs"
    return None


def _str_list(v: Any) -> str | None:
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        return "must be a list of non-empty strings"
    return None


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _number(lo: float, hi: float) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            return f"must be a number from {lo:g} to {hi:g}"
        return None
    return check


def _int(lo: int, hi: int) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            return f"must be a whole number from {lo} to {hi}"
        return None
    return check


def _optional_dir(v: Any) -> str | None:
    return None if v is None or (isinstance(v, str) and v.strip()) else "must be a folder path or null"


KEYS: dict[str, _Key] = {
    "ollama.enabled": _Key("auto", _bool_or_auto),
    "ollama.host": _Key("http://127.0.0.1:11434", _url),
    "ollama.model": _Key("llama3.2", _str),
    "ollama.timeout_s": _Key(20, _number(0.1, 600)),
    "civitai.enabled": _Key(True, _bool),
    "civitai.base_url": _Key("https://civitai.com/api/v1", _url),
    "civitai.extra_base_urls": _Key([], _url_list),
    "civitai.min_interval_s": _Key(1.0, _number(0, 3600)),
    "civitai.timeout_s": _Key(15, _number(0.1, 600)),
    "civitai.ttl_h": _Key(24, _number(0, 24 * 365)),
    "cache.dir": _Key("~/.ml_lib/metadata_cache", _str),
    "index.cache_dir": _Key(None, _optional_dir),  # None: ComfyUI's user directory
    "index.exclude_folders": _Key([], _str_list),
    "index.recheck_s": _Key(10, _number(0, 86400)),
    "selection.max_loras": _Key(3, _int(0, 10)),
    "selection.max_nsfw_level": _Key(2, _int(0, 32)),
    "monitor.interval_s": _Key(1.0, _number(0.1, 3600)),
}


class SettingsError(ValueError):
    """A refused settings change; `field` names the offending key."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def defaults() -> dict[str, Any]:
    return {k: (list(spec.default) if isinstance(spec.default, list) else spec.default) for k, spec in KEYS.items()}


def validate(changes: Mapping[str, Any]) -> None:
    """Raise SettingsError for the first unknown key or invalid value."""
    if not isinstance(changes, Mapping):
        raise SettingsError("body", "must be a JSON object of settings")
    for key, value in changes.items():
        spec = KEYS.get(key)
        if spec is None:
            raise SettingsError(key, "unknown setting")
        problem = spec.check(value)
        if problem:
            raise SettingsError(key, problem)


def atomic_write_json(path: str, data: Any) -> None:
    """Write JSON next to `path` and rename over it: readers never see half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class Settings:
    """Settings backed by one JSON file (or memory only, when `path` is None)."""

    def __init__(self, path: str | None):
        self.path = path
        self._lock = threading.Lock()
        self._values = defaults()
        self._unknown: dict[str, Any] = {}
        self._mtime_ns: int | None = None
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self.reload()

    @classmethod
    def in_user_dir(cls, user_dir: str) -> "Settings":
        return cls(os.path.join(user_dir, "default", FILE_NAME))

    def on_change(self, listener: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.append(listener)

    def reload(self) -> bool:
        """Re-read the file if it changed on disk; invalid entries are logged and ignored."""
        if not self.path:
            return False
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime == self._mtime_ns:
            return False
        values, unknown = defaults(), {}
        if mtime is not None:
            try:
                with open(self.path, encoding="utf-8") as f:
                    raw = json.load(f)
                if not isinstance(raw, dict):
                    raise ValueError("top level is not an object")
            except (OSError, ValueError) as e:
                log.warning("settings file %s is unreadable (%s): using defaults, leaving the file as it is", self.path, e)
                raw = {}
            for key, value in raw.items():
                spec = KEYS.get(key)
                if spec is None:
                    unknown[key] = value
                elif spec.check(value):
                    log.warning("setting %s=%r ignored: %s", key, value, spec.check(value))
                else:
                    values[key] = value
        with self._lock:
            self._values, self._unknown, self._mtime_ns = values, unknown, mtime
        return True

    def get(self, key: str) -> Any:
        if key not in KEYS:
            raise KeyError(key)
        self.reload()
        return self._values[key]

    def as_dict(self) -> dict[str, Any]:
        self.reload()
        with self._lock:
            return dict(self._values)

    def update(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and apply `changes`, persist them, and return the whole set."""
        validate(changes)
        self.reload()
        with self._lock:
            self._values.update(changes)
            merged = dict(self._unknown)
            merged.update(self._values)
            if self.path:
                atomic_write_json(self.path, merged)
                self._mtime_ns = os.stat(self.path).st_mtime_ns
            current = dict(self._values)
        for listener in self._listeners:
            try:
                listener(current)
            except Exception:
                log.exception("settings listener failed")
        return current

    def path_setting(self, key: str, default_dir: str | None = None) -> str | None:
        """A folder setting with `~` expanded; None falls back to `default_dir`."""
        value = self.get(key)
        if value is None:
            return default_dir
        return os.path.abspath(os.path.expanduser(value))
