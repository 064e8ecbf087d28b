"""Run folders: created atomically under a unique name, completed by one rename.

A run is written into ``<out>/.<name>-<time>.partial`` and renamed to ``<out>/<name>-<time>``
when complete, so a reader never sees a half-written run. Two processes that start a run of
the same name in the same second get different folders: the partial folder is claimed with
an exclusive ``mkdir`` (the first process wins, the other takes the next suffix ``-2``,
``-3``, ...), and the final rename refuses to replace an existing run.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import MentorError
from .runinfo import timestamp

PARTIAL = ".partial"


def claim_run_dir(out_root: Path, name: str, stamp: str | None = None) -> tuple[Path, Path]:
    """Create and return ``(partial folder, final folder)`` for a new run of ``name``."""
    out_root = Path(out_root)
    stamp = stamp or timestamp()
    try:
        out_root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MentorError(f"--out: cannot create the runs folder '{out_root}' "
                          f"({e.strerror})") from None
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
            raise MentorError(f"--out: cannot create a run folder in '{out_root}' "
                              f"({e.strerror})") from None
        return tmp, final
    raise MentorError(f"--out: '{out_root}' already holds 999 runs named {name}-{stamp}; "
                      "expected a free name")


def finish_run_dir(tmp: Path, final: Path) -> Path:
    """Rename the completed partial folder to its final name (never over another run: a
    taken name gets the next free suffix)."""
    target, i = final, 1
    while True:
        try:
            if target.exists():
                raise FileExistsError(target)
            os.rename(tmp, target)
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
        raise MentorError(f"--resume: '{partial}' is not an unfinished run folder; expected a "
                          f"folder named .<run>{PARTIAL} (a finished run has nothing to resume)")
    return partial.with_name(name[1:-len(PARTIAL)])


def student_dir(run_dir: Path, setting: str, method: str, seed: int) -> Path:
    """Where a classification run keeps one student's checkpoints and its final weights
    (``student.safetensors``): ``checkpoints/<setting>/<method>/seed<k>``."""
    return Path(run_dir) / "checkpoints" / str(setting) / str(method) / f"seed{seed}"
