"""Preference distillation from a black-box teacher: PU-RL (METHODS.md §31, paper 31).

One teacher call per prompt gives an **anchor** completion (a positive example); the student
samples ``k`` candidates (unlabeled); each candidate is scored against the anchor
(``score="edit"``: token edit similarity, the oracle form; ``"random"``: a seeded random
ranking, the paper's sanity check; or any ``(candidate_ids, anchor_ids) -> float``); the
ranking gives (chosen, rejected) pairs; the student minimizes the DPO loss (Rafailov et al.
2023) against a frozen copy of itself taken before training (the reference policy).

The paper's own scorer is the student judging its candidates relative to the anchor; that
needs an instruction-following student, so the testbed uses the edit-similarity form the
catalogue names as the upper bound `[recon]`.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import Tensor, nn

from ..errors import MentorError, check_param
from .distill import LMResult
from .generate import complete, logits_of
from .preference import dpo_loss, edit_similarity, preference_pairs, sequence_logprob
from .testbed import TokenData


def _completion_logprob(model, ids: Tensor, p: int) -> Tensor:
    z = logits_of(model, ids[:, :-1])
    mask = torch.zeros_like(ids[:, 1:], dtype=torch.bool)
    mask[:, p - 1:] = True
    return sequence_logprob(z, ids[:, 1:], mask)


def preference_distill(student: nn.Module, anchor_fn: Callable[[Tensor, int], Tensor],
                       train: TokenData, *, val: TokenData | None = None, k: int = 8,
                       score: str | Callable = "edit", pairs: str = "all",
                       steps: int = 100, prompts_per_step: int = 8, beta: float = 0.1,
                       lr: float = 1e-3, sample_temperature: float = 1.0,
                       eval_every: int = 25, seed: int = 0) -> LMResult:
    """Train ``student`` with DPO on anchor-induced preferences among its own samples.

    ``anchor_fn(prompts (B, P), new_tokens) -> (B, new_tokens)`` is the black-box teacher
    (called once per prompt). Returns an :class:`~mentor.lm.distill.LMResult` holding the
    student at its best validation exact match; ``teacher_queries`` counts anchor calls."""
    if not (callable(score) or score in ("edit", "random")):
        raise MentorError(f"score {score!r} is unknown; expected 'edit', 'random' or a "
                          "callable (candidate_ids, anchor_ids) -> float")
    check_param("preference_distill", "k", k, low=2)
    check_param("preference_distill", "steps", steps, low=1)
    check_param("preference_distill", "prompts_per_step", prompts_per_step, low=1)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    ref = copy.deepcopy(student).eval()
    for q in ref.parameters():
        q.requires_grad_(False)
    p = train.prompt_len
    new = train.ids.shape[1] - p
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    res = LMResult(student)
    for step in range(1, steps + 1):
        rows = torch.randint(0, len(train), (prompts_per_step,), generator=g)
        prompts = train.ids[rows, :p]
        anchors = anchor_fn(prompts, new)
        res.teacher_queries += len(prompts)
        cands = complete(student, prompts.repeat_interleave(k, 0), new, greedy=False,
                         temperature=sample_temperature, generator=g)
        chosen, rejected = [], []
        for i in range(prompts_per_step):
            group = cands[i * k:(i + 1) * k, p:].tolist()
            a = anchors[i].tolist()
            if score == "edit":
                s = [edit_similarity(c, a) for c in group]
            elif score == "random":
                s = torch.rand(k, generator=g).tolist()
            else:
                s = [float(score(c, a)) for c in group]
            for c, r in preference_pairs(s, mode=pairs):
                chosen.append(i * k + c)
                rejected.append(i * k + r)
        if not chosen:
            res.losses.append(0.0)
            continue
        ci, ri = torch.tensor(chosen), torch.tensor(rejected)
        student.train()
        lp = _completion_logprob(student, cands, p)
        with torch.no_grad():
            lr_ = _completion_logprob(ref, cands, p)
        loss = dpo_loss(lp[ci], lp[ri], lr_[ci], lr_[ri], beta=beta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        res.losses.append(float(loss.detach()))
        if val is not None and (step % eval_every == 0 or step == steps):
            res.evaluate(step, val)
    res.restore_best()
    return res
