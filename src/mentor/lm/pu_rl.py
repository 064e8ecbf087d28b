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

from ..engine.loop import run_training
from ..errors import MentorError, TrainingFault, check_param
from .distill import LMResult, result_of
from .generate import complete, logits_of
from .regimes import PeriodFeed, period_training
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
    """Train ``student`` with DPO on anchor-induced preferences among its own samples, on the
    engine's one loop (:func:`mentor.engine.loop.run_training`, :class:`PreferenceFeed`).

    ``anchor_fn(prompts (B, P), new_tokens) -> (B, new_tokens)`` is the black-box teacher
    (called once per prompt). Returns an :class:`~mentor.lm.distill.LMResult` holding the
    student at its best validation exact match; ``teacher_queries`` counts anchor calls."""
    if not (callable(score) or score in ("edit", "random")):
        raise MentorError(f"score {score!r} is unknown; expected 'edit', 'random' or a "
                          "callable (candidate_ids, anchor_ids) -> float")
    check_param("preference_distill", "k", k, low=2)
    check_param("preference_distill", "steps", steps, low=1)
    check_param("preference_distill", "prompts_per_step", prompts_per_step, low=1)
    check_param("preference_distill", "eval_every", eval_every, low=1)
    torch.manual_seed(seed)
    ref = copy.deepcopy(student).eval()
    for q in ref.parameters():
        q.requires_grad_(False)
    tr = period_training(student, seed, steps=steps, eval_every=eval_every,
                         batch_size=prompts_per_step, lr=lr, validated=val is not None)
    feed = PreferenceFeed(tr, ref, anchor_fn, train, val, k=k, score=score, pairs=pairs,
                          steps=steps, eval_every=eval_every, prompts_per_step=prompts_per_step,
                          beta=beta, sample_temperature=sample_temperature)
    tr.feed = feed
    return result_of(run_training(tr), feed.queries)


class PreferenceFeed(PeriodFeed):
    """PU-RL's step feed (the contract :class:`mentor.contracts.StepFeed`): per step,
    ``prompts_per_step`` prompts drawn from the training's generator, one anchor each from
    the teacher, ``k`` student samples each, ranked against the anchor into (chosen,
    rejected) pairs; the micro-batch is the DPO loss against the frozen reference ``ref``.
    A step whose candidates give no pair has no micro-batch (the optimizer step changes
    nothing). Epochs are evaluation periods of ``eval_every`` steps."""

    def __init__(self, tr, ref, anchor_fn, train: TokenData, val: TokenData | None, *, k,
                 score, pairs, steps, eval_every, prompts_per_step, beta, sample_temperature):
        super().__init__(tr, val, steps, eval_every)
        self.ref, self.anchor_fn, self.train = ref, anchor_fn, train
        self.k, self.score, self.pairs, self.beta = k, score, pairs, beta
        self.n = prompts_per_step
        self.sample_temperature = sample_temperature
        self.queries = 0

    def steps(self, progress, epoch: int):
        for _ in range(progress.batch, self.steps_in(epoch)):
            yield self._step()

    def _step(self) -> list:
        tr, train, g, k = self.tr, self.train, self.tr.gen, self.k
        p = train.prompt_len
        new = train.ids.shape[1] - p
        rows = torch.randint(0, len(train), (self.n,), generator=g)
        prompts = train.ids[rows, :p]
        anchors = self.anchor_fn(prompts, new)
        self.queries += len(prompts)
        cands = complete(tr.raw_model, prompts.repeat_interleave(k, 0), new, greedy=False,
                         temperature=self.sample_temperature, generator=g)
        chosen, rejected = [], []
        for i in range(self.n):
            group = cands[i * k:(i + 1) * k, p:].tolist()
            a = anchors[i].tolist()
            if self.score == "edit":
                s = [edit_similarity(c, a) for c in group]
            elif self.score == "random":
                s = torch.rand(k, generator=g).tolist()
            else:
                s = [float(self.score(c, a)) for c in group]
            for c, r in preference_pairs(s, mode=self.pairs):
                chosen.append(i * k + c)
                rejected.append(i * k + r)
        if not chosen:
            return []
        ci, ri = torch.tensor(chosen), torch.tensor(rejected)

        def micro():
            tr.model.train()
            lp = _completion_logprob(tr.model, cands, p)
            with torch.no_grad():
                lr_ = _completion_logprob(self.ref, cands, p)
            loss = dpo_loss(lp[ci], lp[ri], lr_[ci], lr_[ri], beta=self.beta)

            def fault():
                raise TrainingFault(f"the DPO loss became non-finite ({float(loss)}) "
                                    "(component: preference_distill)")
            return loss, loss.detach(), fault
        return [micro]
