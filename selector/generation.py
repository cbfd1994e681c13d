"""Generation settings: steps, cfg, sampler, scheduler, size, clip skip and seed, from the family's
defaults, the model's example images, the analysis, the quality preset and the overrides."""
from __future__ import annotations

import statistics
from collections import Counter
from typing import Any, Iterable, Mapping, Sequence

from ..metadata.records import ModelRecord
from . import architectures as A
from .analysis import PromptAnalysis
from .request import PlanRequestError
from .samplers import is_a1111_name, normalize_sampler, normalize_scheduler


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


def _median(values: Iterable[float]) -> float | None:
    vals = list(values)
    return statistics.median(vals) if vals else None


def settings_for(spec: A.ArchitectureSpec, record: ModelRecord | None, analysis: PromptAnalysis, quality: str,
              ov: Mapping[str, Any], valid_samplers: Sequence[str] | None, valid_schedulers: Sequence[str] | None,
              ) -> tuple[dict[str, Any], list[str], list[str]]:
    """Settings from: family defaults -> the model's example images -> the analysis -> the quality
    preset -> overrides. Returns (settings, reasons, warnings)."""
    reasons: list[str] = []
    warnings: list[str] = []
    steps, cfg, guidance = spec.steps, spec.cfg, spec.guidance
    sampler, scheduler, clip_skip = spec.sampler_name, spec.scheduler, spec.clip_skip
    reasons.append(f"{spec.label} defaults: {steps} steps, cfg {cfg:g}, {sampler}/{scheduler}, clip skip {clip_skip}"
                   + (f", guidance {guidance:g}" if guidance is not None else ""))
    from_examples: set[str] = set()

    if record is not None:
        ex = record.examples
        st = _median(e.steps for e in ex if e.steps and 1 <= e.steps <= 150)
        if st is not None:
            steps = int(min(spec.max_steps, max(spec.min_steps, round(st))))
            from_examples.add("steps")
            reasons.append(f"steps {steps}: median of the model's example images")
        cf = _median(e.cfg for e in ex if e.cfg is not None and 0 < e.cfg <= 30)
        if cf is not None:
            if spec.guidance is not None and spec.cfg_range == (1.0, 1.0):
                if 1.5 <= cf <= 10:
                    guidance = round(float(cf), 2)
                    reasons.append(f"guidance {guidance:g}: the example images' cfg "
                                   "(Flux-style models use it as guidance)")
            else:
                cfg = A.clamp_cfg(spec, float(cf))
                from_examples.add("cfg")
                reasons.append(f"cfg {cfg:g}: median of the model's example images")
        mapped: list[tuple[str, str | None]] = []
        for e in ex:
            if e.sampler:
                try:
                    mapped.append(normalize_sampler(e.sampler, valid_samplers, valid_schedulers))
                except ValueError:
                    continue
        if mapped:
            (s_name, s_sched), count = Counter(mapped).most_common(1)[0]
            sampler = s_name
            if s_sched:
                scheduler = s_sched
            from_examples.add("sampler")
            reasons.append(f"{sampler}/{scheduler}: used by {count} of the model's {len(ex)} example images")
        cs: float | None
        if record.clip_skip and 1 <= record.clip_skip <= 12:
            cs = record.clip_skip
            reasons.append(f"clip skip {cs}: the model's usage tips")
        else:
            cs = _median(e.clip_skip for e in ex if e.clip_skip and 1 <= e.clip_skip <= 12)
            if cs is not None:
                reasons.append(f"clip skip {int(cs)}: the model's example images")
        if cs is not None:
            clip_skip = int(cs)

    if spec.tunable:
        if "steps" not in from_examples and analysis.suggested_steps:
            s2 = int(min(spec.max_steps, max(spec.min_steps, analysis.suggested_steps)))
            if s2 != steps:
                steps = s2
                reasons.append(f"steps {steps}: suggested for a '{analysis.style}' prompt ({analysis.source} analysis)")
        if "cfg" not in from_examples and analysis.suggested_cfg:
            c2 = A.clamp_cfg(spec, analysis.suggested_cfg)
            if c2 != cfg:
                cfg = c2
                reasons.append(f"cfg {cfg:g}: suggested for a '{analysis.style}' prompt ({analysis.source} analysis)")

    q_steps = A.steps_for(spec, quality, steps)
    if q_steps != steps:
        reasons.append(f"steps {q_steps}: quality '{quality}' (x{A.preset(quality).steps_multiplier:g} of {steps})")
        steps = q_steps
    width, height = A.size_for(spec, analysis.aspect, quality)
    reasons.append(f"{width}x{height}: {analysis.aspect} framing for {_a(analysis.content_type)} at {spec.label}'s "
                   f"native {spec.native}px" + (f", scaled for quality '{quality}'"
                                                if (width, height) != spec.sizes.get(analysis.aspect) else ""))

    # Keep automatic choices valid for the running ComfyUI.
    if valid_samplers is not None and sampler not in valid_samplers:
        alt = "euler" if "euler" in valid_samplers else (valid_samplers[0] if valid_samplers else sampler)
        warnings.append(f"sampler {sampler} is not offered by this ComfyUI; using {alt}")
        sampler = alt
    if valid_schedulers is not None and scheduler not in valid_schedulers:
        alt_s = normalize_scheduler(scheduler, valid_schedulers) or \
            ("normal" if "normal" in valid_schedulers else (valid_schedulers[0] if valid_schedulers else scheduler))
        warnings.append(f"scheduler {scheduler} is not offered by this ComfyUI; using {alt_s}")
        scheduler = alt_s

    batch_size, seed = 1, None
    # Overrides: the user's word is final.
    if "steps" in ov:
        steps = ov["steps"]
        reasons.append(f"steps {steps}: override")
    if "cfg" in ov:
        cfg = float(ov["cfg"])
        reasons.append(f"cfg {cfg:g}: override")
        if spec.cfg_range == (1.0, 1.0) and cfg > 1.0:
            warnings.append(f"cfg {cfg:g} on a guidance-distilled {spec.label} model: it expects cfg 1.0 "
                            "(strength comes from guidance); sampling will be slower and may burn")
    if "sampler" in ov:
        try:
            s_name, s_sched = normalize_sampler(ov["sampler"], valid_samplers, valid_schedulers)
        except ValueError as e:
            raise PlanRequestError("overrides.sampler", str(e)) from None
        sampler = s_name
        note = f"sampler {sampler}: override {ov['sampler']!r}"
        if s_sched and is_a1111_name(ov["sampler"]):
            scheduler = s_sched
            note += f" (A1111 name: scheduler {scheduler})"
        reasons.append(note)
    if "sampler_name" in ov:
        name = ov["sampler_name"]
        if valid_samplers is not None and name in valid_samplers:
            sampler = name
        else:
            try:
                sampler, s_sched = normalize_sampler(name, valid_samplers, valid_schedulers)
            except ValueError as e:
                if valid_samplers is not None:
                    raise PlanRequestError("overrides.sampler_name", str(e)) from None
                sampler, s_sched = name, None  # no live list to check against (e.g. a custom sampler)
            if s_sched and "scheduler" not in ov and is_a1111_name(name):
                scheduler = s_sched
        reasons.append(f"sampler {sampler}: override")
    if "scheduler" in ov:
        sched = ov["scheduler"] if valid_schedulers is not None and ov["scheduler"] in valid_schedulers \
            else normalize_scheduler(ov["scheduler"], valid_schedulers)
        if sched is None:
            if valid_schedulers is not None:
                raise PlanRequestError("overrides.scheduler", f"unknown scheduler {ov['scheduler']!r}; this "
                                       f"ComfyUI offers {', '.join(valid_schedulers)}")
            sched = ov["scheduler"]
        scheduler = sched
        reasons.append(f"scheduler {scheduler}: override")
    if "width" in ov or "height" in ov:
        width, height = ov.get("width", width), ov.get("height", height)
        reasons.append(f"{width}x{height}: override")
    if "batch_size" in ov:
        batch_size = ov["batch_size"]
        reasons.append(f"batch size {batch_size}: override")
    if "seed" in ov:
        seed = ov["seed"]
        reasons.append(f"seed {seed}: override")
    settings = {"steps": int(steps), "cfg": float(cfg), "guidance": guidance, "sampler_name": sampler,
                "scheduler": scheduler, "width": int(width), "height": int(height), "batch_size": int(batch_size),
                "clip_skip": int(clip_skip), "seed": seed, "denoise": 1.0}
    return settings, reasons, warnings

