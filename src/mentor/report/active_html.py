"""The self-contained HTML page of a ``mentor active`` run: per-round table and the
accuracy-vs-budget curve, inlined (no scripts, no network references)."""

from __future__ import annotations

from pathlib import Path

from .._util.atomic import atomic_write_text
from ..selection import best_row
from .html import _e, _img_tag, html_page

__all__ = ["write_active_report"]


def _table(rows: list[dict]) -> str:
    head = ("selector", "round", "labels", "teacher queries", "cost", "test accuracy", "seeds")
    out = ["<table>", "<thead><tr>" + "".join(
        f'<th class="num">{h}</th>' if h not in ("selector",) else f"<th>{h}</th>"
        for h in head) + "</tr></thead>", "<tbody>"]
    last = {}
    for r in rows:
        last[r["selector"]] = r
    # highlighted: the last round's best by validation (selection never reads the test split)
    best_final = best_row(list(last.values())) if last else None
    for r in rows:
        cls = ' class="best"' if r is best_final else ""
        cells = [(r["selector"], ""), (r["round"], "num"), (r["labels"], "num"),
                 (r["teacher_queries"], "num"), (f"{r['cost']:g}", "num"),
                 (f"{100 * r['test_accuracy_mean']:.2f} ± {100 * r['test_accuracy_std']:.2f} %",
                  "num"), (r["seeds"], "num")]
        out.append(f"<tr{cls}>" + "".join(
            f'<td class="{c}">{_e(v)}</td>' if c else f"<td>{_e(v)}</td>" for v, c in cells)
            + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def write_active_report(folder: Path, *, name: str, rows: list[dict], curve: Path,
                        budgets: dict) -> Path:
    """Write ``folder/report.html`` for an active run; ``rows`` is the per-round table of
    ``active.json``, ``curve`` the accuracy-vs-budget PNG, ``budgets`` what the recipe
    allowed (shown in the header)."""
    meta = [("run", name)] + [(k, v) for k, v in budgets.items()]
    meta_html = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta)
    body = f"""<h2>Accuracy per round</h2>
<p class="desc">Each round a selector picks pool rows for the oracle (hidden labels revealed)
and/or the teacher (its outputs bought at the declared cost); a fresh student is trained on
everything bought so far and scored on the test split. Mean ± std over seeds; the selector
with the best final round is highlighted.</p>
{_table(rows)}
<h2>Learning curve</h2>
<figure>
{_img_tag(curve, "test accuracy vs budget spent, one line per selector")}
<figcaption>Test accuracy (error bars = ±1 std over seeds) against the labels or teacher
queries spent.</figcaption>
</figure>
"""
    return atomic_write_text(Path(folder) / "report.html",
                             html_page(f"mentor active report — {name}",
                                       f'<dl class="meta">{meta_html}</dl>', body))
