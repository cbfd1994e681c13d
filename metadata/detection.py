"""What a file's tensors say about its family, and how sure that is.

A Detection names one CivitAI group (`family`, metadata/families.py) with its contract
`architecture`, a `confidence` in the family (0..1), the `candidates` (every group the tensors are
consistent with) and whether the evidence is `decisive`: tensor names *and* shapes that only the
candidate groups have. Only a decisive detection may overrule a sidecar (metadata/merge.py), and
only when the sidecar names a group outside the candidates: an SDXL-shaped file proves "SDXL, Pony,
Illustrious, NoobAI or another SDXL-UNet family", never which of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

from . import base_models
from . import families as F

Shape = tuple[int, ...]
Tensors = Mapping[str, tuple[str, Shape]]  # name -> (dtype, shape), as SafetensorsHeader.tensors

DECISIVE = 0.9  # confidence from which one candidate alone is certain


@dataclass(frozen=True)
class Detection:
    architecture: str = "unknown"
    base_model: str = "Unknown"  # best guess, in CivitAI's spelling
    confidence: float = 0.0  # how sure `family` is
    evidence: str = ""  # which keys and shapes decided, for logs and problem strings
    has_vae: bool | None = None  # checkpoints only
    extra: Mapping[str, Any] = field(default_factory=dict)
    family: str = "unknown"  # CivitAI group id
    candidates: frozenset[str] = frozenset()  # groups the tensors are consistent with (empty: no claim)
    decisive: bool = False  # the candidates are certain (shapes only they have)
    excludes: frozenset[str] = frozenset()  # base models inside the candidates the shapes rule out

    @property
    def confident(self) -> bool:
        """Decisive: specific enough to overrule a sidecar that names a group outside the candidates."""
        return self.decisive

    def consistent_with(self, base_model: str | None) -> bool:
        """Whether a claimed base model fits the tensors (True when they claim nothing)."""
        if not self.candidates:
            return True
        fam = base_models.family(base_model)
        if fam not in self.candidates:
            return False
        return base_models.canonical(base_model) not in self.excludes


def found(base_model: str, evidence: str, *, decisive: bool, candidates: Iterable[str] = (),
          confidence: float | None = None, excludes: Iterable[str] = (), **extra: Any) -> Detection:
    """A detection of `base_model` (a CivitAI string); its group is always among the candidates."""
    fam = base_models.family(base_model)
    cands = frozenset(candidates) | {fam}
    if confidence is None:
        confidence = (0.95 if len(cands) == 1 else round(max(0.4, 0.9 - 0.1 * len(cands)), 2)) if decisive else 0.5
    return Detection(architecture=base_models.family_architecture(fam), base_model=base_model,
                     confidence=confidence, evidence=evidence, extra=extra, family=fam, candidates=cands,
                     decisive=decisive, excludes=frozenset(excludes))


def with_extra(det: Detection, **extra: Any) -> Detection:
    return replace(det, extra={**det.extra, **extra})


SDXL_UNET_FAMILIES = F.SDXL_ECOSYSTEM
