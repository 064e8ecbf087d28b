"""A single self-contained HTML report for a run."""

from __future__ import annotations

import base64
import datetime as _dt
from html import escape
from pathlib import Path

from ._fmt import (
    best_index,
    fmt_acc,
    fmt_params,
    fmt_pct,
    fmt_ppl,
    fmt_speedup,
    has_perplexity,
    grouped_rows,
    metric_name,
    row_description,
    setting_descriptions,
    teacher_facts,
)
from .._util.atomic import atomic_write_text
from .plots import accuracy_vs_latency, accuracy_vs_params, learning_curves, pseudo_label_quality

__all__ = ["write_report"]

_CSS = """
:root { color-scheme: light; }
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 2rem auto; max-width: 1100px; padding: 0 1.2rem; color: #1d2330;
       line-height: 1.45; background: #fff; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #dde1e8; padding-bottom: .25rem; }
h3 { font-size: 1.05rem; margin: 1.6rem 0 .2rem; }
.meta { color: #5a6272; margin: 0 0 1rem; }
.meta dt { display: inline; font-weight: 600; }
.meta dd { display: inline; margin: 0 1.4rem 0 .3rem; }
.teacher { background: #f6f8fb; border-left: 4px solid #e0b400; padding: .6rem .9rem; margin: 1rem 0; }
.desc { color: #485063; margin: .1rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; margin-bottom: .6rem; }
th, td { padding: .35rem .6rem; border-bottom: 1px solid #e6e9ef; text-align: left; vertical-align: top; }
th { background: #f1f3f7; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.best td { font-weight: 700; background: #fff8dc; }
tr:hover td { background: #f8fafc; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e6e9ef; }
figcaption { color: #5a6272; font-size: .9rem; }
footer { margin-top: 3rem; color: #8a91a0; font-size: .8rem; }
"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _img_tag(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _teacher_line(results: dict) -> str:
    teacher = results.get("teacher") or {}
    if not teacher:
        return '<p class="teacher">No teacher information recorded.</p>'
    parts = [f"<strong>Teacher:</strong> {_e(teacher.get('description') or 'teacher')}"]
    parts += [_e(f) for f in teacher_facts(teacher, ("params", "test_accuracy",
                                                     "test_accuracy_without_labels",
                                                     "test_accuracy_without_graph",
                                                     "test_perplexity", "val_accuracy",
                                                     "val_perplexity"))]
    return f'<p class="teacher">{" · ".join(parts)}</p>'


_COLUMNS = [
    ("method", ""),
    ("student params", "num"),
    ("test accuracy", "num"),
    ("teacher agreement", "num"),
    ("speed-up vs teacher", "num"),
    ("seeds", "num"),
    ("description", ""),
]


def _columns(perplexity: bool) -> list[tuple[str, str]]:
    """The leaderboard's columns; language-model runs add test perplexity after the metric."""
    if not perplexity:
        return _COLUMNS
    at = _COLUMNS.index(("test accuracy", "num")) + 1
    return [*_COLUMNS[:at], ("test perplexity", "num"), *_COLUMNS[at:]]


def _leaderboard_html(setting: str, description: str, rows: list[dict],
                      metric: str = "test accuracy", perplexity: bool = False) -> str:
    out = [f'<section class="setting" id="setting-{_e(setting)}">',
           f"<h3>{_e(setting)}</h3>"]
    if description:
        out.append(f'<p class="desc">{_e(description)}</p>')
    head = "".join(
        f'<th class="{cls}">{_e(metric if name == "test accuracy" else name)}</th>' if cls
        else f"<th>{_e(name)}</th>" for name, cls in _columns(perplexity)
    )
    out.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>")
    best = best_index(rows)
    for i, row in enumerate(rows):
        seeds = row.get("seeds")
        n_seeds = len(seeds) if isinstance(seeds, (list, tuple)) else None
        cells = [
            (row.get("method", ""), ""),
            (fmt_params(row.get("params")), "num"),
            (fmt_acc(row.get("test_accuracy_mean"), row.get("test_accuracy_std")), "num"),
            *([(fmt_ppl(row.get("test_perplexity_mean"), row.get("test_perplexity_std")),
                "num")] if perplexity else []),
            (fmt_pct(row.get("teacher_agreement_mean")), "num"),
            (fmt_speedup(row.get("speedup")), "num"),
            ("—" if n_seeds is None else n_seeds, "num"),
            (row_description(row), ""),
        ]
        tds = "".join(
            f'<td class="{cls}">{_e(v)}</td>' if cls else f"<td>{_e(v)}</td>"
            for v, cls in cells
        )
        cls = ' class="best"' if i == best else ""
        out.append(f"<tr{cls}>{tds}</tr>")
    out.append("</tbody>\n</table>\n</section>")
    return "\n".join(out)


def write_report(run_dir: Path, results: dict, histories: list[dict]) -> Path:
    """Write plots and a self-contained ``report.html`` into ``run_dir``.

    Creates ``run_dir/plots/learning_curves.png``,
    ``run_dir/plots/accuracy_vs_params.png``, ``run_dir/plots/accuracy_vs_latency.png`` (when
    the leaderboard measured latency) and ``run_dir/report.html``
    (plots inlined as base64 PNG, inline CSS, no scripts, no network
    references). All files are written atomically. Returns the HTML path.
    """
    run_dir = Path(run_dir)
    results = results or {}
    histories = histories or []
    plots_dir = run_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)

    curves_png = learning_curves(histories, plots_dir / "learning_curves.png", results=results)
    scatter_png = accuracy_vs_params(results, plots_dir / "accuracy_vs_params.png")
    pl_png = pseudo_label_quality(histories, plots_dir / "pseudo_labels.png", results=results)
    measured = leaderboard_latency(results)
    lat_figure = "" if measured is None else f"""<figure>
{_img_tag(accuracy_vs_latency(results, measured, plots_dir / "accuracy_vs_latency.png"),
          "test accuracy vs CPU latency")}
<figcaption>Test accuracy (±1 std over seeds) vs CPU latency of one forward pass over the test
split (batch {_e(measured["batches"][0])}, {_e(measured["threads"])} thread(s), median of
interleaved teacher/student rounds: the leaderboard's speed-up); the star is the teacher.
<code>mentor bench --latency RUN_DIR</code> measures batch 1 and 256.</figcaption>
</figure>"""
    pl_figure = "" if pl_png is None else f"""<figure>
{_img_tag(pl_png, "pseudo-label precision and coverage vs epoch")}
<figcaption>Pseudo-label quality on the unlabeled training rows, scored against their hidden labels:
precision = share of admitted pseudo-labels that are right (weighted by the refiners' weights),
coverage = share of unlabeled rows admitted. Mean over seeds.</figcaption>
</figure>"""

    name = results.get("name") or run_dir.name or "run"
    descriptions = setting_descriptions(results)
    groups = grouped_rows(results)

    meta = [("run", name)]
    if results.get("created"):
        meta.append(("created", results["created"]))
    meta.append(("settings", len(groups)))
    meta.append(("rows", len(results.get("rows") or [])))
    meta.append(("runs", len(histories)))
    meta_html = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta)

    if groups:
        boards = "\n".join(
            _leaderboard_html(setting, descriptions.get(setting, ""), rows,
                              metric_name(results), has_perplexity(results))
            for setting, rows in groups
        )
    else:
        boards = "<p>No results recorded.</p>"

    body = f"""<h2>Leaderboards</h2>
<p class="desc">Test accuracy is mean ± std over seeds; the best method in each setting is highlighted.
Teacher agreement is the share of inputs on which student and teacher predict the same class.</p>
{boards}
<h2>Plots</h2>
<figure>
{_img_tag(curves_png, "validation accuracy vs epoch, one panel per setting")}
<figcaption>Validation {"exact match per optimizer step" if results.get("task") == "tokens"
else "accuracy per epoch"}: mean over seeds, shaded band = ±1 std.</figcaption>
</figure>
<figure>
{_img_tag(scatter_png, "test accuracy vs student parameters")}
<figcaption>Test accuracy (error bars = ±1 std over seeds) vs parameter count; the star is the teacher.</figcaption>
</figure>
{lat_figure}
{pl_figure}
"""
    header = f'<dl class="meta">{meta_html}</dl>\n{_teacher_line(results)}'
    return atomic_write_text(run_dir / "report.html",
                             html_page(f"mentor report — {name}", header, body))


def leaderboard_latency(results: dict) -> dict | None:
    """The leaderboard's latency measurements (each row's ``latency``: teacher and student
    on the test split) in the form :func:`~mentor.report.plots.accuracy_vs_latency` plots;
    ``None`` when no row has one."""
    students, teachers, batches, threads = [], {}, [], None
    settings = {s.get("name"): s for s in results.get("settings") or []}
    for row in results.get("rows") or []:
        lat = row.get("latency")
        if not isinstance(lat, dict) or not lat.get("student_latency_s"):
            continue
        b = str(lat.get("batch"))
        batches.append(b)
        threads = lat.get("threads", threads)
        students.append({"setting": row.get("setting"), "method": row.get("method"),
                         "test_accuracy_mean": row.get("test_accuracy_mean"),
                         "test_accuracy_std": row.get("test_accuracy_std"),
                         "batches": {b: {"latency_s": lat["student_latency_s"]}}})
        info = (settings.get(row.get("setting")) or {}).get("teacher") or results.get("teacher")
        if info and info.get("test_accuracy") is not None and lat.get("teacher_latency_s"):
            teachers.setdefault(row.get("setting"), {
                "test_accuracy": info["test_accuracy"],
                "batches": {b: {"latency_s": lat["teacher_latency_s"]}}})
    if not students:
        return None
    return {"batches": list(dict.fromkeys(batches)), "students": students,
            "teachers": list(teachers.values()), "threads": threads}


def html_page(title: str, header: str, body: str, css: str = "") -> str:
    """A complete self-contained page: inline CSS, no scripts, no network references;
    ``header`` and ``body`` are HTML already escaped by the caller; ``css`` is appended to
    the page's style sheet."""
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_CSS}{css}</style>
</head>
<body>
<header>
<h1>{_e(title)}</h1>
{header}
</header>
<main>
{body}</main>
<footer>Generated by mentor at {_e(generated)}.</footer>
</body>
</html>
"""
