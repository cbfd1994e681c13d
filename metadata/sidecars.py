"""Readers for the sidecar files other tools leave next to a model, and for trainer metadata.

Each reader turns one source into `Facts`: the ModelRecord fields that source knows (only
non-empty values), plus `extra` keys and problems. `merge.py` combines them in a fixed order
of trust. Every value is untrusted input from another program's file: readers check types
and ranges and drop what does not fit rather than raise. Formats: shared/reference/formats.md.
"""
from __future__ import annotations

import html
import json
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from . import base_models, jsonio
from .records import ExampleParams

log = logging.getLogger(__name__)

MAX_SIDECAR_BYTES = 16 * 1024 * 1024  # a Lora-Manager file with a full CivitAI payload is ~100 KB
DESCRIPTION_CHARS = 2000
PROMPT_CHARS = 1000  # example prompts are hints, not archives: keep the cache small
MAX_EXAMPLES = 10
MAX_TRIGGER_WORDS = 64
TOP_TRAINING_TAGS = 15

# Sidecar roles, most trusted first. `name` builds the sidecar's file name from the model's
# file name and stem. The merge order of formats.md: explicit sidecars > header facts.
SIDECARS: tuple[tuple[str, Callable[[str, str], str]], ...] = (
    ("lora-manager", lambda file_name, stem: stem + ".metadata.json"),
    ("civitai-info", lambda file_name, stem: stem + ".civitai.info"),
    ("rgthree", lambda file_name, stem: file_name + ".rgthree-info.json"),
    ("cm-info", lambda file_name, stem: stem + ".cm-info.json"),
    ("a1111", lambda file_name, stem: stem + ".json"),
    ("pysssss", lambda file_name, stem: stem + ".sha256"),
)
HEADER_SOURCE = "header"
SOURCE_RANK: dict[str, int] = {name: i for i, (name, _) in enumerate(SIDECARS)}
SOURCE_RANK[HEADER_SOURCE] = len(SOURCE_RANK)

# Lora-Manager's preview lookup order (py/utils/constants.py): suffixes after the stem.
PREVIEW_SUFFIXES = (".webp", ".preview.webp", ".preview.png", ".preview.jpeg", ".preview.jpg", ".preview.mp4",
                    ".png", ".jpeg", ".jpg", ".mp4", ".gif", ".webm", ".avif", ".jxl")


@dataclass(frozen=True)
class Facts:
    """What one source says about a model: ModelRecord field -> value, non-empty values only."""

    source: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def rank(self) -> int:
        return SOURCE_RANK.get(self.source, len(SOURCE_RANK))


def read_sidecar(source: str, path: str) -> Facts | None:
    """Facts from the sidecar of role `source` at `path`; None when it is not that format.

    Never raises: an unreadable or broken file gives Facts with a problem string (and one
    log line), so one bad sidecar costs only its own facts.
    """
    if source == "pysssss":
        return _read_sha256_file(path)
    obj, problem = load_json(path)
    if problem:
        return Facts(source, problems=(f"{os.path.basename(path)}: {problem}; skipped",))
    reader = _JSON_READERS[source]
    return reader(obj)


def load_json(path: str) -> tuple[Any, str | None]:
    """(parsed JSON, None) or (None, problem); logs one warning for a broken file."""
    try:
        size = os.path.getsize(path)
        if size > MAX_SIDECAR_BYTES:
            problem = f"too large ({size} bytes)"
            log.warning("sidecar %s is %s; skipped", path, problem)
            return None, problem
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        log.warning("cannot read sidecar %s: %s", path, e)
        return None, f"cannot read: {e.strerror or e}"
    if raw.startswith(b"\xef\xbb\xbf"):  # a BOM from Windows editors
        raw = raw[3:]
    try:
        return jsonio.loads(raw), None
    except (ValueError, RecursionError) as e:
        log.warning("sidecar %s is not valid JSON (%s); skipped", path, str(e)[:120])
        return None, "not valid JSON"


# --- value helpers: untrusted JSON -> typed values ---------------------------------------------

def as_int(value: Any, lo: int = 0, hi: int = 2**62) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        n = int(float(value)) if isinstance(value, (str, float)) else int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return n if lo <= n <= hi else None


def as_float(value: Any, lo: float = float("-inf"), hi: float = float("inf")) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if lo <= x <= hi else None  # NaN fails both comparisons


def as_str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def as_dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


_BLOCK_TAG = re.compile(r"(?i)</?(?:p|br|div|li|ul|ol|h[1-6]|tr|td|th|table|blockquote|pre|hr)\b[^>]*>")


def plain_text(text: Any, limit: int = DESCRIPTION_CHARS) -> str:
    """HTML (CivitAI descriptions) to one line of plain text, capped at `limit` characters."""
    if not isinstance(text, str) or not text:
        return ""
    text = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", " ", text)
    text = _BLOCK_TAG.sub(" ", text)  # block tags separate words; inline ones (<b>, <a>) do not
    text = html.unescape(re.sub(r"<[^>]*>", "", text))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def split_words(values: Any, limit: int = MAX_TRIGGER_WORDS) -> tuple[str, ...]:
    """Trigger words from a string or a list (of strings or `{word: ...}`): split on commas,
    strip, drop empties and case-insensitive duplicates, keep the first spelling and order."""
    items = [values] if isinstance(values, str) else as_list(values)
    out: list[str] = []
    seen: set[str] = set()
    for item in items:
        if isinstance(item, dict):
            item = item.get("word")
        if not isinstance(item, str):
            continue
        for word in item.split(","):
            word = " ".join(word.split())
            if word and word.lower() not in seen:
                seen.add(word.lower())
                out.append(word)
                if len(out) >= limit:
                    return tuple(out)
    return tuple(out)


def clean_tags(values: Iterable[Any]) -> tuple[str, ...]:
    """Lower-case, de-duplicated tags; prompt syntax (`(tag:1.2)`, `\\(x\\)`) stripped."""
    out: list[str] = []
    seen: set[str] = set()
    for value in values:
        if isinstance(value, dict):
            value = value.get("name")
        if not isinstance(value, str):
            continue
        tag = _clean_tag(value)
        if tag and tag not in seen:
            seen.add(tag)
            out.append(tag)
    return tuple(out)


def _clean_tag(tag: str) -> str:
    tag = tag.replace("\\(", "(").replace("\\)", ")").strip().strip("()[]{}").strip()
    tag = re.sub(r":\s*-?\d+(?:\.\d+)?$", "", tag)
    return " ".join(tag.strip("()[]{} ").lower().split())


def union(*groups: Iterable[str], key: Callable[[str], str] = str.lower) -> tuple[str, ...]:
    """Concatenate keeping the first of each (case-insensitive) duplicate."""
    out: list[str] = []
    seen: set[str] = set()
    for group in groups:
        for item in group:
            if key(item) not in seen:
                seen.add(key(item))
                out.append(item)
    return tuple(out)


def sha256_hex(value: Any) -> str | None:
    text = as_str(value).lower()
    if text.startswith("0x"):
        text = text[2:]
    return text if re.fullmatch(r"[0-9a-f]{64}", text) else None


def _nonempty(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v not in (None, "", (), [], {})}


def _highest_bit(level: int) -> int:
    return 1 << (level.bit_length() - 1) if level > 0 else 0


# --- CivitAI model-version payload (.civitai.info, Lora-Manager's `civitai`) -----------------

def civitai_version_facts(payload: Mapping[str, Any], source: str) -> Facts:
    """Facts from a CivitAI model-version object (GET /model-versions/by-hash/{hash})."""
    model = as_dict(payload.get("model"))
    stats = as_dict(payload.get("stats")) or as_dict(model.get("stats"))
    nsfw = model.get("nsfw") is True or payload.get("nsfw") is True
    # CivitAI levels are bitmasks of the ratings seen; the highest bit is the rating to compare.
    level = _highest_bit(as_int(model.get("nsfwLevel"), 0, 63) or as_int(payload.get("nsfwLevel"), 0, 63) or 0)
    if nsfw and level == 0:
        level = 4  # flagged NSFW without a level: treat as R, so a PG-13 filter leaves it out
    description = plain_text(model.get("description")) or plain_text(payload.get("description"))
    fields = _nonempty(
        title=as_str(model.get("name")),
        base_model=as_str(payload.get("baseModel")),
        trigger_words=split_words(payload.get("trainedWords")),
        tags=clean_tags(as_list(model.get("tags")) or as_list(payload.get("tags"))),
        downloads=as_int(stats.get("downloadCount"), 1),
        likes=as_int(stats.get("thumbsUpCount"), 1) or as_int(stats.get("favoriteCount"), 1),
        nsfw=nsfw or None,
        nsfw_level=level or None,
        sha256=_primary_sha256(as_list(payload.get("files"))),
        description=description,
        examples=civitai_examples(as_list(payload.get("images"))),
    )
    extra = _nonempty(
        civitai_model_id=as_int(payload.get("modelId"), 1) or as_int(model.get("id"), 1),
        civitai_version_id=as_int(payload.get("id"), 1),
        civitai_version_name=as_str(payload.get("name")),
        civitai_model_type=as_str(model.get("type")),
        rating=as_float(stats.get("rating"), 0, 5),
        creator=as_str(as_dict(payload.get("creator")).get("username") or as_dict(model.get("creator")).get("username")),
    )
    return Facts(source, fields, extra)


def _primary_sha256(files: list[Any]) -> str | None:
    """SHA256 of the primary file (the one a by-hash lookup matched), else of the first file."""
    ordered = sorted((f for f in files if isinstance(f, dict)), key=lambda f: f.get("primary") is not True)
    for f in ordered:
        hashes = as_dict(f.get("hashes"))
        value = sha256_hex(hashes.get("SHA256") or hashes.get("sha256"))
        if value:
            return value
    return None


def civitai_examples(images: list[Any]) -> tuple[ExampleParams, ...]:
    out: list[ExampleParams] = []
    for image in images:
        meta = as_dict(as_dict(image).get("meta"))
        example = example_from_meta(meta)
        if example is not None:
            out.append(example)
            if len(out) >= MAX_EXAMPLES:
                break
    return tuple(out)


def example_from_meta(meta: Mapping[str, Any]) -> ExampleParams | None:
    """A1111-style generation parameters (CivitAI `images[].meta`); None when it has none."""
    width, height = _size(meta.get("Size"))
    example = ExampleParams(
        steps=as_int(meta.get("steps"), 1, 1000),
        cfg=as_float(meta.get("cfgScale"), 0.0, 100.0),
        sampler=as_str(meta.get("sampler")) or None,
        clip_skip=as_int(meta.get("Clip skip", meta.get("clipSkip")), 1, 12),
        width=width,
        height=height,
        prompt=as_str(meta.get("prompt"))[:PROMPT_CHARS] or None,
        negative_prompt=as_str(meta.get("negativePrompt"))[:PROMPT_CHARS] or None,
    )
    if example.steps is None and example.cfg is None and example.sampler is None:
        return None
    return example


def _size(value: Any) -> tuple[int | None, int | None]:
    m = re.fullmatch(r"\s*(\d{2,5})\s*[x×]\s*(\d{2,5})\s*", value) if isinstance(value, str) else None
    if not m:
        return None, None
    return as_int(m.group(1), 64, 16384), as_int(m.group(2), 64, 16384)


# --- one reader per sidecar format -------------------------------------------------------------

def lora_manager_facts(obj: Any) -> Facts:
    """ComfyUI-Lora-Manager `<stem>.metadata.json`: its own fields over its `civitai` payload."""
    if not isinstance(obj, dict):
        return Facts("lora-manager", problems=("metadata.json: not a JSON object; skipped",))
    civitai = as_dict(obj.get("civitai"))
    inner = civitai_version_facts(civitai, "lora-manager") if civitai else Facts("lora-manager")
    tips = usage_tips(obj.get("usage_tips"))
    own = _nonempty(
        title=as_str(obj.get("model_name")),
        base_model=as_str(obj.get("base_model")),
        sha256=sha256_hex(obj.get("sha256")),
        description=plain_text(obj.get("modelDescription")),
        tags=clean_tags(as_list(obj.get("tags"))),
        trigger_words=split_words(obj.get("trainedWords")),
        excluded=obj.get("exclude") is True or None,
        preferred_weight=tips.get("strength"),
        strength_range=_strength_range(tips.get("strength_min"), tips.get("strength_max")),
        clip_skip=tips.get("clip_skip"),
    )
    fields = dict(inner.fields)
    for key, value in own.items():
        if key in ("tags", "trigger_words"):
            fields[key] = union(value, fields.get(key, ()))
        elif key != "base_model" or base_models.is_known(value) or "base_model" not in fields:
            fields[key] = value
    extra = {**inner.extra, **_nonempty(
        preview_url=as_str(obj.get("preview_url")),
        sub_type=as_str(obj.get("sub_type")) or as_str(obj.get("model_type")),
        notes=as_str(obj.get("notes"))[:DESCRIPTION_CHARS],
        favorite=obj.get("favorite") is True or None,
        civitai_deleted=obj.get("civitai_deleted") is True or None,
        clip_strength=tips.get("clip_strength"),
        autov3=as_str(obj.get("autov3")).lower() or None,
    )}
    return Facts("lora-manager", fields, extra)


def usage_tips(value: Any) -> dict[str, Any]:
    """Lora-Manager `usage_tips`: a JSON *string* (sometimes already an object)."""
    if isinstance(value, str) and value.strip():
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    tips = as_dict(value)
    return _nonempty(
        strength=as_float(tips.get("strength"), 0.01, 5.0),
        strength_min=as_float(tips.get("strength_min"), -5.0, 5.0),
        strength_max=as_float(tips.get("strength_max"), -5.0, 5.0),
        clip_strength=as_float(tips.get("clip_strength"), -5.0, 5.0),
        clip_skip=as_int(tips.get("clip_skip"), 1, 12),
    )


def _strength_range(lo: float | None, hi: float | None) -> tuple[float, float] | None:
    if lo is None or hi is None:
        return None
    return (min(lo, hi), max(lo, hi))


def civitai_info_facts(obj: Any) -> Facts:
    """A1111 Civitai Helper `<stem>.civitai.info`: the raw by-hash payload; `{}` = not on CivitAI."""
    if not isinstance(obj, dict):
        return Facts("civitai-info", problems=("civitai.info: not a JSON object; skipped",))
    if not obj or (set(obj) <= {"error", "message"}):
        return Facts("civitai-info", extra={"civitai_not_found": True})
    return civitai_version_facts(obj, "civitai-info")


def rgthree_facts(obj: Any) -> Facts:
    """rgthree-comfy `<file.ext>.rgthree-info.json`: its fields over its `raw.civitai` payload."""
    if not isinstance(obj, dict):
        return Facts("rgthree", problems=("rgthree-info.json: not a JSON object; skipped",))
    raw_civitai = as_dict(as_dict(obj.get("raw")).get("civitai"))
    inner = civitai_version_facts(raw_civitai, "rgthree") if raw_civitai else Facts("rgthree")
    examples = tuple(e for e in (_rgthree_example(i) for i in as_list(obj.get("images"))) if e)[:MAX_EXAMPLES]
    own = _nonempty(
        title=as_str(obj.get("name")),
        base_model=as_str(obj.get("baseModel")),
        sha256=sha256_hex(obj.get("sha256")),
        trigger_words=split_words(obj.get("trainedWords")),
        examples=examples,
    )
    fields = {**inner.fields, **own}
    if "trigger_words" in own:
        fields["trigger_words"] = union(own["trigger_words"], inner.fields.get("trigger_words", ()))
    return Facts("rgthree", fields, {**inner.extra, **_nonempty(rgthree_type=as_str(obj.get("type")))})


def _rgthree_example(image: Any) -> ExampleParams | None:
    image = as_dict(image)
    example = ExampleParams(
        steps=as_int(image.get("steps"), 1, 1000),
        cfg=as_float(image.get("cfg"), 0.0, 100.0),
        sampler=as_str(image.get("sampler")) or None,
        width=as_int(image.get("width"), 64, 16384),
        height=as_int(image.get("height"), 64, 16384),
        prompt=as_str(image.get("positive"))[:PROMPT_CHARS] or None,
        negative_prompt=as_str(image.get("negative"))[:PROMPT_CHARS] or None,
    )
    if example.steps is None and example.cfg is None and example.sampler is None:
        return None
    return example


def cm_info_facts(obj: Any) -> Facts:
    """Stability Matrix `<stem>.cm-info.json` (ConnectedModelInfo, PascalCase keys)."""
    if not isinstance(obj, dict):
        return Facts("cm-info", problems=("cm-info.json: not a JSON object; skipped",))
    stats = as_dict(obj.get("Stats"))
    hashes = {str(k).lower(): v for k, v in as_dict(obj.get("Hashes")).items()}
    defaults = as_dict(obj.get("InferenceDefaults"))
    sampler = defaults.get("Sampler")
    example = ExampleParams(
        steps=as_int(defaults.get("Steps"), 1, 1000),
        cfg=as_float(defaults.get("CfgScale"), 0.01, 100.0),
        sampler=(as_str(sampler) or as_str(as_dict(sampler).get("Name"))) or None,
        width=as_int(defaults.get("Width"), 64, 16384),
        height=as_int(defaults.get("Height"), 64, 16384),
    )
    fields = _nonempty(
        title=as_str(obj.get("UserTitle")) or as_str(obj.get("ModelName")),
        description=plain_text(obj.get("ModelDescription")),
        nsfw=obj.get("Nsfw") is True or None,
        nsfw_level=4 if obj.get("Nsfw") is True else None,
        tags=clean_tags(as_list(obj.get("Tags"))),
        base_model=as_str(obj.get("BaseModel")),
        sha256=sha256_hex(hashes.get("sha256")),
        trigger_words=split_words(obj.get("TrainedWords")),
        downloads=as_int(stats.get("downloadCount"), 1),
        likes=as_int(stats.get("thumbsUpCount"), 1) or as_int(stats.get("favoriteCount"), 1),
        examples=(example,) if example.steps or example.cfg else (),
    )
    extra = _nonempty(civitai_model_id=as_int(obj.get("ModelId"), 1), civitai_version_id=as_int(obj.get("VersionId"), 1),
                      civitai_version_name=as_str(obj.get("VersionName")), rating=as_float(stats.get("rating"), 0, 5))
    return Facts("cm-info", fields, extra)


A1111_KEYS = ("description", "sd version", "activation text", "preferred weight", "negative text", "notes")


def a1111_facts(obj: Any) -> Facts | None:
    """A1111's LoRA-tab `<stem>.json`; None when the file is some other JSON (it is a common name)."""
    if not isinstance(obj, dict) or not any(k in obj for k in A1111_KEYS):
        return None
    base = base_models.from_a1111_sd_version(as_str(obj.get("sd version")))
    fields = _nonempty(
        description=plain_text(obj.get("description")),
        base_model=base if base_models.is_known(base) else None,
        trigger_words=split_words(as_str(obj.get("activation text"))),
        preferred_weight=as_float(obj.get("preferred weight"), 0.01, 5.0),  # 0 means "unset"
    )
    extra = _nonempty(negative_text=as_str(obj.get("negative text"))[:PROMPT_CHARS],
                      notes=as_str(obj.get("notes"))[:DESCRIPTION_CHARS])
    return Facts("a1111", fields, extra)


def _read_sha256_file(path: str) -> Facts:
    """pysssss `<stem>.sha256`: the file's hash as hex text (a hash cache, trusted as such)."""
    try:
        with open(path, "rb") as f:
            text = f.read(256).decode("ascii", "replace")
    except OSError as e:
        log.warning("cannot read %s: %s", path, e)
        return Facts("pysssss", problems=(f"{os.path.basename(path)}: cannot read; skipped",))
    digest = sha256_hex(text.split()[0] if text.split() else "")
    return Facts("pysssss", _nonempty(sha256=digest))


_JSON_READERS: dict[str, Callable[[Any], Facts | None]] = {
    "lora-manager": lora_manager_facts,
    "civitai-info": civitai_info_facts,
    "rgthree": rgthree_facts,
    "cm-info": cm_info_facts,
    "a1111": a1111_facts,
}


# --- trainer metadata in the safetensors header -------------------------------------------------

# Trainer base-model strings for families base_models.from_trainer_metadata does not name.
_TRAINER_VIDEO_BASES = (("hunyuan", "Hunyuan Video"), ("wan", "Wan Video"), ("ltx", "LTXV"), ("mochi", "Mochi"))


def trainer_facts(meta: Mapping[str, str]) -> Facts:
    """Facts from `__metadata__` written by kohya sd-scripts, musubi-tuner and SAI modelspec.

    `sshs_model_hash`/`modelspec.hash_sha256` hash the tensor data only (not the file), so they
    are kept as extra["tensor_sha256"] (its first 12 hex digits are CivitAI's AutoV3), never as
    the file's sha256: looking that up as a SHA256 would find nothing.
    """
    base = base_models.from_trainer_metadata(dict(meta))
    if not base_models.is_known(base):
        trained_on = (meta.get("ss_base_model_version", "") + " " + meta.get("modelspec.architecture", "")).lower()
        base = next((b for word, b in _TRAINER_VIDEO_BASES if word in trained_on), "")
    tensor_hash = sha256_hex(meta.get("modelspec.hash_sha256")) or sha256_hex(meta.get("sshs_model_hash"))
    fields = _nonempty(
        base_model=base,
        title=as_str(meta.get("modelspec.title")) or as_str(meta.get("ss_output_name")),
        description=plain_text(meta.get("modelspec.description")),
        trigger_words=split_words(as_str(meta.get("modelspec.trigger_phrase"))),
        tags=training_tags(meta.get("ss_tag_frequency")),
    )
    extra = _nonempty(
        tensor_sha256=tensor_hash,
        autov3=tensor_hash[:12] if tensor_hash else None,
        network_dim=as_int(meta.get("ss_network_dim"), 1),
        network_alpha=as_float(meta.get("ss_network_alpha"), 0),
        trained_on=as_str(meta.get("ss_sd_model_name")),
    )
    return Facts(HEADER_SOURCE, fields, extra)


def training_tags(value: Any, top: int = TOP_TRAINING_TAGS) -> tuple[str, ...]:
    """kohya `ss_tag_frequency` (JSON string: dataset -> tag -> count): the most frequent tags."""
    if not isinstance(value, str) or not value:
        return ()
    try:
        datasets = jsonio.loads(value)
    except (ValueError, RecursionError):
        return ()
    raw_counts: dict[str, int] = {}
    for tags in as_dict(datasets).values():
        for raw_tag, count in as_dict(tags).items():
            n = count if type(count) is int else as_int(count, 1)
            if n and n > 0:
                raw_counts[raw_tag] = raw_counts.get(raw_tag, 0) + n
    # Clean only as many of the most frequent raw tags as it takes to fill `top`: datasets
    # carry thousands of tags and a cold scan reads thousands of LoRAs.
    out: list[str] = []
    for raw_tag, _ in sorted(raw_counts.items(), key=lambda kv: (-kv[1], kv[0])):
        tag = _clean_tag(raw_tag)
        if tag and tag not in out:
            out.append(tag)
            if len(out) >= top:
                break
    return tuple(out)
