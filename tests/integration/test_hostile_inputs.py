"""Issue 5 on the real server: the prompt cap, queue-time validation through /prompt, the plan event only for
the client that queued, the settings schema route, path settings over HTTP, Ollama requests said to be unavailable."""
from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
import uuid

import aiohttp
import pytest

from intelligent_pipeline.client.api import ComfyError
from intelligent_pipeline.client.graphs import PROMPT_TO_IMAGE
from intelligent_pipeline.selector.planner import MAX_PROMPT_CHARS
from intelligent_pipeline.settings import schema as settings_schema

pytestmark = pytest.mark.integration

ANALYZER, PICKER, LORA_STACK, SAMPLER = "1", "2", "3", "4"  # node ids in the shipped graph


def refusal(client, graph: dict) -> dict:
    """ComfyUI's answer to a graph /prompt refuses: {node id: [error, ...]}."""
    with pytest.raises(ComfyError) as e:
        client.queue(graph)
    assert e.value.status == 400, e.value
    return {nid: err["errors"] for nid, err in (e.value.body.get("node_errors") or {}).items()}


def e_is_custom(details: str) -> bool:
    return " - " in details


def errors_naming(errors: list[dict], field: str) -> list[dict]:
    return [e for e in errors if e.get("extra_info", {}).get("input_name") == field]


# --- the prompt cap -------------------------------------------------------------------------------------------

def test_the_plan_route_takes_a_prompt_at_the_cap_and_refuses_one_over_it_naming_the_field(client):
    words = "a lighthouse on a cliff at dusk, "
    at_cap = (words * (MAX_PROMPT_CHARS // len(words) + 1))[:MAX_PROMPT_CHARS]
    assert client.plan(at_cap)["checkpoint"]["name"]
    for body, field in (({"prompt": at_cap + "x"}, "prompt"),
                        ({"prompt": "a cat", "negative_prompt": "y" * (MAX_PROMPT_CHARS + 1)}, "negative_prompt"),
                        ({"prompt": "a cat", "overrides": {"negative_prompt": "z" * (MAX_PROMPT_CHARS + 1)}},
                         "overrides.negative_prompt")):
        with pytest.raises(ComfyError) as e:
            client.post("/intelligent/api/plan", body)
        assert e.value.status == 400 and e.value.body["field"] == field, e.value.body
        assert f"{MAX_PROMPT_CHARS:,}" in e.value.body["error"]


@pytest.mark.parametrize("node,field", [(ANALYZER, "prompt"), (ANALYZER, "negative_prompt"), (PICKER, "prompt"),
                                        (LORA_STACK, "prompt")])
def test_a_prompt_over_the_cap_is_refused_at_queue_time_naming_the_input(client, h, node, field):
    graph = h.fast_graph(PROMPT_TO_IMAGE, "a cat")
    graph[node]["inputs"][field] = "a" * (MAX_PROMPT_CHARS + 1)
    errors = refusal(client, graph)
    assert node in errors, errors
    named = errors_naming(errors[node], field)
    assert named and f"{MAX_PROMPT_CHARS:,}" in named[0]["details"], errors[node]


# --- queue-time validation of the picker and the sampler ----------------------------------------------------------

@pytest.mark.parametrize("name", ["no_such_model_anywhere.safetensors", "../../etc/passwd", "/etc/passwd", "C:\\x",
                                  "\\\\server\\share\\x.safetensors"])
def test_a_checkpoint_that_is_not_a_model_name_is_refused_at_queue_time(client, h, name):
    graph = h.fast_graph(PROMPT_TO_IMAGE, "a cat")
    graph[PICKER]["inputs"]["checkpoint"] = name
    errors = refusal(client, graph)
    named = errors_naming(errors.get(PICKER, []), "checkpoint")
    assert named and repr(name) in named[0]["details"], errors


@pytest.mark.parametrize("node,field,value,says", [
    (PICKER, "width", 1_000_000, "maximum of 8192"), (PICKER, "height", -8, "minimum of 0"),
    (PICKER, "width", 68, "multiple of 8"), (PICKER, "cfg", float("nan"), "nan"),
    (PICKER, "cfg", 101.0, "maximum of 100"), (PICKER, "cfg", float("inf"), "inf"),
    (SAMPLER, "denoise", float("nan"), "nan"), (SAMPLER, "denoise", 1.5, "maximum of 1"),
    (PICKER, "width", 10**400, "401-digit integer"), (LORA_STACK, "strength_scale", float("nan"), "nan"),
    (LORA_STACK, "strength_scale", 2.5, "maximum of 2"), (LORA_STACK, "pinned_loras", "x.safetensors:99999", "99999"),
])
def test_numbers_out_of_range_or_not_finite_are_refused_at_queue_time_naming_the_input(client, h, node, field,
                                                                                      value, says):
    graph = h.fast_graph(PROMPT_TO_IMAGE, "a cat")
    graph[node]["inputs"][field] = value
    errors = refusal(client, graph)
    named = errors_naming(errors.get(node, []), field)
    assert named, errors
    assert says in named[0]["details"].lower() and field in named[0]["details"], named
    # one problem, one message: no input carries it twice, and it is about the input at fault. (ComfyUI 0.3.75
    # lists a validate_inputs message under each input the function names: that is its loop, not ours.)
    pairs = [(e["extra_info"]["input_name"], e["details"]) for e in errors[node]]
    assert len(pairs) == len(set(pairs)), pairs
    assert len({d.split(" - ", 1)[-1] for _n, d in pairs if e_is_custom(d)}) <= 1, pairs


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_2_mib_is_refused_naming_the_body(server, chunked):
    """ComfyUI accepts bodies up to 100 MB; parsing one on the event loop stalls every client for
    seconds. Ours stop reading at 2 MiB, also when the body has no length up front (chunked)."""
    import http.client

    body = b'{"prompt": "a cat", "pad": [' + b"1," * (3 * 1024 * 1024 // 2) + b"1]}"
    conn = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=30)
    try:
        if chunked:
            conn.request("POST", "/intelligent/api/plan", body=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
                         headers={"Content-Type": "application/json"}, encode_chunked=True)
        else:
            conn.request("POST", "/intelligent/api/plan", body=body, headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        status, reply = answer.status, json.loads(answer.read())
    finally:
        conn.close()
    assert status == 400 and reply["field"] == "body" and "2,097,152" in reply["error"], reply


def test_comfyuis_own_checks_still_run_beside_ours(client, h):
    graph = h.fast_graph(PROMPT_TO_IMAGE, "a cat")
    graph[PICKER]["inputs"]["steps"] = 5000  # not named by our validate_inputs: ComfyUI's max check
    graph[SAMPLER]["inputs"]["seed"] = -1  # ComfyUI's min check on the sampler
    errors = refusal(client, graph)
    assert errors_naming(errors.get(PICKER, []), "steps") and errors_naming(errors.get(SAMPLER, []), "seed"), errors
    assert [e["type"] for e in errors_naming(errors[PICKER], "steps")] == ["value_bigger_than_max"]


def test_a_pinned_checkpoint_the_index_knows_is_unreadable_is_refused(client, server_env, h):
    folder = os.path.join(server_env["models"], "checkpoints")
    name = f"truncated_ckpt_{uuid.uuid4().hex[:6]}.safetensors"
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write((50_000).to_bytes(8, "little") + b'{"model.diffusion_model.x": {"dtype": "F16", "sha')
    try:
        client.post("/intelligent/api/rescan", {})
        record = h.models_by_name(client, "checkpoint")[name]
        assert record["problems"], record
        graph = h.fast_graph(PROMPT_TO_IMAGE, "a cat")
        graph[PICKER]["inputs"]["checkpoint"] = name
        errors = refusal(client, graph)
        named = errors_naming(errors.get(PICKER, []), "checkpoint")
        assert named and "cannot be loaded" in named[0]["details"], errors
    finally:
        os.unlink(path)
        client.post("/intelligent/api/rescan", {})


# --- the plan event goes only to the client that queued ----------------------------------------------------------

def test_only_the_queuing_client_gets_the_plan_event_and_the_plan_route_sends_none(client, h):
    ws_url = client.base_url.replace("http", "ws", 1) + "/ws?clientId="
    graph = h.fast_graph(PROMPT_TO_IMAGE, f"a red fox in the snow {uuid.uuid4().hex[:6]}")

    async def go():
        mine, other = uuid.uuid4().hex, uuid.uuid4().hex
        seen: dict[str, list[dict]] = {mine: [], other: []}
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(ws_url + mine) as ws_mine, s.ws_connect(ws_url + other) as ws_other:
                async def listen(ws, cid):
                    async for msg in ws:
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            data = json.loads(msg.data)
                            if data.get("type", "").startswith("intelligent.plan"):
                                seen[cid].append(data["data"])
                            if cid == mine and data.get("type") == "executing" and \
                                    data["data"].get("node") is None and data["data"].get("prompt_id") == pid:
                                return
                listeners = [asyncio.ensure_future(listen(ws_other, other))]
                async with s.post(client.base_url + "/intelligent/api/plan", json={"prompt": "a lighthouse"}) as r:
                    assert r.status == 200
                async with s.post(client.base_url + "/prompt", json={"prompt": graph, "client_id": mine}) as r:
                    body = await r.json()
                    assert r.status == 200, body
                    pid = body["prompt_id"]
                await asyncio.wait_for(listen(ws_mine, mine), 300)
                await asyncio.sleep(0.5)  # anything meant for the other client would have arrived by now
                listeners[0].cancel()
        return seen[mine], seen[other]

    mine, other = asyncio.run(go())
    assert {e["node"] for e in mine} >= {ANALYZER, PICKER, LORA_STACK, SAMPLER}, mine
    assert all("red fox" in e["plan"]["request"]["prompt"] for e in mine)
    assert other == [], "another client saw a plan (and its prompt text)"
    assert not [e for e in mine if e["node"] is None], "the plan route sent an event"


# --- settings: the schema route, path settings over HTTP ------------------------------------------------------------

def test_the_settings_schema_route_serves_the_one_schema(client):
    served = client.get("/intelligent/api/settings/schema")
    assert served == settings_schema()
    assert set(served) == set(client.get("/intelligent/api/settings"))
    shown = {k for k, v in served.items() if v["in_dialog"]}
    assert shown and not {k for k in shown if k.startswith(("civitai.", "cache.", "monitor.", "web."))}
    assert {"ollama.enabled", "ollama.host", "ollama.model", "ollama.timeout_s"} <= shown


@pytest.mark.parametrize("key", ["index.cache_dir", "cache.dir"])
def test_a_path_setting_over_http_stays_inside_the_user_directory(client, server, key):
    before = client.get("/intelligent/api/settings")[key]
    user_dir = os.path.join(server.state_dir, "user")
    try:
        for bad in ("/etc", "/tmp/elsewhere", os.path.join(user_dir, "..", "escaped"), "C:\\Windows",
                    "\\\\server\\share", "relative/dir"):
            with pytest.raises(ComfyError) as e:
                client.post("/intelligent/api/settings", {key: bad})
            assert e.value.status == 400 and e.value.body["field"] == key, (bad, e.value.body)
        inside = os.path.join(user_dir, "caches", "x")
        assert client.post("/intelligent/api/settings", {key: inside})[key] == inside
    finally:
        client.post("/intelligent/api/settings", {key: before})
    assert client.get("/intelligent/api/settings")[key] == before


# --- Ollama: the real client against a local fake server (tests/fixtures/fake_ollama.py) ------------------------

def _load_fake_ollama():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "fake_ollama.py")
    spec = importlib.util.spec_from_file_location("_ip_fake_ollama", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("_ip_fake_ollama", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def ollama_server(client):
    """A fake Ollama server, and the server's settings pointing at it for the test."""
    fake = _load_fake_ollama()
    keys = ("ollama.host", "ollama.model", "ollama.enabled")
    before = {k: client.get("/intelligent/api/settings")[k] for k in keys}
    with fake.FakeOllama() as server:
        server.answer = lambda ids, body: {"key_concepts": ["cat"], "loras": [],
                                           "checkpoint": next((i for i in ids.values() if i.startswith("C")), None)}
        client.post("/intelligent/api/settings", {"ollama.host": server.url, "ollama.model": "llama3.2"})
        try:
            yield server
        finally:
            client.post("/intelligent/api/settings", before)


def test_the_plan_route_asks_ollama_and_falls_back_when_it_fails(client, ollama_server):
    p = client.plan("a cat on a sofa", use_ollama="on")
    assert p["analysis"]["source"] == "ollama" and p["analysis"]["fallback_reason"] is None, p["analysis"]
    assert any("chosen by the LLM (llama3.2 at http://127.0.0.1" in r for r in p["checkpoint"]["reasons"]), \
        (p["candidates"].get("llm"), p["checkpoint"], p["warnings"])
    (chat,) = ollama_server.chats()
    assert chat["json"]["format"]["properties"]["checkpoint"]["enum"][-1] is None
    ollama_server.fault = "not_pulled"
    failed = client.plan("a cat on a sofa", use_ollama="on")
    assert failed["analysis"]["source"] == "keywords" and "has no model" in failed["analysis"]["fallback_reason"]
    assert failed["checkpoint"]["name"]  # the plan goes on by keywords
    quiet = client.plan("a cat", use_ollama="off")
    assert quiet["analysis"]["source"] == "keywords" and quiet["analysis"]["fallback_reason"] is None
    # the test server's setting ollama.enabled is false: "auto" asks for nothing
    asked = len(ollama_server.chats())
    assert client.plan("a cat")["analysis"]["fallback_reason"] is None and len(ollama_server.chats()) == asked
    client.post("/intelligent/api/settings", {"ollama.enabled": "auto"})  # auto: asked, as a server answers
    ollama_server.fault = None
    assert client.plan("a cat on a chair")["analysis"]["source"] == "ollama"


def test_the_analyzer_node_asks_ollama_and_the_sampler_unloads_it(client, server, h, ollama_server):
    graph = h.fast_graph(PROMPT_TO_IMAGE, f"a small boat on a lake {uuid.uuid4().hex[:6]}")
    graph[ANALYZER]["inputs"]["use_ollama"] = "on"
    entry = client.run(graph, timeout=600)
    plan = h.png_plan(h.saved_pngs(server, entry)[0])
    assert plan["analysis"]["source"] == "ollama", plan["analysis"]
    unloads = [r for r in ollama_server.requests if r["path"] == "/api/generate"]
    assert unloads and unloads[-1]["json"]["keep_alive"] == 0
