"""Records that cross module lines: what the index knows about one model file.

Everything here is plain data (frozen dataclasses) so `selector/` can score models
without knowing where the facts came from (sidecar, safetensors header, CivitAI cache).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Folder kinds, in the user's words, mapped to ComfyUI's folder_paths names.
FOLDER_KINDS: dict[str, str] = {
    "checkpoint": "checkpoints",
    "lora": "loras",
    "vae": "vae",
    "diffusion_model": "diffusion_models",
    "text_encoder": "text_encoders",
    "embedding": "embeddings",
}

ARCHITECTURES = ("sd1", "sd2", "sdxl", "sd3", "flux", "auraflow", "video", "unknown")


@dataclass(frozen=True, slots=True)
class ExampleParams:
    """Generation parameters seen in a model's example images (CivitAI `images[].meta`)."""

    steps: int | None = None
    cfg: float | None = None
    sampler: str | None = None  # as written (A1111 name or ComfyUI name)
    clip_skip: int | None = None
    width: int | None = None
    height: int | None = None
    prompt: str | None = None
    negative_prompt: str | None = None


# Slots: a 50k-model index holds 50k records, and a per-instance __dict__ was a third of each.
@dataclass(frozen=True, slots=True, weakref_slot=True)
class ModelRecord:
    name: str  # the loader name: path relative to the folder root, "/" separators
    kind: str  # a key of FOLDER_KINDS
    path: str  # absolute path on disk
    size: int = 0
    mtime: float = 0.0
    architecture: str = "unknown"  # one of ARCHITECTURES
    family: str = "unknown"  # CivitAI base-model group id ("SD1", "Pony", "Flux2Klein_4B", ...; metadata/families.py)
    confidence: float = 0.0  # how sure `family` is, 0..1 (metadata/merge.py)
    base_model: str = "Unknown"  # CivitAI base-model string ("SD 1.5", "Pony", ...)
    title: str = ""  # display name (sidecar model_name, CivitAI model name, else the stem)
    description: str = ""  # plain text, HTML stripped
    tags: tuple[str, ...] = ()  # lower-case
    trigger_words: tuple[str, ...] = ()
    preferred_weight: float | None = None  # LoRA strength the author recommends
    strength_range: tuple[float, float] | None = None  # (min, max) from usage tips
    clip_skip: int | None = None
    downloads: int = 0
    likes: int = 0
    nsfw: bool = False
    nsfw_level: int = 0  # CivitAI bitmask level (1 PG, 2 PG13, 4 R, 8 X, 16 XXX)
    examples: tuple[ExampleParams, ...] = ()
    sha256: str | None = None  # lower-case hex, when known without hashing
    excluded: bool = False  # the user marked it "exclude" in a sidecar
    has_vae: bool | None = None  # checkpoints: the file carries VAE weights (header keys)
    sources: tuple[str, ...] = ()  # where facts came from: "lora-manager", "civitai-info", "a1111", "rgthree", "cm-info", "header", "civitai-cache"
    problems: tuple[str, ...] = ()  # human-readable issues found while indexing
    preview: str | None = None  # path of a preview image, relative to the folder root
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def stem(self) -> str:
        base = self.name.rsplit("/", 1)[-1]
        return base.rsplit(".", 1)[0] if "." in base else base

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tags"] = list(self.tags)
        d["trigger_words"] = list(self.trigger_words)
        d["examples"] = [asdict(e) for e in self.examples]
        d["sources"] = list(self.sources)
        d["problems"] = list(self.problems)
        return d
