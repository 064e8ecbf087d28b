"""Plugins (entry points ``mentor.components``) and components registered from user code.

Each plugin is a tiny distribution written into ``tmp_path``: a package and a
``*.dist-info`` folder (METADATA + entry_points.txt) that importlib.metadata finds once the
folder is on the path. The CLI cases run ``python -m mentor`` in a subprocess with that folder
on PYTHONPATH; in-process cases restore every registry and the plugin state afterwards.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

import mentor
from mentor import plugins, registry
from mentor.errors import MentorError

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"

FIXED_KD = '''
from pydantic import BaseModel, Field

import mentor
from mentor.methods import hinton


class FixedKDParams(BaseModel):
    alpha: float = Field(0.5, ge=0, le=1)


@mentor.register_method("mykd-t2", FixedKDParams, description="Hinton KD at a fixed T=2",
                        paper="plugin test")
def build(p):
    return mentor.MethodPlan(hinton(p.alpha, 2.0), description=f"plugin KD, alpha {p.alpha:g}")
'''


def make_plugin(site: Path, dist: str, code: str, *, version: str = "0.3",
                entry: str | None = None, ep_name: str | None = None) -> Path:
    """Write package ``dist`` (module ``plugin``) and its dist-info into ``site``."""
    pkg = site / dist
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "plugin.py").write_text(textwrap.dedent(code))
    info = site / f"{dist}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(
        f"[mentor.components]\n{ep_name or dist} = {entry or dist + '.plugin'}\n")
    return site


def tiny_recipe(methods: list[dict]) -> dict:
    return {"name": "plug", "data": {"source": "iris"},
            "teacher": {"model": "mlp", "hidden": [16], "train": {"epochs": 5}},
            "student": {"model": "mlp", "hidden": [8]},
            "methods": methods, "train": {"epochs": 3, "seeds": [0]}}


def cli(args, cwd: Path, site: Path | None, **env) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(SRC)] + ([str(site)] if site else []))
    full = {k: v for k, v in os.environ.items() if k != "MENTOR_NO_PLUGINS"}
    full.update(PYTHONPATH=path, COLUMNS="250", **env)
    return subprocess.run([sys.executable, "-m", "mentor", *map(str, args)], cwd=cwd,
                          env=full, capture_output=True, text=True, timeout=300, check=False)


def refused(proc: subprocess.CompletedProcess, *needles: str) -> str:
    err = proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stdout, err)
    assert "Traceback" not in err and err.count("error:") == 1, err
    flat = " ".join(err.split())
    for needle in needles:
        assert needle in flat, (needle, err)
    return flat


@contextlib.contextmanager
def isolated_registries(*paths: Path):
    """Registries, plugin state, sys.path and imported plugin modules as they were before."""
    regs = [v for v in vars(registry).values() if isinstance(v, registry.Registry)]
    saved = {id(r): dict(r._entries) for r in regs}
    state = (plugins._state, plugins._error, list(plugins._loaded), registry._plugins_ready)
    modules = set(sys.modules)
    sys.path[:0] = [str(p) for p in paths]
    importlib.invalidate_caches()
    plugins._state, plugins._error, registry._plugins_ready = "new", None, False
    plugins._loaded.clear()
    try:
        yield
    finally:
        for p in paths:
            sys.path.remove(str(p))
        for name in set(sys.modules) - modules:  # the plugins' modules only (not numpy's)
            file = getattr(sys.modules[name], "__file__", None) or ""
            if any(file.startswith(str(p)) for p in paths):
                del sys.modules[name]
        for r in regs:
            r._entries.clear()
            r._entries.update(saved[id(r)])
        plugins._state, plugins._error, _, registry._plugins_ready = state
        plugins._loaded[:] = state[2]


@pytest.fixture
def site(tmp_path):
    return make_plugin(tmp_path / "site", "mykd", FIXED_KD)


# ----------------------------------------------------------------------------- CLI

def test_recipes_lists_plugin_method_with_its_source(site, tmp_path):
    proc = cli(["recipes"], tmp_path, site)
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if "mykd-t2" in ln)
    assert "Hinton KD at a fixed T=2" in line and "plugin mykd 0.3" in line, line
    kd = next(ln for ln in proc.stdout.splitlines() if re.match(r"│ kd\s+│", ln))
    assert "built-in" in kd, kd
    assert re.search(r"┃\s*source\s*┃", proc.stdout)


def test_run_with_a_plugin_method(site, tmp_path):
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(tiny_recipe(
        [{"name": "scratch"}, {"name": "mykd-t2", "alpha": 0.7}])))
    proc = cli(["run", "r.yaml", "--out", "runs", "--quiet"], tmp_path, site)
    assert proc.returncode == 0, proc.stderr
    (run,) = (tmp_path / "runs").iterdir()
    rows = json.loads((run / "results.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["scratch", "mykd-t2"]
    # the plugin's plan was built with the recipe's alpha and trained: its KD term makes the
    # training loss differ from scratch's (same seed, same init, same data order)
    assert rows[1]["description"] == "plugin KD, alpha 0.7"
    assert rows[1]["method_params"] == {"alpha": 0.7}
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = {m["method"]: m["history"]["train_loss"] for m in metrics}
    assert len(losses["mykd-t2"]) == 3 and losses["mykd-t2"] != losses["scratch"], losses
    env = json.loads((run / "env.json").read_text())
    assert env["plugins"] == [{"entry_point": "mykd", "value": "mykd.plugin",
                               "distribution": "mykd", "version": "0.3",
                               "components": ["method mykd-t2"]}]


def test_broken_plugin_is_one_error_naming_it(tmp_path):
    site = make_plugin(tmp_path / "site", "brokenkd", "import no_such_module_for_mentor\n",
                       version="1.2")
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(tiny_recipe([{"name": "kd"}])))
    refused(cli(["run", "r.yaml", "--out", "runs", "--quiet"], tmp_path, site),
            "plugin 'brokenkd' (entry point 'brokenkd.plugin' of brokenkd 1.2) failed to load",
            "ModuleNotFoundError", "MENTOR_NO_PLUGINS=1")
    assert not (tmp_path / "runs").exists()


def test_plugin_registering_an_existing_name_is_refused(tmp_path):
    code = "import mentor\n\n\ndef setup():\n" \
           "    mentor.register_method('kd', description='a second kd')(lambda p: None)\n"
    site = make_plugin(tmp_path / "site", "dupkd", code, entry="dupkd.plugin:setup")
    refused(cli(["recipes"], tmp_path, site),
            "plugin 'dupkd' (entry point 'dupkd.plugin:setup' of dupkd 0.3) registers method "
            "'kd', which is already registered (built-in)")


def test_no_plugins_switch_hides_the_plugin(site, tmp_path):
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(tiny_recipe([{"name": "mykd-t2"}])))
    err = refused(cli(["recipes", "validate", "r.yaml"], tmp_path, site, MENTOR_NO_PLUGINS="1"),
                  "methods[0].name: unknown method 'mykd-t2'")
    assert "mykd-t2" not in err.split("known:")[1]


# ------------------------------------------------------------------------- in-process

def test_plugin_loads_once_and_recipes_never_import_paths(site):
    from mentor.commands.run import plan_run
    (site / "mykd" / "evil.py").write_text(
        "raise RuntimeError('a recipe imported a module by path')\n")
    with isolated_registries(site):
        assert "mykd-t2" in registry.METHODS  # the first lookup loads the plugins
        assert registry.METHODS.entry("mykd-t2").source == "plugin mykd 0.3"
        assert plugins.load_plugins() == plugins.loaded_plugins()  # once: same list again
        (p,) = plugins.loaded_plugins()
        assert (p.name, p.distribution, p.components) == ("mykd", "mykd", ("method mykd-t2",))
        plan = plan_run(tiny_recipe([{"name": "mykd-t2", "alpha": 0.2}]), source="r.yaml")
        assert [m[0] for m in plan.settings[0].methods] == ["mykd-t2"]
        for dotted in ("mykd.evil", "mykd.evil:build", "mykd.plugin.build"):
            with pytest.raises(MentorError, match=f"unknown method '{re.escape(dotted)}'"):
                plan_run(tiny_recipe([{"name": dotted}]), source="r.yaml")
        assert "mykd.evil" not in sys.modules
    assert "mykd-t2" not in registry.METHODS


def test_broken_plugin_error_is_kept_and_rolls_back(tmp_path):
    code = FIXED_KD + "\nraise ImportError('half-way')\n"
    site = make_plugin(tmp_path / "site", "halfkd", code)
    with isolated_registries(site):
        for _ in range(2):  # the same error at every lookup, not a half-loaded registry
            with pytest.raises(plugins.PluginError, match="plugin 'halfkd'.*half-way"):
                registry.METHODS.names()
        assert "mykd-t2" not in registry.METHODS._entries


def test_decorator_in_user_code_through_the_python_api():
    from pydantic import BaseModel, Field

    from mentor.methods import hinton

    class UserParams(BaseModel):
        alpha: float = Field(0.5, ge=0, le=1)

    splits = mentor.load_data("iris")
    try:
        @mentor.register_method("test-user-kd", UserParams, description="user KD, T=3")
        def build(p):
            return mentor.MethodPlan(hinton(p.alpha, 3.0), description="user KD")

        entry = registry.METHODS.entry("test-user-kd")
        assert entry.source == f"user code (module {__name__})"
        torch.manual_seed(0)
        d = mentor.Distiller(torch.nn.Linear(4, 3), torch.nn.Linear(4, 3), method="test-user-kd",
                             alpha=0.3, epochs=2)
        assert [o.loss for o in d.plan.objectives] == ["ce", "kd"]
        assert d.plan.objectives[1].params == {"temperature": 3.0}
        d.fit(splits)
        # the user's method is Hinton KD at alpha 0.3, T=3: it trains exactly as the
        # built-in kd with those parameters does (same seed, same initial weights)
        torch.manual_seed(0)
        ref = mentor.Distiller(torch.nn.Linear(4, 3), torch.nn.Linear(4, 3), method="kd",
                               alpha=0.3, temperature=3.0, epochs=2)
        ref.fit(splits)
        for a, b in zip(d.student.parameters(), ref.student.parameters(), strict=True):
            assert torch.equal(a, b)
        assert d.evaluate(splits) == ref.evaluate(splits)
        with pytest.raises(MentorError, match="alpah"):  # unknown parameters stay errors
            mentor.Distiller(torch.nn.Linear(4, 3), None, method="test-user-kd", alpah=0.3)
        with pytest.raises(ValueError, match=r"method 'kd' is already registered \(built-in\)"):
            mentor.register_method("kd", description="again")(build)
    finally:
        if "test-user-kd" in registry.METHODS._entries:
            registry.METHODS.unregister("test-user-kd")
    assert "test-user-kd" not in registry.METHODS


def test_readme_plugin_example_runs_and_is_user_code():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Plugins", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```py\n(.*?)```", section, flags=re.DOTALL)
    assert '[project.entry-points."mentor.components"]\nmykd = "mykd.plugin"' in section
    try:
        scope = {"__name__": "readme_plugins"}
        exec(compile(code, "README.md", "exec"), scope)
        assert registry.METHODS.entry("my-kd").source == "user code (module readme_plugins)"
        assert scope["d"].result is not None
    finally:
        if "my-kd" in registry.METHODS._entries:
            registry.METHODS.unregister("my-kd")
