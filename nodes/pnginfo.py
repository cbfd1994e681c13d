"""Keep the plan in every saved PNG, even when ComfyUI serves our nodes from its output cache.

A node that is not re-run cannot write into that run's `extra_pnginfo`. So each node, when it
does run, remembers its plan under a signature of its inputs and everything upstream of it
(what ComfyUI's own cache key covers), and an on-prompt handler puts the remembered plan of
the furthest-downstream node into the queued prompt's `extra_pnginfo` before execution.
A node that re-runs overwrites it with the fresh plan.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict

log = logging.getLogger(__name__)

PNG_KEY = "intelligent_plan"
NODE_STAGES = {
    "IntelligentPromptAnalyzer": 1,
    "IntelligentAutoModelPicker": 2,
    "IntelligentAutoLoraStack": 3,
    "IntelligentMemoryAwareSampler": 4,
}
_MAX_REMEMBERED = 256
_plans: "OrderedDict[str, tuple[int, dict]]" = OrderedDict()
_lock = threading.Lock()


def signature(graph: dict, node_id: str, _memo: dict | None = None) -> str:
    """A stable digest of a node's class, inputs and (recursively) its upstream nodes."""
    memo = {} if _memo is None else _memo
    if node_id in memo:
        return memo[node_id]
    node = graph.get(node_id)
    if not isinstance(node, dict):
        return "missing"
    memo[node_id] = "cycle"  # a graph with a loop is refused by ComfyUI; just don't recurse forever
    inputs = {}
    for key, value in sorted((node.get("inputs") or {}).items()):
        if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int):
            inputs[key] = ["link", signature(graph, value[0], memo), value[1]]
        elif isinstance(value, float) and value.is_integer():
            inputs[key] = int(value)  # ComfyUI turns `0` into `0.0` for FLOAT widgets after this hook runs
        else:
            inputs[key] = value
    text = json.dumps([node.get("class_type"), inputs], sort_keys=True, default=str)
    memo[node_id] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return memo[node_id]


def remember_plan(graph: dict, node_id: str, stage: int, plan: dict) -> None:
    key = signature(graph, node_id)
    with _lock:
        _plans[key] = (stage, plan)
        _plans.move_to_end(key)
        while len(_plans) > _MAX_REMEMBERED:
            _plans.popitem(last=False)


def on_prompt(json_data: dict) -> dict:
    """ComfyUI on-prompt handler: attach the remembered plan for cached nodes of ours."""
    graph = json_data.get("prompt") if isinstance(json_data, dict) else None
    if not isinstance(graph, dict):
        return json_data
    ours = [nid for nid, node in graph.items()
            if isinstance(node, dict) and node.get("class_type") in NODE_STAGES]
    if not ours:
        return json_data
    extra = json_data.setdefault("extra_data", {})
    if not isinstance(extra, dict):
        return json_data
    pnginfo = extra.get("extra_pnginfo")
    if pnginfo is None:
        pnginfo = extra["extra_pnginfo"] = {}
    if not isinstance(pnginfo, dict):
        return json_data
    memo: dict = {}
    best: tuple[int, dict] | None = None
    with _lock:
        for nid in ours:
            found = _plans.get(signature(graph, nid, memo))
            if found and (best is None or found[0] > best[0]):
                best = found
    if best is not None:
        pnginfo[PNG_KEY] = best[1]
    return json_data
