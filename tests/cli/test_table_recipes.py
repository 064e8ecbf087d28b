"""``mentor run`` on a Parquet file with named columns: the run writes its split to
``splits/default.json``; a second run with ``data.splits`` pointing there trains and scores on
the same rows and gives the same results; a column that does not exist stops the run in one
sentence (exit 2, no run folder)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import pyarrow as pa
import pyarrow.parquet as pq


def _write(tmp_path, n=120):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    x = np.eye(3)[y] * 3 + rng.normal(0, 0.7, size=(n, 3))
    labels = [None if i % 5 == 0 else int(c) for i, c in enumerate(y)]
    pq.write_table(pa.table({"f": [list(r) for r in x], "label": pa.array(labels, pa.int64()),
                             "id": np.arange(n)}), tmp_path / "d.parquet")


def _recipe(recipe_dict, **data):
    return recipe_dict(name="tab", data={"source": "d.parquet", "target": "label",
                                         "features": ["f"], **data},
                       teacher={"model": "mlp", "hidden": [16], "train": {"epochs": 5}},
                       methods=[{"name": "kd"}], train={"epochs": 4, "seeds": [0]})


def test_a_run_writes_its_split_and_a_second_run_reuses_it(mentor, write_recipe, recipe_dict,
                                                          tmp_path):
    _write(tmp_path)
    write_recipe(_recipe(recipe_dict, split_seed=3), "a.yaml")
    proc = mentor("run", "a.yaml", "--out", "runs", "--quiet")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    (first,) = list((tmp_path / "runs").iterdir())
    rec = json.loads((first / "splits" / "default.json").read_text())
    assert rec["format"] == "mentor-splits/1" and rec["labeled_rows"] == 96
    placed = rec["train"] + rec["val"] + rec["test"]
    assert sorted(placed) == [i for i in range(120) if i % 5]  # file rows, each once
    # another split seed would draw another split; the file fixes it
    write_recipe(_recipe(recipe_dict, split_seed=9,
                         splits=str(first / "splits" / "default.json")), "b.yaml")
    proc = mentor("run", "b.yaml", "--out", "runs2", "--quiet")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    (second,) = list((tmp_path / "runs2").iterdir())
    assert json.loads((second / "splits" / "default.json").read_text()) == rec
    a, b = (json.loads((r / "results.json").read_text()) for r in (first, second))
    assert a["rows"][0]["test_accuracy_mean"] == b["rows"][0]["test_accuracy_mean"]


def test_a_split_file_from_other_data_is_refused(mentor, write_recipe, recipe_dict, tmp_path):
    _write(tmp_path, n=120)
    (tmp_path / "s.json").write_text(json.dumps({"format": "mentor-splits/1",
                                                 "labeled_rows": 5, "labels_digest": "x",
                                                 "train": [], "train_labeled": [], "val": [],
                                                 "test": []}))
    write_recipe(_recipe(recipe_dict, splits="s.json"), "c.yaml")
    proc = mentor("run", "c.yaml", "--out", "runs", "--quiet")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "was made from a source with 5 labeled rows" in proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_missing_column_stops_with_the_nearest_name(mentor, write_recipe, recipe_dict,
                                                      tmp_path):
    _write(tmp_path)
    write_recipe(_recipe(recipe_dict, features=["ff"]), "d.yaml")
    for args in (("recipes", "validate", "d.yaml"), ("run", "d.yaml", "--out", "runs")):
        proc = mentor(*args)
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        assert "data.features 'ff' is not a column of data.source 'd.parquet' (did you mean " \
               "'f'?)" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def _text_recipe(write_recipe, recipe_dict, tmp_path, student=None):
    rng = np.random.default_rng(0)
    words = ["cat dog horse bird".split(), "car bus train ship".split(),
             "apple bread rice soup".split()]
    texts = [" ".join(rng.choice(words[i % 3], size=4)) for i in range(150)]
    labels = [None if i % 6 == 0 else ["animal", "vehicle", "food"][i % 3] for i in range(150)]
    pq.write_table(pa.table({"text": texts, "label": labels}), tmp_path / "t.parquet")
    write_recipe(recipe_dict(name="txt", data={"source": "t.parquet", "target": "label",
                                               "text": "text", "vocab_size": 50},
                             student=student or {"model": "bag", "embed": 8},
                             teacher={"model": "bag", "embed": 16, "train": {"epochs": 10,
                                                                             "lr": 0.02}},
                             methods=[{"name": "kd"}],
                             train={"epochs": 10, "lr": 0.02, "seeds": [0]}), "t.yaml")


def test_a_text_column_recipe_runs_a_text_model(validated_run, write_recipe, recipe_dict,
                                                tmp_path):
    _text_recipe(write_recipe, recipe_dict, tmp_path)
    run, results = validated_run("t.yaml")
    data = results["settings"][0]["data"]
    assert "25 unlabeled" in data and data.endswith("3 classes"), data
    assert results["rows"][0]["test_accuracy_mean"] > 0.9  # the words tell the class
    assert (run / "tokenizer" / "default" / "tokenizer.json").is_file()


@pytest.mark.parametrize("student", [
    {"model": "bag", "embed": 8},
    {"model": "hf", "config": {"model_type": "bert", "hidden_size": 16, "num_hidden_layers": 1,
                               "num_attention_heads": 2, "intermediate_size": 32,
                               "max_position_embeddings": 16}}], ids=["bag", "bert"])
def test_a_text_student_exports_with_named_token_inputs_and_its_tokenizer(
        validated_run, write_recipe, recipe_dict, tmp_path, student, monkeypatch):
    """ONNX and TorchScript files take ``input_ids`` and ``attention_mask``; the run's
    tokenizer ships beside them, and a new text encoded with it and padded as the run pads
    is classified by the exported file as the PyTorch student classifies it."""
    pytest.importorskip("transformers")
    _text_recipe(write_recipe, recipe_dict, tmp_path, student)
    run, results = validated_run("t.yaml")
    from mentor.commands.export import export_student
    monkeypatch.chdir(tmp_path)  # the recipe names its data relative to the run's folder
    for fmt in ("onnx", "torchscript"):  # 3 latency repeats: the CLI's export is tested above
        export_student(run, fmt, tmp_path / fmt, repeats=3)
        card = json.loads((tmp_path / fmt / "card.json").read_text())
        assert card["data"]["input"]["dtype"] == "int64"
        assert card["parity"]["max_abs_diff"] <= card["parity"]["tolerance"]
        assert card["accuracy"]["test_accuracy_exported"] == pytest.approx(
            results["rows"][0]["test_accuracy_mean"])
        assert (tmp_path / fmt / "tokenizer" / "tokenizer.json").is_file()
    from tokenizers import Tokenizer
    import onnxruntime as ort
    tok = Tokenizer.from_file(str(tmp_path / "onnx" / "tokenizer" / "tokenizer.json"))
    width = card["student"]["input_shape"][0]
    ids = tok.encode("bread soup rice apple").ids[:width]
    feed = {"input_ids": np.array([ids + [0] * (width - len(ids))], dtype=np.int64),
            "attention_mask": np.array([[1] * len(ids) + [0] * (width - len(ids))],
                                       dtype=np.int64)}
    session = ort.InferenceSession(str(tmp_path / "onnx" / "student.onnx"))
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    logits = session.run(None, feed)[0]
    assert logits.shape == (1, 3) and int(logits.argmax()) == 1  # food (classes sorted)


def test_a_numeric_model_on_a_text_column_is_refused(mentor, write_recipe, recipe_dict,
                                                     refused, tmp_path):
    pq.write_table(pa.table({"text": ["a b", "c d", "e f"] * 10, "label": [0, 1, 2] * 10}),
                   tmp_path / "t.parquet")
    write_recipe(recipe_dict(name="txt", data={"source": "t.parquet", "target": "label",
                                               "text": "text"}), "t.yaml")
    refused(mentor("run", "t.yaml", "--out", "runs"), "model 'mlp' reads numeric features, "
            "but the data are token ids (data.text); expected a text model such as 'bag'")


def test_a_saved_hugging_face_model_teaches_as_it_is(validated_run, write_recipe, recipe_dict,
                                                     tmp_path):
    transformers = __import__("pytest").importorskip("transformers")
    import torch
    cfg = transformers.AutoConfig.for_model(
        "bert", vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32, num_labels=3)
    torch.manual_seed(0)
    transformers.AutoModelForSequenceClassification.from_config(cfg).save_pretrained(
        str(tmp_path / "bert"))
    words = ["cat dog", "car bus", "rice soup"]
    pq.write_table(pa.table({"text": [words[i % 3] for i in range(60)],
                             "label": [i % 3 for i in range(60)]}), tmp_path / "t.parquet")
    write_recipe(recipe_dict(name="saved", data={"source": "t.parquet", "target": "label",
                                                 "text": "text"},
                             student={"model": "bag", "embed": 4},
                             teacher={"model": "hf", "path": "bert", "adapt": False},
                             methods=[{"name": "kd"}], train={"epochs": 1, "seeds": [0]}),
                 "s.yaml")
    run, results = validated_run("s.yaml")
    assert results["teacher"]["description"] == ("transformers model from bert as saved (not "
                                                 "trained here)")
    assert not (run / "teacher" / "state").exists()  # nothing was trained


def test_a_streamed_table_runs_on_the_split_of_the_in_memory_one_and_exports(
        mentor, validated_run, write_recipe, recipe_dict, tmp_path):
    """``data.stream: true``: the same split file and the same scores as holding the table in
    memory (its inputs differ by the float rounding of the statistics only), and the student
    exports with an ONNX parity check on rows read from the stream."""
    _write(tmp_path)
    write_recipe(_recipe(recipe_dict, split_seed=3), "mem.yaml")
    write_recipe(_recipe(recipe_dict, split_seed=3, stream=True, workers=1), "disk.yaml")
    mem, a = validated_run("mem.yaml", out="mem")
    disk, b = validated_run("disk.yaml", out="disk")
    assert (json.loads((disk / "splits" / "default.json").read_text())
            == json.loads((mem / "splits" / "default.json").read_text()))
    assert b["settings"][0]["data"] == a["settings"][0]["data"]
    assert b["rows"][0]["test_accuracy_mean"] == a["rows"][0]["test_accuracy_mean"]
    proc = mentor("export", str(disk), "--format", "onnx", "--out", "onnx")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    said = proc.stdout.replace("\n", " ")
    assert "input: raw features in the order of the training data" in said
    assert "on test split of d.parquet reloaded from input.yaml (18 rows)" in said
