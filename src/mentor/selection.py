"""Model selection reads the validation split only.

Every place that picks "the best" of a run -- the default student of ``mentor export``,
the highlighted row of the leaderboards, the method whose confusion matrix ``mentor report``
shows -- picks by mean validation accuracy (``val_accuracy_mean`` of ``results.json``; the
lowest ``val_perplexity_mean`` for language-model runs selected by perplexity), the first
row on ties; test figures are reported, never used to choose.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

KEY = "val_accuracy_mean"
PERPLEXITY = "val_perplexity_mean"  # tokens runs selected by perplexity


def _number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def val_score(row: dict[str, Any]) -> float:
    """A row's mean validation accuracy; minus its mean validation perplexity when it was
    selected by perplexity (``val_perplexity_mean``: lower is better); -inf when it has
    neither."""
    v = row.get(KEY)
    if _number(v):
        return float(v)
    ppl = row.get(PERPLEXITY)
    return -float(ppl) if _number(ppl) else -math.inf


def best_index(rows: Sequence[dict[str, Any]]) -> int | None:
    """Index of the row with the best validation accuracy (first on ties); ``None`` when no
    row has one."""
    best, score = None, -math.inf
    for i, row in enumerate(rows):
        if val_score(row) > score:
            best, score = i, val_score(row)
    return best


def best_row(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The row with the best validation accuracy; the first row when none has one."""
    i = best_index(rows)
    return rows[0 if i is None else i]
