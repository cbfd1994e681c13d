"""The real-world conformance corpus (tests/conformance/) is well-formed, and its runner runs over it.

Accuracy is not asserted here: the corpus was written before the detector changes, and the runner's
figures (`.venv/bin/python tests/conformance/run.py --all`) are the measure. What is asserted: every
case names a family from CivitAI's groups (or one of ours) with the architecture the contract gives
that family, cites a repository, a commit and a path, and describes a header the safetensors writer
can build; and the runner returns one result per case, from the index, for both sets.
"""
from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from intelligent_pipeline.metadata.records import ARCHITECTURES, FOLDER_KINDS

CONFORMANCE = Path(__file__).resolve().parents[2] / "conformance"
CASE_DIRS = (CONFORMANCE / "cases", CONFORMANCE / "heldout")
WRITER = Path(__file__).resolve().parents[2] / "fixtures" / "safetensors_files.py"
HEX40 = re.compile(r"[0-9a-f]{40}")
REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runner() -> ModuleType:
    return _load("_ip_conformance_run", CONFORMANCE / "run.py")


@pytest.fixture(scope="module")
def families() -> dict[str, dict[str, Any]]:
    with open(CONFORMANCE / "families.json", encoding="utf-8") as f:
        return dict(json.load(f)["families"])


def _raw_cases() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for folder in CASE_DIRS:
        for path in sorted(folder.glob("*.json")):
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            assert isinstance(doc.get("source_note"), str) and doc["source_note"], path.name
            assert isinstance(doc.get("cases"), list) and doc["cases"], path.name
            out.extend((f"{folder.name}/{path.name}", case) for case in doc["cases"])
    return out


RAW = _raw_cases()
# Header cases: those whose truth rests on the file itself, not on a sidecar next to it.
HEADER_CASES = [c for _, c in RAW if not c.get("sidecars")]


def test_family_table_follows_the_contract(families: dict[str, dict[str, Any]]) -> None:
    for fid, info in families.items():
        assert info["architecture"] in ARCHITECTURES, fid
        assert info["names"] and all(isinstance(n, str) and n for n in info["names"]), fid
    # The groups the planner builds graphs for keep their architecture; the rest are unknown.
    assert families["SD1"]["architecture"] == "sd1"
    assert families["Pony"]["architecture"] == "sdxl"
    assert families["SD3_5M"]["architecture"] == "sd3"
    assert families["Flux1"]["architecture"] == "flux"
    assert families["PonyV7"]["architecture"] == "auraflow"
    assert families["WanVideo-22-TI2V-5B"]["architecture"] == "video"
    for fid in ("Flux2", "Flux2Klein_4B", "Chroma", "Qwen", "Kolors", "SDXLRefiner", "Hunyuan3D", "unknown"):
        assert families[fid]["architecture"] == "unknown", fid


def test_case_ids_are_unique() -> None:
    ids = [case["id"] for _, case in RAW]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    assert not dupes, dupes


def test_at_least_150_header_cases_across_many_families() -> None:
    assert len(HEADER_CASES) >= 150
    fams = {c["truth"]["family"] for c in HEADER_CASES}
    assert len(fams) >= 25, sorted(fams)


def test_a_quarter_is_held_out() -> None:
    held = [c for where, c in RAW if where.startswith("heldout/")]
    assert 0.2 <= len(held) / len(RAW) <= 0.35
    assert len({c["truth"]["family"] for c in held}) >= 10


@pytest.mark.parametrize(("where", "case"), RAW, ids=[c["id"] for _, c in RAW])
def test_case_is_well_formed(where: str, case: dict[str, Any], families: dict[str, dict[str, Any]]) -> None:
    dtypes = _load("_ip_conformance_writer", WRITER).DTYPE_SIZES
    assert isinstance(case["id"], str) and case["id"].strip()
    assert case["kind"] in FOLDER_KINDS
    assert isinstance(case["file"], str) and "." in case["file"]
    assert "/" not in case["file"] and "\\" not in case["file"]
    if case.get("tensors"):
        assert case["file"].endswith((".safetensors", ".sft")), "a header is written as a safetensors file"

    truth = case["truth"]
    assert truth["family"] in families, truth["family"]
    assert truth["architecture"] == families[truth["family"]]["architecture"]
    if "base_model" in truth:
        assert isinstance(truth["base_model"], str) and truth["base_model"]
    source = case["source"]
    assert REPO.fullmatch(source["repo"]), source
    assert HEX40.fullmatch(source["commit"]), source
    assert isinstance(source["path"], str) and source["path"]
    assert isinstance(source.get("note"), str) and source["note"]
    tensors = case.get("tensors") or {}
    if not case.get("sidecars"):
        assert tensors, "a header case needs tensors"
    for key, spec in tensors.items():
        assert isinstance(key, str) and key
        assert isinstance(spec, list) and len(spec) == 2, key
        dtype, shape = spec
        assert dtype in dtypes, (key, dtype)
        assert isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape), (key, shape)
    for k, v in (case.get("metadata") or {}).items():
        assert isinstance(k, str) and isinstance(v, str), k
    for name, content in (case.get("sidecars") or {}).items():
        assert isinstance(name, str) and name and "/" not in name and "\\" not in name, name
        assert isinstance(content, (str, dict, list)), name


def test_runner_reports_one_result_per_case(runner: ModuleType, tmp_path: Path) -> None:
    report = runner.evaluate(CASE_DIRS, workdir=tmp_path)
    assert len(report.results) == len(RAW)
    assert sorted(r.case.id for r in report.results) == sorted(c["id"] for _, c in RAW)
    assert all(r.error is None for r in report.results), [r.case.id for r in report.results if r.error]
    assert set(report.by_set()) == {"cases", "heldout"}
    assert sum(t.total for t in report.by_family().values()) == len(RAW)
    assert sum(t.total for t in report.by_format().values()) == len(RAW)
    text = report.text(failures=True)
    assert f"{len(RAW)} cases" in text
    # The temporary models tree is gone once the run is over.
    assert list(tmp_path.iterdir()) == []


def test_runner_judges_what_the_index_says(runner: ModuleType, tmp_path: Path) -> None:
    """The comparison itself: a record whose architecture matches scores, one that does not fails,
    and a family is matched by id, CivitAI group name or listed spelling, never by absence."""
    resolve = runner.family_resolver(runner.load_families())
    assert resolve("SD1") == {"SD1"}
    assert resolve("Stable Diffusion 1.x") == {"SD1"}
    assert resolve("sd 1.x") == {"SD1"}
    assert resolve("Flux.2 Klein 4B") == {"Flux2Klein_4B"}
    assert resolve(None) == set() and resolve("") == set()
    cases = [c for c in runner.load_cases([CONFORMANCE / "cases"]) if c.id == "comfy-sd15-checkpoint"]
    assert len(cases) == 1
    sd1 = cases[0]
    wrong = runner.Case(**{**sd1.__dict__, "id": "sd15-claimed-sdxl", "family": "SDXL", "architecture": "sdxl"})
    report = runner.evaluate_cases([sd1, wrong], workdir=tmp_path)
    by_id = {r.case.id: r for r in report.results}
    assert by_id["comfy-sd15-checkpoint"].architecture == "sd1"
    assert by_id["comfy-sd15-checkpoint"].architecture_ok
    assert not by_id["sd15-claimed-sdxl"].architecture_ok
    assert not by_id["sd15-claimed-sdxl"].ok


def test_runner_writes_sidecars_next_to_the_model(runner: ModuleType, tmp_path: Path) -> None:
    base = runner.load_cases([CONFORMANCE / "cases"])[0]
    case = runner.Case(**{**base.__dict__, "id": "with-sidecars", "sidecars": {
        "x.metadata.json": {"base_model": "SD 1.5"}, "x.civitai.info": "{\"baseModel\": \"SD 1.5\"}"}})
    name = runner.write_case(tmp_path, case)
    folder = tmp_path / FOLDER_KINDS[case.kind] / name.rsplit("/", 1)[0]
    assert (folder / case.file).stat().st_size > 8
    assert json.loads((folder / "x.metadata.json").read_text(encoding="utf-8")) == {"base_model": "SD 1.5"}
    assert (folder / "x.civitai.info").read_text(encoding="utf-8") == "{\"baseModel\": \"SD 1.5\"}"
    bad = runner.Case(**{**base.__dict__, "id": "escape", "sidecars": {"../outside.json": {}}})
    with pytest.raises(ValueError):
        runner.write_case(tmp_path, bad)
