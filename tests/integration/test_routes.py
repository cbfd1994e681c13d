"""The pack's routes on a real server: the plan, pins and overrides, broken files, bad input, settings."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid

import aiohttp
import pytest

from intelligent_pipeline.client.api import ComfyError

pytestmark = pytest.mark.integration


def plan(client, prompt: str, **fields) -> dict:
    return client.post("/intelligent/api/plan", {"prompt": prompt, **fields})


def tags_of(record: dict) -> set[str]:
    return {t.lower() for t in record["tags"]}


def test_anime_prompt_picks_the_anime_checkpoint_and_the_pink_hair_lora(client, h):
    p = plan(client, "anime girl with pink hair")
    ckpts = h.models_by_name(client, "checkpoint")
    assert "anime" in tags_of(ckpts[p["checkpoint"]["name"]]), p["checkpoint"]
    assert p["checkpoint"]["reasons"]
    loras = h.models_by_name(client, "lora")
    chosen = [loras[lora["name"]] for lora in p["loras"]]
    pink = [r for r in chosen if any("pink hair" in (t or "").lower() for t in r["tags"] + r["trigger_words"])]
    assert pink, f"no pink-hair LoRA among {[lora['name'] for lora in p['loras']]}"
    positive = p["prompt"]["positive"].lower()
    for lora in p["loras"]:
        assert lora["reasons"] and lora["compatibility"] in ("full", "partial")
        for word in lora["trigger_words"]:
            assert positive.count(word.lower()) == 1 or word.lower() in "anime girl with pink hair", (word, positive)
    pink_plan = next(lora for lora in p["loras"] if lora["name"] == pink[0]["name"])
    assert pink_plan["trigger_words"], "the pink-hair LoRA's trigger words are in the plan"


def test_photo_prompt_picks_the_photoreal_checkpoint(client, h):
    p = plan(client, "photo of an old fisherman at dawn")
    record = h.models_by_name(client, "checkpoint")[p["checkpoint"]["name"]]
    assert tags_of(record) & {"photorealistic", "realistic", "photography", "photo"}, record["tags"]


def test_painting_prompt_picks_the_painterly_checkpoint(client, h):
    p = plan(client, "an oil painting of a harbour at sunset, impressionist brush strokes")
    record = h.models_by_name(client, "checkpoint")[p["checkpoint"]["name"]]
    assert tags_of(record) & {"painting", "oil painting", "artistic", "impressionism"}, record["tags"]


@pytest.mark.parametrize("prompt", ["anime girl with pink hair", "pink hair, anime, 1girl, masterpiece",
                                    "cyberpunk city at night with neon lights", "photo of an old fisherman at dawn"])
def test_sdxl_and_flux_loras_are_never_stacked_on_sd15(client, h, prompt):
    loras = h.models_by_name(client, "lora")
    p = plan(client, prompt, overrides={"max_loras": 10})
    assert p["checkpoint"]["architecture"] == "sd1"
    for lora in p["loras"]:
        assert loras[lora["name"]]["architecture"] == "sd1", lora
    foreign = [n for n, r in loras.items() if r["architecture"] in ("sdxl", "flux")]
    assert len(foreign) >= 2, "the library must hold an SDXL and a Flux LoRA for this test to mean anything"


def test_pinning_an_incompatible_lora_warns_instead_of_stacking(client, h):
    loras = h.models_by_name(client, "lora")
    sdxl = next(n for n, r in loras.items() if r["architecture"] == "sdxl")
    p = plan(client, "anime girl with pink hair", overrides={"loras": [sdxl]})
    assert sdxl not in [lora["name"] for lora in p["loras"]]
    assert any(sdxl in w or os.path.basename(sdxl) in w for w in p["warnings"]), p["warnings"]


def test_overrides_and_pins_win(client, h):
    ckpts = h.models_by_name(client, "checkpoint")
    painterly = next(n for n, r in ckpts.items() if tags_of(r) & {"painting", "oil painting"})
    loras = h.models_by_name(client, "lora")
    detail = next(n for n, r in loras.items() if r["architecture"] == "sd1" and "pink hair" not in
                  " ".join(r["tags"] + r["trigger_words"]).lower())
    p = plan(client, "anime girl with pink hair", overrides={
        "checkpoint": painterly, "steps": 7, "cfg_scale": 5.5, "sampler": "DPM++ 2M Karras", "width": 320,
        "height": 448, "seed": 1234, "negative_prompt": "blurry", "loras": [{"name": detail, "strength": 0.35}],
        "batch_size": 2})
    assert p["checkpoint"]["name"] == painterly
    s = p["settings"]
    assert (s["steps"], s["cfg"], s["sampler_name"], s["scheduler"]) == (7, 5.5, "dpmpp_2m", "karras")
    assert (s["width"], s["height"], s["seed"], s["batch_size"]) == (320, 448, 1234, 2)
    assert "blurry" in p["prompt"]["negative"]
    pinned = next(lora for lora in p["loras"] if lora["name"] == detail)
    assert pinned["strength_model"] == pytest.approx(0.35)


def test_exclude_and_max_loras(client):
    base = plan(client, "anime girl with pink hair")
    assert base["loras"]
    first = base["loras"][0]["name"]
    p = plan(client, "anime girl with pink hair", overrides={"exclude": [first]})
    assert first not in [lora["name"] for lora in p["loras"]]
    assert plan(client, "anime girl with pink hair", overrides={"max_loras": 0})["loras"] == []


def test_broken_library_files_are_reported_and_everything_else_works(client, server, server_env, h):
    broken = server_env["broken"]
    loras = h.models_by_name(client, "lora")
    ckpts = h.models_by_name(client, "checkpoint")
    assert loras[broken["sidecar"]]["problems"], "the malformed sidecar is reported"
    assert loras[broken["truncated"]]["problems"], "the truncated file is reported"
    assert broken["pickle"] in ckpts and ckpts[broken["pickle"]]["problems"]
    assert not os.path.exists(server_env["marker"]), "the pickle was unpickled!"
    log = server.log_text().splitlines()
    for name in broken.values():
        lines = [line for line in log if os.path.splitext(name)[0] in line]
        assert len(lines) == 1, f"expected one log line naming {name}, got {lines}"
    p = plan(client, "anime girl with pink hair")
    assert p["checkpoint"]["name"] != broken["pickle"]
    assert broken["truncated"] not in [lora["name"] for lora in p["loras"]]


@pytest.mark.parametrize("body,field", [
    ({}, "prompt"), ({"prompt": ""}, "prompt"), ({"prompt": 5}, "prompt"),
    ({"prompt": "x", "style": "baroque"}, "style"), ({"prompt": "x", "quality": "max"}, "quality"),
    ({"prompt": "x", "overrides": {"steps": "20"}}, "steps"), ({"prompt": "x", "overrides": {"steps": True}}, "steps"),
    ({"prompt": "x", "overrides": {"colour": 1}}, "colour"), ({"prompt": "x", "overrides": []}, "overrides"),
    ({"prompt": "x", "overrides": {"width": 513}}, "width"), ({"prompt": "x", "unknown": 1}, "unknown"),
    ({"prompt": "x", "overrides": {"loras": [{"strength": 1}]}}, "loras"),
])
def test_bad_plan_bodies_are_400_naming_the_field(client, body, field):
    with pytest.raises(ComfyError) as e:
        client.post("/intelligent/api/plan", body)
    assert e.value.status == 400
    assert field in json.dumps(e.value.body), e.value.body


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"null", "\udcff".encode("utf-8", "surrogatepass")])
def test_non_object_bodies_are_400(client, raw):
    async def go():
        async with aiohttp.ClientSession() as s:
            async with s.post(client.base_url + "/intelligent/api/plan", data=raw,
                              headers={"Content-Type": "application/json"}) as r:
                return r.status, await r.text()
    status, text = asyncio.run(go())
    assert status == 400, text
    assert "error" in json.loads(text)


def test_unknown_pin_is_a_clear_400(client):
    with pytest.raises(ComfyError) as e:
        plan(client, "a cat", overrides={"checkpoint": "no_such_model_anywhere.safetensors"})
    assert e.value.status == 400 and "no_such_model_anywhere" in e.value.body["error"]
    assert e.value.body["field"] == "overrides.checkpoint"


def test_stats_counts_the_library(client, h):
    stats = client.get("/intelligent/api/stats")
    by_type = stats["orchestrator"]["by_type"]
    assert by_type["checkpoint"] == len(h.models_by_name(client, "checkpoint")) >= 4
    assert by_type["lora"] >= 10 and by_type["vae"] >= 1
    assert stats["orchestrator"]["total_models"] == sum(by_type.values())
    assert stats["device"] == "cpu" and stats["resources"]["ram_gb"] > 0


def test_rescan_and_queue_time_recheck_see_added_and_removed_files(client, server_env, library_dir):
    loras_dir = os.path.join(server_env["models"], "loras")
    before = client.get("/intelligent/api/stats")["orchestrator"]["by_type"]["lora"]
    name = f"added_{uuid.uuid4().hex[:6]}.safetensors"
    src = next(os.path.join(loras_dir, f) for f in sorted(os.listdir(loras_dir))
               if f.endswith(".safetensors") and "broken" not in f and "truncated" not in f)
    shutil.copyfile(os.path.realpath(src), os.path.join(loras_dir, name))
    try:
        result = client.post("/intelligent/api/rescan", {})
        # (with index.recheck_s 0 every request starts a background full rescan, which may have
        # indexed the copy first: then this rescan has nothing left to change)
        assert result["by_type"]["lora"] == before + 1 and result["changed"] >= 0
        assert result["total"] == sum(result["by_type"].values()) and result["seconds"] >= 0
    finally:
        os.unlink(os.path.join(loras_dir, name))
    # index.recheck_s is 0 in the test settings: the next request re-checks by itself
    assert client.get("/intelligent/api/stats")["orchestrator"]["by_type"]["lora"] == before


def test_models_route_filters_and_refuses_bad_queries(client):
    anime = client.get("/intelligent/api/models?type=lora&q=anime&limit=5")
    assert anime["items"] and len(anime["items"]) <= 5
    sd15 = client.get("/intelligent/api/models?type=lora&base_model=SD%201.5&limit=1000")["items"]
    assert sd15 and all(i["base_model"] == "SD 1.5" for i in sd15)
    for bad in ("type=spaceship", "limit=abc", "limit=-1"):
        with pytest.raises(ComfyError) as e:
            client.get(f"/intelligent/api/models?{bad}")
        assert e.value.status == 400


def test_monitor_reports_cpu_and_ram_without_a_gpu(client):
    m = client.get("/intelligent/api/monitor")
    assert m["ram"]["total_gb"] > 0 and "usage_percent" in m["cpu"]
    if not m["gpu_available"]:
        assert m["reason"] and m["gpus"] == []


def test_settings_round_trip_and_validation(client, server):
    settings = client.get("/intelligent/api/settings")
    assert settings["ollama.model"] == "llama3.2" and settings["civitai.enabled"] is False
    updated = client.post("/intelligent/api/settings", {"selection.max_loras": 2})
    assert updated["selection.max_loras"] == 2
    path = os.path.join(server.state_dir, "user", "default", "intelligent-pipeline.json")
    with open(path) as f:
        assert json.load(f)["selection.max_loras"] == 2
    try:
        assert len(plan(client, "anime girl with pink hair, watercolor, detailed, sunset")["loras"]) <= 2
        for body, field in (({"selection.max_loras": "2"}, "selection.max_loras"), ({"nope": 1}, "nope"),
                            ({"ollama.host": "not a url"}, "ollama.host")):
            with pytest.raises(ComfyError) as e:
                client.post("/intelligent/api/settings", body)
            assert e.value.status == 400 and field in json.dumps(e.value.body)
    finally:
        client.post("/intelligent/api/settings", {"selection.max_loras": 3})


def test_exclude_folders_setting_applies_without_restart(client, h):
    loras = h.models_by_name(client, "lora")
    sub = next(n for n in loras if "/" in n)
    folder = sub.split("/", 1)[0]
    try:
        client.post("/intelligent/api/settings", {"index.exclude_folders": [folder]})
        assert sub not in h.models_by_name(client, "lora")
        p = plan(client, "anime girl with pink hair", overrides={"max_loras": 10})
        assert all(not lora["name"].startswith(folder + "/") for lora in p["loras"])
    finally:
        client.post("/intelligent/api/settings", {"index.exclude_folders": []})
    assert sub in h.models_by_name(client, "lora")


def test_the_index_cache_lives_where_the_settings_say(client, server_env, server):
    client.post("/intelligent/api/rescan", {})
    cache = os.path.join(server_env["base"], "state", "user", "index_cache", "intelligent-pipeline-index.sqlite3")
    assert os.path.isfile(cache)
    refused = [line for line in server.log_text().splitlines() if "ignored" in line and "cache" in line]
    assert not refused, refused  # the test's own folders are inside the user directory, so none is refused


def test_each_pick_of_the_plan_route_says_how_it_was_found(client):
    auto = client.plan("anime girl with pink hair", overrides={"max_loras": 10})
    assert auto["analysis"]["retrieval"] == "words+meaning"  # (the meaning extra is installed by `make setup`)
    assert auto["loras"], "the library must give this prompt a LoRA for the test to mean anything"
    for lora in auto["loras"]:
        assert lora["found_by"] in (["words"], ["meaning"], ["words", "meaning"]), lora
    name = auto["loras"][0]["name"]
    pinned = client.plan("anime girl with pink hair", overrides={"loras": [{"name": name, "strength": 0.5}]})
    assert [lora["found_by"] for lora in pinned["loras"] if lora["name"] == name] == [["pin"]]
