import json
import struct
import zlib

import pytest

from intelligent_pipeline.client.graphs import (
    PICKER_WITH_KSAMPLER,
    load_api_workflow,
    plan_from_png,
    png_text_chunks,
    prompt_to_image_graph,
)


def _png(chunks: list[tuple[bytes, bytes]]) -> bytes:
    out = b"\x89PNG\r\n\x1a\n"
    for ctype, body in chunks + [(b"IEND", b"")]:
        out += struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))
    return out


def test_png_text_chunks_reads_text_ztxt_and_itxt():
    plan = {"checkpoint": {"name": "x.safetensors"}}
    data = _png([(b"tEXt", b"prompt\x00{}"),
                 (b"zTXt", b"notes\x00\x00" + zlib.compress(b"hello")),
                 (b"iTXt", b"intelligent_plan\x00\x00\x00\x00\x00" + json.dumps(plan).encode())])
    chunks = png_text_chunks(data)
    assert chunks["prompt"] == "{}" and chunks["notes"] == "hello"
    assert plan_from_png(data) == plan


def test_not_a_png_is_refused():
    with pytest.raises(ValueError):
        png_text_chunks(b"GIF89a")


def test_graph_builder_fills_the_shipped_workflow():
    g = prompt_to_image_graph("a red fox", style="anime", quality="fast", seed=5, steps=4, width=64, height=64)
    by_type = {n["class_type"]: n["inputs"] for n in g.values()}
    assert by_type["IntelligentPromptAnalyzer"]["prompt"] == "a red fox"
    assert by_type["IntelligentPromptAnalyzer"]["style"] == "anime"
    assert by_type["IntelligentAutoModelPicker"]["steps"] == 4
    assert by_type["IntelligentMemoryAwareSampler"]["seed"] == 5
    assert load_api_workflow("intelligent_prompt_to_image")["1"]["inputs"]["prompt"] != "a red fox"


def test_ksampler_workflow_gets_the_seed_too():
    g = prompt_to_image_graph("x", seed=9, workflow=PICKER_WITH_KSAMPLER)
    assert [n["inputs"]["seed"] for n in g.values() if n["class_type"] == "KSampler"] == [9]
