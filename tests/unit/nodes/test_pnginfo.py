"""The on-prompt hook that keeps the plan in PNGs when ComfyUI serves our nodes from its cache."""
import copy

from intelligent_pipeline.nodes import pnginfo

GRAPH = {
    "1": {"class_type": "IntelligentPromptAnalyzer", "inputs": {"prompt": "a cat"}},
    "2": {"class_type": "IntelligentAutoModelPicker", "inputs": {"plan": ["1", 0], "steps": 0}},
    "9": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}},
}


def test_remembered_plan_of_the_most_downstream_node_is_attached():
    pnginfo.remember_plan(GRAPH, "1", 1, {"who": "analyzer"})
    pnginfo.remember_plan(GRAPH, "2", 2, {"who": "picker"})
    body = {"prompt": copy.deepcopy(GRAPH), "extra_data": {"extra_pnginfo": {"workflow": {}}}}
    out = pnginfo.on_prompt(body)
    assert out["extra_data"]["extra_pnginfo"]["intelligent_plan"] == {"who": "picker"}
    assert out["extra_data"]["extra_pnginfo"]["workflow"] == {}


def test_changed_upstream_input_does_not_reuse_an_old_plan():
    pnginfo.remember_plan(GRAPH, "2", 2, {"who": "old"})
    changed = copy.deepcopy(GRAPH)
    changed["1"]["inputs"]["prompt"] = "a dog"
    out = pnginfo.on_prompt({"prompt": changed})
    assert "intelligent_plan" not in out["extra_data"]["extra_pnginfo"]


def test_api_callers_without_extra_data_still_get_a_pnginfo_dict():
    out = pnginfo.on_prompt({"prompt": copy.deepcopy(GRAPH)})
    assert isinstance(out["extra_data"]["extra_pnginfo"], dict)


def test_graphs_without_our_nodes_are_left_untouched():
    body = {"prompt": {"1": {"class_type": "KSampler", "inputs": {}}}}
    assert pnginfo.on_prompt(body) == {"prompt": {"1": {"class_type": "KSampler", "inputs": {}}}}


def test_hostile_bodies_do_not_raise():
    for body in ({}, {"prompt": "x"}, {"prompt": {"1": "x"}}, {"prompt": GRAPH, "extra_data": "x"},
                 {"prompt": GRAPH, "extra_data": {"extra_pnginfo": [1]}}):
        pnginfo.on_prompt(copy.deepcopy(body))


def test_signature_survives_cycles_and_missing_links():
    graph = {"1": {"class_type": "A", "inputs": {"x": ["2", 0]}}, "2": {"class_type": "B", "inputs": {"y": ["1", 0]}},
             "3": {"class_type": "C", "inputs": {"z": ["404", 0]}}}
    assert pnginfo.signature(graph, "1") != pnginfo.signature(graph, "3")


def test_whole_number_floats_sign_like_ints():
    """ComfyUI rewrites `"cfg": 0` to `0.0` after the hook ran; both must give the same signature."""
    a = {"1": {"class_type": "IntelligentAutoModelPicker", "inputs": {"cfg": 0}}}
    b = {"1": {"class_type": "IntelligentAutoModelPicker", "inputs": {"cfg": 0.0}}}
    c = {"1": {"class_type": "IntelligentAutoModelPicker", "inputs": {"cfg": 0.5}}}
    assert pnginfo.signature(a, "1") == pnginfo.signature(b, "1") != pnginfo.signature(c, "1")
