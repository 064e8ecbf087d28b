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


def _small_tokens_recipe() -> dict:
    import yaml
    from mentor.recipe import builtin_recipes
    raw = yaml.safe_load(builtin_recipes()["tokens"].read_text())
    raw["teacher"]["steps"] = 40
    raw["train"].update(steps=20, seeds=[0], eval_every=5)
    raw["methods"][2]["warmup_steps"] = 10
    raw["data"].update(student_sequences=200, val=40, test=40)
    return raw


def test_an_interrupted_tokens_run_resumes_to_the_uninterrupted_one(tmp_path, monkeypatch):
    """Interrupt the run in the middle of its second student (after 40 teacher steps and 27
    student steps; the last checkpoint was at step 25), resume the partial folder: the same
    scores, selected steps, teacher queries and student weights as one uninterrupted run."""
    import mentor.engine.loop as loop
    from mentor.commands.tokens import run_tokens
    raw = _small_tokens_recipe()
    whole = run_tokens(raw, tmp_path / "whole", progress=False)
    calls, real = [], loop._optimize

    def interrupting(tr, p, micro, epoch):
        calls.append(1)
        if len(calls) == 40 + 27:
            raise KeyboardInterrupt
        return real(tr, p, micro, epoch)
    monkeypatch.setattr(loop, "_optimize", interrupting)
    with pytest.raises(KeyboardInterrupt):
        run_tokens(raw, tmp_path / "cut", progress=False)
    monkeypatch.setattr(loop, "_optimize", real)
    (partial,) = list((tmp_path / "cut").iterdir())
    assert partial.name.endswith(".partial")
    resumed = run_tokens(raw, tmp_path / "cut", progress=False, resume=partial)

    def lines(run):
        return [{k: v for k, v in json.loads(x).items()}
                for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines(resumed) == lines(whole)
    for m in ("data", "forward-kl", "bridge"):
        a = load_file(str(whole / f"checkpoints/{m}/seed0/student.safetensors"))
        b = load_file(str(resumed / f"checkpoints/{m}/seed0/student.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), m


def test_resuming_a_tokens_run_with_another_recipe_is_refused(tmp_path, monkeypatch):
    import mentor.engine.loop as loop
    from mentor.commands.tokens import run_tokens
    from mentor.errors import MentorError
    raw = _small_tokens_recipe()

    def interrupting(tr, p, micro, epoch):
        raise KeyboardInterrupt
    monkeypatch.setattr(loop, "_optimize", interrupting)
    with pytest.raises(KeyboardInterrupt):
        run_tokens(raw, tmp_path, progress=False)
    (partial,) = list(tmp_path.iterdir())
    other = {**raw, "train": {**raw["train"], "steps": 30}}
    with pytest.raises(MentorError, match="was started with a different recipe"):
        run_tokens(other, tmp_path, progress=False, resume=partial)
