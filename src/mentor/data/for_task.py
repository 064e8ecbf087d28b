"""The splits a recipe's ``data`` section describes, read for the recipe's task: the one
place a task's own data source is chosen (a run, and a run's export or report reloading
it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..recipe import DataSpec
    from .splits import Splits


def task_splits(task: str, spec: "DataSpec") -> "Splits":
    """``tagging``: :func:`mentor.tagging.source.tagging_splits`; ``graph_nodes``:
    :func:`mentor.graphs.source.graph_splits`; any other task: ``spec.load()``."""
    if task == "tagging":
        from ..tagging.source import tagging_splits
        return tagging_splits(spec)
    if task == "graph_nodes":
        from ..graphs.source import graph_splits
        return graph_splits(spec)
    return spec.load()
