"""Build one ModelRecord from a model file, its header and its sidecars.

This is the only place that opens model files, and only to read a header: safetensors and
GGUF headers are plain data. Pickles (.ckpt, .pt, .pth, .bin) can run code when loaded, so
they are indexed by name and sidecars alone and never opened.
"""
from __future__ import annotations

import logging
import os
from typing import Any, NamedTuple

from .architecture import Detection, detect, detect_gguf
from .gguf_header import read_gguf_metadata
from .merge import merge
from .paths import inside_root
from .records import ModelRecord
from .safe_open import printable
from .safetensors_header import HeaderError, read_header
from .sidecars import HEADER_SOURCE, Facts, read_sidecar, trainer_facts

log = logging.getLogger(__name__)

SAFETENSORS_EXTENSIONS = (".safetensors", ".sft")
GGUF_EXTENSIONS = (".gguf",)
PICKLE_EXTENSIONS = (".ckpt", ".pt", ".pth", ".bin")
MODEL_EXTENSIONS = frozenset(SAFETENSORS_EXTENSIONS + GGUF_EXTENSIONS + PICKLE_EXTENSIONS)

PICKLE_PROBLEM = "pickle file: not opened (architecture from sidecars only)"

# (path, size, mtime_ns, signature): what tells whether a model file, its sidecars or its preview changed.
Fingerprint = tuple[str, int, int, str]


def signature(sidecars: tuple[tuple[str, str, int], ...], preview: str | None) -> str:
    """The sidecars seen and the preview, as one string (NUL-separated: no file name holds a NUL)."""
    parts = [f"{source}\0{name}\0{mtime_ns}" for source, name, mtime_ns in sidecars]
    if preview is not None:
        parts.append("\0" + preview)
    return "\0\0".join(parts)


class ModelFile(NamedTuple):
    """A model file as the directory walk saw it: enough to tell whether it changed, and to read it.
    (A named tuple: the walk makes one per file of a 50k library on every rescan.)"""

    kind: str
    name: str  # loader name: relative to the root, "/" separators
    root: str
    path: str
    size: int
    mtime_ns: int
    sidecars: tuple[tuple[str, str, int], ...] = ()  # (source, file name in the same folder, mtime_ns)
    preview: str | None = None  # relative to the root, "/" separators
    sig: str | None = None  # signature(sidecars, preview), when the walk computed it already

    @property
    def fingerprint(self) -> Fingerprint:
        """Changes whenever the file, one of its sidecars or its preview changes."""
        sig = self.sig if self.sig is not None else signature(self.sidecars, self.preview)
        return (self.path, self.size, self.mtime_ns, sig)

    @property
    def stem(self) -> str:
        return os.path.splitext(self.name.rsplit("/", 1)[-1])[0]


def build_record(file: ModelFile) -> ModelRecord:
    """The record for `file`. Never raises: what cannot be read becomes a problem string."""
    facts: list[Facts] = []
    sources: list[str] = []
    problems: list[str] = []
    folder = os.path.dirname(file.path)
    for source, file_name, _ in file.sidecars:
        f = read_sidecar(source, os.path.join(folder, file_name))
        if f is None:
            continue
        facts.append(f)
        if not f.problems or f.fields:  # a sidecar with one bad field still told us the rest
            sources.append(source)

    detection, header_facts, header_ok = _read_model_header(file, problems)
    if header_facts is not None:
        facts.append(header_facts)
    if header_ok:
        sources.append(HEADER_SOURCE)
    try:
        file.name.encode("utf-8")
    except UnicodeEncodeError:
        log.warning("%r: file name is not valid UTF-8 (ComfyUI may not list it)", file.path)
        problems.append("file name is not valid UTF-8")

    values = merge(facts, detection, kind=file.kind, title=file.stem)
    values["problems"] = values["problems"] + tuple(problems)
    preview = file.preview or _preview_from_url(file, values["extra"].get("preview_url"))
    return ModelRecord(name=file.name, kind=file.kind, path=file.path, size=file.size, mtime=file.mtime_ns / 1e9,
                       sources=tuple(sources), preview=preview, **values)


def _read_model_header(file: ModelFile, problems: list[str]) -> tuple[Detection | None, Facts | None, bool]:
    """(detection, trainer facts, header read) for the file; appends problems."""
    ext = os.path.splitext(file.path)[1].lower()
    if ext in PICKLE_EXTENSIONS:
        log.info("%r: pickle file, indexed by name only (never unpickled)", file.path)
        problems.append(PICKLE_PROBLEM)
        return None, None, False
    try:
        if ext in GGUF_EXTENSIONS:
            return detect_gguf(file.kind, read_gguf_metadata(file.path)), None, True
        header = read_header(file.path)
    except HeaderError as e:
        message = printable(str(e), 300)
        log.warning("%r: unreadable header: %s", file.path, message)
        problems.append(f"unreadable header: {message}")
        return None, None, False
    if header.expected_file_size > file.size:
        log.warning("%r: incomplete file (%d of %d bytes)", file.path, file.size, header.expected_file_size)
        problems.append(f"incomplete file: {file.size} of {header.expected_file_size} bytes "
                        "(interrupted download?); ComfyUI cannot load it")
    detection = detect(file.kind, header.tensors, header.metadata)
    looks_like = detection.extra.get("looks_like")
    if looks_like:
        problems.append(f"looks like a {looks_like}, not a {file.kind.replace('_', ' ')}")
    if not header.metadata:
        return detection, None, True
    facts = trainer_facts(header.metadata)
    if facts.problems:
        log.warning("%r: parts of the trainer metadata skipped: %s", file.path, "; ".join(facts.problems))
    return detection, facts, True


def _preview_from_url(file: ModelFile, url: Any) -> str | None:
    """Lora-Manager's `preview_url` when it is a file inside the model's root (it may be stale)."""
    if not isinstance(url, str):
        return None
    rel = inside_root(file.root, url)
    if rel is None or not os.path.isfile(url):
        return None
    return rel
