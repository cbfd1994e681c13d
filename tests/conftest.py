"""Shared by the integration and browser tests: the synthetic library `make setup` builds, and a way to
give each test server a models folder of its own that links into it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from intelligent_pipeline.client.server import PACK_DIR, find_comfyui

SYNTH_LIBRARY = os.environ.get("SYNTH_LIBRARY") or os.path.join(PACK_DIR, ".runtime", "models")


def link_library(src: str, dst: str) -> None:
    """Real folders, every file a symlink: a test may add files, and never writes into the library."""
    for root, _dirs, files in os.walk(src):
        target = os.path.join(dst, os.path.relpath(root, src))
        os.makedirs(target, exist_ok=True)
        for name in files:
            os.symlink(os.path.abspath(os.path.join(root, name)), os.path.join(target, name))


@pytest.fixture(scope="session")
def library_dir() -> str:
    """The synthetic library (built here if `make setup` has not built it yet)."""
    if not os.path.isdir(os.path.join(SYNTH_LIBRARY, "checkpoints")):
        comfyui = find_comfyui()
        subprocess.run([sys.executable, os.path.join(PACK_DIR, "tests", "fixtures", "synthlib.py"),
                        "--out", SYNTH_LIBRARY, "--comfyui", comfyui], check=True, cwd=comfyui)
    return SYNTH_LIBRARY


@pytest.fixture(scope="session")
def linked_models(library_dir, tmp_path_factory):
    """A function making a fresh models folder that links to the library: `linked_models() -> path`."""
    def make() -> str:
        path = str(tmp_path_factory.mktemp("models"))
        link_library(library_dir, path)
        return path
    return make
