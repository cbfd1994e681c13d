"""A1111 / CivitAI sampler names -> ComfyUI `sampler_name` + `scheduler`.

CivitAI example images (and users) say "DPM++ 2M Karras"; ComfyUI's KSampler wants
`dpmpp_2m` + `karras`. An A1111 name always implies a schedule (no suffix meant "normal" in
A1111, except DDIM and LCM), so it sets the scheduler; a bare ComfyUI name does not.
"""
from __future__ import annotations

import re
from typing import Sequence

# ComfyUI 0.3.x KSampler.SAMPLERS / SCHEDULERS: used when the caller has no live lists.
COMFY_SAMPLERS: tuple[str, ...] = (
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "dpm_2",
    "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp",
    "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu",
    "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm",
    "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral",
    "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp", "er_sde", "seeds_2",
    "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc", "uni_pc_bh2",
)
COMFY_SCHEDULERS: tuple[str, ...] = (
    "simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal", "linear_quadratic",
    "kl_optimal",
)


def _key(name: str) -> str:
    """Comparison key: lower-case, no spaces, `_` or `-` ("DPM++ 2M Karras" -> "dpm++2mkarras")."""
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


# A1111 sampler (without schedule suffix) -> ComfyUI sampler_name candidates, best first.
_A1111: dict[str, tuple[str, ...]] = {
    "euler": ("euler",), "eulera": ("euler_ancestral",), "eulerancestral": ("euler_ancestral",),
    "lms": ("lms",), "heun": ("heun",), "heunpp2": ("heunpp2", "heun"), "dpm2": ("dpm_2",),
    "dpm2a": ("dpm_2_ancestral",), "dpm2ancestral": ("dpm_2_ancestral",),
    "dpm++2sa": ("dpmpp_2s_ancestral",), "dpm++2sancestral": ("dpmpp_2s_ancestral",),
    "dpm++2m": ("dpmpp_2m",), "dpm++sde": ("dpmpp_sde", "dpmpp_sde_gpu"),
    "dpm++2msde": ("dpmpp_2m_sde", "dpmpp_2m_sde_gpu"),
    "dpm++2msdeheun": ("dpmpp_2m_sde_heun", "dpmpp_2m_sde"), "dpm++3msde": ("dpmpp_3m_sde", "dpmpp_3m_sde_gpu"),
    "dpm++2msdegpu": ("dpmpp_2m_sde_gpu", "dpmpp_2m_sde"), "dpm++3msdegpu": ("dpmpp_3m_sde_gpu", "dpmpp_3m_sde"),
    "dpmfast": ("dpm_fast",), "dpmadaptive": ("dpm_adaptive",), "ddim": ("ddim",), "ddimcfg++": ("ddim",),
    "plms": ("ipndm", "lms"), "unipc": ("uni_pc",), "unipcbh2": ("uni_pc_bh2", "uni_pc"), "lcm": ("lcm",),
    "ddpm": ("ddpm",), "deis": ("deis",), "ipndm": ("ipndm",), "ipndmv": ("ipndm_v", "ipndm"),
    "eulercfg++": ("euler_cfg_pp", "euler"), "euleracfg++": ("euler_ancestral_cfg_pp", "euler_ancestral"),
    "dpm++2mcfg++": ("dpmpp_2m_cfg_pp", "dpmpp_2m"), "dpm++2sacfg++": ("dpmpp_2s_ancestral_cfg_pp",),
    "restart": ("dpmpp_2m",), "resmultistep": ("res_multistep",), "ersde": ("er_sde",),
}
# Schedules A1111 assumes when the name has no suffix.
_A1111_DEFAULT_SCHEDULER = {"ddim": "ddim_uniform", "lcm": "sgm_uniform", "ddpm": "normal"}

# Schedule suffixes (A1111 names, or ComfyUI names glued to a sampler) -> ComfyUI scheduler.
_SCHEDULE_SUFFIXES: tuple[tuple[str, str], ...] = tuple(sorted((
    ("karras", "karras"), ("exponential", "exponential"), ("polyexponential", "exponential"),
    ("sgmuniform", "sgm_uniform"), ("simple", "simple"), ("normal", "normal"), ("beta", "beta"),
    ("ddimuniform", "ddim_uniform"), ("uniform", "sgm_uniform"), ("klcoptimal", "kl_optimal"),
    ("kloptimal", "kl_optimal"), ("linearquadratic", "linear_quadratic"), ("automatic", "normal"),
), key=lambda kv: -len(kv[0])))

# When a live ComfyUI lacks a sampler: what to try next.
_FALLBACKS: dict[str, tuple[str, ...]] = {
    "dpmpp_2m_sde_heun": ("dpmpp_2m_sde",), "dpmpp_2m_sde_heun_gpu": ("dpmpp_2m_sde_gpu", "dpmpp_2m_sde"),
    "dpmpp_2m_sde_gpu": ("dpmpp_2m_sde",), "dpmpp_3m_sde_gpu": ("dpmpp_3m_sde", "dpmpp_2m_sde"),
    "dpmpp_sde_gpu": ("dpmpp_sde",), "dpmpp_3m_sde": ("dpmpp_2m_sde",), "uni_pc_bh2": ("uni_pc",),
    "heunpp2": ("heun",), "ipndm_v": ("ipndm",), "ipndm": ("lms",), "euler_cfg_pp": ("euler",),
    "euler_ancestral_cfg_pp": ("euler_ancestral",), "dpmpp_2m_cfg_pp": ("dpmpp_2m",),
    "dpmpp_2s_ancestral_cfg_pp": ("dpmpp_2s_ancestral",), "er_sde": ("euler",), "res_multistep": ("euler",),
}
_SCHEDULER_FALLBACKS: dict[str, tuple[str, ...]] = {
    "kl_optimal": ("karras", "normal"), "linear_quadratic": ("normal",), "beta": ("normal",),
    "sgm_uniform": ("simple", "normal"), "ddim_uniform": ("normal",), "exponential": ("karras", "normal"),
    "karras": ("normal",), "simple": ("normal",),
}

_COMFY_BY_KEY = {_key(n): n for n in COMFY_SAMPLERS}


def _pick(candidates: Sequence[str], valid: Sequence[str] | None) -> str | None:
    if valid is None:
        return candidates[0]
    valid_set = set(valid)
    seen: list[str] = []
    queue = list(candidates)
    while queue:
        c = queue.pop(0)
        if c in seen:
            continue
        seen.append(c)
        if c in valid_set:
            return c
        queue.extend(_FALLBACKS.get(c, ()))
    return None


def normalize_scheduler(name: str | None, valid_schedulers: Sequence[str] | None = None) -> str | None:
    """A scheduler name (ComfyUI or A1111 spelling) as one ComfyUI offers, or None if it has none close."""
    if not name:
        return None
    k = _key(name)
    target = next((s for s in COMFY_SCHEDULERS if _key(s) == k), None)
    if target is None:
        target = next((s for suf, s in _SCHEDULE_SUFFIXES if suf == k), None)
    if target is None:
        if valid_schedulers is not None:
            target = next((s for s in valid_schedulers if _key(s) == k), None)
        return target
    if valid_schedulers is None or target in valid_schedulers:
        return target
    for alt in _SCHEDULER_FALLBACKS.get(target, ()):
        if alt in valid_schedulers:
            return alt
    return None


def normalize_sampler(name: str, valid_samplers: Sequence[str] | None = None,
                      valid_schedulers: Sequence[str] | None = None) -> tuple[str, str | None]:
    """(ComfyUI sampler_name, scheduler or None) for a ComfyUI or A1111 sampler name.

    `valid_*` are the live lists of the running ComfyUI: the result is always one of them (a
    missing sampler falls back to its nearest relative, e.g. `dpmpp_2m_sde_heun` ->
    `dpmpp_2m_sde`). Raises ValueError for a name that maps to nothing.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError("sampler name is empty")
    raw = name.strip()
    # 1. An exact ComfyUI sampler name (or one the live list offers, e.g. a custom sampler).
    #    ComfyUI names are lower-case; "Euler" or "DDIM" are A1111's and imply a schedule.
    lowered = raw.lower()
    if valid_samplers is not None and raw in valid_samplers:
        return raw, None
    if raw in COMFY_SAMPLERS or (lowered in COMFY_SAMPLERS and "_" in raw):
        picked = _pick((lowered,), valid_samplers)
        if picked is None:
            raise ValueError(f"sampler {raw!r} is not available in this ComfyUI")
        return picked, None
    # 2. A1111 style, with an optional schedule suffix ("DPM++ 2M Karras", "dpmpp_2m_karras").
    k = _key(raw)
    scheduler: str | None = None
    base = k
    for suffix, sched in _SCHEDULE_SUFFIXES:
        if k.endswith(suffix) and len(k) > len(suffix):
            base, scheduler = k[: -len(suffix)], sched
            break
    candidates = _A1111.get(base) or ((_COMFY_BY_KEY[base],) if base in _COMFY_BY_KEY else None)
    if candidates is None and scheduler is not None:
        # The "suffix" was part of the name after all (no such sampler + schedule).
        candidates = _A1111.get(k) or ((_COMFY_BY_KEY[k],) if k in _COMFY_BY_KEY else None)
        scheduler = None
    if candidates is None:
        raise ValueError(f"unknown sampler {raw!r}: use a ComfyUI sampler_name (e.g. 'dpmpp_2m') "
                         "or an A1111 name (e.g. 'DPM++ 2M Karras')")
    picked = _pick(candidates, valid_samplers)
    if picked is None:
        raise ValueError(f"sampler {raw!r} ({candidates[0]}) is not available in this ComfyUI")
    if scheduler is None:
        scheduler = _A1111_DEFAULT_SCHEDULER.get(base, "normal")
    return picked, normalize_scheduler(scheduler, valid_schedulers)


def is_a1111_name(name: str) -> bool:
    """Whether `name` is not a bare ComfyUI sampler name (so it implies a scheduler).

    ComfyUI names are lower-case: "euler" is ComfyUI's, "Euler" is A1111's (schedule "normal").
    """
    raw = name.strip()
    return not (raw in COMFY_SAMPLERS or (raw.lower() in COMFY_SAMPLERS and "_" in raw))
