"""Preference distillation (PU-RL, METHODS.md §31): DPO loss against a naive float64
reference, sequence log-probs, GRPO advantages, anchor-induced pairs, edit similarity, and the
PU-RL sanity check on a tiny categorical policy (anchored ranking helps, random does not)."""

import math
import sys
from pathlib import Path

import pytest
import torch

from mentor.errors import MentorError, ParameterError
from mentor.lm.preference import (anchor_rank, anchor_scores, dpo_loss, edit_similarity,
                                  grpo_advantages, levenshtein, preference_pairs, rank_rewards,
                                  sequence_logprob)

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.measures.lm import (ANCHOR, CANDIDATES, PREFERENCE_SEEDS,  # noqa: E402
                                    categorical_dpo)


def _naive_dpo(pc, pr, rc, rr, beta):
    x = beta * ((pc - rc) - (pr - rr))
    return -math.log(1.0 / (1.0 + math.exp(-x)))


# --- dpo_loss -----------------------------------------------------------------------------------

def test_dpo_loss_matches_naive_float64_reference():
    g = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (torch.randn(64, generator=g, dtype=torch.float64) * 5 for _ in range(4))
    for beta in (0.1, 0.5, 2.0):
        per = dpo_loss(pc, pr, rc, rr, beta=beta, reduction="none")
        assert per.shape == (64,) and per.dtype == torch.float64
        ref = [_naive_dpo(*(float(t[i]) for t in (pc, pr, rc, rr)), beta) for i in range(64)]
        for got, want in zip(per.tolist(), ref):
            assert abs(got - want) < 1e-9
        assert abs(float(dpo_loss(pc, pr, rc, rr, beta=beta)) - sum(ref) / 64) < 1e-9
        assert abs(float(dpo_loss(pc, pr, rc, rr, beta=beta, reduction="sum")) - sum(ref)) < 1e-8


def test_dpo_loss_is_stable_for_huge_margins():
    big = torch.tensor([1e4, -1e4], dtype=torch.float64)
    zero = torch.zeros(2, dtype=torch.float64)
    for dtype in (torch.float64, torch.float32):
        pc = big.clone().to(dtype).requires_grad_(True)
        loss = dpo_loss(pc, zero.to(dtype), zero.to(dtype), zero.to(dtype), beta=1.0,
                        reduction="none")
        assert torch.isfinite(loss).all()
        assert float(loss[0].detach()) == pytest.approx(0.0, abs=1e-6)
        assert float(loss[1].detach()) == pytest.approx(1e4, rel=1e-6)
        loss.sum().backward()
        assert torch.isfinite(pc.grad).all()
        assert pc.grad.tolist() == pytest.approx([0.0, -1.0], abs=1e-6)


def test_dpo_loss_label_smoothing_and_gradient_direction():
    pc = torch.zeros(3, requires_grad=True)
    pr = torch.zeros(3, requires_grad=True)
    z = torch.zeros(3)
    dpo_loss(pc, pr, z, z).backward()
    assert (pc.grad < 0).all() and (pr.grad > 0).all()  # descent raises chosen, lowers rejected
    x = torch.tensor([2.0], dtype=torch.float64)
    z1 = torch.zeros(1, dtype=torch.float64)
    eps = 0.2
    want = -(1 - eps) * math.log(1 / (1 + math.exp(-0.2))) - eps * math.log(1 / (1 + math.exp(0.2)))
    got = float(dpo_loss(x, z1, z1, z1, beta=0.1, label_smoothing=eps))
    assert abs(got - want) < 1e-12


@pytest.mark.parametrize("beta", [0.0, -0.1, float("nan"), float("inf")])
def test_dpo_loss_beta_must_be_positive(beta):
    z = torch.zeros(2)
    with pytest.raises(MentorError, match="beta"):
        dpo_loss(z, z, z, z, beta=beta)


def test_dpo_loss_shape_and_reduction_errors():
    z = torch.zeros(2)
    with pytest.raises(MentorError, match="ref_rejected has shape"):
        dpo_loss(z, z, z, torch.zeros(3))
    with pytest.raises(MentorError, match="reduction"):
        dpo_loss(z, z, z, z, reduction="avg")


# --- sequence_logprob ---------------------------------------------------------------------------

def _loop_logprob(logits, tokens, mask, normalize):
    out = []
    for b in range(logits.shape[0]):
        total, count = 0.0, 0
        for t in range(logits.shape[1]):
            if not mask[b][t]:
                continue
            row = [float(v) for v in logits[b, t]]
            m = max(row)
            lse = m + math.log(sum(math.exp(v - m) for v in row))
            total += row[int(tokens[b, t])] - lse
            count += 1
        out.append(total / max(count, 1) if normalize else total)
    return out


def test_sequence_logprob_matches_loop_reference_with_mask_and_normalize():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 7, 11, generator=g, dtype=torch.float64) * 3
    tokens = torch.randint(0, 11, (4, 7), generator=g)
    mask = torch.rand(4, 7, generator=g) > 0.3
    mask[3] = False  # a row with nothing counted
    tokens[~mask] = -100  # padding ids at masked positions are never read
    for normalize in (False, True):
        got = sequence_logprob(logits, tokens, mask, normalize=normalize)
        want = _loop_logprob(logits, tokens, mask.tolist(), normalize)
        assert got.shape == (4,)
        for a, b in zip(got.tolist(), want):
            assert abs(a - b) < 1e-10
    assert float(sequence_logprob(logits, tokens, mask)[3]) == 0.0
    full = sequence_logprob(logits, tokens.clamp_min(0))
    want = _loop_logprob(logits, tokens.clamp_min(0), [[True] * 7] * 4, False)
    assert full.tolist() == pytest.approx(want, abs=1e-10)


def test_sequence_logprob_causal_lm_alignment_and_gradients():
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(0, 5, (2, 6), generator=g)
    logits = torch.randn(2, 6, 5, generator=g, requires_grad=True)
    # a causal LM: position t predicts ids[t + 1]; the caller shifts
    lp = sequence_logprob(logits[:, :-1], ids[:, 1:], torch.ones(2, 5))
    want = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1).sum(-1)
    assert torch.allclose(lp, want, atol=1e-6)
    lp.sum().backward()
    assert logits.grad[:, -1].abs().sum() == 0  # the last position predicts nothing
    half = sequence_logprob(logits.detach().to(torch.bfloat16), ids)
    assert half.dtype == torch.float32


def test_sequence_logprob_errors():
    logits = torch.zeros(2, 3, 4)
    with pytest.raises(MentorError, match=r"tokens must have shape \(2, 3\)"):
        sequence_logprob(logits, torch.zeros(2, 4, dtype=torch.long), None)
    with pytest.raises(MentorError, match="id 4"):
        sequence_logprob(logits, torch.full((2, 3), 4), None)
    with pytest.raises(MentorError, match="integer token ids"):
        sequence_logprob(logits, torch.zeros(2, 3), None)
    with pytest.raises(MentorError, match="mask must have shape"):
        sequence_logprob(logits, torch.zeros(2, 3, dtype=torch.long), torch.ones(3))
    with pytest.raises(MentorError, match=r"\(B, L, V\)"):
        sequence_logprob(torch.zeros(3, 4), torch.zeros(3, 4, dtype=torch.long), None)


# --- grpo_advantages ----------------------------------------------------------------------------

def test_grpo_advantages_zero_mean_unit_std_per_group():
    g = torch.Generator().manual_seed(3)
    rewards = torch.rand(5, 8, generator=g, dtype=torch.float64) * torch.arange(1, 6)[:, None]
    adv = grpo_advantages(rewards)
    assert adv.shape == (5, 8)
    assert torch.allclose(adv.mean(-1), torch.zeros(5, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(adv.std(-1), torch.ones(5, dtype=torch.float64), atol=1e-5)
    one = grpo_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0]))
    assert one.tolist() == pytest.approx([0.866, -0.866, -0.866, 0.866], abs=1e-3)
    assert grpo_advantages(torch.full((2, 4), 3.0)).abs().max() == 0  # all equal: no signal
    assert grpo_advantages(torch.tensor([0, 1])).dtype == torch.float32
    with pytest.raises(MentorError, match="at least 2"):
        grpo_advantages(torch.zeros(3, 1))
    with pytest.raises(ParameterError, match="eps"):
        grpo_advantages(torch.zeros(3), eps=0.0)


# --- ranking and pairs --------------------------------------------------------------------------

def test_anchor_rank_and_rank_rewards():
    assert anchor_rank([0.2, 0.9, 0.5, 0.9]) == [1, 3, 2, 0]
    assert anchor_rank(torch.tensor([1.0, 3.0, 2.0])) == [1, 2, 0]
    assert rank_rewards([0.2, 0.9, 0.5, 0.9]).tolist() == pytest.approx([0, 5 / 6, 1 / 3, 5 / 6])
    assert rank_rewards([1.0, 1.0]).tolist() == [0.5, 0.5]
    with pytest.raises(MentorError, match=r"scores\[1\] is nan"):
        anchor_rank([0.1, float("nan")])


def test_preference_pairs_best_worst_all_and_ties():
    scores = [0.2, 0.9, 0.5, 0.7]
    assert preference_pairs(scores) == [(1, 0)]
    pairs = preference_pairs(scores, mode="all")
    assert len(pairs) == 6 and len(set(pairs)) == 6
    assert all(scores[c] > scores[r] for c, r in pairs)
    assert pairs[0] == (1, 3)  # best first
    tied = [0.5, 0.9, 0.5, 0.9]
    assert len(preference_pairs(tied, mode="all")) == 4  # 2 x 2 strict pairs, no tie pairs
    assert preference_pairs(tied) == [(1, 2)]
    assert preference_pairs([0.3, 0.3, 0.3]) == []
    assert preference_pairs([0.3, 0.3, 0.3], mode="all") == []
    assert preference_pairs([0.4]) == []
    assert preference_pairs([0.1, 0.15, 0.9], mode="all", margin=0.1) == [(2, 1), (2, 0)]
    with pytest.raises(MentorError, match="mode"):
        preference_pairs(scores, mode="random")


def test_edit_similarity_and_anchor_scores():
    assert levenshtein("kitten", "sitting") == 3
    assert edit_similarity("kitten", "sitting") == pytest.approx(1 - 3 / 7)
    assert edit_similarity("", "") == 1.0
    assert edit_similarity("abc", "") == 0.0
    assert edit_similarity("abc", "abc") == 1.0
    assert edit_similarity(["12", "+", "7"], ["12", "+", "8"]) == pytest.approx(2 / 3)
    assert anchor_scores(edit_similarity, ["19", "18", "xx"], "19") == [1.0, 0.5, 0.0]
    with pytest.raises(MentorError, match="candidate 0"):
        anchor_scores(lambda c, a: float("inf"), ["a"], "b")
    with pytest.raises(MentorError, match="expected a number"):
        anchor_scores(lambda c, a: "high", ["a"], "b")


# --- PU-RL sanity check -------------------------------------------------------------------------

def test_dpo_on_anchor_induced_pairs_moves_mass_to_the_closest_candidate():
    """A categorical policy over six answers, 200 DPO steps, 5 seeds: the best answer's
    probability rises from 1/6 to 0.98 on average with anchor-ranked pairs and stays at 0.17
    with a random ranking (the `preference` measurement, docs/methods.md)."""
    sims = anchor_scores(edit_similarity, CANDIDATES, ANCHOR)
    best = anchor_rank(sims)[0]
    assert CANDIDATES[best] == "12+7=19" and sims.count(max(sims)) == 1
    anchored_probs = [categorical_dpo(s, "anchor") for s in PREFERENCE_SEEDS]
    anchored = [float(p[best]) for p in anchored_probs]
    randomized = [float(categorical_dpo(s, "random")[best]) for s in PREFERENCE_SEEDS]
    assert min(anchored) > 0.5  # from 1/6
    mean_random = sum(randomized) / 5
    assert mean_random < 0.35  # a random ranking does not single out the best candidate
    assert sum(anchored) / 5 - mean_random > 0.3
    # the farthest candidate from the anchor loses mass under the anchored ranking
    assert all(float(p[anchor_rank(sims)[-1]]) < 1 / 6 for p in anchored_probs)
