"""The leaderboard table printed by the CLI."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from .fit import Fitted
from ._fmt import (
    best_index,
    fmt_acc,
    fmt_params,
    fmt_pct,
    fmt_ppl,
    fmt_speedup,
    has_perplexity,
    grouped_rows,
    setting_descriptions,
    metric_name,
    row_description,
    teacher_facts,
)

__all__ = ["leaderboard", "leaderboard_table"]


def _caption(results: dict) -> str:
    lines: list[str] = []
    teacher = results.get("teacher") or {}
    if teacher:
        lines.append(_teacher_line("Teacher", teacher))
    for name, desc in setting_descriptions(results).items():
        if desc:
            lines.append(f"{name}: {desc}")
    for s in results.get("settings") or []:  # settings that trained a teacher of their own
        own = s.get("teacher")
        if own and own != teacher:
            lines.append(_teacher_line(f"{s.get('name')} teacher", own))
    return "\n".join(lines)


def _teacher_line(title: str, teacher: dict) -> str:
    facts = teacher_facts(teacher, ("test_accuracy", "test_accuracy_without_labels",
                                    "test_accuracy_without_graph", "test_perplexity",
                                    "params"))
    return ", ".join([f"{title}: {teacher.get('description') or 'teacher'}", *facts])


def leaderboard_table(results: dict) -> Table:
    """Build a rich leaderboard for a run's ``results`` dict.

    One section per setting (settings in declared order); inside a setting
    rows are sorted by mean test accuracy (display only), and the row with the
    best mean validation accuracy -- the one model selection would pick -- is
    bold.
    """
    name = results.get("name") or "run"
    caption = _caption(results)
    table = Table(
        title=f"Leaderboard — {name}",
        caption=caption or None,
        caption_justify="left",
        show_lines=False,
        header_style="bold",
    )
    table.add_column("setting", no_wrap=True)
    table.add_column("method", no_wrap=True)
    table.add_column("student params", justify="right", no_wrap=True)
    table.add_column(metric_name(results), justify="right", no_wrap=True)
    ppl = has_perplexity(results)
    if ppl:
        table.add_column("test perplexity", justify="right", no_wrap=True)
    table.add_column("teacher agreement", justify="right", no_wrap=True)
    table.add_column("speed-up vs teacher", justify="right", no_wrap=True)
    table.add_column("description", overflow="fold", ratio=1)

    groups = grouped_rows(results)
    for gi, (setting, rows) in enumerate(groups):
        if gi > 0:
            table.add_section()
        best = best_index(rows)
        for ri, row in enumerate(rows):
            cells = [
                setting,
                str(row.get("method", "")),
                fmt_params(row.get("params")),
                fmt_acc(row.get("test_accuracy_mean"), row.get("test_accuracy_std")),
                *([fmt_ppl(row.get("test_perplexity_mean"), row.get("test_perplexity_std"))]
                  if ppl else []),
                fmt_pct(row.get("teacher_agreement_mean")),
                fmt_speedup(row.get("speedup")),
                row_description(row),
            ]
            # Text objects so that brackets in names are never read as markup.
            table.add_row(
                *(Text(c) for c in cells),
                style="bold" if ri == best else None,
            )
    return table


def leaderboard(results: dict) -> Fitted:
    """The leaderboard as the CLI prints it: :func:`leaderboard_table` fitted to the
    console's width (:class:`~mentor.report.fit.Fitted`). No figure or method name is cut;
    where the descriptions do not fit beside the numbers they follow the table, one line per
    method (``setting / method`` when a method's description differs between settings)."""
    return Fitted(leaderboard_table(results), detach=("description",),
                  key=("setting", "method"))
