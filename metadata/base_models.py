"""CivitAI base-model strings: their group (our `family`), architecture, speed, and what loads on what.

One module serves the index (a sidecar's `base_model` -> family and architecture) and the selector
(LoRA compatibility). The data is CivitAI's own (metadata/families.py, from civitai/civitai's
base-model constants); this module only looks strings up in it.

Compatibility of a LoRA on a checkpoint (`compatibility`):
- both families known: same group "full" (except base models CivitAI groups together whose widths
  differ, e.g. SD 3 and SD 3.5 Large: never); else CivitAI's support table of the checkpoint's group
  ("full"/"partial"); else the SDXL ecosystem among itself (SDXL, Pony, Illustrious, NoobAI, ...)
  "partial"; anything else None (never stack: a LoRA of another group loads silently as nothing,
  or fails on shapes: Kolors on SDXL 1.0, Chroma on Flux.1 D, SD 3.5 Medium on SD 3.5 Large);
- a family unknown on either side: by architecture, and then at most "partial", never "full".
"""
from __future__ import annotations

from functools import lru_cache

from . import families as F

# Legacy view used by tests and callers that list the families: (group, architecture, names lower-cased).
_TABLE: list[tuple[str, str, tuple[str, ...]]] = [
    (g.id, g.architecture, tuple(n.lower() for n, gid in F.BASE_MODELS.items() if gid == g.id))
    for g in F.GROUPS.values()
]

_CANONICAL: dict[str, str] = {n.lower(): n for n in F.BASE_MODELS}
_CANONICAL.update({k: v for k, v in F.ALIASES.items() if k not in _CANONICAL})

# Fallback for strings CivitAI does not spell exactly (a trainer's "SDXL 1.0 (Base)", "Pony XL v6",
# "Flux.1 D (fp8)"): the longest prefix decides. Checked longest first; string code, no pattern.
_PREFIXES: tuple[tuple[str, str], ...] = tuple(sorted((
    ("pony v7", "Pony V7"), ("pony", "Pony"), ("illustrious", "Illustrious"), ("noobai", "NoobAI"),
    ("sdxl lightning", "SDXL Lightning"), ("sdxl hyper", "SDXL Hyper"), ("sdxl turbo", "SDXL Turbo"),
    ("sdxl 1.0 lcm", "SDXL 1.0 LCM"), ("sdxl refiner", "SDXL Refiner"), ("sdxl distilled", "SDXL Distilled"),
    ("sdxl", "SDXL 1.0"), ("sd 1.5 lcm", "SD 1.5 LCM"), ("sd 1.5 hyper", "SD 1.5 Hyper"), ("sd 1", "SD 1.5"),
    ("sd 2", "SD 2.1"), ("sd 3.5 medium", "SD 3.5 Medium"), ("sd 3.5 large turbo", "SD 3.5 Large Turbo"),
    ("sd 3.5 large", "SD 3.5 Large"), ("sd 3.5", "SD 3.5"), ("sd 3", "SD 3"), ("flux.1 krea", "Flux.1 Krea"),
    ("flux.1 kontext", "Flux.1 Kontext"), ("flux.1 s", "Flux.1 S"), ("flux.1 d", "Flux.1 D"), ("flux.1", "Flux.1 D"),
    ("flux.2 klein 9b-base", "Flux.2 Klein 9B-base"), ("flux.2 klein 4b-base", "Flux.2 Klein 4B-base"),
    ("flux.2 klein 9b", "Flux.2 Klein 9B"), ("flux.2 klein 4b", "Flux.2 Klein 4B"), ("flux.2 d", "Flux.2 D"),
    ("wan video 1.3b", "Wan Video 1.3B t2v"), ("wan video 14b t2v", "Wan Video 14B t2v"),
    ("wan video 14b i2v 480p", "Wan Video 14B i2v 480p"), ("wan video 14b i2v 720p", "Wan Video 14B i2v 720p"),
    ("wan video 2.2 ti2v", "Wan Video 2.2 TI2V-5B"), ("wan video 2.2 i2v", "Wan Video 2.2 I2V-A14B"),
    ("wan video 2.2 t2v", "Wan Video 2.2 T2V-A14B"), ("wan video 2.5 t2v", "Wan Video 2.5 T2V"),
    ("wan video 2.5 i2v", "Wan Video 2.5 I2V"), ("wan video", "Wan Video"), ("hunyuan video", "Hunyuan Video"),
    ("hunyuan 3d", "Hunyuan 3D"), ("ltxv2", "LTXV2"), ("ltxv", "LTXV"), ("pixart a", "PixArt a"),
    ("pixart e", "PixArt E"), ("playground v2", "Playground v2"), ("svd", "SVD"),
), key=lambda p: -len(p[0])))

# Canonical CivitAI spelling for a family when only the architecture is known.
DEFAULT_BASE_MODEL = {"sd1": "SD 1.5", "sd2": "SD 2.1", "sdxl": "SDXL 1.0", "sd3": "SD 3.5",
                      "flux": "Flux.1 D", "auraflow": "AuraFlow", "video": "Other", "unknown": "Unknown"}

# Words that mark a fast (few-step) variant in a base-model string CivitAI does not list.
_FAST_WORDS = (("lightning", "lightning"), ("turbo", "turbo"), ("hyper", "hyper"), ("lcm", "lcm"),
               ("schnell", "schnell"), ("dmd", "dmd"))


def _norm(base_model: str | None) -> str:
    """Lower case, whitespace runs as one space (string code: no pattern to backtrack)."""
    return " ".join(base_model.lower().split()) if isinstance(base_model, str) else ""


@lru_cache(maxsize=4096)  # (a plan asks it of every model; a library holds a few dozen spellings)
def canonical(base_model: str | None) -> str | None:
    """CivitAI's spelling of a base-model string ("sdxl 1.0" -> "SDXL 1.0"), or None if not one we know."""
    n = _norm(base_model)
    if not n:
        return None
    hit = _CANONICAL.get(n)
    if hit is not None:
        return hit
    for prefix, name in _PREFIXES:
        if n.startswith(prefix) and (len(n) == len(prefix) or not n[len(prefix)].isalnum()
                                     or prefix.endswith(" ")):
            return name
    return None


def is_known(base_model: str | None) -> bool:
    n = _norm(base_model)
    return bool(n) and n not in ("unknown", "other")


def family(base_model: str | None) -> str:
    """CivitAI group id of a base-model string ("Pony V7" -> "PonyV7"), "Other", or "unknown"."""
    name = canonical(base_model)
    if name is not None:
        return F.BASE_MODELS[name]
    return "unknown"


group = family


def label(family_id: str) -> str:
    """CivitAI's display name of a group ("SD3_5M" -> "Stable Diffusion 3.5 Medium")."""
    g = F.GROUPS.get(family_id)
    return g.label if g else family_id


# CivitAI's group names, shortened the way contracts.md writes them ("SD 1.x", "SDXL", "Pony",
# "SD 3.5 Medium"): longest first, string code.
_SHORTER = (("Stable Diffusion XL", "SDXL"), ("Stable Diffusion 1", "SD 1"), ("Stable Diffusion 2", "SD 2"),
            ("Stable Diffusion 3", "SD 3"), ("Pony Diffusion V7", "Pony V7"), ("Pony Diffusion", "Pony"))


def public_family(family_id: str) -> str:
    """The family as the plan and the routes show it (contracts.md): "SD1" -> "SD 1.x",
    "SDXL" -> "SDXL", "Pony" -> "Pony", "Flux1" -> "Flux.1", "SD3_5M" -> "SD 3.5 Medium"; "unknown" stays."""
    name = label(family_id)
    for long, short in _SHORTER:
        if name.startswith(long):
            return short + name[len(long):]
    return name


_BY_PUBLIC = {public_family(gid).lower(): gid for gid in F.GROUPS}


def family_id(text: str | None) -> str | None:
    """The group id a user or script names: the id itself ("SD1"), its public name ("SD 1.x"),
    CivitAI's group name or a base-model string of the group ("SD 1.5"); None when none fits."""
    if not isinstance(text, str) or not text.strip():
        return None
    wanted = " ".join(text.split())
    for gid in F.GROUPS:
        if gid.lower() == wanted.lower():
            return gid
    hit = _BY_PUBLIC.get(wanted.lower())
    if hit is not None:
        return hit
    for gid, g in F.GROUPS.items():
        if g.label.lower() == wanted.lower():
            return gid
    found = family(wanted)
    return found if found != "unknown" else None


def architecture(base_model: str | None) -> str:
    """Architecture (`sd1`, `sdxl`, ..., `unknown` where the planner builds nothing) of a base-model string."""
    return family_architecture(family(base_model))


def family_architecture(family_id: str) -> str:
    g = F.GROUPS.get(family_id)
    return g.architecture if g else "unknown"


@lru_cache(maxsize=4096)
def speed(base_model: str | None) -> str | None:
    """The fast variant a base model is ("lightning", "turbo", "hyper", "lcm", "schnell", ...), or None."""
    name = canonical(base_model)
    if name in F.FAST_VARIANTS:
        return F.FAST_VARIANTS[name]
    n = _norm(base_model)
    return next((kind for word, kind in _FAST_WORDS if word in n), None)


# Lora-Manager's `determine_base_model` (willmiao/ComfyUI-Lora-Manager @25e72b43,
# py/utils/model_utils.py, BASE_MODEL_MAPPING): the first key found *inside* CivitAI's lower-cased
# baseModel gives what it writes as `base_model`, so "SDXL Distilled", "SDXL Lightning" and
# "SDXL Turbo" all become "SDXL 1.0" and "Pony V7" becomes "Pony". In its order.
_LORA_MANAGER_SHORTENING = (("sd_1.5", "SD 1.5"), ("sd-v1-5", "SD 1.5"), ("sd-v2-1", "SD 2.1"), ("sdxl", "SDXL 1.0"),
                            ("sd-v2", "SD 2.0"), ("flux1", "Flux.1 D"), ("flux.1 d", "Flux.1 D"),
                            ("illustrious", "Illustrious"), ("il", "Illustrious"), ("pony", "Pony"))


def lora_manager_shortening(civitai_base_model: str) -> str:
    """What Lora-Manager writes as `base_model` for a CivitAI baseModel."""
    lower = civitai_base_model.lower()
    return next((short for key, short in _LORA_MANAGER_SHORTENING if key in lower), civitai_base_model)


def richer(candidate: str | None, current: str | None) -> bool:
    """Whether `candidate` names the same model as `current`, more precisely.

    True when `current` is unknown, or `current` is a shortening of `candidate` (Lora-Manager's
    "Pony" for "Pony V7", "Flux.1" for "Flux.1 Krea"), or both are of one group and `candidate`
    is its fast variant ("SDXL Lightning" beside "SDXL 1.0"). A different model is never richer:
    a user's own correction to another family stands.
    """
    if not is_known(candidate):
        return False
    if not is_known(current):
        return True
    assert candidate is not None and current is not None
    c, k = _norm(canonical(candidate) or candidate), _norm(canonical(current) or current)
    if c == k:
        return False
    raw_c, raw_k = _norm(candidate), _norm(current)
    if raw_c.startswith(raw_k + " ") or raw_c.startswith(raw_k + "-"):
        return True
    if _norm(lora_manager_shortening(candidate)) == raw_k and family(candidate) != "unknown":
        return True  # "SDXL 1.0" is what Lora-Manager writes for "SDXL Distilled"
    if family(candidate) == family(current) != "unknown":
        if frozenset({canonical(candidate), canonical(current)}) in F.INCOMPATIBLE_IN_GROUP:
            return False
        return speed(candidate) is not None and speed(current) is None  # "SDXL Lightning" over "SDXL 1.0"
    return False


def _table_support(lora_name: str | None, ckpt_group: str) -> str | None:
    table = F.LORA_SUPPORT.get(ckpt_group)
    if not table or lora_name is None:
        return None
    full, partial = table
    if lora_name in full:
        return "full"
    if lora_name in partial:
        return "partial"
    return None


def family_compatibility(lora_family: str, ckpt_family: str, lora_name: str | None = None,
                         ckpt_name: str | None = None) -> str | None:
    """"full", "partial" or None for a LoRA of one group on a checkpoint of another (both known)."""
    if lora_family == ckpt_family:
        if lora_name and ckpt_name and frozenset({lora_name, ckpt_name}) in F.INCOMPATIBLE_IN_GROUP:
            return None
        return "full"
    result = _table_support(lora_name or _group_default(lora_family), ckpt_family)
    if result is not None:
        return result
    if lora_family in F.SDXL_ECOSYSTEM and ckpt_family in F.SDXL_ECOSYSTEM:
        return "partial"
    return None


def _group_default(family_id: str) -> str | None:
    """The one base-model string of a group (None when the group has several)."""
    names = [n for n, g in F.BASE_MODELS.items() if g == family_id]
    return names[0] if len(names) == 1 else None


def _family_known(family_id: str) -> bool:
    return family_id not in ("unknown", "Other")


def compatibility(lora_base_model: str | None, lora_architecture: str,
                  ckpt_base_model: str | None, ckpt_architecture: str,
                  lora_family: str | None = None, ckpt_family: str | None = None) -> str | None:
    """"full", "partial", or None (never stack) for a LoRA on a checkpoint (rules in the module doc).

    `lora_family`/`ckpt_family` are the records' families when known (they may be finer than the
    base-model string says, e.g. detected from the tensors); else the base models decide.
    """
    lf = lora_family if lora_family and _family_known(lora_family) else family(lora_base_model)
    cf = ckpt_family if ckpt_family and _family_known(ckpt_family) else family(ckpt_base_model)
    if _family_known(lf) and _family_known(cf):
        ln = canonical(lora_base_model) if family(lora_base_model) == lf else None
        cn = canonical(ckpt_base_model) if family(ckpt_base_model) == cf else None
        return family_compatibility(lf, cf, ln, cn)
    la = lora_architecture if lora_architecture and lora_architecture != "unknown" else family_architecture(lf)
    ca = ckpt_architecture if ckpt_architecture and ckpt_architecture != "unknown" else family_architecture(cf)
    if la == "unknown" or ca == "unknown" or la != ca:
        return None
    # Same architecture, one family unknown: it may be any group of that architecture.
    return "partial"


def from_a1111_sd_version(value: str | None) -> str:
    """A1111 `"sd version"` (SD1, SD2, SDXL, SD3, Unknown) -> CivitAI-style base model."""
    v = _norm(value)
    return {"sd1": "SD 1.5", "sd2": "SD 2.1", "sdxl": "SDXL 1.0", "sd3": "SD 3"}.get(v, "Unknown")


# modelspec.architecture / ss_base_model_version values (lower case) naming one model exactly:
# musubi-tuner (kohya-ss/musubi-tuner src/musubi_tuner/utils/sai_model_spec.py: ARCH_FLUX_KONTEXT =
# "Flux.1-dev", written only by its Kontext trainer; sd-scripts writes "flux-1-dev"), sd-scripts
# (library/sai_model_spec.py: "chroma", ARCH_LUMINA_2 = "lumina-2", ARCH_LUMINA_UNKNOWN = "lumina",
# ARCH_ANIMA_PREVIEW = "anima-preview", ARCH_ANIMA_UNKNOWN = "anima-unknown", "/lora" appended for
# LoRAs), musubi-tuner's ARCH_FLUX_2_DEV = "Flux.2-dev" (its Klein strings, "Flux.2-klein-4b"/"-9b",
# name no distilled-or-base variant and stay unmapped) and ai-toolkit (get_base_model_version:
# "flux.1_kontext", "chroma", "anima", "lumina2", "wan_2.2_5b").
_TRAINER_EXACT: tuple[tuple[str, str], ...] = (
    ("flux.1-dev/lora", "Flux.1 Kontext"), ("flux.1_kontext", "Flux.1 Kontext"),
    ("flux.2-dev/lora", "Flux.2 D"), ("flux.2-dev", "Flux.2 D"),
    ("chroma/lora", "Chroma"), ("chroma", "Chroma"),
    ("anima-preview/lora", "Anima"), ("anima-preview", "Anima"), ("anima-unknown/lora", "Anima"),
    ("anima-unknown", "Anima"), ("anima", "Anima"),
    ("lumina-2/lora", "Lumina"), ("lumina-2", "Lumina"), ("lumina/lora", "Lumina"), ("lumina", "Lumina"),
    ("lumina2", "Lumina"), ("wan_2.2_5b", "Wan Video 2.2 TI2V-5B"),
)


def from_trainer_metadata(meta: dict[str, str]) -> str:
    """Base model from safetensors `__metadata__` written by trainers (kohya ss_*, modelspec)."""
    spec = _norm(meta.get("modelspec.architecture"))
    ss_exact = _norm(meta.get("ss_base_model_version"))
    for value, name in _TRAINER_EXACT:
        if spec == value or ss_exact == value:
            return name
    if spec:
        if "stable-diffusion-xl-v1-refiner" in spec:
            return "SDXL Refiner"
        if "stable-diffusion-xl" in spec or spec.startswith("sdxl"):
            return "SDXL 1.0"
        if "stable-diffusion-v1" in spec:
            return "SD 1.5"
        if "stable-diffusion-v2" in spec:
            return "SD 2.1"
        if "stable-diffusion-3.5-large" in spec or "stable-diffusion-v3-5-large" in spec:
            return "SD 3.5 Large"
        if "stable-diffusion-3.5-medium" in spec or "stable-diffusion-v3-5-medium" in spec:
            return "SD 3.5 Medium"
        if "stable-diffusion-3" in spec or "stable-diffusion-v3" in spec:
            return "SD 3"
        if "flux-1-schnell" in spec:
            return "Flux.1 S"
        if "flux" in spec and "flux-2" not in spec and "flux.2" not in spec:
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
        if ss.startswith("flux1") or ss == "flux":
            return "Flux.1 D"
    if _norm(meta.get("ss_v2")) == "true":
        return "SD 2.1"
    return "Unknown"
