"""Preference distillation from a black-box teacher (PU-RL distillation, paper 31).

"Positive-Unlabeled Reinforcement Learning Distillation for On-Premise Small Models"
(METHODS.md §31): for each prompt the teacher is asked once for an **anchor** response (the
positive; see :class:`mentor.lm.labeler.LLMLabeler` with the ``text`` parser), the student
samples K candidates (unlabeled), and an anchor-conditioned self-ranking of the candidates
induces preferences, trained with DPO (pairwise) or GRPO (group-relative advantages):

1. ``scores = anchor_scores(score_fn, candidates, anchor)`` -- higher = closer to the anchor.
   The paper's score is the student's own judgement ([recon]: e.g. the length-normalised
   log-prob of the anchor given the candidate as context, built from
   :func:`sequence_logprob`); :func:`edit_similarity` is the oracle upper bound.
2. DPO: ``pairs = preference_pairs(scores, mode="best_worst" | "all")`` and
   :func:`dpo_loss` on the sequence log-probs (:func:`sequence_logprob`) of the chosen and
   rejected candidates under the policy and a frozen reference.
3. GRPO: rewards ``rank_rewards(scores)`` (normalised ranks) and
   :func:`grpo_advantages` within each prompt's group.

DPO is Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model is Secretly a
Reward Model" (Eq. 7); the optional label smoothing is the conservative DPO of Mitchell 2023.
GRPO advantages are those of Shao et al. 2024 (DeepSeekMath), outcome supervision.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import MentorError, check_param

__all__ = ["anchor_rank", "anchor_scores", "dpo_loss", "edit_similarity", "grpo_advantages",
           "levenshtein", "preference_pairs", "rank_rewards", "sequence_logprob"]


def sequence_logprob(logits: Tensor, tokens: Tensor, mask: Tensor | None = None, *,
                     normalize: bool = False) -> Tensor:
    """Log-probability of each sequence, ``(B,)``.

    ``out[b] = sum_t mask[b, t] * log_softmax(logits[b, t])[tokens[b, t]]``.

    **Alignment:** ``logits[:, t]`` is the distribution that predicts ``tokens[:, t]`` -- the
    caller shifts. For a causal LM run on ``ids`` (logits at position t predict token t + 1)
    pass ``logits[:, :-1]``, ``ids[:, 1:]`` and the completion mask shifted the same way
    (1 on response tokens, 0 on prompt and padding).

    ``mask`` (bool or 0/1, default all ones) selects the positions that count; tokens at
    masked-out positions are never read, so padding ids such as -100 are fine there.
    ``normalize=True`` gives the mean over the counted positions (length-normalised
    log-prob; 0 for a row with none). Half-precision logits are computed in float32;
    float64 stays float64.
    """
    if not isinstance(logits, Tensor) or logits.dim() != 3:
        raise MentorError(f"sequence_logprob.logits must be a (B, L, V) tensor, got shape "
                          f"{tuple(getattr(logits, 'shape', ()))}")
    B, L, V = logits.shape
    if not isinstance(tokens, Tensor) or tuple(tokens.shape) != (B, L):
        raise MentorError(f"sequence_logprob.tokens must have shape {(B, L)} to match logits, "
                          f"got {tuple(getattr(tokens, 'shape', ()))}")
    if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
        raise MentorError(f"sequence_logprob.tokens must be integer token ids, got dtype "
                          f"{tokens.dtype}")
    if mask is None:
        mask = torch.ones(B, L, dtype=torch.bool, device=logits.device)
    if not isinstance(mask, Tensor) or tuple(mask.shape) != (B, L):
        raise MentorError(f"sequence_logprob.mask must have shape {(B, L)} to match logits, "
                          f"got {tuple(getattr(mask, 'shape', ()))}")
    keep = mask.bool()
    counted = tokens[keep]
    if counted.numel() and (int(counted.min()) < 0 or int(counted.max()) >= V):
        bad = int(counted.min()) if int(counted.min()) < 0 else int(counted.max())
        raise MentorError(f"sequence_logprob.tokens holds the id {bad} at a counted position; "
                          f"expected ids in [0, {V - 1}] (vocabulary size {V})")
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    safe = tokens.masked_fill(~keep, 0).long()
    picked = torch.gather(logits, -1, safe.unsqueeze(-1)).squeeze(-1)
    token_lp = picked - torch.logsumexp(logits, dim=-1)
    weight = keep.to(token_lp.dtype)
    total = (token_lp * weight).sum(dim=-1)
    if normalize:
        total = total / weight.sum(dim=-1).clamp_min(1.0)
    return total


def dpo_loss(policy_chosen: Tensor, policy_rejected: Tensor, ref_chosen: Tensor,
             ref_rejected: Tensor, *, beta: float = 0.1, reduction: str = "mean",
             label_smoothing: float = 0.0) -> Tensor:
    """DPO loss ``-log sigmoid(beta * ((pc - rc) - (pr - rr)))`` (Rafailov et al. 2023, Eq. 7).

    Inputs are sequence log-probs (e.g. from :func:`sequence_logprob`) of the chosen and
    rejected responses under the policy (``pc``, ``pr``) and the frozen reference (``rc``,
    ``rr``), all of one shape. Computed with ``logsigmoid``, so it is finite for any margin
    (``|x| = 1e4`` gives ``0`` or ``|x|``, no inf or nan). ``label_smoothing = eps`` gives
    conservative DPO, ``-(1 - eps) log sigmoid(x) - eps log sigmoid(-x)``.
    ``reduction``: ``mean`` | ``sum`` | ``none``. ``beta = 0.1`` is the METHODS.md §31 default.
    """
    check_param("dpo_loss", "beta", beta, low=0.0, low_open=True)
    if not math.isfinite(beta):
        raise MentorError(f"dpo_loss.beta must be a finite number > 0, got {beta!r}")
    check_param("dpo_loss", "label_smoothing", label_smoothing, low=0.0, high=0.5)
    if reduction not in ("mean", "sum", "none"):
        raise MentorError(f"dpo_loss.reduction must be 'mean', 'sum' or 'none', got "
                          f"{reduction!r}")
    tensors = {"policy_chosen": policy_chosen, "policy_rejected": policy_rejected,
               "ref_chosen": ref_chosen, "ref_rejected": ref_rejected}
    shape = tuple(policy_chosen.shape)
    for name, t in tensors.items():
        if not isinstance(t, Tensor):
            raise MentorError(f"dpo_loss.{name} must be a tensor, got {type(t).__name__}")
        if tuple(t.shape) != shape:
            raise MentorError(f"dpo_loss.{name} has shape {tuple(t.shape)}; expected {shape} "
                              f"like policy_chosen")
    x = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))
    losses = -F.logsigmoid(x)
    if label_smoothing:
        losses = (1.0 - label_smoothing) * losses - label_smoothing * F.logsigmoid(-x)
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses


def grpo_advantages(rewards: Tensor, eps: float = 1e-6) -> Tensor:
    """Group-relative advantages ``(r - mean) / (std + eps)`` within each group (GRPO).

    ``rewards`` is ``(G,)`` for one group or ``(N, G)`` for N prompts with G samples each;
    statistics are over the last dimension. ``std`` is the sample standard deviation
    (Bessel-corrected, as ``torch.std`` and the common GRPO implementations), so each group's
    advantages have mean 0 and sample std ~1; a group whose rewards are all equal gets zeros.
    Groups need at least 2 samples.
    """
    if not isinstance(rewards, Tensor) or rewards.dim() not in (1, 2):
        raise MentorError(f"grpo_advantages.rewards must be a (G,) or (N, G) tensor, got shape "
                          f"{tuple(getattr(rewards, 'shape', ()))}")
    if rewards.shape[-1] < 2:
        raise MentorError(f"grpo_advantages.rewards groups must have at least 2 samples, got "
                          f"group size {rewards.shape[-1]}")
    check_param("grpo_advantages", "eps", eps, low=0.0, low_open=True)
    r = rewards if rewards.dtype.is_floating_point else rewards.float()
    mean = r.mean(dim=-1, keepdim=True)
    std = r.std(dim=-1, keepdim=True)
    return (r - mean) / (std + eps)


def _score_list(scores: Any, who: str) -> list[float]:
    if isinstance(scores, Tensor):
        if scores.dim() != 1:
            raise MentorError(f"{who}.scores must be one score per candidate (1-D), got shape "
                              f"{tuple(scores.shape)}")
        values = [float(v) for v in scores.detach().cpu().tolist()]
    else:
        try:
            values = [float(v) for v in scores]
        except (TypeError, ValueError):
            raise MentorError(f"{who}.scores must be a sequence of numbers, one per candidate, "
                              f"got {scores!r}") from None
    for i, v in enumerate(values):
        if not math.isfinite(v):
            raise MentorError(f"{who}.scores[{i}] is {v}; expected a finite score")
    return values


def anchor_rank(scores: Sequence[float] | Tensor) -> list[int]:
    """Candidate indices ordered best first (highest anchor score; ties keep input order)."""
    values = _score_list(scores, "anchor_rank")
    return sorted(range(len(values)), key=lambda i: -values[i])


def rank_rewards(scores: Sequence[float] | Tensor) -> Tensor:
    """Normalised ranks in ``[0, 1]`` (worst 0, best 1; ties share their mean rank).

    METHODS.md §31: GRPO rewards are the normalised ranks of the anchor-conditioned scores.
    A single candidate, or all tied, gets 0.5.
    """
    values = _score_list(scores, "rank_rewards")
    k = len(values)
    if k == 0:
        raise MentorError("rank_rewards.scores is empty; expected one score per candidate")
    order = sorted(range(k), key=lambda i: values[i])
    ranks = [0.0] * k
    i = 0
    while i < k:
        j = i
        while j + 1 < k and values[order[j + 1]] == values[order[i]]:
            j += 1
        for m in range(i, j + 1):
            ranks[order[m]] = (i + j) / 2.0
        i = j + 1
    if k == 1 or len(set(values)) == 1:
        return torch.full((k,), 0.5, dtype=torch.float64)
    return torch.tensor([r / (k - 1) for r in ranks], dtype=torch.float64)


def preference_pairs(candidates_scores: Sequence[float] | Tensor, *, mode: str = "best_worst",
                     margin: float = 0.0) -> list[tuple[int, int]]:
    """``(chosen_index, rejected_index)`` pairs from one prompt's candidate scores.

    ``best_worst``: the best candidate against the worst (one pair; the first of tied bests,
    the last of tied worsts). ``all``: every ordered pair with ``score_i - score_j > margin``,
    chosen and then rejected in best-first order. Ties never make a pair, so all-equal scores
    give none.
    """
    if mode not in ("best_worst", "all"):
        raise MentorError(f"preference_pairs.mode must be 'best_worst' or 'all', got {mode!r}")
    check_param("preference_pairs", "margin", margin, low=0.0)
    values = _score_list(candidates_scores, "preference_pairs")
    if len(values) < 2:
        return []
    order = anchor_rank(values)
    if mode == "best_worst":
        best, worst = order[0], order[-1]
        return [(best, worst)] if values[best] - values[worst] > margin else []
    pairs = []
    for i in order:
        for j in order:
            if values[i] - values[j] > margin:
                pairs.append((i, j))
    return pairs


def anchor_scores(score_fn: Callable[[Any, Any], float], candidates: Sequence[Any],
                  anchor: Any) -> list[float]:
    """``[score_fn(candidate, anchor) for candidate in candidates]``, checked finite.

    Higher must mean closer to the teacher's anchor. Use the student's own judgement (e.g.
    its length-normalised log-prob of the anchor with the candidate as context, from
    :func:`sequence_logprob` with ``normalize=True``) or :func:`edit_similarity` as the oracle
    upper bound (METHODS.md §31).
    """
    if not callable(score_fn):
        raise MentorError(f"anchor_scores.score_fn must be a callable (candidate, anchor) -> "
                          f"float, got {type(score_fn).__name__}")
    out = []
    for i, cand in enumerate(candidates):
        value = score_fn(cand, anchor)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise MentorError(f"anchor_scores.score_fn returned {value!r} for candidate {i}; "
                              f"expected a number") from None
        if not math.isfinite(value):
            raise MentorError(f"anchor_scores.score_fn returned {value} for candidate {i}; "
                              f"expected a finite score")
        out.append(value)
    return out


def levenshtein(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Edit distance (insertions, deletions, substitutions) between two strings or token lists."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def edit_similarity(a: Sequence[Any], b: Sequence[Any]) -> float:
    """``1 - levenshtein(a, b) / max(len(a), len(b))`` in ``[0, 1]``; 1 for two empty inputs.

    The normalised Levenshtein similarity behind ANLS (TAIL, paper 23) and the oracle anchor
    score of PU-RL (paper 31).
    """
    n = max(len(a), len(b))
    if n == 0:
        return 1.0
    return 1.0 - levenshtein(a, b) / n
