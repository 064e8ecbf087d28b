"""The ``mentor`` command: run, recipes (list / validate).

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

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="mentor: teacher-student learning (distillation, pseudo-labels, mean "
                       "teachers) on one engine.")
recipes_app = typer.Typer(help="List presets and built-in recipes, or validate a recipe file.")
app.add_typer(recipes_app, name="recipes")
err_console = Console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    from rich.markup import escape
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


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
        threads: int = typer.Option(
            1, "--threads", min=0,
            help="torch CPU threads (0 = torch's default). With the built-in tiny models, 2 "
                 "threads were 25% faster than 1 on an idle 2-core machine but up to 40x slower "
                 "when other work held the cores; 1 is the safe default")) -> None:
    """Train the teacher, distill students with every method and seed, print a leaderboard."""
    import torch

    from .recipe import apply_overrides, read_yaml, resolve_recipe_path
    from .runner import run_recipe

    if threads > 0:
        torch.set_num_threads(threads)
    console = Console() if sys.stdout.isatty() else Console(width=160)
    try:
        path = resolve_recipe_path(recipe or "default")
        raw = apply_overrides(read_yaml(path), set_)
        run_recipe(raw, out, source=_source(path, set_), progress=not quiet, console=console)
    except MentorError as e:
        _fail(str(e))
    except TrainingFault as e:
        _fail(str(e), code=1)


@app.command()
def bench(suite: str = typer.Option("kd", "--suite", help="benchmark suite: kd"),
          out: Path = typer.Option(Path("runs"), "--out", help="folder that receives it"),
          quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
          threads: int = typer.Option(1, "--threads", min=0,
                                      help="torch CPU threads (0 = torch's default)")) -> None:
    """Run a suite of built-in recipes over their seeds and compare every method with the
    effect its paper claims; writes bench.md and bench.json."""
    import torch
    from rich.table import Table

    from .bench import run_suite

    if threads > 0:
        torch.set_num_threads(threads)
    console = Console() if sys.stdout.isatty() else Console(width=160)
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
    console.print(table)
    console.print(f"bench folder: {folder} (bench.md, bench.json, one run folder per recipe)")


@recipes_app.callback(invoke_without_command=True)
def recipes(ctx: typer.Context) -> None:
    """List registered methods and losses, and the built-in recipes."""
    if ctx.invoked_subcommand is not None:
        return
    from . import methods  # noqa: F401  (registers presets)
    from .recipe import builtin_recipes, read_yaml
    from .registry import LOSSES, METHODS

    console = Console()
    for registry, title in ((METHODS, "methods (use as method.name)"),
                            (LOSSES, "losses (objectives inside methods)")):
        table = Table(title=title)
        for col in ("name", "description", "paper"):
            table.add_column(col, no_wrap=col == "name")
        for e in registry.entries():
            table.add_row(Text(e.name), Text(e.description), Text(e.paper))
        console.print(table)
    table = Table(title="built-in recipes (mentor run NAME)")
    table.add_column("name", no_wrap=True)
    table.add_column("description")
    for name, path in builtin_recipes().items():
        table.add_row(Text(name), Text(str(read_yaml(path).get("description", "")).strip()))
    console.print(table)


@recipes_app.command("validate")
def validate(file: str = typer.Argument(..., help="recipe file or built-in name"),
             set_: list[str] = typer.Option([], "--set", help="override a field")) -> None:
    """Check a recipe: schema, method parameters, data and checkpoints. Writes nothing."""
    from .recipe import apply_overrides, read_yaml, resolve_recipe_path
    from .runner import plan_run

    try:
        path = resolve_recipe_path(file)
        raw = apply_overrides(read_yaml(path), set_)
        plan = plan_run(raw, source=_source(path, set_))
    except MentorError as e:
        _fail(str(e))
    n = sum(len(s.recipe.train.seeds) for s in plan.settings) * len(plan.methods)
    from rich.markup import escape
    Console().print(f"[green]ok[/]: {escape(str(path))} - {len(plan.settings)} setting(s), "
                    f"{len(plan.methods)} method(s), {n} student run(s)", highlight=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
