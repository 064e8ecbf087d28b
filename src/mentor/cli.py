"""The ``mentor`` command: run, recipes (list / validate).

User mistakes print one sentence on stderr and exit with code 2, without a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .errors import MentorError, TrainingFault

app = typer.Typer(add_completion=False, no_args_is_help=False,
                  help="mentor: teacher-student learning (distillation, pseudo-labels, mean "
                       "teachers) on one engine.")
recipes_app = typer.Typer(help="List presets and built-in recipes, or validate a recipe file.")
app.add_typer(recipes_app, name="recipes")
err_console = Console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def run(recipe: Optional[str] = typer.Argument(
            None, help="recipe file or built-in recipe name (default: the digits leaderboard)"),
        set_: list[str] = typer.Option([], "--set", help="override a field: key.path=value"),
        out: Path = typer.Option(Path("runs"), "--out", help="folder that receives the run"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bars")) -> None:
    """Train the teacher, distill students with every method and seed, print a leaderboard."""
    from .recipe import apply_overrides, read_yaml, resolve_recipe_path
    from .runner import run_recipe

    console = Console()
    try:
        path = resolve_recipe_path(recipe or "default")
        raw = apply_overrides(read_yaml(path), set_)
        run_recipe(raw, out, source=str(path), progress=not quiet, console=console)
    except MentorError as e:
        _fail(str(e))
    except TrainingFault as e:
        _fail(str(e), code=1)


@recipes_app.callback(invoke_without_command=True)
def recipes(ctx: typer.Context) -> None:
    """List registered methods and losses, and the built-in recipes."""
    if ctx.invoked_subcommand is not None:
        return
    from . import methods  # noqa: F401  (registers presets)
    from .recipe import builtin_recipes, read_yaml
    from .registry import LOSSES, METHODS

    console = Console()
    table = Table(title="methods (use as method.name)")
    for col in ("name", "description", "paper"):
        table.add_column(col)
    for e in METHODS.entries():
        table.add_row(e.name, e.description, e.paper)
    console.print(table)
    table = Table(title="losses (objectives inside methods)")
    for col in ("name", "description", "paper"):
        table.add_column(col)
    for e in LOSSES.entries():
        table.add_row(e.name, e.description, e.paper)
    console.print(table)
    table = Table(title="built-in recipes (mentor run NAME)")
    table.add_column("name")
    table.add_column("description")
    for name, path in builtin_recipes().items():
        table.add_row(name, str(read_yaml(path).get("description", "")).strip())
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
        plan = plan_run(raw, source=str(path))
    except MentorError as e:
        _fail(str(e))
    n = sum(len(s.recipe.train.seeds) for s in plan.settings) * len(plan.methods)
    Console().print(f"[green]ok[/]: {path} - {len(plan.settings)} setting(s), "
                    f"{len(plan.methods)} method(s), {n} student run(s)", highlight=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
