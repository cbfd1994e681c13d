"""Atomic writes of the pack's own files (settings, the index cache), and the clean-up of the temp
files a killed write leaves behind.

A write goes to `.<file name>.<16 hex>.tmp` beside the file, opened with O_EXCL (never through a
link someone planted at that name), then replaces the file: readers never see half a file. An
existing file keeps its mode; a symlinked file stays a link (its target is rewritten). The
cleaner removes only regular files with that temp name (or a name a caller recognises) that are
older than a few minutes: never a user's or another tool's file.
"""
from __future__ import annotations

import logging
import os
import secrets
import stat
import time
from typing import Callable

log = logging.getLogger(__name__)

STALE_TEMP_AGE_S = 300.0  # a write takes milliseconds; this leaves a slow one on a shared folder alone
_TOKEN_LEN = 16
_HEX = frozenset("0123456789abcdef")


def temp_path_for(path: str) -> str:
    """`.<file name>.<16 hex>.tmp` beside `path`: a name nobody else uses, recognised by the cleaner."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{secrets.token_hex(_TOKEN_LEN // 2)}.tmp")


def is_own_temp(name: str) -> bool:
    """Whether a file name is one of temp_path_for's for a file of the pack (`intelligent-pipeline*`)."""
    if not (name.startswith(".intelligent-pipeline") and name.endswith(".tmp")):
        return False
    _stem, _, token = name[1:-4].rpartition(".")
    return len(token) == _TOKEN_LEN and set(token) <= _HEX


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write `data` to `path` atomically (see the module's doc); raises OSError."""
    path = os.path.realpath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        mode: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None  # a new file gets what a plain open() would give it: 0666 less the umask
    while True:
        tmp = temp_path_for(path)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def clean_stale_temp_files(folder: str, max_age_s: float = STALE_TEMP_AGE_S, now: float | None = None,
                           also: Callable[[str, str], bool] | None = None) -> list[str]:
    """Remove the pack's temp files older than `max_age_s` from `folder`; returns the paths removed.

    `also(name, path)` recognises more names (those of earlier versions of the pack)."""
    now = time.time() if now is None else now
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < max_age_s:
            continue
        if not (is_own_temp(entry.name) or (also is not None and also(entry.name, entry.path))):
            continue
        try:
            os.unlink(entry.path)
        except OSError as e:
            log.warning("could not remove the stale temp file %r: %r", entry.path, str(e))
            continue
        removed.append(entry.path)
    if removed:
        log.info("removed %d stale temp file(s) of an interrupted write from %r", len(removed), folder)
    return removed
