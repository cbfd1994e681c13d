"""The pack's one settings file: `<ComfyUI user dir>/default/intelligent-pipeline.json`.

Every part reads its keys here (contracts.md, "Settings"). The file is reloaded when its
mtime changes, so edits from the settings route, ComfyUI's settings dialog or a text editor
apply without a restart. Writes are atomic, keep keys this version does not know and keep the
file's mode. `SCHEMA` is the one description of the keys: validation, the settings schema route
and the settings dialog are all built from it.
"""
from __future__ import annotations

import json
import logging
import math
import ntpath
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from .metadata import atomic
from .metadata.atomic import STALE_TEMP_AGE_S, atomic_write_bytes
from .metadata.paths import inside_root
from .metadata.safe_open import read_regular

log = logging.getLogger(__name__)

FILE_NAME = "intelligent-pipeline.json"
MAX_SETTINGS_BYTES = 1024 * 1024  # the file holds a few dozen keys; ComfyUI's /userdata route can write anything

# Folders outside ComfyUI's user directory come from the server's environment, never from HTTP
# (the settings route, or ComfyUI's own /userdata route, which can write the settings file).
PATH_ENV = {
    "index.cache_dir": "INTELLIGENT_PIPELINE_INDEX_CACHE_DIR",
    "cache.dir": "INTELLIGENT_PIPELINE_CACHE_DIR",
}

TYPES = ("boolean", "choice", "string", "url", "url_list", "string_list", "number", "integer", "path")


@dataclass(frozen=True)
class Setting:
    """One key: its type, default, bounds and how the settings dialog shows it."""

    type: str  # one of TYPES
    default: Any
    section: str
    label: str
    tooltip: str
    in_dialog: bool = False  # shown in ComfyUI's settings dialog: only keys whose code works
    min: float | None = None
    max: float | None = None
    options: tuple[Any, ...] | None = None

    def check(self, v: Any) -> str | None:
        """An error message, or None when `v` is a valid value of this key."""
        problem = self._check_type(v)
        if problem is None and not _utf8(v):
            return "must be text that can be written as UTF-8"
        return problem

    def _check_type(self, v: Any) -> str | None:
        t = self.type
        if t == "boolean":
            return None if isinstance(v, bool) else "must be true or false"
        if t == "choice":
            options = self.options or ()
            if any(type(v) is type(o) and v == o for o in options):
                return None
            return "must be one of " + ", ".join(json.dumps(o) for o in options)
        if t == "string":
            return None if isinstance(v, str) and v.strip() else "must be a non-empty string"
        if t == "url":
            return None if _is_url(v) else "must be an http:// or https:// URL"
        if t == "url_list":
            return None if isinstance(v, list) and all(_is_url(x) for x in v) else \
                "must be a list of http:// or https:// URLs"
        if t == "string_list":
            return None if isinstance(v, list) and all(isinstance(x, str) and x for x in v) else \
                "must be a list of non-empty strings"
        if t in ("number", "integer"):
            lo, hi = self.min, self.max
            whole = t == "integer"
            ok = not isinstance(v, bool) and isinstance(v, int if whole else (int, float)) and \
                (whole or math.isfinite(v)) and (lo is None or v >= lo) and (hi is None or v <= hi)
            if ok:
                return None
            kind = "a whole number" if whole else "a number"
            if lo is not None and hi is not None:
                return f"must be {kind} from {lo:g} to {hi:g}"
            if lo is not None or hi is not None:
                return f"must be {kind} {'of at least' if lo is not None else 'of at most'} {lo if lo is not None else hi:g}"
            return f"must be {kind}"
        if t == "path":
            if v is None and self.default is None:
                return None
            if not isinstance(v, str) or not v.strip():
                return "must be a folder path" + (" or null" if self.default is None else "")
            if any(ord(c) < 32 or ord(c) == 127 for c in v):
                return "must be a folder path without control characters"
            return None
        raise AssertionError(f"unknown setting type {t!r}")

    def describe(self) -> dict[str, Any]:
        """This key as the settings schema route serves it (contracts.md)."""
        out: dict[str, Any] = {"type": self.type, "default": _copy(self.default), "section": self.section,
                               "label": self.label, "tooltip": self.tooltip, "in_dialog": self.in_dialog}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.options is not None:
            out["options"] = list(self.options)
        return out


def _is_url(v: Any) -> bool:
    return isinstance(v, str) and v.startswith(("http://", "https://"))


def _utf8(v: Any) -> bool:
    """False for strings (also inside lists) that UTF-8 cannot hold (lone surrogates from JSON escapes)."""
    items = v if isinstance(v, list) else [v]
    try:
        for x in items:
            if isinstance(x, str):
                x.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _copy(v: Any) -> Any:
    return list(v) if isinstance(v, list) else v


_NOT_YET = "Not used yet: kept so scripts and the client can set it before the feature exists."

SCHEMA: dict[str, Setting] = {
    "ollama.enabled": Setting("choice", "auto", "Ollama", "Use Ollama",
                              "auto: plans ask the Ollama model when a server answers at the host; true: always (a "
                              "failure is the plan's fallback reason); false: never. A request's use_ollama on/off "
                              "decides for itself.", options=("auto", True, False), in_dialog=True),
    "ollama.host": Setting("url", "http://127.0.0.1:11434", "Ollama", "Ollama host",
                           "A host that is not this machine receives the prompts and the candidates' titles and "
                           "tags (the plan's reasons name it).", in_dialog=True),
    "ollama.model": Setting("string", "llama3.2", "Ollama", "Ollama model",
                            "A model the server has pulled (`ollama pull llama3.2`)", in_dialog=True),
    "ollama.timeout_s": Setting("number", 20, "Ollama", "Ollama timeout (s)",
                                "Past this the plan goes on with the keyword analysis", in_dialog=True, min=0.1,
                                max=600),
    "civitai.enabled": Setting("boolean", True, "CivitAI", "Look up models on CivitAI", _NOT_YET),
    "civitai.base_url": Setting("url", "https://civitai.com/api/v1", "CivitAI", "CivitAI API", _NOT_YET),
    "civitai.extra_base_urls": Setting("url_list", [], "CivitAI", "Other CivitAI hosts",
                                       "Hosts tried when the first has no answer for a hash. " + _NOT_YET),
    "civitai.min_interval_s": Setting("number", 1.0, "CivitAI", "Seconds between CivitAI requests", _NOT_YET,
                                      min=0, max=3600),
    "civitai.timeout_s": Setting("number", 15, "CivitAI", "CivitAI timeout (s)", _NOT_YET, min=0.1, max=600),
    "civitai.ttl_h": Setting("number", 24, "CivitAI", "Keep CivitAI answers for (h)", _NOT_YET, min=0, max=24 * 365),
    "civitai.remote_previews": Setting("boolean", False, "CivitAI", "Fetch preview images from CivitAI",
                                       "Fetched by the server into cache.dir, never by the browser. " + _NOT_YET),
    "cache.dir": Setting("path", "~/.ml_lib/metadata_cache", "CivitAI", "CivitAI cache folder", _NOT_YET),
    "index.cache_dir": Setting("path", None, "Model index", "Index cache folder",
                               "null: ComfyUI's user directory. Read at start: a change applies after a restart."),
    "index.exclude_folders": Setting("string_list", [], "Model index", "Folders to leave out",
                                     "Comma separated, relative to each model folder", in_dialog=True),
    "index.recheck_s": Setting("number", 10, "Model index", "Recheck the model folders every (s)",
                               "How stale the index may be when a prompt is queued", in_dialog=True, min=0, max=86400),
    "selection.max_loras": Setting("integer", 3, "Selection", "Most LoRAs per image",
                                   "The LoRA Stack's max_loras -1 and the plan route use this", in_dialog=True,
                                   min=0, max=10),
    "selection.max_nsfw_level": Setting("integer", 2, "Selection", "Highest NSFW level",
                                        "CivitAI's level: 1 PG, 2 PG-13, 4 R, 8 X, 16 XXX", in_dialog=True,
                                        min=0, max=32),
    "monitor.interval_s": Setting("number", 1.0, "Monitor", "Monitor interval (s)", _NOT_YET, min=0.1, max=3600),
    "web.resource_panel": Setting("boolean", True, "Editor", "Resource panel", _NOT_YET),
}
KEYS = SCHEMA  # the name older callers use


def schema() -> dict[str, dict[str, Any]]:
    """`GET settings/schema`: every key with its type, default, bounds and dialog entry."""
    return {key: spec.describe() for key, spec in SCHEMA.items()}


class SettingsError(ValueError):
    """A refused settings change; `field` names the offending key."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def defaults() -> dict[str, Any]:
    return {k: _copy(spec.default) for k, spec in SCHEMA.items()}


def validate(changes: Mapping[str, Any]) -> None:
    """Raise SettingsError for the first unknown key or invalid value."""
    if not isinstance(changes, Mapping):
        raise SettingsError("body", "must be a JSON object of settings")
    for key, value in changes.items():
        spec = SCHEMA.get(key) if isinstance(key, str) else None
        if spec is None:
            raise SettingsError(str(key), "unknown setting")
        problem = spec.check(value)
        if problem:
            raise SettingsError(key, problem)


# --- folders -------------------------------------------------------------------------------------

def folder_inside(path: Any, root: str, pathmod: Any = os.path) -> bool:
    """True when `path` (absolute) is `root` or a folder below it once `..`, case (Windows) and, for
    the real file system, symlinks are resolved. `pathmod` is os.path, posixpath or ntpath (the
    last two are pure, for tests of the other system's names)."""
    if not isinstance(path, str) or not path or "\x00" in path or not pathmod.isabs(path):
        return False
    if pathmod is ntpath and not ntpath.splitdrive(path)[0]:
        return False  # "\x": the current drive's root, whichever that is
    resolve = os.path.realpath if pathmod is os.path else pathmod.normpath
    try:
        p, r = resolve(path), resolve(root)
    except (ValueError, OSError):
        return False
    return pathmod.normcase(p) == pathmod.normcase(r) or inside_root(r, p, pathmod) is not None


def _expand(value: str) -> str:
    return os.path.abspath(os.path.expanduser(value))


# --- atomic writes and their temp files -------------------------------------------------------------

_LEGACY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
_LEGACY_PEEK = 64 * 1024
_LEGACY_INDEX_TEMP = "intelligent-pipeline-index.json."  # the index cache's writer before: <file>.<pid>.tmp


def _is_legacy_temp(name: str, path: str) -> bool:
    """A temp file of this pack's earlier writers: the index cache's `<file>.<pid>.tmp`, or the settings
    writer's `.tmp-XXXXXXXX.json` when it holds our settings."""
    if name.startswith(_LEGACY_INDEX_TEMP) and name.endswith(".tmp"):
        return name[len(_LEGACY_INDEX_TEMP):-4].isdigit()
    if not (name.startswith(".tmp-") and name.endswith(".json")):
        return False
    token = name[5:-5]
    if len(token) != 8 or not set(token) <= _LEGACY_CHARS:
        return False
    try:
        head = read_regular(path, _LEGACY_PEEK).decode("utf-8", "replace")
    except (OSError, ValueError):
        return False
    return head.lstrip().startswith("{") and any(f'"{key}":' in head for key in SCHEMA)


def clean_stale_temp_files(folder: str, max_age_s: float = STALE_TEMP_AGE_S, now: float | None = None) -> list[str]:
    """Remove temp files of the pack's interrupted writes (this version's and earlier ones') from `folder`."""
    return atomic.clean_stale_temp_files(folder, max_age_s, now, also=_is_legacy_temp)


def atomic_write_json(path: str, data: Any) -> None:
    """`data` as indented JSON (sorted keys), written atomically."""
    text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


class Settings:
    """Settings backed by one JSON file (or memory only, when `path` is None).

    `user_dir` is ComfyUI's user directory: a path setting is accepted only as its default or a
    folder inside it (from the route and from the file alike, since ComfyUI's /userdata route writes
    that file too); folders elsewhere come from the environment (PATH_ENV)."""

    def __init__(self, path: str | None, user_dir: str | None = None):
        self.path = path
        self.user_dir = user_dir
        self._lock = threading.Lock()
        self._values = defaults()
        self._unknown: dict[str, Any] = {}
        self._ignored: dict[str, Any] = {}  # invalid entries in the file: kept as written on a rewrite
        self._mtime_ns: int | None = None
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self.reload()

    @classmethod
    def in_user_dir(cls, user_dir: str) -> "Settings":
        return cls(os.path.join(user_dir, "default", FILE_NAME), user_dir=user_dir)

    def on_change(self, listener: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.append(listener)

    def _place_problem(self, key: str, value: Any, current: Any = None) -> str | None:
        """Why a path setting may not point where `value` says (None: it may)."""
        spec = SCHEMA[key]
        if spec.type != "path" or value is None or value == spec.default or value == current:
            return None
        if self.user_dir and folder_inside(os.path.expanduser(value), self.user_dir):
            return None
        where = f" ({self.user_dir})" if self.user_dir else ""
        return (f"must be {json.dumps(spec.default)} or an absolute folder inside ComfyUI's user directory{where}; "
                f"set another folder with the {PATH_ENV[key]} environment variable when starting the server")

    def reload(self) -> bool:
        """Re-read the file if it changed on disk; invalid entries are logged and ignored."""
        if not self.path:
            return False
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            mtime = None
        except OSError as e:
            log.warning("settings file %r cannot be read (%r): keeping the settings as they are", self.path, str(e))
            return False
        if mtime == self._mtime_ns:
            return False
        values, unknown, ignored = defaults(), {}, {}
        if mtime is not None:
            try:
                raw = json.loads(read_regular(self.path, MAX_SETTINGS_BYTES))
                if not isinstance(raw, dict):
                    raise ValueError("top level is not an object")
            except (OSError, ValueError, RecursionError) as e:
                log.warning("settings file %r is unreadable (%r): using defaults, leaving the file as it is",
                            self.path, str(e)[:200])
                raw = {}
            for key, value in raw.items():
                spec = SCHEMA.get(key)
                if spec is None:
                    unknown[key] = value
                    continue
                problem = spec.check(value) or self._place_problem(key, value)
                if problem:
                    log.warning("setting %r=%.200r in %r ignored: %r", key, value, self.path, problem)
                    ignored[key] = value
                else:
                    values[key] = value
        with self._lock:
            self._values, self._unknown, self._ignored, self._mtime_ns = values, unknown, ignored, mtime
        return True

    def get(self, key: str) -> Any:
        if key not in SCHEMA:
            raise KeyError(key)
        self.reload()
        return self._values[key]

    def as_dict(self) -> dict[str, Any]:
        self.reload()
        with self._lock:
            return dict(self._values)

    def update(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and apply `changes` (from the route: path settings stay inside the user
        directory), persist them, and return the whole set."""
        validate(changes)
        self.reload()
        with self._lock:
            for key, value in changes.items():
                problem = self._place_problem(key, value, self._values.get(key))
                if problem:
                    raise SettingsError(key, problem)
            self._values.update(changes)
            merged = dict(self._unknown)
            merged.update(self._values)
            merged.update({k: v for k, v in self._ignored.items() if k not in changes})
            for key in changes:
                self._ignored.pop(key, None)
            if self.path:
                atomic_write_json(self.path, merged)
                self._mtime_ns = os.stat(self.path).st_mtime_ns
            current = dict(self._values)
        for listener in self._listeners:
            try:
                listener(current)
            except Exception as e:
                log.error("settings listener failed: %s: %r", type(e).__name__, str(e))
                log.debug("settings listener", exc_info=True)
        return current

    def path_setting(self, key: str, default_dir: str | None = None,
                     environ: Mapping[str, str] | None = None) -> str | None:
        """A folder setting, absolute, with `~` expanded: the environment variable PATH_ENV[key] when
        set (any folder the server's owner chooses), else the setting, else `default_dir` for None."""
        env = os.environ if environ is None else environ
        from_env = env.get(PATH_ENV.get(key, ""), "")
        if from_env.strip():
            return _expand(from_env)
        value = self.get(key)
        if value is None:
            return default_dir
        return _expand(value)

    def temp_folders(self) -> Iterable[str]:
        """The folders this object writes into (for the stale temp file cleaner)."""
        return [os.path.dirname(os.path.realpath(self.path))] if self.path else []
