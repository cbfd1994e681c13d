"""HTTP routes under /intelligent/api/ (contracts.md, "Routes"). Bad input is a 400 with a message."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping
from urllib.parse import quote

from aiohttp import web

from ..metadata import base_models
from ..metadata.flags import MAX_NAME_CHARS, FlaggedIndex, FlagsError, is_favorite
from ..metadata.paths import inside_root
from ..metadata.records import FOLDER_KINDS, ModelRecord
from ..metadata.safe_open import describe, read_regular
from ..selector import planner
from ..settings import SettingsError, schema
from .common import samplers, schedulers
from .runtime import get_runtime

log = logging.getLogger(__name__)

PREFIX = "/intelligent/api"


def _error(status: int, message: str, field: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    return web.json_response(body, status=status)


# A request body of ours is a plan request (a prompt of at most 100,000 characters, 12 bytes each
# at worst as JSON escapes of surrogate pairs), a settings object or a flags object: 2 MiB holds
# any of them, and parsing that much on the event loop takes milliseconds, not seconds.
MAX_BODY_BYTES = 2 * 1024 * 1024


def _bad_body(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message, "field": "body"}), content_type="application/json")


async def _json_body(request: web.Request) -> Any:
    """The JSON body, read at most MAX_BODY_BYTES (ComfyUI itself accepts up to 100 MB)."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise _bad_body(f"the body is {request.content_length:,} bytes; the most accepted is {MAX_BODY_BYTES:,}")
    chunks: list[bytes] = []
    total = 0
    while chunk := await request.content.read(64 * 1024):  # a chunked body has no length up front
        total += len(chunk)
        if total > MAX_BODY_BYTES:
            raise _bad_body(f"the body is over {MAX_BODY_BYTES:,} bytes, the most accepted")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError) as e:
        raise _bad_body(f"the body is not valid JSON: {type(e).__name__}") from e


def make_plan(body: Any) -> dict:
    """The whole plan for a request body: the same planner the nodes use, in one call."""
    if not isinstance(body, dict):
        raise planner.PlanRequestError("body", "must be a JSON object")
    request = planner.parse_request(body)
    rt = get_runtime()
    plan = planner.build_plan(request, rt.ready_index(), meaning=rt.plan_meaning(), llm=rt.analyst(request.use_ollama),
                              valid_samplers=samplers(),
                              valid_schedulers=schedulers(),
                              max_nsfw_level=int(rt.settings.get("selection.max_nsfw_level")),
                              max_loras=int(rt.settings.get("selection.max_loras")))
    from .sampler import memory_for

    plan["memory"] = memory_for(plan)
    partial = rt.index_warning()
    if partial:
        plan["warnings"].append(partial)
    return plan


# The pack's own worker threads: requests that wait for a first scan must not take the loop's
# default pool, which aiohttp also uses to serve ComfyUI's static files and images.
_workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="intelligent-api")


# plans have workers of their own: one may wait up to ollama.timeout_s for an LLM, and the other
# routes (stats, models, monitor) must answer meanwhile
_plan_workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="intelligent-plan")


async def off_loop(fn, *args, pool: ThreadPoolExecutor | None = None):
    """Run blocking work (a first scan still under way, a stat-walk re-check, planning) in a worker
    thread, so ComfyUI's event loop keeps serving the editor and the websocket meanwhile."""
    return await asyncio.get_running_loop().run_in_executor(pool or _workers, fn, *args)


# --- GET models ---------------------------------------------------------------------------------

MAX_PAGE = 10000  # items in one answer (a 50k library is five pages)
MAX_OFFSET = 10**9
MAX_QUERY_CHARS = 1000
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
# Sources that describe a model; `header` is the file's own trainer metadata, `pysssss` only a hash.
_NOT_METADATA = frozenset({"header", "pysssss"})


class QueryError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def _text_param(q: Mapping[str, str], field: str) -> str | None:
    value = q.get(field, "").strip()
    if len(value) > MAX_QUERY_CHARS:
        raise QueryError(field, f"must be at most {MAX_QUERY_CHARS} characters")
    return value or None


def _bool_param(q: Mapping[str, str], field: str) -> bool | None:
    value = q.get(field, "").strip().lower()
    if not value:
        return None
    if value not in _BOOLS:
        raise QueryError(field, "must be true or false")
    return _BOOLS[value]


def _int_param(q: Mapping[str, str], field: str, default: int, hi: int) -> int:
    value = q.get(field, "").strip()
    if not value:
        return default
    if not (value.isdecimal() and value.isascii()) or len(value) > 12 or not 0 <= int(value) <= hi:
        raise QueryError(field, f"must be a whole number from 0 to {hi}")
    return int(value)


def _family_param(q: Mapping[str, str]) -> str | None:
    text = _text_param(q, "family")
    if text is None:
        return None
    found = base_models.family_id(text)
    if found is None:
        raise QueryError("family", f"{text[:100]!r} is not a family (e.g. \"SD 1.x\", \"SDXL\", \"Pony\", "
                                   "\"Flux.1\", \"unknown\": contracts.md)")
    return found


def model_query(q: Mapping[str, str]) -> dict[str, Any]:
    """The filters of `GET models`, checked; raises QueryError naming the field. `family` may be
    written as the plan shows it ("SD 1.x"), as CivitAI's group id ("SD1") or as a base model."""
    kind = q.get("type", "").strip() or None
    if kind is not None and kind not in FOLDER_KINDS:
        raise QueryError("type", f"must be one of {sorted(FOLDER_KINDS)}")
    return {"type": kind, "q": _text_param(q, "q"), "base_model": _text_param(q, "base_model"),
            "family": _family_param(q), "has_metadata": _bool_param(q, "has_metadata"),
            "excluded": _bool_param(q, "excluded"), "favorite": _bool_param(q, "favorite"),
            "limit": _int_param(q, "limit", 100, MAX_PAGE), "offset": _int_param(q, "offset", 0, MAX_OFFSET)}


def has_metadata(r: ModelRecord) -> bool:
    return any(s not in _NOT_METADATA for s in r.sources)


def preview_url(r: ModelRecord) -> str | None:
    if not r.preview or os.path.splitext(r.preview)[1].lower() not in PREVIEW_TYPES:
        return None
    return f"{PREFIX}/preview?type={quote(r.kind, safe='')}&name={quote(r.name, safe='')}"


def model_item(r: ModelRecord) -> dict[str, Any]:
    """One model as `GET models` lists it (contracts.md)."""
    return {"name": r.name, "type": r.kind, "architecture": r.architecture,
            "family": base_models.public_family(r.family), "base_model": r.base_model, "tags": list(r.tags),
            "trigger_words": list(r.trigger_words), "sha256": r.sha256, "size": r.size, "preview": preview_url(r),
            "sources": list(r.sources), "confidence": r.confidence, "excluded": r.excluded,
            "favorite": is_favorite(r), "problems": list(r.problems)}


def list_models(index: FlaggedIndex, query: Mapping[str, Any]) -> dict[str, Any]:
    found = index.find(type=query["type"], q=query["q"], base_model=query["base_model"])
    family = query["family"]
    wanted = {k: query[k] for k in ("has_metadata", "excluded", "favorite") if query[k] is not None}
    if family is not None or wanted:
        found = [r for r in found
                 if (family is None or r.family == family)
                 and ("has_metadata" not in wanted or has_metadata(r) == wanted["has_metadata"])
                 and ("excluded" not in wanted or r.excluded == wanted["excluded"])
                 and ("favorite" not in wanted or is_favorite(r) == wanted["favorite"])]
    page = found[query["offset"]:query["offset"] + query["limit"]]
    return {"total": len(found), "items": [model_item(r) for r in page]}


# --- GET preview --------------------------------------------------------------------------------

# What a preview may be (Lora-Manager's preview suffixes, py/utils/constants.py), and its type.
PREVIEW_TYPES = {".webp": "image/webp", ".png": "image/png", ".jpeg": "image/jpeg", ".jpg": "image/jpeg",
                 ".gif": "image/gif", ".avif": "image/avif", ".jxl": "image/jxl", ".mp4": "video/mp4",
                 ".webm": "video/webm"}
MAX_PREVIEW_BYTES = 32 * 1024 * 1024


def _root_of(record: ModelRecord, roots: list[str]) -> str | None:
    """The model root `record` was indexed under (its path is that root joined with its name)."""
    path = os.path.normcase(os.path.abspath(record.path))
    for root in roots:
        if os.path.normcase(os.path.join(os.path.abspath(root), *record.name.split("/"))) == path:
            return root
    return None


def preview_file(rt: Any, kind: str, name: str) -> tuple[bytes, str] | None:
    """(bytes, content type) of the preview image beside the indexed model `kind`/`name`, or None.

    Only the record's own preview is ever read: a path relative to that model's root, with an
    image or video suffix, which lies (links resolved) inside a model root or in the folder the
    model file itself lies in, and is a regular file of at most MAX_PREVIEW_BYTES."""
    record = rt.ready_index().get(kind, name)
    if record is None or not record.preview:
        return None
    content_type = PREVIEW_TYPES.get(os.path.splitext(record.preview)[1].lower())
    root = _root_of(record, rt.models.roots(kind))
    if content_type is None or root is None:
        return None
    path = os.path.join(root, *record.preview.split("/"))
    if inside_root(root, os.path.abspath(path)) is None:  # a `..` in a stale or hostile preview
        return None
    real = os.path.realpath(path)
    beside = os.path.dirname(real) == os.path.dirname(os.path.realpath(record.path))
    if not beside and not any(inside_root(os.path.realpath(r), real) for r in rt.models.all_roots()):
        return None
    try:
        return read_regular(real, MAX_PREVIEW_BYTES), content_type
    except OSError as e:  # missing, not a regular file, too large
        log.debug("preview %r of %r not served: %s", real, name, describe(e))
        return None


# --- POST models/flags --------------------------------------------------------------------------

FLAG_BODY_KEYS = ("type", "name", "excluded", "favorite")


def flags_request(body: Any) -> tuple[str, str, bool | None, bool | None]:
    """(type, name, excluded, favorite) from a `POST models/flags` body; raises QueryError."""
    if not isinstance(body, dict):
        raise QueryError("body", "must be a JSON object")
    unknown = [k for k in body if k not in FLAG_BODY_KEYS]
    if unknown:
        raise QueryError(str(unknown[0])[:100], f"is not a field of this request (fields: {', '.join(FLAG_BODY_KEYS)})")
    kind, name = body.get("type"), body.get("name")
    if not isinstance(kind, str) or kind not in FOLDER_KINDS:
        raise QueryError("type", f"must be one of {sorted(FOLDER_KINDS)}")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
        raise QueryError("name", f"must be a model name of 1 to {MAX_NAME_CHARS} characters")
    flags: list[bool | None] = []
    for field in ("excluded", "favorite"):
        value = body.get(field)
        if field in body and not isinstance(value, bool):
            raise QueryError(field, "must be true or false")
        flags.append(value)
    return kind, name, flags[0], flags[1]


def set_flags(rt: Any, kind: str, name: str, excluded: bool | None, favorite: bool | None) -> dict[str, Any] | None:
    """The model's item after setting its flags; None when no indexed model has that name."""
    index = rt.ready_index()
    record = index.get(kind, name)
    if record is None:
        return None
    rt.flags.set(kind, record.name, excluded=excluded, favorite=favorite)
    updated = index.get(kind, record.name)
    return model_item(updated if updated is not None else record)


def register(routes: web.RouteTableDef) -> None:
    @routes.post(f"{PREFIX}/plan")
    async def plan_route(request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            plan = await off_loop(make_plan, body, pool=_plan_workers)
        except planner.PlanRequestError as e:
            return _error(400, str(e), getattr(e, "field", None))
        except planner.PlanError as e:
            return _error(400, str(e), e.field)
        # no event: the caller has the plan, and other clients must not see its prompt
        return web.json_response(plan)

    @routes.get(f"{PREFIX}/stats")
    async def stats_route(request: web.Request) -> web.Response:
        rt = get_runtime()
        index = await off_loop(rt.ready_index)
        counts = index.counts()
        readings = await off_loop(rt.monitor.read)
        gpu = readings.primary_gpu
        import comfy.model_management as mm

        return web.json_response({
            "device": str(mm.get_torch_device()),
            "ollama_enabled": rt.settings.get("ollama.enabled"),
            "orchestrator": {"total_models": sum(counts.values()), "by_type": counts},
            "resources": {"gpu_memory_gb": sum(g.memory_total_gb for g in readings.gpus) if gpu else 0.0,
                          "ram_gb": readings.ram.total_gb if readings.ram else None},
        })

    @routes.post(f"{PREFIX}/rescan")
    async def rescan_route(request: web.Request) -> web.Response:
        rt = get_runtime()
        started = time.perf_counter()
        result = await off_loop(rt.rescan)
        body = result.to_dict()
        body["seconds"] = round(time.perf_counter() - started, 4)
        return web.json_response(body)

    @routes.get(f"{PREFIX}/models")
    async def models_route(request: web.Request) -> web.Response:
        try:
            query = model_query(request.query)
        except QueryError as e:
            return _error(400, str(e), e.field)
        rt = get_runtime()

        def listing() -> dict[str, Any]:
            return list_models(rt.ready_index(), query)

        return web.json_response(await off_loop(listing))

    @routes.get(f"{PREFIX}/preview")
    async def preview_route(request: web.Request) -> web.Response:
        kind, name = request.query.get("type", ""), request.query.get("name", "")
        if kind not in FOLDER_KINDS:
            return _error(400, f"type: must be one of {sorted(FOLDER_KINDS)}", "type")
        if not name or len(name) > MAX_NAME_CHARS:
            return _error(400, f"name: must be a model name of 1 to {MAX_NAME_CHARS} characters", "name")
        found = await off_loop(preview_file, get_runtime(), kind, name)
        if found is None:
            return _error(404, "no preview image beside an indexed model of that name")
        data, content_type = found
        return web.Response(body=data, content_type=content_type,
                            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=60"})

    @routes.post(f"{PREFIX}/models/flags")
    async def flags_route(request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            kind, name, excluded, favorite = flags_request(body)
        except QueryError as e:
            return _error(400, str(e), e.field)
        try:
            item = await off_loop(set_flags, get_runtime(), kind, name, excluded, favorite)
        except FlagsError as e:
            return _error(400, str(e), e.field)
        except OSError as e:
            log.error("could not write the flags file: %r", describe(e))
            return _error(500, f"could not write the flags file: {describe(e)}")
        if item is None:
            return _error(404, f"name: no indexed {kind} of that name", "name")
        return web.json_response(item)

    @routes.get(f"{PREFIX}/monitor")
    async def monitor_route(request: web.Request) -> web.Response:
        readings = await off_loop(get_runtime().monitor.read)
        return web.json_response(readings.to_dict())

    @routes.get(f"{PREFIX}/settings/schema")
    async def settings_schema_route(request: web.Request) -> web.Response:
        return web.json_response(schema())

    @routes.get(f"{PREFIX}/settings")
    async def get_settings_route(request: web.Request) -> web.Response:
        return web.json_response(get_runtime().settings.as_dict())

    @routes.post(f"{PREFIX}/settings")
    async def post_settings_route(request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            # off the loop: a write resolves paths and fsyncs, which a slow or network disk can stall
            return web.json_response(await off_loop(get_runtime().settings.update, body))
        except SettingsError as e:
            return _error(400, str(e), e.field)
