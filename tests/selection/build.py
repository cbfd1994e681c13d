"""The selection evaluation's library: real metadata records (library/*.jsonl) written as a models/
tree the index reads like a user's, file names scrambled.

Each record becomes a header-only safetensors file with the tensor names and shapes of its base
model's family (tests/fixtures/synthlib.py's sparse shapes) under a name made from a hash of its
id (nothing of the concept is in the file name), described the way users' files are: a
Lora-Manager, Civitai Helper, Stability Matrix, rgthree or A1111 sidecar, or none at all (then the
kohya header is all there is: its `ss_tag_frequency` holds the record's tags and trained words, as
a trainer writes the captions). Which format a record gets is decided by the hash of its id, so
the same record is always written the same way.

    .venv/bin/python tests/selection/build.py --out /tmp/selection-models

Sibling files are loaded by path, never through sys.path.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable, Iterator, Mapping

HERE = Path(__file__).resolve().parent
LIBRARY_DIR = HERE / "library"
SYNTHLIB = HERE.parent / "fixtures" / "synthlib.py"
FAMILIES_PATH = HERE.parent / "conformance" / "families.json"
SALT = "ip-selection-eval-1"

# synthlib writes sparse headers for these base models; every record's base model maps onto one
# of them by its family's architecture (families.json), or the record is left out of the library.
SHAPE_BASE = {"sd1": "SD 1.5", "sdxl": "SDXL 1.0", "flux": "Flux.1 D"}
# (formats, weight): how often each way of describing a file appears (the sparse library's mix)
SIDECAR_MIX = ((("lora_manager",), 40), (("civitai_info",), 15), (("stability_matrix",), 10),
               (("rgthree",), 5), (("a1111",), 10), (("lora_manager", "civitai_info"), 5), ((), 15))


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)  # (dataclasses look their module up there)
    spec.loader.exec_module(module)
    return sys.modules[name]


@dataclass(frozen=True)
class LibraryRecord:
    id: str  # the record's "id" ("<source>:<CivitAI model or version id>"), unique across the library
    kind: str  # "lora" | "checkpoint"
    data: Mapping[str, Any]  # the jsonl object as gathered (its "source" names where it came from)

    @property
    def base_model(self) -> str:
        return str(self.data.get("base_model") or "")


def load_library(directory: Path = LIBRARY_DIR) -> list[LibraryRecord]:
    """Every record of every library/*.jsonl file, in file and line order."""
    out: list[LibraryRecord] = []
    for path in sorted(directory.glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                data = json.loads(line)
                kind = {"LORA": "lora", "LoCon": "lora", "DoRA": "lora", "Checkpoint": "checkpoint"}.get(
                    str(data.get("type")), "")
                if kind:
                    out.append(LibraryRecord(str(data.get("id") or f"{path.stem}:{n}"), kind, data))
    return out


def _family_architectures(path: Path = FAMILIES_PATH) -> dict[str, str]:
    """base-model string (folded) -> contract architecture, from the conformance suite's families."""
    with open(path, encoding="utf-8") as f:
        families = json.load(f)["families"]
    out: dict[str, str] = {}
    for fid, fam in families.items():
        for name in [fid, *fam.get("names", ())]:
            out.setdefault(" ".join(str(name).lower().split()), fam["architecture"])
    return out


def architecture_of(base_model: str, table: Mapping[str, str] | None = None) -> str:
    """The contract architecture of a base-model string ("unknown" for one families.json lacks)."""
    table = table if table is not None else _family_architectures()
    return table.get(" ".join(base_model.lower().split()), "unknown")


def _digest(record_id: str) -> str:
    return hashlib.sha256(f"{SALT}:{record_id}".encode()).hexdigest()


def file_name(record: LibraryRecord) -> str:
    """The loader name the record's file gets: a scrambled name in one of 16 folders."""
    h = _digest(record.id)
    return f"{h[:1]}/{h[1:13]}.safetensors"


def _formats(record: LibraryRecord, synth: ModuleType) -> tuple[str, ...]:
    h = int(_digest(record.id)[13:21], 16)
    mix = [f for f, w in SIDECAR_MIX for _ in range(w)]
    formats = mix[h % len(mix)]
    if "a1111" in formats and record.base_model not in synth.FAMILIES:
        formats = ("lora_manager",)  # A1111's "sd version" has no spelling for this base model
    return formats


def _plain_text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _words(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(dict.fromkeys(w.strip() for w in value if isinstance(w, str) and w.strip()))


def card_of(record: LibraryRecord, synth: ModuleType) -> Any:
    """The synthlib Card for a record (its own words; only the file name and ids are ours)."""
    d = record.data
    h = _digest(record.id)
    folder = "loras" if record.kind == "lora" else "checkpoints"
    tags = tuple(t.lower() for t in _words(d.get("tags")))
    trained = _words(d.get("trained_words"))
    formats = _formats(record, synth) if record.kind == "lora" else ("lora_manager",)
    model_id = d.get("model_id") if isinstance(d.get("model_id"), int) else 0
    version_id = d.get("version_id") if isinstance(d.get("version_id"), int) else 0
    # a file with no sidecar keeps what a trainer writes into the header: the captions' tags
    training = synth.Training(f"10_{h[:6]}", {t: 100 - i for i, t in enumerate((*trained, *tags))}, images=40) \
        if record.kind == "lora" else None
    return synth.Card(
        path=f"{folder}/{file_name(record)}", kind=record.kind, recipe="sparse",
        name=_plain_text(d.get("name")) or h[:8], version=_plain_text(d.get("version_name")) or "v1.0",
        base_model=record.base_model, description=_plain_text(d.get("description")), tags=tags,
        trained_words=trained, sidecars=formats, model_id=model_id if formats else 0,
        version_id=version_id if formats else 0,
        downloads=d.get("downloads") if isinstance(d.get("downloads"), int) else 0,
        thumbs_up=d.get("likes") if isinstance(d.get("likes"), int) else 0, training=training)


def usable(records: Iterable[LibraryRecord], table: Mapping[str, str] | None = None) -> Iterator[LibraryRecord]:
    """The records whose base model has a family we can write a header for."""
    table = table if table is not None else _family_architectures()
    for r in records:
        if architecture_of(r.base_model, table) in SHAPE_BASE:
            yield r


def build(out: Path, records: Iterable[LibraryRecord] | None = None) -> dict[str, str]:
    """Write the library under `out` (a models/ folder); returns {record id: loader name}."""
    synth = _load(SYNTHLIB, "_ip_selection_synthlib")
    table = _family_architectures()
    names: dict[str, str] = {}
    for record in usable(records if records is not None else load_library(), table):
        card = card_of(record, synth)
        base = SHAPE_BASE[architecture_of(record.base_model, table)]
        rank = (4, 8, 16, 32)[int(_digest(record.id)[21:23], 16) % 4]
        shapes = synth._sparse_lora_shapes(base, rank) if record.kind == "lora" else \
            synth._sparse_checkpoint_shapes(base)
        path = out / card.path
        path.parent.mkdir(parents=True, exist_ok=True)
        head, data_size = synth.safetensors_files.header_bytes(shapes, synth.header_metadata(card))
        with open(path, "wb") as f:
            f.write(head)
            f.truncate(len(head) + data_size)
        facts = synth.FileFacts(path.resolve(), len(head) + data_size, "")
        for name, data in synth.render_sidecars(card, facts, compact=True).items():
            path.with_name(name).write_bytes(data)
        names[record.id] = file_name(record)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", required=True, type=Path, help="the models/ folder to write")
    args = parser.parse_args(argv)
    names = build(args.out)
    print(f"{len(names)} models written under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
