"""merge.py precedence: user-edited values win, richer is never replaced by poorer, and the tensors
overrule a sidecar only with decisive evidence (issue 6)."""
from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from intelligent_pipeline.metadata import base_models as B
from intelligent_pipeline.metadata import families as F
from intelligent_pipeline.metadata.detection import Detection, found
from intelligent_pipeline.metadata.merge import RICHER_BASE_MODEL_EXTRA, merge
from intelligent_pipeline.metadata.sidecars import HEADER_SOURCE, Facts
from intelligent_pipeline.selector.architectures import spec_for

PROPERTY = settings(derandomize=True, max_examples=400, deadline=None, database=None)
SDXL_UNET = found("SDXL 1.0", "UNet context 2048, adm 2816", decisive=True, candidates=tuple(F.SDXL_ECOSYSTEM),
                  confidence=0.5)


def _merge(*facts: Facts, detection: Detection | None = None, kind: str = "lora") -> dict[str, Any]:
    return merge(list(facts), detection, kind=kind, title="stem")


def test_lora_manager_shortened_base_model_gives_way_to_its_civitai_base_model() -> None:
    # Lora-Manager writes "Pony" for a Pony V7 (AuraFlow) model; its civitai payload says "Pony V7".
    out = _merge(Facts("lora-manager", {"base_model": "Pony"}, {RICHER_BASE_MODEL_EXTRA: "Pony V7"}))
    assert (out["base_model"], out["family"], out["architecture"]) == ("Pony V7", "PonyV7", "auraflow")
    # "SDXL 1.0" for an SDXL Lightning checkpoint: the fast settings must follow the richer string.
    out = _merge(Facts("lora-manager", {"base_model": "SDXL 1.0"}, {RICHER_BASE_MODEL_EXTRA: "SDXL Lightning"}),
                 kind="checkpoint")
    assert (out["base_model"], out["family"]) == ("SDXL Lightning", "SDXL")
    assert spec_for(out["architecture"], out["base_model"]).tunable is False
    assert spec_for(out["architecture"], out["base_model"]).steps < 10


def test_a_shortened_base_model_is_completed_from_decisive_tensors() -> None:
    # No civitai payload to say so, but the tensors are an AuraFlow network: "Pony" is Pony V7.
    auraflow = found("AuraFlow", "double_layers of width 3072", decisive=True, candidates=("AuraFlow", "PonyV7"))
    out = _merge(Facts("lora-manager", {"base_model": "Pony"}), detection=auraflow)
    assert (out["base_model"], out["family"], out["architecture"]) == ("Pony V7", "PonyV7", "auraflow")
    assert len(out["problems"]) == 1 and "Pony V7" in out["problems"][0]


def test_a_richer_base_model_from_a_lower_source_is_kept() -> None:
    out = _merge(Facts("lora-manager", {"base_model": "SDXL 1.0"}), Facts("civitai-info", {"base_model": "SDXL Hyper"}))
    assert out["base_model"] == "SDXL Hyper"
    out = _merge(Facts("lora-manager", {"base_model": "SDXL Hyper"}), Facts("civitai-info", {"base_model": "SDXL 1.0"}))
    assert out["base_model"] == "SDXL Hyper"  # poorer never replaces richer


def test_a_user_edit_to_another_family_wins() -> None:
    out = _merge(Facts("lora-manager", {"base_model": "Illustrious"}, {RICHER_BASE_MODEL_EXTRA: "Pony"}),
                 Facts("civitai-info", {"base_model": "Pony"}))
    assert (out["base_model"], out["family"]) == ("Illustrious", "Illustrious")
    out = _merge(Facts("lora-manager", {"base_model": "Pony"}), Facts(HEADER_SOURCE, {"base_model": "SDXL 1.0"}))
    assert out["base_model"] == "Pony"


def test_decisive_tensors_overrule_a_sidecar_of_another_family() -> None:
    out = _merge(Facts("lora-manager", {"base_model": "SD 1.5", "title": "M"}), detection=SDXL_UNET)
    assert (out["base_model"], out["family"], out["architecture"]) == ("SDXL 1.0", "SDXL", "sdxl")
    assert out["extra"]["base_model_source"] == "header"
    assert len(out["problems"]) == 1 and "SD 1.5" in out["problems"][0] and "sdxl" in out["problems"][0]
    assert out["title"] == "M" and out["confidence"] == SDXL_UNET.confidence


def test_a_guess_never_replaces_a_sidecar_and_the_disagreement_is_recorded() -> None:
    guess = found("Flux.1 D", "double_blocks of width 3072", decisive=False, candidates=("Flux1",))
    out = _merge(Facts("lora-manager", {"base_model": "LTXV"}), detection=guess)
    assert (out["base_model"], out["family"], out["architecture"]) == ("LTXV", "LTXV", "video")
    assert len(out["problems"]) == 1 and "LTXV" in out["problems"][0] and "Flux1" in out["problems"][0]
    assert "\n" not in out["problems"][0]
    assert out["confidence"] <= 0.6


def test_consistent_tensors_raise_the_confidence_of_a_sidecar() -> None:
    alone = _merge(Facts("lora-manager", {"base_model": "Pony"}))
    agreed = _merge(Facts("lora-manager", {"base_model": "Pony"}), detection=SDXL_UNET)
    assert (agreed["family"], agreed["problems"]) == ("Pony", ())
    assert agreed["confidence"] > alone["confidence"] > 0


def test_without_a_sidecar_the_detection_decides_and_nothing_is_unknown() -> None:
    det = found("Qwen", "txt_norm + img_mod", decisive=True)
    out = _merge(detection=det)
    assert (out["base_model"], out["family"], out["architecture"], out["confidence"]) == ("Qwen", "Qwen", "unknown", 0.95)
    assert out["extra"]["base_model_source"] == "header-guess"
    out = _merge(Facts("rgthree", {"title": "x"}), detection=Detection(evidence="no known keys"))
    assert (out["base_model"], out["family"], out["confidence"]) == ("Unknown", "unknown", 0.0)


_RIGHT = sorted(n for n, g in F.BASE_MODELS.items() if g != "Other")
_GROUPS = sorted(g for g in F.GROUPS if g not in ("unknown",))


@PROPERTY
@given(st.sampled_from(_RIGHT), st.sampled_from(_GROUPS), st.floats(0.0, 1.0),
       st.sampled_from(["lora-manager", "civitai-info", "rgthree", "cm-info", "a1111"]))
def test_a_header_guess_never_replaces_a_right_sidecar(base: str, guessed: str, conf: float, source: str) -> None:
    """Over all families: whatever a non-decisive detection guesses, and whatever a decisive one
    proves that still allows the sidecar's family, the sidecar's base model and family stand."""
    guess_base = next(n for n, g in F.BASE_MODELS.items() if g == guessed)
    guess = found(guess_base, "a guess", decisive=False, confidence=conf)
    out = _merge(Facts(source, {"base_model": base}), detection=guess)
    assert (out["base_model"], out["family"]) == (base, B.family(base))
    allowing = found(guess_base, "proof", decisive=True, candidates=(guessed, B.family(base)))
    out = _merge(Facts(source, {"base_model": base}), detection=allowing)
    assert (out["base_model"], out["family"], out["problems"]) == (base, B.family(base), ())
    assert 0.0 <= out["confidence"] <= 1.0


def test_every_record_carries_family_and_confidence(lib, kit) -> None:
    path = lib.model("loras", "a.safetensors", kit.SDXL_LORA_KOHYA)
    kit.write_json(path.parent / "a.metadata.json", {"model_name": "A", "base_model": "Illustrious"})
    lib.model("loras", "b.safetensors", {"lora_unet_x_y.lora_down.weight": ("F16", (4, 77))})
    index = lib.index()
    index.scan()
    a, b = index.get("lora", "a.safetensors"), index.get("lora", "b.safetensors")
    assert (a.family, a.architecture, a.problems) == ("Illustrious", "sdxl", ())
    assert a.confidence >= 0.9  # the sidecar, and the tensors agree it is an SDXL-UNet family
    assert (b.family, b.architecture, b.confidence) == ("unknown", "unknown", 0.0)
    assert a.to_dict()["family"] == "Illustrious" and "confidence" in a.to_dict()
