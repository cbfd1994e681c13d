"""CivitAI's base-model groups and support tables (civitai/civitai 02282ba458e6e100577848511e58885be49584e4,
src/shared/constants/base-model.constants.ts), as metadata/families.py encodes them and
metadata/base_models.py applies them."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intelligent_pipeline.metadata import base_models as B
from intelligent_pipeline.metadata import families as F

PROPERTY = settings(derandomize=True, max_examples=300, deadline=None, database=None)
ARCHITECTURES = ("sd1", "sd2", "sdxl", "sd3", "flux", "auraflow", "video", "unknown")


def test_every_civitai_string_has_a_group_and_the_tables_name_only_known_strings() -> None:
    for name, group in F.BASE_MODELS.items():
        assert group in F.GROUPS, name
        assert B.family(name) == group and B.canonical(name) == name
        assert B.family(name.upper()) == group and B.family(f"  {name.lower()} ") == group
    for group, (full, partial) in F.LORA_SUPPORT.items():
        assert group in F.GROUPS
        assert set(full) | set(partial) <= set(F.BASE_MODELS), group
    assert F.GROUPS["unknown"].architecture == "unknown"


@pytest.mark.parametrize(("base", "family", "arch"), [
    ("SD 1.5", "SD1", "sd1"), ("SD 2.1 768", "SD2", "sd2"), ("SDXL Lightning", "SDXL", "sdxl"),
    ("Pony", "Pony", "sdxl"), ("Illustrious", "Illustrious", "sdxl"), ("NoobAI", "NoobAI", "sdxl"),
    ("Pony V7", "PonyV7", "auraflow"), ("SD 3.5 Medium", "SD3_5M", "sd3"), ("SD 3.5 Large", "SD3", "sd3"),
    ("Flux.1 S", "Flux1", "flux"), ("Flux.1 Krea", "FluxKrea", "flux"), ("Flux.2 D", "Flux2", "unknown"),
    ("Flux.2 Klein 4B", "Flux2Klein_4B", "unknown"), ("Flux.2 Klein 9B-base", "Flux2Klein_9B_base", "unknown"),
    ("Chroma", "Chroma", "unknown"), ("Kolors", "Kolors", "unknown"), ("Qwen", "Qwen", "unknown"),
    ("Hunyuan 1", "HyDit1", "unknown"), ("HiDream", "HiDream", "unknown"), ("Lumina", "Lumina", "unknown"),
    ("PixArt E", "PixArtE", "unknown"), ("Hunyuan Video", "HyV1", "video"), ("LTXV2", "LTXV2", "video"),
    ("Wan Video 2.2 I2V-A14B", "WanVideo-22-I2V-A14B", "video"), ("ZImageTurbo", "ZImageTurbo", "unknown"),
    ("SDXL Refiner", "SDXLRefiner", "unknown"), ("Hunyuan 3D", "Hunyuan3D", "unknown"),
    ("Other", "Other", "unknown"), ("Unknown", "unknown", "unknown"), ("", "unknown", "unknown"),
    ("Pony XL v6 (fp16)", "Pony", "sdxl"), ("sdxl 1.0 (base)", "SDXL", "sdxl"), ("Mystery 9000", "unknown", "unknown"),
])
def test_groups_and_architectures(base: str, family: str, arch: str) -> None:
    assert (B.family(base), B.architecture(base)) == (family, arch)


def test_fast_variants_from_the_string() -> None:
    assert [B.speed(b) for b in ("SDXL Lightning", "SDXL Hyper", "SDXL Turbo", "SDXL 1.0 LCM", "SD 1.5 LCM",
                                  "Flux.1 S", "SD 3.5 Large Turbo", "SDXL 1.0", "Flux.1 D", "Pony")] == \
        ["lightning", "hyper", "turbo", "lcm", "lcm", "schnell", "turbo", None, None, None]


@pytest.mark.parametrize(("lora", "ckpt", "expected"), [
    ("SDXL 1.0", "SDXL Lightning", "full"),  # one group
    ("Pony", "SDXL 1.0", "partial"), ("SDXL 1.0", "Pony", "partial"),  # CivitAI's partialSupport
    ("Illustrious", "NoobAI", "partial"), ("NoobAI", "Pony", "partial"), ("SDXL Hyper", "Illustrious", "partial"),
    ("Kolors", "SDXL 1.0", None), ("SDXL 1.0", "Kolors", None),  # another group on an SDXL-like UNet
    ("Chroma", "Flux.1 D", None), ("Flux.1 D", "Chroma", None),
    ("SD 3.5 Medium", "SD 3.5 Large", None), ("SD 3", "SD 3.5 Large", None),  # widths differ
    ("SD 3.5 Large", "SD 3.5 Large Turbo", "full"), ("SD 3.5", "SD 3.5 Large", "full"),
    ("Flux.1 Krea", "Flux.1 D", "full"), ("Flux.1 D", "Flux.1 Krea", "full"),  # Flux1/FluxKrea tables
    ("Flux.1 S", "Flux.1 D", "full"), ("Flux.1 D", "Flux.2 D", None), ("Flux.2 Klein 4B", "Flux.2 Klein 9B", None),
    ("Flux.2 Klein 4B-base", "Flux.2 Klein 4B", None),
    ("Pony", "Pony V7", None), ("AuraFlow", "Pony V7", None),
    ("Wan Video 2.2 T2V-A14B", "Wan Video 14B t2v", "partial"), ("Wan Video 14B i2v 720p", "Wan Video 14B i2v 480p", "full"),
    ("ZImageBase", "ZImageTurbo", "partial"), ("ZImageTurbo", "ZImageBase", None),
    ("SD 1.5", "SDXL 1.0", None), ("Hunyuan Video", "Flux.1 D", None),
])
def test_compatibility_follows_civitai(lora: str, ckpt: str, expected: str | None) -> None:
    assert B.compatibility(lora, B.architecture(lora), ckpt, B.architecture(ckpt)) == expected


def test_a_family_from_the_index_is_finer_than_the_base_model() -> None:
    # A LoRA whose base model says only "SDXL 1.0" but that the index knows is Kolors: never on SDXL.
    assert B.compatibility("SDXL 1.0", "sdxl", "SDXL 1.0", "sdxl", lora_family="Kolors") is None
    assert B.compatibility("Unknown", "sdxl", "Pony", "sdxl", lora_family="Illustrious") == "partial"


@PROPERTY
@given(st.sampled_from(sorted(F.GROUPS)), st.sampled_from(ARCHITECTURES), st.sampled_from(ARCHITECTURES),
       st.sampled_from(["Unknown", "Other", "", "Mystery 9000"]))
def test_an_unknown_family_is_never_full(known: str, la: str, ca: str, unknown_base: str) -> None:
    known_base = next((n for n, g in F.BASE_MODELS.items() if g == known), "Unknown")
    assert B.compatibility(unknown_base, la, known_base, ca) != "full"
    assert B.compatibility(known_base, la, unknown_base, ca) != "full"
    assert B.compatibility(unknown_base, la, unknown_base, ca) != "full"


@PROPERTY
@given(st.sampled_from(sorted(F.BASE_MODELS)), st.sampled_from(sorted(F.BASE_MODELS)))
def test_full_needs_one_group_or_a_civitai_table(lora: str, ckpt: str) -> None:
    result = B.compatibility(lora, B.architecture(lora), ckpt, B.architecture(ckpt))
    lg, cg = F.BASE_MODELS[lora], F.BASE_MODELS[ckpt]
    if result == "full":
        assert lg == cg and lg not in ("Other",) or lora in F.LORA_SUPPORT.get(cg, ((), ()))[0]
    if lg != cg and result is not None:
        table = F.LORA_SUPPORT.get(cg, ((), ()))
        assert lora in table[0] + table[1] or (lg in F.SDXL_ECOSYSTEM and cg in F.SDXL_ECOSYSTEM)


def test_richer_base_models() -> None:
    assert B.richer("Pony V7", "Pony")  # Lora-Manager's shortening
    assert B.richer("SDXL Lightning", "SDXL 1.0") and B.richer("SDXL 1.0 LCM", "SDXL 1.0")
    assert B.richer("Flux.1 Krea", "Flux.1") and B.richer("SD 3.5 Large", "SD 3.5")
    assert B.richer("Illustrious", "Unknown")
    assert not B.richer("SDXL 1.0", "SDXL Lightning")  # poorer never replaces richer
    assert not B.richer("SD 1.5", "SDXL 1.0") and not B.richer("Pony", "Illustrious")  # another model
    assert not B.richer("SD 3", "SD 3.5 Large") and not B.richer("Other", "SD 1.5")
    assert not B.richer("Pony", "Pony")
    # what Lora-Manager writes (its determine_base_model, @25e72b43 py/utils/model_utils.py) is poorer
    assert B.richer("SDXL Distilled", "SDXL 1.0") and B.richer("SDXL Turbo", "SDXL 1.0")
    assert B.lora_manager_shortening("Pony V7") == "Pony" and B.lora_manager_shortening("Qwen") == "Qwen"
    assert not B.richer("Qwen", "SDXL 1.0")


def test_group_labels_are_civitais() -> None:
    assert B.label("SD3_5M") == "Stable Diffusion 3.5 Medium" and B.label("HyDit1") == "Hunyuan DiT"


@pytest.mark.parametrize(("base", "key", "fast"), [
    ("SDXL Lightning", "sdxl_fast", True), ("SDXL Turbo", "sdxl_fast", True), ("SDXL 1.0 LCM", "sdxl_fast", True),
    ("SD 1.5 Hyper", "sd1_fast", True), ("Flux.1 S", "flux_schnell", True), ("SD 3.5 Large Turbo", "sd3_fast", True),
    ("SDXL 1.0", "sdxl", False), ("Pony", "pony", False), ("Flux.1 Krea", "flux", False), ("Flux.2 D", "flux2", False),
    ("Flux.2 Klein 4B", "unknown", False), ("Kolors", "unknown", False), ("Pony V7", "auraflow", False),
])
def test_the_planner_follows_the_family_and_its_fast_variant(base: str, key: str, fast: bool) -> None:
    from intelligent_pipeline.selector.architectures import spec_for

    spec = spec_for(B.architecture(base), base)
    assert spec.key == key
    assert (spec.tunable is False and spec.steps <= 8) == fast


def test_an_unsupported_family_is_not_size_guessed_into_sdxl() -> None:
    from intelligent_pipeline.metadata.records import ModelRecord
    from intelligent_pipeline.selector.compat import effective_architecture

    kolors = ModelRecord(name="k.safetensors", kind="checkpoint", path="/k", size=int(6.9e9), base_model="Kolors")
    assert (effective_architecture(kolors).architecture, effective_architecture(kolors).guessed) == ("unknown", False)
    anon = ModelRecord(name="a.safetensors", kind="checkpoint", path="/a", size=int(6.9e9))
    assert effective_architecture(anon).architecture == "sdxl" and effective_architecture(anon).guessed
    klein = ModelRecord(name="f.safetensors", kind="checkpoint", path="/f", size=int(6.9e9), family="Flux2Klein_4B")
    assert effective_architecture(klein).architecture == "unknown"
