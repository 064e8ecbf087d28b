"""Run folders: created atomically under a unique name, completed by one rename.

A run is written into ``<out>/.<name>-<time>.partial`` and renamed to ``<out>/<name>-<time>``
when complete, so a reader never sees a half-written run. Two processes that start a run of
the same name in the same second get different folders: the partial folder is claimed with
an exclusive ``mkdir`` (the first process wins, the other takes the next suffix ``-2``,
``-3``, ...), and the final rename refuses to replace an existing run.

One writer per run folder: the run that claimed it, or the one ``--resume`` that continues
it, holds its lock (:func:`run_lock`, the label store's :func:`mentor._util.locks.folder_lock`)
until the folder is published; a second writer is refused naming the holder. A folder is
published only complete (:func:`finish_run_dir` checks the files a run must hold).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from typing import Iterator

import yaml

from .._util.atomic import atomic_write_text
from ..errors import MentorError
from .._util.locks import FolderLock, folder_lock
from ..recipe import read_yaml
from .env import timestamp
from .._util.safeio import NAME_MAX, shown

# the longest name a run may have: '.<name>-<YYYYmmdd-HHMMSS>-<999>.partial' fits NAME_MAX
MAX_NAME = NAME_MAX - len(".-00000000-000000-999.partial") - len("-active")

PARTIAL = ".partial"


def claim_run_dir(out_root: Path, name: str, stamp: str | None = None) -> tuple[Path, Path]:
    """Create and return ``(partial folder, final folder)`` for a new run of ``name``."""
    out_root = Path(out_root)
    stamp = stamp or timestamp()
    if len(os.fsencode(name)) > MAX_NAME:
        raise MentorError(f"run name {name[:40]!r}... is {len(os.fsencode(name))} bytes; "
                          f"expected at most {MAX_NAME} (a folder name is limited to "
                          f"{NAME_MAX} bytes)")
    try:
        out_root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MentorError(f"--out: cannot create the runs folder {shown(out_root)} "
                          f"({_strerror(e)})") from None
    for i in range(1, 1000):
        base = f"{name}-{stamp}" if i == 1 else f"{name}-{stamp}-{i}"
        final, tmp = out_root / base, out_root / f".{base}{PARTIAL}"
        if final.exists():
            continue
        try:
            tmp.mkdir()
        except FileExistsError:
            continue
        except OSError as e:
            raise MentorError(f"--out: cannot create a run folder in {shown(out_root)} "
                              f"({_strerror(e)})") from None
        return tmp, final
    raise MentorError(f"--out: '{out_root}' already holds 999 runs named {name}-{stamp}; "
                      "expected a free name")


def _strerror(e: OSError) -> str:
    if e.errno == errno.ENAMETOOLONG:
        return f"File name too long: a name component is over {NAME_MAX} bytes"
    return e.strerror or str(e)


@contextlib.contextmanager
def run_lock(folder: Path, field: str = "--resume") -> Iterator[FolderLock | None]:
    """Hold a run folder's lock while writing it; another holder is refused with a
    :class:`MentorError` naming it (a stale lock of a dead process does not block)."""
    folder = Path(folder)
    published = final_name(folder) if folder.name.endswith(PARTIAL) else folder

    def refuse(holder: str) -> MentorError:
        return MentorError(f"{field}: run folder {shown(folder)} is being written by another "
                           f"mentor process ({holder}); expected one writer per run folder: "
                           f"wait for it to finish (it publishes {shown(published)}) or stop it")

    def missing() -> MentorError:
        return MentorError(f"{field}: {shown(folder)} does not exist (another process may have "
                           f"just finished it as {shown(published)}); expected an unfinished "
                           "run folder (.<run>.partial)")
    with folder_lock(folder, refuse, missing, what="mentor run") as lock:
        yield lock


def finish_run_dir(tmp: Path, final: Path, *, lock: FolderLock | None = None,
                   required: tuple[str, ...] = ()) -> Path:
    """Rename the completed partial folder to its final name (never over another run: a
    taken name gets the next free suffix). ``required`` files must be in it (a folder that
    lacks one is not published); ``lock`` (held on ``tmp``) follows the folder."""
    lacking = [r for r in required if not (Path(tmp) / r).is_file()]
    if lacking:
        raise MentorError(f"run folder {shown(tmp)} lacks {lacking[0]}; it is incomplete and "
                          "is not published (resume it with `mentor run --resume`)")
    target, i = final, 1
    while True:
        try:
            if target.exists():
                raise FileExistsError(target)
            os.rename(tmp, target)
            if lock is not None:
                lock.moved(target)
            return target
        except FileExistsError:
            pass
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        i += 1
        target = final.with_name(f"{final.name}-{i}")


def final_name(partial: Path) -> Path:
    """The final folder of a partial run folder (``.x.partial`` -> ``x``)."""
    partial = Path(partial)
    name = partial.name
    if not (name.startswith(".") and name.endswith(PARTIAL)):
        raise MentorError(f"--resume: {shown(partial)} is not an unfinished run folder; expected a "
                          f"folder named .<run>{PARTIAL} (a finished run has nothing to resume)")
    return partial.with_name(name[1:-len(PARTIAL)])


def student_dir(run_dir: Path, setting: str, method: str, seed: int) -> Path:
    """Where a classification run keeps one student's checkpoints and its final weights
    (``student.safetensors``): ``checkpoints/<setting>/<method>/seed<k>``."""
    return Path(run_dir) / "checkpoints" / str(setting) / str(method) / f"seed{seed}"


INPUT = "input.yaml"  # the recipe as given (overrides applied), written when a run starts


def read_resume_input(folder: Path) -> dict:
    """The recipe mapping an unfinished run folder was started with (for ``--resume``)."""
    folder = Path(folder)
    final_name(folder)  # a '.<run>.partial' folder
    if not folder.is_dir():
        raise MentorError(f"--resume: {shown(folder)} does not exist; expected an unfinished "
                          "run folder (.<run>.partial)")
    path = folder / INPUT
    if not path.is_file():
        raise MentorError(f"--resume: {shown(folder)} has no {INPUT}; expected a folder started "
                          "by `mentor run` (it records the recipe it runs)")
    return read_yaml(path)


@contextlib.contextmanager
def open_run_folder(out_root: Path, name: str, raw: dict, resume: Path | None, *,
                    main: bool = True, rank: int = 0):
    """The run folder of one ``mentor run``, for the ``with`` block that fills it: yields
    ``(partial folder, final name, lock)``. A new run claims ``.<name>.partial`` under
    ``out_root`` and records ``raw`` (the recipe with its overrides) as ``input.yaml``;
    ``resume`` reopens such a folder and refuses another recipe. The folder is locked (one
    writer; a second ``--resume`` is refused naming this process) until the block ends. An
    exception deletes a new run's folder (nothing half-written is left), never a resumed one,
    and keeps it on ``KeyboardInterrupt`` (resumable). Processes other than the main one
    write nothing: they get a path that is never created."""
    tmp, final = Path(out_root) / f".rank{rank}.unused", None
    if resume is not None:
        tmp, final = Path(resume), final_name(Path(resume))
    elif main:
        tmp, final = claim_run_dir(Path(out_root), name)
    lock = (run_lock(tmp, "--resume" if resume is not None else "--out") if main
            else contextlib.nullcontext())

    def discard(exc: BaseException) -> None:
        if (main and resume is None and tmp.exists()
                and not isinstance(exc, KeyboardInterrupt)):
            shutil.rmtree(tmp, ignore_errors=True)
    try:
        with lock as held:
            try:
                if resume is not None and read_resume_input(tmp) != raw:
                    raise MentorError(f"--resume: {shown(tmp)} was started with a different "
                                      "recipe; expected the recipe and --set overrides in its "
                                      f"{INPUT}")
                if main and resume is None:  # inside the try: a failed write leaves no folder
                    atomic_write_text(tmp / INPUT, yaml.safe_dump(raw, sort_keys=False))
                yield tmp, final, held
            except BaseException as exc:
                discard(exc)  # while the folder is still locked
                raise
    except BaseException as exc:
        discard(exc)  # the lock was not taken (a resume of the just-claimed folder holds it)
        raise
