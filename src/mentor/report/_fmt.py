"""Small formatting helpers shared by the table and HTML renderers."""

from __future__ import annotations

import math
from typing import Any, Iterable

from ..selection import best_index as by_validation

__all__ = [
    "fmt_params",
    "fmt_acc",
    "fmt_pct",
    "fmt_speedup",
    "grouped_rows",
    "row_description",
    "setting_descriptions",
]

DASH = "—"


def _num(value: Any) -> float | None:
    """Return ``value`` as a finite float, or ``None``."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def fmt_params(value: Any) -> str:
    v = _num(value)
    return DASH if v is None else f"{int(round(v)):,}"


def fmt_acc(mean: Any, std: Any = None) -> str:
    """``0.95, 0.004 -> "95.00 ± 0.40 %"``."""
    m = _num(mean)
    if m is None:
        return DASH
    s = _num(std)
    if s is None:
        return f"{100 * m:.2f} %"
    return f"{100 * m:.2f} ± {100 * s:.2f} %"


def fmt_ppl(mean: Any, std: Any = None) -> str:
    """A perplexity: ``281.34, 3.02 -> "281.3 ± 3.0"``."""
    m = _num(mean)
    if m is None:
        return DASH
    s = _num(std)
    return f"{m:.1f}" if s is None else f"{m:.1f} ± {s:.1f}"


def has_perplexity(results: dict) -> bool:
    """Whether the run measured test perplexity (language-model runs)."""
    return any(_num(r.get("test_perplexity_mean")) is not None
               for r in results.get("rows") or [])


def fmt_pct(value: Any) -> str:
    v = _num(value)
    return DASH if v is None else f"{100 * v:.2f} %"


def fmt_speedup(value: Any) -> str:
    v = _num(value)
    return DASH if v is None else f"{v:.1f}×"


def _sort_key(row: dict) -> tuple[int, float]:
    m = _num(row.get("test_accuracy_mean"))
    return (1, 0.0) if m is None else (0, -m)


def grouped_rows(results: dict) -> list[tuple[str, list[dict]]]:
    """Rows grouped by setting, settings in declared order, then any others.

    Within a setting rows are sorted by mean test accuracy, descending
    (rows without an accuracy go last; ties keep input order).
    """
    rows: Iterable[dict] = results.get("rows") or []
    order: list[str] = [
        str(s.get("name")) for s in (results.get("settings") or []) if s.get("name") is not None
    ]
    groups: dict[str, list[dict]] = {name: [] for name in order}
    for row in rows:
        name = str(row.get("setting", ""))
        groups.setdefault(name, []).append(row)
    return [(name, sorted(rs, key=_sort_key)) for name, rs in groups.items() if rs]


_TEACHER_FACTS = {
    "test_accuracy": lambda v: f"test accuracy {fmt_acc(v)}",
    "test_accuracy_without_labels": lambda v: f"without the label code {fmt_acc(v)}",
    "test_accuracy_without_graph": lambda v: f"without the graph {fmt_acc(v)}",
    "params": lambda v: f"{fmt_params(v)} params",
    "val_accuracy": lambda v: f"validation accuracy {fmt_acc(v)}",
    "test_perplexity": lambda v: f"test perplexity {fmt_ppl(v)}",
    "val_perplexity": lambda v: f"validation perplexity {fmt_ppl(v)}",
}


def teacher_facts(teacher: dict, fields: tuple[str, ...]) -> list[str]:
    """The recorded teacher facts among ``fields``, formatted, in that order; a teacher of a
    task with its own metric (``metric_name``, e.g. "test span F1") names it instead of
    accuracy."""
    own = teacher.get("metric_name")
    out = []
    for f in fields:
        if teacher.get(f) is None:
            continue
        fact = _TEACHER_FACTS[f](teacher[f])
        if own and f in ("test_accuracy", "val_accuracy"):
            fact = fact.replace("test accuracy", own).replace(
                "validation accuracy", own.replace("test", "validation", 1))
        out.append(fact)
    return out


def row_description(row: dict) -> str:
    """A result row's description, led by what its method saw when its setting's methods
    were allowed unequal views or rows (``train.allow_unequal``; see mentor.fairness)."""
    desc = str(row.get("description") or "")
    note = row.get("budget_note")
    return f"[unequal: {note}] {desc}" if note else desc


def setting_descriptions(results: dict) -> dict[str, str]:
    return {
        str(s.get("name")): str(s.get("description") or "")
        for s in (results.get("settings") or [])
        if s.get("name") is not None
    }


def best_index(rows: list[dict]) -> int | None:
    """Index of the row to highlight: the best mean validation accuracy (selection never
    reads the test split; :mod:`mentor.selection`), None when no row has one."""
    return by_validation(rows)


def metric_name(results: dict) -> str:
    """The leaderboard's score column: test accuracy, or the task's own metric name."""
    return str(results.get("metric_name") or "test accuracy")
