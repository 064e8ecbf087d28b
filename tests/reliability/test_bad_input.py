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
        elif kind == "manifest-device":
            manifest.unlink()
            manifest.symlink_to("/dev/zero")
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



# ------------------------------------------------------------- round two (issue 23): helpers

def _can_mknod() -> bool:
    """Whether this process may create a character device node (root, CAP_MKNOD)."""
    import stat
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        try:
            os.mknod(Path(d) / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except (OSError, AttributeError):
            return False
        return True


CAN_MKNOD = _can_mknod()
LONG = "n" * 300  # a path component over the file systems' 255 bytes


def _fifo(name: str, then=None):
    """A FIFO named ``name`` in the case's folder, then ``then(folder)``'s recipe."""
    def make(d: Path):
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(d / name)
        return then(d) if then else None
    return make


_FINISHED: dict[str, Path] = {}


def _finished_run(d: Path) -> Path:
    """A copy of one small finished run (made once per process) at ``d/run``."""
    import atexit
    import shutil
    import tempfile
    if "run" not in _FINISHED:
        from mentor.commands.run import run_recipe
        root = Path(tempfile.mkdtemp(prefix="mentor-finished-run-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _FINISHED["run"] = run_recipe(_recipe(
            name="done", teacher={"model": "mlp", "hidden": [16], "train": {"epochs": 1}},
            train={"epochs": 1, "seeds": [0]}), root / "runs", progress=False)
    shutil.copytree(_FINISHED["run"], d / "run")
    return d / "run"


def _report_out(make_target):
    """A finished run, and ``make_target(folder)`` at the report's --out."""
    def make(d: Path):
        _finished_run(d)
        make_target(d)
        return None
    return make


def _device_node(d: Path):
    import stat
    os.mknod(d / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is


def _symlink_out(d: Path):
    (d / "mine.html").write_text("mine\n")
    (d / "link.html").symlink_to("mine.html")


def _labels(y_of) -> Any:
    """``d.npz`` of 30 rows whose labels are ``y_of(default labels)``."""
    return _npz(lambda x, y: {"x": x, "y": y_of(y)})


def _with_label(value, dtype):
    def y_of(y):
        y = y.astype(dtype)
        y[5] = value
        return y
    return y_of


def _csv_text(text: str, target: str = "label"):
    def make(d: Path):
        (d / "d.csv").write_text(text)
        return _recipe(data={"source": "d.csv", "target": target})
    return make


def _csv_rows(n: int = 30) -> list[str]:
    x, y = _xy()
    return [",".join(f"{v:.3f}" for v in row) + f",{t}" for row, t in list(zip(x, y))[:n]]


def _resaved_teacher(meta=None, tensors=None):
    """``t.safetensors`` of the iris teacher with ``meta`` metadata or ``tensors(state)``."""
    def make(d: Path):
        from safetensors.torch import save_file
        path = _teacher_file(d)
        torch.manual_seed(0)
        state = {k: v.contiguous() for k, v in
                 build_model("mlp", (4,), 3, hidden=[8]).state_dict().items()}
        if tensors is not None:
            state = tensors(state)
        base = {"mentor.model": {"model": "mlp", "hidden": [8]}, "mentor.num_classes": 3,
                "mentor.input_shape": [4]}
        save_file(state, str(path), metadata={k: json.dumps(v)
                                              for k, v in {**base, **(meta or {})}.items()})
        return _recipe(teacher={"checkpoint": "t.safetensors"})
    return make


def _edited_manifest(edit):
    def make(d: Path):
        store = _store(d)
        m = json.loads((store / "manifest.json").read_text())
        edit(m)
        (store / "manifest.json").write_text(json.dumps(m))
        return None
    return make


def _partial_run(edit):
    """An unfinished run folder ``runs/.part-x.partial`` (its input.yaml, and a teacher
    checkpoint after one step, written by this mentor), then ``edit(teacher state folder)``."""
    def make(d: Path):
        from mentor.engine import fit
        from mentor.methods import get_method
        from mentor.commands.run import plan_run
        raw = _recipe(name="part")
        partial = d / "runs" / ".part-x.partial"
        partial.mkdir(parents=True)
        (partial / "input.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        s = plan_run(raw).settings[0]
        torch.manual_seed(0)
        fit(build_model("mlp", (4,), 3, hidden=[16]), s.splits.train, s.splits.val,
            objectives=get_method("scratch").plan().objectives, spec=s.recipe.teacher.train,
            seed=0, num_outputs=3, checkpoint_dir=partial / "teacher" / "state", max_steps=1)
        edit(partial / "teacher" / "state")
        return None
    return make


def _edit_state_json(state: Path):
    """Change ``step`` in the checkpoint's state.json, as a hand edit would."""
    (path,) = state.rglob("state.json")
    data = json.loads(path.read_text())
    data["step"] = "many"
    path.write_text(json.dumps(data))


def _state_pointer_fifo(state: Path):
    """The file that names the checkpoint (state.json; LATEST in the older layout) a FIFO."""
    for name in ("state.json", "LATEST"):
        if (state / name).exists():
            (state / name).unlink()
            os.mkfifo(state / name)


def _active_partial(content: bytes):
    """An unfinished active run folder whose recipe.yaml holds ``content``."""
    def make(d: Path):
        (d / ".act-x.partial").mkdir()
        (d / ".act-x.partial" / "recipe.yaml").write_bytes(content)
        return _active()
    return make


def _resumable_store(d: Path):
    """An unfinished store (no manifest) of `mentor label --teacher t.safetensors --data iris`
    whose shard is a FIFO: the rerun checks the shard's sha256 before it skips it."""
    from mentor.commands.label import label
    _teacher_file(d)
    label(teacher_path=str(d / "t.safetensors"), source="iris", out=d / "store", progress=False)
    (d / "store" / "manifest.json").unlink()
    (d / "store" / "shard-00000.arrow").unlink()
    os.mkfifo(d / "store" / "shard-00000.arrow")


ALIAS_BOMB = ("name: act\ndata: {source: iris, labeled_fraction: 0.2}\n"
              "student: {model: mlp, hidden: [8]}\ntrain: {epochs: 1, seeds: [0]}\n"
              "active:\n  rounds: 1\n  oracle_per_round: 5\n  selectors:\n"
              "    - name: random\n      junk: &a9 "
              + "".join(f"[&a{i} " for i in range(8, -1, -1)) + "[x, x, x, x, x, x, x, x, x, x]"
              + "".join(f", {', '.join([f'*a{i}'] * 9)}]" for i in range(0, 9)) + "\n")


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
         ("data.source", "d.csv", "infinite", "line 4", "column 'a'"),
         _csv("inf,0.2,0.3,0.4,1", "label")),
    Case("csv-ragged-row", ".csv row with 3 of 5 fields",
         ("data.source", "d.csv", "line 4 has 3 fields", "expected 5"),
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

    # --- round two (issue 23): files that are not regular files, or too large
    Case("recipe-fifo", "mentor run on a FIFO named f.yaml (a read would block forever)",
         ("recipe", "'f.yaml'", "FIFO", "not a regular file"),
         argv=("run", "f.yaml", "--out", "runs"), recipe=_fifo("f.yaml")),
    Case("recipe-device", "mentor run /dev/zero (read until memory runs out)",
         ("recipe", "'/dev/zero'", "character device", "not a regular file"),
         argv=("run", "/dev/zero", "--out", "runs")),
    Case("recipe-too-large", "a recipe of 2 MiB (above the 1 MiB bound)",
         ("recipe", "'big.yaml'", "above the limit of 1,048,576 bytes"),
         argv=("run", "big.yaml", "--out", "runs"),
         recipe=lambda d: (d / "big.yaml").write_text(
             yaml.safe_dump(_recipe()) + ("# padding\n" * (2 << 17))) and None),
    Case("npz-fifo", "data.source d.npz a FIFO", ("data.source", "'d.npz'", "FIFO"),
         _fifo("d.npz", lambda d: _recipe(data={"source": "d.npz"}))),
    Case("csv-device", "data.source d.csv a symbolic link to /dev/zero",
         ("data.source", "'d.csv'", "character device"),
         _with(_recipe(data={"source": "d.csv", "target": "label"}),
               lambda d: (d / "d.csv").symlink_to("/dev/zero"))),
    Case("checkpoint-fifo", "teacher.checkpoint a FIFO",
         ("teacher.checkpoint", "'t.safetensors'", "FIFO"),
         _fifo("t.safetensors", lambda d: _recipe(teacher={"checkpoint": "t.safetensors"}))),
    Case("label-shard-fifo", "mentor label resuming a store whose shard is a FIFO",
         ("'store/shard-00000.arrow'", "FIFO", "expected a regular file"),
         **{**_label(prepare=_resumable_store), "out": "none"}),
    Case("store-manifest-device", "mentor inspect: manifest.json a link to /dev/zero",
         ("manifest", "'store/manifest.json'", "character device"),
         _broken_store("manifest-device", "inspect"), argv=("inspect", "store")),
    Case("resume-state-fifo", "mentor run --resume: the checkpoint's state.json a FIFO",
         ("resume", "state.json'", "FIFO"), _partial_run(_state_pointer_fifo),
         argv=("run", "--resume", "runs/.part-x.partial", "--quiet"), out="none"),
    # --- round two: outputs never written through a FIFO, device or link
    Case("report-out-fifo", "mentor report --out a FIFO",
         ("--out", "'f.html'", "FIFO", "expected a regular file or a new name"),
         _report_out(lambda d: os.mkfifo(d / "f.html")),
         argv=("report", "run", "--out", "f.html")),
    Case("report-out-symlink", "mentor report --out a symbolic link to a file",
         ("--out", "'link.html'", "symbolic link"), _report_out(_symlink_out),
         argv=("report", "run", "--out", "link.html")),
    Case("report-out-device", "mentor report --out a character device (like /dev/null)",
         ("--out", "'null'", "character device"), _report_out(_device_node),
         argv=("report", "run", "--out", "null"),
         skip=None if CAN_MKNOD else "this user cannot create a device node"),
    Case("export-out-dot", "mentor export --out . (the current folder)",
         ("--out", "'.'", "is the current folder"),
         _report_out(lambda d: (d / "card.json").write_text("{}")),
         argv=("export", "run", "--format", "safetensors", "--out", ".")),
    # --- round two: YAML
    Case("yaml-duplicate-key", "a recipe with a second train: block (YAML keeps the last)",
         ("recipe.yaml", "key 'train' appears twice", "line 4", "line 5"),
         "name: bad\ndata: {source: iris}\nstudent: {model: mlp}\n"
         "train: {epochs: 30}\ntrain: {epochs: 1}\nmethod: {name: scratch}\n"),
    Case("yaml-alias-bomb-selector",
         "an alias bomb (10^10 values expanded) inside a selector parameter",
         ("recipe.yaml", "expands to more than 100,000 values"), ALIAS_BOMB, argv=ACTIVE),
    # --- round two: data read as meant
    Case("csv-duplicate-column", "a CSV naming the target column twice",
         ("data.source", "d.csv", "column 'label' appears twice", "columns 5 and 6"),
         _csv_text("a,b,c,d,label,label\n" + "".join(f"{r},{r[-1]}\n" for r in _csv_rows()))),
    Case("labels-beyond-rows", "three .npz rows labelled 10**6 (a 1,000,001-class model)",
         ("d.npz", "labels go up to 1000000", "1,000,001 classes for 30 rows"),
         _labels(lambda y: np.where(np.arange(30) < 3, 10**6, y))),
    Case("labels-sparse-ids", ".npz labels 0, 1 and 29 (27 of 30 classes empty)",
         ("d.npz", "labels go up to 29", "only 3 distinct labels", "data.num_classes: 30"),
         _labels(lambda y: np.where(y == 2, 29, y))),
    Case("seeds-duplicate", "train.seeds [0, 0, 0]",
         ("train.seeds", "seed 0 is listed 3 times", "distinct seeds"),
         _recipe(train={"epochs": 2, "seeds": [0, 0, 0]})),
    Case("npz-label-int64-max", ".npz label 2**63-1",
         ("d.npz", "labels go up to 9223372036854775807"),
         _labels(_with_label(2**63 - 1, np.int64))),
    Case("npz-label-uint64", ".npz uint64 label 2**64-1 (not -1)",
         ("d.npz", "labels go up to 18446744073709551615"),
         _labels(_with_label(2**64 - 1, np.uint64))),
    Case("csv-row-number-blank-lines", "a ragged CSV row on line 7, after two blank lines",
         ("d.csv", "line 7 has 3 fields"),
         _csv_text("\n".join(["a,b,c,d,label", *_csv_rows(2)[:1], "", *_csv_rows(3)[1:2], "",
                              _csv_rows(3)[2], "0.1,0.2,1", *_csv_rows(30)[3:]]) + "\n")),
    # --- round two: checkpoints and stores
    Case("checkpoint-complex64", "a teacher checkpoint of complex64 weights",
         ("teacher.checkpoint", "'t.safetensors'", "dtype complex64"),
         _resaved_teacher(tensors=lambda st: {k: v.to(torch.complex64) for k, v in st.items()})),
    Case("checkpoint-wrapper-pairs-huge", "metadata mentor.wrapper pairs with n 10^9",
         ("teacher.checkpoint", "mentor.wrapper", "[2, 64]"),
         _resaved_teacher({"mentor.wrapper": {"kind": "pairs", "n": 10**9}})),
    Case("checkpoint-meta-infinity", "metadata mentor.input_shape [Infinity]",
         ("teacher.checkpoint", "mentor.input_shape", "Infinity", "positive integers"),
         _resaved_teacher({"mentor.input_shape": [float("inf")]})),
    Case("store-manifest-rows", "mentor inspect: manifest rows edited to 10^9 (was 'verified')",
         ("'store/manifest.json'", "has rows 1000000000"),
         _edited_manifest(lambda m: m.update(rows=10**9)), argv=("inspect", "store")),
    Case("store-manifest-hand-edited", "mentor inspect: manifest kind edited to 'hard'",
         ("'store/manifest.json'", "fails its checksum"),
         _edited_manifest(lambda m: m["kind"].update(kind="hard")), argv=("inspect", "store")),
    Case("resume-state-hand-edited", "mentor run --resume: state.json step edited to 'many'",
         ("resume", "state.json'", "fails its checksum"), _partial_run(_edit_state_json),
         argv=("run", "--resume", "runs/.part-x.partial", "--quiet"), out="none"),
    # --- round two: names longer than a file system takes
    Case("recipe-path-too-long", "mentor run on a file name of 300 bytes",
         ("recipe", "longer than 255 bytes"), argv=("run", LONG + ".yaml", "--out", "runs")),
    Case("label-teacher-path-too-long", "mentor label --teacher a name of 300 bytes",
         ("--teacher", "longer than 255 bytes"), **_label(teacher=LONG + ".safetensors")),
    Case("label-out-too-long", "mentor label --out a name of 300 bytes",
         ("label store", "over 255 bytes"), **{**_label(out=LONG), "out": "none"}),
    Case("run-name-too-long", "mentor run on a recipe named with 240 characters",
         ("recipe.yaml", "name must have at most 200 characters"), _recipe(name="n" * 240)),
    Case("validate-name-too-long", "mentor recipes validate: a name of 240 characters",
         ("recipe.yaml", "name must have at most 200 characters"), _recipe(name="n" * 240),
         argv=("recipes", "validate", "recipe.yaml")),
    # --- round two: `mentor active --resume` reads the folder's recipe as a recipe
    Case("active-resume-tagged-recipe", "mentor active --resume: recipe.yaml with a python tag",
         ("--resume", "recipe.yaml", "not allowed"),
         _active_partial(b'name: !!python/object/apply:os.system ["touch pwned"]\n'),
         argv=("active", "recipe.yaml", "--resume", ".act-x.partial", "--quiet")),
    Case("active-resume-non-utf8", "mentor active --resume: recipe.yaml not UTF-8",
         ("--resume", "recipe.yaml", "not a UTF-8 text file"), _active_partial(b"\xff\xfe\x00"),
         argv=("active", "recipe.yaml", "--resume", ".act-x.partial", "--quiet")),
    # --- round two: messages that point at the right thing
    Case("path-with-colon", "mentor run 'no:thumbs_up:pe.yaml' (rich read it as an emoji)",
         ("'no:thumbs_up:pe.yaml'", "does not exist"),
         argv=("run", "no:thumbs_up:pe.yaml", "--out", "runs")),
    Case("path-with-newline", "mentor run on a name holding a newline (escaped, one line)",
         ("'new\\nline.yaml'", "does not exist"), argv=("run", "new\nline.yaml", "--out", "runs")),
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
    # round two (issue 23)
    "default-checkpoint-each-epoch": (
        "a run with default settings (no checkpoint_every) SIGKILLed inside the teacher's "
        "training, then resumed", "nothing: it resumes from the last epoch end and ends bit "
        "for bit like an uninterrupted run",
        "test_kill_resume_run.py::test_default_settings_resume_from_the_last_epoch_end"),
    "resume-twice-at-once": (
        "two `mentor run --resume P` of one folder started together",
        "one exits 2: --resume: run folder '….partial' is being written by another mentor "
        "process (mentor run, pid …); the other finishes like an uninterrupted run",
        "test_run_lock.py::test_two_resumes_of_one_folder_at_once"),
    "resume-while-running": (
        "`mentor run --resume P` while the run that created P is still going",
        "exit 2 naming the running process's pid; the run finishes like an uninterrupted run, "
        "one run folder, nothing incomplete published",
        "test_run_lock.py::test_a_resume_of_a_running_run_is_refused"),
    "resume-stale-lock": (
        "a .lock left in a run folder by a SIGKILLed process (or any stale .lock)",
        "nothing: the kernel released the flock, so --resume takes the folder",
        "test_run_lock.py::test_a_stale_lock_does_not_block_a_resume"),
    "run-incomplete-not-published": (
        "finishing a run folder that lacks input.yaml or results.json",
        "MentorError: run folder '….partial' lacks input.yaml; it is incomplete and is not "
        "published", "test_run_lock.py::test_an_incomplete_run_folder_is_not_published"),
    "csv-labels-1-and-1.0": (
        "a CSV target column holding 1 and 1.0 (and 0, 2)",
        "nothing: one class 1 (3 classes, not 4)",
        "test_a_csv_label_1_and_1_0_are_one_class"),
    "csv-whole-float-labels": (
        "a CSV target column of 0.0, 1.0, 2.0, 5.0",
        "nothing: class indices 0, 1, 2, 5 (not names mapped in sorted order)",
        "test_whole_float_csv_labels_are_class_indices"),
    "yaml-alias-bomb-bounded": (
        "an alias bomb (10^10 values) in a selector parameter, read and checked",
        "RecipeError: ... expands to more than 100,000 values ...; in well under a second and "
        "a few MB", "test_an_alias_bomb_is_refused_fast_in_bounded_memory"),
    "store-shard-unreadable": (
        "a label store shard that cannot be read (open raising EACCES)",
        "StoreError: label store shard '…/shard-00001.arrow' cannot be read (permission "
        "denied)", "test_an_unreadable_store_shard_is_one_sentence"),
    "export-read-only": (
        "mentor export of a run on a read-only file system (mkdir raising EROFS)",
        "WriteError: cannot write '…/export/safetensors' (read-only file system); nothing is "
        "left", "test_export_on_a_read_only_file_system_is_one_sentence"),
    "ascii-locale": (
        "a finished run printed under LC_ALL=C PYTHONUTF8=0 (an ASCII-only stdout)",
        "nothing: exit 0, the leaderboard with '+/-' for '±'",
        "test_an_ascii_locale_prints_the_leaderboard"),
}


# ---------------------------------------------------------------------------------- runner

SERVER = r"""
import json, os, signal, sys, traceback
from mentor.cli import main
# what the commands import lazily, once here: every forked case starts warm
import mentor.commands.run, mentor.commands.label, mentor.commands.active, mentor.teachers  # noqa
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

    import mentor._util.atomic
    from mentor.commands.run import run_recipe

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

    monkeypatch.setattr(mentor._util.atomic, "open", full_disk_open, raising=False)
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


# ------------------------------------------------------------- round two (issue 23): API

def test_a_csv_label_1_and_1_0_are_one_class(tmp_path):
    """``1`` and ``1.0`` in a label column are the same class (it was two)."""
    from mentor.data.sources import load_csv
    rows = _csv_rows(12)
    rows[1] = rows[1].rsplit(",", 1)[0] + ",1.0"  # row 1's label is 1, written 1.0
    (tmp_path / "d.csv").write_text("a,b,c,d,label\n" + "\n".join(rows) + "\n")
    data = load_csv(tmp_path / "d.csv", "label")
    assert data.num_classes == 3 and data.class_names == ()
    assert data.y.tolist() == [i % 3 for i in range(12)]


def test_whole_float_csv_labels_are_class_indices(tmp_path):
    from mentor.data.sources import load_csv
    labels = ["0.0", "1.0", "2.0", "5.0"] * 3
    rows = [r.rsplit(",", 1)[0] + f",{t}" for r, t in zip(_csv_rows(12), labels)]
    (tmp_path / "d.csv").write_text("a,b,c,d,label\n" + "\n".join(rows) + "\n")
    data = load_csv(tmp_path / "d.csv", "label")
    assert data.y.tolist() == [0, 1, 2, 5] * 3 and data.num_classes == 6
    assert data.class_names == ()


def test_an_alias_bomb_is_refused_fast_in_bounded_memory(tmp_path):
    """The bomb sits in a selector parameter, which the old code formatted whole into its
    message (35 s, 2.6 GB). Run in a subprocess: a regression hangs until the timeout."""
    (tmp_path / "recipe.yaml").write_text(ALIAS_BOMB)
    code = (
        "import json, time, tracemalloc\n"
        "from mentor.errors import MentorError\n"
        "from mentor.recipe import read_yaml\n"
        "from mentor.commands.active import check_active\n"
        "tracemalloc.start(); t = time.perf_counter()\n"
        "try:\n"
        "    check_active(read_yaml('recipe.yaml'))\n"
        "    msg = None\n"
        "except MentorError as e:\n"
        "    msg = str(e)\n"
        "print(json.dumps({'s': time.perf_counter() - t, "
        "'peak': tracemalloc.get_traced_memory()[1], 'msg': msg}))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["msg"] and "expands to more than 100,000 values" in got["msg"], got
    assert "\n" not in got["msg"] and len(got["msg"]) < 400, got["msg"]
    assert got["s"] < 1.0 and got["peak"] < 50e6, got


def test_an_unreadable_store_shard_is_one_sentence(tmp_path, monkeypatch):
    """A shard the user may not read (EACCES; root reads anything, so the open is patched)."""
    import builtins

    from mentor.labels import LabelStore, StoreError
    store = _store(tmp_path)
    shard = str(store / "shard-00001.arrow")

    def denied(path):
        if os.fspath(path).endswith("shard-00001.arrow"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))

    real_open, real_os_open = builtins.open, os.open
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: denied(f) or real_open(f, *a, **k))
    monkeypatch.setattr(os, "open", lambda f, *a, **k: denied(f) or real_os_open(f, *a, **k))
    with pytest.raises(StoreError) as err:
        LabelStore.open(store)
    msg = str(err.value)
    assert shard in msg and "cannot be read" in msg and "permission denied" in msg, msg
    assert "\n" not in msg


def test_export_on_a_read_only_file_system_is_one_sentence(tmp_path, monkeypatch):
    """The run's folder is on a read-only mount: creating the export folder fails with
    EROFS (patched: a read-only bind mount needs privileges the tests do not assume)."""
    import tempfile

    from mentor.commands.export import export_student
    run = _finished_run(tmp_path)
    before = _files(tmp_path)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(os, "mkdir", read_only)
    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    with pytest.raises(WriteError) as err:
        export_student(run, "safetensors")
    msg = str(err.value)
    assert "export" in msg and "read-only file system" in msg and "\n" not in msg, msg
    assert _files(tmp_path) == before and not (run / "export").exists()


def test_an_ascii_locale_prints_the_leaderboard(tmp_path):
    """Under an ASCII-only locale (no UTF-8 mode) a finished run prints its leaderboard with
    ASCII stand-ins and exits 0 (it exited 1 on the '±')."""
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(_recipe(
        teacher={"model": "mlp", "hidden": [8], "train": {"epochs": 1}},
        train={"epochs": 1, "seeds": [0, 1]})))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LC_", "LANG", "PYTHONIOENCODING", "PYTHONUTF8"))}
    env.update(LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONPATH=str(SRC), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "mentor", "run", "r.yaml", "--out", "runs",
                           "--quiet"], cwd=tmp_path, env=env, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode("ascii", "replace")[-2000:]
    out = proc.stdout.decode("ascii")  # every byte ASCII
    assert "Leaderboard" in out and "+/-" in out and "run folder:" in out, out
    assert proc.stderr == b""


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
