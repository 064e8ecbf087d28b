"""Nothing a user hands mentor runs code: checkpoints are read as safetensors only (never
unpickled), recipes with ``yaml.safe_load`` (tags refused), and components are looked up by
name in registries (nothing imported by a dotted path).

Every payload here would visibly run if it were loaded unsafely: unpickling the checkpoints
creates a marker file (a control test checks that they do, with ``torch.load(...,
weights_only=False)`` / ``pickle.load``), and the package ``evilpkg`` placed on ``sys.path``
creates a marker when imported. Each test asserts a refusal (a :class:`MentorError`; exit 2
from the CLI), no marker, and ``'evilpkg' not in sys.modules``.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from mentor.commands import run as runner
from mentor.engine.checkpoint import load_state, load_weights, read_safetensors
from mentor.errors import CheckpointError, DataError, MentorError, RecipeError
from mentor.labels import LabelStore, make_kind, write_store
from mentor.models import build_model
from mentor.recipe import apply_overrides, parse_recipe, read_yaml
from mentor.teachers import ModuleTeacher, load_checkpoint_teacher

SRC = Path(__file__).resolve().parents[2] / "src"
MARKER = "pwned"


class Evil:
    """Unpickling this creates the file ``marker`` (``open(marker, "w")``)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _state(marker: Path) -> dict:
    """A state dict with the payload first (it runs before any tensor is rebuilt)."""
    return {"evil": Evil(marker), **build_model("mlp", (4,), 3, hidden=[8]).state_dict()}


def _torch_zip(path, marker):
    torch.save(_state(marker), path)


def _torch_legacy(path, marker):
    torch.save(_state(marker), path, _use_new_zipfile_serialization=False)


def _pickle(protocol):
    def write(path, marker):
        with open(path, "wb") as f:
            pickle.dump(_state(marker), f, protocol=protocol)
    return write


def _fake_safetensors_header(path, marker):
    """A pickle behind 8 bytes and a '{' that look like the start of a safetensors header."""
    body = pickle.dumps(_state(marker), protocol=2)
    path.write_bytes((len(body) - 1).to_bytes(8, "little") + b"{" + body)


PAYLOADS = {"torch-zip": _torch_zip, "torch-legacy": _torch_legacy, "pickle-0": _pickle(0),
            "pickle-2": _pickle(2), "pickle-5": _pickle(5),
            "fake-safetensors-header": _fake_safetensors_header}


def _unsafe_load(path: Path, kind: str) -> None:
    """What an unsafe loader would do (the control), on a copy named ``.pt``."""
    copy = path.with_name("control.pt")
    copy.write_bytes(path.read_bytes())
    try:
        if kind == "torch-zip":
            torch.load(copy, weights_only=False)
        elif kind == "torch-legacy":  # pickles: magic number, protocol, sys info, the object
            with open(copy, "rb") as f:
                unpickler = pickle.Unpickler(f)
                unpickler.persistent_load = lambda pid: None  # tensor storages: not needed
                for _ in range(4):
                    unpickler.load()
        elif kind == "fake-safetensors-header":
            pickle.loads(copy.read_bytes()[9:])
        else:
            with open(copy, "rb") as f:
                pickle.load(f)
    except Exception:
        pass  # the payload ran first; rebuilding the tensors afterwards may fail
    finally:
        copy.unlink()


@pytest.fixture(params=sorted(PAYLOADS))
def evil_ckpt(request, tmp_path):
    """(checkpoint path, marker path): a live payload (the control ran it once and its marker
    was removed again)."""
    kind = request.param
    marker = tmp_path / MARKER
    path = tmp_path / "teacher.safetensors"
    PAYLOADS[kind](path, marker)
    _unsafe_load(path, kind)
    assert marker.exists(), "the payload is not live: the test would prove nothing"
    marker.unlink()
    yield path, marker
    assert not marker.exists(), "an unsafe payload was executed"


def _recipe(**over) -> dict:
    r = {"name": "evil", "data": {"source": "iris"},
         "teacher": {"model": "mlp", "hidden": [16], "train": {"epochs": 1}},
         "student": {"model": "mlp", "hidden": [8]},
         "methods": [{"name": "scratch"}, {"name": "kd"}], "train": {"epochs": 1}}
    r.update(over)
    return r


def _refused(call, *needles, error=MentorError) -> str:
    with pytest.raises(error) as info:
        call()
    msg = str(info.value)
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


# ------------------------------------------------------------------------ pickled checkpoints

def test_read_safetensors_and_load_weights_refuse_pickles(evil_ckpt):
    path, _ = evil_ckpt
    _refused(lambda: read_safetensors(path), str(path), error=CheckpointError)
    model = build_model("mlp", (4,), 3, hidden=[8])
    _refused(lambda: load_weights(path, model), "safetensors", error=CheckpointError)


def test_checkpoint_teacher_refuses_pickles(evil_ckpt):
    path, _ = evil_ckpt
    _refused(lambda: load_checkpoint_teacher(path, input_shape=(4,), num_classes=3),
             "teacher.checkpoint", error=CheckpointError)
    _refused(lambda: load_checkpoint_teacher(path, input_shape=(4,), num_classes=3,
                                             model_fields={"model": "mlp", "hidden": [8]}),
             "teacher.checkpoint", error=CheckpointError)


def test_recipe_teacher_checkpoints_refuse_pickles(evil_ckpt, monkeypatch):
    """plan_run (what `mentor run` and `mentor recipes validate` do first): a checkpoint
    teacher with and without model fields, and an ensemble member."""
    path, _ = evil_ckpt
    monkeypatch.chdir(path.parent)
    for teacher in ({"checkpoint": path.name},
                    {"checkpoint": str(path), "model": "mlp", "hidden": [8]},
                    {"ensemble": [{"checkpoint": path.name}, {"checkpoint": path.name}]}):
        _refused(lambda: runner.plan_run(_recipe(teacher=teacher)), "checkpoint",
                 "not a safetensors file", error=CheckpointError)


def test_resume_state_refuses_pickles(evil_ckpt):
    """An exact-resume checkpoint (written by save_state, whatever its layout) whose model
    file, then whose state file, is replaced by the pickle."""
    from mentor.engine.checkpoint import save_state
    path, _ = evil_ckpt
    model = build_model("mlp", (4,), 3, hidden=[8])
    opt = torch.optim.Adam(model.parameters())
    folder = path.parent / "resume"
    kw = dict(model=model, optimizer=opt, scheduler=None, generator=torch.Generator())
    save_state(folder, order=torch.arange(4), extra_tensors={}, info={"step": 1, "epoch": 0},
               **kw)
    for pattern in ("*.safetensors", "*.json"):  # the tensors, then the state that names them
        files = list(folder.rglob(pattern))
        assert len(files) == 1, files
        good = files[0].read_bytes()
        files[0].write_bytes(path.read_bytes())
        _refused(lambda: load_state(folder, **kw), "resume", files[0].name,
                 error=CheckpointError)
        files[0].write_bytes(good)
    load_state(folder, **kw)  # the restored files load


def test_active_resume_state_refuses_pickles(evil_ckpt):
    """The saved arrays of `mentor active --resume`."""
    from mentor.active import _load
    path, _ = evil_ckpt
    state = path.parent / "active"
    state.mkdir()
    (state / "arrays.safetensors").write_bytes(path.read_bytes())
    (state / "active.json").write_text('{"rounds": []}')
    _refused(lambda: _load(state, 90, 3), "active state", error=CheckpointError)


def _iris_store(folder: Path) -> Path:
    torch.manual_seed(0)
    net = build_model("mlp", (4,), 3, hidden=[8]).eval()
    from mentor.recipe import DataSpec
    x = DataSpec(source="iris").load().train.x
    write_store(ModuleTeacher(net, 3), x, folder, make_kind("logits", num_classes=3))
    return folder


def _poison_store(store: Path, payload: bytes) -> None:
    """Replace the first shard with ``payload`` and record its size and sha256 in the
    manifest (and the manifest's own checksum), so the checksums pass and the bytes reach
    the shard reader."""
    import hashlib

    from mentor.labels.store import manifest_checksum
    m = json.loads((store / "manifest.json").read_text())
    shard = m["shards"][0]
    (store / shard["file"]).write_bytes(payload)
    shard["bytes"], shard["sha256"] = len(payload), hashlib.sha256(payload).hexdigest()
    m["checksum"] = manifest_checksum(m)
    (store / "manifest.json").write_text(json.dumps(m))


def test_label_store_refuses_pickled_shards_and_manifests(evil_ckpt, monkeypatch):
    path, _ = evil_ckpt
    store = _iris_store(path.parent / "store")
    _poison_store(store, path.read_bytes())
    opened = LabelStore.open(store, allow_mismatch=True)  # checksums match the new bytes
    _refused(opened.outputs, "cannot be read as Arrow")
    monkeypatch.chdir(path.parent)
    _refused(lambda: runner.plan_run(_recipe(teacher={"store": "store"})),
             "cannot be read as Arrow")
    (store / "manifest.json").write_bytes(path.read_bytes())
    _refused(lambda: LabelStore.open(store), "manifest", "not valid JSON")


def test_npz_data_with_pickled_objects_is_refused(tmp_path, monkeypatch):
    """A .npz data source whose arrays need pickle (allow_pickle=False)."""
    marker = tmp_path / MARKER
    x = np.empty(30, dtype=object)
    x[:] = [Evil(marker)] * 30
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(30) % 3)
    with np.load(tmp_path / "d.npz", allow_pickle=True) as f:  # the control
        f["x"]
    assert marker.exists()
    marker.unlink()
    monkeypatch.chdir(tmp_path)
    _refused(lambda: runner.plan_run(_recipe(data={"source": "d.npz"})), "d.npz", "pickle",
             error=DataError)
    assert not marker.exists()


# ------------------------------------------------------------------------------ YAML tags

TAGS = ["!!python/object/apply:os.system ['touch {m}']",
        "!!python/object/apply:builtins.open ['{m}', 'w']",
        "!!python/object/new:builtins.open ['{m}', 'w']",
        "!!python/name:os.system", "!!python/module:evilpkg",
        "!!python/object:evilpkg.Evil {{}}"]


@pytest.mark.parametrize("tag", TAGS)
def test_python_yaml_tags_are_refused_unrun(tmp_path, tag, evil_pkg):
    marker = tmp_path / MARKER
    value = tag.format(m=marker)
    for text in (f"name: {value}\ndata: {{source: iris}}\nstudent: {{model: mlp}}\n"
                 "method: {name: scratch}\n", f"{value}\n",
                 f"name: x\nmethods:\n  - name: kd\n    temperature: {value}\n"):
        (tmp_path / "r.yaml").write_text(text)
        msg = _refused(lambda: read_yaml(tmp_path / "r.yaml"), "is not allowed",
                       error=RecipeError)
        assert "!!python/" in msg
    _refused(lambda: apply_overrides(_recipe(), [f"name={value}"]), "--set",
             error=RecipeError)
    assert not marker.exists()


# ------------------------------------------------------------------ components by name only

@pytest.fixture
def evil_pkg(tmp_path, monkeypatch):
    """A package ``evilpkg`` (with a module ``evil``) importable from ``sys.path`` that
    creates a marker file when imported; the test must not import it."""
    pkg = tmp_path / "site" / "evilpkg"
    pkg.mkdir(parents=True)
    marker = tmp_path / "imported"
    code = f"open({str(marker)!r}, 'w').close()\ndef run(*a, **k):\n    return 0\n"
    (pkg / "__init__.py").write_text(code)
    (pkg / "evil.py").write_text(code + "class Linear:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert "evilpkg" not in sys.modules
    yield pkg.parent
    assert not marker.exists(), "evilpkg was imported"
    assert "evilpkg" not in sys.modules


DOTTED = ["evilpkg.evil", "evilpkg.evil.Linear", "evilpkg.evil:run", "os.system",
          "subprocess.run", "builtins.eval", "torch.nn.Linear"]


def _components(name: str) -> dict[str, tuple[dict, str]]:
    """A recipe per place a component is named, with the error each must give."""
    kd_feat = {"name": "feature-kd", "student_layer": "1", "teacher_layer": "1"}
    return {
        "method": (_recipe(methods=[{"name": name}]), "unknown method"),
        "student": (_recipe(student={"model": name}), "student.model must be one of"),
        "teacher": (_recipe(teacher={"model": name}), "teacher.model must be one of"),
        "augment": (_recipe(train={"augment": {"weak": [{"name": name}]}}),
                    "is not a registered augmentation"),
        "task": (_recipe(task=name), "task must be one of"),
        "data": (_recipe(data={"source": name}), "is not an embedded data set"),
        "loss": (_recipe(methods=[{**kd_feat, "feature_loss": name}]), "feature_loss"),
        "optimizer": (_recipe(train={"optimizer": name}), "train.optimizer must be one of"),
        "combine": (_recipe(teacher={"ensemble": [{"checkpoint": "a"}], "combine": name}),
                    "teacher.combine must be one of"),
    }


@pytest.mark.parametrize("name", DOTTED)
def test_dotted_paths_are_unknown_components_not_imports(name, evil_pkg):
    for where, (raw, needle) in _components(name).items():
        with pytest.raises(MentorError) as info:
            runner.plan_run(raw)
        assert needle in str(info.value), (where, str(info.value))
        assert name in str(info.value) or repr(name) in str(info.value), where


def test_active_selectors_are_looked_up_by_name(evil_pkg):
    from mentor.commands.active import check_active
    from mentor.recipe import builtin_recipes
    raw = read_yaml(builtin_recipes()["active"])
    for name in DOTTED:
        raw["active"]["selectors"] = [name]
        _refused(lambda: check_active(raw), "is not a registered selector")
        raw["active"]["selectors"] = [{"name": name, "seed": 1}]
        _refused(lambda: check_active(raw), "is not a registered selector")


def test_feature_taps_are_module_paths_not_imports(evil_pkg):
    """A teacher/student layer is a path inside the model, never a Python import."""
    from mentor.models.taps import Tap, TappedTeacher
    teacher = ModuleTeacher(build_model("mlp", (4,), 3, hidden=[8]), 3)
    for name in DOTTED:
        _refused(lambda: TappedTeacher(teacher, [Tap(name, None, name)]).outputs(
            torch.zeros(2, 4)), "is not a module of")


def test_similar_names_get_a_did_you_mean(evil_pkg):
    msg = _refused(lambda: parse_recipe(_recipe(methods=[{"name": "evilpkg.kd"}])),
                   "unknown method 'evilpkg.kd'")
    assert "known:" in msg
    msg = _refused(lambda: runner.plan_run(_recipe(train={"augment": {"weak": [
        {"name": "evilpkg.shift"}]}})), "not a registered augmentation")
    msg = _refused(lambda: runner.plan_run(_recipe(methods=[{"name": "kd.x"}])),
                   "did you mean 'kd'")


# --------------------------------------------------------------------------------- the CLI

def _cli(args, cwd: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    path = os.pathsep.join(str(p) for p in (SRC, extra_path) if p is not None)
    env = {**os.environ, "PYTHONPATH": path, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "mentor", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_refuses_pickles_and_imports_nothing(tmp_path, evil_pkg):
    """`mentor label --teacher PICKLE`, `mentor label --augment evilpkg.evil` and `mentor
    inspect` of a store with a pickled shard: exit 2, one error line, no marker, no
    evilpkg import (evilpkg is on the subprocesses' PYTHONPATH)."""
    marker = tmp_path / MARKER
    _torch_zip(tmp_path / "evil.pt", marker)
    ckpt = tmp_path / "good.safetensors"
    from mentor.engine.checkpoint import save_weights
    save_weights(ckpt, build_model("mlp", (4,), 3, hidden=[8]),
                 {"mentor.model": {"model": "mlp", "hidden": [8]}, "mentor.num_classes": 3,
                  "mentor.input_shape": [4]})
    store = _iris_store(tmp_path / "poisoned")
    _poison_store(store, (tmp_path / "evil.pt").read_bytes())
    calls = {
        "label-pickle": (["label", "--teacher", "evil.pt", "--data", "iris", "--out", "s1",
                          "--quiet"], ("--teacher", "evil.pt", "not a safetensors file")),
        "label-augment": (["label", "--teacher", ckpt.name, "--data", "iris", "--out", "s2",
                           "--views", "2", "--augment", "evilpkg.evil", "--quiet"],
                          ("--augment", "'evilpkg.evil'", "not a registered augmentation")),
        "inspect": (["inspect", "poisoned"], ("cannot be read as Arrow",)),
    }
    with ThreadPoolExecutor(len(calls)) as pool:
        procs = dict(zip(calls, pool.map(lambda c: _cli(c[0], tmp_path, evil_pkg),
                                         calls.values())))
    for name, proc in procs.items():
        assert proc.returncode == 2, (name, proc.returncode, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.count("error:") == 1, proc.stderr
        for needle in calls[name][1]:
            assert needle in proc.stderr, (name, needle, proc.stderr)
    assert not marker.exists()
    assert not (tmp_path / "s1").exists() and not (tmp_path / "s2").exists()


# --------------------------------------------------------------- the source has no unsafe call

def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name):
                yield f.id, node
            elif isinstance(f, ast.Attribute):
                base = f.value.id if isinstance(f.value, ast.Name) else "?"
                yield f"{base}.{f.attr}", node


def _kw(node: ast.Call, name: str):
    for k in node.keywords:
        if k.arg == name and isinstance(k.value, ast.Constant):
            return k.value.value
    return None


# Reviewed exceptions: (file, call) -> why it is safe.
ALLOWED = {
    ("mentor/cli.py", "importlib.import_module"):
        "click's exception class, from two constant module names",
}


def test_the_source_has_no_unsafe_loader_or_dynamic_import():
    """AST scan of src/mentor: no pickle/marshal/dill/joblib loading, no yaml.load other
    than safe_load, torch.load only with weights_only=True, np.load only with
    allow_pickle=False, no eval/exec/compile/__import__/importlib.import_module (except the
    reviewed :data:`ALLOWED`), no trust_remote_code=True. (Plugins -- entry points of
    *installed* distributions, :mod:`mentor.plugins` -- are loaded by design, through
    ``importlib.metadata``; a recipe can never name one: the dotted-path tests above.)"""
    bad = []
    for path in sorted((SRC / "mentor").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n.split(".")[0] in ("pickle", "marshal", "dill", "joblib", "shelve",
                                           "cloudpickle") for n in names):
                    bad.append(f"{path.name}:{node.lineno} imports {names}")
        for name, node in _calls(tree):
            where = f"{path.relative_to(SRC)}:{node.lineno} {name}"
            if (str(path.relative_to(SRC)), name) in ALLOWED:
                continue
            if name in ("eval", "exec", "compile", "__import__", "importlib.import_module",
                        "import_module", "yaml.load", "yaml.unsafe_load", "yaml.full_load",
                        "yaml.load_all", "pickle.load", "pickle.loads", "torch.hub.load"):
                bad.append(where)
            elif name == "torch.load" and _kw(node, "weights_only") is not True:
                bad.append(where + " without weights_only=True")
            elif name in ("np.load", "numpy.load") and _kw(node, "allow_pickle") is not False:
                bad.append(where + " without allow_pickle=False")
            elif _kw(node, "trust_remote_code") is True:
                bad.append(where + " with trust_remote_code=True")
    assert not bad, bad
