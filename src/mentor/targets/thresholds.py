"""Admission of pseudo-labels: fixed, class-adaptive and self-adaptive confidence thresholds,
soft confidence weights (METHODS.md §59.3: one ``scores -> (mask, weights)`` family).

Each refiner maps the teacher's targets of a batch to targets whose ``mask`` (admitted rows)
and ``weight`` (per-row weights) the losses apply. Only unlabeled rows are judged: rows with a
visible label keep their true label, mask ``True`` and weight 1. Refiners with state
(class-wise counts, running means) are bound to the training pool by :meth:`bind` when a run
starts, expose it through ``state_dict()`` / ``load_state_dict()`` (saved in checkpoints),
and show their current per-class thresholds as ``thresholds`` (pseudo-label telemetry).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..contracts import Batch, Targets
from .._util.dist import cat_all
from ..errors import ParameterError, check_param
from ..registry import REFINERS


def unlabeled_rows(batch: Batch, n: int, device) -> Tensor:
    """Boolean ``(B,)``: rows whose label the student may not see."""
    if batch.labeled is None:
        return torch.zeros(n, dtype=torch.bool, device=device)
    return ~batch.labeled


def confidence(targets: Targets) -> tuple[Tensor, Tensor, Tensor]:
    """Teacher probabilities ``(B, C)``, their maximum and arg-max."""
    probs = F.softmax(targets.logits.float(), -1)
    conf, pred = probs.max(-1)
    return probs, conf, pred


def _admit(targets: Targets, unl: Tensor, keep: Tensor, weight: Tensor | None = None) -> Targets:
    """Targets whose unlabeled rows are masked by ``keep`` (labeled rows stay admitted)."""
    mask = torch.where(unl, keep, torch.ones_like(keep))
    if targets.mask is not None:
        mask = mask & targets.mask
    if weight is not None:
        weight = torch.where(unl, weight, torch.ones_like(weight))
        if targets.weight is not None:
            weight = weight * targets.weight
    return targets.with_(mask=mask, weight=weight if weight is not None else targets.weight)


def hard_logits(labels: Tensor, num_classes: int, dtype=torch.float32) -> Tensor:
    """Log-probabilities of one-hot targets (floored at 1e-12): a hard label for any teacher
    loss that reads distributions."""
    out = torch.full((len(labels), num_classes), math.log(1e-12), dtype=dtype,
                     device=labels.device)
    return out.scatter_(1, labels[:, None], 0.0)


@REFINERS.register("threshold", paper="Sohn et al. 2020, FixMatch (tau = 0.95); band split: "
                   "LPLD, PS-TTL",
                   description="admit unlabeled rows whose teacher confidence >= threshold; with "
                   "'low', a band split: high = hard label, middle = soft target, low = ignored")
class ConfidenceThreshold:
    """Fixed confidence threshold with an optional band split.

    Without ``low``: unlabeled rows with ``max p_t >= threshold`` are admitted (FixMatch).
    With ``low``: rows with ``max p_t >= threshold`` get their hard label (one-hot target),
    rows in ``[low, threshold)`` keep the teacher's soft distribution with weight
    ``middle_weight``, rows below ``low`` are ignored. ``threshold = 1.0`` admits nothing
    unless a teacher is exactly one-hot.
    """

    def __init__(self, threshold: float = 0.95, low: float | None = None,
                 middle_weight: float = 1.0):
        check_param("threshold", "threshold", threshold, low=0, high=1)
        if low is not None:
            check_param("threshold", "low", low, low=0, high=threshold)
        check_param("threshold", "middle_weight", middle_weight, low=0)
        self.threshold, self.low, self.middle_weight = float(threshold), low, float(middle_weight)
        self.thresholds: Tensor | None = None

    def __call__(self, targets: Targets, batch: Batch) -> Targets:
        unl = unlabeled_rows(batch, len(targets.logits), targets.logits.device)
        _, conf, pred = confidence(targets)
        c = targets.logits.shape[-1]
        self.thresholds = torch.full((c,), self.threshold)
        high = conf >= self.threshold
        if self.low is None:
            return _admit(targets, unl, high)
        middle = (conf >= self.low) & ~high
        hard = unl & high
        logits = torch.where(hard[:, None], hard_logits(pred, c, targets.logits.dtype),
                             targets.logits)
        weight = torch.where(middle, torch.full_like(conf, self.middle_weight),
                             torch.ones_like(conf))
        return _admit(targets.with_(logits=logits), unl, high | middle, weight)


class _Stateful:
    """State as named tensors, saved in checkpoints."""

    _state: tuple[str, ...] = ()

    def state_dict(self) -> dict[str, Tensor]:
        return {k: getattr(self, k).detach().cpu().clone() for k in self._state}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        missing = [k for k in self._state if k not in state]
        if missing:
            raise ParameterError(f"{type(self).__name__} state lacks {missing[0]!r}")
        for k in self._state:
            setattr(self, k, state[k].clone())


@REFINERS.register("flexmatch", paper="Zhang et al. 2021, FlexMatch: curriculum pseudo "
                   "labeling (NeurIPS)",
                   description="class-wise thresholds tau*M(beta_c), beta_c from how many "
                   "unlabeled samples each class has confidently claimed so far")
class FlexMatchThreshold(_Stateful):
    """Curriculum pseudo-labeling. Every unlabeled sample remembers the last class it was
    predicted with confidence ``>= threshold`` (``selected``, -1 for none). The learning effect
    of class c is ``beta_c = sigma_c / max(max_k sigma_k, n_unused)`` (``warmup``; without
    warm-up the unused count is left out of the maximum) and its threshold is
    ``threshold * beta_c / (2 - beta_c)`` (the convex mapping). The mask of a batch uses the
    thresholds before this batch's predictions are recorded, as in the reference code, and
    ``beta`` is kept unchanged while one value (a class, or "none") holds the whole pool.
    """

    _state = ("selected", "acc")

    def __init__(self, threshold: float = 0.95, warmup: bool = True):
        check_param("flexmatch", "threshold", threshold, low=0, high=1)
        self.threshold, self.warmup = float(threshold), bool(warmup)
        self.selected = torch.empty(0, dtype=torch.long)
        self.acc = torch.empty(0, dtype=torch.float64)
        self.pool: Tensor | None = None
        self.num_classes = 0
        self.thresholds: Tensor | None = None

    def bind(self, labeled: Tensor, labels: Tensor, num_classes: int) -> None:
        self.pool = ~labeled.cpu()  # the unlabeled rows of the training split
        self.num_classes = num_classes
        self.selected = torch.full((len(labeled),), -1, dtype=torch.long)
        self.acc = torch.zeros(num_classes, dtype=torch.float64)

    def beta(self) -> Tensor:
        """The current learning effects ``beta_c``."""
        return self.acc

    def _update(self) -> None:
        sel = self.selected[self.pool]
        counts = torch.bincount(sel[sel >= 0], minlength=self.num_classes).double()
        unused = float((sel < 0).sum())
        if max(float(counts.max()), unused) >= len(sel):
            return  # one value holds the whole pool: keep the previous beta (reference)
        top = max(float(counts.max()), unused) if self.warmup else float(counts.max())
        self.acc = counts / top

    def __call__(self, targets: Targets, batch: Batch) -> Targets:
        unl = unlabeled_rows(batch, len(targets.logits), targets.logits.device)
        _, conf, pred = confidence(targets)
        beta = self.beta()
        thr = self.threshold * beta / (2.0 - beta)
        self.thresholds = thr.float()
        keep = conf >= thr.to(conf.device, conf.dtype)[pred]
        sure = unl & (conf >= self.threshold)  # every process's rows update the memory
        rows, labels = cat_all(batch.index[sure]).cpu(), cat_all(pred[sure]).cpu()
        if len(rows):
            self.selected[rows] = labels
        self._update()
        return _admit(targets, unl, keep)


@REFINERS.register("freematch", paper="Wang et al. 2023, FreeMatch: self-adaptive "
                   "thresholding (ICLR)",
                   description="global threshold = EMA of the mean confidence, scaled per class "
                   "by the EMA class distribution of the predictions")
class FreeMatchThreshold(_Stateful):
    """Self-adaptive thresholding. Per unlabeled batch: ``tau ← m·tau + (1−m)·mean(max p)``,
    ``p̃ ← m·p̃ + (1−m)·mean(p)``; class c's threshold is ``tau · p̃_c / max_k p̃_k``. The
    state is updated with the batch before its mask is computed (reference code order);
    ``tau`` and ``p̃`` start at ``1/C`` and uniform. (FreeMatch's fairness loss is not part
    of this refiner.)"""

    _state = ("tau", "p_model", "label_hist")

    def __init__(self, ema: float = 0.999):
        check_param("freematch", "ema", ema, low=0, high=1, high_open=True)
        self.m = float(ema)
        self.tau = self.p_model = self.label_hist = torch.empty(0)
        self.thresholds: Tensor | None = None

    def bind(self, labeled: Tensor, labels: Tensor, num_classes: int) -> None:
        self.p_model = torch.full((num_classes,), 1.0 / num_classes, dtype=torch.float64)
        self.label_hist = self.p_model.clone()
        self.tau = torch.tensor(1.0 / num_classes, dtype=torch.float64)

    def __call__(self, targets: Targets, batch: Batch) -> Targets:
        unl = unlabeled_rows(batch, len(targets.logits), targets.logits.device)
        probs, conf, pred = confidence(targets)
        pu = cat_all(probs[unl].double()).cpu()
        if len(pu):
            m = self.m
            self.tau = m * self.tau + (1 - m) * pu.max(-1).values.mean()
            self.p_model = m * self.p_model + (1 - m) * pu.mean(0)
            hist = torch.bincount(pu.argmax(-1), minlength=len(self.p_model)).double()
            self.label_hist = m * self.label_hist + (1 - m) * hist / hist.sum()
        thr = self.tau * self.p_model / self.p_model.max()
        self.thresholds = thr.float()
        return _admit(targets, unl, conf >= thr.to(conf.device, conf.dtype)[pred])


@REFINERS.register("softmatch", paper="Chen et al. 2023, SoftMatch: addressing the "
                   "quantity-quality trade-off (ICLR)",
                   description="every pseudo-label weighted by a truncated Gaussian of its "
                   "confidence, mean and variance tracked by EMA")
class SoftMatchWeight(_Stateful):
    """``w = exp(−(min(max p − mu, 0))² / (2 var / n_sigma²))``: confident rows get weight 1,
    less confident ones a Gaussian falloff; ``mu`` and ``var`` are EMAs (momentum ``ema``) of
    the batch mean and unbiased variance of ``max p`` over unlabeled rows, starting at ``1/C``
    and 1. Updated with the batch before weighting (reference code order)."""

    _state = ("mu", "var")

    def __init__(self, ema: float = 0.999, n_sigma: float = 2.0):
        check_param("softmatch", "ema", ema, low=0, high=1, high_open=True)
        check_param("softmatch", "n_sigma", n_sigma, low=0, low_open=True)
        self.m, self.n_sigma = float(ema), float(n_sigma)
        self.mu = self.var = torch.empty(0)
        self.thresholds: Tensor | None = None

    def bind(self, labeled: Tensor, labels: Tensor, num_classes: int) -> None:
        self.mu = torch.tensor(1.0 / num_classes, dtype=torch.float64)
        self.var = torch.tensor(1.0, dtype=torch.float64)
        self.num_classes = num_classes

    def __call__(self, targets: Targets, batch: Batch) -> Targets:
        unl = unlabeled_rows(batch, len(targets.logits), targets.logits.device)
        _, conf, _ = confidence(targets)
        cu = cat_all(conf[unl].double()).cpu()
        if len(cu) > 1:
            self.mu = self.m * self.mu + (1 - self.m) * cu.mean()
            self.var = self.m * self.var + (1 - self.m) * cu.var(unbiased=True)
        mu = float(self.mu)
        var = float(self.var)
        self.thresholds = torch.full((targets.logits.shape[-1],), mu)
        gap = (conf.double() - mu).clamp(max=0.0)
        weight = torch.exp(-gap.pow(2) / (2 * var / self.n_sigma ** 2)).to(conf.dtype)
        return _admit(targets, unl, torch.ones_like(unl), weight)


@REFINERS.register("confidence_weight", paper="Soft Teacher (Xu et al. 2021, ICCV): "
                   "targets weighted by the teacher's own probability",
                   description="weight every pseudo-label by the teacher's confidence "
                   "(max probability) to a power")
class ConfidenceWeight:
    """``w = (max p_t)^power`` on unlabeled rows: no hard cut, uncertain pseudo-labels count
    less. Soft Teacher weights each background proposal by the teacher's background score;
    for classification the analogue weights each pseudo-label by its own probability."""

    def __init__(self, power: float = 1.0):
        check_param("confidence_weight", "power", power, low=0)
        self.power = float(power)

    def __call__(self, targets: Targets, batch: Batch) -> Targets:
        unl = unlabeled_rows(batch, len(targets.logits), targets.logits.device)
        _, conf, _ = confidence(targets)
        return _admit(targets, unl, torch.ones_like(unl), conf.pow(self.power))


@REFINERS.register("gmm_threshold", paper="Wang et al. 2023, Consistent-Teacher (CVPR)",
                   description="per-class threshold from a 2-component Gaussian mixture fitted "
                   "to each class's recent teacher confidences")
class GMMThreshold(_Stateful):
    """Per class, a FIFO buffer of the last ``buffer`` teacher confidences of unlabeled rows
    predicted as that class; every ``refit_every`` steps a 2-component GMM is fitted to each
    buffer (``means_init = [[min], [max]]``, weights 1/2, precisions 1, as Consistent-Teacher)
    and the threshold becomes, with ``policy='high'``, the high component's most likely score
    (the smallest high-component score at or above it), with ``policy='middle'`` the smallest
    high-component score. Fewer than 4 scores or an empty high component: ``fallback``
    (Consistent-Teacher's ``given_gt_thr`` is 0). The mask of a batch uses the thresholds
    fitted before it."""

    _state = ("scores", "count", "thresholds_now", "calls")

    def __init__(self, buffer: int = 100, refit_every: int = 10,
                 policy: str = "high", fallback: float = 0.0):
        check_param("gmm_threshold", "buffer", buffer, low=4)
        check_param("gmm_threshold", "refit_every", refit_every, low=1)
        check_param("gmm_threshold", "fallback", fallback, low=0, high=1)
        if policy not in ("high", "middle"):
            raise ParameterError(f"gmm_threshold.policy must be 'high' or 'middle', got "
                                 f"{policy!r}")
        self.size, self.refit_every = int(buffer), int(refit_every)
        self.policy, self.fallback = policy, float(fallback)
        self.scores = self.count = self.thresholds_now = self.calls = torch.empty(0)
        self.thresholds: Tensor | None = None

    def bind(self, labeled: Tensor, labels: Tensor, num_classes: int) -> None:
        self.scores = torch.zeros(num_classes, self.size, dtype=torch.float64)
        self.count = torch.zeros(num_classes, dtype=torch.long)  # scores pushed so far
        self.thresholds_now = torch.full((num_classes,), self.fallback, dtype=torch.float64)
        self.calls = torch.zeros((), dtype=torch.long)

    def _push(self, conf: Tensor, pred: Tensor) -> None:
        for c in pred.unique().tolist():
            vals = conf[pred == c][-self.size:]
            k = len(vals)
            pos = (int(self.count[c]) + torch.arange(k)) % self.size
            self.scores[c, pos] = vals
            self.count[c] += k

    def _refit(self) -> None:
        for c in range(len(self.count)):
            n = min(int(self.count[c]), self.size)
            self.thresholds_now[c] = gmm_threshold(self.scores[c, :n].numpy(), self.policy,
                                                   self.fallback)

    def __call__(self, targets: Targets, batch: Batch) -> Targets:
        unl = unlabeled_rows(batch, len(targets.logits), targets.logits.device)
        _, conf, pred = confidence(targets)
        thr = self.thresholds_now
        self.thresholds = thr.float()
        keep = conf >= thr.to(conf.device, conf.dtype)[pred]
        conf_all, pred_all = cat_all(conf[unl].double()).cpu(), cat_all(pred[unl]).cpu()
        if len(conf_all):
            self._push(conf_all, pred_all)
        self.calls += 1
        if int(self.calls) % self.refit_every == 0:
            self._refit()
        return _admit(targets, unl, keep)


def gmm_threshold(scores: np.ndarray, policy: str = "high", fallback: float = 0.0) -> float:
    """Consistent-Teacher's threshold of one class's scores (see :class:`GMMThreshold`)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1, 1)
    if len(scores) < 4 or float(scores.max() - scores.min()) < 1e-12:
        return fallback
    from sklearn.mixture import GaussianMixture
    gmm = GaussianMixture(2, weights_init=[0.5, 0.5],
                          means_init=[[float(scores.min())], [float(scores.max())]],
                          precisions_init=[[[1.0]], [[1.0]]], random_state=0)
    gmm.fit(scores)
    high = int(np.argmax(gmm.means_[:, 0]))
    assign = gmm.predict(scores)
    in_high = assign == high
    if not in_high.any():
        return fallback
    if policy == "middle":
        return float(scores[in_high].min())
    loglik = gmm.score_samples(scores)
    loglik[~in_high] = -np.inf
    best = scores[int(np.argmax(loglik)), 0]
    return float(scores[in_high & (scores[:, 0] >= best)].min())
