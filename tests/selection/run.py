"""The selection evaluation: the real-metadata library (build.py) indexed like a user's, a plan made
for each labelled prompt (words only: keyword analysis, no LLM), and the plan's picks graded
against the labels written from the records before the scorer ran.

    .venv/bin/python tests/selection/run.py [--set dev|heldout|all] [--failures]

Figures, per set (prompts/dev.json, prompts/heldout.json):
- LoRA recall: of the prompts that have an acceptable LoRA, how many got one;
- LoRA precision: of the LoRAs stacked, how many are acceptable or relevant for their prompt;
- nothing to stack: of the prompts with no acceptable LoRA, how many stacked none that is not
  relevant;
- checkpoint: of the prompts with acceptable checkpoints, how many got one of them;
- incompatible: LoRAs stacked on a checkpoint of another architecture (by the records' own base
  models and tests/conformance/families.json, not by the pack's own compatibility code).

Nobody tunes the selector on prompts/heldout.json: read its figures, not its contents.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from intelligent_pipeline.metadata import ModelIndex, StaticModelPaths
from intelligent_pipeline.selector import planner
from intelligent_pipeline.selector.meaning import Meaning, MiniLM, build_meaning, unavailable

HERE = Path(__file__).resolve().parent
PROMPTS_DIR = HERE / "prompts"
SETS = ("dev", "heldout")


def _load_build() -> Any:
    import importlib.util
    spec = importlib.util.spec_from_file_location("_ip_selection_build", HERE / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # (dataclasses look their module up there)
    spec.loader.exec_module(module)
    return sys.modules[spec.name]


build = _load_build()


@dataclass(frozen=True)
class Prompt:
    set: str
    id: str
    prompt: str
    acceptable_loras: frozenset[str]
    relevant_loras: frozenset[str]
    acceptable_checkpoints: frozenset[str]
    kind: str = ""
    note: str = ""


def _ids(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: expected a list of record ids")
    return frozenset(value)


def load_prompts(set_name: str, directory: Path = PROMPTS_DIR) -> list[Prompt]:
    with open(directory / f"{set_name}.json", encoding="utf-8") as f:
        data = json.load(f)
    out = []
    for p in data["prompts"]:
        where = f"{set_name}/{p.get('id')}"
        out.append(Prompt(set_name, str(p["id"]), str(p["prompt"]), _ids(p.get("acceptable_loras", []), where),
                          _ids(p.get("relevant_loras", []), where), _ids(p.get("acceptable_checkpoints", []), where),
                          str(p.get("kind", "")), str(p.get("note", ""))))
    return out


@dataclass
class Outcome:
    prompt: Prompt
    checkpoint: str | None  # record id of the picked checkpoint
    loras: list[str]  # record ids of the stacked LoRAs (or "?<name>" for a file not in the library)
    incompatible: list[str]

    @property
    def lora_hit(self) -> bool:
        return bool(self.prompt.acceptable_loras & set(self.loras))

    @property
    def wrong_loras(self) -> list[str]:
        ok = self.prompt.acceptable_loras | self.prompt.relevant_loras
        return [x for x in self.loras if x not in ok]

    @property
    def checkpoint_ok(self) -> bool:
        return self.checkpoint in self.prompt.acceptable_checkpoints


@dataclass
class Figures:
    prompts: int = 0
    with_lora: int = 0
    lora_hits: int = 0
    stacked: int = 0
    stacked_ok: int = 0
    without_lora: int = 0
    clean: int = 0
    with_checkpoint: int = 0
    checkpoint_ok: int = 0
    incompatible: int = 0

    def add(self, o: Outcome) -> None:
        self.prompts += 1
        self.stacked += len(o.loras)
        self.stacked_ok += len(o.loras) - len(o.wrong_loras)
        self.incompatible += len(o.incompatible)
        if o.prompt.acceptable_loras:
            self.with_lora += 1
            self.lora_hits += o.lora_hit
        else:
            self.without_lora += 1
            self.clean += not o.wrong_loras
        if o.prompt.acceptable_checkpoints:
            self.with_checkpoint += 1
            self.checkpoint_ok += o.checkpoint_ok


def _pct(n: int, total: int) -> str:
    return f"{100.0 * n / total:5.1f}% ({n}/{total})" if total else "    - (0/0)"


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    def figures(self, set_name: str | None = None, kind: str | None = None) -> Figures:
        f = Figures()
        for o in self.outcomes:
            if (set_name is None or o.prompt.set == set_name) and (kind is None or o.prompt.kind == kind):
                f.add(o)
        return f

    def _row(self, label: str, f: Figures) -> str:
        return (f"{label:22s} {f.prompts:7d}  {_pct(f.lora_hits, f.with_lora):18s} {_pct(f.stacked_ok, f.stacked):18s} "
                f"{_pct(f.clean, f.without_lora):18s} {_pct(f.checkpoint_ok, f.with_checkpoint):18s} {f.incompatible}")

    def text(self) -> str:
        lines = [f"{'set / kind':22s} {'prompts':>7s}  {'LoRA recall':18s} {'LoRA precision':18s} "
                 f"{'nothing to stack':18s} {'checkpoint':18s} incompatible"]
        for name in sorted({o.prompt.set for o in self.outcomes}):
            lines.append(self._row(name, self.figures(name)))
            for kind in sorted({o.prompt.kind for o in self.outcomes if o.prompt.set == name}):
                lines.append(self._row(f"  {kind or '-'}", self.figures(name, kind)))
        return "\n".join(lines)

    def failures(self, set_name: str) -> list[str]:
        """One line per prompt of `set_name` graded wrong, saying why."""
        lines = []
        for o in self.outcomes:
            if o.prompt.set != set_name:
                continue
            why = []
            if o.prompt.acceptable_loras and not o.lora_hit:
                why.append("no acceptable LoRA")
            if o.wrong_loras:
                why.append(f"stacked {o.wrong_loras}")
            if o.prompt.acceptable_checkpoints and not o.checkpoint_ok:
                why.append(f"checkpoint {o.checkpoint}")
            if o.incompatible:
                why.append(f"incompatible {o.incompatible}")
            if why:
                lines.append(f"[{o.prompt.set}] {o.prompt.id} ({o.prompt.kind}): {'; '.join(why)}  "
                             f"({o.prompt.prompt[:80]!r})")
        return lines


def evaluate(prompts: Sequence[Prompt], records: Sequence[Any] | None = None,
             workdir: str | os.PathLike[str] | None = None, embedder: Any = None) -> Report:
    """Plans for `prompts` over the library built from `records` (default: library/*.jsonl),
    through the index; with `embedder` (selector/meaning.py's Embedder), by words and meaning."""
    library = list(records) if records is not None else build.load_library()
    table = build._family_architectures()
    arch_of = {r.id: build.architecture_of(r.base_model, table) for r in library}
    with tempfile.TemporaryDirectory(prefix="ip-selection-", dir=workdir) as tmp:
        models = Path(tmp) / "models"
        names = build.build(models, library)
        index = ModelIndex(StaticModelPaths.from_models_dir(str(models)))
        index.scan()
        meaning = None
        if embedder is not None:
            meaning = Meaning(embedder, build_meaning(index.records("lora"), embedder, index, index.generation))
        kind_of = {r.id: r.kind for r in library}
        by_name = {(kind_of[rid], name): rid for rid, name in names.items()}
        report = Report()
        for p in prompts:
            plan = planner.build_plan({"prompt": p.prompt}, index, meaning=meaning)
            ckpt = plan.get("checkpoint") or {}
            ckpt_id = by_name.get(("checkpoint", str(ckpt.get("name", ""))))
            loras = [by_name.get(("lora", str(lo.get("name", "")))) or f"?{lo.get('name')}"
                     for lo in plan.get("loras", ())]
            ckpt_arch = arch_of.get(ckpt_id or "", "unknown")
            bad = [x for x in loras if ckpt_id is not None and arch_of.get(x, "unknown") != ckpt_arch]
            report.outcomes.append(Outcome(p, ckpt_id, loras, bad))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--set", choices=(*SETS, "all"), default="all")
    parser.add_argument("--failures", action="store_true", help="list every dev prompt graded wrong")
    parser.add_argument("--words-only", action="store_true", help="no retrieval by meaning, even when it is installed")
    args = parser.parse_args(argv)
    sets = SETS if args.set == "all" else (args.set,)
    prompts = [p for s in sets for p in load_prompts(s)]
    missing = unavailable()
    if missing and not args.words_only:
        sys.stdout.write(f"words only: {missing}\n")
    report = evaluate(prompts, embedder=None if args.words_only or missing else MiniLM())
    sys.stdout.write(report.text() + "\n")
    if args.failures and "dev" in sets:  # held-out prompts are not for tuning: their failures are never listed
        sys.stdout.write("\n".join(report.failures("dev")) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
