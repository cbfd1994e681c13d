"""The four nodes on a real ComfyUI: registration, both shipped workflows, the plan in the PNG, caching."""
from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from intelligent_pipeline.client.graphs import PICKER_WITH_KSAMPLER, PROMPT_TO_IMAGE

pytestmark = pytest.mark.integration

NODES = {
    "IntelligentPromptAnalyzer": "Intelligent Prompt Analyzer",
    "IntelligentAutoModelPicker": "Auto Model Picker",
    "IntelligentAutoLoraStack": "Auto LoRA Stack",
    "IntelligentMemoryAwareSampler": "Memory-Aware Sampler",
}


def test_object_info_lists_the_four_nodes(client):
    info = client.get("/object_info")
    for node_id, display in NODES.items():
        assert node_id in info, node_id
        assert info[node_id]["display_name"] == display
        assert info[node_id]["category"] == "intelligent"
    picker = info["IntelligentAutoModelPicker"]
    assert picker["output"][:4] == ["MODEL", "CLIP", "VAE", "INTELLIGENT_PLAN"]
    ksampler = info["KSampler"]["input"]["required"]
    # the picker's sampler/scheduler outputs are KSampler's own combos, so they connect
    assert picker["output"][6] == ksampler["sampler_name"][0]
    assert picker["output"][7] == ksampler["scheduler"][0]
    stack = info["IntelligentAutoLoraStack"]["output"]
    assert stack[-1] == "LORA_STACK" and stack[2:4] == ["CONDITIONING", "CONDITIONING"]
    assert info["IntelligentMemoryAwareSampler"]["output"][:2] == ["LATENT", "IMAGE"]


def test_comfyui_audio_nodes_load_with_the_torchaudio_set_up_installs(client):
    # torchaudio 2.11.1 (Makefile) imports and works with torch 2.14.1, so ComfyUI's audio nodes load
    info = client.get("/object_info")
    assert "LoadAudio" in info and "SaveAudio" in info


@pytest.mark.parametrize("workflow", [PROMPT_TO_IMAGE, PICKER_WITH_KSAMPLER])
def test_shipped_workflow_writes_a_png_carrying_the_plan(client, server, h, workflow):
    graph = h.fast_graph(workflow, "anime girl with pink hair")
    editor_info = {"workflow": {"nodes": [], "links": [], "version": 0.4}}
    entry = client.run(graph, extra_pnginfo=editor_info, timeout=600)
    pngs = h.saved_pngs(server, entry)
    assert len(pngs) == 1 and os.path.getsize(pngs[0]) > 0
    plan = h.png_plan(pngs[0])
    assert plan is not None, "the PNG has no intelligent_plan chunk"
    assert plan["version"] == 1
    assert plan["checkpoint"]["name"].endswith(".safetensors")
    assert plan["settings"]["width"] == 64 and plan["settings"]["steps"] == 3
    with open(pngs[0], "rb") as f:
        from intelligent_pipeline.client.graphs import png_text_chunks

        chunks = png_text_chunks(f.read())
    assert json.loads(chunks["workflow"]) == editor_info["workflow"], "the editor's own metadata is kept"
    if workflow == PROMPT_TO_IMAGE:
        assert plan["memory"]["level"] in ("NONE", "BALANCED", "AGGRESSIVE") and plan["memory"]["reasons"]
        assert plan["settings"]["seed"] == 1
        triggers = [w for lora in plan["loras"] for w in lora["trigger_words"]]
        assert all(plan["prompt"]["positive"].lower().count(w.lower()) >= 1 for w in triggers)


def test_image_is_not_blank(client, server, h):
    from PIL import Image

    entry = client.run(h.fast_graph(PROMPT_TO_IMAGE, "photo of an old fisherman at dawn", seed=3), timeout=600)
    img = Image.open(h.saved_pngs(server, entry)[0]).convert("L")
    lo, hi = img.getextrema()
    assert img.size == (64, 64)
    assert hi - lo > 10, f"the decoded image is flat ({lo}..{hi})"


def test_plan_survives_comfyui_output_cache(client, server, h):
    """Re-queued with only the seed, then only the file prefix, changed: our nodes come from the
    cache (they don't re-run), yet every PNG still carries the plan."""
    graph = h.fast_graph(PROMPT_TO_IMAGE, "watercolor painting of a quiet harbour", seed=11)
    first = client.run(graph, extra_pnginfo={}, timeout=600)
    plan1 = h.png_plan(h.saved_pngs(server, first)[0])
    assert plan1 is not None

    graph["4"]["inputs"]["seed"] = 12
    second = client.run(graph, extra_pnginfo={}, timeout=600)
    ran = h.executed_nodes(second)
    assert "2" not in ran and "3" not in ran and "4" in ran, ran
    plan2 = h.png_plan(h.saved_pngs(server, second)[0])
    assert plan2["checkpoint"]["name"] == plan1["checkpoint"]["name"] and plan2["settings"]["seed"] == 12

    graph["5"]["inputs"]["filename_prefix"] = "cache_check_other_prefix"
    third = client.run(graph, timeout=600)  # an API caller that sends no extra_pnginfo at all
    ran = h.executed_nodes(third)
    assert ran == {"5"}, ran
    plan3 = h.png_plan(h.saved_pngs(server, third)[0])
    assert plan3 == plan2


def test_unchanged_library_is_cached_and_a_changed_library_reruns(client, server, server_env, h, library_dir):
    graph = h.fast_graph(PROMPT_TO_IMAGE, "a red bicycle leaning on a wall", seed=5)
    client.run(graph, timeout=600)
    again = client.run(graph | {"5": dict(graph["5"], inputs=dict(graph["5"]["inputs"], filename_prefix="again"))},
                       timeout=600)
    assert h.executed_nodes(again) == {"5"}

    loras = os.path.join(server_env["models"], "loras")
    donor = next(f for f in sorted(os.listdir(loras)) if f.endswith(".safetensors") and "broken" not in f
                 and "truncated" not in f)
    added = os.path.join(loras, "zz_added_later.safetensors")
    shutil.copyfile(os.path.realpath(os.path.join(loras, donor)), added)
    try:
        time.sleep(0.05)
        changed = client.run(graph | {"5": dict(graph["5"], inputs=dict(graph["5"]["inputs"], filename_prefix="b"))},
                             timeout=600)
        ran = h.executed_nodes(changed)
        assert "2" in ran and "3" in ran, f"a changed library must re-run the picker and the stack: {ran}"
    finally:
        os.unlink(added)


def test_nodes_work_without_a_plan_socket(client, server, h):
    """ComfyUI's own checkpoint loader feeding the LoRA stack (family read from the MODEL) and the
    sampler with no plan: each node falls back to what it can see."""
    ckpts = h.models_by_name(client, "checkpoint")
    anime = next(n for n, r in ckpts.items() if "anime" in {t.lower() for t in r["tags"]})
    graph = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": anime}},
        "2": {"class_type": "IntelligentAutoLoraStack",
              "inputs": {"model": ["1", 0], "clip": ["1", 1], "prompt": "anime girl with pink hair", "max_loras": 2,
                         "strength_scale": 0.5, "pinned_loras": "", "banned_loras": ""}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "4": {"class_type": "IntelligentMemoryAwareSampler",
              "inputs": {"model": ["2", 0], "positive": ["2", 2], "negative": ["2", 3], "latent": ["3", 0],
                         "vae": ["1", 2], "seed": 3, "denoise": 1.0}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 1], "filename_prefix": "noplan"}},
    }
    entry = client.run(graph, timeout=600)
    plan = h.png_plan(h.saved_pngs(server, entry)[0])
    assert plan is not None
    assert plan["checkpoint"]["architecture"] == "sd1", "the family is read from the loaded MODEL"
    assert plan["settings"]["seed"] == 3 and plan["memory"]["reasons"], "the sampler adds its part to the stack's plan"
    pink = [lora for lora in plan["loras"] if "pnkhr" in lora["trigger_words"]]
    assert pink and pink[0]["strength_model"] <= 0.5
    assert "pnkhr" in entry["outputs"]["2"]["text"][0], "the stack's report names what it stacked"


def test_empty_prompt_is_refused_at_queue_time(client, h):
    graph = h.fast_graph(PROMPT_TO_IMAGE, "   ")
    with pytest.raises(Exception) as e:
        client.queue(graph)
    assert "prompt is empty" in str(e.value)


def test_lora_stack_outputs_follow_the_plan(client, server, h):
    graph = h.fast_graph(PROMPT_TO_IMAGE, "anime girl with pink hair")
    graph["3"]["inputs"]["banned_loras"] = ""
    graph["3"]["inputs"]["strength_scale"] = 0.5
    entry = client.run(graph, timeout=600)
    plan = h.png_plan(h.saved_pngs(server, entry)[0])
    pink = [lora for lora in plan["loras"] if "pnkhr" in lora["trigger_words"]]
    assert pink, plan["loras"]
    assert pink[0]["strength_model"] <= 0.5, "strength_scale halves the chosen strengths"
    assert plan["prompt"]["positive"].count("pnkhr") == 1


def test_comfyui_still_validates_the_other_inputs(client, h):
    """Our validate_inputs names only what it checks, so ComfyUI's own combo and range checks still run."""
    graph = h.fast_graph(PROMPT_TO_IMAGE, "a cat")
    graph["1"]["inputs"]["style"] = "baroque"
    with pytest.raises(Exception) as e:
        client.queue(graph)
    assert "style" in str(e.value)
    graph = h.fast_graph(PROMPT_TO_IMAGE, "a cat")
    graph["2"]["inputs"]["width"] = 68
    with pytest.raises(Exception) as e:
        client.queue(graph)
    assert "multiple of 8" in str(e.value)
    graph["2"]["inputs"]["width"] = 64
    graph["2"]["inputs"]["steps"] = 5000
    with pytest.raises(Exception) as e:
        client.queue(graph)
    assert "steps" in str(e.value)


def test_only_relevant_settings_invalidate_the_cache(client, h):
    graph = h.fast_graph(PROMPT_TO_IMAGE, "a quiet mountain lake, morning mist", seed=21)

    def rerun(prefix: str) -> set[str]:
        graph["5"]["inputs"]["filename_prefix"] = prefix
        return h.executed_nodes(client.run(graph, timeout=600))

    rerun("settings_a")
    try:
        client.post("/intelligent/api/settings", {"monitor.interval_s": 2.5})
        assert rerun("settings_b") == {"5"}, "an unrelated setting re-ran our nodes"
        client.post("/intelligent/api/settings", {"selection.max_loras": 1})
        ran = rerun("settings_c")
        assert {"2", "3"} <= ran, f"a selection setting must re-run the picker and the stack: {ran}"
    finally:
        client.post("/intelligent/api/settings", {"monitor.interval_s": 1.0, "selection.max_loras": 3})


def test_a_linked_prompt_is_accepted_at_queue_time(client, server, h):
    """Linked inputs reach validate_inputs as None: only the executed value may be judged."""
    graph = h.fast_graph(PROMPT_TO_IMAGE, "unused")
    graph["900"] = {"class_type": "PrimitiveStringMultiline", "inputs": {"value": "anime girl with pink hair"}}
    graph["1"]["inputs"]["prompt"] = ["900", 0]
    entry = client.run(graph, timeout=600)
    plan = h.png_plan(h.saved_pngs(server, entry)[0])
    assert plan["prompt"]["positive"].startswith("anime girl with pink hair")


def test_too_small_sizes_are_refused_at_queue_time(client, h):
    graph = h.fast_graph(PROMPT_TO_IMAGE, "a cat")
    graph["2"]["inputs"]["height"] = 56
    with pytest.raises(Exception) as e:
        client.queue(graph)
    assert "height" in str(e.value) and "from 64" in str(e.value)
