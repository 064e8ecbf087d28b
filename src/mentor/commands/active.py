"""``mentor active RECIPE``: every selector of the recipe's ``active`` section, for every seed,
through :func:`mentor.active.active_loop`; a per-round table, ``active.json`` and a
learning-curve plot (test accuracy vs labels or teacher queries spent).

Everything that can be checked is checked before the run folder exists (recipe, data,
selectors, budgets). The folder is ``<out>/.<name>-active-<time>.partial`` until every loop
has finished; ``--resume`` continues such a folder: each (selector, seed) loop keeps its
state under ``state/`` and restarts after its last finished round.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import yaml
from rich.text import Text

from ..active import active_loop, check_budgets, check_selector
from .._util.atomic import atomic_write_text
from ..contracts import SelectorHooks
from ..errors import MentorError
from ..models import build_model
from ..runs.progress import Bars
from ..report.active_html import write_active_report
from ..recipe import _short, _within, parse_recipe, read_yaml
from .._util.safeio import shown
from ..registry import SELECTORS, suggest
from ..runs.folder import PARTIAL, claim_run_dir, final_name, finish_run_dir, run_lock
from ..runs.env import environment


def _selectors(spec) -> list[tuple[str, object]]:
    out = []
    for i, (name, params) in enumerate(spec.selector_list()):
        if name not in SELECTORS:
            raise MentorError(f"active.selectors[{i}] {name!r} is not a registered selector"
                              f"{suggest(name, SELECTORS.names())}; expected one of "
                              f"{', '.join(SELECTORS.names())}")
        try:
            sel = SELECTORS.get(name)(**params)
        except TypeError as e:  # the message shows a bounded repr: a parameter may be huge
            raise MentorError(f"active.selectors[{i}] {name!r} rejects parameters "
                              f"{_short(params, 120)} ({_short(str(e), 200)[1:-1]})") from None
        shown_params = ", ".join(f"{k}={v if _within(v, 1000) else _short(v)}"
                                 for k, v in params.items())
        label = name if not params else f"{name}({shown_params})"
        out.append((label, sel))
    labels = [x[0] for x in out]
    if len(set(labels)) != len(labels):
        raise MentorError("active.selectors: a selector appears twice with the same parameters")
    return out


def _plan(raw: dict, source: str):
    """Recipe, splits, selectors, whether a teacher is needed and the teacher when it needs no
    training (a checkpoint or a label store, loaded and checked here); every check before
    work."""
    from .run import _static_teacher
    recipe = parse_recipe(raw, source)
    spec = recipe.active
    if spec is None:
        raise MentorError(f"{source}: no 'active' section; expected active: {{selectors, rounds, "
                          "oracle_per_round and/or teacher_per_round} (mentor run runs the "
                          "other recipes)")
    if recipe.settings:
        raise MentorError(f"{source}: an active recipe cannot have 'settings' yet; expected one "
                          "data set and student")
    splits = recipe.data.load()
    selectors = _selectors(spec)
    needs_teacher = spec.teacher_per_round > 0 or any(
        SelectorHooks(s).needs_teacher for _, s in selectors)
    if needs_teacher and recipe.teacher is None:
        raise MentorError(f"{source}: teacher queries or teacher-scored selectors need a "
                          "'teacher' section")
    check_budgets(int((~splits.train.labeled).sum()), rounds=spec.rounds,
                  oracle_per_round=spec.oracle_per_round,
                  teacher_per_round=spec.teacher_per_round, has_teacher=needs_teacher,
                  teacher_cost=spec.teacher_cost or 0.0, max_cost=spec.max_cost)
    for _, s in selectors:
        check_selector(s, int(splits.train.labeled.sum()))
    teacher = _static_teacher(recipe.teacher, splits) if needs_teacher else None
    return recipe, splits, selectors, needs_teacher, teacher


def check_active(raw: dict, source: str = "recipe") -> tuple[int, int]:
    """Validate an active recipe (writes nothing): (selectors, loops to run)."""
    recipe, _, selectors, _, _ = _plan(raw, source)
    return len(selectors), len(selectors) * len(recipe.train.seeds)


def run_active(raw: dict, out_root: Path, *, source: str = "recipe", resume: Path | None = None,
               progress: bool = True, console=None) -> Path:
    recipe, splits, selectors, needs_teacher, teacher = _plan(raw, source)
    if resume is not None:
        folder = Path(resume)
        if not folder.is_dir() or not os.path.lexists(folder / "recipe.yaml"):
            raise MentorError(f"--resume {shown(folder)} is not an active run folder (no "
                              "recipe.yaml)")
    else:
        folder, _ = claim_run_dir(Path(out_root), f"{recipe.name}-active")
    # one writer per folder, from its claim (or resume) until it is published
    with run_lock(folder, "--resume" if resume is not None else "--out") as lock:
        return _run_active(recipe, raw, folder, resume, splits, selectors, needs_teacher,
                           teacher, progress, console, lock)


def _run_active(recipe, raw, folder: Path, resume, splits, selectors, needs_teacher, teacher,
                progress, console, lock) -> Path:
    from .run import train_teacher
    spec = recipe.active
    if resume is not None:
        try:  # the folder's recipe, read as any recipe: safely, bounded, tags refused
            started = read_yaml(folder / "recipe.yaml")
        except MentorError as e:
            raise MentorError(f"--resume {shown(folder)}: its recipe.yaml cannot be read "
                              f"({str(e).splitlines()[0]}); expected the recipe the active run "
                              "wrote") from None
        if started != raw:
            raise MentorError(f"--resume {shown(folder)} was started with a different recipe; "
                              "expected the same recipe and --set overrides as its recipe.yaml")
    else:
        atomic_write_text(folder / "recipe.yaml", yaml.safe_dump(raw, sort_keys=False))
        atomic_write_text(folder / "env.json", json.dumps(environment(recipe.train.seeds),
                                                          indent=1))
    # on failure the folder stays: `mentor active RECIPE --resume FOLDER` continues it
    if needs_teacher and teacher is None:  # a checkpoint or store was loaded by _plan
        teacher, _ = train_teacher(recipe.teacher, splits, recipe.train, folder / "teacher")
    results = {}
    bars = Bars(progress, len(selectors) * len(recipe.train.seeds), total_label="all loops",
                console=console)
    with bars:
        for label, selector in selectors:
            for seed in recipe.train.seeds:
                results.setdefault(label, []).append(_one_loop(
                    recipe, splits, spec, selector, teacher, seed,
                    folder / "state" / label / f"seed{seed}",
                    bars.start(f"{label} / seed {seed}", spec.rounds + 1),
                    lambda r, lb=label, s=seed: bars.log(
                        f"{lb} seed {s} round {r.round}: {100 * r.test_accuracy:.2f} % "
                        f"({r.labels} labels, {r.teacher_queries} teacher queries)")))
                bars.done()
    table = _table(results)
    atomic_write_text(folder / "active.json", json.dumps(
        {"name": recipe.name, "rounds": table,
         "runs": {k: [[r.__dict__ for r in res.rounds] for res in v]
                  for k, v in results.items()}}, indent=1))
    axis = "teacher queries" if spec.oracle_per_round == 0 else "labels"
    curve = _plot(table, folder / "plots" / "active_curve.png", axis)
    write_active_report(folder, name=recipe.name, rows=table, curve=curve, budgets={
        "rounds": spec.rounds, "oracle labels per round": spec.oracle_per_round,
        "teacher queries per round": spec.teacher_per_round,
        "cost per teacher query": spec.teacher_cost or 0.0,
        "seeds": len(recipe.train.seeds)})
    if folder.name.endswith(PARTIAL):
        final = finish_run_dir(folder, final_name(folder), lock=lock,
                               required=("recipe.yaml", "active.json"))
    else:
        final = folder
    if console is not None:
        _print(console, table)
        console.print(Text(f"run folder: {final}"))
    return final


def _one_loop(recipe, splits, spec, selector, teacher, seed, state_dir, on_step, log):
    """One (selector, seed) active loop; ``on_step`` advances its progress bar, ``log``
    prints a line per finished round."""

    def on_round(r):
        if on_step is not None:
            on_step(r.round + 1, {"test_accuracy": r.test_accuracy})
        log(r)

    SelectorHooks(selector).reseed(seed)
    return active_loop(
        splits, make_student=lambda: build_model(
            recipe.student.model, splits.input_shape, splits.num_classes,
            **recipe.student.build_kwargs()),
        selector=selector, rounds=spec.rounds, spec=recipe.train,
        oracle_per_round=spec.oracle_per_round, teacher=teacher,
        teacher_per_round=spec.teacher_per_round, teacher_cost=spec.teacher_cost,
        max_cost=spec.max_cost, alpha=spec.alpha, temperature=spec.temperature,
        seed=seed, state_dir=state_dir, on_round=on_round)


def _table(results: dict) -> list[dict]:
    rows = []
    for label, runs in results.items():
        for i, rnd in enumerate(runs[0].rounds):
            accs = [r.rounds[i].test_accuracy for r in runs]
            vals = [r.rounds[i].val_accuracy for r in runs]
            rows.append({"selector": label, "round": rnd.round, "labels": rnd.labels,
                         "teacher_queries": rnd.teacher_queries, "cost": rnd.cost,
                         "val_accuracy_mean": statistics.fmean(vals),
                         "test_accuracy_mean": statistics.fmean(accs),
                         "test_accuracy_std": statistics.pstdev(accs) if len(accs) > 1
                         else 0.0, "seeds": len(accs)})
    return rows


def _print(console, table: list[dict]) -> None:
    from rich.table import Table
    t = Table(title="Active distillation: test accuracy per round (mean ± std over seeds)")
    for col in ("selector", "round", "labels", "teacher queries", "cost", "test accuracy"):
        t.add_column(col)
    for r in table:
        t.add_row(r["selector"], str(r["round"]), str(r["labels"]), str(r["teacher_queries"]),
                  f"{r['cost']:g}", f"{100 * r['test_accuracy_mean']:.2f} ± "
                  f"{100 * r['test_accuracy_std']:.2f} %")
    from ..report.fit import Fitted
    console.print(Fitted(t))


def _plot(table: list[dict], path: Path, axis: str) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from .._util.atomic import atomic_path
    fig = Figure(figsize=(6.4, 4.2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    key = "teacher_queries" if axis == "teacher queries" else "labels"
    for label in dict.fromkeys(r["selector"] for r in table):
        rows = [r for r in table if r["selector"] == label]
        xs = [r[key] for r in rows]
        ys = [100 * r["test_accuracy_mean"] for r in rows]
        err = [100 * r["test_accuracy_std"] for r in rows]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=label)
    ax.set_xlabel(axis)
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("accuracy vs " + axis + " (mean ± std over seeds)", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", facecolor="white")
    return path
