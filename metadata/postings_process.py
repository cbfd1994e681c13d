"""Reading a store's postings in a worker process, so ComfyUI's own process pays neither the CPU
(2-3 s at 50k models) nor the memory the read leaves behind (its temporary Python objects: about
25 MB of the 35 MB it grew in-process; the arrays themselves are 7 MB).

The worker is a fresh interpreter (`sys.executable -I -c`, never a fork of a process that may run
torch; isolated: neither its folder nor PYTHON* variables nor the user's site-packages can put a
module in front of the real ones) that loads metadata/postings.py by its file location (it
imports nothing of the pack or of ComfyUI), reads the store through its own SQLite connection
(`mode=rw`: a store that went away is not created again) and writes the postings to stdout as an
`.npz` of plain arrays (postings.to_bytes), loaded here with `allow_pickle=False`. A worker that
cannot start (no interpreter: a frozen or embedding host), fails or runs past WORKER_TIMEOUT_S
raises WorkerFailed (`unavailable` when no worker can ever start here); the caller then reads in
its own process. `stop()` kills a running worker, or the one about to start (the store is closed
or set aside: on Windows its open file would block the rename).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import Sequence

from . import postings as postings_module
from .postings import Postings, from_bytes
from .safe_open import printable

WORKER_TIMEOUT_S = 300.0

_BOOT = ("import importlib.util, sys\n"
         "spec = importlib.util.spec_from_file_location('intelligent_pipeline_postings_worker', sys.argv[1])\n"
         "module = importlib.util.module_from_spec(spec)\n"
         "spec.loader.exec_module(module)\n"
         "sys.exit(module.worker_main(sys.argv[2:]))\n")


class WorkerFailed(Exception):
    """The worker could not give the postings (the message says why); `unavailable`: no worker
    can start in this process (no interpreter to run), so asking again is pointless."""

    def __init__(self, message: str, unavailable: bool = False) -> None:
        super().__init__(message)
        self.unavailable = unavailable


def _interpreter() -> str | None:
    """sys.executable when it is a Python interpreter this process may start, else None."""
    executable = sys.executable
    if not executable or getattr(sys, "frozen", False) or not os.path.isfile(executable):
        return None
    name = os.path.basename(executable).lower()
    return executable if name.startswith(("python", "pypy")) else None


class PostingsProcess:
    """Runs one worker at a time for a store; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stops = 0  # stop() calls so far: a read that sees it change was stopped
        self.stopped = False  # the last read ended because stop() killed it

    def read(self, path: str, table: str, columns: Sequence[str], weights: Sequence[float], version: int) -> Postings:
        """The postings of the store at `path`, read by a worker, labelled `version`."""
        executable = _interpreter()
        if executable is None:
            raise WorkerFailed(f"no Python interpreter to start (sys.executable is {sys.executable!r})",
                               unavailable=True)
        argv = [executable, "-I", "-c", _BOOT, os.path.abspath(postings_module.__file__), os.path.abspath(path),
                table, json.dumps(list(columns)), json.dumps([float(w) for w in weights])]
        with self._lock:
            stops = self._stops
            self.stopped = False
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # Windows: no console window flashing up
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    cwd=os.path.dirname(os.path.abspath(path)), creationflags=flags)
        except OSError as e:
            raise WorkerFailed(f"cannot start {executable!r}: {type(e).__name__}", unavailable=True) from e
        with self._lock:
            self._proc = proc
            if self._stops != stops:  # stopped while it started
                self.stopped = True
                proc.kill()
        try:
            out, err = proc.communicate(timeout=WORKER_TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            proc.kill()
            proc.communicate()
            raise WorkerFailed(f"no answer in {WORKER_TIMEOUT_S:.0f} s") from e
        except BaseException:
            proc.kill()  # never left running where stop() cannot reach it
            proc.wait()
            raise
        finally:
            with self._lock:
                self._proc = None
        if self.stopped:
            raise WorkerFailed("stopped")
        if proc.returncode != 0:
            last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise WorkerFailed(f"exit status {proc.returncode}: {printable(last[0], 200)}")
        try:
            return from_bytes(out, version)
        except ValueError as e:
            raise WorkerFailed(str(e)) from e

    def stop(self) -> None:
        """Kill the running worker, if any (its read then raises WorkerFailed, with `stopped` set)."""
        with self._lock:
            self._stops += 1
            proc = self._proc
            if proc is not None and proc.poll() is None:
                self.stopped = True
                proc.kill()
