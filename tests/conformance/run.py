"""The real-world conformance runner: every case becomes a file in a temporary models/ tree, the
index reads it, and each record's `family` and `architecture` are compared with the case's truth.

    .venv/bin/python tests/conformance/run.py [--heldout] [--failures] [--all]

Without a flag it runs `cases/`; `--heldout` runs `heldout/` instead (the part nobody tunes the
detector on), `--all` both; `--failures` lists every failed case. The case format is described in
tests/conformance/README.md. Sibling files are loaded by path, never through sys.path.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from intelligent_pipeline.metadata import ModelIndex, StaticModelPaths
from intelligent_pipeline.metadata.records import FOLDER_KINDS

HERE = Path(__file__).resolve().parent
CASES_DIR = HERE / "cases"
HELDOUT_DIR = HERE / "heldout"
FAMILIES_PATH = HERE / "families.json"
FIXTURE_WRITER = HERE.parent / "fixtures" / "safetensors_files.py"

KINDS = tuple(FOLDER_KINDS)  # lora, checkpoint, diffusion_model, vae, text_encoder, embedding


def _load_writer() -> Callable[..., int]:
    spec = importlib.util.spec_from_file_location("_ip_conformance_safetensors_files", FIXTURE_WRITER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_sparse_safetensors


write_sparse_safetensors = _load_writer()


def load_families(path: Path = FAMILIES_PATH) -> dict[str, dict[str, Any]]:
    """{family id: {"architecture": ..., "names": [...]}} (see families.json's source_note)."""
    with open(path, encoding="utf-8") as f:
        return dict(json.load(f)["families"])


def _norm(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def family_resolver(families: Mapping[str, Mapping[str, Any]]) -> Callable[[Any], set[str]]:
    """A function from whatever a record carries in `family` to the family ids it may mean: the id
    itself, the CivitAI group name, or one of the other spellings families.json lists, compared
    case- and punctuation-blind. An empty or missing value means nothing (it is not "unknown")."""
    table: dict[str, set[str]] = defaultdict(set)
    for fid, info in families.items():
        table[_norm(fid)].add(fid)
        for name in info.get("names", ()):
            table[_norm(str(name))].add(fid)

    def resolve(value: Any) -> set[str]:
        if not isinstance(value, str) or not value.strip():
            return set()
        return set(table.get(_norm(value), ()))

    return resolve


# --- cases ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    file: str
    tensors: dict[str, tuple[str, tuple[int, ...]]]
    metadata: dict[str, str]
    sidecars: dict[str, Any]
    family: str
    architecture: str
    base_model: str | None
    format: str
    set: str  # "cases" or "heldout"
    group: str  # the case file's stem
    source: dict[str, str]


def load_case_file(path: Path, set_name: str) -> list[Case]:
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    out = []
    for raw in doc["cases"]:
        tensors = {str(k): (str(v[0]), tuple(int(s) for s in v[1])) for k, v in raw.get("tensors", {}).items()}
        truth = raw["truth"]
        out.append(Case(
            id=str(raw["id"]), kind=str(raw["kind"]), file=str(raw["file"]), tensors=tensors,
            metadata={str(k): str(v) for k, v in (raw.get("metadata") or {}).items()},
            sidecars=dict(raw.get("sidecars") or {}),
            family=str(truth["family"]), architecture=str(truth["architecture"]),
            base_model=truth.get("base_model"), format=str(raw.get("format") or "unspecified"),
            set=set_name, group=path.stem, source=dict(raw.get("source") or {}),
        ))
    return out


def load_cases(case_dirs: Iterable[str | os.PathLike[str]]) -> list[Case]:
    cases: list[Case] = []
    for d in case_dirs:
        folder = Path(d)
        set_name = folder.name
        for path in sorted(folder.glob("*.json")):
            cases.extend(load_case_file(path, set_name))
    return cases


# --- the report -----------------------------------------------------------------------------------

@dataclass
class Result:
    case: Case
    family: str | None  # what the record said (None: no record, or no family field)
    architecture: str | None
    family_ok: bool
    architecture_ok: bool
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.family_ok and self.architecture_ok


@dataclass
class Tally:
    total: int = 0
    ok: int = 0
    family_ok: int = 0
    architecture_ok: int = 0

    def add(self, r: Result) -> None:
        self.total += 1
        self.ok += r.ok
        self.family_ok += r.family_ok
        self.architecture_ok += r.architecture_ok


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)

    def _by(self, key: Callable[[Result], str]) -> dict[str, Tally]:
        tallies: dict[str, Tally] = defaultdict(Tally)
        for r in self.results:
            tallies[key(r)].add(r)
        return dict(sorted(tallies.items()))

    def overall(self) -> Tally:
        t = Tally()
        for r in self.results:
            t.add(r)
        return t

    def by_family(self) -> dict[str, Tally]:
        return self._by(lambda r: r.case.family)

    def by_format(self) -> dict[str, Tally]:
        return self._by(lambda r: r.case.format)

    def by_set(self) -> dict[str, Tally]:
        return self._by(lambda r: r.case.set)

    def by_kind(self) -> dict[str, Tally]:
        return self._by(lambda r: r.case.kind)

    def failures(self) -> list[Result]:
        return [r for r in self.results if not r.ok]

    def text(self, failures: bool = False) -> str:
        lines: list[str] = []

        def table(title: str, tallies: Mapping[str, Tally]) -> None:
            lines.append(f"\n{title:<28} {'cases':>5} {'both':>7} {'family':>7} {'arch':>7}")
            for name, t in tallies.items():
                lines.append(f"{name:<28} {t.total:>5} {_pct(t.ok, t.total):>7} {_pct(t.family_ok, t.total):>7} "
                             f"{_pct(t.architecture_ok, t.total):>7}")

        o = self.overall()
        lines.append(f"conformance: {o.total} cases, both right {o.ok} ({_pct(o.ok, o.total)}), family right "
                     f"{o.family_ok} ({_pct(o.family_ok, o.total)}), architecture right {o.architecture_ok} "
                     f"({_pct(o.architecture_ok, o.total)})")
        table("set", self.by_set())
        table("family", self.by_family())
        table("format", self.by_format())
        table("kind", self.by_kind())
        bad = self.failures()
        if failures and bad:
            lines.append(f"\nfailures ({len(bad)}):")
            for r in bad:
                what = []
                if not r.family_ok:
                    what.append(f"family {r.family!r} (truth {r.case.family!r})")
                if not r.architecture_ok:
                    what.append(f"architecture {r.architecture!r} (truth {r.case.architecture!r})")
                if r.error:
                    what.append(r.error)
                lines.append(f"  [{r.case.set}] {r.case.id}: " + "; ".join(what))
        return "\n".join(lines)


def _pct(n: int, total: int) -> str:
    return f"{100.0 * n / total:.1f}%" if total else "-"


# --- writing and indexing -------------------------------------------------------------------------

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]")


def _case_folder(case: Case) -> str:
    # One folder per case, so files with the same name in two cases never meet.
    return _SAFE_NAME.sub("_", case.id)


def write_case(models: Path, case: Case) -> str:
    """Write the case's model file (and sidecars next to it) under `models`; returns its loader name."""
    if case.kind not in FOLDER_KINDS:
        raise ValueError(f"case {case.id!r}: kind {case.kind!r} is not one of {KINDS}")
    folder = models / FOLDER_KINDS[case.kind] / _case_folder(case)
    folder.mkdir(parents=True, exist_ok=True)
    write_sparse_safetensors(str(folder / case.file), case.tensors, case.metadata or None)
    for name, content in case.sidecars.items():
        target = folder / name
        if target.resolve().parent != folder.resolve():
            raise ValueError(f"case {case.id!r}: sidecar {name!r} is not a plain file name")
        if isinstance(content, str):
            target.write_text(content, encoding="utf-8")
        else:
            target.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
    return f"{_case_folder(case)}/{case.file}"


def evaluate_cases(cases: Sequence[Case], workdir: str | os.PathLike[str] | None = None,
                   families: Mapping[str, Mapping[str, Any]] | None = None) -> Report:
    families = families if families is not None else load_families()
    resolve = family_resolver(families)
    with tempfile.TemporaryDirectory(prefix="ip-conformance-", dir=workdir) as tmp:
        models = Path(tmp) / "models"
        names = {case.id: write_case(models, case) for case in cases}
        index = ModelIndex(StaticModelPaths.from_models_dir(str(models)))
        index.scan()
        report = Report()
        for case in cases:
            record = index.get(case.kind, names[case.id])
            if record is None:
                report.results.append(Result(case, None, None, False, False, "no record"))
                continue
            fam = getattr(record, "family", None)
            arch = getattr(record, "architecture", None)
            report.results.append(Result(
                case, fam if isinstance(fam, str) else None, arch,
                family_ok=case.family in resolve(fam), architecture_ok=arch == case.architecture))
    return report


def evaluate(case_dirs: Iterable[str | os.PathLike[str]], workdir: str | os.PathLike[str] | None = None) -> Report:
    """Run every case in `case_dirs` (folders of case files; a folder's name is its set) and report."""
    return evaluate_cases(load_cases(case_dirs), workdir)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--heldout", action="store_true", help="run the held-out cases instead")
    parser.add_argument("--all", action="store_true", help="run both sets")
    parser.add_argument("--failures", action="store_true", help="list every failed case")
    args = parser.parse_args(argv)
    dirs = [CASES_DIR, HELDOUT_DIR] if args.all else [HELDOUT_DIR] if args.heldout else [CASES_DIR]
    report = evaluate(dirs)
    sys.stdout.write(report.text(failures=args.failures) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
