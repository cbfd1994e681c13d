"""One LoRA per concept: which of the accepted LoRAs make the stack, and what a family offers.

`stack_by_coverage` walks the accepted LoRAs best first and keeps one only when it covers a
prompt concept that no LoRA already kept covers, so three "red dress" LoRAs never stack together.
`family_fit` runs the same decision for the LoRAs that load on one family: the checkpoint choice
uses it to prefer, among checkpoints that are otherwise close, the family that has the right
LoRAs for the prompt (a Pony LoRA for "medicine pills" is no use on an SD 1.5 checkpoint).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from ..metadata.records import ModelRecord
from .analysis import PromptAnalysis
from .compat import lora_compatibility
from .scoring import LoraContext, Query, Score, TermMatch, concept_weight, score_loras

# The most a family's LoRAs add to a checkpoint's score, reached gradually as the relevance of
# the LoRAs it would stack grows (half of it at FAMILY_FIT_HALF): enough to decide between
# checkpoints that are otherwise close, never enough to carry a clearly worse one.
FAMILY_FIT_MAX = 15.0
FAMILY_FIT_HALF = 20.0


def counts_for_coverage(text: str) -> bool:
    """Only the prompt's specific concepts count as covered (not colours or generic words)."""
    return concept_weight(text) >= 1.0


def stack_by_coverage(scores: Iterable[Score], slots: int, covered: set[str] | None = None,
                      pinned: bool = False) -> tuple[list[Score], dict[str, str]]:
    """The usable scores, best first, that each cover a concept not covered yet, up to `slots`;
    and a note for each one passed over for covering only what is covered. `covered` (the
    concepts of pinned LoRAs) is updated in place. A LoRA accepted for its meaning alone (no word
    of the prompt matched) is stacked only when nothing else is: one, and only when no LoRA that
    matched the prompt's words is stacked and none is `pinned` (it may be about what those are
    about, in other words)."""
    covered = set() if covered is None else covered
    pinned_any = pinned or bool(covered)
    picked: list[Score] = []
    notes: dict[str, str] = {}
    by_meaning: list[Score] = []
    for s in scores:
        if not s.usable:
            continue
        if s.by_meaning_alone:
            by_meaning.append(s)
            continue
        if len(picked) >= slots:
            break
        specific = {t for t in s.matched if counts_for_coverage(t)}
        if specific and specific <= covered:
            notes[s.record.name] = "covers the same concepts as a LoRA already chosen"
            continue
        covered |= specific
        picked.append(s)
    if by_meaning and slots > 0:
        if picked or pinned_any:
            for s in by_meaning:
                notes.setdefault(s.record.name, "like the prompt in meaning only, and LoRAs matching its words, "
                                                "pinned or chosen for it are stacked")
        else:
            picked.append(by_meaning[0])
            for s in by_meaning[1:]:
                notes.setdefault(s.record.name, "one LoRA is stacked for its meaning alone")
    return picked, notes


@dataclass(frozen=True)
class FamilyFit:
    """What the LoRAs of one family would add to a plan: the points and the LoRAs behind them."""

    points: float
    loras: tuple[Score, ...]

    def reason(self) -> str:
        titles = ", ".join(s.record.title or s.record.stem for s in self.loras[:3])
        n = len(self.loras)
        return f"{n} LoRA{'s' if n != 1 else ''} for this prompt load on it: {titles} ({self.points:+.1f})"


NO_FIT = FamilyFit(0.0, ())


def family_fits(records: Sequence[ModelRecord], analysis: PromptAnalysis, query: Query,
                contexts: Iterable[LoraContext], *, slots: int, max_nsfw_level: int = 2,
                matched: Mapping[str, list[TermMatch]] | None = None) -> dict[LoraContext, FamilyFit]:
    """For each family, the stack its LoRAs would make for the prompt and the points it is worth.

    Whether a LoRA may be stacked does not depend on the family, so the LoRAs are scored once and
    each family keeps those that load on it. The points grow with the relevance of the stacked
    LoRAs (what they match of the prompt, never how many LoRAs the library holds), so owning more
    LoRAs does not tilt the choice. `matched`: the records' matches (see `score_loras`)."""
    contexts = list(dict.fromkeys(contexts))
    if slots <= 0 or not contexts:
        return {c: NO_FIT for c in contexts}
    scores, _ = score_loras(records, analysis, query, contexts[0], max_nsfw_level, matched=matched, rank=False,
                            compatibility=lambda r: "full")
    accepted = [s for s in scores if s.usable]
    out: dict[LoraContext, FamilyFit] = {}
    for ctx in contexts:
        loads = [s for s in accepted
                 if lora_compatibility(s.record, ctx.architecture, ctx.base_model, ctx.guessed) is not None]
        picked, _ = stack_by_coverage(loads, slots)
        rel = sum(s.relevance for s in picked)
        out[ctx] = FamilyFit(FAMILY_FIT_MAX * rel / (rel + FAMILY_FIT_HALF), tuple(picked)) if picked else NO_FIT
    return out
