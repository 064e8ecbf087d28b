"""``mentor recipes`` lists every kind of registered part readably at 80 columns, and
``mentor recipes show NAME`` prints one part: its parameters and defaults as its signature
declares them, and an example that validates as written."""

from __future__ import annotations

import copy
import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest
import yaml
from typer.testing import CliRunner

import mentor
from mentor import registry
from mentor.cli import app
from mentor.commands import recipes as parts
from mentor.errors import MentorError
from mentor.losses.base import LossSpec
from mentor.methods.plan import Method
from mentor.recipe import TeacherSpec

SRC = Path(__file__).resolve().parents[2] / "src"
WIDTH = 80
LINES = 3
# parts whose example cannot validate in a classification recipe, and why
NOT_A_FRAGMENT = {
    ("loss", "channel_kd"): "reads (B, C, positions) feature maps; a composed objective reads "
                            "logits (feature-kd's feature_loss: channel uses it)",
    ("task", "tokens"): "the task of a tokens recipe (mentor.lm.recipe), not of a "
                        "classification recipe",
    ("task", "tagging"): "the task of a tagging recipe (token ids and tags: tb-seq-tagging or "
                         "a .npz), not of the example's digits",
    ("model", "hf"): "needs a local model folder or a config, and token ids or images; the "
                     "example's digits rows are neither",
    ("task", "graph_nodes"): "the task of a graph recipe (a graph's nodes: "
                             "contextual-hypergraph or a .npz), not of the example's digits",
    ("model", "hgnn"): "reads a graph: the teacher of a graph_nodes recipe, never the "
                       "example's student",
    ("augmentation", "token_span"): "a view of token ids; the example's digits are images",
    ("augmentation", "token_drop"): "a view of token ids; the example's digits are images",
    ("augmentation", "token_resample"): "a view of tagging rows (token ids that keep a tag per "
                                        "position); the example's digits are images",
    ("data set", "wordnet-glosses"): "a text source: it needs data.text and a text model, "
                                     "which the example's mlp student is not",
}
# data sets generated on loading (5-8 s each); their example has the shape digits' has
SLOW_TO_LOAD = {("data set", "mnist1d"), ("data set", "mnist1d-shifted")}
# a small valid recipe the examples go into (digits: 8x8 images for cnn and augmentations)
BASE = {"name": "show-check", "data": {"source": "digits", "labeled_fraction": 0.5},
        "teacher": {"model": "mlp", "hidden": [16], "train": {"epochs": 1}},
        "student": {"model": "mlp", "hidden": [8]},
        "methods": [{"name": "kd"}], "train": {"epochs": 1, "seeds": [0]}}


def _mentor(*args: str, columns: str = str(WIDTH)) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": columns}
    return subprocess.run([sys.executable, "-m", "mentor", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def _show(name: str) -> str:
    result = CliRunner().invoke(app, ["recipes", "show", name], env={"COLUMNS": str(WIDTH)})
    assert result.exit_code == 0, (name, result.output)
    return result.output


def _every_module() -> None:
    """Import every module of mentor, so that every registry holds all it ever will."""
    for info in pkgutil.walk_packages(mentor.__path__, "mentor."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:  # an optional dependency (tracker, exporter) not installed
            pass


def _registries() -> list[tuple[str, set[str]]]:
    """(kind, names) of every registry of mentor.registry, and of the teacher fusions (the
    values of teacher.combine)."""
    _every_module()
    found = [(r.kind, set(r.names())) for r in vars(registry).values()
             if isinstance(r, registry.Registry)]
    combine = set(get_args(TeacherSpec.model_fields["combine"].annotation))
    return found + [("teacher fusion", combine)]


def _tables(out: str) -> dict[str, list[list[str]]]:
    """Each table of ``out`` by its title: one row per item, the lines of its cells
    (``[[name lines], [description lines], ...]``)."""
    tables: dict[str, list] = {}
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and lines[i + 1].startswith("┏") and line.strip():
            rows = tables.setdefault(line.strip(), [])
            for row_line in lines[i + 4:]:
                if not row_line.startswith("│"):
                    break
                cells = [c.strip() for c in row_line.strip().strip("│").split("│")]
                if cells[0]:
                    rows.append([[c] for c in cells])
                else:
                    for column, c in zip(rows[-1], cells):
                        column.append(c)
    return tables


@pytest.fixture(scope="module")
def listing() -> str:
    proc = _mentor("recipes")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def _table_of(tables: dict, kind: str) -> list:
    titled = [t for t in tables if t.startswith(kind)]
    assert len(titled) == 1, (kind, list(tables))
    return tables[titled[0]]


def test_every_kind_is_listed_with_every_part(listing):
    tables = _tables(listing)
    for kind, names in _registries():
        rows = _table_of(tables, kind)
        assert {row[0][0] for row in rows} == names, kind
    assert "built-in recipes (mentor run NAME)" in tables
    assert "mentor recipes show NAME" in " ".join(listing.split())


def test_listing_fits_80_columns(listing):
    wide = [line for line in listing.splitlines() if len(line) > WIDTH]
    assert not wide, "\n".join(wide)


def test_descriptions_take_at_most_3_lines_and_say_when_cut(listing):
    """A description cell wraps over at most 3 lines; one that is not whole ends in the
    cut mark and begins the part's description."""
    from mentor.recipe import builtin_recipes, read_yaml
    described = {k.title: {e.name: e.description for e in k.registry.entries()}
                  for k in parts.kinds()}
    described["built-in recipes"] = {n: str(read_yaml(p).get("description", ""))
                                     for n, p in builtin_recipes().items()}
    for title, rows in _tables(listing).items():
        (kind,) = [k for k in described if title == k or title.startswith(f"{k} (")]
        for row in rows:
            name, text = row[0][0], row[1]
            assert len(text) <= LINES, (title, name, text)
            shown, full = " ".join(text), " ".join(described[kind][name].split())
            if shown != full:
                assert shown.endswith(" …"), (name, shown, full)
                assert full.startswith(shown.removesuffix(" …")), (name, shown, full)


def _signature_params(obj) -> dict[str, object]:
    """What a recipe may give ``obj``, read here from its signature: a method's parameter
    model, a loss's keyword-only parameters, a class's parameters, a function's keyword-only
    and defaulted ones."""
    if isinstance(obj, Method):
        obj = obj.params
    if isinstance(obj, LossSpec):
        sig = inspect.signature(obj.fn)
        return {p.name: p.default for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and (isinstance(obj, type) or p.kind is p.KEYWORD_ONLY or p.default is not p.empty)}


def _yaml(value) -> str:
    value = list(value) if isinstance(value, tuple) else value
    return yaml.safe_dump(value, default_flow_style=True).split("\n...")[0].strip()


def _richest():
    """Per kind, the part with the most parameters (its first part when none has any)."""
    return [(kind, max(kind.registry.entries(), key=lambda e: len(_signature_params(e.obj))))
            for kind in parts.kinds()]


@pytest.mark.parametrize("kind, entry", _richest(), ids=lambda x: getattr(x, "name", ""))
def test_show_prints_parameters_defaults_and_the_example(kind, entry):
    out = _show(f"{kind.registry.kind}:{entry.name}")
    assert out.startswith(f"{entry.name} ({kind.registry.kind})"), out
    assert " ".join(entry.description.split()) in " ".join(out.split()), out
    assert f"source: {entry.source}" in out, out
    expected = _signature_params(entry.obj)
    rows = {row[0][0]: row for row in _tables(out).get("parameters", [])}
    assert set(rows) == set(expected), (set(rows), set(expected), out)
    for name, default in expected.items():
        if repr(default).startswith("<factory>"):
            continue  # a pydantic default factory: its value is built per call
        want = "required" if default is inspect.Parameter.empty else _yaml(default)
        assert "".join(rows[name][2]) == want, (name, rows[name], want)
    if not expected:
        assert "parameters: none" in out, out
    printed = out.split("\nexample:\n", 1)[1]
    assert yaml.safe_load(printed) == parts.example(kind, entry), printed
    assert max(len(line) for line in out.splitlines()) <= WIDTH, out


def test_show_of_every_part_fits_and_cites_no_private_catalogue():
    """Every part's page fits 80 columns, its example reads back as printed (no line of it
    wrapped), and nothing cites the team's private catalogue."""
    for kind in parts.kinds():
        for entry in kind.registry.entries():
            out = _show(f"{kind.registry.kind}:{entry.name}")
            assert max(len(line) for line in out.splitlines()) <= WIDTH, out
            assert "METHODS.md" not in out and not re.search(r"§\s*\d", out), out
            printed = out.split("\nexample:\n", 1)[1]
            assert yaml.safe_load(printed) == parts.example(kind, entry), printed


def _embed(snippet: dict) -> dict:
    recipe = copy.deepcopy(BASE)
    for key, value in snippet.items():
        recipe[key] = {**recipe[key], **value} if key == "train" else value
    if "active" in recipe:
        recipe.pop("methods")
    return recipe


def _validate(raw: dict) -> None:
    if "active" in raw:
        from mentor.commands.active import check_active
        check_active(raw)
    else:
        from mentor.commands.run import plan_run
        plan_run(raw)


def test_every_example_validates_in_a_recipe(tmp_path, monkeypatch):
    """Each part's example, as printed, goes into a small recipe that then validates (the
    checks of ``mentor recipes validate``; the fusions' ensemble reads two checkpoints)."""
    from mentor.engine.checkpoint import save_weights
    from mentor.models import build_model
    monkeypatch.chdir(tmp_path)
    for name in ("teacher-a", "teacher-b"):
        save_weights(tmp_path / f"{name}.safetensors", build_model("linear", (8, 8), 10),
                     {"mentor.model": {"model": "linear"}, "mentor.num_classes": 10,
                      "mentor.input_shape": [8, 8]})
    failed, valid = {}, set()
    for kind in parts.kinds():
        for entry in kind.registry.entries():
            text = parts.example_yaml(parts.example(kind, entry))
            if re.search(r"<[^>]+>", text):
                continue  # a parameter without a default: a value to fill in
            if (kind.registry.kind, entry.name) in SLOW_TO_LOAD:
                continue
            try:
                _validate(_embed(yaml.safe_load(text)))
                valid.add(kind.registry.kind)
            except MentorError as e:
                failed[(kind.registry.kind, entry.name)] = str(e)
    assert set(failed) == set(NOT_A_FRAGMENT), failed
    assert valid == {kind.registry.kind for kind in parts.kinds()}, valid


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": str(WIDTH)})


def test_unknown_name_is_one_sentence_with_a_suggestion():
    for name, needle in (("fixmach", "no part or built-in recipe is named 'fixmach' (did you "
                                     "mean 'fixmatch'?)"),
                         ("loss:kdd", "no loss is named 'kdd' (did you mean 'kd'?)"),
                         ("losss:kd", "unknown kind 'losss' (did you mean 'losses'?)")):
        result = _invoke("recipes", "show", name)
        assert result.exit_code == 2, (name, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            result.exception
        err = result.stderr
        assert "Traceback" not in err and err.count("error:") == 1, err
        assert needle in " ".join(err.split()), (needle, err)


def test_a_name_of_several_kinds_shows_each_and_kind_name_picks_one():
    both = _show("kd")
    assert "kd (method)" in both and "kd (loss)" in both, both
    one = _show("loss:kd")
    assert "kd (loss)" in one and "kd (method)" not in one, one


def test_kind_filter_lists_one_kind():
    result = _invoke("recipes", "--kind", "teacher-fusions")
    assert result.exit_code == 0, result.output
    tables = _tables(result.stdout)
    assert list(tables) == ["teacher fusions (recipe field teacher.combine)"], list(tables)
