"""Position-keeping token views on the tagging task: ``token_resample`` against a naive
loop, the task's default views, and the semi-supervised presets (FixMatch, mean teacher)
running on tagging rows, while views that move tokens and mixers stay refused in one
sentence."""

from __future__ import annotations

import pytest
import torch

import mentor
from mentor.data.augment import IDS, Augment, default_views, view_inputs
from mentor.data.text_views import token_resample
from mentor.errors import MentorError
from mentor.models.tagger import BiGRUTagger
from mentor.tagging import as_splits, tb_seq_tagging


def _naive_resample(x, u, p):
    out = x.clone()
    for i in range(x.shape[0]):
        real = [int(t) for t in x[i] if int(t) != 0]
        for j in range(x.shape[1]):
            if int(x[i, j]) != 0 and float(u[i, j]) < p:
                k = min(int(float(u[i, j]) / p * len(real)), len(real) - 1)
                out[i, j] = real[k]
    return out


def test_token_resample_matches_a_naive_loop_and_keeps_every_position():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 50, (6, 9), generator=g)
    for i, n in enumerate([9, 5, 1, 3, 7, 2]):
        x[i, n:] = 0  # padding ends each row
    u = torch.rand(6, 9, generator=g)
    for p in (0.0, 0.3, 1.0):
        got = token_resample(x, u, (9,), p=p)
        assert torch.equal(got, _naive_resample(x, u, p))
        assert torch.equal(got == 0, x == 0)  # padding stays padding, no token moves
        for i in range(6):  # a replacement is one of its own row's tokens
            assert set(got[i][got[i] != 0].tolist()) <= set(x[i][x[i] != 0].tolist())
    assert torch.equal(token_resample(x, u, (9,), p=0.0), x)
    assert not torch.equal(token_resample(x, u, (9,), p=1.0), x)
    with pytest.raises(MentorError, match="token_resample"):
        token_resample(x, u, (9,), p=1.5)


def test_tagging_rows_get_position_keeping_default_views():
    assert view_inputs(True, False) == IDS and view_inputs(True, True) == IDS
    views = default_views((12,), IDS)
    for kind in ("weak", "strong"):
        pipe = Augment(views[kind], (12,))
        assert pipe.reads == IDS and [name for name, *_ in pipe.ops] == ["token_resample"]
    assert views["strong"][0][1]["p"] > views["weak"][0][1]["p"]


@pytest.fixture(scope="module")
def splits():
    return as_splits(tb_seq_tagging(120, seed=0, strong_fraction=0.2))


@pytest.mark.parametrize("method", ["fixmatch", "mean-teacher"])
def test_semi_supervised_presets_train_on_tagging_rows(splits, method):
    seen = []

    def make():
        net = BiGRUTagger(200, splits.num_classes, 4, 4)
        net.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone())
                                      if m.training else None)
        return net
    d = mentor.SemiSupervised(make, method, task="tagging", epochs=1, batch_size=8,
                              unlabeled_ratio=1, seed=0)
    d.fit(splits)
    assert "val_span_f1" in d.result.history
    train_tokens = set(map(tuple, splits.train.x.tolist()))
    # the student saw rewritten rows (its strong view), padding where the row had it
    changed = [x for batch in seen for x in batch if tuple(x.tolist()) not in train_tokens]
    assert changed, "no student input differed from a training row"


def test_a_view_that_moves_tokens_is_refused_in_one_sentence(splits):
    d = mentor.SemiSupervised(lambda: BiGRUTagger(200, splits.num_classes, 4, 4), "fixmatch",
                              task="tagging", epochs=1, batch_size=8, unlabeled_ratio=1,
                              augment={"weak": [{"name": "noise", "std": 0.1}],
                                       "strong": [{"name": "noise", "std": 0.3}]})
    with pytest.raises(MentorError, match=r"train.augment noise\(std=0.1\) does not keep every "
                                          "token in its place.*expected position-keeping token "
                                          "views such as token_resample"):
        d.fit(splits)


def test_mixers_stay_refused_on_tagging(splits):
    d = mentor.SemiSupervised(lambda: BiGRUTagger(200, splits.num_classes, 4, 4), "bcp",
                              task="tagging", epochs=1, batch_size=8, unlabeled_ratio=1)
    with pytest.raises(MentorError, match="the tagging task cannot run .*expected a method "
                                          "without mixers or stored views"):
        d.fit(splits)
