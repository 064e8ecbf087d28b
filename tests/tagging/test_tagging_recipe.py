"""`mentor run` with a ``task: tagging`` recipe (a .npz of token ids and tags) end to end:
leaderboard in span F1, report, ONNX export with parity; the Python API's tagging task; bad
input as one sentence and exit 2 with nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

import mentor
from mentor.models.tagger import BiGRUTagger
from mentor.tagging import as_splits, tb_seq_tagging
from mentor.tasks.tagging import PAD


def _npz(path, n=400, hide=0.0, bad=None):
    data = tb_seq_tagging(n, seed=0)
    tags = torch.where(data.mask, data.gold, torch.full_like(data.gold, PAD)).numpy().copy()
    if bad is not None:
        tags[bad] = 99
    np.savez(path, tokens=data.tokens.numpy(), tags=tags)
    return path


def _recipe(tmp, source, **over):
    raw = {"name": "tag", "task": "tagging",
           "data": {"source": str(source), "labeled_fraction": 0.2},
           "teacher": {"model": "bigru_tagger", "embed": 32, "hidden": [32], "seed": 0,
                       "train": {"epochs": 8, "batch_size": 32, "lr": 0.01, "seeds": [0]}},
           "student": {"model": "bigru_tagger", "embed": 8, "hidden": [8]},
           "methods": [{"name": "scratch"}, {"name": "kd", "temperature": 2.0, "alpha": 0.9}],
           "train": {"epochs": 8, "batch_size": 32, "lr": 0.01, "seeds": [0, 1]}}
    raw.update(over)
    path = tmp / "tag.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def tagging_run(tmp_path_factory, cli):
    cwd = tmp_path_factory.mktemp("tagging")
    recipe = _recipe(cwd, _npz(cwd / "tags.npz", n=600))
    proc = cli(["run", str(recipe), "--out", "runs", "--quiet"], cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = list((cwd / "runs").iterdir())
    return cwd, run, proc.stdout


def test_leaderboard_and_report_name_span_f1(tagging_run):
    _, run, stdout = tagging_run
    assert "test span F1" in stdout and "BiGRU tagger" in stdout
    results = json.loads((run / "results.json").read_text())
    assert results["metric_name"] == "test span F1"
    assert results["teacher"]["metric_name"] == "test span F1"
    assert [r["method"] for r in results["rows"]] == ["kd", "scratch"] or \
        {r["method"] for r in results["rows"]} == {"kd", "scratch"}
    for r in results["rows"]:
        assert len(r["test_accuracies"]) == 2 and 0.0 <= r["test_accuracy_mean"] <= 1.0
    # the students learned spans (the checks below compare real scores, not zeros)
    assert min(next(r for r in results["rows"] if r["method"] == "kd")["test_accuracies"]) > 0.15
    html = (run / "report.html").read_text()
    assert "test span F1" in html
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert all("val_span_f1" in x["history"] for x in lines)


def test_reported_score_is_the_saved_students_span_f1(tagging_run):
    from safetensors.torch import load_file
    cwd, run, _ = tagging_run
    line = next(json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()
                if '"kd"' in x and '"seed": 1' in x)
    net = BiGRUTagger(200, 7, 8, 8)
    net.load_state_dict(load_file(str(run / "checkpoints/default/kd/seed1/student.safetensors")))
    spec = mentor.recipe.DataSpec(source=str(cwd / "tags.npz"), labeled_fraction=0.2)
    from mentor.tagging.source import tagging_splits
    test = tagging_splits(spec).test
    got = mentor.tasks.TAGGING
    with torch.no_grad():
        f1 = got.metric_value(got.metric_state(net.eval()(test.x), test.y))
    assert f1 == pytest.approx(line["test_accuracy"], abs=1e-12)


def test_onnx_export_of_the_tagger_keeps_parity(tagging_run, cli):
    pytest.importorskip("onnxruntime")
    cwd, run, _ = tagging_run
    proc = cli(["export", str(run), "--format", "onnx", "--out", "exported"], cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    card = json.loads((cwd / "exported" / "card.json").read_text())
    assert (cwd / "exported" / "student.onnx").is_file()
    assert card["parity"]["max_abs_diff"] <= card["parity"]["tolerance"]
    # parity on the run's own test rows, and the exported file scores the run's span F1
    assert card["parity"]["inputs"].startswith("test split of ")
    a = card["accuracy"]
    assert a["metric"] == "test span F1"
    assert a["test_accuracy_exported"] == pytest.approx(a["test_accuracy_seed"], abs=1e-6)
    md = (cwd / "exported" / "card.md").read_text()
    assert "**Test span F1**" in md and "test accuracy" not in md


@pytest.mark.parametrize("num_classes, message", [
    (7, "row 3, token 0 has tag id 99; expected 0..6 (7 tags) or -1 (hidden)"),
    (None, "100 tags; expected an odd number >= 3")])
def test_bad_tag_id_exits_2_without_a_run_folder(tmp_path, cli, num_classes, message):
    source = _npz(tmp_path / "bad.npz", n=60, bad=(3, 0))
    recipe = _recipe(tmp_path, source, data={"source": str(source), "labeled_fraction": 0.2,
                                             "num_classes": num_classes})
    proc = cli(["run", str(recipe), "--out", "runs", "--quiet"], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_method_with_a_mixer_exits_2_naming_it(tmp_path, cli):
    recipe = _recipe(tmp_path, _npz(tmp_path / "t.npz", n=60),
                     methods=[{"name": "bcp"}],
                     train={"epochs": 1, "seeds": [0], "unlabeled_ratio": 1})
    proc = cli(["run", str(recipe), "--out", "runs", "--quiet"], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "the tagging task cannot run" in proc.stderr
    assert "expected a method without mixers or stored views" in proc.stderr


def test_a_recipe_view_that_moves_tokens_exits_2(tmp_path, cli):
    recipe = _recipe(tmp_path, _npz(tmp_path / "t.npz", n=60),
                     methods=[{"name": "fixmatch"}],
                     train={"epochs": 1, "seeds": [0], "unlabeled_ratio": 1,
                            "augment": {"weak": [{"name": "token_drop", "p": 0.1}]}})
    proc = cli(["run", str(recipe), "--out", "runs", "--quiet"], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert ("train.augment.weak: token_drop(p=0.1) augments token ids, but the data are token "
            "ids with a tag per position (task: tagging); expected augmentations of token ids "
            "that keep every position (token_resample)") in proc.stderr


def test_fields_of_other_sources_are_refused(tmp_path, cli):
    recipe = _recipe(tmp_path, _npz(tmp_path / "t.npz", n=60))
    raw = yaml.safe_load(recipe.read_text())
    raw["data"]["text"] = "sentence"
    recipe.write_text(yaml.safe_dump(raw))
    proc = cli(["run", str(recipe), "--out", "runs", "--quiet"], tmp_path)
    assert proc.returncode == 2 and "data.text is set for task: tagging" in proc.stderr


def test_distilled_tagger_beats_one_trained_on_its_few_tags_alone():
    """The Python API on the tagging task: KD from a teacher trained on every tag beats the
    same student trained on the 10 % it sees, on 3 of 3 seeds (test span F1)."""
    torch.set_num_threads(1)
    splits = as_splits(tb_seq_tagging(900, seed=0, strong_fraction=0.1))
    teacher = mentor.Distiller(lambda: BiGRUTagger(200, 7, 16, 32), None, method="scratch",
                               task="tagging", epochs=15, batch_size=32, lr=0.01)
    everything = splits.train.labeled.clone()
    splits.train.labeled[:] = True
    teacher.fit(splits)
    splits.train.labeled.copy_(everything)
    wins = 0
    for seed in range(3):
        scores = {}
        for method in ("scratch", "kd"):
            d = mentor.Distiller(lambda: BiGRUTagger(200, 7, 8, 8),
                                 teacher.model if method == "kd" else None, method=method,
                                 task="tagging", epochs=6, batch_size=32, lr=0.01, seed=seed)
            d.fit(splits)
            scores[method] = d.evaluate(splits)["span_f1"]
        wins += scores["kd"] > scores["scratch"]
    assert wins == 3
