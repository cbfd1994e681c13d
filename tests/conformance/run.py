"""The real-world conformance runner: every case becomes a file in a temporary models/ tree, the
index reads it, and each record's `family` and `architecture`, and every optional field the case's
truth states (`base_model`, `trigger_words`, `tags`, `preferred_weight`, `strength_range`,
`clip_strength`, `excluded`), are compared with that truth. A case is right only when all are.

    .venv/bin/python tests/conformance/run.py [--heldout] [--failures] [--all]

Without a flag it runs `cases/`; `--heldout` runs `heldout/` instead (the part nobody tunes the
detector on), `--all` both; `--failures` lists every failed case. The case format is described in
tests/conformance/README.md. Sibling files are loaded by path, never through sys.path.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
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

# The truth fields a case may state besides `family` and `architecture`, in report order. A field a
# case does not state is not asserted (README.md, "Optional truth fields", says how each compares).
OPTIONAL_FIELDS = ("base_model", "trigger_words", "tags", "preferred_weight", "strength_range", "clip_strength",
                   "excluded")
FIELDS = ("family", "architecture") + OPTIONAL_FIELDS
FLOAT_TOLERANCE = 1e-6


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

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_word_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(w, str) and w.strip() for w in value)


# What a stated value must look like; `None` is allowed where it means "must be unset".
_TRUTH_TYPES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "base_model": ("a non-empty string", lambda v: isinstance(v, str) and bool(v.strip())),
    "trigger_words": ("a list of non-empty strings", _is_word_list),
    "tags": ("a list of non-empty strings", _is_word_list),
    "preferred_weight": ("a number or null", lambda v: v is None or _is_number(v)),
    "strength_range": ("[min, max] with min <= max, or null", lambda v: v is None or (
        isinstance(v, list) and len(v) == 2 and all(map(_is_number, v)) and v[0] <= v[1])),
    "clip_strength": ("a number or null", lambda v: v is None or _is_number(v)),
    "excluded": ("true or false", lambda v: isinstance(v, bool)),
}


def truth_problems(truth: Mapping[str, Any]) -> list[str]:
    """Why a case's `truth` cannot be judged: a missing or non-string family or architecture, a field
    the runner does not know, or an optional field of the wrong type. Empty when it is well-formed."""
    problems = [f"{key} must be a non-empty string" for key in ("family", "architecture")
                if not isinstance(truth.get(key), str) or not truth[key]]
    for key, value in truth.items():
        if key in ("family", "architecture"):
            continue
        if key not in _TRUTH_TYPES:
            problems.append(f"unknown truth field {key!r} (known: {', '.join(FIELDS)})")
        elif not _TRUTH_TYPES[key][1](value):
            problems.append(f"{key} must be {_TRUTH_TYPES[key][0]}, not {value!r}")
    return problems


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
    # The optional truth fields other than base_model, as the case states them (OPTIONAL_FIELDS).
    expected: dict[str, Any] = field(default_factory=dict)

    def assertions(self) -> dict[str, Any]:
        """Every optional field this case asserts, in OPTIONAL_FIELDS order, with its stated value."""
        stated = dict(self.expected)
        if self.base_model is not None:
            stated["base_model"] = self.base_model
        return {key: stated[key] for key in OPTIONAL_FIELDS if key in stated}


def load_case_file(path: Path, set_name: str) -> list[Case]:
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    out = []
    for raw in doc["cases"]:
        tensors = {str(k): (str(v[0]), tuple(int(s) for s in v[1])) for k, v in raw.get("tensors", {}).items()}
        truth = raw["truth"]
        problems = truth_problems(truth) if isinstance(truth, dict) else ["not a JSON object"]
        if problems:
            raise ValueError(f"{path.name}: case {raw.get('id')!r}: truth: " + "; ".join(problems))
        out.append(Case(
            id=str(raw["id"]), kind=str(raw["kind"]), file=str(raw["file"]), tensors=tensors,
            metadata={str(k): str(v) for k, v in (raw.get("metadata") or {}).items()},
            sidecars=dict(raw.get("sidecars") or {}),
            family=str(truth["family"]), architecture=str(truth["architecture"]),
            base_model=truth.get("base_model"), format=str(raw.get("format") or "unspecified"),
            set=set_name, group=path.stem, source=dict(raw.get("source") or {}),
            expected={k: v for k, v in truth.items() if k in OPTIONAL_FIELDS and k != "base_model"},
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


# --- comparing one optional field -----------------------------------------------------------------

def _unescape_brackets(text: str) -> str:
    return text.replace("\\(", "(").replace("\\)", ")").replace("\\[", "[").replace("\\]", "]")


def word_key(word: str) -> str:
    """A trigger word as a prompt reads it: `\\(` and `(` (A1111's and ComfyUI's escape of a literal
    bracket, as in the Danbooru tag `star_\\(sky\\)`) are the same word, and so are runs of spaces;
    case counts (the writers keep the author's spelling, and T5 or LLM text encoders see it)."""
    return " ".join(_unescape_brackets(word).split())


def tag_key(tag: str) -> str:
    """A tag as the writers mean it: a case-less label (CivitAI lower-cases its tags; ModelRecord.tags
    are lower-case), so compared case-blind, bracket escapes and runs of spaces as for words."""
    return word_key(tag).casefold()


def _base_model_key(value: str) -> str:
    return " ".join(value.split()).casefold()


def _close(a: Any, b: Any) -> bool:
    return _is_number(a) and _is_number(b) and abs(float(a) - float(b)) <= FLOAT_TOLERANCE


def record_value(record: Any, name: str) -> Any:
    """What `record` says for one field; clip strength lives in `extra["clip_strength"]` (the
    Lora-Manager reader puts it there) unless the record grows a field of that name."""
    if name == "clip_strength" and not hasattr(record, "clip_strength"):
        extra = getattr(record, "extra", None)
        return extra.get("clip_strength") if isinstance(extra, Mapping) else None
    return getattr(record, name, None)


def field_matches(name: str, expected: Any, got: Any) -> bool:
    """Whether a record's value `got` satisfies the truth's `expected` for the optional field `name`
    (README.md, "Optional truth fields")."""
    if name == "base_model":
        return isinstance(got, str) and _base_model_key(got) == _base_model_key(expected)
    if name in ("trigger_words", "tags"):
        key = word_key if name == "trigger_words" else tag_key
        if isinstance(got, str) or not isinstance(got, (list, tuple)) or not all(isinstance(w, str) for w in got):
            return False
        return {key(w) for w in got} == {key(w) for w in expected}
    if name in ("preferred_weight", "clip_strength"):
        return got is None if expected is None else _close(got, expected)
    if name == "strength_range":
        if expected is None:
            return got is None
        return isinstance(got, (list, tuple)) and len(got) == 2 and all(map(_close, got, expected))
    if name == "excluded":
        return isinstance(got, bool) and got is expected
    raise ValueError(f"unknown truth field {name!r}")


@dataclass(frozen=True)
class FieldResult:
    name: str
    expected: Any  # the truth's value
    got: Any  # the record's value (None when there is no record)
    ok: bool

    def describe(self) -> str:
        """One short line: what was expected and what the record said."""
        if self.name in ("trigger_words", "tags") and isinstance(self.got, (list, tuple)):
            key = word_key if self.name == "trigger_words" else tag_key
            want = {key(w): w for w in self.expected}
            have = {key(w): w for w in self.got if isinstance(w, str)}
            missing = [w for k, w in want.items() if k not in have]
            unexpected = [w for k, w in have.items() if k not in want]
            return (f"{self.name}: expected {_short(sorted(self.expected))}, got {_short(sorted(have.values()))}"
                    f" (missing {_short(missing)}, unexpected {_short(unexpected)})")
        return f"{self.name}: expected {_short(self.expected)}, got {_short(self.got)}"


def _short(value: Any, limit: int = 80) -> str:
    text = repr(list(value) if isinstance(value, tuple) else value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def compare_fields(case: Case, record: Any) -> dict[str, FieldResult]:
    """One FieldResult per optional field the case asserts; with no record, each one fails."""
    out: dict[str, FieldResult] = {}
    for name, expected in case.assertions().items():
        got = record_value(record, name) if record is not None else None
        ok = record is not None and field_matches(name, expected, got)
        out[name] = FieldResult(name, expected, got, ok)
    return out


# --- the report -----------------------------------------------------------------------------------

@dataclass
class Result:
    case: Case
    family: str | None  # what the record said (None: no record, or no family field)
    architecture: str | None
    family_ok: bool
    architecture_ok: bool
    error: str | None = None
    fields: dict[str, FieldResult] = field(default_factory=dict)  # the optional fields the case asserts

    @property
    def ok(self) -> bool:
        """Family, architecture and every field the truth states are right."""
        return self.family_ok and self.architecture_ok and all(f.ok for f in self.fields.values())

    def field_ok(self) -> dict[str, bool]:
        """Every field this case asserts (family and architecture first) -> whether it is right."""
        return {"family": self.family_ok, "architecture": self.architecture_ok,
                **{name: f.ok for name, f in self.fields.items()}}

    def failed_fields(self) -> list[str]:
        """One short line per wrong field: what the truth says and what the record said."""
        lines = []
        if not self.family_ok:
            lines.append(f"family: expected {self.case.family!r}, got {self.family!r}")
        if not self.architecture_ok:
            lines.append(f"architecture: expected {self.case.architecture!r}, got {self.architecture!r}")
        lines.extend(f.describe() for f in self.fields.values() if not f.ok)
        return lines


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
class FieldTally:
    """One field: how many cases assert it and how many of those the record gets right."""

    asserted: int = 0
    ok: int = 0


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

    def by_field(self) -> dict[str, FieldTally]:
        """Per field (FIELDS order; a field no case asserts is left out): cases asserting it, right."""
        tallies = {name: FieldTally() for name in FIELDS}
        for r in self.results:
            for name, ok in r.field_ok().items():
                tallies[name].asserted += 1
                tallies[name].ok += ok
        return {name: t for name, t in tallies.items() if t.asserted}

    def failures(self) -> list[Result]:
        return [r for r in self.results if not r.ok]

    def text(self, failures: bool = False) -> str:
        lines: list[str] = []

        def table(title: str, tallies: Mapping[str, Tally]) -> None:
            lines.append(f"\n{title:<28} {'cases':>5} {'right':>7} {'family':>7} {'arch':>7}")
            for name, t in tallies.items():
                lines.append(f"{name:<28} {t.total:>5} {_pct(t.ok, t.total):>7} {_pct(t.family_ok, t.total):>7} "
                             f"{_pct(t.architecture_ok, t.total):>7}")

        o = self.overall()
        lines.append(f"conformance: {o.total} cases, right {o.ok} ({_pct(o.ok, o.total)}; family, architecture "
                     f"and every stated field), family right "
                     f"{o.family_ok} ({_pct(o.family_ok, o.total)}), architecture right {o.architecture_ok} "
                     f"({_pct(o.architecture_ok, o.total)})")
        table("set", self.by_set())
        table("family", self.by_family())
        table("format", self.by_format())
        table("kind", self.by_kind())
        lines.append(f"\n{'field':<28} {'cases':>5} {'right':>7} {'%':>7}")
        for name, ft in self.by_field().items():
            lines.append(f"{name:<28} {ft.asserted:>5} {ft.ok:>7} {_pct(ft.ok, ft.asserted):>7}")
        bad = self.failures()
        if failures and bad:
            lines.append(f"\nfailures ({len(bad)}):")
            for r in bad:
                head = f"  [{r.case.set}] {r.case.id}: "
                if r.error:
                    lines.append(head + r.error)
                    continue
                lines.extend(head + what for what in r.failed_fields())
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
                report.results.append(Result(case, None, None, False, False, "no record",
                                             fields=compare_fields(case, None)))
                continue
            fam = getattr(record, "family", None)
            arch = getattr(record, "architecture", None)
            report.results.append(Result(
                case, fam if isinstance(fam, str) else None, arch,
                family_ok=case.family in resolve(fam), architecture_ok=arch == case.architecture,
                fields=compare_fields(case, record)))
    return report


def evaluate(case_dirs: Iterable[str | os.PathLike[str]], workdir: str | os.PathLike[str] | None = None) -> Report:
    """Run every case in `case_dirs` (folders of case files; a folder's name is its set) and report:
    per case, family, architecture and each optional truth field it states (Result.fields), and
    per field, how many cases assert it and how many are right (Report.by_field)."""
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
