"""API-format graphs built from the shipped example workflows, so the client runs what users load."""
from __future__ import annotations

import copy
import json
import os
import struct
import zlib
from typing import Any

WORKFLOW_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "example_workflows")
PROMPT_TO_IMAGE = "intelligent_prompt_to_image"
PICKER_WITH_KSAMPLER = "intelligent_picker_with_ksampler"


def load_api_workflow(name: str) -> dict[str, Any]:
    with open(os.path.join(WORKFLOW_DIR, "api", f"{name}.json"), encoding="utf-8") as f:
        return json.load(f)


def _node(graph: dict, class_type: str) -> dict:
    for node in graph.values():
        if node.get("class_type") == class_type:
            return node
    raise KeyError(f"the workflow has no {class_type} node")


def prompt_to_image_graph(prompt: str, *, negative_prompt: str = "", style: str = "auto", quality: str = "balanced",
                          seed: int = 0, filename_prefix: str = "intelligent", workflow: str = PROMPT_TO_IMAGE,
                          checkpoint: str = "auto", width: int = 0, height: int = 0, steps: int = 0,
                          cfg: float = 0.0, sampler_name: str = "auto", scheduler: str = "auto") -> dict[str, Any]:
    graph = copy.deepcopy(load_api_workflow(workflow))
    analyzer = _node(graph, "IntelligentPromptAnalyzer")["inputs"]
    analyzer.update(prompt=prompt, negative_prompt=negative_prompt, style=style, quality=quality)
    picker = _node(graph, "IntelligentAutoModelPicker")["inputs"]
    picker.update(checkpoint=checkpoint, width=width, height=height, steps=steps, cfg=cfg,
                  sampler_name=sampler_name, scheduler=scheduler)
    for node in graph.values():
        if node["class_type"] in ("IntelligentMemoryAwareSampler", "KSampler"):
            node["inputs"]["seed"] = seed
        if node["class_type"] == "SaveImage":
            node["inputs"]["filename_prefix"] = filename_prefix
    return graph


def png_text_chunks(data: bytes) -> dict[str, str]:
    """tEXt/iTXt/zTXt chunks of a PNG (where ComfyUI's SaveImage puts the prompt and the plan)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    out: dict[str, str] = {}
    pos = 8
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if ctype == b"tEXt":
            key, _, value = body.partition(b"\x00")
            out[key.decode("latin-1")] = value.decode("latin-1")
        elif ctype == b"zTXt":
            key, _, rest = body.partition(b"\x00")
            out[key.decode("latin-1")] = zlib.decompress(rest[1:]).decode("latin-1")
        elif ctype == b"iTXt":
            key, _, rest = body.partition(b"\x00")
            compressed, rest = rest[0], rest[2:]
            _lang, _, rest = rest.partition(b"\x00")
            _tkey, _, text = rest.partition(b"\x00")
            out[key.decode("latin-1")] = (zlib.decompress(text) if compressed else text).decode("utf-8")
        elif ctype == b"IEND":
            break
    return out


def plan_from_png(data: bytes) -> dict | None:
    text = png_text_chunks(data).get("intelligent_plan")
    return json.loads(text) if text else None
