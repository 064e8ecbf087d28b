"""Atomic file writes: a temp file in the destination folder, fsync, then ``os.replace``.

A reader sees the old file or the complete new one, never a partial write; on failure the
temp file is removed and the destination is untouched. A write that fails because the disk
is full, the file system read-only or the folder not writable raises a
:class:`~mentor.errors.WriteError` naming the file (one sentence, CLI exit code 2).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["atomic_path", "atomic_write", "atomic_write_text"]


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success it is fsynced and replaces ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f"{suffix}.tmp",
                                        dir=path.parent)
    except OSError as e:
        _raise_write_error(path, e)
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are ordinary files
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        _raise_write_error(path, e)
        raise


# failures of the file system that the user can act on (free space, another folder)
_USER_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EROFS, errno.EACCES,
                errno.EPERM}


def _raise_write_error(path: Path, e: BaseException) -> None:
    """Raise a :class:`WriteError` for ``e`` if it is a full, read-only or forbidden file
    system (other errors are left to the caller to re-raise)."""
    if isinstance(e, OSError) and e.errno in _USER_ERRNOS:
        from .errors import WriteError
        raise WriteError(f"cannot write '{path}' ({os.strerror(e.errno).lower()}); expected "
                         "a writable folder with free space") from e


def atomic_write(path: Path, write: Callable[[str], object]) -> Path:
    """Write ``path`` through ``write(temp_file_name)`` atomically."""
    with atomic_path(Path(path)) as tmp:
        write(str(tmp))
    return Path(path)


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    with atomic_path(Path(path)) as tmp:
        with open(tmp, "w", encoding=encoding, newline="\n") as fh:
            fh.write(text)
    return Path(path)
