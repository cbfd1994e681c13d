"""Architecture detection and cross-family planning on the header-only fixtures that `make setup` builds
(real SDXL, Pony, Flux tensor names and shapes with sparse data), together with the main library."""
from __future__ import annotations

import os

import pytest

from intelligent_pipeline.metadata import ModelIndex, StaticModelPaths
from intelligent_pipeline.selector import planner

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def detection_dir(library_dir) -> str:
    path = os.path.join(os.path.dirname(os.path.abspath(library_dir)), "detection_fixtures")
    assert os.path.isdir(path), f"no detection fixtures at {path}: run `make setup`"
    return path


@pytest.fixture(scope="module")
def records(detection_dir, library_dir, tmp_path_factory):
    roots: dict[str, list[str]] = {}
    for base in (library_dir, detection_dir):
        for kind, paths in StaticModelPaths.from_models_dir(base)._roots.items():
            roots.setdefault(kind, []).extend(paths)
    index = ModelIndex(StaticModelPaths(roots), cache_path=str(tmp_path_factory.mktemp("idx") / "cache.json"))
    index.scan()
    return {(r.kind, r.stem): r for r in index.records()}


def test_sdxl_pony_and_flux_are_detected(records):
    sdxl = [r for r in records.values() if r.kind == "checkpoint" and r.architecture == "sdxl"]
    assert len(sdxl) >= 2
    pony = [r for r in sdxl if r.base_model == "Pony"]
    assert len(pony) == 1, "the SDXL checkpoint whose sidecar says Pony keeps that base model"
    flux = [r for r in records.values() if r.kind == "diffusion_model" and r.architecture == "flux"]
    assert flux, [(r.name, r.architecture) for r in records.values() if r.kind == "diffusion_model"]
    encoders = {r.extra.get("text_encoder_type") for r in records.values() if r.kind == "text_encoder"}
    assert {"clip_l", "t5xxl"} <= encoders, encoders
    sd1 = [r for r in records.values() if r.kind == "checkpoint" and r.architecture == "sd1"]
    assert len(sd1) >= 3 and not any(r.problems for r in sd1)


def test_pony_prompt_picks_the_pony_checkpoint_and_sdxl_loras_only_partially(records):
    plan = planner.build_plan(planner.parse_request({"prompt": "score_9, score_8_up, anime girl with pink hair"}),
                              list(records.values()), max_loras=5)
    assert plan["checkpoint"]["base_model"] == "Pony" and plan["checkpoint"]["architecture"] == "sdxl"
    for lora in plan["loras"]:
        record = records[("lora", lora["name"].rsplit("/", 1)[-1].rsplit(".", 1)[0])]
        assert record.architecture == "sdxl", f"{lora['name']} ({record.architecture}) stacked on Pony"
        assert lora["compatibility"] == "partial"


def test_flux_prompt_gets_the_flux_model_with_its_text_encoders_and_vae(records):
    plan = planner.build_plan(planner.parse_request({"prompt": "flux, a photo of a lighthouse at dawn"}),
                              list(records.values()))
    assert plan["checkpoint"]["architecture"] == "flux" and plan["checkpoint"]["kind"] == "diffusion_model"
    roles = {te.get("role") for te in plan["text_encoders"]}
    assert {"clip_l", "t5xxl"} <= roles, plan["text_encoders"]
    assert plan["vae"]["name"], "a Flux diffusion model needs a separate VAE"
    assert plan["settings"]["cfg"] == 1.0 and plan["settings"]["guidance"]
    assert all(records[("lora", lora["name"].rsplit("/", 1)[-1].rsplit(".", 1)[0])].architecture == "flux"
               for lora in plan["loras"])
