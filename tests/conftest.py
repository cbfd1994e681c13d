"""Shared by the integration and browser tests: the synthetic library `make setup` builds, and a way to
give each test server a models folder of its own that links into it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import settings as hypothesis_settings

from intelligent_pipeline.client.server import PACK_DIR, find_comfyui

# Property tests keep no example database: tests write only to temporary folders.
hypothesis_settings.register_profile("pack", database=None)
hypothesis_settings.load_profile("pack")

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


# --- growth: linear-time checks on hostile input (issue 5) ------------------------------------

GROWTH_SMALL = 16 * 1024
GROWTH_LARGE = 128 * 1024
GROWTH_LIMIT = 16.0  # 8x the input: linear code gives ~8, quadratic ~64


def growth_ratio(fn, make, small: int = GROWTH_SMALL, large: int = GROWTH_LARGE, best_of: int = 3,
                 sample_s: float = 0.005) -> float:
    """Best-of-`best_of` time of `fn(make(large))` over `fn(make(small))`.

    `make(n)` builds an input of about n characters (or bytes). Both sizes run the same number of
    calls, enough for the small one to take a few milliseconds, with the garbage collector paused,
    so the ratio measures the code and not the timer. A ratio within one run, never a wall-clock
    limit."""
    import gc
    import time

    small_input, large_input = make(small), make(large)

    def best(arg, calls: int) -> float:
        times = []
        for _ in range(best_of):
            t0 = time.perf_counter()
            for _ in range(calls):
                fn(arg)
            times.append(time.perf_counter() - t0)
        return min(times)

    enabled = gc.isenabled()
    gc.disable()
    try:
        calls = 1
        while best(small_input, calls) < sample_s and calls < 4096:
            calls *= 2
        return best(large_input, calls) / max(best(small_input, calls), 1e-9)
    finally:
        if enabled:
            gc.enable()


@pytest.fixture
def assert_linear():
    """`assert_linear(fn, make, label)`: fails when 8x the input costs 16x the time or more.

    A ratio over the limit is measured again, twice, with samples 4x and 16x longer: on a shared
    machine one sample can land on a busy moment, while quadratic code (~64x) fails every try."""
    def check(fn, make, label: str = "", small: int = GROWTH_SMALL, large: int = GROWTH_LARGE) -> float:
        ratios = []
        for sample_s in (0.005, 0.02, 0.08):
            ratios.append(growth_ratio(fn, make, small, large, sample_s=sample_s))
            if ratios[-1] < GROWTH_LIMIT:
                return ratios[-1]
        raise AssertionError(f"{label or fn.__name__}: 8x the input took "
                             f"{', '.join(f'{r:.1f}x' for r in ratios)} the time (three measurements)")
    return check
