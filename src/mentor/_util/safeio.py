"""Opening what a user hands mentor, and naming what mentor writes, without surprises.

Every file mentor reads is first checked to be a *regular* file (a FIFO would block the read
forever, ``/dev/zero`` would be read until memory runs out, a socket or a device is never
data) and, where the format allows, read with a size bound. The check is made on the open
file descriptor (``fstat``), the file being opened non-blocking, so a FIFO swapped in after a
``stat`` cannot hang the process either. Outputs are written by atomic rename
(:mod:`mentor._util.atomic`) into a regular file or a new name: an existing FIFO, device, socket,
folder or symbolic link at the target is refused (:func:`check_output_file`), never replaced.

Failures are :class:`FileProblem` (a :class:`~mentor.errors.MentorError`) whose ``clause``
reads after the quoted path: ``'x.yaml' is a FIFO (named pipe), not a regular file``; the
callers put their field in front (``recipe: ...``, ``data.source: ...``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO, Iterator

from ..errors import MentorError

__all__ = ["FileProblem", "MAX_JSON_BYTES", "MAX_RECIPE_BYTES", "MAX_SIDECAR_BYTES",
           "NAME_MAX", "check_output_file", "kind_of", "open_regular", "read_bounded",
           "regular_file", "shown"]

MAX_RECIPE_BYTES = 1 << 20       # a recipe is a few KB; 1 MiB leaves room for long settings
MAX_SIDECAR_BYTES = 1 << 20      # a label-store shard sidecar, a LATEST-style pointer
MAX_JSON_BYTES = 256 << 20       # manifests, state.json, results.json, metrics.jsonl
NAME_MAX = 255                   # bytes of one path component on Linux and macOS file systems


class FileProblem(MentorError):
    """A path that cannot be read as the file it should be; ``clause`` follows the path."""

    def __init__(self, path, clause: str, reason: str):
        self.path, self.clause, self.reason = Path(path), clause, reason
        super().__init__(f"{shown(path)} {clause}")


def shown(path) -> str:
    """A path quoted for a one-line message: control characters (a newline) escaped."""
    text = str(path)
    if text.isprintable():
        return f"'{text}'"
    return "'" + "".join(c if c.isprintable() else repr(c)[1:-1] for c in text) + "'"


def kind_of(mode: int) -> str | None:
    """What a non-regular file is, in words (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def _long_component(path) -> str | None:
    for part in Path(path).parts:
        if len(os.fsencode(part)) > NAME_MAX:
            return part
    return None


def _os_problem(path, e: OSError) -> FileProblem:
    if e.errno == errno.ENOENT:
        return FileProblem(path, "does not exist", "missing")
    if e.errno == errno.ENAMETOOLONG or _long_component(path) is not None:
        return FileProblem(path, f"has a name component longer than {NAME_MAX} bytes (the "
                                 "file system's limit); expected a shorter name", "name")
    if e.errno == errno.ENOTDIR:
        return FileProblem(path, "does not exist (a part of its path is a file, not a folder)",
                           "missing")
    if e.errno == errno.ELOOP:
        return FileProblem(path, "is a symbolic link that loops", "special")
    return FileProblem(path, f"cannot be read ({os.strerror(e.errno).lower() if e.errno else e})",
                       "oserror")


def regular_file(path, *, limit: int | None = None, what: str = "a file") -> os.stat_result:
    """``stat`` of ``path`` (symbolic links followed), refusing anything but a regular file of
    at most ``limit`` bytes with a :class:`FileProblem`."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise _os_problem(path, e) from None
    except ValueError:  # an embedded NUL byte
        raise FileProblem(path, "is not a valid path (it holds a NUL byte)", "name") from None
    _check_stat(path, st, limit, what)
    return st


def _check_stat(path, st: os.stat_result, limit: int | None, what: str) -> None:
    kind = kind_of(st.st_mode)
    if kind == "a directory":
        raise FileProblem(path, f"is a directory; expected {what}", "directory")
    if kind is not None:
        raise FileProblem(path, f"is {kind}, not a regular file; expected {what}", "special")
    if limit is not None and st.st_size > limit:
        raise FileProblem(path, f"is {st.st_size:,} bytes, above the limit of {limit:,} bytes "
                                f"for {what}", "size")


@contextlib.contextmanager
def open_regular(path, *, limit: int | None = None, what: str = "a file") -> Iterator[BinaryIO]:
    """Open ``path`` for binary reading after checking, on the open descriptor, that it is a
    regular file of at most ``limit`` bytes. The open itself never blocks (``O_NONBLOCK``,
    cleared once the file is known to be regular)."""
    regular_file(path, limit=limit, what=what)  # the usual messages, before opening
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) \
        | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise _os_problem(path, e) from None
    try:
        _check_stat(path, os.fstat(fd), limit, what)  # what was opened, not what was stat'ed
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f


def read_bounded(path, limit: int, what: str = "a file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (refused otherwise, also when
    it grows past the limit while being read)."""
    with open_regular(path, limit=limit, what=what) as f:
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise _os_problem(path, e) from None
    if len(data) > limit:
        raise FileProblem(path, f"is over the limit of {limit:,} bytes for {what}", "size")
    return data


def check_output_file(path, field: str) -> None:
    """Refuse to write ``path`` when something other than a regular file is there: a FIFO,
    a device, a socket, a folder, or a symbolic link (mentor replaces files by rename, which
    would replace the link or the device node itself, never write through it)."""
    long = _long_component(path)
    if long is not None:
        raise MentorError(f"{field}: {shown(path)} has a name component longer than {NAME_MAX} "
                          "bytes (the file system's limit); expected a shorter name")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise MentorError(f"{field}: cannot write {shown(path)} "
                          f"({os.strerror(e.errno).lower() if e.errno else e})") from None
    if stat.S_ISREG(st.st_mode):
        return
    kind = kind_of(st.st_mode)
    if kind == "a directory":
        raise MentorError(f"{field}: {shown(path)} is a folder; expected a file name to write")
    raise MentorError(f"{field}: {shown(path)} is {kind}; expected a regular file or a new "
                      "name (mentor writes a new file and renames it into place, which would "
                      f"replace {kind} rather than write to it)")
