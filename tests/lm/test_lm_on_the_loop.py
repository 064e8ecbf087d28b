"""Language-model distillation runs on the engine's one loop (issue: one loop for every task):
every regime's optimizer steps go through :func:`mentor.engine.loop._optimize`, selection is
the loop's (the tokens task's exact match), and the loop's checkpoints make a stopped run
resume to the uninterrupted one, bit for bit."""

from __future__ import annotations

import pytest
import torch

import mentor.engine.loop as loop
from mentor.lm import Addition, CharLM, distill_lm
from mentor.lm.testbed import VOCAB

STEPS = 9


@pytest.fixture(scope="module")
def data():
    train, val, _ = Addition(digits=1).split(0, val=20, test=20)
    return train, val


@pytest.fixture(scope="module")
def teacher(data):
    torch.manual_seed(0)
    return distill_lm(CharLM(len(VOCAB), d_model=24), None, data[0], regime="supervised",
                      steps=30, batch_size=32).model.eval()


def _student():
    torch.manual_seed(1)
    return CharLM(len(VOCAB), d_model=16)


@pytest.fixture
def optimizer_steps(monkeypatch):
    """The micro-batch count of every `_optimize` call (one per optimizer step)."""
    calls = []
    real = loop._optimize

    def counting(tr, p, micro, epoch):
        calls.append(len(micro))
        return real(tr, p, micro, epoch)
    monkeypatch.setattr(loop, "_optimize", counting)
    return calls


REGIMES = [dict(regime="supervised"), dict(regime="off_policy", accumulate=2),
           dict(regime="on_policy", lam=0.5), dict(regime="on_policy", estimator="sampled"),
           dict(regime="bridge", warmup_steps=4), dict(regime="seqkd")]


@pytest.mark.parametrize("kw", REGIMES, ids=lambda kw: "-".join(map(str, kw.values())))
def test_every_regime_steps_through_the_engine_loop(data, teacher, kw, optimizer_steps):
    """One `_optimize` call per optimizer step, with `accumulate` micro-batches each."""
    res = distill_lm(_student(), teacher, data[0], val=data[1], steps=STEPS, eval_every=4,
                     batch_size=8, seed=0, **kw)
    assert optimizer_steps == [kw.get("accumulate", 1)] * STEPS
    assert len(res.losses) == STEPS
    # evaluation periods are the loop's epochs: steps 4, 8 and the last one
    assert [h["step"] for h in res.history] == [4, 8, 9]
    best = max(res.history, key=lambda h: h["val_exact_match"])  # first best wins ties
    assert (res.best_step, res.best_val) == (best["step"], best["val_exact_match"])


@pytest.mark.parametrize("kw", [dict(regime="on_policy", lam=0.5),
                                dict(regime="bridge", warmup_steps=4)],
                         ids=["on_policy", "bridge"])
def test_a_stopped_run_resumes_to_the_uninterrupted_one(data, teacher, kw, tmp_path):
    """Stop after 6 of 9 steps (mid-period, student samples drawn from the saved generator),
    resume: the same student, losses and history as one uninterrupted run."""
    common = dict(val=data[1], steps=STEPS, eval_every=4, batch_size=8, seed=2, **kw)
    full = distill_lm(_student(), teacher, data[0], **common)
    stopped = distill_lm(_student(), teacher, data[0], checkpoint_dir=tmp_path,
                         max_steps=6, **common)
    assert len(stopped.losses) == 6
    resumed = distill_lm(_student(), teacher, data[0], checkpoint_dir=tmp_path, resume=True,
                         **common)
    assert resumed.losses == full.losses
    assert resumed.history == full.history
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k


def test_preference_distillation_steps_through_the_engine_loop(data, teacher, optimizer_steps):
    """PU-RL's DPO steps are the loop's optimizer steps; its anchors are counted as queries."""
    from mentor.lm import complete
    from mentor.lm.pu_rl import preference_distill

    def anchor(prompts, new):
        return complete(teacher, prompts, new)[:, prompts.shape[1]:]
    res = preference_distill(_student(), anchor, data[0], val=data[1], k=4, steps=STEPS,
                             prompts_per_step=3, eval_every=4, seed=0)
    assert len(optimizer_steps) == STEPS and set(optimizer_steps) <= {0, 1}
    assert len(res.losses) == STEPS and res.teacher_queries == 3 * STEPS
    assert [h["step"] for h in res.history] == [4, 8, 9]
