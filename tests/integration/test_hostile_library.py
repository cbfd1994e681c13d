"""Hostile input on the real server (issue 5): a library of hostile files indexed while a workflow runs,
and 100,000-character prompts of every adversarial shape, with the server answering `/system_stats`
within a second throughout, and every good model still indexed and usable.

The hostile files are added to the shared server's models folder for this module only and removed after
it, so the other integration tests see the library they expect. Symlink loops deeper than one level are
left to the unit tests of our walker: ComfyUI's own `folder_paths` walk follows them exponentially.
"""
from __future__ import annotations

import os
import shutil
import struct
import threading
import time
import urllib.request

import pytest

pytestmark = pytest.mark.integration

RESPONSIVE_S = 1.0
FORGED = "ERROR forged log line"


class Latency:
    """Polls GET /system_stats in a thread and keeps the slowest answer."""

    def __init__(self, url: str) -> None:
        self.url = url + "/system_stats"
        self.worst = 0.0
        self.count = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=30) as r:
                    r.read()
            except OSError as e:
                self.errors.append(repr(e))
            self.worst = max(self.worst, time.perf_counter() - started)
            self.count += 1
            self._stop.wait(0.05)

    def __enter__(self) -> Latency:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)


def _gguf_nested_arrays(depth: int) -> bytes:
    """A GGUF v3 header whose one key holds arrays of arrays `depth` deep."""
    key = b"general.nested"
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key + struct.pack("<I", 9)
    for _ in range(depth):
        out += struct.pack("<IQ", 9, 1)  # an array of one array
    return out + struct.pack("<IQ", 4, 0)


def add_hostile_files(models: str) -> dict[str, str]:
    """Hostile files next to good ones; returns {role: loader name} of the good models among them."""
    loras = os.path.join(models, "loras")
    donor = os.path.realpath(os.path.join(loras, next(f for f in sorted(os.listdir(loras))
                                                      if f.endswith(".safetensors") and not f.startswith(("broken", "truncated")))))
    good: dict[str, str] = {}

    def good_lora(role: str, name: str) -> str:
        os.symlink(donor, os.path.join(loras, name))
        good[role] = name
        return os.path.join(loras, name.rsplit(".", 1)[0])

    stem = good_lora("fifo sidecar", "hostile_fifo_sidecar.safetensors")
    if hasattr(os, "mkfifo"):
        os.mkfifo(stem + ".metadata.json")
        os.mkfifo(os.path.join(loras, "hostile_fifo_model.safetensors"))
    stem = good_lora("device sidecar", "hostile_devzero_sidecar.safetensors")
    os.symlink("/dev/zero", stem + ".civitai.info")
    os.symlink("/dev/zero", os.path.join(loras, "hostile_devzero_model.safetensors"))
    os.symlink(os.path.join(loras, "no_such_target.safetensors"), os.path.join(loras, "hostile_broken_link.safetensors"))
    os.symlink("hostile_self.safetensors", os.path.join(loras, "hostile_self.safetensors"))
    os.mkdir(os.path.join(loras, "hostile_folder.safetensors"))
    good_lora("newline name", f"hostile_x\n{FORGED}.safetensors")
    good_lora("odd unicode", "hostile_\u202eevil\u200b_n\u0303_\U0001f600.safetensors")
    stem = good_lora("usage tips", "hostile_usage_tips.safetensors")
    with open(stem + ".metadata.json", "w") as f:
        f.write('{"model_name": "Usage tips trap", "tags": ["hostile usage tips tag"], "usage_tips": "'
                + "[" * 5000 + '"}')
    stem = good_lora("html description", "hostile_html_description.safetensors")
    with open(stem + ".civitai.info", "w") as f:
        f.write('{"baseModel": "SD 1.5", "trainedWords": ["hostiletrigger"], "model": {"description": "'
                + "<" * 300_000 + '"}}')
    stem = good_lora("list sidecar", "hostile_list_sidecar.safetensors")
    with open(stem + ".metadata.json", "w") as f:
        f.write("[1, 2, 3]")
    os.makedirs(os.path.join(models, "diffusion_models"), exist_ok=True)
    with open(os.path.join(models, "diffusion_models", "hostile_nested.gguf"), "wb") as f:
        f.write(_gguf_nested_arrays(20_000))
    return good


@pytest.fixture(scope="module")
def hostile(server_env, client, h):
    models = server_env["models"]
    before = {kind: h.models_by_name(client, kind) for kind in ("checkpoint", "lora", "vae")}
    log_offset = len(server_env["server"].log_text())
    loras = os.path.join(models, "loras")
    existing = set(os.listdir(loras))
    diffusion = os.path.join(models, "diffusion_models")
    existing_diffusion = set(os.listdir(diffusion)) if os.path.isdir(diffusion) else set()
    good = add_hostile_files(models)
    try:
        yield {"before": before, "good": good, "models": models, "log_offset": log_offset}
    finally:
        for name in set(os.listdir(loras)) - existing:
            path = os.path.join(loras, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        for name in (set(os.listdir(diffusion)) if os.path.isdir(diffusion) else set()) - existing_diffusion:
            os.unlink(os.path.join(diffusion, name))
        client.post("/intelligent/api/rescan", {})


def test_hostile_library_is_indexed_while_a_workflow_runs(client, server, hostile, h):
    graph = h.fast_graph("intelligent_prompt_to_image", "anime girl with pink hair", seed=5)
    loras = os.path.join(hostile["models"], "loras")
    result: dict = {}

    def rescan() -> None:
        result["rescan"] = client.post("/intelligent/api/rescan", {})

    with Latency(server.url) as latency:
        scan = threading.Thread(target=rescan)
        scan.start()
        # a model replaced by a folder while the scan may be reading it
        racer = os.path.join(loras, "hostile_replaced.safetensors")
        shutil.copyfile(os.path.join(loras, hostile["good"]["fifo sidecar"]), racer)
        os.unlink(racer)
        os.mkdir(racer)
        entry = client.run(graph, timeout=600)
        scan.join(120)
    assert not scan.is_alive(), "the rescan did not finish"
    assert latency.count >= 5 and not latency.errors
    assert latency.worst < RESPONSIVE_S, f"/system_stats took {latency.worst:.2f} s during the scan and the run"
    assert h.saved_pngs(server, entry), "the workflow wrote no image"

    after = {kind: h.models_by_name(client, kind) for kind in ("checkpoint", "lora", "vae")}
    for kind, records in hostile["before"].items():
        for name, record in records.items():
            assert name in after[kind], f"{kind} {name} was lost"
            for key in ("architecture", "base_model", "tags", "trigger_words"):
                assert after[kind][name][key] == record[key], (name, key)
    for role, name in hostile["good"].items():
        assert name in after["lora"], f"the LoRA with the {role} is not indexed"
        assert after["lora"][name]["architecture"] == "sd1", role
    for name in ("hostile_fifo_model.safetensors", "hostile_devzero_model.safetensors", "hostile_folder.safetensors",
                 "hostile_replaced.safetensors"):
        record = after["lora"].get(name)
        assert record is None or record["problems"], f"{name} was indexed as if it were a good model"
    html = after["lora"][hostile["good"]["html description"]]
    assert html["trigger_words"] == ["hostiletrigger"]
    tips = after["lora"][hostile["good"]["usage tips"]]
    assert "hostile usage tips tag" in tips["tags"], "one bad field cost the whole sidecar"

    log = server.log_text()[hostile["log_offset"]:]
    assert not any(line.startswith(FORGED) for line in log.splitlines()), "a file name forged a log line"
    assert "RecursionError" not in log and "Traceback" not in log, log[-3000:]


def test_good_hostile_neighbours_are_usable(client, hostile):
    name = hostile["good"]["newline name"]
    plan = client.plan("anime girl with pink hair", overrides={"loras": [{"name": name, "strength": 0.5}]})
    assert name in [lo["name"] for lo in plan["loras"]]


def _shapes(n: int) -> dict[str, str]:
    def fill(prefix: str, unit: str) -> str:
        return (prefix + unit * n)[:n]
    return {
        "plain": fill("", "a girl with pink hair in a garden at sunset, "),
        "lora tag + spaces": fill("a cat <lora:", " "),
        "many lora tags": fill("", "<lora:a:0.5>"),
        "angle brackets": fill("", "<"),
        "weight + digits": fill("(cat:", "1"),
        "commas and spaces": fill("<x> cat", ", "),
        "newlines": fill("cat", "\n"),
        "backslashes": fill("", "\\"),
    }


def test_100k_prompts_of_every_adversarial_shape_plan_and_the_server_stays_responsive(client, server):
    with Latency(server.url) as latency:
        for shape, prompt in _shapes(100_000).items():
            assert len(prompt) == 100_000
            plan = client.plan(prompt)
            assert plan["version"] == 1 and plan["checkpoint"], shape
    assert latency.worst < RESPONSIVE_S, f"/system_stats took {latency.worst:.2f} s during 100 KB plans"
    assert not latency.errors


def test_a_hostile_prompt_runs_through_the_workflow(client, server, h):
    graph = h.fast_graph("intelligent_prompt_to_image", "a cat <lora:" + " " * 50_000, seed=2)
    with Latency(server.url) as latency:
        entry = client.run(graph, timeout=600)
    assert h.saved_pngs(server, entry)
    assert latency.worst < RESPONSIVE_S
