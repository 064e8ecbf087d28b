"""Training: CTC loss vs a naive float64 forward algorithm; a frozen backbone stays bitwise
unchanged; pseudo-transcripts are the teacher's greedy decodes; determinism; selection and
merging read validation transcripts only; bad arguments in one sentence."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from mentor.errors import DataError, MentorError
from mentor.transcripts import (best_single, ctc_loss, greedy_decode, merged,
                                pseudo_transcripts, tb_seq, train_adapters,
                                train_recogniser)

TINY = dict(steps=8, eval_every=2, noise=dict(std=0.3))


@pytest.fixture(scope="module")
def data():
    return tb_seq(400, seed=1, labeled_fraction=(0.5, 0.5, 0.3))


@pytest.fixture(scope="module")
def backbone(data):
    return train_recogniser(data, data.ids("labeled"), seed=0, steps=20, hidden=16,
                            use_adapters=False)


def naive_ctc(logp, target, blank=0):
    """-log p(target | logp) by the CTC forward recursion (Graves et al. 2006), float64."""
    ext = [blank]
    for t in target:
        ext += [t, blank]
    T, S = len(logp), len(ext)
    alpha = np.full((T, S), -np.inf)
    alpha[0, 0] = logp[0, blank]
    alpha[0, 1] = logp[0, ext[1]]
    for t in range(1, T):
        for s in range(S):
            terms = [alpha[t - 1, s]]
            if s >= 1:
                terms.append(alpha[t - 1, s - 1])
            if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                terms.append(alpha[t - 1, s - 2])
            m = max(terms)
            alpha[t, s] = (m + math.log(sum(math.exp(v - m) for v in terms))
                           if m > -np.inf else -np.inf) + logp[t, ext[s]]
    a, b = alpha[-1, -1], alpha[-1, -2]
    m = max(a, b)
    return -(m + math.log(math.exp(a - m) + math.exp(b - m)))


def test_ctc_loss_matches_a_naive_forward_recursion():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 9, 5, generator=g, dtype=torch.float64)
    lengths = torch.tensor([9, 7, 5])
    tokens = torch.tensor([[1, 2, 2, 3], [4, 1, 0, 0], [3, 0, 0, 0]])
    tlen = torch.tensor([4, 2, 1])
    want = np.mean([naive_ctc(logits[b, :int(lengths[b])].log_softmax(-1).numpy(),
                              tokens[b, :int(tlen[b])].tolist()) / int(tlen[b])
                    for b in range(3)])
    assert float(ctc_loss(logits, lengths, tokens, tlen)) == pytest.approx(want, rel=1e-9)


def test_adapter_training_leaves_the_backbone_bitwise_unchanged(data, backbone):
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    run = train_adapters(backbone, data, data.ids("labeled", 2), (2,), seed=0, **TINY)
    after = run.model.state_dict()
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("adapters.2.") for k in changed)
    assert run.trainable_params == sum(p.numel() for p in
                                       backbone.adapters[2].parameters())
    head = train_adapters(backbone, data, data.ids("labeled", 2), (2,), seed=0,
                          train_head=True, **TINY)
    changed = {k for k in before if not torch.equal(before[k], head.model.state_dict()[k])}
    assert any(k.startswith("head.") for k in changed)
    assert all(k.startswith(("adapters.2.", "head.")) for k in changed)
    full = train_adapters(backbone, data, data.ids("labeled", 2), (2,), trainable="full",
                          seed=0, **TINY)
    assert not torch.equal(full.model.gru.weight_hh_l0, backbone.gru.weight_hh_l0)
    assert full.trainable_params == full.total_params > run.trainable_params


def test_pseudo_transcripts_are_the_teachers_greedy_decodes(data, backbone):
    pool = data.ids("unlabeled", 2)
    kept, hyps, conf = pseudo_transcripts(backbone, data, pool)
    with torch.no_grad():
        x = data.frames[pool]
        logits = backbone(x, data.language[pool], lengths=data.frame_lengths[pool])
    want = greedy_decode(logits, data.frame_lengths[pool])
    assert [w for w in want if w] == hyps
    assert kept.tolist() == [int(i) for i, w in zip(pool, want) if w]
    cut = sorted(conf)[len(conf) // 2]
    k2, h2, c2 = pseudo_transcripts(backbone, data, pool, min_confidence=cut)
    assert len(k2) < len(kept) and min(c2) >= cut
    assert all(hyps[kept.tolist().index(int(i))] == h for i, h in zip(k2, h2))


def test_runs_are_deterministic(data, backbone):
    a = train_adapters(backbone, data, data.ids("labeled", 2), (2,), seed=3, **TINY)
    b = train_adapters(backbone, data, data.ids("labeled", 2), (2,), seed=3, **TINY)
    assert a.val == b.val and all(torch.equal(x, y) for x, y in
                                  zip(a.model.state_dict().values(),
                                      b.model.state_dict().values()))
    c = train_recogniser(data, data.ids("labeled"), seed=0, steps=20, hidden=16,
                         use_adapters=False)
    assert all(torch.equal(x, y) for x, y in zip(c.state_dict().values(),
                                                 backbone.state_dict().values()))


def test_selection_and_merging_read_validation_only(data, backbone):
    tok = data.tokens.clone()
    tok[data.test] = torch.where(tok[data.test] > 0, 11 - tok[data.test], 0)
    tok[data.unlabeled] = torch.where(tok[data.unlabeled] > 0, 1, 0)
    moved = dataclasses.replace(data, tokens=tok)
    ids = data.ids("labeled")
    a = train_adapters(backbone, data, ids, (0, 1, 2), seed=0, **TINY)
    b = train_adapters(backbone, moved, ids, (0, 1, 2), seed=0, **TINY)
    assert a.val == b.val
    (ma, sa), (mb, sb) = best_single(a), best_single(b)
    assert sa == sb and all(torch.equal(x, y) for x, y in
                            zip(ma.state_dict().values(), mb.state_dict().values()))
    (ga, ca), (gb, cb) = merged(a, 2), merged(b, 2)
    assert ca == cb and all(torch.equal(x, y) for x, y in
                            zip(ga.state_dict().values(), gb.state_dict().values()))


def test_merge_of_one_checkpoint_is_the_best_single_and_merge_picks_per_language(data,
                                                                               backbone):
    run = train_adapters(backbone, data, data.ids("labeled"), (0, 1, 2), seed=0, **TINY)
    # languages peaking at different checkpoints (the paper's asynchronous peaks)
    run = dataclasses.replace(run, val=[{0: 0.1, 1: 0.5, 2: 0.6}, {0: 0.3, 1: 0.5, 2: 0.2},
                                        {0: 0.4, 1: 0.4, 2: 0.5}, {0: 0.5, 1: 0.1, 2: 0.5}])
    one, chosen = merged(run, 1)
    assert chosen == {0: [2], 1: [8], 2: [4]}
    assert best_single(run)[1] == 4  # lowest mean validation error (0.333)
    for lang in (0, 1, 2):
        errs = [v[lang] for v in run.val]
        i = errs.index(min(errs))
        assert chosen[lang] == [run.steps[i]]
        state = one.adapters[lang].state_dict()
        want = {k[len(f"adapters.{lang}."):]: v for k, v in run.checkpoints[i].items()
                if k.startswith(f"adapters.{lang}.")}
        assert all(torch.equal(state[k], want[k]) for k in want)
    solo = train_adapters(backbone, data, data.ids("labeled", 2), (2,), seed=0, **TINY)
    m, _ = merged(solo, 1)
    s, _ = best_single(solo)
    assert all(torch.equal(x, y) for x, y in zip(m.state_dict().values(),
                                                 s.state_dict().values()))
    three, chosen = merged(solo, 3)
    idx = [solo.steps.index(st) for st in chosen[2]]
    w = "adapters.2.pre.down.weight"
    want = sum(solo.checkpoints[i][w].double() for i in idx) / 3
    assert torch.allclose(three.adapters[2]["pre"].down.weight.double(), want, atol=1e-7)


def test_bad_arguments_raise_one_sentence(data, backbone):
    lab = data.ids("labeled", 2)
    with pytest.raises(MentorError, match="trainable must be one of adapter, full, got 'x'"):
        train_adapters(backbone, data, lab, (2,), trainable="x")
    with pytest.raises(DataError, match="ids hold utterances of language 0; expected only "
                                        "languages \\(2,\\)"):
        train_adapters(backbone, data, data.ids("labeled"), (2,))
    with pytest.raises(DataError, match="language is 5"):
        train_adapters(backbone, data, lab, (5,))
    with pytest.raises(DataError, match="ids names no utterance"):
        train_recogniser(data, lab[:0])
    with pytest.raises(MentorError, match="steps must be a positive integer, got 0"):
        train_adapters(backbone, data, lab, (2,), steps=0)


def test_more_transcribed_rare_utterances_lower_the_adapters_validation_error():
    """The pipeline uses added transcripts: with the pool's true transcripts (an oracle
    teacher) the rare language's adapter reaches a lower validation error than on its
    labeled utterances alone (seeds 0 and 1). The teacher's own pseudo-transcripts do not
    beat labeled-only in a setting this short (the teacher is undertrained), so that
    effect is measured (benchmarks/measures/lda_transcripts.py), not asserted."""
    from mentor.transcripts import NOISE
    for seed in (0, 1):
        d = tb_seq(4000, seed)
        bb = train_recogniser(d, d.ids("labeled"), seed=seed, steps=300,
                              use_adapters=False, noise=NOISE)
        lab, pool = d.ids("labeled", 2), d.ids("unlabeled", 2)
        only = train_adapters(bb, d, lab, (2,), seed=seed, steps=150, noise=NOISE)
        more = train_adapters(bb, d, torch.cat([lab, pool]), (2,), seed=seed, steps=150,
                              noise=NOISE)
        assert min(more.mean_val()) < min(only.mean_val()) - 0.1
