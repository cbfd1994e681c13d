"""A library of hostile files next to good models (issue 5): the scan finishes promptly, every good
model is indexed with the right facts, and each bad file costs exactly one escaped log line.

Each pathology is a builder that adds its bad file(s) next to a victim model and says how to recognise
its log line and what the victim's record must still hold. They run one by one (one log line each) and
all together in one library. Scans run in a daemon thread joined with a timeout, so a hang fails the
test instead of wedging the run.
"""
from __future__ import annotations

import json
import logging
import os
import struct
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from intelligent_pipeline.metadata import ModelIndex, ModelRecord, ScanResult, sidecars

HAS_FIFO = hasattr(os, "mkfifo")
HAS_DEV_ZERO = os.path.exists("/dev/zero")
POSIX_NAMES = os.name != "nt"  # symlinks without privileges, any byte but "/" and NUL in a name
needs_fifo = pytest.mark.skipif(not (HAS_FIFO and POSIX_NAMES), reason="no os.mkfifo on this platform")
needs_device = pytest.mark.skipif(not (HAS_DEV_ZERO and POSIX_NAMES), reason="no /dev/zero or no symlinks")
needs_posix = pytest.mark.skipif(not POSIX_NAMES, reason="symlinks and such names need a POSIX file system")

SCAN_TIMEOUT_S = 30.0


class Hooks:
    """An event sink that runs callbacks when the index starts reading files (after its walk)."""

    def __init__(self) -> None:
        self.before_read: list[Callable[[], None]] = []

    def send(self, event: str, data: dict[str, Any]) -> None:
        if data.get("done") == 0 and str(data.get("message", "")).startswith("reading"):
            for hook in self.before_read:
                hook()


def scan(index: ModelIndex, timeout: float = SCAN_TIMEOUT_S) -> ScanResult:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = index.scan()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            box["error"] = e

    t = threading.Thread(target=run, daemon=True, name="hostile-scan")
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"the scan is still running after {timeout}s (blocked on a file?)"
    assert "error" not in box, box.get("error")
    return box["result"]


def pack_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("intelligent_pipeline") and r.levelno >= logging.WARNING]


def assert_one_line_each(caplog: pytest.LogCaptureFixture) -> None:
    for r in caplog.records:
        if r.name.startswith("intelligent_pipeline"):
            message = r.getMessage()
            assert "\n" not in message and "\r" not in message, f"multi-line log record: {message!r}"
            assert r.exc_info is None and r.stack_info is None, f"traceback logged with {message!r}"


def write_raw_safetensors(path: Path, body: bytes, length: int | None = None) -> None:
    path.write_bytes(struct.pack("<Q", len(body) if length is None else length) + body)


def gguf_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def gguf_file(kv: bytes, n_kv: int) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, 0, n_kv) + kv


def nested_array_gguf(depth: int) -> bytes:
    """A key whose value is an array of arrays of arrays ... `depth` levels deep."""
    kv = gguf_string("general.name") + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * depth
    kv += struct.pack("<IQ", 4, 0)
    return gguf_file(kv, 1)


def flux_gguf() -> bytes:
    return gguf_file(gguf_string("general.architecture") + struct.pack("<I", 8) + gguf_string("flux"), 1)


@dataclass
class Case:
    """What a pathology leaves behind: the token of its one log line (None: it logs nothing) and a
    check of the records (the victim's facts survive)."""

    token: str | None
    check: Callable[[ModelIndex], None]
    raced: bool = False  # the file changes during the first scan, so the rescan sees a new file


def victim(lib: Any, kit: Any, stem: str, folder: str = "loras") -> Path:
    return lib.model(folder, f"{stem}.safetensors", kit.SD1_LORA_KOHYA, {"ss_output_name": stem})


def header_survives(stem: str, problem: str | None = None) -> Callable[[ModelIndex], None]:
    def check(index: ModelIndex) -> None:
        rec = index.get("lora", f"{stem}.safetensors")
        assert rec is not None, f"{stem} lost"
        assert rec.architecture == "sd1" and "header" in rec.sources, rec
        assert rec.title == stem
        if problem is not None:
            assert any(problem in p for p in rec.problems), rec.problems
    return check


def not_indexed(kind: str, name: str) -> Callable[[ModelIndex], None]:
    def check(index: ModelIndex) -> None:
        assert index.get(kind, name) is None
    return check


# --- the pathologies ---------------------------------------------------------------------------------

def fifo_sidecar(lib: Any, kit: Any, hooks: Hooks) -> Case:
    path = victim(lib, kit, "fifo_sidecar")
    os.mkfifo(path.parent / "fifo_sidecar.metadata.json")
    return Case("fifo_sidecar.metadata.json", header_survives("fifo_sidecar", "FIFO"))


def device_sidecar(lib: Any, kit: Any, hooks: Hooks) -> Case:
    path = victim(lib, kit, "zero_sidecar")
    os.symlink("/dev/zero", path.parent / "zero_sidecar.civitai.info")
    return Case("zero_sidecar.civitai.info", header_survives("zero_sidecar", "device"))


def folder_sidecar(lib: Any, kit: Any, hooks: Hooks) -> Case:
    path = victim(lib, kit, "dir_sidecar")
    (path.parent / "dir_sidecar.cm-info.json").mkdir()
    return Case("dir_sidecar.cm-info.json", header_survives("dir_sidecar", "folder"))


def broken_link_sidecar(lib: Any, kit: Any, hooks: Hooks) -> Case:
    path = victim(lib, kit, "broken_sidecar")
    os.symlink(path.parent / "gone.json", path.parent / "broken_sidecar.json")
    return Case("broken_sidecar.json", header_survives("broken_sidecar", "cannot read"))


def self_link_sidecar(lib: Any, kit: Any, hooks: Hooks) -> Case:
    path = victim(lib, kit, "selflink_sidecar")
    link = path.parent / "selflink_sidecar.safetensors.rgthree-info.json"
    os.symlink(link, link)
    return Case("selflink_sidecar.safetensors.rgthree-info.json", header_survives("selflink_sidecar", "cannot read"))


def oversized_sidecar(lib: Any, kit: Any, hooks: Hooks) -> Case:
    path = victim(lib, kit, "big_sidecar")
    filler = "x" * (sidecars.MAX_SIDECAR_BYTES + 10)
    (path.parent / "big_sidecar.metadata.json").write_text(json.dumps({"model_name": "Big", "notes": filler}))
    return Case("big_sidecar.metadata.json", header_survives("big_sidecar", "too large"))


def _json_sidecar(stem: str, suffix: str, text: str, problem: str) -> Callable[[Any, Any, Hooks], Case]:
    def build(lib: Any, kit: Any, hooks: Hooks) -> Case:
        path = victim(lib, kit, stem)
        (path.parent / f"{stem}{suffix}").write_text(text, encoding="utf-8")
        return Case(f"{stem}{suffix}", header_survives(stem, problem))
    build.__name__ = stem
    return build


list_sidecar = _json_sidecar("list_sidecar", ".metadata.json", "[1, 2]", "not a JSON object")
null_sidecar = _json_sidecar("null_sidecar", ".civitai.info", "null", "not a JSON object")
string_sidecar = _json_sidecar("string_sidecar", ".cm-info.json", '"text"', "not a JSON object")
broken_json_sidecar = _json_sidecar("badjson_sidecar", ".metadata.json", '{"model_name": ', "not valid JSON")
nested_json_sidecar = _json_sidecar("nested_sidecar", ".civitai.info", "[" * 100_000 + "]" * 100_000,
                                    "not valid JSON")
binary_sidecar = _json_sidecar("binary_sidecar", ".metadata.json", "\x00\x01\x02\ufffd", "not valid JSON")


def pathological_usage_tips(lib: Any, kit: Any, hooks: Hooks) -> Case:
    path = victim(lib, kit, "tips")
    payload = {"model_name": "Tips kept", "tags": ["kept"], "usage_tips": "[" * 50_000 + "]" * 50_000,
               "modelDescription": "<p>still here</p>"}
    (path.parent / "tips.metadata.json").write_text(json.dumps(payload), encoding="utf-8")

    def check(index: ModelIndex) -> None:
        rec = index.get("lora", "tips.safetensors")
        assert rec is not None and rec.architecture == "sd1"
        assert (rec.title, rec.tags, rec.description) == ("Tips kept", ("kept",), "still here")
        assert "lora-manager" in rec.sources and "header" in rec.sources
        assert any("usage_tips" in p for p in rec.problems), rec.problems
    return Case("tips.metadata.json", check)


def hostile_description(lib: Any, kit: Any, hooks: Hooks) -> Case:
    path = victim(lib, kit, "html")
    payload = {"model_name": "Html", "modelDescription": "<" * 300_000}
    (path.parent / "html.metadata.json").write_text(json.dumps(payload), encoding="utf-8")

    def check(index: ModelIndex) -> None:
        rec = index.get("lora", "html.safetensors")
        assert rec is not None and rec.title == "Html" and rec.problems == ()
        assert rec.description.startswith("<<<") and len(rec.description) <= sidecars.DESCRIPTION_CHARS + 1
    return Case(None, check)


def fifo_model(lib: Any, kit: Any, hooks: Hooks) -> Case:
    os.mkfifo(lib.folder("loras") / "fifo_model.safetensors")
    return Case("fifo_model.safetensors", not_indexed("lora", "fifo_model.safetensors"))


def device_model(lib: Any, kit: Any, hooks: Hooks) -> Case:
    os.symlink("/dev/zero", lib.folder("checkpoints") / "zero_model.safetensors")
    return Case("zero_model.safetensors", not_indexed("checkpoint", "zero_model.safetensors"))


def broken_link_model(lib: Any, kit: Any, hooks: Hooks) -> Case:
    os.symlink(lib.folder("loras") / "missing_target", lib.folder("loras") / "dangling_model.safetensors")
    return Case("dangling_model.safetensors", not_indexed("lora", "dangling_model.safetensors"))


def self_link_model(lib: Any, kit: Any, hooks: Hooks) -> Case:
    link = lib.folder("loras") / "selflink_model.safetensors"
    os.symlink(link, link)
    return Case("selflink_model.safetensors", not_indexed("lora", "selflink_model.safetensors"))


def folder_named_like_a_model(lib: Any, kit: Any, hooks: Hooks) -> Case:
    lib.model("loras", "folder.safetensors/inner.safetensors", kit.SDXL_LORA_KOHYA)

    def check(index: ModelIndex) -> None:
        assert index.get("lora", "folder.safetensors") is None
        inner = index.get("lora", "folder.safetensors/inner.safetensors")
        assert inner is not None and inner.architecture == "sdxl"
    return Case(None, check)


def symlink_loops(lib: Any, kit: Any, hooks: Hooks) -> Case:
    loras = lib.folder("loras")
    lib.model("loras", "loop/a/b/in_loop.safetensors", kit.SD1_LORA_KOHYA)
    os.symlink(loras / "loop", loras / "loop" / "a" / "b" / "up_two")  # two levels up
    (loras / "loop" / "a" / "b" / "c").mkdir()
    os.symlink(loras / "loop" / "a", loras / "loop" / "a" / "b" / "c" / "up_two_again")  # three levels deep
    (loras / "p").mkdir()
    (loras / "q").mkdir()
    os.symlink(loras / "q", loras / "p" / "to_q")  # p -> q -> p
    os.symlink(loras / "p", loras / "q" / "to_p")

    def check(index: ModelIndex) -> None:
        names = [r.name for r in index.records("lora") if r.name.endswith("in_loop.safetensors")]
        assert names == ["loop/a/b/in_loop.safetensors"]  # once, not once per way round the loop
    return Case(None, check)


def newline_name_with_bad_header(lib: Any, kit: Any, hooks: Hooks) -> Case:
    name = "x\nERROR fake line.safetensors"
    write_raw_safetensors(lib.folder("loras") / name, b"not json at all!")

    def check(index: ModelIndex) -> None:
        rec = index.get("lora", name)
        assert rec is not None and rec.problems[0].startswith("unreadable header")
    return Case("ERROR fake line", check)


def newline_name_with_fifo_sidecar(lib: Any, kit: Any, hooks: Hooks) -> Case:
    stem = "y\nERROR forged sidecar"
    lib.model("loras", f"{stem}.safetensors", kit.SD1_LORA_KOHYA)
    os.mkfifo(lib.folder("loras") / f"{stem}.metadata.json")

    def check(index: ModelIndex) -> None:
        rec = index.get("lora", f"{stem}.safetensors")
        assert rec is not None and rec.architecture == "sd1" and any("FIFO" in p for p in rec.problems)
    return Case("ERROR forged sidecar", check)


def lone_surrogate_name(lib: Any, kit: Any, hooks: Hooks) -> Case:
    name = "badsurrogate\udcff.safetensors"  # the byte 0xff: not UTF-8
    try:
        lib.model("loras", name, kit.SD1_LORA_KOHYA)
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")

    def check(index: ModelIndex) -> None:
        rec = index.get("lora", name)
        assert rec is not None and rec.architecture == "sd1"
        assert "file name is not valid UTF-8" in rec.problems
    return Case("badsurrogate", check)


def odd_unicode_names(lib: Any, kit: Any, hooks: Hooks) -> Case:
    nfc = unicodedata.normalize("NFC", "café")
    nfd = unicodedata.normalize("NFD", "café")
    lib.model("loras", f"{nfc}.safetensors", kit.SD1_LORA_KOHYA)
    lib.model("loras", f"{nfd}.safetensors", kit.SDXL_LORA_KOHYA)
    rtl = "\u200fمرحبا\u200e\u202eabc"
    lib.model("loras", f"{rtl}.safetensors", kit.FLUX_LORA_KOHYA)
    lib.model("loras", "emoji 🎨✨👩‍👩‍👧.safetensors", kit.SDXL_LORA_KOHYA)

    def check(index: ModelIndex) -> None:
        by_name = {r.name: r for r in index.records("lora")}
        if f"{nfd}.safetensors" in by_name:  # a file system that normalises names keeps one of them
            assert by_name[f"{nfd}.safetensors"].architecture == "sdxl"
        assert by_name.get(f"{nfc}.safetensors", by_name.get(f"{nfd}.safetensors")) is not None
        assert by_name[f"{rtl}.safetensors"].architecture == "flux"
        assert by_name["emoji 🎨✨👩‍👩‍👧.safetensors"].architecture == "sdxl"
    return Case(None, check)


def _bad_header(stem: str, body: bytes, length: int | None, problem: str) -> Callable[[Any, Any, Hooks], Case]:
    def build(lib: Any, kit: Any, hooks: Hooks) -> Case:
        write_raw_safetensors(lib.folder("checkpoints") / f"{stem}.safetensors", body, length)

        def check(index: ModelIndex) -> None:
            rec = index.get("checkpoint", f"{stem}.safetensors")
            assert rec is not None and len(rec.problems) == 1 and problem in rec.problems[0], rec
        return Case(f"{stem}.safetensors", check)
    build.__name__ = stem
    return build


header_not_json = _bad_header("hdr_not_json", b"{{{{ not json", None, "not valid JSON")
header_length_huge = _bad_header("hdr_huge_length", b"{}", 2**63, "limit")
header_nested = _bad_header("hdr_nested", b"[" * 100_000 + b"]" * 100_000, None, "JSON")
header_truncated = _bad_header("hdr_truncated", b'{"a": 1}', 10_000, "truncated")


def nested_gguf(lib: Any, kit: Any, hooks: Hooks) -> Case:
    (lib.folder("unet") / "nested.gguf").write_bytes(nested_array_gguf(5000))
    (lib.folder("unet") / "flux-q4.gguf").write_bytes(flux_gguf())

    def check(index: ModelIndex) -> None:
        rec = index.get("diffusion_model", "nested.gguf")
        assert rec is not None and rec.problems[0].startswith("unreadable header") and "nested" in rec.problems[0]
        assert index.get("diffusion_model", "flux-q4.gguf").architecture == "flux"
    return Case("nested.gguf", check)


def hostile_gguf_counts(lib: Any, kit: Any, hooks: Hooks) -> Case:
    huge_array = gguf_string("tokens") + struct.pack("<IIQ", 9, 0, 2**62)  # 2**62 bytes of uint8, claimed
    (lib.folder("unet") / "huge_array.gguf").write_bytes(gguf_file(huge_array, 2))
    huge_string = gguf_string("general.architecture") + struct.pack("<IQ", 8, 2**63)
    (lib.folder("unet") / "huge_string.gguf").write_bytes(gguf_file(huge_string, 1))

    def check(index: ModelIndex) -> None:
        for name in ("huge_array.gguf", "huge_string.gguf"):
            rec = index.get("diffusion_model", name)
            assert rec is not None and rec.architecture == "unknown"
    return Case(None, check)


def model_replaced_by_folder_mid_scan(lib: Any, kit: Any, hooks: Hooks) -> Case:
    path = victim(lib, kit, "swapped_model", folder="checkpoints")

    def swap() -> None:
        path.unlink()
        path.mkdir()

    hooks.before_read.append(swap)

    def check(index: ModelIndex) -> None:
        rec = index.get("checkpoint", "swapped_model.safetensors")
        assert rec is not None and any("folder" in p for p in rec.problems), rec
    return Case("swapped_model.safetensors", check, raced=True)


def sidecar_replaced_by_fifo_mid_scan(lib: Any, kit: Any, hooks: Hooks) -> Case:
    path = victim(lib, kit, "swapped_sidecar")
    sidecar = path.parent / "swapped_sidecar.metadata.json"
    sidecar.write_text(json.dumps({"model_name": "before"}), encoding="utf-8")

    def swap() -> None:
        sidecar.unlink()
        os.mkfifo(sidecar)

    hooks.before_read.append(swap)
    return Case("swapped_sidecar.metadata.json", header_survives("swapped_sidecar", "FIFO"), raced=True)


PATHOLOGIES = [
    pytest.param(fifo_sidecar, marks=needs_fifo),
    pytest.param(device_sidecar, marks=needs_device),
    folder_sidecar,
    pytest.param(broken_link_sidecar, marks=needs_posix),
    pytest.param(self_link_sidecar, marks=needs_posix),
    oversized_sidecar,
    list_sidecar,
    null_sidecar,
    string_sidecar,
    broken_json_sidecar,
    nested_json_sidecar,
    binary_sidecar,
    pathological_usage_tips,
    hostile_description,
    pytest.param(fifo_model, marks=needs_fifo),
    pytest.param(device_model, marks=needs_device),
    pytest.param(broken_link_model, marks=needs_posix),
    pytest.param(self_link_model, marks=needs_posix),
    folder_named_like_a_model,
    pytest.param(symlink_loops, marks=needs_posix),
    pytest.param(newline_name_with_bad_header, marks=needs_posix),
    pytest.param(newline_name_with_fifo_sidecar, marks=needs_fifo),
    pytest.param(lone_surrogate_name, marks=needs_posix),
    odd_unicode_names,
    header_not_json,
    header_length_huge,
    header_nested,
    header_truncated,
    nested_gguf,
    hostile_gguf_counts,
    model_replaced_by_folder_mid_scan,
    pytest.param(sidecar_replaced_by_fifo_mid_scan, marks=needs_fifo),
]


def good_models(lib: Any, kit: Any) -> Callable[[ModelIndex], None]:
    a = lib.model("loras", "good/a.safetensors", kit.SD1_LORA_KOHYA)
    kit.write_json(a.parent / "a.metadata.json", {"model_name": "Good A", "tags": ["Ink"],
                                                  "usage_tips": '{"strength": 0.7}'})
    b = lib.model("loras", "good/b.safetensors", kit.SDXL_LORA_KOHYA)
    kit.write_json(b.parent / "b.civitai.info", {"baseModel": "Pony", "model": {"name": "Good B"}})
    lib.model("checkpoints", "good_xl.safetensors", kit.SDXL_CHECKPOINT)

    def check(index: ModelIndex) -> None:
        rec_a = index.get("lora", "good/a.safetensors")
        assert rec_a is not None
        assert (rec_a.title, rec_a.tags, rec_a.preferred_weight, rec_a.architecture) == ("Good A", ("ink",), 0.7, "sd1")
        assert rec_a.sources == ("lora-manager", "header") and rec_a.problems == ()
        rec_b = index.get("lora", "good/b.safetensors")
        assert rec_b is not None
        assert (rec_b.title, rec_b.base_model, rec_b.architecture, rec_b.problems) == ("Good B", "Pony", "sdxl", ())
        ckpt = index.get("checkpoint", "good_xl.safetensors")
        assert ckpt is not None and (ckpt.architecture, ckpt.has_vae, ckpt.problems) == ("sdxl", True, ())
    return check


@pytest.mark.timeout(120)
@pytest.mark.parametrize("pathology", PATHOLOGIES)
def test_each_bad_file_costs_one_escaped_log_line(lib, kit, caplog, pathology: Callable[..., Case]) -> None:
    hooks = Hooks()
    check_good = good_models(lib, kit)
    case = pathology(lib, kit, hooks)
    index = lib.index(events=hooks)
    with caplog.at_level(logging.DEBUG):
        scan(index)
    check_good(index)
    case.check(index)
    assert_one_line_each(caplog)
    warnings = pack_warnings(caplog)
    if case.token is None:
        assert warnings == [], [r.getMessage() for r in warnings]
    else:
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert case.token.replace("\n", "\\n") in warnings[0].getMessage()
    caplog.clear()
    hooks.before_read.clear()
    with caplog.at_level(logging.DEBUG):
        scan(index)  # a rescan logs nothing new: the bad file is remembered, not re-read
    check_good(index)
    assert_one_line_each(caplog)
    assert len(pack_warnings(caplog)) <= (1 if case.raced else 0)


@pytest.mark.timeout(120)
def test_the_whole_hostile_library_indexes_promptly(lib, kit, caplog) -> None:
    hooks = Hooks()
    check_good = good_models(lib, kit)
    cases: list[Case] = []
    for param in PATHOLOGIES:
        build = param.values[0] if hasattr(param, "values") else param
        marks = getattr(param, "marks", ())
        if any(m.name == "skipif" and m.args and m.args[0] for m in marks):
            continue
        try:
            cases.append(build(lib, kit, hooks))
        except pytest.skip.Exception:
            continue
    index = lib.index(events=hooks, cache_path=lib.cache_path)
    with caplog.at_level(logging.DEBUG):
        result = scan(index)
    check_good(index)
    for case in cases:
        case.check(index)
    assert result.total == len(index.records())
    assert_one_line_each(caplog)
    warnings = [r.getMessage() for r in pack_warnings(caplog)]
    tokens = [c.token.replace("\n", "\\n") for c in cases if c.token is not None]
    assert len(warnings) == len(tokens), warnings
    for token in tokens:
        assert len([w for w in warnings if token in w]) == 1, (token, warnings)
    caplog.clear()
    hooks.before_read.clear()
    with caplog.at_level(logging.DEBUG):
        scan(index)
        again = lib.index(cache_path=lib.cache_path)  # the cache round-trips what it can hold
    check_good(index)
    check_good(again)
    assert len(pack_warnings(caplog)) <= sum(c.raced for c in cases)
    assert_one_line_each(caplog)


def test_records_of_bad_files_are_plain_data(lib, kit) -> None:
    """What the routes serve about a bad file is one-line text (the problems list)."""
    hooks = Hooks()
    pathological_usage_tips(lib, kit, hooks)
    list_sidecar(lib, kit, hooks)
    index = lib.index()
    scan(index)
    for rec in index.records():
        assert isinstance(rec, ModelRecord)
        for problem in rec.problems:
            assert isinstance(problem, str) and "\n" not in problem and len(problem) < 500
