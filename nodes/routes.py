"""HTTP routes under /intelligent/api/ (contracts.md, "Routes"). Bad input is a 400 with a message."""
from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from ..metadata.records import FOLDER_KINDS
from ..selector import planner
from ..settings import SettingsError, schema
from .common import note_ollama, samplers, schedulers
from .runtime import get_runtime

log = logging.getLogger(__name__)

PREFIX = "/intelligent/api"


def _error(status: int, message: str, field: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    return web.json_response(body, status=status)


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except Exception as e:
        raise web.HTTPBadRequest(text=f'{{"error": "the body is not valid JSON: {type(e).__name__}"}}',
                                 content_type="application/json") from e


def make_plan(body: Any) -> dict:
    """The whole plan for a request body: the same planner the nodes use, in one call."""
    if not isinstance(body, dict):
        raise planner.PlanRequestError("body", "must be a JSON object")
    request = planner.parse_request(body)
    rt = get_runtime()
    plan = planner.build_plan(request, rt.ready_index().records(), valid_samplers=samplers(),
                              valid_schedulers=schedulers(),
                              max_nsfw_level=int(rt.settings.get("selection.max_nsfw_level")),
                              max_loras=int(rt.settings.get("selection.max_loras")))
    from .sampler import memory_for

    plan["memory"] = memory_for(plan)
    return note_ollama(plan, request.use_ollama, rt.settings.get("ollama.enabled"))


# The pack's own worker threads: requests that wait for a first scan must not take the loop's
# default pool, which aiohttp also uses to serve ComfyUI's static files and images.
_workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="intelligent-api")


async def off_loop(fn, *args):
    """Run blocking work (a first scan still under way, a stat-walk re-check, planning) in a worker
    thread, so ComfyUI's event loop keeps serving the editor and the websocket meanwhile."""
    return await asyncio.get_running_loop().run_in_executor(_workers, fn, *args)


def register(routes: web.RouteTableDef) -> None:
    @routes.post(f"{PREFIX}/plan")
    async def plan_route(request: web.Request) -> web.Response:
        body = await _json_body(request)
        try:
            plan = await off_loop(make_plan, body)
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
        q = request.query
        kind = q.get("type") or None
        if kind is not None and kind not in FOLDER_KINDS:
            return _error(400, f"type must be one of {sorted(FOLDER_KINDS)}", "type")
        try:
            limit = int(q.get("limit", "100"))
            offset = int(q.get("offset", "0"))
        except ValueError:
            return _error(400, "limit and offset must be whole numbers", "limit")
        if not 0 <= limit <= 10000 or offset < 0:
            return _error(400, "limit must be 0..10000 and offset >= 0", "limit")
        index = await off_loop(get_runtime().ready_index)
        found = index.find(type=kind, q=q.get("q") or None, base_model=q.get("base_model") or None)
        items = [{"name": r.name, "type": r.kind, "architecture": r.architecture, "base_model": r.base_model,
                  "tags": list(r.tags), "trigger_words": list(r.trigger_words), "sha256": r.sha256, "size": r.size,
                  "preview": r.preview, "sources": list(r.sources), "excluded": r.excluded,
                  "problems": list(r.problems)} for r in found[offset:offset + limit]]
        return web.json_response({"total": len(found), "items": items})

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
