"""One real ComfyUI server for the whole integration run, on a free port, with the synthetic library.

The library is linked file by file into a temporary models folder (tests/conftest.py), so tests may add broken
files to it without touching the library `make setup` built. Everything the server writes
(user settings, index cache, CivitAI cache, temp, output) lives under pytest's temp folder.
"""
from __future__ import annotations

import copy
import os
import pickle
import time
import types
import uuid

import pytest

from intelligent_pipeline.client.api import ComfyClient
from intelligent_pipeline.client.graphs import load_api_workflow, plan_from_png
from intelligent_pipeline.client.server import ComfyServer, find_comfyui


class _PickleTrap:
    """Unpickling this runs code that leaves a marker file: the index must never do that."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def add_broken_files(models: str, marker: str) -> dict[str, str]:
    """A malformed sidecar, a truncated safetensors file and a pickle that must never be opened."""
    loras = os.path.join(models, "loras")
    donor = next(f for f in sorted(os.listdir(loras)) if f.endswith(".safetensors"))
    broken_sidecar_lora = os.path.join(loras, "broken_sidecar_lora.safetensors")
    os.symlink(os.path.realpath(os.path.join(loras, donor)), broken_sidecar_lora)
    with open(os.path.join(loras, "broken_sidecar_lora.metadata.json"), "w") as f:
        f.write('{"model_name": "half a sidecar", "tags": ["anime", ')
    with open(os.path.join(loras, "truncated_lora.safetensors"), "wb") as f:
        f.write((10_000).to_bytes(8, "little") + b'{"lora_unet_x.lora_down.weight": {"dtype": "F16", "sha')
    with open(os.path.join(models, "checkpoints", "legacy_pickle.ckpt"), "wb") as f:
        pickle.dump(_PickleTrap(marker), f)
    return {"sidecar": "broken_sidecar_lora.safetensors", "truncated": "truncated_lora.safetensors",
            "pickle": "legacy_pickle.ckpt"}


def _wait_for_meaning(url: str, timeout_s: float = 180.0) -> None:
    """Until plans use retrieval by meaning (the LoRAs' vectors are built in the background after
    the first scan), so every test sees the planner as users do once it has settled."""
    client = ComfyClient(url, timeout=120)
    deadline = time.monotonic() + timeout_s
    while True:
        if client.plan("a photo of a cat")["analysis"]["retrieval"] == "words+meaning":
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"plans still use words only after {timeout_s:.0f} s")
        time.sleep(0.5)


@pytest.fixture(scope="session")
def server_env(tmp_path_factory, linked_models):
    base = tmp_path_factory.mktemp("comfy")
    models = linked_models()
    marker = str(base / "PICKLE_WAS_LOADED")
    broken = add_broken_files(models, marker)
    settings = {
        # folders inside the server's user directory: the only place the settings file may point
        "cache.dir": str(base / "state" / "user" / "civitai_cache"),
        "index.cache_dir": str(base / "state" / "user" / "index_cache"),
        "civitai.enabled": False,
        "ollama.enabled": False,
        "index.recheck_s": 0,
    }
    server = ComfyServer(comfyui_path=find_comfyui(), state_dir=str(base / "state"), models_dir=models,
                         settings=settings)
    server.start()
    try:
        _wait_for_meaning(server.url)
        yield {"server": server, "models": models, "marker": marker, "broken": broken, "base": str(base)}
    finally:
        server.stop()


@pytest.fixture(scope="session")
def server(server_env) -> ComfyServer:
    return server_env["server"]


@pytest.fixture(scope="session")
def client(server) -> ComfyClient:
    return ComfyClient(server.url, timeout=120)


# Helpers for the tests (handed out through the `h` fixture: test files are not a package).


def fast_graph(workflow: str, prompt: str, seed: int = 1, prefix: str | None = None) -> dict:
    """The shipped workflow with the prompt set and a 64x64, 3-step run (the CPU needs speed)."""
    graph = copy.deepcopy(load_api_workflow(workflow))
    for node in graph.values():
        inputs = node["inputs"]
        if node["class_type"] == "IntelligentPromptAnalyzer":
            inputs["prompt"] = prompt
        elif node["class_type"] == "IntelligentAutoModelPicker":
            inputs.update(width=64, height=64, steps=3)
        elif node["class_type"] in ("IntelligentMemoryAwareSampler", "KSampler"):
            inputs["seed"] = seed
        elif node["class_type"] == "SaveImage":
            inputs["filename_prefix"] = prefix or f"test_{uuid.uuid4().hex[:8]}"
    return graph


def saved_pngs(server, entry: dict) -> list[str]:
    out = []
    for node_output in entry["outputs"].values():
        for img in node_output.get("images", []):
            out.append(os.path.join(server.state_dir, "output", img["subfolder"], img["filename"]))
    return out


def png_plan(path: str) -> dict | None:
    with open(path, "rb") as f:
        return plan_from_png(f.read())


def models_by_name(client, kind: str) -> dict[str, dict]:
    return {m["name"]: m for m in client.get(f"/intelligent/api/models?type={kind}&limit=10000")["items"]}


def executed_nodes(entry: dict) -> set[str]:
    """Node ids that really ran (not served from ComfyUI's cache) in a finished prompt."""
    cached: set[str] = set()
    for kind, data in entry.get("status", {}).get("messages", []):
        if kind == "execution_cached":
            cached.update(data.get("nodes", []))
    return set(entry["prompt"][2].keys()) - cached


@pytest.fixture(scope="session")
def h():
    return types.SimpleNamespace(fast_graph=fast_graph, saved_pngs=saved_pngs, png_plan=png_plan,
                                 models_by_name=models_by_name, executed_nodes=executed_nodes)
