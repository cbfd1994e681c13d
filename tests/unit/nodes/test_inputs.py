"""Queue-time checks and text inputs of the nodes (nodes/inputs.py: no ComfyUI needed)."""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from intelligent_pipeline.nodes import inputs
from intelligent_pipeline.selector.planner import MAX_PROMPT_CHARS


def test_lora_lists_split_on_commas_and_new_lines_and_read_strengths():
    assert inputs.parse_lora_list("a, b:0.7\nc: -1.5,,\n d ", "loras") == [
        "a", {"name": "b", "strength": 0.7}, {"name": "c", "strength": -1.5}, "d"]
    assert inputs.parse_lora_list("style:anime:0.5", "loras") == [{"name": "style:anime", "strength": 0.5}]
    assert inputs.parse_lora_list("b:0.7", "exclude") == ["b:0.7"]
    for text in ("x:", "x:.5", "x:1.", "x:1e3", "x:+1", "x: 1 2", ":0.5", "x:- 1", "x:1.2.3", "x:٣"):
        assert inputs.parse_lora_list(text, "loras") == [text.strip()], text
    assert inputs.parse_lora_list("", "loras") == [] and inputs.parse_lora_list(None, "loras") == []


@hyp_settings(derandomize=True, max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("ab:.-0123456789 ,\n\t\u00a0٣é"), max_size=60) | st.text(max_size=60))
def test_lora_list_parser_returns_names_and_finite_strengths(text):
    out = inputs.parse_lora_list(text, "loras")
    for item in out:
        if isinstance(item, dict):
            assert set(item) == {"name", "strength"} and item["name"] and math.isfinite(item["strength"])
        else:
            assert isinstance(item, str) and item == item.strip() and item
            assert "," not in item and "\n" not in item


HOSTILE = [":" + "9" * 7, ":", " ", ",", "\n", ": 1", "a:-", "0.", "\t:"]


@pytest.mark.parametrize("unit", HOSTILE)
def test_lora_list_parser_is_linear(assert_linear, unit):
    assert_linear(lambda t: inputs.parse_lora_list(t, "loras"), lambda n: "x" + unit * (n // len(unit)),
                  f"parse_lora_list on {unit!r} x n")


def test_the_pinned_lora_input_is_parsed_without_regexes():
    import os

    folder = os.path.dirname(inputs.__file__)
    for name in ("lora_stack.py", "inputs.py"):
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            source = f.read()
        assert "import re\n" not in source and "re.match(" not in source and "re.split(" not in source, name
    with open(os.path.join(folder, "lora_stack.py"), encoding="utf-8") as f:
        assert "parse_lora_list" in f.read()


def test_prompt_length_check_uses_the_one_cap():
    assert inputs.prompt_problem("prompt", "a" * MAX_PROMPT_CHARS) is None
    assert "prompt" in inputs.prompt_problem("prompt", "a" * (MAX_PROMPT_CHARS + 1))
    assert inputs.prompt_problem("prompt", None) is None  # a linked input: checked when it runs


@pytest.mark.parametrize("value,ok", [
    (0, True), (8192, True), (8193, False), (-1, False), (1_000_000, False), (float("nan"), False),
    (float("inf"), False), (None, True), (True, False), ("8", False), (10**400, False), (-(10**400), False),
])
def test_number_check_keeps_comfyuis_range_and_refuses_what_is_not_finite(value, ok):
    problem = inputs.number_problem("width", value, 0, 8192)
    assert (problem is None) == ok, problem
    if problem:
        assert problem.startswith("width")


@pytest.mark.parametrize("name", [
    "../../etc/passwd", "..\\..\\windows\\win.ini", "sub/../../x.safetensors", "/etc/passwd", "C:\\x",
    "C:/models/x.safetensors", "\\\\server\\share\\x.safetensors", "c:x.safetensors", "\\x.safetensors",
    "a\x00b.safetensors", "x\n.safetensors",
])
def test_checkpoint_names_that_are_paths_are_refused(name):
    problem = inputs.model_name_problem("checkpoint", name)
    assert problem and problem.startswith("checkpoint"), name


@pytest.mark.parametrize("name", ["x.safetensors", "sub/x.safetensors", "sub\\x.safetensors", "a..b.safetensors",
                                  "auto"])
def test_ordinary_checkpoint_names_pass_the_shape_check(name):
    assert inputs.model_name_problem("checkpoint", name) is None


def test_records_comfyui_cannot_load_are_recognised(tmp_path):
    from intelligent_pipeline.metadata.reader import ModelFile, build_record

    def record(name: str, data: bytes):
        path = tmp_path / name
        path.write_bytes(data)
        st_ = path.stat()
        return build_record(ModelFile("checkpoint", name, str(tmp_path), str(path), st_.st_size, st_.st_mtime_ns))

    truncated = record("t.safetensors", (10_000).to_bytes(8, "little") + b'{"a": {"dtype": "F16", "sha')
    assert inputs.unloadable_problem(truncated)
    garbage = record("g.safetensors", b"\xff" * 64)
    assert inputs.unloadable_problem(garbage)
    pickle_file = record("p.ckpt", b"\x80\x04N.")
    assert inputs.unloadable_problem(pickle_file) is None, "ComfyUI loads pickles itself (weights only)"


def test_a_finished_download_is_not_refused_on_a_stale_record(tmp_path):
    from intelligent_pipeline.metadata.reader import ModelFile, build_record

    path = tmp_path / "half.safetensors"
    path.write_bytes((10_000).to_bytes(8, "little") + b'{"a": {"dtype": "F16", "sha')
    st_ = path.stat()
    stale = build_record(ModelFile("checkpoint", path.name, str(tmp_path), str(path), st_.st_size, st_.st_mtime_ns))
    assert inputs.unloadable_problem(stale)
    with open(path, "ab") as f:  # the rest of the download arrives before the index re-reads it
        f.write(b"\0" * 10_000)
    assert inputs.unloadable_problem(stale) is None


@pytest.mark.parametrize("text,field_ok", [
    ("", True), ("a.safetensors, b:0.7", True), ("x:-10", True), ("x:10.0", True), ("x:99999", False),
    ("x:-10.5", False), ("../../etc/passwd:0.5", False), ("C:\\x.safetensors", False), ("name:with:colons", True),
])
def test_pinned_lora_text_is_checked_like_the_plan_route(text, field_ok):
    """A pinned strength has the plan route's range (-10..10), and a pinned name is a name."""
    problem = inputs.pinned_loras_problem("pinned_loras", text)
    assert (problem is None) == field_ok, problem
    if problem:
        assert problem.startswith("pinned_loras")
