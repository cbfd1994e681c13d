"""A small CivitAI-like library, built from the kind of metadata real libraries carry.

Names are deliberately uninformative in places (and the renaming test scrambles all of them):
the selector must choose from tags, titles, trigger words, descriptions and base models.
"""
from __future__ import annotations

from typing import Iterable

import pytest

from intelligent_pipeline.metadata.reader import signature
from intelligent_pipeline.metadata.records import ExampleParams, ModelRecord
from intelligent_pipeline.metadata.store import IndexStore

GB = 1_000_000_000


def rec(name: str, kind: str, **kw) -> ModelRecord:
    folder = {"checkpoint": "checkpoints", "lora": "loras", "vae": "vae", "diffusion_model": "diffusion_models",
              "text_encoder": "text_encoders"}[kind]
    kw.setdefault("title", name.rsplit("/", 1)[-1].rsplit(".", 1)[0])
    return ModelRecord(name=name, kind=kind, path=f"/models/{folder}/{name}", **kw)


def examples(n: int, **kw) -> tuple[ExampleParams, ...]:
    return tuple(ExampleParams(**kw) for _ in range(n))


def build_library() -> list[ModelRecord]:
    return [
        # --- checkpoints -----------------------------------------------------------------------
        rec("sd15/anythingV5_v5PrtRE.safetensors", "checkpoint", architecture="sd1", base_model="SD 1.5",
            title="Anything V5", size=int(2.1 * GB), has_vae=True,
            tags=("anime", "base model", "girl", "illustration", "manga", "character"),
            description="An anime model: bright anime characters, manga line art and cel shading.",
            downloads=480_000, likes=21_000,
            examples=examples(4, steps=28, cfg=7.5, sampler="DPM++ 2M Karras", clip_skip=2)),
        rec("sd15/rv60.safetensors", "checkpoint", architecture="sd1", base_model="SD 1.5",
            title="Realistic Vision V6.0 B1", size=int(2.1 * GB), has_vae=True,
            tags=("photorealistic", "realistic", "photography", "portraits", "base model", "people"),
            description="Photorealistic portraits and everyday scenes, like a RAW photo from a DSLR. "
                        "Recommended VAE: vae-ft-mse-840000-ema-pruned for best colors.",
            downloads=900_000, likes=40_000,
            examples=examples(5, steps=30, cfg=5.0, sampler="DPM++ SDE Karras")),
        rec("sd15/dp_oil.safetensors", "checkpoint", architecture="sd1", base_model="SD 1.5",
            title="DreamPainter", size=int(2.1 * GB), has_vae=True,
            tags=("painting", "oil painting", "artistic", "art", "impressionism", "landscapes"),
            description="A painterly model with visible brush strokes, canvas texture and rich oil colours.",
            downloads=45_000, likes=2_500),
        rec("xl/ponyDiffusionV6XL.safetensors", "checkpoint", architecture="sdxl", base_model="Pony",
            title="Pony Diffusion V6 XL", size=int(6.9 * GB), has_vae=True,
            tags=("base model", "pony", "furry", "cartoon"),
            description="A versatile SDXL finetune. Use score_9, score_8_up tags.",
            downloads=700_000, likes=30_000, nsfw_level=2),
        rec("xl/sd_xl_base_1.0.safetensors", "checkpoint", architecture="sdxl", base_model="SDXL 1.0",
            title="SDXL", size=int(6.9 * GB), has_vae=True, tags=("base model",),
            description="The SDXL base model.", downloads=300_000, likes=9_000),
        rec("flux1-dev.safetensors", "diffusion_model", architecture="flux", base_model="Flux.1 D",
            title="FLUX.1 [dev]", size=int(23.8 * GB), tags=("base model", "text to image"),
            description="A 12B rectified flow transformer.", downloads=800_000, likes=35_000),
        rec("sd15/spicy_mix.safetensors", "checkpoint", architecture="sd1", base_model="SD 1.5",
            title="Spicy Realism Mix", size=int(2.1 * GB), has_vae=True,
            tags=("photorealistic", "realistic", "nsfw", "woman"), nsfw=True, nsfw_level=16,
            description="Photorealistic women.", downloads=950_000, likes=45_000),
        rec("sd15/excluded_real.safetensors", "checkpoint", architecture="sd1", base_model="SD 1.5",
            title="Hyper Real Photo Master", size=int(2.1 * GB), has_vae=True, excluded=True,
            tags=("photorealistic", "realistic", "photography", "portraits", "old man"),
            description="Photorealistic photography of old men and fishermen.", downloads=2_000_000, likes=90_000),
        # --- VAEs and text encoders ------------------------------------------------------------
        rec("vae-ft-mse-840000-ema-pruned.safetensors", "vae", architecture="unknown", base_model="SD 1.5",
            title="vae-ft-mse-840000-ema-pruned", size=int(0.33 * GB), downloads=100_000),
        rec("sdxl_vae.safetensors", "vae", title="sdxl_vae", size=int(0.33 * GB)),
        rec("ae.safetensors", "vae", title="ae", size=int(0.33 * GB), extra={"latent_channels": 16}),
        rec("clip_l.safetensors", "text_encoder", title="clip_l", size=int(0.25 * GB)),
        rec("t5xxl_fp8_e4m3fn.safetensors", "text_encoder", title="t5xxl_fp8_e4m3fn", size=int(4.9 * GB)),
        rec("t5xxl_fp16.safetensors", "text_encoder", title="t5xxl_fp16", size=int(9.8 * GB)),
        # --- LoRAs -----------------------------------------------------------------------------
        rec("style/pnkhr_v2.safetensors", "lora", architecture="sd1", base_model="SD 1.5", title="Pink Hair",
            tags=("pink hair", "hair color", "anime", "character"), trigger_words=("pink hair", "pnkhr"),
            preferred_weight=0.7, description="Gives characters soft pink hair.", downloads=20_000, likes=1_200),
        rec("tools/add_detail.safetensors", "lora", architecture="sd1", base_model="SD 1.5", title="Detail Tweaker",
            tags=("detail", "tool", "enhancer", "concept"), strength_range=(0.5, 1.0),
            description="Adds or removes detail.", downloads=300_000, likes=15_000),
        rec("style/wc_v1.safetensors", "lora", architecture="sd1", base_model="SD 1.5", title="Watercolor Style",
            tags=("watercolor", "style", "painting", "art style", "traditional media"), trigger_words=("wtrcolor",),
            description="Soft watercolor paintings with paper texture.", downloads=60_000, likes=4_000),
        rec("xl/pinkhair_xl.safetensors", "lora", architecture="sdxl", base_model="SDXL 1.0", title="Pink Hair XL",
            tags=("pink hair", "anime", "girl", "hair color"), trigger_words=("pink hair",),
            description="Pink hair for SDXL anime girls.", downloads=150_000, likes=9_000),
        rec("flux/animegirl_pink.safetensors", "lora", architecture="flux", base_model="Flux.1 D",
            title="Anime Girl with Pink Hair (FLUX)", tags=("anime", "girl", "pink hair", "anime girl"),
            trigger_words=("anime girl with pink hair",), downloads=250_000, likes=12_000),
        rec("misc/x8f2.safetensors", "lora", architecture="sd1", base_model="SD 1.5", title="x8f2",
            tags=("1girl", "freckles", "silver hair", "solo", "smile"), sources=("header",)),
        rec("xl/chibi_pony.safetensors", "lora", architecture="sdxl", base_model="Pony", title="Chibi Style Pony",
            tags=("chibi", "cute", "style"), trigger_words=("chibi",), downloads=30_000, likes=2_000),
        rec("chars/miku.safetensors", "lora", architecture="sd1", base_model="SD 1.5", title="Hatsune Miku",
            tags=("anime", "girl", "character", "twintails", "aqua hair", "vocaloid"),
            trigger_words=("hatsune miku", "twintails", "aqua hair", "necktie", "detached sleeves"),
            downloads=90_000, likes=5_000),
        rec("style/cyberpunk.safetensors", "lora", architecture="sd1", base_model="SD 1.5",
            title="Cyberpunk Neon City", tags=("cyberpunk", "neon", "city", "sci-fi"), trigger_words=("cyberpunk",),
            downloads=70_000, likes=3_000),
    ]


@pytest.fixture
def library() -> list[ModelRecord]:
    return build_library()


@pytest.fixture
def make_library():
    return build_library


@pytest.fixture
def make_record():
    return rec


class StoreLibrary:
    """Records held in a real index store (in memory, its full-text search and postings as the
    index has them): what metadata.ModelIndex hands the planner, without walking a folder. Counts
    its searches and its reads of every record, so tests can tell what a plan looked at."""

    def __init__(self, records: Iterable[ModelRecord] = ()) -> None:
        self._store = IndexStore(":memory:")
        self._store.open()
        self._records: dict[tuple[str, str], ModelRecord] = {}
        self.generation = 0
        self.search_generation: int | None = None
        self.searches = 0
        self.full_reads: list[str | None] = []  # kinds of every records() call
        self.add(records)

    def add(self, records: Iterable[ModelRecord]) -> None:
        """What a scan that finds these records does: write them, then bump the generation."""
        rows = list(records)
        for r in rows:
            self._records[(r.kind, r.name)] = r
        fp = lambda r: (r.path, 100, 1, signature((("lora-manager", r.name + ".metadata.json", 5),), None))  # noqa: E731
        self._store.apply([(fp(r), r) for r in rows], [])
        self.generation += 1
        self.search_generation = self.generation

    def records(self, kind: str | None = None) -> list[ModelRecord]:
        self.full_reads.append(kind)
        return sorted((r for r in self._records.values() if kind is None or r.kind == kind),
                      key=lambda r: (r.kind, r.name))

    def get(self, kind: str, name: str) -> ModelRecord | None:
        return self._records.get((kind, name))

    def search(self, text: str, kind: str | None = None, architecture: str | None = None,
               family: str | None = None, limit: int = 50, each: int = 0) -> list[tuple[str, str, float]]:
        self.searches += 1
        return self._store.search(text, kind=kind, architecture=architecture, family=family, limit=limit, each=each)
