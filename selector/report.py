"""The plan as a human report: what was chosen and why, the settings, the prompt, the warnings."""
from __future__ import annotations

from typing import Any, Mapping


def plan_summary(plan: Mapping[str, Any]) -> str:
    """A human report of the plan: what was chosen and why, the settings, the prompt, warnings."""
    lines: list[str] = []
    a = plan.get("analysis") or {}
    if a:
        src = a.get("source", "keywords")
        lines.append(f"Prompt read as {a.get('style')} {a.get('content_type')} ({src} analysis)"
                     + (f"; concepts: {', '.join(a.get('key_concepts') or [])}" if a.get("key_concepts") else ""))
        if a.get("fallback_reason"):
            lines.append(f"  note: {a['fallback_reason']}")
    ck = plan.get("checkpoint")
    if ck:
        label = ck.get("name") or "(loaded model)"
        lines.append(f"Checkpoint: {label} [{ck.get('architecture')}, {ck.get('base_model')}]"
                     + (f" score {ck.get('score'):.1f}"
                        if isinstance(ck.get("score"), (int, float)) and ck.get("name") else ""))
        for r in (ck.get("reasons") or [])[:6]:
            lines.append(f"  - {r}")
    else:
        lines.append("Checkpoint: not chosen yet")
    for te in plan.get("text_encoders") or []:
        lines.append(f"Text encoder: {te.get('name')} ({'; '.join(te.get('reasons') or [])})")
    vae = plan.get("vae") or {}
    if ck:
        lines.append(f"VAE: {vae.get('name') or 'built in'}" + (f" ({'; '.join(vae.get('reasons') or [])})"
                                                             if vae.get("reasons") else ""))
    loras = plan.get("loras") or []
    if loras:
        lines.append("LoRAs:")
        for lo in loras:
            trig = f"; triggers: {', '.join(lo.get('trigger_words') or [])}" if lo.get("trigger_words") else ""
            lines.append(f"  - {lo.get('name')} @ {lo.get('strength_model')}/{lo.get('strength_clip')} "
                         f"[{lo.get('compatibility')}]{trig}")
            for r in (lo.get("reasons") or [])[:4]:
                lines.append(f"      {r}")
    elif ck:
        note = (plan.get("candidates") or {}).get("lora_note")
        lines.append("LoRAs: none" + (f" ({note})" if note else ""))
    s = plan.get("settings") or {}
    if s:
        seed = s.get("seed")
        lines.append(f"Settings: {s.get('steps')} steps, cfg {s.get('cfg')}"
                     + (f", guidance {s.get('guidance')}" if s.get("guidance") is not None else "")
                     + f", {s.get('sampler_name')}/{s.get('scheduler')}, {s.get('width')}x{s.get('height')}"
                     + f", batch {s.get('batch_size')}, clip skip {s.get('clip_skip')}"
                     + f", seed {seed if seed is not None else 'random'}, denoise {s.get('denoise')}")
        for r in (plan.get("settings_reasons") or [])[1:11]:
            lines.append(f"  - {r}")
    p = plan.get("prompt") or {}
    if p:
        lines.append(f"Positive: {p.get('positive', '')}")
        lines.append(f"Negative: {p.get('negative', '')}")
    mem = plan.get("memory") or {}
    if mem.get("reasons") or mem.get("actions"):
        lines.append(f"Memory: {mem.get('level')} (need {mem.get('need_gb')} GB, free {mem.get('free_gb')} GB)"
                     + (f"; actions: {', '.join(mem.get('actions') or [])}" if mem.get("actions") else ""))
    for w in plan.get("warnings") or []:
        lines.append(f"Warning: {w}")
    return "\n".join(lines)
