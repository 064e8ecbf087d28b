"""A tiny finished run folder on iris, for the export and latency tests (a few seconds)."""

from __future__ import annotations

from pathlib import Path


def tiny_run(root: Path, methods: list[dict] | None = None, seeds=(0, 1)) -> Path:
    """Train a tiny teacher and students with ``methods`` through ``run_recipe``; return the
    finished run folder."""
    from mentor.commands.run import run_recipe

    recipe = {"name": "tiny", "data": {"source": "iris"},
              "teacher": {"model": "mlp", "hidden": [16], "train": {"epochs": 5}},
              "student": {"model": "mlp", "hidden": [8]},
              "methods": methods or [{"name": "scratch"},
                                     {"name": "kd", "temperature": 2.0, "alpha": 0.5}],
              "train": {"epochs": 5, "seeds": list(seeds)}}
    return run_recipe(recipe, root, progress=False)
