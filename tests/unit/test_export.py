"""``mentor export``: each format, parity with the PyTorch student, the model card, the
default choice of student, dual / auxiliary heads, and bad input (exit 2, nothing written)."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch
from typer.testing import CliRunner

from mentor.cli import app
from mentor.engine.checkpoint import read_safetensors
from mentor.commands.export import TOLERANCE, export_student
from mentor.runs.read import load_model
from mentor.recipe import DataSpec

from runfolder import tiny_run

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")

METHODS = [{"name": "scratch"}, {"name": "kd", "temperature": 2.0, "alpha": 0.5},
           {"name": "dho"}, {"name": "dhkd"}, {"name": "uskd"}]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("runs"), METHODS)


@pytest.fixture(scope="module")
def results(run):
    return json.loads((run / "results.json").read_text())


@pytest.fixture(scope="module")
def test_x():
    return DataSpec(source="iris").load().test.x


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            if line.strip()]


def _student(run, setting, method, seed):
    path = run / "checkpoints" / setting / method / f"seed{seed}" / "student.safetensors"
    model, _ = load_model(path)
    return model


def _raw(card, x):
    """Standardized rows as the raw rows the exported model takes (x * std + mean)."""
    st = card["data"]["input"]["standardization"]
    assert st["in_model"]
    mean, std = torch.tensor(st["mean"]), torch.tensor(st["std"])
    return (x.double() * std.double() + mean.double()).float()


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def refused(result, *needles):
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = result.stderr
    assert "Traceback" not in err and err.count("error:") == 1, err
    assert len(err.strip().splitlines()) == 1 or "error:" in err.splitlines()[0], err
    for needle in needles:
        assert needle in " ".join(err.split()), (needle, err)
    return err


@pytest.fixture(scope="module")
def exports(run, tmp_path_factory):
    """Every format exported once (the default student) into its own folder."""
    root = tmp_path_factory.mktemp("exports")
    return {fmt: export_student(run, fmt, root / fmt, repeats=3) for fmt in TOLERANCE}


def test_onnx_runs_in_onnxruntime_with_a_dynamic_batch(exports, run, test_x):
    import onnxruntime as ort

    folder, card = exports["onnx"]
    assert sorted(p.name for p in folder.iterdir()) == ["card.json", "card.md", "student.onnx"]
    s = card["student"]
    model = _student(run, s["setting"], s["method"], s["seed"])
    session = ort.InferenceSession(str(folder / "student.onnx"),
                                   providers=["CPUExecutionProvider"])
    for x in (test_x, test_x[:1], torch.randn(256, 4)):
        got = session.run(None, {"input": _raw(card, x).numpy()})[0]
        with torch.no_grad():
            want = model(x).numpy()
        assert got.shape == want.shape
        assert abs(got - want).max() < 1e-5
    assert card["parity"]["max_abs_diff"] < 1e-5 and card["parity"]["tolerance"] >= 1e-5


def test_torchscript_reloads_with_matching_logits(exports, run, test_x):
    folder, card = exports["torchscript"]
    assert (folder / "student.pt").is_file()
    s = card["student"]
    model = _student(run, s["setting"], s["method"], s["seed"])
    loaded = torch.jit.load(str(folder / "student.pt"))
    with torch.no_grad():
        for x in (test_x, test_x[:1], torch.randn(256, 4)):
            assert (loaded(_raw(card, x)) - model(x)).abs().max() < 1e-6
    assert card["parity"]["max_abs_diff"] < 1e-6


def test_safetensors_holds_the_same_weights_and_rebuilds_from_config(exports, run, test_x):
    from mentor.models import build_model

    folder, card = exports["safetensors"]
    s = card["student"]
    original, _ = read_safetensors(run / s["checkpoint"])
    tensors, meta = read_safetensors(folder / "student.safetensors")
    assert tensors.keys() == original.keys()
    assert all(torch.equal(tensors[k], original[k]) for k in tensors)
    config = json.loads((folder / "config.json").read_text())
    model = build_model(config["model"], config["input_shape"], config["num_classes"],
                        **config["model_kwargs"])
    model.load_state_dict(tensors)
    with torch.no_grad():
        assert torch.equal(model(test_x), _student(run, s["setting"], s["method"],
                                                   s["seed"])(test_x))
    assert meta["mentor.model"]["model"] == config["model"] == "mlp"
    assert card["parity"]["max_abs_diff"] == 0.0
    rebuilt, _ = load_model(folder / "student.safetensors")  # with its standardization
    with torch.no_grad():
        assert (rebuilt(_raw(card, test_x)) - model(test_x)).abs().max() < 1e-6


def test_model_card_matches_the_run(exports, run, results):
    env = json.loads((run / "env.json").read_text())
    teacher_file = run / "teacher" / "model.safetensors"
    for fmt, (folder, card) in exports.items():
        assert json.loads((folder / "card.json").read_text()) == card
        s, a = card["student"], card["accuracy"]
        row = next(r for r in results["rows"]
                   if (r["setting"], r["method"]) == (s["setting"], s["method"]))
        line = next(m for m in _metrics(run) if (m["setting"], m["method"], m["seed"])
                    == (s["setting"], s["method"], s["seed"]))
        assert card["format"] == fmt
        assert a["test_accuracy_mean"] == row["test_accuracy_mean"]
        assert a["test_accuracy_std"] == row["test_accuracy_std"]
        assert a["test_accuracy_seed"] == line["test_accuracy"]
        assert a["val_accuracy_seed"] == line["val_accuracy"]
        # the exported file, run on the reloaded test split, scores what the run measured
        assert math.isclose(a["test_accuracy_exported"], line["test_accuracy"])
        assert s["seeds"] == row["seeds"] and s["method_params"] == row["method_params"]
        assert s["method_name"] == row["method_name"]
        assert s["params"] == sum(t.numel() for t in
                                  read_safetensors(run / s["checkpoint"])[0].values())
        t = card["teacher"]
        for key in ("description", "params", "test_accuracy"):
            assert t[key] == results["teacher"][key]
        assert t["sha256"] == hashlib.sha256(teacher_file.read_bytes()).hexdigest()
        assert card["data"]["description"] == results["settings"][0]["data"]
        assert len(card["data"]["input"]["standardization"]["mean"]) == 4
        assert card["run"]["git"] == env["git"]
        assert card["mentor_version"] == "0.1.0"
        lat = card["latency"]
        assert lat["threads"] == torch.get_num_threads()
        for who in ("teacher", "student_torch", "student_exported"):
            for b in ("1", "256"):
                assert lat[who][b]["latency_s"] > 0 and lat[who][b]["throughput_rows_s"] > 0
        md = (folder / "card.md").read_text()
        for text in (s["method"], f"seed {s['seed']}", t["sha256"], "batch 256",
                     f"{100 * row['test_accuracy_mean']:.2f} %", "Parity"):
            assert text in md, text


def test_default_student_is_the_best_row_and_its_best_validation_seed(exports, run, results):
    best = max(results["rows"], key=lambda r: r["test_accuracy_mean"])  # first on ties
    vals = {m["seed"]: m["val_accuracy"] for m in _metrics(run)
            if (m["setting"], m["method"]) == (best["setting"], best["method"])}
    seed = max(best["seeds"], key=lambda k: vals[k])
    for _, card in exports.values():
        s = card["student"]
        assert (s["setting"], s["method"], s["seed"]) == (best["setting"], best["method"], seed)
        assert s["choice"].startswith("best row")


@pytest.mark.parametrize("method, fmt, heads", [("dho", "onnx", 2), ("dhkd", "torchscript", 1),
                                                 ("uskd", "onnx", 1)])
def test_head_wrappers_export_their_inference_path(run, tmp_path, test_x, method, fmt, heads):
    """DHO keeps both heads (combined output), DHKD (a=0) drops the second head, USKD's
    auxiliary head was never saved."""
    folder, card = export_student(run, fmt, tmp_path / "out", method=method, seed=1, repeats=3)
    s = card["student"]
    assert (s["method"], s["seed"]) == (method, 1)
    assert card["parity"]["max_abs_diff"] < {"onnx": 1e-5, "torchscript": 1e-6}[fmt]
    path = run / "checkpoints" / "default" / method / "seed1" / "student.safetensors"
    saved, meta = load_model(path)
    bare = 4 * 8 + 8 + 8 * 3 + 3
    assert s["params"] == bare + (heads - 1) * (8 * 3 + 3)
    with torch.no_grad():
        want = saved(test_x)
    if fmt == "onnx":
        import onnxruntime as ort
        sess = ort.InferenceSession(str(folder / "student.onnx"),
                                    providers=["CPUExecutionProvider"])
        got = torch.from_numpy(sess.run(None, {"input": _raw(card, test_x).numpy()})[0])
    else:
        got = torch.jit.load(str(folder / "student.pt"))(_raw(card, test_x))
    if method == "dhkd":  # the run scored log_softmax of the CE head: same predictions
        assert meta["mentor.wrapper"]["a"] == 0.0 and "second head dropped" in s["inference"]
        got = got.log_softmax(-1)
    assert (got - want).abs().max() < 1e-5
    assert torch.equal(got.argmax(-1), want.argmax(-1))
    if method == "uskd":
        assert s["params_in_training"] > s["params"]
        assert "training-only parts removed" in s["inference"]
    if method == "dho":
        assert "both heads kept" in s["inference"]


def test_cli_export_prints_the_choice_and_replaces_an_earlier_export(run, tmp_path):
    out = tmp_path / "ts"
    for _ in range(2):
        r = cli("export", run, "--format", "torchscript", "--out", out, "--method", "kd",
                "--seed", "0")
        assert r.exit_code == 0, r.output
    assert "student: default / kd / seed 0" in r.output and "parity" in r.output
    assert sorted(p.name for p in out.iterdir()) == ["card.json", "card.md", "student.pt"]
    assert [p.name for p in tmp_path.iterdir()] == ["ts"]  # no temp folders left


@pytest.mark.parametrize("args, needles", [
    (["--format", "tflite"], ["--format must be one of onnx, torchscript, safetensors"]),
    (["--format", "onnx", "--setting", "nope"], ["--setting 'nope'", "'default'"]),
    (["--format", "onnx", "--method", "nope"], ["--method 'nope'", "'kd'"]),
    (["--format", "onnx", "--method", "kd", "--seed", "9"], ["--seed 9", "0, 1"]),
])
def test_bad_choices_exit_2_and_write_nothing(run, args, needles):
    refused(cli("export", run, *args), *needles)
    assert not (run / "export").exists()


def test_missing_and_partial_run_folders_are_refused(tmp_path):
    refused(cli("export", tmp_path / "nope", "--format", "onnx"), "does not exist")
    partial = tmp_path / ".tiny-20260101-000000.partial"
    partial.mkdir()
    refused(cli("export", partial, "--format", "onnx"), "unfinished run", "--resume")
    assert list(partial.iterdir()) == []


def test_missing_onnx_packages_name_the_extra(run, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    refused(cli("export", run, "--format", "onnx"), "missing: onnxruntime", "mentor[export]")
    assert not (run / "export").exists()


def test_non_empty_out_folder_is_refused(run, tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    refused(cli("export", run, "--format", "torchscript", "--out", tmp_path), "--out")
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_a_failed_parity_check_exits_1_and_writes_nothing(run, monkeypatch):
    monkeypatch.setitem(TOLERANCE, "torchscript", -1.0)
    r = cli("export", run, "--format", "torchscript")
    assert r.exit_code == 1 and "above the tolerance" in r.stderr, r.output
    assert not (run / "export").exists()
