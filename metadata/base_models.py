"""CivitAI base-model strings: what architecture each is, and what loads on what.

One table serves the index (sidecar `base_model` -> architecture) and the selector
(LoRA compatibility). Facts from ../shared/reference/formats.md section 3.
"""
from __future__ import annotations

# Families group base models whose resources interoperate fully.
# (family, architecture, [CivitAI strings, lower-cased])
_TABLE: list[tuple[str, str, tuple[str, ...]]] = [
    ("sd1", "sd1", ("sd 1.4", "sd 1.5", "sd 1.5 lcm", "sd 1.5 hyper", "sd1", "sd 1")),
    ("sd2", "sd2", ("sd 2.0", "sd 2.0 768", "sd 2.1", "sd 2.1 768", "sd 2.1 unclip", "sd2")),
    ("sdxl", "sdxl", ("sdxl 0.9", "sdxl 1.0", "sdxl 1.0 lcm", "sdxl lightning", "sdxl hyper", "sdxl turbo",
                       "sdxl distilled", "sdxl", "playground v2")),
    ("pony", "sdxl", ("pony",)),
    ("illustrious", "sdxl", ("illustrious",)),
    ("noobai", "sdxl", ("noobai",)),
    ("sd3", "sd3", ("sd 3", "sd 3.5", "sd 3.5 medium", "sd 3.5 large", "sd 3.5 large turbo", "sd3")),
    ("flux1", "flux", ("flux.1 d", "flux.1 s", "flux.1 krea", "flux.1 kontext", "flux.1", "flux")),
    ("flux2", "flux", ("flux.2 d", "flux.2")),
    ("auraflow", "auraflow", ("pony v7", "auraflow")),
    ("video", "video", ("svd", "svd xt", "hunyuan video", "ltxv", "cogvideox", "mochi")),
]

_BY_NAME: dict[str, tuple[str, str]] = {}
for _family, _arch, _names in _TABLE:
    for _n in _names:
        _BY_NAME[_n] = (_family, _arch)

# SDXL-architecture families that accept each other's LoRAs only partially.
_SDXL_FAMILIES = {"sdxl", "pony", "illustrious", "noobai"}

# Canonical CivitAI spelling for a family when only the architecture is known.
DEFAULT_BASE_MODEL = {"sd1": "SD 1.5", "sd2": "SD 2.1", "sdxl": "SDXL 1.0", "sd3": "SD 3.5",
                      "flux": "Flux.1 D", "auraflow": "AuraFlow", "video": "Other", "unknown": "Unknown"}


def _norm(base_model: str | None) -> str:
    """Lower case, whitespace runs as one space (string code: no pattern to backtrack)."""
    return " ".join(base_model.lower().split()) if isinstance(base_model, str) else ""


def is_known(base_model: str | None) -> bool:
    n = _norm(base_model)
    return bool(n) and n not in ("unknown", "other")


def family(base_model: str | None) -> str:
    """Family of a CivitAI base-model string, or "unknown"."""
    n = _norm(base_model)
    if n in _BY_NAME:
        return _BY_NAME[n][0]
    if n.startswith("wan video") or "video" in n:
        return "video"
    if n.startswith("pony v7"):
        return "auraflow"
    for prefix, fam in (("pony", "pony"), ("illustrious", "illustrious"), ("noobai", "noobai"),
                        ("sdxl", "sdxl"), ("sd 1", "sd1"), ("sd 2", "sd2"), ("sd 3", "sd3"),
                        ("flux.1", "flux1"), ("flux.2", "flux2")):
        if n.startswith(prefix):
            return fam
    return "unknown"


def architecture(base_model: str | None) -> str:
    """Architecture (`sd1`, `sdxl`, ...) of a CivitAI base-model string, or "unknown"."""
    fam = family(base_model)
    for f, arch, _ in _TABLE:
        if f == fam:
            return arch
    return "unknown"


def compatibility(lora_base_model: str | None, lora_architecture: str,
                  ckpt_base_model: str | None, ckpt_architecture: str) -> str | None:
    """"full", "partial", or None (never stack) for a LoRA on a checkpoint.

    Decided by family when both base models are known, else by architecture. An unknown
    architecture on either side is "partial" only when the other side is known to match
    nothing worse; two unknowns are refused, since a LoRA of another family silently does nothing.
    """
    lf, cf = family(lora_base_model), family(ckpt_base_model)
    if lf != "unknown" and cf != "unknown":
        if lf == cf:
            return "full"
        if lf in _SDXL_FAMILIES and cf in _SDXL_FAMILIES:
            return "partial"
        if {lf, cf} == {"flux1", "flux2"}:
            return None
        return None
    la = lora_architecture if lora_architecture != "unknown" else architecture(lora_base_model)
    ca = ckpt_architecture if ckpt_architecture != "unknown" else architecture(ckpt_base_model)
    if la == "unknown" or ca == "unknown":
        return None
    if la != ca:
        return None
    # Same architecture, one side's family unknown: SDXL sub-families only partially agree.
    if la == "sdxl" and (lf in _SDXL_FAMILIES - {"sdxl"} or cf in _SDXL_FAMILIES - {"sdxl"}):
        return "partial"
    return "full"


def from_a1111_sd_version(value: str | None) -> str:
    """A1111 `"sd version"` (SD1, SD2, SDXL, SD3, Unknown) -> CivitAI-style base model."""
    v = _norm(value)
    return {"sd1": "SD 1.5", "sd2": "SD 2.1", "sdxl": "SDXL 1.0", "sd3": "SD 3"}.get(v, "Unknown")


def from_trainer_metadata(meta: dict[str, str]) -> str:
    """Base model from safetensors `__metadata__` written by trainers (kohya ss_*, modelspec)."""
    spec = _norm(meta.get("modelspec.architecture"))
    if spec:
        if "stable-diffusion-xl" in spec or spec.startswith("sdxl"):
            return "SDXL 1.0"
        if "stable-diffusion-v1" in spec:
            return "SD 1.5"
        if "stable-diffusion-v2" in spec:
            return "SD 2.1"
        if "stable-diffusion-3" in spec:
            return "SD 3"
        if "flux" in spec:
            return "Flux.1 D"
    ss = _norm(meta.get("ss_base_model_version"))
    if ss:
        if ss.startswith("sdxl"):
            return "SDXL 1.0"
        if ss.startswith("sd_v1") or ss == "sd1":
            return "SD 1.5"
        if ss.startswith("sd_v2"):
            return "SD 2.1"
        if ss.startswith("sd3"):
            return "SD 3"
        if ss.startswith("flux"):
            return "Flux.1 D"
    if _norm(meta.get("ss_v2")) == "true":
        return "SD 2.1"
    return "Unknown"
