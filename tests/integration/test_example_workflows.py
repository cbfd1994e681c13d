"""The UI-format example workflows (what the templates browser lists) against their API twins and a real server.

`example_workflows/*.json` is what a user loads in the editor; `example_workflows/api/*.json` is what the
client and the other tests queue. A small UI->API converter, following the frontend's rules, keeps the two
in sync; then each UI workflow is queued as the editor would queue it.
"""
from __future__ import annotations

import copy
import glob
import json
import os
import uuid

import pytest

from intelligent_pipeline.client.graphs import PICKER_WITH_KSAMPLER, PROMPT_TO_IMAGE, WORKFLOW_DIR, png_text_chunks

pytestmark = pytest.mark.integration

WORKFLOWS = [PROMPT_TO_IMAGE, PICKER_WITH_KSAMPLER]
PACK_LINK_NAME = "intelligent_pipeline"  # the pack's folder name under custom_nodes
FRONTEND_ONLY = {"Note", "MarkdownNote"}  # editor-only nodes: never sent to the server
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


# The converter: what the frontend's graphToPrompt does for these simple graphs.


def input_type(spec: list) -> str:
    return "COMBO" if isinstance(spec[0], list) else spec[0]


def output_type(t: str | list) -> str:
    return "COMBO" if isinstance(t, list) else t


def is_widget(spec: list) -> bool:
    options = spec[1] if len(spec) > 1 else {}
    return input_type(spec) in WIDGET_TYPES and not options.get("forceInput")


def ordered_inputs(info: dict) -> list[tuple[str, list, bool]]:
    """(name, spec, optional) in the node's input order: required, then optional."""
    out = []
    for section in ("required", "optional"):
        specs = info["input"].get(section, {})
        for name in info.get("input_order", {}).get(section, list(specs)):
            out.append((name, specs[name], section == "optional"))
    return out


def ui_to_api(ui: dict, object_info: dict) -> dict:
    links = {link[0]: link for link in ui["links"]}
    graph = {}
    for node in ui["nodes"]:
        if node["type"] in FRONTEND_ONLY:
            continue
        assert node.get("mode", 0) == 0, f"node {node['id']} is muted or bypassed"
        linked = {slot["name"]: links[slot["link"]] for slot in node["inputs"] if slot.get("link") is not None}
        values = list(node.get("widgets_values", []))
        inputs: dict = {}
        for name, spec, _optional in ordered_inputs(object_info[node["type"]]):
            if is_widget(spec):
                # a widget keeps its value even when a link feeds it; the link wins.
                # A seed's control_after_generate ("fixed", "randomize") is the editor's, never sent.
                count = 2 if spec[1].get("control_after_generate") else 1
                assert len(values) >= count, f"node {node['id']} ({node['type']}) lacks a value for {name}"
                inputs[name], values = values[0], values[count:]
            if name in linked:
                inputs[name] = [str(linked[name][1]), linked[name][2]]
        assert not values, f"node {node['id']} ({node['type']}) has extra widget values {values}"
        graph[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return graph


# Helpers


def load_ui(name: str) -> dict:
    with open(os.path.join(WORKFLOW_DIR, f"{name}.json"), encoding="utf-8") as f:
        return json.load(f)


def load_api(name: str, object_info: dict) -> dict:
    """The API twin without `_meta`, with omitted optional widgets at their defaults (the editor always sends them)."""
    with open(os.path.join(WORKFLOW_DIR, "api", f"{name}.json"), encoding="utf-8") as f:
        graph = json.load(f)
    for node in graph.values():
        node.pop("_meta", None)
        for input_name, spec, optional in ordered_inputs(object_info[node["class_type"]]):
            if optional and is_widget(spec) and input_name not in node["inputs"]:
                node["inputs"][input_name] = spec[1].get("default")
    return graph


@pytest.fixture(scope="module")
def object_info(client) -> dict:
    return client.get("/object_info")


def names(pattern: str) -> list[str]:
    return sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(WORKFLOW_DIR, pattern)))


def test_every_ui_workflow_has_an_api_twin():
    assert names("*.json") == names(os.path.join("api", "*.json"))
    assert set(WORKFLOWS) <= set(names("*.json"))


@pytest.mark.parametrize("name", WORKFLOWS)
def test_ui_workflow_converts_to_its_api_twin(object_info, name):
    assert ui_to_api(load_ui(name), object_info) == load_api(name, object_info)


@pytest.mark.parametrize("name", WORKFLOWS)
def test_ui_workflow_is_well_formed(object_info, name):
    ui = load_ui(name)
    nodes = {node["id"]: node for node in ui["nodes"]}
    assert len(nodes) == len(ui["nodes"]), "duplicate node ids"
    assert ui["last_node_id"] == max(nodes) and ui["last_link_id"] == max(link[0] for link in ui["links"])
    assert any(node["type"] == "Note" and node["widgets_values"][0].strip() for node in ui["nodes"]), "no Note"
    for node in ui["nodes"]:
        if node["type"] in FRONTEND_ONLY:
            continue
        assert node["type"] in object_info, f"unknown node type {node['type']}"
        info = object_info[node["type"]]
        # a node may gain outputs in newer ComfyUI (SaveImage did): the saved ones must still line up
        declared = [output_type(t) for t in info["output"]]
        assert [o["type"] for o in node["outputs"]] == declared[:len(node["outputs"])]
        specs = {name: spec for name, spec, _ in ordered_inputs(info)}
        for slot in node["inputs"]:
            assert slot["type"] == input_type(specs[slot["name"]]), (node["id"], slot["name"])
            assert ("widget" in slot) == is_widget(specs[slot["name"]]), (node["id"], slot["name"])
    for link_id, src, src_slot, dst, dst_slot, link_type in ui["links"]:
        out, inp = nodes[src]["outputs"][src_slot], nodes[dst]["inputs"][dst_slot]
        assert link_id in out["links"] and inp["link"] == link_id, f"link {link_id} is not wired both ends"
        assert out["type"] == inp["type"] == link_type, f"link {link_id}: {out['type']} -> {inp['type']}"
        if link_type == "COMBO":  # every value the output can give must be a choice of the input
            given = object_info[nodes[src]["type"]]["output"][src_slot]
            accepted = dict((n, s) for n, s, _ in ordered_inputs(object_info[nodes[dst]["type"]]))[inp["name"]][0]
            assert set(given) <= set(accepted), f"link {link_id}: combo values the input does not accept"


def test_templates_browser_lists_both_workflows(client):
    templates = client.get("/api/workflow_templates")
    # the UI files only, each once: the api/ subfolder is not a template folder
    assert sorted(templates.get(PACK_LINK_NAME, [])) == names("*.json"), templates
    for name in WORKFLOWS:  # the editor loads a template from this route
        assert client.get(f"/api/workflow_templates/{PACK_LINK_NAME}/{name}.json") == load_ui(name)


@pytest.mark.parametrize("name", WORKFLOWS)
def test_ui_workflow_runs_and_its_png_carries_the_workflow_and_the_plan(client, server, h, object_info, name):
    ui = load_ui(name)
    graph = copy.deepcopy(ui_to_api(ui, object_info))
    for node in graph.values():
        if node["class_type"] == "IntelligentAutoModelPicker":
            node["inputs"].update(width=64, height=64, steps=3)
        elif node["class_type"] == "SaveImage":
            node["inputs"]["filename_prefix"] = f"example_{uuid.uuid4().hex[:8]}"
    entry = client.run(graph, extra_pnginfo={"workflow": ui}, timeout=600)
    pngs = h.saved_pngs(server, entry)
    assert len(pngs) == 1
    with open(pngs[0], "rb") as f:
        chunks = png_text_chunks(f.read())
    assert json.loads(chunks["workflow"]) == ui
    plan = h.png_plan(pngs[0])
    assert plan is not None, "the PNG has no intelligent_plan chunk"
    assert plan["settings"]["width"] == 64 and plan["settings"]["steps"] == 3
