"""``mentor export`` carries the run's input standardization: the exported model (ONNX,
TorchScript, safetensors rebuilt by ``load_model``) takes the raw rows and equals the PyTorch
student on the standardized rows; without standardization (``data.standardize: false``) no
wrapper is added; ``--standardized-input`` exports the student alone, as before; the card
states the input contract (raw features, features as given, pixels in [0, 1])."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mentor.cli import app
from mentor.commands.export import TOLERANCE, export_student
from mentor.commands.run import run_recipe
from mentor.engine.checkpoint import read_safetensors, save_weights
from mentor.errors import MentorError
from mentor.models.preprocess import (PREPROCESS_KEY, STATS_KEY, Standardized, flat_statistics,
                                      standardization_record)
from mentor.recipe import DataSpec
from mentor.runs.read import load_model

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")

RAW = "raw features in the order of the training data (the standardization is part of the model)"
AS_GIVEN = "features as given, not standardized"
PIXELS = "pixels scaled to [0, 1], flattened C*H*W"
# the genuine raw rows (the source as given) against the student on the run's standardized
# rows: float32 standardization in the graph vs the run's numpy standardization
RAW_TOLERANCE = 1e-5


def _recipe(**data):
    return {"name": "pre", "data": {"source": "iris", **data},
            "student": {"model": "mlp", "hidden": [8]}, "methods": [{"name": "scratch"}],
            "train": {"epochs": 3, "seeds": [0]}}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_recipe(_recipe(), tmp_path_factory.mktemp("std"), progress=False)


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    return run_recipe(_recipe(standardize=False), tmp_path_factory.mktemp("plain"),
                      progress=False)


@pytest.fixture(scope="module")
def rows():
    """The iris test split standardized as the run did, and the same rows as given."""
    return (DataSpec(source="iris").load().test.x,
            DataSpec(source="iris", standardize=False).load().test.x)


class _Exports(dict):
    """Each format exported once, when a test first asks for it."""

    def __init__(self, run, root):
        super().__init__()
        self.run, self.root = run, root

    def __missing__(self, fmt):
        self[fmt] = export_student(self.run, fmt, self.root / fmt, repeats=1)
        return self[fmt]


@pytest.fixture(scope="module")
def exports(run, tmp_path_factory):
    return _Exports(run, tmp_path_factory.mktemp("exports"))


def _student(run, card):
    model, _ = load_model(run / card["student"]["checkpoint"])
    return model


def _runtime(fmt, folder):
    """The exported file, loaded as a user would, as a function of a float32 batch."""
    if fmt == "onnx":
        import onnxruntime as ort
        sess = ort.InferenceSession(str(folder / "student.onnx"),
                                    providers=["CPUExecutionProvider"])
        return lambda x: torch.from_numpy(sess.run(None, {"input": x.numpy()})[0])
    if fmt == "torchscript":
        return torch.jit.load(str(folder / "student.pt"))
    model, _ = load_model(folder / "student.safetensors")
    return model


def _diff(a, b):
    return float((a - b).abs().max())


def _scale(ref):
    return max(1.0, float(ref.abs().max()))


@pytest.mark.parametrize("fmt", sorted(TOLERANCE))
def test_the_exported_model_on_raw_rows_equals_the_student_on_standardized_rows(
        exports, run, rows, fmt):
    folder, card = exports[fmt]
    standardized, raw = rows
    student, run_fn = _student(run, card), _runtime(fmt, folder)
    with torch.no_grad():
        want = student(standardized)
        got = run_fn(raw)
        assert _diff(got, want) <= RAW_TOLERANCE * _scale(want)
        # the raw rows un-standardized from the run's rows, as the export's own check
        st = card["data"]["input"]["standardization"]
        mean, std = torch.tensor(st["mean"]), torch.tensor(st["std"])
        back = (standardized.double() * std.double() + mean.double()).float()
        assert _diff(run_fn(back), student((back - mean) / std)) <= TOLERANCE[fmt] * _scale(want)
        # the standardization really is in the model: standardized rows are now wrong
        assert _diff(run_fn(standardized), want) > 0.1
    assert torch.equal(got.argmax(-1), want.argmax(-1))
    assert card["parity"]["max_abs_diff"] <= card["parity"]["tolerance"]
    assert st["in_model"] and len(st["mean"]) == 4
    assert np.allclose(st["mean"], DataSpec(source="iris").load().mean, rtol=1e-6, atol=0)


def test_the_safetensors_export_records_its_standardization(exports, run):
    folder, card = exports["safetensors"]
    tensors, meta = read_safetensors(folder / "student.safetensors")
    original, train_meta = read_safetensors(run / card["student"]["checkpoint"])
    assert tensors.keys() == original.keys()  # the bare student's weights, no buffers
    assert all(torch.equal(tensors[k], original[k]) for k in tensors)
    assert meta[PREPROCESS_KEY]["kind"] == "standardize" and STATS_KEY not in meta
    config = json.loads((folder / "config.json").read_text())
    assert config["preprocess"] == meta[PREPROCESS_KEY]
    assert config["preprocess"]["mean"] == card["data"]["input"]["standardization"]["mean"]
    model, _ = load_model(folder / "student.safetensors")
    assert isinstance(model, Standardized)
    mean, std = flat_statistics(train_meta[STATS_KEY], [4])
    assert torch.equal(model.mean, torch.from_numpy(mean))
    assert torch.equal(model.std, torch.from_numpy(std))


def test_the_onnx_graph_standardizes(exports):
    import onnx
    folder, _ = exports["onnx"]
    ops = [n.op_type for n in onnx.load(str(folder / "student.onnx")).graph.node]
    assert ops.index("Sub") < ops.index("Div") < ops.index("Gemm"), ops


@pytest.mark.parametrize("fmt", sorted(TOLERANCE))
def test_without_standardization_no_wrapper_is_added(plain_run, rows, tmp_path, fmt):
    _, raw = rows
    folder, card = export_student(plain_run, fmt, tmp_path / fmt, repeats=1)
    student = _student(plain_run, card)
    _, train_meta = read_safetensors(plain_run / card["student"]["checkpoint"])
    assert STATS_KEY not in train_meta
    with torch.no_grad():
        want = student(raw)
        assert _diff(_runtime(fmt, folder)(raw), want) <= TOLERANCE[fmt] * _scale(want)
    assert card["data"]["input"]["standardization"] is None
    assert card["data"]["input"]["contract"].startswith(AS_GIVEN)
    assert card["student"]["preprocess"] is None
    if fmt == "safetensors":
        _, meta = read_safetensors(folder / "student.safetensors")
        assert PREPROCESS_KEY not in meta and STATS_KEY not in meta
        assert not isinstance(_runtime(fmt, folder), Standardized)


@pytest.mark.parametrize("fmt", sorted(TOLERANCE))
def test_standardized_input_exports_the_student_alone(run, rows, tmp_path, fmt):
    standardized, _ = rows
    folder, card = export_student(run, fmt, tmp_path / fmt, repeats=1, standardized_input=True)
    student = _student(run, card)
    with torch.no_grad():
        want = student(standardized)
        assert _diff(_runtime(fmt, folder)(standardized), want) <= TOLERANCE[fmt] * _scale(want)
    st = card["data"]["input"]["standardization"]
    assert not st["in_model"] and len(st["mean"]) == 4 and card["student"]["preprocess"] is None
    assert "standardized per feature by the caller" in card["data"]["input"]["contract"]
    assert card["data"]["input"]["standardized_input"] is True
    if fmt == "safetensors":
        _, meta = read_safetensors(folder / "student.safetensors")
        assert PREPROCESS_KEY not in meta and meta[STATS_KEY]["mean"] == st["mean"]
        assert not isinstance(_runtime(fmt, folder), Standardized)


def test_the_card_and_the_cli_state_the_input_contract(run, tmp_path):
    out = tmp_path / "ts"
    r = CliRunner().invoke(app, ["export", str(run), "--format", "torchscript", "--out",
                                 str(out)])
    assert r.exit_code == 0, r.output
    assert f"input: {RAW}" in " ".join(r.output.split())
    card = json.loads((out / "card.json").read_text())
    assert card["data"]["input"]["contract"] == RAW
    assert f"- **Input**: {RAW}" in (out / "card.md").read_text()
    r = CliRunner().invoke(app, ["export", str(run), "--format", "torchscript", "--out",
                                 str(out), "--standardized-input"])
    assert r.exit_code == 0, r.output
    md = (out / "card.md").read_text()
    assert "- **Input**: features, then standardized per feature by the caller" in md
    assert "the model does not standardize" in md
    assert "--standardized-input" in " ".join(
        CliRunner().invoke(app, ["export", "--help"], env={"COLUMNS": "200"}).output.split())


def test_the_plain_card_says_as_given(plain_run, tmp_path):
    _, card = export_student(plain_run, "torchscript", tmp_path / "ts", repeats=1)
    md = (tmp_path / "ts" / "card.md").read_text()
    assert "- **Input**: features as given, not standardized" in md


def _moved_data(run, tmp_path, keep_stats=True):
    """A copy of ``run`` whose recipe names a data file that is gone (the data cannot be
    reloaded); ``keep_stats=False``: its checkpoint also lacks the recorded statistics (a run
    written before they were recorded)."""
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    for name in ("input.yaml", "recipe.yaml"):
        p = copy / name
        if p.is_file():
            p.write_text(p.read_text().replace("source: iris", f"source: {tmp_path}/gone.csv"))
    if not keep_stats:
        for ckpt in copy.glob("checkpoints/*/*/*/student.safetensors"):
            model, meta = load_model(ckpt)
            save_weights(ckpt, model, {k: v for k, v in meta.items() if k != STATS_KEY})
    return copy


def test_recorded_statistics_serve_when_the_data_cannot_be_reloaded(run, rows, tmp_path):
    standardized, raw = rows
    copy = _moved_data(run, tmp_path)
    folder, card = export_student(copy, "torchscript", tmp_path / "ts", repeats=1)
    assert "could not be reloaded" in card["parity"]["inputs"]
    assert card["data"]["input"]["standardization"]["source"].startswith("recorded in the "
                                                                         "student checkpoint")
    with torch.no_grad():
        want = _student(run, card)(standardized)
        assert _diff(_runtime("torchscript", folder)(raw), want) <= RAW_TOLERANCE * _scale(want)


def test_unknown_statistics_are_refused_unless_standardized_input(run, tmp_path):
    copy = _moved_data(run, tmp_path, keep_stats=False)
    with pytest.raises(MentorError, match="--standardized-input"):
        export_student(copy, "torchscript", tmp_path / "ts", repeats=1)
    r = CliRunner().invoke(app, ["export", str(copy), "--format", "torchscript"])
    assert r.exit_code == 2 and "input standardization is unknown" in r.stderr, r.output
    _, card = export_student(copy, "torchscript", tmp_path / "ts", repeats=1,
                             standardized_input=True)
    assert card["data"]["input"]["standardization"] is None
    assert "could not find" in card["data"]["input"]["contract"]


def test_an_image_folder_export_takes_pixels_in_0_1(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for c, name in enumerate(("a", "b")):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(10):
            a = rng.integers(0, 100, (6, 6, 3)).astype(np.uint8)
            a[..., c] += 120
            Image.fromarray(a).save(tmp_path / "imgs" / name / f"{i}.png")
    recipe = {"name": "img", "data": {"source": str(tmp_path / "imgs"), "image_size": 6,
                                      "workers": 0},
              "student": {"model": "mlp", "hidden": [8]}, "methods": [{"name": "scratch"}],
              "train": {"epochs": 2, "seeds": [0]}}
    run = run_recipe(recipe, tmp_path / "runs", progress=False)
    folder, card = export_student(run, "onnx", tmp_path / "onnx", repeats=1)
    assert card["data"]["input"]["contract"] == (f"{PIXELS} (the per-channel standardization "
                                                 "is part of the model)")
    assert card["data"]["input"]["standardization"]["per"] == "channel"
    _, meta = read_safetensors(run / card["student"]["checkpoint"])
    assert meta[STATS_KEY]["per"] == "channel" and len(meta[STATS_KEY]["mean"]) == 3
    splits = DataSpec.model_validate(recipe["data"]).load()
    standardized = splits.test.x.take(torch.arange(len(splits.test.y)))
    raw = (standardized.double() * torch.from_numpy(splits.std).double()
           + torch.from_numpy(splits.mean).double()).float()  # pixels in [0, 1]
    assert 0 <= float(raw.min()) and float(raw.max()) <= 1 + 1e-6
    with torch.no_grad():
        want = _student(run, card)(standardized)
        assert _diff(_runtime("onnx", folder)(raw), want) <= RAW_TOLERANCE * _scale(want)


def test_statistics_records_round_trip_per_feature_and_per_channel():
    mean = np.repeat(np.array([0.1, 0.2, 0.3]), 4)
    std = np.repeat(np.array([1.5, 2.0, 0.5]), 4)
    rec = standardization_record(mean, std, [3, 2, 2])
    assert rec == {"per": "channel", "mean": [0.1, 0.2, 0.3], "std": [1.5, 2.0, 0.5]}
    back = flat_statistics(rec, [3, 2, 2])
    assert np.array_equal(back[0], mean.astype(np.float32))
    flat = standardization_record(np.arange(4.0), np.ones(4), [4])
    assert flat["per"] == "feature" and flat["mean"] == [0.0, 1.0, 2.0, 3.0]
    for bad in ({"per": "channel", "mean": [0.0], "std": [1.0]},
                {"mean": [0.0] * 12, "std": [0.0] * 12}, {"mean": "x", "std": []}):
        with pytest.raises(MentorError, match="standardization metadata"):
            flat_statistics(bad, [3, 2, 2])
    module = torch.nn.Linear(4, 2)
    wrapped = Standardized(module, np.arange(4.0), np.full(4, 2.0))
    x = torch.randn(5, 4)
    assert torch.equal(wrapped(x), module((x - torch.arange(4.0)) / 2.0))
    assert set(wrapped.state_dict()) == {"module.weight", "module.bias"}
