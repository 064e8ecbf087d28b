"""One writer per folder: an exclusive ``flock`` on ``FOLDER/.lock`` naming its holder.

Used by the label store (one labeler per store folder) and by run folders (the run that
created a ``.partial`` folder, or the one ``--resume`` that continues it).

``flock`` rather than a create-exclusive file: the kernel releases the lock when its process
dies, SIGKILL included, so a killed writer never leaves a lock that blocks the next one (the
stale ``.lock`` file it leaves is simply locked again). The holder removes the file on
release while still locking it; a contender that opened the removed file sees that its file
is no longer the one at ``FOLDER/.lock`` and opens again. A folder renamed while locked (a
run folder published under its final name) keeps its lock: the holder is told the new place
(:meth:`FolderLock.moved`) and removes the file there. POSIX only (no ``fcntl``: no
locking); on NFS, Linux emulates ``flock`` with byte-range locks.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import time
from pathlib import Path
from typing import Callable, Iterator

from ..errors import MentorError

LOCK = ".lock"

__all__ = ["FolderLock", "LOCK", "folder_lock", "lock_holder"]


class FolderLock:
    """A held lock: ``path`` is where its file is now."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def moved(self, folder: Path) -> None:
        """The locked folder was renamed to ``folder`` (the file moved with it)."""
        self.path = Path(folder) / LOCK


@contextlib.contextmanager
def folder_lock(folder, refuse: Callable[[str], BaseException],
                missing: Callable[[], BaseException] | None = None,
                what: str = "mentor") -> Iterator[FolderLock | None]:
    """Hold ``folder``'s lock. A lock another process holds raises ``refuse(holder)``, with
    ``holder`` in words (``pid 12 on host, since ...``); a folder that does not exist raises
    ``missing()`` (by default: the folder is created, as a label store's is). ``what`` is
    recorded for the contenders' messages."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking
        yield None
        return
    path = Path(folder) / LOCK
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    for _ in range(100):
        try:
            fd = os.open(path, flags, 0o644)
        except FileNotFoundError:
            if missing is not None:
                raise missing() from None
            raise
        except OSError as e:
            raise MentorError(f"'{folder}': cannot open its lock file '{path}' "
                              f"({os.strerror(e.errno).lower() if e.errno else e}); expected a "
                              "writable folder") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device named .lock
            os.close(fd)
            raise MentorError(f"'{folder}': its lock file '{path}' is not a regular file; "
                              "expected mentor's own .lock (remove it)")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise refuse(lock_holder(path)) from None
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(os.fstat(fd), current):
            break
        os.close(fd)  # we locked a file its holder had just removed: open the new one
        if missing is not None and not Path(folder).is_dir():
            raise missing()  # ... or the folder itself went away (it was published)
    else:
        raise MentorError(f"'{folder}': could not take its lock file '{path}'")
    lock = FolderLock(path)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                 "what": what}).encode())
        yield lock
    finally:
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(fd), os.stat(lock.path)):
                os.unlink(lock.path)  # still locked: nobody can take the file we remove
        os.close(fd)


SETTLE_S = 2.0  # how long a contender waits for a new holder to write its record


def lock_holder(path: Path, settle_s: float | None = None) -> str:
    """The holder recorded in a locked lock file, in words. A holder writes its record just
    after taking the lock, over the record a killed holder left; a contender that reads in
    between (an empty or half-written record, or one naming a process gone from this host)
    reads again for up to ``settle_s`` seconds (:data:`SETTLE_S`) before it says the pid is
    unknown."""
    deadline = time.monotonic() + (SETTLE_S if settle_s is None else settle_s)
    while True:
        info, words = _read_holder(path)
        if (info is not None and _alive(info)) or time.monotonic() >= deadline:
            return words
        time.sleep(0.01)


def _read_holder(path: Path) -> tuple[dict | None, str]:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return {}, "pid unknown: its lock file is not a regular file"
            info = json.loads(os.read(fd, 4096))
        finally:
            os.close(fd)
        what = f"{info['what']}, " if isinstance(info.get("what"), str) else ""
        return info, f"{what}pid {int(info['pid'])} on {info['host']}, since {info['started']}"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, "pid unknown: it is starting"


def _alive(info: dict) -> bool:
    """False only for a record naming a process of this host that no longer exists."""
    if "pid" not in info or info.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(info["pid"]), 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError, TypeError, OverflowError):
        return True
    return True
