"""Which weights ``distill_lm`` keeps (``select``): the best validation exact match, the lowest
validation perplexity (for open-ended text, where exact match says little) or the last step's.
Selection reads the validation rows only and never changes the training: the three runs of
one seed have the same losses. The perplexity task's metric (the engine's view of it) equals
:func:`mentor.lm.scores.perplexity` and a naive float64 reference, shard by shard."""

from __future__ import annotations

import math

import pytest
import torch

from mentor.errors import MentorError
from mentor.lm import Addition, CharLM, distill_lm
from mentor.lm.scores import perplexity
from mentor.lm.testbed import VOCAB
from mentor.selection import best_index
from mentor.tasks.tokens import TOKENS, TOKENS_PERPLEXITY

RUN = dict(regime="supervised", steps=16, eval_every=2, batch_size=16, lr=0.05, seed=0)


@pytest.fixture(scope="module")
def data():
    return Addition(digits=1).split(0, val=24, test=20)


@pytest.fixture(scope="module")
def runs(data):
    train, val, _ = data
    out = {}
    for select in ("exact_match", "perplexity", "last"):
        torch.manual_seed(0)
        out[select] = distill_lm(CharLM(len(VOCAB), 16), None, train,
                                 val=val, select=select, **RUN)
    return out


def test_perplexity_keeps_the_step_of_the_lowest_validation_perplexity(data, runs):
    _, val, _ = data
    res = runs["perplexity"]
    curve = [h["val_perplexity"] for h in res.history]
    assert [h["step"] for h in res.history] == list(range(2, 17, 2))
    best = min(range(len(curve)), key=curve.__getitem__)
    assert best != len(curve) - 1  # the lowest is not the last: selection has work to do
    assert res.best_step == res.history[best]["step"] and res.best_val == curve[best]
    assert perplexity(res.model, val) == pytest.approx(curve[best], rel=1e-6)


def test_last_keeps_the_last_weights_and_selection_never_changes_training(data, runs):
    _, val, _ = data
    last, by_ppl, by_em = runs["last"], runs["perplexity"], runs["exact_match"]
    assert last.losses == by_ppl.losses == by_em.losses
    assert last.best_step == RUN["steps"]
    assert "val_exact_match" in last.history[-1]
    assert perplexity(last.model, val) == pytest.approx(
        by_ppl.history[-1]["val_perplexity"], rel=1e-6)
    assert perplexity(last.model, val) > by_ppl.best_val
    ems = [h["val_exact_match"] for h in by_em.history]
    assert by_em.best_val == max(ems) and by_em.best_step == by_em.history[ems.index(max(ems))]["step"]


def test_an_unknown_selection_is_one_sentence(data):
    train, val, _ = data
    with pytest.raises(MentorError, match=r"select 'loss' is unknown; expected one of "
                       r"exact_match, perplexity, last"):
        distill_lm(CharLM(len(VOCAB), 8), None, train, val=val, select="loss", **RUN)


def test_the_perplexity_task_metric_equals_a_float64_reference(data):
    _, val, _ = data
    torch.manual_seed(1)
    model = CharLM(len(VOCAB), 16).eval()
    with torch.no_grad():
        logits = model(val.ids)[:, :-1]
    y = torch.where(val.target[:, 1:], val.ids[:, 1:], torch.full_like(val.ids[:, 1:], -1))
    state = (TOKENS_PERPLEXITY.metric_state(logits[:7], y[:7])
             + TOKENS_PERPLEXITY.metric_state(logits[7:], y[7:])
             + TOKENS_PERPLEXITY.metric_state(None, None))
    total, count = 0.0, 0
    for b in range(len(y)):
        for t in range(y.shape[1]):
            if y[b, t] >= 0:
                row = [float(v) for v in logits[b, t].double()]
                top = max(row)
                log_z = top + math.log(sum(math.exp(v - top) for v in row))
                total += log_z - row[int(y[b, t])]
                count += 1
    want = math.exp(total / count)
    assert TOKENS_PERPLEXITY.metric_value(state) == pytest.approx(want, rel=1e-9)
    assert perplexity(model, val) == pytest.approx(want, rel=1e-5)
    assert TOKENS_PERPLEXITY.higher_is_better is False and TOKENS.higher_is_better is True
    with pytest.raises(MentorError, match="perplexity needs labeled positions"):
        TOKENS_PERPLEXITY.metric_value(TOKENS_PERPLEXITY.metric_state(None, None))


def test_leaderboards_pick_the_lowest_validation_perplexity():
    rows = [{"val_perplexity_mean": 12.0}, {"val_perplexity_mean": 9.5},
            {"val_perplexity_mean": float("nan")}]
    assert best_index(rows) == 1
    assert best_index([{"val_accuracy_mean": 0.4}, {"val_accuracy_mean": 0.6}]) == 1
    assert best_index([{}, {}]) is None
