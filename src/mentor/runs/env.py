"""What a run records about itself: versions, plugins, git hash, command, time."""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def git_hash(path: Path | None = None) -> str | None:
    """The commit of the mentor source tree (or of ``path``), with ``-dirty`` if modified."""
    where = path or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                              text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=where, capture_output=True, text=True, timeout=5)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(seeds: list[int] | None = None) -> dict:
    import torch
    return {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "seeds": seeds,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "versions": {p: _version(p) for p in ("mentor", "torch", "accelerate", "numpy",
                                             "scikit-learn", "pydantic", "safetensors")},
        "git": git_hash(),
        "plugins": _plugins(),
    }


def _plugins() -> list[dict]:
    """The plugins loaded in this process and what each registered (see mentor.plugins)."""
    from ..plugins import loaded_plugins
    return [{"entry_point": p.name, "value": p.value, "distribution": p.distribution,
             "version": p.version, "components": list(p.components)}
            for p in loaded_plugins()]


def timestamp() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S")
