"""Readers for the sidecar files other tools leave next to a model, and for trainer metadata.

Each reader turns one source into `Facts`: the ModelRecord fields that source knows (only
non-empty values), plus `extra` keys and problems. `merge.py` combines them in a fixed order
of trust. Every value is untrusted input from another program's file: readers check types
and ranges and drop what does not fit rather than raise. Formats: shared/reference/formats.md.
"""
from __future__ import annotations

import heapq
import logging
import os
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Iterable, Mapping, Sequence

from . import base_models, jsonio
from .records import ExampleParams
from .safe_open import FileTooLarge, NotRegularFile, describe, open_regular, printable, read_regular
from .values import (
    DESCRIPTION_CHARS,
    as_dict,
    as_float,
    as_int,
    as_list,
    as_str,
    clean_tag,
    clean_tags,
    plain_text,
    sha256_hex,
    split_words,
    union,
)

log = logging.getLogger(__name__)

MAX_SIDECAR_BYTES = 16 * 1024 * 1024  # a Lora-Manager file with a full CivitAI payload is ~100 KB
PROMPT_CHARS = 1000  # example prompts are hints, not archives: keep the cache small
MAX_EXAMPLES = 10
TOP_TRAINING_TAGS = 15

# Sidecar roles, most trusted first (the merge order of formats.md: explicit sidecars > header
# facts), as (source, suffix, after): the sidecar's file name is the model's stem + suffix, or its
# whole file name + suffix when `after` is true. `api-info` is sd-civitai-browser-plus's copy of
# the CivitAI model object. SIDECARS gives the same as (source, name(file_name, stem)).
SIDECAR_SUFFIXES: tuple[tuple[str, str, bool], ...] = (
    ("lora-manager", ".metadata.json", False),
    ("civitai-info", ".civitai.info", False),
    ("rgthree", ".rgthree-info.json", True),
    ("cm-info", ".cm-info.json", False),
    ("api-info", ".api_info.json", False),
    ("a1111", ".json", False),
    ("pysssss", ".sha256", False),
)


def _sidecar_namer(suffix: str, after: bool) -> Callable[[str, str], str]:
    return (lambda file_name, stem: file_name + suffix) if after else (lambda file_name, stem: stem + suffix)


SIDECARS: tuple[tuple[str, Callable[[str, str], str]], ...] = tuple(
    (source, _sidecar_namer(suffix, after)) for source, suffix, after in SIDECAR_SUFFIXES)

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

    Never raises: an unreadable or broken file, or a field no reader expected, gives Facts with
    problem strings and one log line, so one bad sidecar costs only its own facts (and one bad
    field only that field).
    """
    try:
        facts = _read(source, path)
    except Exception as e:  # noqa: BLE001 - a reader's failure costs only this sidecar
        facts = Facts(source, problems=(f"{_file_label(path)}: could not be read ({type(e).__name__}); skipped",))
    if facts is not None and facts.problems:
        log.warning("sidecar %r: %s", path, "; ".join(facts.problems))
    return facts


def _read(source: str, path: str) -> Facts | None:
    if source == "pysssss":
        return _read_sha256_file(path)
    obj, problem = load_json(path)
    if problem:
        return Facts(source, problems=(f"{_file_label(path)}: {problem}; skipped",))
    reader = _JSON_READERS[source]
    if source in _MODEL_NAME_SUFFIXES and reader in _READERS_TAKING_A_STEM:
        return reader(obj, file_stem=model_stem(source, path))
    return reader(obj)


# Sidecar name -> the model's file stem, for readers that must tell the model's own file among a
# CivitAI version's files.
_MODEL_NAME_SUFFIXES = {"lora-manager": ".metadata.json", "civitai-info": ".civitai.info",
                        "rgthree": ".rgthree-info.json", "api-info": ".api_info.json"}


def model_stem(source: str, path: str) -> str | None:
    """The stem of the model file whose sidecar of role `source` is at `path` (None if unknown)."""
    name = os.path.basename(path)
    suffix = _MODEL_NAME_SUFFIXES.get(source)
    if suffix is None or not name.lower().endswith(suffix) or len(name) == len(suffix):
        return None
    stem = name[:-len(suffix)]
    return os.path.splitext(stem)[0] if source == "rgthree" else stem  # rgthree keeps the extension


def _file_label(path: str) -> str:
    return printable(os.path.basename(path), 200)


def load_json(path: str) -> tuple[Any, str | None]:
    """(parsed JSON, None) or (None, problem). Reads only a regular file, at most MAX_SIDECAR_BYTES
    (a FIFO or device is refused, whatever its size says); logs nothing (read_sidecar does)."""
    try:
        raw = read_regular(path, MAX_SIDECAR_BYTES)
    except (NotRegularFile, FileTooLarge) as e:
        return None, str(e)
    except OSError as e:
        return None, f"cannot read: {describe(e)}"
    if raw.startswith(b"\xef\xbb\xbf"):  # a BOM from Windows editors
        raw = raw[3:]
    try:
        return jsonio.loads(raw), None
    except (ValueError, RecursionError):
        return None, "not valid JSON"


def _nonempty(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v not in (None, "", (), [], {})}


def _collect(label: str, problems: list[str], **getters: Callable[[], Any]) -> dict[str, Any]:
    """The non-empty values of `getters`, each computed on its own.

    Every value read from another program's file goes through here: a getter that raises (a
    pathological value no helper expected) drops only its own key and adds one problem string,
    and the rest of the sidecar still counts."""
    out: dict[str, Any] = {}
    for key, getter in getters.items():
        try:
            value = getter()
        except Exception as e:  # noqa: BLE001 - contained to this one field
            problems.append(f"{label}: {key} could not be read ({type(e).__name__}); dropped")
            continue
        if value not in (None, "", (), [], {}):
            out[key] = value
    return out


def _not_an_object(source: str, label: str) -> Facts:
    return Facts(source, problems=(f"{label}: not a JSON object; skipped",))


def _highest_bit(level: int) -> int:
    return 1 << (level.bit_length() - 1) if level > 0 else 0


# --- CivitAI model-version payload (.civitai.info, Lora-Manager's `civitai`) -----------------

def civitai_version_facts(payload: Mapping[str, Any], source: str, label: str = "civitai payload",
                          file_stem: str | None = None) -> Facts:
    """Facts from a CivitAI model-version object (GET /model-versions/by-hash/{hash}).

    `file_stem`: the stem of the model file the payload describes, when known (see _file_sha256)."""
    problems: list[str] = []
    model = as_dict(payload.get("model"))
    stats = as_dict(payload.get("stats")) or as_dict(model.get("stats"))
    nsfw = model.get("nsfw") is True or payload.get("nsfw") is True
    fields = _collect(
        label, problems,
        title=lambda: as_str(model.get("name")),
        base_model=lambda: as_str(payload.get("baseModel")),
        trigger_words=lambda: split_words(payload.get("trainedWords")),
        tags=lambda: clean_tags(as_list(model.get("tags")) or as_list(payload.get("tags"))),
        downloads=lambda: as_int(stats.get("downloadCount"), 1),
        likes=lambda: as_int(stats.get("thumbsUpCount"), 1) or as_int(stats.get("favoriteCount"), 1),
        nsfw=lambda: nsfw or None,
        nsfw_level=lambda: _nsfw_level(model, payload, nsfw) or None,
        sha256=lambda: _file_sha256(as_list(payload.get("files")), file_stem),
        description=lambda: plain_text(model.get("description")) or plain_text(payload.get("description")),
        examples=lambda: civitai_examples(as_list(payload.get("images"))),
    )
    extra = _collect(
        label, problems,
        civitai_model_id=lambda: as_int(payload.get("modelId"), 1) or as_int(model.get("id"), 1),
        civitai_version_id=lambda: as_int(payload.get("id"), 1),
        civitai_version_name=lambda: as_str(payload.get("name")),
        civitai_model_type=lambda: as_str(model.get("type")),
        rating=lambda: as_float(stats.get("rating"), 0, 5),
        creator=lambda: as_str(as_dict(payload.get("creator")).get("username")
                               or as_dict(model.get("creator")).get("username")),
    )
    return Facts(source, fields, extra, tuple(problems))


def _nsfw_level(model: Mapping[str, Any], payload: Mapping[str, Any], nsfw: bool) -> int:
    # CivitAI levels are bitmasks of the ratings seen; the highest bit is the rating to compare.
    level = _highest_bit(as_int(model.get("nsfwLevel"), 0, 63) or as_int(payload.get("nsfwLevel"), 0, 63) or 0)
    if nsfw and level == 0:
        level = 4  # flagged NSFW without a level: treat as R, so a PG-13 filter leaves it out
    return level


MODEL_FILE_SUFFIXES = (".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin", ".gguf")


def _file_sha256(files: list[Any], file_stem: str | None = None) -> str | None:
    """SHA256 of the model's own file among a version's files.

    By-hash answers carry every file of the version and do not mark the one that matched (civitai
    `src/pages/api/v1/model-versions/by-hash/[hash].ts`), and a version often has several model
    files (pruned fp16 and full fp32, safetensors and pickle). So: the file named like the model
    (`file_stem`); else the version's only model file; else nothing (hashing the file tells) rather
    than another file's hash. Without a stem: the primary file's, else the first one's."""
    hashed: list[tuple[Mapping[str, Any], str]] = []
    for f in files:
        if isinstance(f, dict):
            hashes = as_dict(f.get("hashes"))
            value = sha256_hex(hashes.get("SHA256") or hashes.get("sha256"))
            if value:
                hashed.append((f, value))
    if not hashed:
        return None
    if file_stem is None:
        return next((h for f, h in hashed if f.get("primary") is True), hashed[0][1])
    stem = file_stem.lower()
    for f, h in hashed:
        if os.path.splitext(as_str(f.get("name")))[0].lower() == stem:
            return h
    models = [h for f, h in hashed if as_str(f.get("name")).lower().endswith(MODEL_FILE_SUFFIXES)]
    if len(models) == 1:
        return models[0]
    return hashed[0][1] if len(hashed) == 1 else None


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
    """A1111 "Size": "512x768" or "832 × 1216" (2 to 5 digits each side)."""
    text = value.strip() if isinstance(value, str) else ""
    if len(text) > 64:
        return None, None
    width, x, height = text.replace("×", "x").partition("x")
    width, height = width.strip(), height.strip()
    if not (x and 2 <= len(width) <= 5 and 2 <= len(height) <= 5 and width.isdecimal() and height.isdecimal()):
        return None, None
    return as_int(width, 64, 16384), as_int(height, 64, 16384)


# --- one reader per sidecar format -------------------------------------------------------------

def lora_manager_facts(obj: Any, file_stem: str | None = None) -> Facts:
    """ComfyUI-Lora-Manager `<stem>.metadata.json`: its own fields over its `civitai` payload."""
    label = "metadata.json"
    if not isinstance(obj, dict):
        return _not_an_object("lora-manager", label)
    problems: list[str] = []
    civitai = as_dict(obj.get("civitai"))
    inner = civitai_version_facts(civitai, "lora-manager", f"{label} civitai", file_stem) if civitai \
        else Facts("lora-manager")
    tips: Mapping[str, Any] = _collect(label, problems, usage_tips=lambda: parse_usage_tips(obj.get("usage_tips"))).get(
        "usage_tips", {})
    own = _collect(
        label, problems,
        title=lambda: as_str(obj.get("model_name")),
        base_model=lambda: as_str(obj.get("base_model")),
        sha256=lambda: sha256_hex(obj.get("sha256")),
        description=lambda: plain_text(obj.get("modelDescription")),
        tags=lambda: clean_tags(as_list(obj.get("tags"))),
        trigger_words=lambda: split_words(obj.get("trainedWords")),
        excluded=lambda: obj.get("exclude") is True or None,
        preferred_weight=lambda: tips.get("strength"),
        strength_range=lambda: _strength_range(tips.get("strength_min"), tips.get("strength_max")),
        clip_skip=lambda: tips.get("clip_skip"),
    )
    fields = dict(inner.fields)
    for key, value in own.items():
        if key in ("tags", "trigger_words"):
            fields[key] = union(value, fields.get(key, ()))
        elif key != "base_model" or base_models.is_known(value) or "base_model" not in fields:
            fields[key] = value
    extra = {**inner.extra, **_collect(
        label, problems,
        preview_url=lambda: as_str(obj.get("preview_url")),
        sub_type=lambda: as_str(obj.get("sub_type")) or as_str(obj.get("model_type")),
        notes=lambda: as_str(obj.get("notes"))[:DESCRIPTION_CHARS],
        favorite=lambda: obj.get("favorite") is True or None,
        civitai_deleted=lambda: obj.get("civitai_deleted") is True or None,
        clip_strength=lambda: tips.get("clip_strength"),
        autov3=lambda: as_str(obj.get("autov3")).lower() or None,
    )}
    _keep_civitai_base_model(inner, fields, extra)
    return Facts("lora-manager", fields, extra, inner.problems + tuple(problems))


# merge.RICHER_BASE_MODEL_EXTRA: a sidecar's second base model, the one CivitAI wrote.
CIVITAI_BASE_MODEL_EXTRA = "civitai_base_model"


def _keep_civitai_base_model(inner: Facts, fields: Mapping[str, Any], extra: dict[str, Any]) -> None:
    """When a tool's own base model replaced its CivitAI payload's, keep CivitAI's in `extra`:
    Lora-Manager writes "Pony" for "Pony V7" and "SDXL 1.0" for "SDXL Lightning", and the merge
    keeps the richer spelling of the same model (a different model, a user's fix, stays)."""
    civitai_base = inner.fields.get("base_model")
    if civitai_base and fields.get("base_model") != civitai_base:
        extra[CIVITAI_BASE_MODEL_EXTRA] = civitai_base


MAX_USAGE_TIPS_CHARS = 4096  # a handful of numbers; anything longer is not usage tips


def parse_usage_tips(value: Any) -> dict[str, Any]:
    """Lora-Manager `usage_tips`: a JSON *string* (sometimes already an object) of numbers in range.
    A string that is not JSON (or too long or deep to be tips) raises ValueError, so the reader
    reports the field as unreadable and keeps the rest; other types and out-of-range numbers give
    no tips."""
    if isinstance(value, str):
        if not value.strip():
            return {}
        if len(value) > MAX_USAGE_TIPS_CHARS:
            raise ValueError(f"usage_tips longer than {MAX_USAGE_TIPS_CHARS} characters")
        try:
            value = jsonio.loads(value)
        except RecursionError as e:
            raise ValueError("usage_tips nested too deeply") from e
    tips = as_dict(value)
    return _nonempty(
        strength=as_float(tips.get("strength"), 0.01, 5.0),
        strength_min=as_float(tips.get("strength_min"), -5.0, 5.0),
        strength_max=as_float(tips.get("strength_max"), -5.0, 5.0),
        # Lora-Manager's editor writes `clip_strength`; its Python reads `clipStrength`
        # (py/services/lora_service.py); its JavaScript reads either: so do we, snake_case first.
        clip_strength=as_float(tips["clip_strength"] if "clip_strength" in tips else tips.get("clipStrength"),
                               -5.0, 5.0),
        clip_skip=as_int(tips.get("clip_skip"), 1, 12),
    )


def _strength_range(lo: float | None, hi: float | None) -> tuple[float, float] | None:
    if lo is None or hi is None:
        return None
    return (min(lo, hi), max(lo, hi))


def civitai_info_facts(obj: Any, file_stem: str | None = None) -> Facts:
    """A1111 Civitai Helper `<stem>.civitai.info`: the raw by-hash payload; `{}` = not on CivitAI."""
    if not isinstance(obj, dict):
        return _not_an_object("civitai-info", "civitai.info")
    if not obj or (set(obj) <= {"error", "message"}):
        return Facts("civitai-info", extra={"civitai_not_found": True})
    return civitai_version_facts(obj, "civitai-info", "civitai.info", file_stem)


def rgthree_facts(obj: Any, file_stem: str | None = None) -> Facts:
    """rgthree-comfy `<file.ext>.rgthree-info.json`: its fields over its `raw.civitai` payload.

    `trainedWords` mixes trigger words (`civitai: true`, `user: true`) with the training-caption
    tags rgthree copies from the header's `ss_tag_frequency` (`metadata: true`, with a `count`):
    only the first are trigger words; the most frequent captions are tags. `strengthMin` and
    `strengthMax` are the user's recommended range (rgthree saves them as text, "0.50")."""
    label = "rgthree-info.json"
    if not isinstance(obj, dict):
        return _not_an_object("rgthree", label)
    problems: list[str] = []
    raw_civitai = as_dict(as_dict(obj.get("raw")).get("civitai"))
    inner = civitai_version_facts(raw_civitai, "rgthree", f"{label} civitai", file_stem) if raw_civitai \
        else Facts("rgthree")
    words = as_list(obj.get("trainedWords"))
    ends = _collect(label, problems, strength_min=lambda: as_float(obj.get("strengthMin"), -5.0, 5.0),
                    strength_max=lambda: as_float(obj.get("strengthMax"), -5.0, 5.0))
    own = _collect(
        label, problems,
        title=lambda: as_str(obj.get("name")),
        base_model=lambda: as_str(obj.get("baseModel")),
        sha256=lambda: sha256_hex(obj.get("sha256")),
        # `triggerWords`: the plain list of user trigger words of older rgthree versions
        trigger_words=lambda: split_words([w for w in words if _rgthree_trigger(w)]
                                          + [w for w in as_list(obj.get("triggerWords")) if isinstance(w, str)]),
        tags=lambda: _rgthree_caption_tags(words),
        strength_range=lambda: _strength_range(ends.get("strength_min"), ends.get("strength_max")),
        examples=lambda: tuple(islice(filter(None, map(_rgthree_example, as_list(obj.get("images")))), MAX_EXAMPLES)),
    )
    fields = {**inner.fields, **own}
    if "trigger_words" in own:
        fields["trigger_words"] = union(own["trigger_words"], inner.fields.get("trigger_words", ()))
    if "tags" in own:
        fields["tags"] = union(inner.fields.get("tags", ()), own["tags"])
    extra = {**inner.extra, **_collect(
        label, problems,
        rgthree_type=lambda: as_str(obj.get("type")),
        notes=lambda: as_str(obj.get("userNote"))[:DESCRIPTION_CHARS],
        trained_on=lambda: as_str(obj.get("baseModelFile")),
    ), **ends}
    _keep_civitai_base_model(inner, fields, extra)
    return Facts("rgthree", fields, extra, inner.problems + tuple(problems))


def _rgthree_trigger(word: Any) -> bool:
    """A `trainedWords` entry that is a trigger word: from CivitAI or the user, or not marked as
    a training caption (`metadata: true` alone). rgthree merges a caption into an entry CivitAI
    also lists, which then carries both marks and stays a trigger word."""
    if isinstance(word, str):
        return True
    entry = as_dict(word)
    return entry.get("civitai") is True or entry.get("user") is True or entry.get("metadata") is not True


def _rgthree_caption_tags(words: list[Any], top: int = TOP_TRAINING_TAGS) -> tuple[str, ...]:
    """The most frequent training captions of an rgthree `trainedWords` list, as tags."""
    counts = [(as_int(e.get("count"), 0) or 0, e["word"]) for e in map(as_dict, words)
              if not _rgthree_trigger(e) and isinstance(e.get("word"), str)]
    ranked = heapq.nsmallest(top * 4, counts, key=lambda cw: (-cw[0], cw[1]))
    return _first_clean_tags(((word, count) for count, word in ranked), top)


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
    label = "cm-info.json"
    if not isinstance(obj, dict):
        return _not_an_object("cm-info", label)
    problems: list[str] = []
    stats = as_dict(obj.get("Stats"))
    fields = _collect(
        label, problems,
        title=lambda: as_str(obj.get("UserTitle")) or as_str(obj.get("ModelName")),
        description=lambda: plain_text(obj.get("ModelDescription")),
        nsfw=lambda: obj.get("Nsfw") is True or None,
        nsfw_level=lambda: 4 if obj.get("Nsfw") is True else None,
        tags=lambda: clean_tags(as_list(obj.get("Tags"))),
        base_model=lambda: as_str(obj.get("BaseModel")),
        sha256=lambda: sha256_hex(next((v for k, v in as_dict(obj.get("Hashes")).items()
                                        if str(k).lower() == "sha256"), None)),
        trigger_words=lambda: split_words(obj.get("TrainedWords")),
        downloads=lambda: as_int(stats.get("downloadCount"), 1),
        likes=lambda: as_int(stats.get("thumbsUpCount"), 1) or as_int(stats.get("favoriteCount"), 1),
        examples=lambda: _cm_info_examples(as_dict(obj.get("InferenceDefaults"))),
    )
    extra = _collect(
        label, problems,
        civitai_model_id=lambda: as_int(obj.get("ModelId"), 1),
        civitai_version_id=lambda: as_int(obj.get("VersionId"), 1),
        civitai_version_name=lambda: as_str(obj.get("VersionName")),
        rating=lambda: as_float(stats.get("rating"), 0, 5),
        creator=lambda: as_str(obj.get("AuthorUsername")),
    )
    return Facts("cm-info", fields, extra, tuple(problems))


def _cm_info_examples(defaults: Mapping[str, Any]) -> tuple[ExampleParams, ...]:
    sampler = defaults.get("Sampler")
    example = ExampleParams(
        steps=as_int(defaults.get("Steps"), 1, 1000),
        cfg=as_float(defaults.get("CfgScale"), 0.01, 100.0),
        sampler=(as_str(sampler) or as_str(as_dict(sampler).get("Name"))) or None,
        width=as_int(defaults.get("Width"), 64, 16384),
        height=as_int(defaults.get("Height"), 64, 16384),
    )
    return (example,) if example.steps or example.cfg else ()


def api_info_facts(obj: Any, file_stem: str | None = None) -> Facts:
    """sd-civitai-browser-plus `<stem>.api_info.json` (its `save_api_info` option): the CivitAI
    *model* object (GET /api/v1/models: name, description, tags, creator, stats, and every version
    in `modelVersions`). The version is the one with a file named like the model, else the only
    one; with neither, only the model-wide facts count (no base model, no hash)."""
    label = "api_info.json"
    if not isinstance(obj, dict):
        return _not_an_object("api-info", label)
    versions = [v for v in as_list(obj.get("modelVersions")) if isinstance(v, dict)]
    version = _version_with_file(versions, file_stem)
    model = {key: obj.get(key) for key in ("name", "type", "nsfw", "nsfwLevel", "tags", "description", "stats")}
    payload = {**(version or {}), "model": model, "modelId": obj.get("id"), "creator": obj.get("creator")}
    return civitai_version_facts(payload, "api-info", label, file_stem)


def _version_with_file(versions: Sequence[Mapping[str, Any]], file_stem: str | None) -> Mapping[str, Any] | None:
    if file_stem is not None:
        stem = file_stem.lower()
        for version in versions:
            for f in as_list(version.get("files")):
                if os.path.splitext(as_str(as_dict(f).get("name")))[0].lower() == stem:
                    return version
    return versions[0] if len(versions) == 1 else None


A1111_KEYS = ("description", "sd version", "activation text", "preferred weight", "negative text", "notes")


def a1111_facts(obj: Any) -> Facts | None:
    """A1111's LoRA-tab `<stem>.json`, which sd-civitai-browser-plus also writes (adding `modelId`
    and the downloaded file's `sha256`, sometimes alone); None when the file is some other JSON
    (it is a common name)."""
    if not isinstance(obj, dict):
        return None
    label = "a1111 json"
    problems: list[str] = []
    ids = _collect(label, problems, sha256=lambda: sha256_hex(obj.get("sha256")),
                   civitai_model_id=lambda: as_int(obj.get("modelId"), 1))
    if not ids and not any(k in obj for k in A1111_KEYS):
        return None
    fields = _collect(
        label, problems,
        description=lambda: plain_text(obj.get("description")),
        base_model=lambda: _a1111_base_model(obj.get("sd version")),
        trigger_words=lambda: split_words(as_str(obj.get("activation text"))),
        preferred_weight=lambda: as_float(obj.get("preferred weight"), 0.01, 5.0),  # 0 means "unset"
        sha256=lambda: ids.get("sha256"),
    )
    extra = _collect(
        label, problems,
        negative_text=lambda: as_str(obj.get("negative text"))[:PROMPT_CHARS],
        notes=lambda: as_str(obj.get("notes"))[:DESCRIPTION_CHARS],
        civitai_model_id=lambda: ids.get("civitai_model_id"),
    )
    return Facts("a1111", fields, extra, tuple(problems))


def _a1111_base_model(value: Any) -> str | None:
    base = base_models.from_a1111_sd_version(as_str(value))
    return base if base_models.is_known(base) else None


def _read_sha256_file(path: str) -> Facts:
    """pysssss `<stem>.sha256`: the file's hash as hex text (a hash cache, trusted as such).
    Only its first bytes are read, and only from a regular file."""
    try:
        with open_regular(path) as f:
            head = f.read(SHA256_FILE_BYTES)
    except NotRegularFile as e:
        return Facts("pysssss", problems=(f"{_file_label(path)}: {e}; skipped",))
    except OSError as e:
        return Facts("pysssss", problems=(f"{_file_label(path)}: cannot read: {describe(e)}; skipped",))
    words = head.decode("ascii", "replace").split()
    return Facts("pysssss", _nonempty(sha256=sha256_hex(words[0] if words else "")))


SHA256_FILE_BYTES = 256

_READERS_TAKING_A_STEM: frozenset[Callable[..., Facts | None]] = frozenset(
    {lora_manager_facts, civitai_info_facts, rgthree_facts, api_info_facts})
_JSON_READERS: dict[str, Callable[..., Facts | None]] = {
    "lora-manager": lora_manager_facts,
    "civitai-info": civitai_info_facts,
    "rgthree": rgthree_facts,
    "cm-info": cm_info_facts,
    "api-info": api_info_facts,
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
    label = "header metadata"
    problems: list[str] = []
    tensor_hash = _collect(label, problems, tensor_sha256=lambda: sha256_hex(meta.get("modelspec.hash_sha256"))
                           or sha256_hex(meta.get("sshs_model_hash"))).get("tensor_sha256")
    fields = _collect(
        label, problems,
        base_model=lambda: _trainer_base_model(meta),
        title=lambda: as_str(meta.get("modelspec.title")) or as_str(meta.get("ss_output_name")),
        description=lambda: plain_text(meta.get("modelspec.description")),
        trigger_words=lambda: split_words(as_str(meta.get("modelspec.trigger_phrase"))),
        tags=lambda: training_tags(meta.get("ss_tag_frequency")),
    )
    extra = _collect(
        label, problems,
        tensor_sha256=lambda: tensor_hash,
        autov3=lambda: tensor_hash[:12] if tensor_hash else None,
        network_dim=lambda: as_int(meta.get("ss_network_dim"), 1),
        network_alpha=lambda: as_float(meta.get("ss_network_alpha"), 0),
        trained_on=lambda: as_str(meta.get("ss_sd_model_name")),
    )
    return Facts(HEADER_SOURCE, fields, extra, tuple(problems))


def _trainer_base_model(meta: Mapping[str, str]) -> str:
    base = base_models.from_trainer_metadata(dict(meta))
    if base_models.is_known(base):
        return base
    trained_on = (as_str(meta.get("ss_base_model_version")) + " " + as_str(meta.get("modelspec.architecture"))).lower()
    return next((b for word, b in _TRAINER_VIDEO_BASES if word in trained_on), "")


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
    # carry thousands of tags and a cold scan reads thousands of LoRAs. A partial selection
    # usually suffices; the full sort is needed only when many top tags clean to duplicates.
    def rank(kv: tuple[str, int]) -> tuple[int, str]:
        return (-kv[1], kv[0])

    candidates = heapq.nsmallest(top * 4, raw_counts.items(), key=rank)
    out = _first_clean_tags(candidates, top)
    if len(out) < top and len(candidates) < len(raw_counts):
        out = _first_clean_tags(sorted(raw_counts.items(), key=rank), top)
    return out


def _first_clean_tags(ranked: Iterable[tuple[str, int]], top: int) -> tuple[str, ...]:
    out: list[str] = []
    for raw_tag, _ in ranked:
        tag = clean_tag(raw_tag)
        if tag and tag not in out:
            out.append(tag)
            if len(out) >= top:
                break
    return tuple(out)
