"""Every bad input: one sentence naming the field and the value, exit code 2, no traceback,
and nothing written under --out.

Each case is a row of :data:`CASES`: a recipe (or a callable building one in the case's
folder), extra CLI arguments, and the strings the error must contain. The CLI processes of
all selected cases are started together (a torch import per process dominates their time),
then each case is checked by its own test.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from mentor.engine.checkpoint import save_weights
from mentor.models import build_model

MARKER = "pwned"  # a file that only exists if an unsafe payload ran


@dataclass
class Case:
    id: str
    needles: tuple[str, ...]
    recipe: Any = None  # mapping, YAML text, or callable(folder) -> one of those
    args: tuple[str, ...] = ()  # CLI arguments after `run recipe.yaml --out runs --quiet`
    argv: tuple[str, ...] | None = None  # full CLI arguments instead of the default


def _recipe(**over):
    """A small valid recipe on iris (nothing runs: every case fails before training)."""
    r = {"name": "bad", "data": {"source": "iris"},
         "teacher": {"model": "mlp", "hidden": [16], "train": {"epochs": 2}},
         "student": {"model": "mlp", "hidden": [8]},
         "methods": [{"name": "scratch"}, {"name": "kd", "temperature": 2.0, "alpha": 0.5}],
         "train": {"epochs": 2, "seeds": [0]}}
    r.update(over)
    return r


# ---------------------------------------------------------------------------------- files

def _mlp16_checkpoint(d: Path):
    torch.manual_seed(0)
    save_weights(d / "t16.safetensors", build_model("mlp", (4,), 3, hidden=[16]))
    return _recipe(teacher={"checkpoint": "t16.safetensors", "model": "mlp", "hidden": [8]})


def _store_of_other_data(d: Path):
    """A label store of iris inputs other than the recipe's training split."""
    from mentor.labels import make_kind, write_store
    from mentor.teachers import ModuleTeacher

    torch.manual_seed(0)
    teacher = ModuleTeacher(build_model("mlp", (4,), 3, hidden=[8]), 3)
    write_store(teacher, torch.randn(90, 4), d / "store", make_kind("logits", num_classes=3))
    return _recipe(teacher={"store": str(d / "store")})


class _Evil:
    """Unpickling this creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickle_checkpoint(filename: str):
    def make(d: Path):
        state = build_model("mlp", (4,), 3, hidden=[8]).state_dict()
        state["evil"] = _Evil(d / MARKER)
        torch.save(state, d / filename)
        assert not (d / MARKER).exists()
        return _recipe(teacher={"checkpoint": filename, "model": "mlp", "hidden": [8]})
    return make


def _xy(n=30, classes=3):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype(np.float32), np.arange(n) % classes


def _npz_bad_label(d: Path):
    x, y = _xy()
    y[4] = 5
    np.savez(d / "d.npz", x=x, y=y)
    return _recipe(data={"source": "d.npz", "num_classes": 3})


def _npz_nan(d: Path):
    x, y = _xy()
    x[7, 2] = np.nan
    np.savez(d / "d.npz", x=x, y=y)
    return _recipe(data={"source": "d.npz"})


def _csv(bad_row: str | None, target: str):
    def make(d: Path):
        x, y = _xy()
        lines = ["a,b,c,d,label"] + [",".join(f"{v:.3f}" for v in row) + f",{t}"
                                     for row, t in zip(x, y)]
        if bad_row:
            lines[3] = bad_row
        (d / "d.csv").write_text("\n".join(lines) + "\n")
        return _recipe(data={"source": "d.csv", "target": target})
    return make


def _python_tag(d: Path):
    return (f'name: !!python/object/apply:os.system ["touch {d / MARKER}"]\n'
            "data: {source: iris}\nstudent: {model: mlp}\nmethod: {name: scratch}\n")


def _single_method(**params):
    r = _recipe(method={"name": "kd", **params})
    del r["methods"]
    return r


# ---------------------------------------------------------------------------------- cases

CASES = [
    # 1. misspelt keys
    Case("misspelt-method-key", ("unknown key", "methods[0].temprature",
                                 "did you mean 'temperature'"),
         _recipe(methods=[{"name": "kd", "temprature": 2.0}])),
    Case("misspelt-train-key", ("unknown key", "train.epohcs", "did you mean 'epochs'"),
         _recipe(train={"epohcs": 3})),
    # 2. wrong type
    Case("wrong-type", ("train.epochs", "'ten'", "whole number"),
         _recipe(train={"epochs": "ten"})),
    # 3. temperature <= 0 (both values in one file: both are reported)
    Case("temperature-not-positive", ("2 problems", "methods[0].temperature", "> 0", "got 0",
                                      "methods[1].temperature", "got -1"),
         _recipe(methods=[{"name": "kd", "label": "a", "temperature": 0},
                          {"name": "kd", "label": "b", "temperature": -1}])),
    Case("temperature-single-method", ("method.temperature", "> 0", "got -1"),
         _single_method(temperature=-1)),
    # 4. kd alpha outside [0, 1]
    Case("alpha-outside-unit-interval", ("2 problems", "methods[0].alpha", "<= 1", "got 1.5",
                                         "methods[1].alpha", ">= 0", "got -0.1"),
         _recipe(methods=[{"name": "kd", "label": "a", "alpha": 1.5},
                          {"name": "kd", "label": "b", "alpha": -0.1}])),
    # 5. / 6. / 12. checkpoints
    Case("missing-checkpoint", ("teacher.checkpoint", "'nope.safetensors'", "does not exist"),
         _recipe(teacher={"checkpoint": "nope.safetensors", "model": "mlp", "hidden": [8]})),
    Case("checkpoint-shapes", ("teacher.checkpoint", "t16.safetensors", "shape", "[16, 4]",
                               "[8, 4]"), _mlp16_checkpoint),
    Case("pickle-as-safetensors", ("teacher.checkpoint", "'teacher.safetensors'",
                                   "not a safetensors file"),
         _pickle_checkpoint("teacher.safetensors")),
    Case("pickle-pt", ("teacher.checkpoint", "'teacher.pt'", "not a safetensors file"),
         _pickle_checkpoint("teacher.pt")),
    # 7. data files
    Case("npz-label-out-of-range", ("data.source", "d.npz", "label 5", "row 4",
                                    "num_classes=3"), _npz_bad_label),
    Case("npz-nan", ("data.source", "d.npz", "NaN", "row 7", "feature 2"), _npz_nan),
    Case("csv-non-numeric", ("data.source", "d.csv", "'b'", "'oops'", "expected a number"),
         _csv("0.1,oops,0.3,0.4,1", "label")),
    Case("csv-missing-target", ("data.target", "'lable'", "d.csv", "did you mean 'label'"),
         _csv(None, "lable")),
    # 8. student classes differ from data and teacher
    Case("student-classes", ("student.num_classes", "5", "10 classes"),
         _recipe(data={"source": "digits"},
                 student={"model": "mlp", "hidden": [8], "num_classes": 5})),
    # 9. several problems listed at once
    Case("all-problems-listed", ("3 problems", "train.epohcs", "did you mean 'epochs'",
                                 "train.lr", "-0.1", "methods[1].temperature", "-2"),
         _recipe(train={"epohcs": 3, "lr": -0.1},
                 methods=[{"name": "scratch"}, {"name": "kd", "temperature": -2}])),
    # 10. --set
    Case("set-bad-value", ("train.lr", "> 0", "got -1"), _recipe(),
         args=("--set", "train.lr=-1")),
    Case("set-without-equals", ("--set", "'train.lr'", "key.path=value"), _recipe(),
         args=("--set", "train.lr")),
    Case("set-invalid-yaml", ("--set", "train.seeds", "'[1'", "[list]"), _recipe(),
         args=("--set", "train.seeds=[1")),  # also: brackets are printed, not read as markup
    # 11. YAML with a Python tag
    Case("yaml-python-tag", ("recipe.yaml", "'!!python/object/apply:os.system'",
                             "not allowed"), _python_tag),
    # 14. privileged (label-assisted) teachers
    Case("privileged-cnn", ("teacher", "'cnn' cannot read", "expected model 'mlp' or "
                            "'linear'"),
         _recipe(teacher={"model": "cnn", "privileged": {"kind": "labels"}})),
    Case("privileged-unknown-kind", ("teacher.privileged.kind", "'clean'", "'labels'"),
         _recipe(teacher={"model": "mlp", "privileged": {"kind": "clean"}})),
    # 16. label stores
    Case("store-of-other-data", ("manifest.json", "was made from other data",
                                 "teacher.allow_mismatch"), _store_of_other_data),
    Case("store-missing", ("label store", "'nowhere'", "does not exist"),
         _recipe(teacher={"store": "nowhere"})),
    # 15. multi-stage teachers
    Case("adapt-false-without-stages", ("teacher", "'adapt: false' leaves the teacher "
                                        "untrained", "expected 'pretrain'"),
         _recipe(teacher={"model": "mlp", "adapt": False})),
    Case("stage-data-mismatch", ("teacher.pretrain[0].data (digits)", "10 classes",
                                 "expected (4,) and 3"),
         _recipe(teacher={"model": "mlp", "pretrain": [{"data": {"source": "digits"}}]})),
    # 13. semi-supervised views and batches
    Case("augment-unknown-name", ("train.augment", "strong[0].name 'blurr'",
                                  "expected one of"),
         _recipe(train={"epochs": 2, "seeds": [0],
                        "augment": {"strong": [{"name": "blurr"}]}})),
    Case("augment-bad-parameter", ("train.augment.strong[1]", "noise.std must be >= 0",
                                   "got -1"),
         _recipe(train={"epochs": 2, "seeds": [0], "augment": {"strong": [
             {"name": "shift"}, {"name": "noise", "std": -1}]}})),
    Case("augment-unknown-parameter", ("train.augment.weak[0]", "'mask'",
                                       "rejects parameters"),
         _recipe(train={"epochs": 2, "seeds": [0], "augment": {"weak": [
             {"name": "mask", "prob": 0.2}]}})),
    Case("unlabeled-ratio-negative", ("train.unlabeled_ratio", "must be >= 0", "got -2"),
         _recipe(train={"epochs": 2, "seeds": [0], "unlabeled_ratio": -2})),
    Case("ssl-threshold-out-of-range", ("methods[0].threshold", "must be <= 1", "got 1.5"),
         _recipe(methods=[{"name": "fixmatch", "threshold": 1.5}])),
    # 14. recipe files
    Case("missing-recipe", ("'missing.yaml'", "does not exist"),
         argv=("run", "missing.yaml", "--out", "runs")),
    Case("directory-recipe", ("'somedir'", "directory"),
         argv=("run", "somedir", "--out", "runs"), recipe=lambda d: (d / "somedir").mkdir()),
]


def _prepare(case: Case, folder: Path) -> list[str]:
    recipe = case.recipe(folder) if callable(case.recipe) else case.recipe
    if recipe is not None:
        text = recipe if isinstance(recipe, str) else yaml.safe_dump(recipe, sort_keys=False)
        (folder / "recipe.yaml").write_text(text, encoding="utf-8")
    if case.argv is not None:
        return list(case.argv)
    return ["run", "recipe.yaml", "--out", str(folder / "runs"), "--quiet", *case.args]


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory, cli):
    """Prepare every selected case in its own folder and run their CLIs concurrently."""
    wanted = {item.callspec.params["case"].id for item in request.session.items
              if item.module is request.module and hasattr(item, "callspec")
              and "case" in item.callspec.params}
    jobs = {}
    for case in CASES:
        if case.id in wanted:
            folder = tmp_path_factory.mktemp(case.id)
            jobs[case.id] = (folder, _prepare(case, folder))
    workers = min(8, max(2, os.cpu_count() or 2))
    with ThreadPoolExecutor(workers) as pool:
        futures = {k: pool.submit(cli, argv, folder) for k, (folder, argv) in jobs.items()}
        return {k: (jobs[k][0], f.result()) for k, f in futures.items()}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, outcomes):
    folder, proc = outcomes[case.id]
    err = proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stdout, err)
    assert "Traceback" not in err, err
    assert err.startswith("error: ") and err.count("error:") == 1, err
    for needle in case.needles:
        assert needle in err, (needle, err)
    runs = folder / "runs"
    assert not runs.exists() or not any(runs.iterdir()), list(runs.rglob("*"))
    assert not (folder / MARKER).exists(), "an unsafe payload was executed"
