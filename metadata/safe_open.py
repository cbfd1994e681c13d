"""The one way metadata/ opens a file from the model library: regular files only, reads bounded.

A file in the library is untrusted: a FIFO named like a sidecar blocks `open()` forever, and a
symlink to /dev/zero reports size 0 and then never ends. So a file is stat-ed first (following
symlinks), opened without blocking where the platform has O_NONBLOCK, and the opened descriptor
is fstat-ed again, which catches a file swapped for something else in between. Reads stop after a
byte limit whatever the file's size says. Nothing here assumes POSIX: Windows has no O_NONBLOCK
and needs O_BINARY, and both are looked up, not assumed.
"""
from __future__ import annotations

import os
import stat
from typing import BinaryIO

_READ_CHUNK = 256 * 1024

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class NotRegularFile(OSError):
    """The path is a folder, FIFO, device or socket: it is never opened for reading."""

    def __init__(self, kind: str):
        super().__init__(f"not a regular file ({kind})")
        self.kind = kind


class FileTooLarge(OSError):
    """The file holds more than the reader's byte limit."""

    def __init__(self, limit: int):
        super().__init__(f"too large (over the {limit}-byte limit)")
        self.limit = limit


def open_flags() -> int:
    """Read-only; non-blocking where the platform has it (POSIX), binary where it has that (Windows)."""
    return os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def irregular_kind(mode: int) -> str | None:
    """None for a regular file's `st_mode`, else what the file is ("a FIFO", "a folder", ...)."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "an unknown kind of file")


def _require_regular(mode: int) -> None:
    kind = irregular_kind(mode)
    if kind is not None:
        raise NotRegularFile(kind)


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """The regular file at `path`, open for binary reading.

    Raises NotRegularFile for anything else (a symlink counts as what it points to), and OSError
    when the file cannot be stat-ed or opened (missing, a broken or looping link, no permission)."""
    _require_regular(os.stat(path).st_mode)
    fd = os.open(path, open_flags())
    try:
        _require_regular(os.fstat(fd).st_mode)  # it may have been swapped since the stat
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_limited(f: BinaryIO, limit: int) -> bytes:
    """Everything left in `f`, reading at most `limit` + 1 bytes; FileTooLarge when there is more."""
    parts: list[bytes] = []
    total = 0
    while True:
        chunk = f.read(min(_READ_CHUNK, limit + 1 - total))
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        total += len(chunk)
        if total > limit:
            raise FileTooLarge(limit)


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """The whole regular file at `path`, at most `limit` bytes (see open_regular and read_limited)."""
    with open_regular(path) as f:
        return read_limited(f, limit)


def describe(error: OSError) -> str:
    """One line saying why a file could not be read, for `problems` and log lines."""
    return error.strerror or str(error) or type(error).__name__


def printable(text: str, limit: int | None = None) -> str:
    """`text` (a file name, a parser's message) made safe to show on one line: characters that are
    not printable (newlines, escapes, bidi controls, lone surrogates) become Python escapes."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return text if text.isprintable() else repr(text)[1:-1]
