"""The bad-input catalogue: every bad input -- recipes, data files, checkpoints, label stores,
CLI flags -- is refused with one ``error:`` sentence on stderr naming what, where and the
value, exit code 2, no traceback, nothing on stdout, nothing left under ``--out`` and no
file of the case's folder created or changed.

Each CLI case is a row of :data:`CASES`: a recipe (or a callable preparing the case's folder
and returning a recipe or None), the CLI arguments, and the strings the error must contain.
Every case fails before any training starts.

The CLI runs of all selected cases go to one *fork server*: a Python process that imports
``mentor.cli`` once and forks a child per case, which changes into the case's folder,
points its stdout / stderr at files and calls :func:`mentor.cli.main` with the case's
arguments -- the entry point ``mentor`` and ``python -m mentor`` call -- and exits with its
exit code. Without it every case paid ~2 s of torch import on its own;
:func:`test_the_fork_server_answers_like_the_real_cli` checks a few cases against
``python -m mentor`` processes.

API-only cases (a full disk, simulated by patched writes) are the tests below
:data:`CASES`; :data:`API_CASES` lists them for the catalogue in ``docs/reliability.md``,
which must name every case (:func:`test_every_case_is_in_the_docs`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from mentor.engine.checkpoint import save_weights
from mentor.errors import MentorError, WriteError
from mentor.models import build_model

SRC = Path(__file__).resolve().parents[2] / "src"
MARKER = "pwned"  # a file that only exists if an unsafe payload ran
DOCS = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"


def _ignores_permissions() -> bool:
    """Whether this process can write into a folder of mode 0500 (root, CAP_DAC_OVERRIDE)."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        locked = Path(d) / "locked"
        locked.mkdir(mode=0o500)
        try:
            (locked / "probe").touch()
        except PermissionError:
            return False
        finally:
            locked.chmod(0o700)
        return True


IGNORES_PERMISSIONS = _ignores_permissions()


@dataclass
class Case:
    id: str
    what: str  # the input, in words (the catalogue in docs/reliability.md)
    needles: tuple[str, ...]
    recipe: Any = None  # mapping, YAML text, or callable(folder) -> one of those or None
    args: tuple[str, ...] = ()  # CLI arguments after `run recipe.yaml --out runs --quiet`
    argv: tuple[str, ...] | None = None  # full CLI arguments instead of the default
    out: str = "runs"  # the output folder: absent or empty afterwards
    skip: str | None = None  # a reason not to run the case here


def _recipe(**over):
    """A small valid recipe on iris (nothing runs: every case fails before training)."""
    r = {"name": "bad", "data": {"source": "iris"},
         "teacher": {"model": "mlp", "hidden": [16], "train": {"epochs": 2}},
         "student": {"model": "mlp", "hidden": [8]},
         "methods": [{"name": "scratch"}, {"name": "kd", "temperature": 2.0, "alpha": 0.5}],
         "train": {"epochs": 2, "seeds": [0]}}
    r.update(over)
    return r


def _active(teacher=None, **active):
    """A small active recipe on iris with a labeled pool of 20 %."""
    r = {"name": "act", "data": {"source": "iris", "labeled_fraction": 0.2},
         "student": {"model": "mlp", "hidden": [8]},
         "active": {"selectors": ["random"], "rounds": 1, "oracle_per_round": 5, **active},
         "train": {"epochs": 1, "seeds": [0]}}
    if teacher is not None:
        r["teacher"] = teacher
    return r


ACTIVE = ("active", "recipe.yaml", "--out", "runs", "--quiet")

# ---------------------------------------------------------------------------------- files


def _mlp16_checkpoint(d: Path):
    torch.manual_seed(0)
    save_weights(d / "t16.safetensors", build_model("mlp", (4,), 3, hidden=[16]))
    return _recipe(teacher={"checkpoint": "t16.safetensors", "model": "mlp", "hidden": [8]})


def _teacher_file(d: Path, name: str = "t.safetensors") -> Path:
    """A mentor checkpoint of an mlp teacher for iris (architecture in its metadata)."""
    torch.manual_seed(0)
    save_weights(d / name, build_model("mlp", (4,), 3, hidden=[8]),
                 {"mentor.model": {"model": "mlp", "hidden": [8]}, "mentor.num_classes": 3,
                  "mentor.input_shape": [4]})
    return d / name


def _broken_checkpoint(kind: str, then=None):
    """A teacher checkpoint cut in half, empty, of random bytes, or a folder."""
    def make(d: Path):
        path = _teacher_file(d)
        data = path.read_bytes()
        if kind == "half":
            path.write_bytes(data[:len(data) // 2])
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "garbage":
            path.write_bytes(np.random.default_rng(0).bytes(len(data)))
        elif kind == "directory":
            path.unlink()
            path.mkdir()
        teacher = {"checkpoint": "t.safetensors"}
        return then(teacher) if then else _recipe(teacher=teacher)
    return make


def _store(d: Path, name: str = "store") -> Path:
    """A complete label store of 20 random iris-like rows in two shards."""
    from mentor.labels import make_kind, write_store
    from mentor.teachers import ModuleTeacher

    torch.manual_seed(0)
    teacher = ModuleTeacher(build_model("mlp", (4,), 3, hidden=[8]), 3)
    write_store(teacher, torch.randn(20, 4), d / name, make_kind("logits", num_classes=3),
                shard_samples=10)
    return d / name


def _store_of_other_data(d: Path):
    """A label store of iris inputs other than the recipe's training split."""
    from mentor.labels import make_kind, write_store
    from mentor.teachers import ModuleTeacher

    torch.manual_seed(0)
    teacher = ModuleTeacher(build_model("mlp", (4,), 3, hidden=[8]), 3)
    write_store(teacher, torch.randn(90, 4), d / "store", make_kind("logits", num_classes=3))
    return _recipe(teacher={"store": str(d / "store")})


def _broken_store(kind: str, use: str = "recipe"):
    """A label store damaged in one way, used by a recipe or given to `mentor inspect`."""
    def make(d: Path):
        store = _store(d)
        manifest = store / "manifest.json"
        shard = store / "shard-00001.arrow"
        if kind == "truncated-shard":
            shard.write_bytes(shard.read_bytes()[:100])
        elif kind == "tampered-shard":
            data = bytearray(shard.read_bytes())
            data[-40] ^= 0xFF
            shard.write_bytes(bytes(data))
        elif kind == "missing-shard":
            shard.unlink()
        elif kind == "no-manifest":
            manifest.unlink()
        elif kind == "manifest-not-json":
            manifest.write_text(manifest.read_text()[:50])
        elif kind == "manifest-list":
            manifest.write_text("[1, 2, 3]")
        elif kind == "manifest-without-shards":
            m = json.loads(manifest.read_text())
            del m["shards"]
            manifest.write_text(json.dumps(m))
        elif kind == "manifest-bad-rows":
            m = json.loads(manifest.read_text())
            m["samples"] = "many"
            manifest.write_text(json.dumps(m))
        elif kind == "shard-outside-store":
            m = json.loads(manifest.read_text())
            m["shards"][0]["file"] = "../../secret.arrow"
            manifest.write_text(json.dumps(m))
        return _recipe(teacher={"store": "store"}) if use == "recipe" else None
    return make


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


def _npz(change=None, **recipe_data):
    """``d.npz`` of 30 rows (``change(x, y)`` returns the arrays to save, as a dict)."""
    def make(d: Path):
        x, y = _xy()
        arrays = change(x, y) if change else {"x": x, "y": y}
        np.savez(d / "d.npz", **arrays)
        return _recipe(data={"source": "d.npz", **recipe_data})
    return make


def _set(row: int, col: int, value):
    def change(x, y):
        x[row, col] = value
        return {"x": x, "y": y}
    return change


def _npz_truncated(d: Path):
    x, y = _xy()
    np.savez(d / "d.npz", x=x, y=y)
    data = (d / "d.npz").read_bytes()
    (d / "d.npz").write_bytes(data[:len(data) // 2])
    return _recipe(data={"source": "d.npz"})


def _csv(bad_row: str | None, target: str, rows: int = 30):
    def make(d: Path):
        x, y = _xy()
        lines = ["a,b,c,d,label"] + [",".join(f"{v:.3f}" for v in row) + f",{t}"
                                     for row, t in list(zip(x, y))[:rows]]
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


def _with(recipe, prepare):
    """``prepare(folder)`` first, then ``recipe`` (a mapping or None)."""
    def make(d: Path):
        prepare(d)
        return recipe
    return make


def _label(*flags: str, teacher: str = "t.safetensors", data: str = "iris", out: str = "store",
           prepare=None) -> dict:
    """`mentor label` with a valid teacher checkpoint, iris, and ``flags``."""
    def make(d: Path):
        _teacher_file(d)
        if prepare is not None:
            prepare(d)
        return None
    return {"recipe": make, "out": out,
            "argv": ("label", "--teacher", teacher, "--data", data, "--out", out, "--quiet",
                     *flags)}


def _locked_folder(d: Path):
    (d / "locked").mkdir()
    (d / "locked").chmod(0o500)
    return _recipe()


# ---------------------------------------------------------------------------------- cases

CASES = [
    # --- recipes: misspelt keys
    Case("misspelt-method-key", "a method parameter 'temprature'",
         ("unknown key", "methods[0].temprature", "did you mean 'temperature'"),
         _recipe(methods=[{"name": "kd", "temprature": 2.0}])),
    Case("misspelt-train-key", "a train key 'epohcs'",
         ("unknown key", "train.epohcs", "did you mean 'epochs'"),
         _recipe(train={"epohcs": 3})),
    Case("unknown-method", "method name 'kdd'",
         ("methods[0].name", "unknown method 'kdd'", "did you mean 'kd'"),
         _recipe(methods=[{"name": "kdd"}])),
    Case("unknown-data-source", "data.source 'irsi'",
         ("data.source", "'irsi'", "did you mean 'iris'"), _recipe(data={"source": "irsi"})),
    # --- recipes: wrong types
    Case("wrong-type", "train.epochs 'ten'", ("train.epochs", "'ten'", "whole number"),
         _recipe(train={"epochs": "ten"})),
    Case("wrong-type-list", "student.hidden 'big' (a list is expected)",
         ("student.hidden", "must be a list", "'big'"),
         _recipe(student={"model": "mlp", "hidden": "big"})),
    Case("recipe-not-a-mapping", "a recipe file holding a YAML list",
         ("recipe.yaml", "top level must be a mapping", "list"), "- name\n- data\n"),
    Case("recipe-empty-file", "an empty recipe file",
         ("recipe.yaml", "the file is empty", "expected a mapping"), ""),
    Case("recipe-invalid-yaml", "a recipe with a mis-indented key (invalid YAML)",
         ("recipe.yaml", "line 2", "not valid YAML"), "name: bad\n  data: iris\n"),
    # --- recipes: out-of-range values
    Case("temperature-not-positive", "two kd temperatures, 0 and -1 (both reported)",
         ("2 problems", "methods[0].temperature", "> 0", "got 0",
          "methods[1].temperature", "got -1"),
         _recipe(methods=[{"name": "kd", "label": "a", "temperature": 0},
                          {"name": "kd", "label": "b", "temperature": -1}])),
    Case("temperature-single-method", "method.temperature -1 (one method)",
         ("method.temperature", "> 0", "got -1"), _single_method(temperature=-1)),
    Case("alpha-outside-unit-interval", "kd alphas 1.5 and -0.1",
         ("2 problems", "methods[0].alpha", "<= 1", "got 1.5",
          "methods[1].alpha", ">= 0", "got -0.1"),
         _recipe(methods=[{"name": "kd", "label": "a", "alpha": 1.5},
                          {"name": "kd", "label": "b", "alpha": -0.1}])),
    Case("val-fraction-out-of-range", "data.val_fraction 1.5",
         ("data.val_fraction", "< 1", "got 1.5"),
         _recipe(data={"source": "iris", "val_fraction": 1.5})),
    Case("negative-seed", "train.seeds [-1]", ("train.seeds[0]", ">= 0", "got -1"),
         _recipe(train={"epochs": 2, "seeds": [-1]})),
    Case("nan-learning-rate", "train.lr .nan (YAML NaN)", ("train.lr", "got NaN"),
         "name: bad\ndata: {source: iris}\nstudent: {model: mlp}\nmethod: {name: scratch}\n"
         "train: {lr: .nan}\n"),
    Case("all-problems-listed", "three mistakes in one recipe (all listed)",
         ("3 problems", "train.epohcs", "did you mean 'epochs'",
          "train.lr", "-0.1", "methods[1].temperature", "-2"),
         _recipe(train={"epohcs": 3, "lr": -0.1},
                 methods=[{"name": "scratch"}, {"name": "kd", "temperature": -2}])),
    Case("student-classes", "student.num_classes 5 on digits (10 classes)",
         ("student.num_classes", "5", "10 classes"),
         _recipe(data={"source": "digits"},
                 student={"model": "mlp", "hidden": [8], "num_classes": 5})),
    # --- --set overrides
    Case("set-bad-value", "--set train.lr=-1", ("train.lr", "> 0", "got -1"), _recipe(),
         args=("--set", "train.lr=-1")),
    Case("set-without-equals", "--set train.lr (no '=')",
         ("--set", "'train.lr'", "key.path=value"), _recipe(), args=("--set", "train.lr")),
    Case("set-invalid-yaml", "--set train.seeds=[1 (unclosed list)",
         ("--set", "train.seeds", "'[1'", "[list]"), _recipe(),
         args=("--set", "train.seeds=[1")),  # also: brackets are printed, not read as markup
    # --- recipe files and unsafe YAML
    Case("yaml-python-tag", "a recipe with a !!python/object/apply tag (never run)",
         ("recipe.yaml", "'!!python/object/apply:os.system'", "not allowed"), _python_tag),
    Case("missing-recipe", "mentor run missing.yaml", ("'missing.yaml'", "does not exist"),
         argv=("run", "missing.yaml", "--out", "runs")),
    Case("directory-recipe", "mentor run on a folder", ("'somedir'", "directory"),
         argv=("run", "somedir", "--out", "runs"), recipe=lambda d: (d / "somedir").mkdir()),
    Case("unknown-builtin-recipe", "mentor run defualt (no such file or built-in)",
         ("'defualt'", "neither a file nor a built-in recipe", "did you mean 'default'"),
         argv=("run", "defualt", "--out", "runs")),
    Case("validate-missing", "mentor recipes validate nowhere.yaml",
         ("'nowhere.yaml'", "does not exist"), argv=("recipes", "validate", "nowhere.yaml")),
    Case("validate-directory", "mentor recipes validate on a folder",
         ("'conf.yaml'", "is a directory"), argv=("recipes", "validate", "conf.yaml"),
         recipe=lambda d: (d / "conf.yaml").mkdir()),
    # --- privileged and multi-stage teachers
    Case("privileged-cnn", "a privileged teacher of model cnn",
         ("teacher", "'cnn' cannot read", "expected model 'mlp' or 'linear'"),
         _recipe(teacher={"model": "cnn", "privileged": {"kind": "labels"}})),
    Case("privileged-unknown-kind", "teacher.privileged.kind 'clean'",
         ("teacher.privileged.kind", "'clean'", "'labels'"),
         _recipe(teacher={"model": "mlp", "privileged": {"kind": "clean"}})),
    Case("adapt-false-without-stages", "teacher.adapt false without pretrain stages",
         ("teacher", "'adapt: false' leaves the teacher untrained", "expected 'pretrain'"),
         _recipe(teacher={"model": "mlp", "adapt": False})),
    Case("stage-data-mismatch", "a pretrain stage on digits for an iris teacher",
         ("teacher.pretrain[0].data (digits)", "10 classes", "expected (4,) and 3"),
         _recipe(teacher={"model": "mlp", "pretrain": [{"data": {"source": "digits"}}]})),
    # --- semi-supervised views and batches
    Case("augment-unknown-name", "train.augment strong view 'blurr'",
         ("train.augment", "strong[0].name 'blurr'", "expected one of"),
         _recipe(train={"epochs": 2, "seeds": [0],
                        "augment": {"strong": [{"name": "blurr"}]}})),
    Case("augment-bad-parameter", "augmentation noise.std -1",
         ("train.augment.strong[1]", "noise.std must be >= 0", "got -1"),
         _recipe(train={"epochs": 2, "seeds": [0], "augment": {"strong": [
             {"name": "shift"}, {"name": "noise", "std": -1}]}})),
    Case("augment-unknown-parameter", "augmentation mask with parameter 'prob'",
         ("train.augment.weak[0]", "'mask'", "rejects parameters"),
         _recipe(train={"epochs": 2, "seeds": [0], "augment": {"weak": [
             {"name": "mask", "prob": 0.2}]}})),
    Case("unlabeled-ratio-negative", "train.unlabeled_ratio -2",
         ("train.unlabeled_ratio", "must be >= 0", "got -2"),
         _recipe(train={"epochs": 2, "seeds": [0], "unlabeled_ratio": -2})),
    Case("ssl-threshold-out-of-range", "fixmatch threshold 1.5",
         ("methods[0].threshold", "must be <= 1", "got 1.5"),
         _recipe(methods=[{"name": "fixmatch", "threshold": 1.5}])),
    # --- data files
    Case("npz-label-out-of-range", ".npz label 5 with data.num_classes 3",
         ("data.source", "d.npz", "label 5", "row 4", "num_classes=3"),
         _npz(lambda x, y: {"x": x, "y": np.where(np.arange(30) == 4, 5, y)}, num_classes=3)),
    Case("npz-nan", ".npz with a NaN input", ("data.source", "d.npz", "NaN", "row 7",
                                               "feature 2"), _npz(_set(7, 2, np.nan))),
    Case("npz-inf", ".npz with an infinite input",
         ("data.source", "d.npz", "infinite", "row 3", "feature 1"), _npz(_set(3, 1, np.inf))),
    Case("npz-empty", ".npz with zero rows",
         ("data.source", "d.npz", "empty (0 samples)"),
         _npz(lambda x, y: {"x": x[:0], "y": y[:0]})),
    Case("npz-one-class", ".npz whose labels are all 0",
         ("data.source", "d.npz", "all 30 samples have label 0", "at least 2 classes"),
         _npz(lambda x, y: {"x": x, "y": np.zeros_like(y)})),
    Case("npz-length-mismatch", ".npz with 30 inputs and 29 labels",
         ("data.source", "d.npz", "x has 30 samples but y has 29"),
         _npz(lambda x, y: {"x": x, "y": y[:29]})),
    Case("npz-fractional-label", ".npz label 0.5", ("d.npz", "label 0.5", "not a whole number"),
         _npz(lambda x, y: {"x": x, "y": np.where(np.arange(30) == 0, 0.5, y)})),
    Case("npz-no-labels", ".npz without the array 'y'", ("d.npz", "no array 'y'"),
         _npz(lambda x, y: {"x": x, "labels": y})),
    Case("npz-object-array", ".npz holding a pickled object array (never unpickled)",
         ("d.npz", "object arrays", "pickle"),
         _npz(lambda x, y: {"x": np.array([object()] * 30, dtype=object), "y": y})),
    Case("npz-truncated", ".npz cut in half", ("data.source", "d.npz", "truncated or damaged"),
         _npz_truncated),
    Case("npz-missing", "data.source nope.npz (no such file)",
         ("data.source", "'nope.npz'", "does not exist"), _recipe(data={"source": "nope.npz"})),
    Case("data-directory", "data.source a folder named d.npz",
         ("data.source", "'d.npz'", "is a directory"),
         _with(_recipe(data={"source": "d.npz"}), lambda d: (d / "d.npz").mkdir())),
    Case("csv-non-numeric", ".csv with 'oops' in a feature column",
         ("data.source", "d.csv", "'b'", "'oops'", "expected a number"),
         _csv("0.1,oops,0.3,0.4,1", "label")),
    Case("csv-inf", ".csv with 'inf' in a feature column",
         ("data.source", "d.csv", "infinite", "row 2", "feature 0"),
         _csv("inf,0.2,0.3,0.4,1", "label")),
    Case("csv-ragged-row", ".csv row with 3 of 5 fields",
         ("data.source", "d.csv", "row 4 has 3 fields", "expected 5"),
         _csv("0.1,0.2,1", "label")),
    Case("csv-missing-target", "data.target 'lable' (misspelt column)",
         ("data.target", "'lable'", "d.csv", "did you mean 'label'"), _csv(None, "lable")),
    Case("csv-header-only", ".csv with a header and no rows",
         ("data.source", "d.csv", "no data rows"), _csv(None, "label", rows=0)),
    # --- checkpoints
    Case("missing-checkpoint", "teacher.checkpoint nope.safetensors (no such file)",
         ("teacher.checkpoint", "'nope.safetensors'", "does not exist"),
         _recipe(teacher={"checkpoint": "nope.safetensors", "model": "mlp", "hidden": [8]})),
    Case("checkpoint-shapes", "a checkpoint of hidden [16] for a teacher of hidden [8]",
         ("teacher.checkpoint", "t16.safetensors", "shape", "[16, 4]", "[8, 4]"),
         _mlp16_checkpoint),
    Case("checkpoint-truncated", "a safetensors checkpoint cut in half",
         ("teacher.checkpoint", "'t.safetensors'", "is truncated", "header promises"),
         _broken_checkpoint("half")),
    Case("checkpoint-empty", "a 0-byte checkpoint",
         ("teacher.checkpoint", "'t.safetensors'", "is empty (0 bytes)"),
         _broken_checkpoint("empty")),
    Case("checkpoint-garbage", "a checkpoint of random bytes",
         ("teacher.checkpoint", "'t.safetensors'", "not a safetensors file"),
         _broken_checkpoint("garbage")),
    Case("checkpoint-directory", "teacher.checkpoint a folder",
         ("teacher.checkpoint", "'t.safetensors'", "is a directory"),
         _broken_checkpoint("directory")),
    Case("pickle-as-safetensors", "a torch.save pickle named .safetensors (never unpickled)",
         ("teacher.checkpoint", "'teacher.safetensors'", "not a safetensors file"),
         _pickle_checkpoint("teacher.safetensors")),
    Case("pickle-pt", "a torch.save .pt checkpoint (never unpickled)",
         ("teacher.checkpoint", "'teacher.pt'", "not a safetensors file"),
         _pickle_checkpoint("teacher.pt")),
    # --- label stores as teachers, and `mentor inspect`
    Case("store-of-other-data", "a label store made from other inputs",
         ("manifest.json", "was made from other data", "teacher.allow_mismatch"),
         _store_of_other_data),
    Case("store-missing", "teacher.store nowhere (no such folder)",
         ("label store", "'nowhere'", "does not exist"), _recipe(teacher={"store": "nowhere"})),
    Case("store-truncated-shard", "a store shard cut to 100 bytes",
         ("shard-00001.arrow", "has 100 bytes", "truncated"), _broken_store("truncated-shard")),
    Case("store-tampered-shard", "a store shard with one byte changed",
         ("shard-00001.arrow", "fails its sha256 check"), _broken_store("tampered-shard")),
    Case("store-missing-shard", "a store whose second shard is deleted",
         ("shard-00001.arrow", "is missing"), _broken_store("missing-shard")),
    Case("store-incomplete", "a store folder without manifest.json",
         ("label store 'store'", "no manifest.json", "incomplete"), _broken_store("no-manifest")),
    Case("inspect-manifest-not-json", "mentor inspect: manifest.json cut short",
         ("manifest.json", "is not valid JSON"), _broken_store("manifest-not-json", "inspect"),
         argv=("inspect", "store")),
    Case("inspect-manifest-list", "mentor inspect: manifest.json holding a list",
         ("manifest.json", "holds a JSON list", "expected an object"),
         _broken_store("manifest-list", "inspect"), argv=("inspect", "store")),
    Case("inspect-manifest-without-shards", "mentor inspect: manifest.json without 'shards'",
         ("manifest.json", "lacks the key 'shards'"),
         _broken_store("manifest-without-shards", "inspect"), argv=("inspect", "store")),
    Case("inspect-manifest-bad-samples", "mentor inspect: manifest samples 'many'",
         ("manifest.json", "samples 'many'", "not a JSON integer"),
         _broken_store("manifest-bad-rows", "inspect"), argv=("inspect", "store")),
    Case("inspect-shard-outside-store", "mentor inspect: a shard file '../../secret.arrow'",
         ("manifest.json", "'../../secret.arrow'", "not a file name in the store"),
         _broken_store("shard-outside-store", "inspect"), argv=("inspect", "store")),
    Case("inspect-missing", "mentor inspect nowhere", ("label store 'nowhere'", "does not exist"),
         argv=("inspect", "nowhere")),
    Case("inspect-a-file", "mentor inspect on a checkpoint file",
         ("label store 't.safetensors'", "not a folder"), argv=("inspect", "t.safetensors"),
         recipe=lambda d: _teacher_file(d) and None),
    # --- mentor label flags
    Case("label-views-zero", "mentor label --views 0", ("--views", ">= 1", "got 0"),
         **_label("--views", "0")),
    Case("label-views-without-augment", "mentor label --views 3 without --augment",
         ("--views 3", "needs --augment"), **_label("--views", "3")),
    Case("label-augment-unknown", "mentor label --augment blurr",
         ("--augment", "'blurr'", "not a registered augmentation"),
         **_label("--augment", "blurr", "--views", "2")),
    Case("label-topk-out-of-range", "mentor label --topk 9 for 3 classes",
         ("topk 9", "out of range", "1..3"), **_label("--topk", "9")),
    Case("label-topk-and-hard", "mentor label --topk 2 --hard",
         ("--topk and --hard",), **_label("--topk", "2", "--hard")),
    Case("label-temperature-negative", "mentor label --topk 2 --temperature -1",
         ("temperature", "> 0", "got -1"), **_label("--topk", "2", "--temperature", "-1")),
    Case("label-dtype", "mentor label --dtype float64",
         ("dtype 'float64'", "'float32' or 'float16'"), **_label("--dtype", "float64")),
    Case("label-shard-samples-zero", "mentor label --shard-samples 0",
         ("--shard-samples", ">= 1", "got 0"), **_label("--shard-samples", "0")),
    Case("label-split-unknown", "mentor label --split holdout",
         ("--split", "'holdout'", "train, val, test"), **_label("--split", "holdout")),
    Case("label-split-seed-not-a-number", "mentor label --split-seed abc",
         ("--split-seed", "valid integer", "'abc'"), **_label("--split-seed", "abc")),
    Case("label-teacher-missing", "mentor label --teacher nope.safetensors",
         ("--teacher", "'nope.safetensors'", "does not exist"),
         **_label(teacher="nope.safetensors")),
    Case("label-teacher-truncated", "mentor label with a truncated teacher checkpoint",
         ("--teacher", "'half.safetensors'", "is truncated"),
         **_label(teacher="half.safetensors", prepare=lambda d: (d / "half.safetensors")
                  .write_bytes((d / "t.safetensors").read_bytes()[:300]))),
    Case("label-data-missing", "mentor label --data nope.npz",
         ("data", "'nope.npz'", "does not exist"), **_label(data="nope.npz")),
    Case("label-out-is-a-file", "mentor label --out an existing file",
         ("label store 'notes.txt'", "is a file", "expected a folder"),
         **_label(out="notes.txt", prepare=lambda d: (d / "notes.txt").write_text("mine\n"))),
    Case("label-no-teacher-flag", "mentor label without --teacher",
         ("Missing option '--teacher'",), argv=("label", "--data", "iris", "--out", "store")),
    # --- output folders and other CLI flags
    Case("run-threads-negative", "mentor run --threads -1",
         ("--threads", "greater than or equal to 0", "'-1'"), _recipe(), args=("--threads", "-1")),
    Case("run-unknown-flag", "mentor run --epochs 3 (no such flag)",
         ("No such option", "--epochs"), _recipe(), args=("--epochs", "3")),
    Case("run-out-is-a-file", "mentor run --out an existing file",
         ("--out", "'notes.txt'", "File exists"),
         _with(_recipe(), lambda d: (d / "notes.txt").write_text("mine\n")),
         argv=("run", "recipe.yaml", "--out", "notes.txt", "--quiet"), out="none"),
    Case("run-out-under-a-file", "mentor run --out notes.txt/runs",
         ("--out", "'notes.txt/runs'", "Not a directory"),
         _with(_recipe(), lambda d: (d / "notes.txt").write_text("mine\n")),
         argv=("run", "recipe.yaml", "--out", "notes.txt/runs", "--quiet"), out="none"),
    Case("run-out-not-writable", "mentor run --out a folder of mode 0500",
         ("--out", "'locked'", "Permission denied"), _locked_folder,
         argv=("run", "recipe.yaml", "--out", "locked", "--quiet"), out="locked",
         skip="this user ignores file permissions (root)" if IGNORES_PERMISSIONS else None),
    Case("resume-not-partial", "mentor run --resume on a finished run folder",
         ("--resume", "'done'", "not an unfinished run folder"),
         argv=("run", "--resume", "done"), recipe=lambda d: (d / "done").mkdir()),
    Case("bench-unknown-suite", "mentor bench --suite kdd",
         ("--suite", "'kdd'", "expected one of"), argv=("bench", "--suite", "kdd", "--quiet")),
    Case("export-missing-run", "mentor export nowhere",
         ("'nowhere'", "does not exist", "run folder"),
         argv=("export", "nowhere", "--format", "onnx")),
    # --- mentor active
    Case("active-no-section", "mentor active on a recipe without 'active'",
         ("recipe.yaml", "no 'active' section"), _recipe(), argv=ACTIVE),
    Case("active-unknown-selector", "active.selectors ['randm']",
         ("active.selectors[0]", "'randm'", "did you mean 'random'"),
         _active(selectors=["randm"]), argv=ACTIVE),
    Case("active-zero-budgets", "active oracle_per_round 0 and teacher_per_round 0",
         ("active", "both budgets are 0"), _active(oracle_per_round=0), argv=ACTIVE),
    Case("active-budget-over-pool", "active rounds x oracle_per_round above the pool",
         ("active budget", "exceeds the unlabeled pool"),
         _active(rounds=2, oracle_per_round=1000), argv=ACTIVE),
    Case("active-rounds-zero", "active.rounds 0", ("active.rounds", ">= 1", "got 0"),
         _active(rounds=0), argv=ACTIVE),
    Case("active-truncated-teacher", "mentor active with a truncated teacher checkpoint",
         ("teacher.checkpoint", "is truncated"),
         _broken_checkpoint("half", lambda t: _active(t, oracle_per_round=0,
                                                      teacher_per_round=5)), argv=ACTIVE),
]

# API-level cases (tests below): id -> (input, what mentor raises, test)
API_CASES = {
    "disk-full-run-folder": ("a run whose first write finds the disk full (a patched write "
                             "raising ENOSPC halfway)",
                             "WriteError: cannot write '…/input.yaml' (no space left on "
                             "device); no run folder is left",
                             "test_a_full_disk_leaves_no_run_folder"),
    "disk-full-label-store": ("a label store whose shard write finds the disk full (fsync "
                              "raising ENOSPC)",
                              "WriteError: cannot write '…/shard-00000.arrow' (no space left "
                              "on device); no shard, temp file or manifest is left",
                              "test_a_full_disk_leaves_no_label_store_files"),
    "disk-full-checkpoint": ("save_weights on a full disk (fsync raising ENOSPC)",
                             "WriteError: cannot write '…/model.safetensors' (no space left "
                             "on device); neither the file nor a temp file exists",
                             "test_a_full_disk_leaves_no_checkpoint"),
}


# ---------------------------------------------------------------------------------- runner

SERVER = r"""
import json, os, signal, sys, traceback
from mentor.cli import main
# what the commands import lazily, once here: every forked case starts warm
import mentor.runner, mentor.labels.command, mentor.active_command, mentor.teachers  # noqa
import sklearn.datasets  # noqa

jobs, limit = json.load(sys.stdin), int(sys.argv[1])


def start(job):
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        signal.alarm(120)  # a case that hangs is killed (exit code -14), not waited for
        os.chdir(job["cwd"])
        for fd, name in ((1, job["stdout"]), (2, job["stderr"])):
            f = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(f, fd)
            os.close(f)
        sys.argv = ["mentor", *job["argv"]]
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


running, codes = {}, {}
while jobs or running:
    while jobs and len(running) < limit:
        job = jobs.pop(0)
        running[start(job)] = job["id"]
    pid, status = os.wait()
    codes[running.pop(pid)] = os.waitstatus_to_exitcode(status)
print(json.dumps(codes))
"""


@dataclass
class Outcome:
    folder: Path
    returncode: int
    stdout: str
    stderr: str
    before: dict[str, str]  # the folder's files (relative path -> sha256) before the run


def _prepare(case: Case, folder: Path) -> list[str]:
    recipe = case.recipe(folder) if callable(case.recipe) else case.recipe
    if recipe is not None:
        text = recipe if isinstance(recipe, str) else yaml.safe_dump(recipe, sort_keys=False)
        (folder / "recipe.yaml").write_text(text, encoding="utf-8")
    if case.argv is not None:
        return list(case.argv)
    return ["run", "recipe.yaml", "--out", "runs", "--quiet", *case.args]


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cases(jobs: dict[str, tuple[Path, list[str]]], logs: Path) -> dict[str, Outcome]:
    """Run ``mentor <argv>`` in each folder through the fork server."""
    if not jobs:
        return {}
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    before = {k: _files(folder) for k, (folder, _) in jobs.items()}
    payload = [{"id": k, "cwd": str(folder), "argv": argv, "stdout": str(logs / f"{k}.out"),
                "stderr": str(logs / f"{k}.err")} for k, (folder, argv) in jobs.items()]
    workers = min(8, max(2, os.cpu_count() or 2))
    proc = subprocess.run([sys.executable, "-c", SERVER, str(workers)], input=json.dumps(payload),
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    codes = json.loads(proc.stdout.strip().splitlines()[-1])
    return {k: Outcome(folder, codes[k], (logs / f"{k}.out").read_text(),
                       (logs / f"{k}.err").read_text(), before[k])
            for k, (folder, _) in jobs.items()}


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory):
    """Prepare every selected case in its own folder and run their CLIs together."""
    wanted = {item.callspec.params["case"].id for item in request.session.items
              if item.module is request.module and hasattr(item, "callspec")
              and "case" in item.callspec.params}
    jobs = {}
    for case in CASES:
        if case.id in wanted and case.skip is None:
            folder = tmp_path_factory.mktemp(case.id)
            jobs[case.id] = (folder, _prepare(case, folder))
    return run_cases(jobs, tmp_path_factory.mktemp("bad-input-logs"))


def _param(case: Case):
    return pytest.param(case, id=case.id,
                        marks=[pytest.mark.skip(reason=case.skip)] if case.skip else [])


def test_case_ids_are_unique():
    ids = [c.id for c in CASES] + list(API_CASES)
    assert len(ids) == len(set(ids)) and len(ids) >= 45


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(case, outcomes):
    o = outcomes[case.id]
    err = o.stderr
    assert o.returncode == 2, (o.returncode, o.stdout, err)
    assert "Traceback" not in err, err
    assert err.startswith("error: ") and err.count("error:") == 1, err
    for needle in case.needles:
        assert needle in err, (needle, err)
    assert o.stdout == "", o.stdout
    out = o.folder / case.out
    assert not out.is_dir() or not any(out.iterdir()), list(out.rglob("*"))
    # no file created, changed or removed; a new folder is empty
    assert _files(o.folder) == o.before
    assert not (o.folder / MARKER).exists(), "an unsafe payload was executed"


FAITHFUL = ("all-problems-listed", "run-threads-negative", "label-shard-samples-zero",
            "inspect-manifest-without-shards")


def test_the_fork_server_answers_like_the_real_cli(tmp_path_factory, cli):
    """A few cases through ``python -m mentor`` processes: the same exit code and stderr as
    through the fork server (the usage hint names the program as it was started)."""
    jobs = {}
    for case in CASES:
        if case.id in FAITHFUL:
            folder = tmp_path_factory.mktemp(case.id)
            jobs[case.id] = (folder, _prepare(case, folder))
    forked = run_cases(jobs, tmp_path_factory.mktemp("faithful-logs"))
    for k, (folder, argv) in jobs.items():
        real = cli(argv, folder)
        assert real.returncode == forked[k].returncode == 2, (k, real.stderr)
        assert real.stderr.replace("python -m mentor", "mentor") == forked[k].stderr, k


# ---------------------------------------------------------------------------------- API cases

def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_a_full_disk_leaves_no_run_folder(tmp_path, monkeypatch):
    """The first file of a run (input.yaml) is written halfway, then the disk is full: a
    WriteError names the file, and no run folder (partial or final) is left."""
    import builtins

    import mentor.atomic
    from mentor.runner import run_recipe

    real_open = builtins.open

    class HalfWriter:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            self.f.write(text[:len(text) // 2])
            self.f.flush()
            _no_space()

    def full_disk_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return HalfWriter(f) if "w" in mode else f

    monkeypatch.setattr(mentor.atomic, "open", full_disk_open, raising=False)
    out = tmp_path / "runs"
    with pytest.raises(WriteError) as err:
        run_recipe(_recipe(), out, progress=False)
    assert isinstance(err.value, MentorError)
    msg = str(err.value)
    assert "input.yaml" in msg and "no space left on device" in msg and "\n" not in msg, msg
    assert out.is_dir() and not any(out.iterdir()), list(out.rglob("*"))


def test_a_full_disk_leaves_no_label_store_files(tmp_path, monkeypatch):
    """A shard's fsync finds the disk full: a WriteError names the shard; the store folder
    holds no shard, sidecar, temp file, lock or manifest."""
    from mentor.labels import make_kind, write_store
    from mentor.teachers import ModuleTeacher

    teacher = ModuleTeacher(build_model("mlp", (4,), 3, hidden=[8]), 3)
    monkeypatch.setattr(os, "fsync", _no_space)
    with pytest.raises(WriteError) as err:
        write_store(teacher, torch.randn(20, 4), tmp_path / "store",
                    make_kind("logits", num_classes=3))
    msg = str(err.value)
    assert "shard-00000.arrow" in msg and "no space left on device" in msg, msg
    assert _leftovers(tmp_path) == []


def test_a_full_disk_leaves_no_checkpoint(tmp_path, monkeypatch):
    """save_weights on a full disk: a WriteError names the file; no file, no temp file."""
    monkeypatch.setattr(os, "fsync", _no_space)
    with pytest.raises(WriteError) as err:
        save_weights(tmp_path / "model.safetensors", build_model("mlp", (4,), 3, hidden=[8]))
    assert "model.safetensors" in str(err.value) and "no space" in str(err.value)
    assert _leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------- docs

def test_every_case_is_in_the_docs():
    """docs/reliability.md has one catalogue row per case: the table stays true."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Bad-input catalogue", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip().strip("`") for line in section.splitlines()
            if line.startswith("| `")}
    ids = {c.id for c in CASES} | set(API_CASES)
    assert ids - rows == set(), "cases missing from docs/reliability.md"
    assert rows - ids == set(), "docs/reliability.md lists cases that do not exist"
