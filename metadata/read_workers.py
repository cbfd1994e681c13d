"""Reading model files in worker processes, for scans with many files to read (a first scan).

Reading one file (its sidecars, its header, detection, the merge) costs ~300 us of Python; at 50k
files that is 15 s on one core of a process whose GIL ComfyUI's server shares. Here the work is
spread over worker processes, one per core up to MAX_WORKERS: each a fresh interpreter
(`sys.executable -I -c`, never a fork of a process that may run torch) that loads this package by
its file location and reads the files it is sent. The parent sends chunks of file descriptions
(JSON lines on the worker's stdin) and gets back, per file, the record as JSON and the log lines
reading it wrote (re-logged here under this package's logger names, so "one bad file, one line"
holds as in-process). A record is decoded here (record_from_json, ~30 us) and checked to be the
file's; a file that cannot be described as JSON (a name that is not UTF-8), that a worker could
not encode, or that was in a chunk a worker never answered, is read in this process instead.

Workers start only for at least WORKER_MIN_FILES files (starting one costs ~0.3 s) and on
machines with two cores or more; `ReadWorkers.start` raises WorkerFailed where they cannot run
(no interpreter: a frozen or embedding host), and the caller reads in-process.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from typing import Any, Iterable, Iterator

from . import jsonio
from .cache import record_from_json, record_to_json
from .postings_process import WorkerFailed, _interpreter
from .reader import ModelFile
from .records import ModelRecord
from .safe_open import printable

log = logging.getLogger(__name__)

MAX_WORKERS = 4
WORKER_MIN_FILES = 2000
WORKER_TIMEOUT_S = 600.0  # for one chunk's answer

_PACKAGE = __name__.rsplit(".", 1)[0]  # this package's import name here
_WORKER_PACKAGE = "intelligent_pipeline_read_worker"  # its name inside a worker

_BOOT = ("import importlib, importlib.util, sys\n"
         f"spec = importlib.util.spec_from_file_location({_WORKER_PACKAGE!r}, sys.argv[1], "
         "submodule_search_locations=[sys.argv[2]])\n"
         "package = importlib.util.module_from_spec(spec)\n"
         f"sys.modules[{_WORKER_PACKAGE!r}] = package\n"
         "spec.loader.exec_module(package)\n"
         f"sys.exit(importlib.import_module({_WORKER_PACKAGE!r} + '.read_workers').worker_main())\n")


def worker_count() -> int:
    """How many workers a big scan uses here: one per core, at most MAX_WORKERS; 0 on one core."""
    cores = os.cpu_count() or 1
    return min(MAX_WORKERS, cores) if cores >= 2 else 0


def describe_file(f: ModelFile) -> list[Any]:
    return [f.kind, f.name, f.root, f.path, f.size, f.mtime_ns, [list(s) for s in f.sidecars], f.preview, f.sig]


def _model_file(d: list[Any]) -> ModelFile:
    kind, name, root, path, size, mtime_ns, sidecars, preview, sig = d
    return ModelFile(kind, name, root, path, size, mtime_ns, tuple((s, n, m) for s, n, m in sidecars), preview, sig)


class _Worker:
    def __init__(self, executable: str) -> None:
        here = os.path.dirname(os.path.abspath(__file__))
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        try:
            self.proc = subprocess.Popen([executable, "-I", "-c", _BOOT, os.path.join(here, "__init__.py"), here],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         creationflags=flags)
        except OSError as e:
            raise WorkerFailed(f"cannot start {executable!r}: {type(e).__name__}", unavailable=True) from e

    def ask(self, request: bytes) -> list[Any]:
        """Send one chunk, wait for its answer (raises WorkerFailed when the worker is gone)."""
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(request + b"\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except (OSError, ValueError) as e:
            raise WorkerFailed(f"the worker went away: {type(e).__name__}") from e
        if not line:
            raise WorkerFailed(f"the worker ended (exit status {proc.poll()})")
        try:
            answer = jsonio.loads(line)
        except ValueError as e:
            raise WorkerFailed("the worker's answer is not JSON") from e
        if not isinstance(answer, list):
            raise WorkerFailed("the worker's answer is not a list")
        return answer

    def close(self) -> None:
        proc = self.proc
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()


class ReadWorkers:
    """A few worker processes reading model files; used from one thread (the scan's)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._workers: list[_Worker] = []
        self._free: list[_Worker] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        executable = _interpreter()
        if executable is None or self.count < 1:
            raise WorkerFailed(f"no Python interpreter to start (sys.executable is {sys.executable!r})",
                               unavailable=True)
        try:
            for _ in range(self.count):
                self._workers.append(_Worker(executable))
        except WorkerFailed:
            self.close()
            raise
        self._free = list(self._workers)

    def read(self, files: list[ModelFile]) -> list[ModelRecord | None]:
        """Records for `files`, in order, read by a free worker (called from up to `count` threads
        at once); None for each file the worker did not give (the caller reads it itself).
        Raises WorkerFailed when the worker is gone (it is not used again)."""
        with self._lock:
            if not self._free:
                raise WorkerFailed("no worker left")
            worker = self._free.pop()
        ok = False
        try:
            described: list[list[Any] | None] = []
            for f in files:
                try:
                    jsonio.dumps(describe_file(f))
                    described.append(describe_file(f))
                except (TypeError, ValueError, UnicodeError):
                    described.append(None)  # a name JSON cannot carry: read in this process
            sendable = [d for d in described if d is not None]
            answers = worker.ask(jsonio.dumps(sendable)) if sendable else []
            if len(answers) != len(sendable):
                raise WorkerFailed("the worker answered for other files")
            ok = True
        finally:
            with self._lock:
                if ok:
                    self._free.append(worker)
        out: list[ModelRecord | None] = []
        it = iter(answers)
        for f, d in zip(files, described, strict=True):
            out.append(None if d is None else _record(f, next(it)))
        return out

    def close(self) -> None:
        for worker in self._workers:
            worker.close()
        self._workers, self._free = [], []

    def kill(self) -> None:
        """Stop every worker now (a thread waiting for one's answer then gets WorkerFailed)."""
        for worker in self._workers:
            worker.proc.kill()


def _record(f: ModelFile, answer: Any) -> ModelRecord | None:
    """The record a worker sent for `f` (its log lines logged here), or None when it is not one."""
    if not (isinstance(answer, list) and len(answer) == 2 and isinstance(answer[1], list)):
        return None
    data, lines = answer
    for line in lines[:100]:
        if isinstance(line, list) and len(line) == 3 and isinstance(line[0], int) and isinstance(line[2], str):
            name = str(line[1])
            if name == _WORKER_PACKAGE or name.startswith(_WORKER_PACKAGE + "."):
                name = _PACKAGE + name[len(_WORKER_PACKAGE):]
            logging.getLogger(name).log(line[0], "%s", line[2])
    if not isinstance(data, str):
        return None
    try:
        rec = record_from_json(data)
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    if (rec.kind, rec.name, rec.path) != (f.kind, f.name, f.path):
        return None
    return rec


class _Collect(logging.Handler):
    """The log lines written while one file is read, for the parent to log."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[list[Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append([record.levelno, record.name, printable(record.getMessage(), 2000)])
        except Exception:  # noqa: BLE001 - a message that cannot be formatted is dropped, never the file
            pass


def worker_main(stdin: Iterable[bytes] | None = None, stdout: Any = None) -> int:
    """What a worker runs: for each JSON line of file descriptions on stdin, one JSON line of
    [record JSON or null, log lines] per file on stdout. Ends at the end of stdin."""
    from .index import _safe_build  # (the same never-raising read as in-process scans)

    root = logging.getLogger()
    collect = _Collect()
    root.addHandler(collect)
    root.setLevel(logging.INFO)
    source = stdin if stdin is not None else sys.stdin.buffer
    sink = stdout if stdout is not None else sys.stdout.buffer
    for line in source:
        out: list[list[Any]] = []
        for d in jsonio.loads(line):
            collect.lines = []
            data: str | None
            try:
                data = record_to_json(_safe_build(_model_file(d))).decode("utf-8")
            except (TypeError, ValueError, UnicodeError):
                data = None
            out.append([data, collect.lines])
        sink.write(jsonio.dumps(out) + b"\n")
        sink.flush()
    return 0


def read_all(workers: ReadWorkers, chunks: Iterable[list[ModelFile]]) -> Iterator[tuple[list[ModelFile],
                                                                                      list[ModelRecord | None]]]:
    """(chunk, records) for each chunk, in order, `workers.count` chunks read at once."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers.count, thread_name_prefix="model-index-worker") as pool:
        pending: list[tuple[list[ModelFile], Any]] = []

        def result(future: Any) -> list[ModelRecord | None]:
            try:
                return future.result(timeout=WORKER_TIMEOUT_S)
            except BaseException as e:  # a timeout, a worker gone: none is waited for any more
                workers.kill()
                if isinstance(e, WorkerFailed):
                    raise
                if isinstance(e, Exception):
                    raise WorkerFailed(f"{type(e).__name__} while reading") from e
                raise
        for chunk in chunks:
            pending.append((chunk, pool.submit(workers.read, chunk)))
            if len(pending) > workers.count:
                first, future = pending.pop(0)
                yield first, result(future)
        for chunk, future in pending:
            yield chunk, result(future)
