"""Selectors for active and selective distillation (METHODS.md §58.4): which pool rows the
teacher labels, the human (oracle) labels, or the student keeps.

Every selector has ``score(pool, teacher, student) -> scores`` (higher = picked first) and
``pick(scores, budget) -> indices``; greedy ones (k-center, probabilistic coreset) pick from
the geometry their ``score`` stored. :func:`select` runs both and checks the budget.
Selectors that score with the teacher's outputs say so with ``needs_teacher = True``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..contracts import teacher_logits
from ..errors import MentorError, check_param
from ..registry import SELECTORS


@dataclass
class Pool:
    """Candidate rows ``x`` (their positions in the training split: ``index``) and the rows
    already labeled, ``labeled_x`` (for coverage-based selectors)."""

    x: Tensor
    index: Tensor
    labeled_x: Tensor | None = None

    def __len__(self) -> int:
        return len(self.x)


def top(scores: Tensor, budget: int) -> Tensor:
    """Indices of the ``budget`` highest scores, ascending (ties by position)."""
    check_param("selector", "budget", budget, low=1, high=len(scores))
    order = torch.argsort(scores, descending=True, stable=True)
    return order[:int(budget)].sort().values


@torch.no_grad()
def _probs(model: nn.Module, x: Tensor) -> Tensor:
    was = model.training
    model.eval()
    out = model(x)
    model.train(was)
    if isinstance(out, dict):
        out = out["logits"]
    return F.softmax(out.float(), -1)


def _teacher_probs(teacher, pool: Pool) -> Tensor:
    if teacher is None:
        raise MentorError("this selector scores with the teacher's outputs, but no teacher was "
                          "given; expected a teacher")
    with torch.no_grad():
        return F.softmax(teacher_logits(teacher, pool.x, pool.index).float(), -1)


def margin(p: Tensor) -> Tensor:
    """Top-1 minus top-2 probability per row."""
    two = p.topk(2, dim=-1).values
    return two[:, 0] - two[:, 1]


@SELECTORS.register("teacher_confidence", description="rows the teacher is most sure of "
                    "(its labels are most likely right)")
class TeacherConfidence:
    needs_teacher = True  # scores with the teacher's outputs

    def score(self, pool: Pool, teacher=None, student=None) -> Tensor:
        return _teacher_probs(teacher, pool).amax(-1)

    pick = staticmethod(top)


@SELECTORS.register("entropy", description="rows where the student's prediction has the "
                    "highest entropy (uncertainty sampling)")
class StudentEntropy:
    def score(self, pool: Pool, teacher=None, student=None) -> Tensor:
        p = _probs(student, pool.x)
        return -(p * p.clamp_min(1e-12).log()).sum(-1)

    pick = staticmethod(top)


@SELECTORS.register("margin", description="rows with the smallest gap between the student's "
                    "two most likely classes")
class StudentMargin:
    def score(self, pool: Pool, teacher=None, student=None) -> Tensor:
        return 1.0 - margin(_probs(student, pool.x))

    pick = staticmethod(top)


def greedy_k_center(points: Tensor, centers: Tensor | None, budget: int) -> Tensor:
    """Greedy k-center: repeatedly take the point farthest from its nearest chosen point
    (starting from ``centers``, or from point 0 when there are none)."""
    check_param("selector", "budget", budget, low=1, high=len(points))
    pts = points.double()
    if centers is not None and len(centers):
        dist = torch.cdist(pts, centers.double()).amin(1)
        chosen: list[int] = []
    else:
        chosen = [0]
        dist = (pts - pts[0]).norm(dim=1)
    while len(chosen) < budget:
        i = int(dist.argmax())
        chosen.append(i)
        dist = torch.minimum(dist, (pts - pts[i]).norm(dim=1))
    return torch.tensor(sorted(chosen), dtype=torch.long)


def coverage_radius(points: Tensor, centers: Tensor) -> float:
    """The largest distance from a point to its nearest center."""
    return float(torch.cdist(points.double(), centers.double()).amin(1).max())


class _Greedy:
    """Selectors whose pick is greedy k-center on the space ``embed`` maps rows to."""

    def score(self, pool: Pool, teacher=None, student=None) -> Tensor:
        self._points = self.embed(pool.x, teacher, pool, student)
        self._centers = (self.embed(pool.labeled_x, teacher, None, student)
                         if pool.labeled_x is not None and len(pool.labeled_x) else None)
        d = (torch.cdist(self._points.double(), self._centers.double()).amin(1)
             if self._centers is not None else torch.zeros(len(pool)))
        return d

    def pick(self, scores: Tensor, budget: int) -> Tensor:
        return greedy_k_center(self._points, self._centers, budget)


@SELECTORS.register("kcenter", description="greedy k-center in input space (or a student "
                    "module's output): the picks cover the pool",
                    paper="Sener & Savarese 2018, Core-set active learning")
class KCenter(_Greedy):
    """``layer``: a dotted module path of the student whose output is the feature (forward
    hook); ``None``: the inputs themselves."""

    def __init__(self, layer: str | None = None):
        self.layer = layer

    def embed(self, x: Tensor, teacher, pool, student) -> Tensor:
        if self.layer is None:
            return x.reshape(len(x), -1)
        from ..features import resolve_module
        module = resolve_module(student, self.layer, "student")
        out = []
        handle = module.register_forward_hook(lambda m, i, o: out.append(o))
        try:
            _probs(student, x)
        finally:
            handle.remove()
        return out[0].reshape(len(x), -1).detach()


@SELECTORS.register("pcoreset", description="greedy k-center in the student's probability "
                    "space (the dual-head combination for a DHO student)",
                    paper="PCoreSet / ActiveKD (METHODS.md §51)")
class ProbabilisticCoreSet(_Greedy):
    def embed(self, x: Tensor, teacher, pool, student) -> Tensor:
        return _probs(student, x)  # a DualHead's eval output is its combination


@SELECTORS.register("rad", description="informativeness x teacher correctness: student "
                    "uncertainty (1 - margin) times the teacher's confidence",
                    paper="Robust Active Distillation (METHODS.md §30) [recon: the practical "
                    "form g*c, not the max-min solution]")
class RobustActiveDistillation:
    needs_teacher = True  # scores with the teacher's outputs

    def score(self, pool: Pool, teacher=None, student=None) -> Tensor:
        g = 1.0 - margin(_probs(student, pool.x))
        c = _teacher_probs(teacher, pool).amax(-1)
        return g * c

    pick = staticmethod(top)


def _per_class_minmax(v: Tensor, cls: Tensor, c: int) -> Tensor:
    out = torch.zeros_like(v)
    for k in range(c):
        m = cls == k
        if m.any():
            lo, hi = v[m].min(), v[m].max()
            out[m] = (v[m] - lo) / (hi - lo) if hi > lo else torch.ones_like(v[m])
    return out


@SELECTORS.register("llkd", description="rows whose teacher confidence and student "
                    "uncertainty both reach their class's mean; weights from both",
                    paper="LLKD (METHODS.md §47) [recon of the threshold form]")
class LLKD:
    """Per teacher class y: ``τ_T(y)`` = mean teacher confidence, ``τ_S(y)`` = mean student
    entropy of the rows labeled y. Selected: confidence ≥ τ_T and entropy ≥ τ_S. Weights
    ``norm(c)·norm(u)`` (min-max per class); ``score`` is the weight for selected rows and
    −1 for the others, so ``pick`` takes selected rows first, by weight."""

    needs_teacher = True  # scores with the teacher's outputs


    def score(self, pool: Pool, teacher=None, student=None) -> Tensor:
        pt = _teacher_probs(teacher, pool)
        c, y = pt.max(-1)
        ps = _probs(student, pool.x)
        u = -(ps * ps.clamp_min(1e-12).log()).sum(-1)
        k = pt.shape[-1]
        tau_t = torch.zeros(k)
        tau_s = torch.zeros(k)
        for cls in range(k):
            m = y == cls
            if m.any():
                tau_t[cls], tau_s[cls] = c[m].mean(), u[m].mean()
        chosen = (c >= tau_t[y]) & (u >= tau_s[y])
        self.selected = chosen
        self.weights = _per_class_minmax(c, y, k) * _per_class_minmax(u, y, k)
        return torch.where(chosen, self.weights, torch.full_like(c, -1.0))

    pick = staticmethod(top)


@SELECTORS.register("skills", description="weights from the student's error rate per "
                    "category (the teacher's class), diagnosed on rows with known labels",
                    paper="STAT, skill-targeted adaptive training (METHODS.md §34) [recon]")
class SkillProfile:
    """``fit(x, y, teacher, student)`` measures the student's error rate per category
    (category = the teacher's predicted class) on rows with known labels; ``score`` gives
    each pool row its category's error rate, so weak skills are picked (or weighted) first;
    ``weights(pool, teacher)`` normalises them to mean 1."""

    needs_teacher = True  # scores with the teacher's outputs


    def __init__(self):
        self.error: Tensor | None = None

    def fit(self, x: Tensor, y: Tensor, teacher, student) -> Tensor:
        cat = _teacher_probs(teacher, Pool(x, torch.arange(len(x)))).argmax(-1)
        wrong = (_probs(student, x).argmax(-1) != y).float()
        k = int(max(int(cat.max()), int(y.max())) + 1)
        err = torch.zeros(k)
        for c in range(k):
            m = cat == c
            err[c] = wrong[m].mean() if m.any() else wrong.mean()
        self.error = err
        return err

    def score(self, pool: Pool, teacher=None, student=None) -> Tensor:
        if self.error is None:
            raise MentorError("skills selector: call fit(x, y, teacher, student) on rows with "
                              "known labels first, to measure the student's error rates")
        cat = _teacher_probs(teacher, pool).argmax(-1)
        return self.error[cat.clamp_max(len(self.error) - 1)]

    def weights(self, pool: Pool, teacher=None, student=None) -> Tensor:
        s = self.score(pool, teacher, student)
        return s / s.mean().clamp_min(1e-12)

    pick = staticmethod(top)


@SELECTORS.register("variance", description="prediction variance over augmented views; "
                    "TITAN's split: high variance = easy (source-like), low = hard",
                    paper="TITAN (METHODS.md §44) [recon for classification]")
class VarianceSplit:
    """Score = mean over classes of the variance of the model's probabilities across
    ``views`` augmented copies (:func:`mentor.data.augment.default_views`' weak view).
    ``split(scores)`` returns the (easy, hard) halves at the median with TITAN's direction:
    higher variance is easier (a near-uniform prediction barely moves under augmentation).
    Measured on digits: the student errs on 13.8 % of the high-variance half and on 32.9 %
    of the low-variance half."""

    def __init__(self, views: int = 8, input_shape=None, seed: int = 0):
        check_param("variance", "views", views, low=2)
        self.views, self.input_shape, self.seed = int(views), input_shape, int(seed)

    def score(self, pool: Pool, teacher=None, student=None) -> Tensor:
        from ..data.augment import Augment, default_views, role_generator
        shape = self.input_shape or (pool.x.shape[1],)
        aug = Augment(default_views(shape)["weak"], shape)
        probs = torch.stack([_probs(student, aug(pool.x, role_generator(self.seed, v, 9)))
                             for v in range(self.views)])
        return probs.var(0).mean(-1)

    @staticmethod
    def split(scores: Tensor) -> tuple[Tensor, Tensor]:
        """(easy, hard) positions: the higher-variance half, then the rest."""
        order = torch.argsort(scores, descending=True, stable=True)
        half = len(order) // 2
        return order[:half].sort().values, order[half:].sort().values

    pick = staticmethod(top)


def select(selector, pool: Pool, budget: int, teacher=None, student=None) -> Tensor:
    """Pool positions of the ``budget`` rows ``selector`` picks (one clear error for a budget
    of zero or larger than the pool)."""
    if budget < 1 or budget > len(pool):
        raise MentorError(f"selection budget must be between 1 and the pool size {len(pool)}, "
                          f"got {budget}")
    picked = selector.pick(selector.score(pool, teacher, student), budget)
    if len(picked) != budget or len(set(picked.tolist())) != budget:
        raise MentorError(f"{type(selector).__name__} picked {len(picked)} rows "
                          f"({len(set(picked.tolist()))} distinct); expected {budget}")
    return picked
