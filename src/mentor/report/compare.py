"""``mentor report RUN_DIR [RUN_DIR ...]``: one self-contained HTML page comparing runs.

Sections: a leaderboard over every run; learning curves; accuracy vs parameters and vs CPU
latency (``RUN_DIR/latency.json`` from ``mentor bench --latency``); teacher-student agreement
and calibration (reliability diagrams, ECE) and confusion matrices, computed by reloading
the saved students and teacher (safetensors only) on the run's test split, rebuilt from the
run's recipe (the split is deterministic given ``data.split_seed``).

The page has inline CSS and plots inlined as base64 PNG; no scripts, no network references.
Every run folder is checked before anything is computed, and the page is written
atomically, so a bad folder leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import math
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._util.atomic import atomic_write_text
from ..errors import MentorError
from ._fmt import _num, fmt_acc, fmt_params, fmt_pct, fmt_speedup, grouped_rows, metric_name
from .calibration import confusion_matrix, reliability_bins
from ..selection import best_index
from ..runs.folder import student_dir
from .html import _e, _img_tag
from .plots import _unique

__all__ = ["Run", "open_runs", "evaluate_setting", "render", "write_compare_report",
           "LATENCY_HINT"]

BINS = 10
LATENCY_HINT = "run `mentor bench --latency RUN_DIR` to add latency"
_HINT_HTML = "run <code>mentor bench --latency RUN_DIR</code> to add latency"
SECTIONS = ("Leaderboard", "Learning curves", "Accuracy vs parameters and latency",
            "Teacher–student agreement and calibration", "Confusion matrices")
# what reloading a checkpoint or the data may raise besides MentorError; it becomes a note
_RELOAD_ERRORS = (MentorError, OSError, RuntimeError, ValueError, KeyError, TypeError,
                  IndexError)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# ---------------------------------------------------------------------------- run folders

@dataclass
class Run:
    """A finished run folder: its results, per-training histories and latency (if any)."""
    path: Path
    label: str  # unique name on the page (the folder name)
    results: dict
    histories: list[dict]
    latency: dict | None = None
    latency_note: str | None = None  # why latency.json is not used

    @property
    def task(self) -> str:
        return str(self.results.get("task") or "classification")


def _histories(run_dir: Path) -> list[dict]:
    """Learning curves from metrics.jsonl: ``{"setting", "method", "seed", "epoch" or
    "step", "val_accuracy"}`` (tokens runs record a list of evaluations per training)."""
    from ..runs.read import metrics

    out = []
    for line in metrics(run_dir):
        h = line.get("history")
        base = {"setting": str(line.get("setting") or "default"),
                "method": str(line.get("method", "")), "seed": line.get("seed")}
        if isinstance(h, dict):
            out.append({**base, **h})
        elif isinstance(h, list):
            evals = [e for e in h if isinstance(e, dict)]
            out.append({**base, "step": [e.get("step") for e in evals],
                        "val_accuracy": [e.get("val_exact_match", e.get("val_accuracy"))
                                         for e in evals]})
    return out


def _latency(run_dir: Path) -> tuple[dict | None, str | None]:
    path = run_dir / "latency.json"
    if not path.is_file():
        return None, None
    try:
        from .._util.safeio import MAX_JSON_BYTES, read_bounded
        data = json.loads(read_bounded(path, MAX_JSON_BYTES))
    except (OSError, ValueError) as e:
        return None, f"its latency.json is not readable JSON ({_first_line(e)})"
    if not isinstance(data, dict) or not isinstance(data.get("students"), list):
        return None, "its latency.json has no students list"
    return data, None


def open_runs(paths: list[Path]) -> list[Run]:
    """Check and read every run folder; the first bad one raises :class:`MentorError`.

    A folder given twice is used once; two folders with the same name are told apart by a
    ``(2)``, ``(3)`` suffix.
    """
    from ..runs.read import open_run

    if not paths:
        raise MentorError("RUN_DIR: no run folder given; expected one or more folders written "
                          "by `mentor run`")
    runs: list[Run] = []
    seen: set[Path] = set()
    for p in paths:
        p = Path(p)
        results = open_run(p, "RUN_DIR")
        key = p.resolve()
        if key in seen:
            continue
        seen.add(key)
        label = p.resolve().name
        taken = {r.label for r in runs}
        if label in taken:
            i = 2
            while f"{label} ({i})" in taken:
                i += 1
            label = f"{label} ({i})"
        latency, note = _latency(p)
        runs.append(Run(p, label, results, _histories(p), latency, note))
    return runs


# ------------------------------------------------------------------ reloading checkpoints

@dataclass
class ModelEval:
    """One model (the teacher, or a method over its seeds) scored on the test split."""
    name: str
    kind: str  # "teacher" or "student"
    seeds: list[Any] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    agreement: list[float] = field(default_factory=list)
    ece: list[float] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    predictions: dict[Any, np.ndarray] = field(default_factory=dict)  # seed -> arg-max
    bins: dict | None = None  # pooled over seeds
    notes: list[str] = field(default_factory=list)
    recorded: list[float] | None = None  # results.json's per-seed test accuracies


@dataclass
class SettingEval:
    """Calibration, agreement and confusion inputs of one setting of one run."""
    run: str
    setting: str
    note: str | None = None  # why nothing could be computed
    data: str = ""
    num_classes: int = 0
    labels: np.ndarray | None = None
    teacher: ModelEval | None = None
    teacher_note: str | None = None
    students: list[ModelEval] = field(default_factory=list)
    best: tuple[str, Any] | None = None  # (method, seed) of the confusion matrix
    best_reason: str = ""


def _test_split(run_dir: Path, setting: str, cache: dict | None = None):
    """The setting's test split rebuilt from the run's recipe
    (:func:`mentor.runs.read.run_splits`); returns ``(x, y, description, splits)``."""
    from ..runs.read import run_splits

    splits, spec, name = run_splits(run_dir, setting, cache)
    return (splits.test.x, splits.test.y,
            f"test split of {spec.source} (split_seed {spec.split_seed}) rebuilt from "
            f"{name}: {len(splits.test.y)} rows, {splits.num_classes} classes", splits)


def _probabilities(module, x) -> np.ndarray:
    import torch

    with torch.no_grad():
        out = torch.cat([module(x[i:i + 4096]) for i in range(0, len(x), 4096)])
    if out.ndim != 2:
        raise MentorError(f"the model outputs shape {tuple(out.shape)}; expected (rows, "
                          "classes)")
    return torch.softmax(out.double(), dim=1).cpu().numpy()


def _load(path: Path, field_name: str):
    from ..runs.read import inference_module, load_model

    module, meta = load_model(path, field_name)
    module, _ = inference_module(module, meta)
    return module, meta


def _score(ev: ModelEval, seed: Any, probs: np.ndarray, y: np.ndarray,
           teacher_pred: np.ndarray | None) -> np.ndarray:
    pred = probs.argmax(axis=1)
    ev.seeds.append(seed)
    ev.predictions[seed] = pred
    ev.accuracy.append(float((pred == y).mean()) if len(y) else float("nan"))
    if teacher_pred is not None:
        ev.agreement.append(float((pred == teacher_pred).mean()) if len(y) else float("nan"))
    b = reliability_bins(probs, y, BINS)
    ev.ece.append(b["ece"])
    ev.confidence.append(float(probs.max(axis=1).mean()) if len(y) else float("nan"))
    return probs


def evaluate_setting(run: Run, setting: str, cache: dict | None = None) -> SettingEval:
    """Reload the setting's teacher and every student seed; score them on the test split
    (``cache``: loaded data by data section, shared between calls)."""
    from ..runs.read import choose_student, setting_info, teacher_checkpoint

    out = SettingEval(run.label, setting)
    if run.task != "classification":
        out.note = (f"{run.label} is a {run.task} (language-model) run: its students generate "
                    "token sequences scored by exact match, so class calibration and "
                    "confusion matrices do not apply")
        return out
    try:
        x, y_t, out.data, splits = _test_split(run.path, setting, cache)
    except _RELOAD_ERRORS as e:
        out.note = (f"the test split of {run.label} / {setting} could not be rebuilt from the "
                    f"run's recipe ({_first_line(e)})")
        return out
    y = y_t.cpu().numpy().astype(np.int64)
    out.labels, out.num_classes = y, int(splits.num_classes)
    data_shape = [int(n) for n in splits.input_shape]

    teacher_pred = None
    tpath = teacher_checkpoint(run.path, run.results, setting)
    if tpath is None:
        out.teacher_note = ("no teacher trained in this run for this setting (none, or a "
                            "checkpoint, ensemble or label-store teacher): not reloaded")
    else:
        rel = tpath.relative_to(run.path)
        try:
            module, meta = _load(tpath, str(rel))
            shape = [int(n) for n in meta.get("mentor.input_shape") or []]
            if shape != data_shape:
                out.teacher_note = (f"the teacher ({rel}) reads inputs of shape {shape} (e.g. "
                                    f"privileged inputs) and the data {data_shape}: not "
                                    "reloaded")
            else:
                ev = ModelEval("teacher", "teacher")
                probs = _probabilities(module, x)
                _score(ev, None, probs, y, None)
                ev.bins = reliability_bins(probs, y, BINS)
                info = setting_info(run.results, setting).get("teacher") or {}
                if _num(info.get("test_accuracy")) is not None:
                    ev.recorded = [float(info["test_accuracy"])]
                out.teacher = ev
                teacher_pred = ev.predictions[None]
        except _RELOAD_ERRORS as e:
            out.teacher_note = f"the teacher ({rel}) could not be reloaded ({_first_line(e)})"

    # rows in leaderboard order (mean test accuracy, for display only)
    for row in dict(grouped_rows(run.results)).get(setting, []):
        method = str(row["method"])
        ev = ModelEval(method, "student")
        recorded = row.get("test_accuracies")
        seeds = list(row.get("seeds") or [])
        if isinstance(recorded, list) and len(recorded) == len(seeds):
            ev.recorded = [float(v) for v in recorded]
        pooled = []
        for seed in seeds:
            ckpt = student_dir(run.path, setting, method, seed) / "student.safetensors"
            rel = ckpt.relative_to(run.path)
            if not ckpt.is_file():
                ev.notes.append(f"seed {seed}: no {rel}")
                continue
            try:
                module, meta = _load(ckpt, str(rel))
                shape = [int(n) for n in meta.get("mentor.input_shape") or []]
                if math.prod(shape) != math.prod(data_shape):
                    raise MentorError(f"it reads inputs of shape {shape}, the rebuilt data "
                                      f"has {data_shape}")
                probs = _probabilities(module, x)
                if probs.shape[1] != out.num_classes:
                    raise MentorError(f"it outputs {probs.shape[1]} classes, the data has "
                                      f"{out.num_classes}")
            except _RELOAD_ERRORS as e:
                ev.notes.append(f"seed {seed}: {rel} could not be rebuilt ({_first_line(e)})")
                continue
            pooled.append(_score(ev, seed, probs, y, teacher_pred))
        if pooled:
            ev.bins = reliability_bins(np.concatenate(pooled), np.tile(y, len(pooled)), BINS)
        out.students.append(ev)

    scored = [s for s in out.students if s.seeds]
    if scored:
        rows = {str(r["method"]): r for r in dict(grouped_rows(run.results)).get(setting, [])}
        best = scored[best_index([rows.get(s.name, {}) for s in scored]) or 0]
        try:
            choice = choose_student(run.path, run.results, setting, best.name)
            seed, how = choice.seed, choice.seed_reason
        except MentorError:
            seed, how = None, ""
        if seed not in best.predictions:
            seed, how = best.seeds[0], "first seed that could be rebuilt"
        out.best = (best.name, seed)
        out.best_reason = f"best method by mean validation accuracy; seed: {how}"
    return out


# ------------------------------------------------------------------------------ the page

_EXTRA_CSS = """
.note { background: #fff7e6; border-left: 4px solid #f0a020; padding: .5rem .8rem;
        margin: .8rem 0; color: #4a3b12; }
.note code, p code { background: #f1f3f7; padding: 0 .25rem; border-radius: 3px; }
td.run, th.run { white-space: nowrap; }
td.sub { color: #5a6272; font-size: .85rem; }
tr.teacher-row td { background: #fbf8ec; font-style: italic; }
tr.group-start td { border-top: 2px solid #c9ced8; }
.small { color: #5a6272; font-size: .85rem; }
table.runs td { font-size: .88rem; }
"""


def _figure(png: Path, alt: str, caption: str) -> str:
    return f"<figure>\n{_img_tag(png, alt)}\n<figcaption>{caption}</figcaption>\n</figure>"


def _note(text: str) -> str:
    return f'<p class="note">{text}</p>'


def _mean_std(values: list[float]) -> str:
    """Percent, mean ± std when there are several values."""
    vals = [v for v in values if _num(v) is not None]
    if not vals:
        return "—"
    if len(vals) == 1:
        return fmt_pct(vals[0])
    return fmt_acc(statistics.fmean(vals), statistics.pstdev(vals))


def _group(run: Run, setting: str) -> str:
    return f"{run.label} / {setting}"


def _runs_table(runs: list[Run]) -> str:
    head = ("<tr><th>run</th><th>recipe</th><th>created</th><th>task</th>"
            '<th class="num">settings</th><th>seeds</th><th>teacher</th><th>folder</th></tr>')
    body = []
    for r in runs:
        res = r.results
        t = res.get("teacher") or {}
        teacher = t.get("description") or "—"
        if _num(t.get("test_accuracy")) is not None:
            teacher += f", {metric_name(res)} {fmt_pct(t['test_accuracy'])}"
        body.append(
            f'<tr><td class="run">{_e(r.label)}</td><td>{_e(res.get("name"))}</td>'
            f"<td>{_e(res.get('created') or '—')}</td><td>{_e(r.task)}</td>"
            f'<td class="num">{len(grouped_rows(res))}</td>'
            f"<td>{_e(', '.join(map(str, res.get('seeds') or [])) or '—')}</td>"
            f"<td>{_e(teacher)}</td><td><code>{_e(r.path)}</code></td></tr>")
    return f'<table class="runs">\n<thead>{head}</thead>\n<tbody>{"".join(body)}</tbody>\n</table>'


def _leaderboard(runs: list[Run]) -> str:
    cols = [("run", "run"), ("setting", ""), ("method", ""), ("params", "num"),
            ("test score (mean ± std)", "num"), ("teacher agreement", "num"),
            ("speed-up vs teacher", "num"), ("seeds", "num")]
    head = "".join(f'<th class="{c}">{_e(n)}</th>' if c else f"<th>{_e(n)}</th>"
                   for n, c in cols)
    out = [f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>"]
    for run in runs:
        metric = metric_name(run.results)
        suffix = "" if metric == "test accuracy" else f' <span class="small">({_e(metric)})</span>'
        teachers = {str(s.get("name")): s.get("teacher")
                    for s in run.results.get("settings") or []}
        for setting, rows in grouped_rows(run.results):
            first = True
            chosen = best_index(rows)
            for i, row in enumerate(rows):
                seeds = row.get("seeds")
                best = i == chosen and len(rows) > 1
                cls = " ".join(c for c, on in (("best", best), ("group-start", first)) if on)
                first = False
                attr = f' class="{cls}"' if cls else ""
                out.append(
                    f'<tr{attr}>'
                    f'<td class="run">{_e(run.label)}</td><td>{_e(setting)}</td>'
                    f"<td>{_e(row.get('method'))}</td>"
                    f'<td class="num">{_e(fmt_params(row.get("params")))}</td>'
                    f'<td class="num">{_e(fmt_acc(row.get("test_accuracy_mean"), row.get("test_accuracy_std")))}{suffix}</td>'
                    f'<td class="num">{_e(fmt_pct(row.get("teacher_agreement_mean")))}</td>'
                    f'<td class="num">{_e(fmt_speedup(row.get("speedup")))}</td>'
                    f'<td class="num">{len(seeds) if isinstance(seeds, list) else "—"}</td></tr>')
            t = teachers.get(setting) or {}
            if t:
                out.append(
                    f'<tr class="teacher-row"><td class="run">{_e(run.label)}</td>'
                    f"<td>{_e(setting)}</td><td>teacher</td>"
                    f'<td class="num">{_e(fmt_params(t.get("params")))}</td>'
                    f'<td class="num">{_e(fmt_acc(t.get("test_accuracy")))}{suffix}</td>'
                    '<td class="num">—</td><td class="num">1.0×</td>'
                    f'<td class="num">{1 if t.get("seed") is not None else "—"}</td></tr>')
    out.append("</tbody>\n</table>")
    return "\n".join(out)


def _learning_curves(runs: list[Run], tmp: Path) -> str:
    from .plots import learning_curves

    figures = []
    for xkey, what in (("epoch", "accuracy per epoch"), ("step", "exact match per step")):
        hist, settings, rows = [], [], []
        for run in runs:
            desc = {str(s.get("name")): s.get("description") or ""
                    for s in run.results.get("settings") or []}
            mine = [h for h in run.histories if h.get(xkey) and h.get("val_accuracy")
                    and not (xkey == "step" and h.get("epoch"))]
            for h in mine:
                hist.append({**h, "setting": _group(run, h["setting"])})
            for s in dict.fromkeys(h["setting"] for h in mine):
                settings.append({"name": _group(run, s), "description": desc.get(s, "")})
            rows += run.results["rows"]
        if not hist:
            continue
        png = learning_curves(hist, tmp / f"curves_{xkey}.png",
                              results={"settings": settings, "rows": rows})
        figures.append(_figure(png, f"validation {what}, one panel per run and setting",
                               f"Validation {what}, one panel per run / setting, one line per "
                               "method: mean over seeds, shaded band = ±1 std."))
    if not figures:
        return _note("No learning curves: no run folder has a metrics.jsonl with validation "
                     "histories.")
    return "\n".join(figures)


def _accuracy_plots(runs: list[Run], tmp: Path) -> str:
    from .compare_plots import accuracy_vs_params_runs

    points, teachers = [], []
    for run in runs:
        for setting, rows in grouped_rows(run.results):
            for r in rows:
                points.append({"group": _group(run, setting), "method": r.get("method"),
                               "params": r.get("params"), "mean": r.get("test_accuracy_mean"),
                               "std": r.get("test_accuracy_std")})
        seen: list[dict] = []  # a teacher shared by settings is one teacher
        settings = run.results.get("settings") or []
        for s in settings:
            t = s.get("teacher")
            if t and t not in seen:
                seen.append(t)
                shared = sum(1 for o in settings if o.get("teacher") == t) - 1
                teachers.append({"label": _group(run, str(s.get("name")))
                                 + (f" (+{shared} setting{'s' * (shared > 1)})" if shared
                                    else ""),
                                 "params": t.get("params"), "accuracy": t.get("test_accuracy")})
    order = [str(r.get("method", "")) for run in runs for r in run.results["rows"]]
    png = accuracy_vs_params_runs(points, teachers, tmp / "accuracy_vs_params.png", order)
    parts = ["<h3>Accuracy vs parameters</h3>",
             _figure(png, "test accuracy vs parameters, every run",
                     "Test accuracy (error bars = ±1 std over seeds) vs parameter count; "
                     "colour = method, marker = run / setting; stars are teachers.")]
    parts.append("<h3>Accuracy vs latency</h3>")
    parts.append(_latency_section(runs, tmp, _unique(str(p["group"]) for p in points)))
    return "\n".join(parts)


def _latency_section(runs: list[Run], tmp: Path, groups: list[str]) -> str:
    """The accuracy-vs-latency figure of the runs with a latency.json (markers as in the
    parameters figure: ``groups``) and a hint for the others."""
    from .plots import accuracy_vs_latency
    have = [r for r in runs if r.latency is not None]
    missing = [r for r in runs if r.latency is None]
    notes = []
    for r in missing:
        why = f" ({_e(r.latency_note)})" if r.latency_note else " (no latency.json)"
        notes.append(f"<code>{_e(r.label)}</code>{why}: <code>mentor bench --latency "
                     f"{_e(r.path)}</code>")
    out = []
    if have:
        merged = {"students": [], "teachers": [], "batches": []}
        threads = []
        for r in have:
            lat = r.latency
            for s in lat.get("students") or []:
                if isinstance(s, dict):
                    merged["students"].append({**s, "setting": _group(r, str(s.get("setting")))})
            for t in lat.get("teachers") or []:
                if isinstance(t, dict):
                    merged["teachers"].append(t)
            for b in lat.get("batches") or []:
                if b not in merged["batches"]:
                    merged["batches"].append(b)
            threads.append(str(lat.get("threads")))
        merged["threads"] = "/".join(dict.fromkeys(threads))
        rows = [row for r in runs for row in r.results["rows"]]
        try:
            png = accuracy_vs_latency({"rows": rows}, merged, tmp / "accuracy_vs_latency.png",
                                      settings=groups)
            out.append(_figure(png, "test accuracy vs CPU latency",
                               "Test accuracy (mean ± std over seeds) vs median CPU latency "
                               "from each run's latency.json; colour = method, marker = run / "
                               "setting, stars = teachers."))
        except _RELOAD_ERRORS as e:
            out.append(_note(f"The latency plot failed ({_e(_first_line(e))}); "
                             f"{_HINT_HTML}."))
    if missing:
        head = ("No latency measured yet" if not have
                else "Some runs have no latency measurements")
        out.append(_note(f"{head}: {_HINT_HTML}. " + "; ".join(notes) + "."))
    return "\n".join(out)


def _calibration_section(evals: list[SettingEval], tmp: Path) -> str:
    from .compare_plots import reliability_diagrams

    out = [f'<p class="desc">Each saved student (every seed) and the trained teacher are '
           f"reloaded from their safetensors files and run on the test split rebuilt from "
           f"the run's recipe. Confidence = the largest class probability; ECE = expected "
           f"calibration error over {BINS} equal-width confidence bins (Σ n<sub>b</sub>/N · "
           f"|accuracy<sub>b</sub> − confidence<sub>b</sub>|), mean ± std over seeds. The "
           f"reliability diagrams pool every seed's predictions; the number above each bar "
           f"is the count of predictions in that bin.</p>"]
    for k, ev in enumerate(evals):
        out.append(f"<h3>{_e(ev.run)} / {_e(ev.setting)}</h3>")
        if ev.note:
            out.append(_note(_e(ev.note) + "."))
            continue
        out.append(f'<p class="small">{_e(ev.data)}</p>')
        head = ('<tr><th>model</th><th class="num">seeds</th>'
                '<th class="num">test accuracy (reloaded)</th>'
                '<th class="num">teacher agreement</th><th class="num">ECE</th>'
                '<th class="num">mean confidence</th><th>check</th></tr>')
        rows = []
        models = ([ev.teacher] if ev.teacher else []) + ev.students
        for m in models:
            check = ""
            if m.recorded is not None and m.seeds:
                got = statistics.fmean(m.accuracy)
                want = (statistics.fmean(m.recorded) if len(m.seeds) == len(m.recorded)
                        else None)
                if want is None:
                    check = "some seeds missing"
                elif abs(got - want) <= 1e-6:
                    check = "= results.json"
                else:
                    check = f"results.json says {fmt_pct(want)}"
            cls = ' class="teacher-row"' if m.kind == "teacher" else ""
            rows.append(
                f"<tr{cls}><td>{_e(m.name)}</td><td class=\"num\">{len(m.seeds)}</td>"
                f'<td class="num">{_e(_mean_std(m.accuracy))}</td>'
                f'<td class="num">{_e(_mean_std(m.agreement)) if m.kind == "student" else "—"}'
                f'</td><td class="num">{_e(_mean_std(m.ece))}</td>'
                f'<td class="num">{_e(_mean_std(m.confidence))}</td>'
                f"<td class=\"sub\">{_e(check)}</td></tr>")
        out.append(f"<table>\n<thead>{head}</thead>\n<tbody>{''.join(rows)}</tbody>\n</table>")
        notes = ([ev.teacher_note + "; so no teacher agreement (—)"] if ev.teacher_note
                 else []) + [f"{m.name}: {n}" for m in ev.students for n in m.notes]
        for n in notes:
            out.append(_note(_e(n) + "."))
        panels = [{"title": m.name if m.kind == "student" else "teacher", "bins": m.bins}
                  for m in models if m.bins is not None]
        if panels:
            png = reliability_diagrams(panels, tmp / f"reliability_{k}.png",
                                       f"{ev.run} / {ev.setting}")
            out.append(_figure(png, f"reliability diagrams, {ev.run} / {ev.setting}",
                               "Reliability diagram per model: bar = accuracy of the "
                               "predictions in a confidence bin (count above), red dot = "
                               "their mean confidence, dashed diagonal = perfect "
                               "calibration."))
    return "\n".join(out)


def _confusion_section(evals: list[SettingEval], tmp: Path) -> str:
    from .compare_plots import confusion_heatmaps

    out = ['<p class="desc">Test split; the student is the best method of each setting (by '
           "mean validation accuracy) at its seed with the best validation accuracy, next to the "
           "teacher. Rows = true class, columns = predicted class; colour = share of the "
           "true class, numbers = counts.</p>"]
    for k, ev in enumerate(evals):
        out.append(f"<h3>{_e(ev.run)} / {_e(ev.setting)}</h3>")
        if ev.note:
            out.append(_note(_e(ev.note) + "."))
            continue
        items = []
        if ev.best is not None:
            method, seed = ev.best
            m = next(s for s in ev.students if s.name == method)
            pred = m.predictions[seed]
            items.append({"title": f"{method}, seed {seed} (accuracy "
                                   f"{fmt_pct(float((pred == ev.labels).mean()))})",
                          "matrix": confusion_matrix(ev.labels, pred, ev.num_classes)})
        if ev.teacher is not None:
            pred = ev.teacher.predictions[None]
            items.append({"title": f"teacher (accuracy "
                                   f"{fmt_pct(float((pred == ev.labels).mean()))})",
                          "matrix": confusion_matrix(ev.labels, pred, ev.num_classes)})
        if not items:
            out.append(_note("No student or teacher could be rebuilt for this setting; see "
                             "the calibration section."))
            continue
        if ev.best is not None:
            out.append(f'<p class="small">Student: {_e(ev.best[0])}, seed {_e(ev.best[1])} '
                       f"({_e(ev.best_reason)}).</p>")
        png = confusion_heatmaps(items, tmp / f"confusion_{k}.png",
                                 f"{ev.run} / {ev.setting}")
        out.append(_figure(png, f"confusion matrices, {ev.run} / {ev.setting}",
                           "Confusion matrices on the test split."))
        if ev.teacher is None and ev.teacher_note:
            out.append(_note(_e(ev.teacher_note) + "."))
    return "\n".join(out)


def render(runs: list[Run]) -> str:
    """The HTML page comparing ``runs`` (see the module docstring)."""
    from .html import html_page

    cache: dict = {}  # the same data section gives the same split in every run
    evals = [evaluate_setting(run, setting, cache)
             for run in runs for setting, _ in grouped_rows(run.results)]
    with tempfile.TemporaryDirectory(prefix="mentor-report-") as d:
        tmp = Path(d)
        body = f"""<h2 id="leaderboard">{SECTIONS[0]}</h2>
<p class="desc">One row per run × setting × method: test score is mean ± std over seeds (the
method of each run / setting with the best mean validation accuracy is highlighted: selection
never reads the test split); teacher agreement is the share of test
inputs on which student and teacher predict the same class; speed-up is teacher / student
latency as measured during the run. Italic rows are the teachers.</p>
{_leaderboard(runs)}
<h2 id="learning-curves">{SECTIONS[1]}</h2>
{_learning_curves(runs, tmp)}
<h2 id="accuracy-params-latency">{SECTIONS[2]}</h2>
{_accuracy_plots(runs, tmp)}
<h2 id="calibration">{SECTIONS[3]}</h2>
{_calibration_section(evals, tmp)}
<h2 id="confusion">{SECTIONS[4]}</h2>
{_confusion_section(evals, tmp)}
"""
    names = ", ".join(r.label for r in runs)
    header = (f'<p class="desc">{len(runs)} run{"s" if len(runs) != 1 else ""} compared: '
              f"{_e(names)}.</p>\n{_runs_table(runs)}")
    title = "mentor report — " + (runs[0].label if len(runs) == 1 else f"{len(runs)} runs")
    return html_page(title, header, body, css=_EXTRA_CSS)


def write_compare_report(paths: list[Path], out: Path) -> Path:
    """Check every run folder, render the page and write it atomically to ``out``."""
    from .._util.safeio import check_output_file, shown
    out = Path(out)
    if os.path.isdir(out) and not os.path.islink(out):
        raise MentorError(f"--out: {shown(out)} is a folder; expected an .html file path")
    check_output_file(out, "--out")  # no FIFO, device or symbolic link: never written through
    runs = open_runs(paths)
    return atomic_write_text(out, render(runs))
