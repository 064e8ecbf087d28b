"""Atomic file writes: a temp file in the destination folder, fsync, then ``os.replace``.

A reader sees the old file or the complete new one, never a partial write; on failure the
temp file is removed and the destination is untouched. A write that fails because the disk
is full, the file system read-only or the folder not writable raises a
:class:`~mentor.errors.WriteError` naming the file (one sentence, CLI exit code 2).

The destination must be a regular file or a new name: an existing FIFO, device, socket,
folder or symbolic link there is refused (``os.replace`` would replace the link or the device
node itself). ``durable=False`` skips the ``fsync``: the rename alone keeps a reader safe
from a killed process (the page cache outlives it); only a power loss can then lose the
file's last contents, which the training checkpoints detect by their checksums.
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
def atomic_path(path: Path, suffix: str = "", durable: bool = True) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success it is fsynced (unless ``durable`` is
    False) and replaces ``path``."""
    path = Path(path)
    _check_target(path)
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
        if durable:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        _raise_write_error(path, e)
        raise


def _check_target(path: Path) -> None:
    """A regular file or nothing may be at ``path`` (see the module's docstring)."""
    from ..errors import WriteError
    from .safeio import kind_of, shown
    try:
        st = os.lstat(path)
    except OSError:
        return  # nothing there (or a path problem the write itself reports)
    kind = kind_of(st.st_mode)
    if kind is not None:
        raise WriteError(f"cannot write {shown(path)}: it is {kind}; expected a regular file or "
                         "a new name (mentor writes a new file and renames it into place, which "
                         f"would replace {kind} rather than write to it)")


# failures of the file system that the user can act on (free space, another folder)
_USER_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EROFS, errno.EACCES,
                errno.EPERM, errno.ENAMETOOLONG}


def _raise_write_error(path: Path, e: BaseException) -> None:
    """Raise a :class:`WriteError` for ``e`` if it is a full, read-only or forbidden file
    system (other errors are left to the caller to re-raise)."""
    if isinstance(e, OSError) and e.errno in _USER_ERRNOS:
        from ..errors import WriteError
        from .safeio import shown
        if e.errno == errno.ENAMETOOLONG:
            raise WriteError(f"cannot write {shown(path)} (a name component is longer than 255 "
                             "bytes, the file system's limit); expected a shorter name") from e
        raise WriteError(f"cannot write {shown(path)} ({os.strerror(e.errno).lower()}); "
                         "expected a writable folder with free space") from e


def atomic_write(path: Path, write: Callable[[str], object], durable: bool = True) -> Path:
    """Write ``path`` through ``write(temp_file_name)`` atomically."""
    with atomic_path(Path(path), durable=durable) as tmp:
        write(str(tmp))
    return Path(path)


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8",
                      durable: bool = True) -> Path:
    with atomic_path(Path(path), durable=durable) as tmp:
        with open(tmp, "w", encoding=encoding, newline="\n") as fh:
            fh.write(text)
    return Path(path)
