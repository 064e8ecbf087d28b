"""Easy-to-hard admission of pseudo-labels (S²Teacher, METHODS.md §20 [recon for
classification]) and learned correction of pseudo-labels (Mind the Gap §10, Stable Mean
Teacher §17)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..contracts import Batch, Targets
from .._util.dist import cat_all
from ..errors import ParameterError, check_param
from ..registry import REFINERS
from .thresholds import _admit, _Stateful, confidence, unlabeled_rows


@REFINERS.register("curriculum", paper="S²Teacher: entropy-Gaussian filter "
                   "with an easy-to-hard schedule and frozen stable labels [recon]",
                   description="admit unlabeled rows whose teacher entropy is below mu - k*sigma "
                   "of the running entropy distribution, k falling over epochs (easy to hard); "
                   "labels stable for several visits are frozen")
class CurriculumAdmission(_Stateful):
    """Admission by entropy: ``H(p_t) < mu − k_e·sigma``, with ``mu``, ``sigma²`` running
    (EMA ``ema``, the first batch sets them) over unlabeled rows and ``k_e`` moving linearly
    from ``k_start`` to ``k_end`` over ``ramp_epochs`` epochs, so the easiest rows come first.
    A row admitted with the same label ``freeze_after`` visits in a row is frozen: it stays
    admitted with that label from then on (its pseudo-GT)."""

    _state = ("mu", "var", "started", "last", "stable", "frozen")

    def __init__(self, k_start: float = 1.0, k_end: float = -1.0, ramp_epochs: int = 20,
                 freeze_after: int = 3, ema: float = 0.99):
        check_param("curriculum", "ramp_epochs", ramp_epochs, low=1)
        check_param("curriculum", "freeze_after", freeze_after, low=0)
        check_param("curriculum", "ema", ema, low=0, high=1, high_open=True)
        if k_end > k_start:
            raise ParameterError(f"curriculum.k_end must be <= k_start ({k_start}) so admission "
                                 f"grows from easy to hard, got {k_end}")
        self.k_start, self.k_end, self.ramp = float(k_start), float(k_end), int(ramp_epochs)
        self.freeze_after, self.m = int(freeze_after), float(ema)
        self.mu = self.var = self.started = torch.empty(0)
        self.last = self.stable = self.frozen = torch.empty(0, dtype=torch.long)
        self.thresholds = None

    def bind(self, labeled: Tensor, labels: Tensor, num_classes: int) -> None:
        n = len(labeled)
        self.mu = torch.zeros((), dtype=torch.float64)
        self.var = torch.ones((), dtype=torch.float64)
        self.started = torch.zeros((), dtype=torch.bool)
        self.last = torch.full((n,), -1, dtype=torch.long)
        self.stable = torch.zeros(n, dtype=torch.long)
        self.frozen = torch.full((n,), -1, dtype=torch.long)

    def k_at(self, epoch: int) -> float:
        t = min(epoch / self.ramp, 1.0)
        return self.k_start + (self.k_end - self.k_start) * t

    def __call__(self, targets: Targets, batch: Batch) -> Targets:
        unl = unlabeled_rows(batch, len(targets.logits), targets.logits.device)
        probs, _, pred = confidence(targets)
        h = -(probs * probs.clamp_min(1e-12).log()).sum(-1).double()
        hu = cat_all(h[unl]).cpu()
        if len(hu) > 1:
            if not bool(self.started):
                self.mu, self.var = hu.mean(), hu.var(unbiased=True)
                self.started = torch.ones((), dtype=torch.bool)
            else:
                self.mu = self.m * self.mu + (1 - self.m) * hu.mean()
                self.var = self.m * self.var + (1 - self.m) * hu.var(unbiased=True)
        cut = float(self.mu) - self.k_at(batch.epoch) * math.sqrt(float(self.var))
        keep = (h < cut).to(unl.device)
        idx = batch.index.cpu()
        frozen = self.frozen[idx].to(pred.device)
        is_frozen = unl & (frozen >= 0)
        labels = torch.where(is_frozen, frozen, targets.labels)
        if self.freeze_after:
            seen = unl & keep & ~is_frozen.to(unl.device)
            rows = cat_all(batch.index[seen]).cpu()
            lab = cat_all(pred[seen]).cpu()
            same = self.last[rows] == lab
            self.stable[rows] = torch.where(same, self.stable[rows] + 1, torch.ones_like(lab))
            self.last[rows] = lab
            done = rows[self.stable[rows] >= self.freeze_after]
            self.frozen[done] = self.last[done]
        return _admit(targets.with_(labels=labels), unl, keep | is_frozen)


@REFINERS.register("learned_corrector", paper="Mind the Gap and Stable Mean "
                   "Teacher: a small model trained on labeled data corrects pseudo-labels",
                   description="a multinomial logistic regression on the teacher's "
                   "log-probabilities, fitted on labeled rows (teacher output -> true label), "
                   "rewrites the unlabeled rows' distributions")
class LearnedCorrector(_Stateful):
    """Pairs ``(log p_t(x), y)`` from labeled rows go into a FIFO buffer of ``buffer`` pairs
    (the teacher's own predictions as the noisy source: the "own-prediction" pair source);
    every ``refit_every`` steps, once ``min_pairs`` are stored, ``W, b`` of
    ``softmax(W·log p_t + b)`` are fitted by full-batch gradient descent (``iters`` Adam steps,
    L2 ``l2`` towards the identity map). Before the first fit the map is the identity (no
    correction). Unlabeled rows get the corrected distribution as logits and its arg-max as
    label."""

    _state = ("W", "b", "pairs_x", "pairs_y", "count", "calls")

    def __init__(self, buffer: int = 2000, refit_every: int = 20, min_pairs: int = 50,
                 iters: int = 200, lr: float = 0.05, l2: float = 1e-3):
        for name, v, lo in (("buffer", buffer, 1), ("refit_every", refit_every, 1),
                            ("min_pairs", min_pairs, 1), ("iters", iters, 1)):
            check_param("learned_corrector", name, v, low=lo)
        check_param("learned_corrector", "lr", lr, low=0, low_open=True)
        check_param("learned_corrector", "l2", l2, low=0)
        self.size, self.refit_every, self.min_pairs = int(buffer), int(refit_every), int(min_pairs)
        self.iters, self.lr, self.l2 = int(iters), float(lr), float(l2)
        self.W = self.b = self.pairs_x = torch.empty(0)
        self.pairs_y = self.count = self.calls = torch.empty(0, dtype=torch.long)

    def bind(self, labeled: Tensor, labels: Tensor, num_classes: int) -> None:
        c = num_classes
        self.W, self.b = torch.eye(c, dtype=torch.float64), torch.zeros(c, dtype=torch.float64)
        self.pairs_x = torch.zeros(self.size, c, dtype=torch.float64)
        self.pairs_y = torch.zeros(self.size, dtype=torch.long)
        self.count = torch.zeros((), dtype=torch.long)
        self.calls = torch.zeros((), dtype=torch.long)

    def correct(self, logits: Tensor) -> Tensor:
        """Corrected log-probabilities for teacher logits ``(B, C)``."""
        lp = F.log_softmax(logits.double(), -1).clamp_min(-30.0)
        w, b = self.W.to(lp.device), self.b.to(lp.device)
        return F.log_softmax(lp @ w.T + b, -1)

    def fit(self) -> None:
        n = min(int(self.count), self.size)
        x, y = self.pairs_x[:n], self.pairs_y[:n]
        c = x.shape[1]
        eye = torch.eye(c, dtype=torch.float64)
        w = self.W.clone().requires_grad_(True)
        b = self.b.clone().requires_grad_(True)
        opt = torch.optim.Adam([w, b], lr=self.lr)
        for _ in range(self.iters):
            opt.zero_grad()
            loss = F.cross_entropy(x @ w.T + b, y) + self.l2 * (w - eye).pow(2).sum()
            loss.backward()
            opt.step()
        self.W, self.b = w.detach(), b.detach()

    def __call__(self, targets: Targets, batch: Batch) -> Targets:
        unl = unlabeled_rows(batch, len(targets.logits), targets.logits.device)
        lab = ~unl if batch.labeled is not None else torch.zeros_like(unl)
        lp = cat_all(F.log_softmax(targets.logits.double(), -1).clamp_min(-30.0)[lab]).cpu()
        ys = cat_all(batch.y[lab]).cpu()
        if len(lp):
            lp, ys = lp[-self.size:], ys[-self.size:]  # a batch larger than the buffer
            k = len(lp)
            pos = (int(self.count) + torch.arange(k)) % self.size
            self.pairs_x[pos] = lp
            self.pairs_y[pos] = ys
            self.count += k
        self.calls += 1
        if int(self.calls) % self.refit_every == 0 and int(self.count) >= self.min_pairs:
            self.fit()
        if not unl.any():
            return targets
        fixed = self.correct(targets.logits).to(targets.logits.dtype)
        logits = torch.where(unl[:, None], fixed, targets.logits)
        labels = torch.where(unl, fixed.argmax(-1), targets.labels)
        return targets.with_(logits=logits, labels=labels)
