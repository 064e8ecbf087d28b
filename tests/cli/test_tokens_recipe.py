"""`mentor run` with a ``task: tokens`` recipe: the language-model regimes on TB-LM end to end
(teacher, students per method and seed, leaderboard, run folder), and its bad input."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from mentor.lm.generate import exact_match
from mentor.lm.models import CharLM
from mentor.lm.testbed import VOCAB, Addition

SHORT = ["--set", "teacher.steps=60", "--set", "train.steps=30", "--set", "train.seeds=[0,1]",
         "--set", "train.eval_every=10", "--set", "methods.2.warmup_steps=15",
         "--set", "data.student_sequences=300"]


@pytest.fixture(scope="module")
def tokens_run(tmp_path_factory, cli):
    cwd = tmp_path_factory.mktemp("tokens")
    proc = cli(["run", "tokens", "--out", "runs", "--quiet", *SHORT], cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = list((cwd / "runs").iterdir())
    return run, proc.stdout


def test_leaderboard_lists_every_method_with_exact_match(tokens_run):
    run, stdout = tokens_run
    assert "test exact match" in stdout
    for label in ("data", "forward-kl", "bridge"):
        assert label in stdout
    results = json.loads((run / "results.json").read_text())
    assert results["task"] == "tokens"
    assert [r["method"] for r in results["rows"]] == ["data", "forward-kl", "bridge"]
    for r in results["rows"]:
        assert len(r["test_accuracies"]) == 2 and r["seeds"] == [0, 1]
        assert 0.0 <= r["test_accuracy_mean"] <= 1.0
        assert 0.0 <= r["teacher_agreement_mean"] <= 1.0
    # only the distilling regimes query the teacher
    queries = {r["method"]: r["teacher_queries_mean"] for r in results["rows"]}
    assert queries["data"] == 0 and queries["forward-kl"] > 0 and queries["bridge"] > 0


def test_run_folder_holds_recipe_metrics_report_and_loadable_students(tokens_run):
    run, _ = tokens_run
    for name in ("recipe.yaml", "env.json", "metrics.jsonl", "report.html",
                 "teacher/model.safetensors", "plots/learning_curves.png"):
        assert (run / name).is_file(), name
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 3 * 2
    html = (run / "report.html").read_text()
    assert "test exact match" in html and "http" not in html.split("<body", 1)[1]
    # a saved student reloads into the recipe's architecture and scores what was reported
    line = next(x for x in lines if x["method"] == "forward-kl" and x["seed"] == 1)
    student = CharLM(len(VOCAB), 64, 1, max_len=11)
    student.load_state_dict(load_file(str(run / "checkpoints/forward-kl/seed1/student.safetensors")))
    _, _, test = Addition().split(0)
    assert exact_match(student.eval(), test) == pytest.approx(line["test_exact_match"])


def test_builtin_tokens_recipe_validates(mentor):
    proc = mentor("recipes", "validate", "tokens")
    assert proc.returncode == 0, proc.stderr
    assert "tokens: 3 method(s), 9 student run(s)" in proc.stdout


@pytest.mark.parametrize("override, needles", [
    ("methods.0.regime=offpolicy", ("methods[0].regime", "'offpolicy'", "off_policy")),
    ("methods.1.beta=1.5", ("methods[1].beta", "1.5")),
    ("methods.1.temperature=0", ("methods[1].temperature", "must be > 0")),
    ("methods.1.divergence=kl", ("methods[1].divergence", "forward_kl")),
    ("train.stepz=3", ("train.stepz", "did you mean 'steps'")),
    ("methods.2.warmup_steps=5000", ("warmup_steps 5000", "train.steps 800")),
])
def test_bad_tokens_recipe_is_one_sentence_and_exit_2(mentor, tmp_path, override, needles):
    proc = mentor("run", "tokens", "--out", "runs", "--quiet", "--set", override)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in proc.stderr, (n, proc.stderr)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_checkpoint_metadata_names_the_architecture(tokens_run):
    run, _ = tokens_run
    from safetensors import safe_open
    with safe_open(str(run / "teacher/model.safetensors"), "pt") as f:
        meta = json.loads(f.metadata()["mentor.lm"])
    assert meta["arch"] == "gru" and meta["layers"] == 2 and meta["vocab"] == len(VOCAB)
    assert torch.is_tensor(load_file(str(run / "teacher/model.safetensors"))["head.weight"])
