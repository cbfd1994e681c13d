"""Runtime.rescan (the rescan route) does not hang behind a background scan paused for a prompt."""
from __future__ import annotations

import importlib
import sys
import threading
import types
from pathlib import Path
from typing import Any, Iterator

import pytest

from intelligent_pipeline.metadata import FOLDER_KINDS
from intelligent_pipeline.metadata import index as index_module

RUNTIME = "intelligent_pipeline.nodes.runtime"


@pytest.fixture
def runtime_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """nodes/runtime.py imported against a fake folder_paths whose folders are in tmp_path."""
    fake = types.ModuleType("folder_paths")
    fake.get_user_directory = lambda: str(tmp_path / "user")  # type: ignore[attr-defined]
    fake.get_folder_paths = lambda name: [str(tmp_path / "models" / name)]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "folder_paths", fake)
    previous = sys.modules.pop(RUNTIME, None)
    try:
        yield importlib.import_module(RUNTIME)
    finally:
        sys.modules.pop(RUNTIME, None)
        if previous is not None:
            sys.modules[RUNTIME] = previous


def _models(tmp_path: Path, prefix: str, n: int) -> None:
    folder = tmp_path / "models" / FOLDER_KINDS["lora"]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):  # the smallest safetensors file: an empty header
        (folder / f"{prefix}{i}.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")


@pytest.mark.timeout(60)
def test_an_explicit_rescan_unpauses_a_background_scan_paused_for_a_prompt(runtime_module, tmp_path,
                                                                          monkeypatch) -> None:
    executing = threading.Event()
    monkeypatch.setattr(runtime_module, "prompt_executing", executing.is_set)
    monkeypatch.setattr(index_module, "PAUSE_POLL_S", 0.01)
    reads: list[str] = []
    real_build = index_module.build_record
    monkeypatch.setattr(index_module, "build_record", lambda f: reads.append(f.name) or real_build(f))
    _models(tmp_path, "a", 3)
    rt = runtime_module.Runtime()
    rt.start_first_scan()
    assert rt.first_scan.wait(20) and rt.first_scan.done and rt.index.counts()["lora"] == 3

    _models(tmp_path, "b", 3)  # the background full rescan has files to read: it pauses before them
    executing.set()
    reads.clear()
    rt._full_rescan_if_due(0.0)
    background = rt._background
    assert background is not None
    background.join(0.3)
    assert background.is_alive() and reads == []  # paused while the prompt executes
    assert rt.index._busy()

    results: list[Any] = []
    route = threading.Thread(target=lambda: results.append(rt.rescan()))
    try:
        route.start()
        route.join(10)
        assert not route.is_alive(), "the rescan route hung behind the paused background scan"
        background.join(10)
        assert not background.is_alive()
        assert results[0].total == 6 and rt.index.counts()["lora"] == 6
        assert rt.index._busy()  # the rescan is over: background scans pause for prompts again
    finally:
        executing.clear()  # whatever happened, let the threads end
        route.join(10)
        background.join(10)


def test_scan_pause_predicate(runtime_module, monkeypatch) -> None:
    executing = [True]
    monkeypatch.setattr(runtime_module, "prompt_executing", lambda: executing[0])
    rt = runtime_module.Runtime()
    assert rt._scan_should_pause()
    with rt._rescan_waiting():
        assert not rt._scan_should_pause()
        with rt._rescan_waiting():
            assert not rt._scan_should_pause()
        assert not rt._scan_should_pause()
    assert rt._scan_should_pause()
    executing[0] = False
    assert not rt._scan_should_pause()
