"""The ``mentor`` command: run, bench, export, label, inspect, recipes (list / validate).

User mistakes print one sentence on stderr and exit with code 2, without a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .errors import MentorError, TrainingFault

# where users read about each method's paper: the repository's own docs (a heading of
# docs/methods.md, which tests check), not the team's catalogue
METHODS_DOC = 'docs/methods.md, section "Methods: paper → component → test → measured effect"'

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="mentor: teacher-student learning (distillation, pseudo-labels, mean "
                       "teachers) on one engine.")
recipes_app = typer.Typer(help="List registered parts and built-in recipes, show one part, or "
                               "validate a recipe file.")
app.add_typer(recipes_app, name="recipes")
def _console(**kwargs) -> Console:
    """A rich console that prints text as given: no ``:name:`` emoji codes (a path
    ``a:cd:b`` keeps its colons), no highlighting of numbers or paths."""
    return Console(emoji=False, highlight=False, **kwargs)


err_console = _console(stderr=True)

# when stdout is not a terminal (a pipe, a file) and COLUMNS is not set, tables are laid out
# for this many columns: what a terminal shows by default, and a width a pager or an editor
# displays without wrapping (tables never cut a figure or a name to fit it; see report.fit)
PIPED_WIDTH = 80


def _fitted(table: Table, **kwargs):
    """``table`` laid out at the console's width with no cell cut (mentor.report.fit;
    imported here, not at start-up: mentor.report loads matplotlib)."""
    from .report.fit import Fitted
    return Fitted(table, **kwargs)


def _out_console() -> Console:
    """The console for stdout: a terminal's own width (rich reads COLUMNS when it is set);
    piped output is ``COLUMNS`` characters wide when that is a positive number, else
    :data:`PIPED_WIDTH`."""
    if sys.stdout.isatty():
        return _console()
    import os
    columns = os.environ.get("COLUMNS", "").strip()
    return _console(width=int(columns) if columns.isdigit() and int(columns) > 0
                    else PIPED_WIDTH)


def _one_sentence(message: str) -> str:
    """``message`` with its control characters escaped (a newline in a path would split the
    sentence; an escape sequence would reach the terminal), keeping the line breaks of a
    recipe's problem list (``\n  - ``)."""
    def clean(part: str) -> str:
        return part if part.isprintable() else "".join(
            c if c.isprintable() else repr(c)[1:-1] for c in part)
    return "\n  - ".join(clean(p) for p in message.split("\n  - "))


def _fail(message: str, code: int = 2) -> None:
    from rich.markup import escape
    err_console.print(f"[bold red]error:[/] {escape(_one_sentence(message))}", highlight=False,
                      soft_wrap=True)
    raise typer.Exit(code)


@app.callback()
def _plugins(ctx: typer.Context) -> None:
    # plugins (entry points "mentor.components") load before any command, so a broken one is
    # reported on its own, not inside a recipe error; MENTOR_NO_PLUGINS=1 skips them
    if "--help" in sys.argv[1:]:
        return
    from .plugins import load_plugins
    try:
        load_plugins()
    except MentorError as e:
        _fail(str(e))


def _source(path: Path, overrides: list[str]) -> str:
    """How errors name the recipe: its path, and the --set overrides applied to it."""
    if not overrides:
        return str(path)
    return f"{path} (with --set {', '.join(overrides)})"


@app.command()
def run(recipe: Optional[str] = typer.Argument(
            None, help="recipe file or built-in recipe name (default: the digits leaderboard)"),
        set_: list[str] = typer.Option([], "--set", help="override a field: key.path=value"),
        out: Path = typer.Option(Path("runs"), "--out", help="folder that receives the run"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
        resume: Optional[Path] = typer.Option(
            None, "--resume", help="continue an unfinished run folder (.<run>.partial) from its "
                                   "checkpoints; the recipe is the one it started with"),
        threads: int = typer.Option(
            1, "--threads", min=0,
            help="torch CPU threads (0 = torch's default). With the built-in tiny models, 2 "
                 "threads were 25% faster than 1 on an idle 2-core machine but up to 40x slower "
                 "when other work held the cores; 1 is the safe default")) -> None:
    """Train the teacher, distill students with every method and seed, print a leaderboard."""
    import torch

    from .recipe import apply_overrides, read_yaml, resolve_recipe_path
    from .commands.run import run_recipe

    if threads > 0:
        torch.set_num_threads(threads)
    console = _out_console()
    try:
        if resume is not None:
            from .runs.folder import read_resume_input
            raw, source = read_resume_input(resume), f"{resume}/input.yaml"
            if recipe is not None or set_:
                path = resolve_recipe_path(recipe or "default")
                if apply_overrides(read_yaml(path), set_) != raw:
                    raise MentorError(f"--resume: '{resume}' was started with a different "
                                      "recipe; give --resume alone (the folder records its "
                                      "recipe) or the same recipe and --set overrides")
            run_recipe(raw, resume.parent, source=source, progress=not quiet,
                       console=console, resume=resume)
            return
        path = resolve_recipe_path(recipe or "default")
        raw = apply_overrides(read_yaml(path), set_)
        run_recipe(raw, out, source=_source(path, set_), progress=not quiet, console=console)
    except MentorError as e:
        _fail(str(e))
    except TrainingFault as e:
        _fail(str(e), code=1)


@app.command()
def active(recipe: str = typer.Argument(..., help="recipe file with an 'active' section"),
           set_: list[str] = typer.Option([], "--set", help="override a field: key.path=value"),
           out: Path = typer.Option(Path("runs"), "--out", help="folder that receives the run"),
           resume: Optional[Path] = typer.Option(None, "--resume",
                                                 help="continue an unfinished active run folder"),
           quiet: bool = typer.Option(False, "--quiet", help="no per-round lines")) -> None:
    """Rounds of select -> label -> train per selector and seed; a per-round table and an
    accuracy-vs-budget plot."""
    import torch

    from .commands.active import run_active
    from .recipe import apply_overrides, read_yaml, resolve_recipe_path

    torch.set_num_threads(1)
    console = _out_console()
    try:
        path = resolve_recipe_path(recipe)
        raw = apply_overrides(read_yaml(path), set_)
        run_active(raw, out, source=_source(path, set_), resume=resume, progress=not quiet,
                   console=console)
    except MentorError as e:
        _fail(str(e))
    except TrainingFault as e:
        _fail(str(e), code=1)


@app.command()
def bench(suite: str = typer.Option("kd", "--suite", help="benchmark suite: kd"),
          out: Path = typer.Option(Path("runs"), "--out", help="folder that receives it"),
          quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
          threads: int = typer.Option(1, "--threads", min=0,
                                      help="torch CPU threads (0 = torch's default)"),
          latency: Optional[Path] = typer.Option(
              None, "--latency", help="instead of a suite: time the teacher and the students "
                                      "of this finished run folder on CPU at batch 1 and 256; "
                                      "writes RUN_DIR/latency.json")) -> None:
    """Run a suite of built-in recipes over their seeds and compare every method with the
    effect its paper claims; writes bench.md and bench.json. With --latency RUN_DIR: teacher
    vs student inference latency and throughput of a run instead."""
    import torch
    from rich.table import Table

    from .commands.bench import run_suite

    if threads > 0:
        torch.set_num_threads(threads)
    console = _out_console()
    if latency is not None:
        _bench_latency(latency, console)
        return
    try:
        folder = run_suite(suite, out, progress=not quiet, console=None)
    except MentorError as e:
        _fail(str(e))
    except TrainingFault as e:
        _fail(str(e), code=1)
    rows = json.loads((folder / "bench.json").read_text())
    table = Table(title=f"{suite} suite: observed vs the papers' claims (mean ± std over seeds; "
                        "separated = gap > 2x the larger std)")
    for col in ("data / setting", "method", "test accuracy", "baseline", "claim", "observed",
                "agrees"):
        table.add_column(col)
    for r in rows:
        table.add_row(Text(f"{r['recipe']} / {r['setting']}"), Text(r["method"]),
                      Text(f"{100 * r['mean']:.2f} ± {100 * r['std']:.2f} %"),
                      Text(f"{r['baseline']} {100 * r['baseline_mean']:.2f} %"),
                      Text(r["claim"]), Text(r["observed"]), Text(r["agrees"]))
    console.print(_fitted(table, detach=("claim",), key=("data / setting", "method")))
    console.print(f"bench folder: {folder} (bench.md, bench.json, one run folder per recipe)")


def _bench_latency(run_dir: Path, console: Console) -> None:
    """``mentor bench --latency RUN_DIR``: latency.json, a table and the accuracy plot."""
    from .commands.latency import bench_run
    from .report.plots import accuracy_vs_latency

    try:
        path, data = bench_run(run_dir)
    except MentorError as e:
        _fail(str(e))
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    plot = accuracy_vs_latency(results, data, run_dir / "plots" / "accuracy_vs_latency.png")
    table = Table(title=f"CPU latency of {data['run']} ({data['threads']} torch thread(s); "
                        f"medians of {data['rounds']} rounds x {data['repeats']} calls after "
                        f"{data['warmup']} warm-up calls)")
    for col in ("model", "params", "test accuracy", "batch 1", "batch 256", "rows/s at 256",
                "speed-up 1 / 256"):
        table.add_column(col)

    def ms(e, b):
        e = (e or {}).get(str(b))
        return f"{1e3 * e['latency_s']:.3f} ms" if e else "-"

    def rate(e):
        e = (e or {}).get("256")
        return f"{e['throughput_rows_s']:,.0f}" if e else "-"
    for t in data["teachers"]:
        acc = t.get("test_accuracy")
        table.add_row(Text(f"{t['name']} ({', '.join(t['settings'])})"),
                      Text(f"{t['params']:,}"),
                      Text(f"{100 * acc:.2f} %" if acc is not None else "-"),
                      Text(ms(t["batches"], 1)), Text(ms(t["batches"], 256)),
                      Text(rate(t["batches"])), Text(""))
    for st in data["students"]:
        sp = [st["batches"].get(str(b), {}).get("speedup") for b in (1, 256)]
        acc, std = st.get("test_accuracy_mean"), st.get("test_accuracy_std") or 0.0
        table.add_row(Text(f"{st['setting']} / {st['method']} / seed {st['seed']}"),
                      Text(f"{st['params']:,}"),
                      Text(f"{100 * acc:.2f} ± {100 * std:.2f} %" if acc is not None else "-"),
                      Text(ms(st["batches"], 1)), Text(ms(st["batches"], 256)),
                      Text(rate(st["batches"])),
                      Text(" / ".join(f"{v:.1f}x" if v else "-" for v in sp)))
    console.print(_fitted(table))
    console.print(f"wrote {path} and {plot}")


@app.command("export")
def export_cmd(
        run_dir: Path = typer.Argument(..., help="finished run folder (runs/<name>-<time>)"),
        fmt: str = typer.Option(..., "--format", help="onnx, torchscript or safetensors"),
        out: Optional[Path] = typer.Option(None, "--out", help="output folder (default "
                                                               "RUN_DIR/export/<format>)"),
        setting: Optional[str] = typer.Option(None, "--setting", help="setting of the student "
                                              "(default: that of the best row)"),
        method: Optional[str] = typer.Option(None, "--method", help="method label of the "
                                             "student (default: the best row's)"),
        seed: Optional[int] = typer.Option(None, "--seed", help="seed of the student (default:"
                                           " the best validation accuracy of the row's seeds)"),
        threads: int = typer.Option(1, "--threads", min=0, help="torch CPU threads for the "
                                    "latency in the model card (0 = torch's default)"),
        standardized_input: bool = typer.Option(
            False, "--standardized-input", help="export the student alone, taking inputs "
            "standardized by the caller with the training split's mean and std (in card.json); "
            "by default the standardization is part of the exported model, which takes raw "
            "features")) -> None:
    """Export one student of a run (the best by default) with a model card (card.md,
    card.json): ONNX, TorchScript or safetensors + config.json.

    The exported model takes raw features, in the order of the training data: the run's
    standardization (the training split's mean and std) is part of it (in the ONNX and
    TorchScript graphs; safetensors: config.json's preprocess, rebuilt by
    mentor.runs.read.load_model). Image folders: pixels scaled to [0, 1], flattened C*H*W.
    --standardized-input exports the student alone, for inputs standardized by the caller."""
    import torch

    from .commands.export import ExportFault, export_student

    if threads > 0:
        torch.set_num_threads(threads)
    console = _out_console()
    try:
        folder, card = export_student(run_dir, fmt, out, setting=setting, method=method,
                                      seed=seed, standardized_input=standardized_input)
    except MentorError as e:
        _fail(str(e))
    except ExportFault as e:
        _fail(str(e), code=1)
    s, a, p = card["student"], card["accuracy"], card["parity"]
    console.print(f"student: {s['setting']} / {s['method']} / seed {s['seed']} "
                  f"({s['choice']})", highlight=False)
    acc = a["test_accuracy_seed"]
    console.print(f"test accuracy {100 * a['test_accuracy_mean']:.2f} ± "
                  f"{100 * a['test_accuracy_std']:.2f} % over seeds"
                  + (f", this seed {100 * acc:.2f} %" if acc is not None else "")
                  + f"; {s['params']:,} parameters; {s['inference']}", highlight=False)
    console.print(f"input: {card['data']['input']['contract']}", highlight=False)
    console.print(f"parity: max abs logit difference {p['max_abs_diff']:.3g} (tolerance "
                  f"{p['tolerance']:.3g}) on {p['inputs']}", highlight=False)
    console.print(f"wrote {folder}: {', '.join(card['files']['all'])}, card.md, card.json",
                  highlight=False)


@app.command("report")
def report_cmd(
        run_dirs: list[Path] = typer.Argument(..., help="finished run folders to compare "
                                              "(runs/<name>-<time>)"),
        out: Path = typer.Option(Path("mentor-report.html"), "--out",
                                 show_default=False,
                                 help="HTML file to write (default: ./mentor-report.html)"),
        threads: int = typer.Option(1, "--threads", min=0,
                                    help="torch CPU threads (0 = torch's default)")) -> None:
    """One self-contained HTML page comparing runs: leaderboard, learning curves, accuracy
    vs parameters and latency, calibration (reliability, ECE) and confusion matrices."""
    import torch

    from .report.compare import write_compare_report

    if threads > 0:
        torch.set_num_threads(threads)
    try:
        path = write_compare_report(run_dirs, out)
    except MentorError as e:
        _fail(str(e))
    from rich.markup import escape
    _console().print(f"[green]ok[/]: wrote {escape(str(path))} ({len(run_dirs)} run folder(s))",
                    highlight=False)


@app.command("label")
def label_cmd(
        teacher: str = typer.Option(..., "--teacher", help="teacher checkpoint (.safetensors "
                                    "written by mentor, e.g. RUN/teacher/model.safetensors)"),
        data: str = typer.Option(..., "--data", help="data source: embedded name or .npz/.csv"),
        out: Path = typer.Option(..., "--out", help="store folder (created; a rerun resumes)"),
        split: str = typer.Option("train", "--split", help="train, val or test"),
        split_seed: int = typer.Option(0, "--split-seed", help="as data.split_seed in recipes"),
        views: int = typer.Option(1, "--views", help="views per sample (needs --augment)"),
        augment: Optional[str] = typer.Option(None, "--augment", help="augmentation: crop"),
        augment_seed: int = typer.Option(0, "--augment-seed", help="seed of the views"),
        scale_min: Optional[float] = typer.Option(None, "--scale-min",
                                                  help="crop: smallest area fraction"),
        topk: Optional[int] = typer.Option(None, "--topk", help="store the top-k "
                                           "probabilities and the tail mass"),
        hard: bool = typer.Option(False, "--hard", help="store hard labels with confidence"),
        dtype: str = typer.Option("float32", "--dtype", help="full logits: float32 or float16"),
        temperature: float = typer.Option(1.0, "--temperature", help="top-k capture "
                                          "temperature"),
        shard_samples: int = typer.Option(2048, "--shard-samples", help="samples per shard"),
        feature: list[str] = typer.Option([], "--feature", help="also store the output of "
                                          "this teacher module (dotted path; repeatable)"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
        threads: int = typer.Option(1, "--threads", min=0, help="torch CPU threads")) -> None:
    """Run a teacher once over a data split and keep its outputs as a label store."""
    import torch

    from .commands.label import label

    if threads > 0:
        torch.set_num_threads(threads)
    params = {"scale_min": scale_min} if scale_min is not None else None
    try:
        path = label(teacher_path=teacher, source=data, out=out, split=split,
                     split_seed=split_seed, views=views, augment=augment,
                     augment_params=params, augment_seed=augment_seed, topk=topk, hard=hard,
                     dtype=dtype, temperature=temperature, shard_samples=shard_samples,
                     progress=not quiet, features=tuple(feature))
    except MentorError as e:
        _fail(str(e))
    if path is not None:
        from rich.markup import escape
        _console().print(f"[green]ok[/]: label store {escape(str(path))}", highlight=False)


@app.command("inspect")
def inspect_cmd(store: Path = typer.Argument(..., help="label store folder"),
                as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Describe a label store: kind, rows, views, size, fingerprints, verified checksums and
    the teacher's confidence per predicted class."""
    from .commands.label import inspect

    try:
        info = inspect(store)
    except MentorError as e:
        _fail(str(e))
    if as_json:
        print(json.dumps(info, indent=1))
        return
    console = _out_console()
    kind = info["kind"]
    console.print(Text(f"label store {info['path']}"), style="bold")
    lines = [f"kind: {', '.join(f'{k} {v}' for k, v in kind.items())}",
             f"rows: {info['rows']} ({info['samples']} samples x {info['views_per_sample']} "
             f"views) in {info['shards']} shards",
             f"views: {info['views'] or 'none (the un-augmented inputs)'}",
             "features: " + (", ".join(f"{p} {d['shape']}" for p, d in info["features"].items())
                             or "none"),
             f"size on disk: {info['bytes_on_disk']:,} bytes ({info['bytes_per_row']:.1f} per "
             "row)"]
    if "compression_ratio" in info:
        lines.append(f"compression vs float32 full logits: {info['compression_ratio']:.2f}x")
    t, d = info["teacher"], info["data"]
    lines += [f"teacher: {t.get('description')} ({t.get('method')} sha256 "
              f"{t['sha256'][:16]}...)",
              f"data: {d['rows']} rows of shape {d['shape']} (sha256 {d['sha256'][:16]}...)",
              f"checksums: {info['checksums']}"]
    for line in lines:
        console.print(Text(line))
    if "confidence_by_class" in info:
        edges = info["confidence_bins"]
        table = Table(title="teacher confidence by predicted class (rows per bin)")
        table.add_column("class")
        table.add_column("rows", justify="right")
        table.add_column("mean conf.", justify="right")
        for lo, hi in zip(edges[:-1], edges[1:]):
            table.add_column(f"{lo:.1f}-{hi:.1f}", justify="right")
        for k, h in info["confidence_by_class"].items():
            mean = "-" if h["mean_confidence"] is None else f"{h['mean_confidence']:.3f}"
            table.add_row(k, str(h["rows"]), mean, *map(str, h["histogram"]))
        console.print(_fitted(table))


def _print_parts(console: Console, items) -> None:
    """Texts as they are, tables fitted to the console (mentor.commands.recipes)."""
    for item in items:
        console.print(_fitted(item) if isinstance(item, Table) else item)


@recipes_app.callback(invoke_without_command=True)
def recipes(ctx: typer.Context,
            kind: Optional[str] = typer.Option(
                None, "--kind", help="list one kind only, by the title of its table (e.g. "
                "losses, teacher-fusions) or its singular (loss)")) -> None:
    """List every registered part, one table per kind (methods, losses, refiners, ...; with
    their source when not built-in), and the built-in recipes. `mentor recipes show NAME`
    prints one part in full."""
    if ctx.invoked_subcommand is not None:
        return
    from .commands.recipes import SHOW_HINT, builtin_table, part_tables

    console = _out_console()
    try:  # plugins loaded (or refused) in the app callback
        _print_parts(console, part_tables(console.width, kind))
    except MentorError as e:
        _fail(str(e))
    console.print(Text(SHOW_HINT))
    if kind is None:
        console.print(Text(f"Each paper's mechanism, tests and measured effect: {METHODS_DOC}."))
        console.print(_fitted(builtin_table(console.width)))


@recipes_app.command("show")
def show(name: str = typer.Argument(..., help="a part's name, or KIND:NAME (loss:kd) for "
                                    "one kind when several use the name")) -> None:
    """Print one part: description, paper, source, parameters and defaults, a recipe example."""
    from .commands.recipes import show_part

    console = _out_console()
    try:
        items = show_part(name, console.width)
    except MentorError as e:
        _fail(str(e))
    _print_parts(console, items)


@recipes_app.command("validate")
def validate(file: str = typer.Argument(..., help="recipe file or built-in name"),
             set_: list[str] = typer.Option([], "--set", help="override a field")) -> None:
    """Check a recipe: schema, method parameters, data and checkpoints. Writes nothing."""
    from .recipe import apply_overrides, read_yaml, resolve_recipe_path
    from .commands.run import plan_run

    from rich.markup import escape
    try:
        path = resolve_recipe_path(file)
        raw = apply_overrides(read_yaml(path), set_)
        if isinstance(raw, dict) and raw.get("active") is not None:
            from .commands.active import check_active
            n_sel, n_runs = check_active(raw, source=_source(path, set_))
            _console().print(f"[green]ok[/]: {escape(str(path))} - active: {n_sel} "
                            f"selector(s), {n_runs} loop(s)", highlight=False)
            return
        from .lm.recipe import is_tokens_recipe, parse_tokens_recipe
        if is_tokens_recipe(raw):
            r = parse_tokens_recipe(raw, source=_source(path, set_))
            _console().print(f"[green]ok[/]: {escape(str(path))} - tokens: {len(r.methods)} "
                            f"method(s), {len(r.methods) * len(r.train.seeds)} student run(s)",
                            highlight=False)
            return
        plan = plan_run(raw, source=_source(path, set_))
    except MentorError as e:
        _fail(str(e))
    n = sum(len(s.recipe.train.seeds) * len(s.methods) for s in plan.settings)
    n_methods = len({m[0] for s in plan.settings for m in s.methods})
    _console().print(f"[green]ok[/]: {escape(str(path))} - {len(plan.settings)} setting(s), "
                    f"{n_methods} method(s), {n} student run(s)", highlight=False)


def _click_errors() -> tuple[type, ...]:
    """Click's error base class (typer vendors click as ``typer._click`` since 0.2x)."""
    import importlib
    found = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(importlib.import_module(module).ClickException)
        except (ImportError, AttributeError):
            pass
    return tuple(found)


def _usage_sentence(e, args: list[str]) -> str:
    """A usage mistake (bad or missing flag, unknown command) as one sentence: what, the
    value given, and the help to read."""
    message = e.format_message().strip().rstrip(".")
    param = getattr(e, "param", None)
    if param is not None and any(c.__name__ == "BadParameter" for c in type(e).__mro__):
        value = None
        for opt in getattr(param, "opts", ()):
            for i, arg in enumerate(args):
                if arg == opt and i + 1 < len(args):
                    value = args[i + 1]
                elif arg.startswith(opt + "="):
                    value = arg[len(opt) + 1:]
        if value is not None and value not in message:
            message += f", got {value!r}"
    ctx = getattr(e, "ctx", None)
    return f"{message} (see '{ctx.command_path if ctx else 'mentor'} --help')"


# what a stream that cannot encode them (an ASCII-only locale: LC_ALL=C, PYTHONUTF8=0)
# prints instead of the characters mentor's tables and messages use; anything else is '?'
_ASCII = {"±": "+/-", "×": "x", "—": "-", "–": "-", "…": "...", "→": "->", "←": "<-",
          "≥": ">=", "≤": "<=", "≈": "~", "·": ".", "−": "-", "µ": "u", "°": " deg", "‘": "'",
          "’": "'", "“": '"', "”": '"', "✓": "v", "✗": "x", "•": "*", "━": "-", "─": "-",
          "│": "|", "┃": "|"}


def _ascii_fallback(err: UnicodeError):
    text = err.object[err.start:err.end]
    return "".join(_ASCII.get(c, "?") for c in text), err.end


def _degrade_streams() -> None:
    """Make stdout / stderr print what their encoding cannot hold as ASCII look-alikes
    (``±`` as ``+/-``) instead of failing with UnicodeEncodeError: a finished run must not
    exit 1 because the terminal's locale is ASCII."""
    import codecs
    try:
        codecs.lookup_error("mentor-ascii")
    except LookupError:
        codecs.register_error("mentor-ascii", _ascii_fallback)
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if not encoding or not hasattr(stream, "reconfigure"):
            continue
        try:
            "±×—…→".encode(encoding)
        except UnicodeEncodeError:
            stream.reconfigure(errors="mentor-ascii")
        except LookupError:
            pass


def main() -> None:
    """The entry point: usage mistakes are one ``error:`` sentence with exit code 2 too."""
    _degrade_streams()
    try:
        code = app(standalone_mode=False)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except typer.Abort:
        err_console.print("Aborted!")
        sys.exit(1)
    except _click_errors() as e:
        if e.format_message():  # empty: a group called without a command printed its help
            from rich.markup import escape
            err_console.print(f"[bold red]error:[/] "
                              f"{escape(_one_sentence(_usage_sentence(e, sys.argv[1:])))}",
                              highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
