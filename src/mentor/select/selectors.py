"""Selectors for active and selective distillation (METHODS.md §58.4): which pool rows the
teacher labels, the human (oracle) labels, or the student keeps.

Every selector has ``score(pool, teacher, student) -> scores`` (higher = picked first) and
``pick(scores, budget) -> indices``; greedy ones (k-center, probabilistic coreset) pick from
the geometry their ``score`` stored. :func:`select` runs both and checks the budget.
Selectors that score with the teacher's outputs say so with ``needs_teacher = True``.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..contracts import Pool, SelectorHooks, teacher_logits  # noqa: F401  (Pool: re-exported)
from ..errors import MentorError, ParameterError, check_param
from ..registry import SELECTORS


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
        from ..models.taps import resolve_module
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
                    paper="PCoreSet / ActiveKD")
class ProbabilisticCoreSet(_Greedy):
    def embed(self, x: Tensor, teacher, pool, student) -> Tensor:
        return _probs(student, x)  # a DualHead's eval output is its combination


def rad_worst_case(p: Tensor, g: Tensor, c: Tensor, errors: float) -> float:
    """The adversary's best response in RAD's max-min game (see :func:`rad_maxmin`): the
    learner's expected gain ``Σ p_i g_i z_i`` after the adversary lowers the teacher's
    correctness ``z_i = c_i − δ_i`` with ``0 ≤ δ_i ≤ c_i`` and ``Σ δ_i ≤ errors`` (a
    fractional knapsack: it spends its budget on the largest ``p_i g_i`` first)."""
    w = (p.double() * g.double()).clamp_min(0)
    cap = c.double().clamp(0, 1)
    order = torch.argsort(w, descending=True, stable=True)
    spent_before = torch.cumsum(cap[order], 0) - cap[order]
    delta = torch.minimum(cap[order], (float(errors) - spent_before).clamp_min(0))
    return float((w * cap).sum() - (w[order] * delta).sum())


def rad_maxmin(g: Tensor, c: Tensor, budget: float, errors: float | None = None
               ) -> tuple[Tensor, float]:
    """RAD's robust sampling plan: inclusion probabilities ``p`` (``0 ≤ p_i ≤ 1``,
    ``Σ p_i = budget``) maximising the worst-case expected gain, and that max-min value.

    Game: the learner commits to ``p``; the adversary, knowing ``p``, lowers the teacher's
    correctness on the points it chooses, ``z_i = c_i − δ_i`` with ``0 ≤ δ_i ≤ c_i`` and
    ``Σ δ_i ≤ errors``; the learner's payoff is ``Σ p_i g_i z_i``. ``errors=None``:
    ``sqrt(Σ c_i (1 − c_i))``, one standard deviation of the number of teacher mistakes if
    ``c`` were calibrated and mistakes independent (so no parameter to tune; a budget of
    ``Σ (1 − c_i)`` would let the adversary zero every plan of a teacher whose mean
    confidence is under 1/2). Dualising the adversary's (fractional-knapsack) problem turns the
    max-min into one LP, solved with HiGHS (``scipy.optimize.linprog``):

        max  Σ p_i g_i c_i − errors·μ − Σ c_i ν_i
        s.t. ν_i ≥ p_i g_i − μ,  ν ≥ 0,  μ ≥ 0,  0 ≤ p ≤ 1,  Σ p = budget.

    The max-min optimum is rarely unique (e.g. when the adversary can zero every plan, all
    plans tie at 0), so a second LP keeps the worst case at its optimum and maximises the
    expected gain ``Σ p_i g_i c_i`` among those plans (the product score breaks ties)."""
    import numpy as np
    from scipy import sparse
    from scipy.optimize import linprog

    g64 = g.detach().double().clamp(0, 1).cpu().numpy()
    c64 = c.detach().double().clamp(0, 1).cpu().numpy()
    n = len(g64)
    check_param("rad", "budget", budget, low=0, high=n, low_open=True)
    gamma = float(np.sqrt((c64 * (1.0 - c64)).sum())) if errors is None else float(errors)
    check_param("rad", "errors", gamma, low=0)
    rows = np.arange(n)
    # variables: p (n), ν (n), μ (1); rows: p_i g_i − ν_i − μ ≤ 0
    a_ub = sparse.csr_matrix((np.concatenate([g64, -np.ones(n), -np.ones(n)]),
                              (np.concatenate([rows, rows, rows]),
                               np.concatenate([rows, n + rows, np.full(n, 2 * n)]))),
                             shape=(n, 2 * n + 1))
    a_eq = sparse.csr_matrix((np.ones(n), (np.zeros(n, dtype=int), rows)),
                             shape=(1, 2 * n + 1))
    bounds = [(0.0, 1.0)] * n + [(0.0, None)] * (n + 1)
    worst = np.concatenate([-g64 * c64, c64, [gamma]])  # minimise −(worst-case payoff)
    kw = dict(A_eq=a_eq, b_eq=[float(budget)], bounds=bounds, method="highs")
    first = linprog(worst, A_ub=a_ub, b_ub=np.zeros(n), **kw)
    if first.status != 0:
        raise MentorError(f"rad: the max-min LP failed ({first.message})")
    value = -float(first.fun)
    tol = 1e-9 * max(1.0, abs(value))
    second = linprog(np.concatenate([-g64 * c64, np.zeros(n + 1)]),
                     A_ub=sparse.vstack([a_ub, sparse.csr_matrix(worst)]),
                     b_ub=np.concatenate([np.zeros(n), [-(value - tol)]]), **kw)
    x = second.x if second.status == 0 else first.x
    p = torch.from_numpy(np.clip(x[:n], 0.0, 1.0))
    return p, value


def sample_inclusion(p: Tensor, budget: int, generator: torch.Generator) -> Tensor:
    """``budget`` distinct indices drawn without replacement so that index ``i`` is drawn
    with probability ``p_i`` (``0 ≤ p_i ≤ 1``, ``Σ p_i = budget``): systematic sampling over
    a random order (Madow 1949), exact for these marginals. Returned ascending."""
    n = len(p)
    check_param("rad", "budget", budget, low=1, high=n)
    order = torch.randperm(n, generator=generator)
    q = p.double().clamp(0, 1)[order]
    q = q * (budget / q.sum().clamp_min(1e-300))
    ends = torch.cumsum(q, 0)
    points = torch.rand((), generator=generator, dtype=torch.float64) + torch.arange(
        budget, dtype=torch.float64)
    hit = torch.searchsorted(ends, points.clamp_max(float(ends[-1]) - 1e-12), right=True)
    chosen = order[hit.clamp_max(n - 1)].unique()
    if len(chosen) < budget:  # only from rounding at p_i ≈ 1: top up by probability
        rest = torch.ones(n, dtype=torch.bool)
        rest[chosen] = False
        extra = torch.nonzero(rest).squeeze(-1)
        extra = extra[torch.argsort(p[extra], descending=True, stable=True)]
        chosen = torch.cat([chosen, extra[:budget - len(chosen)]])
    return chosen.sort().values


@SELECTORS.register("rad", description="informativeness x teacher correctness: student "
                    "uncertainty (1 - margin) times the teacher's confidence, or (mode="
                    "'maxmin') the max-min sampling plan against an adversarial teacher",
                    paper="Robust Active Distillation, Baykal et al. ICLR 2023 "
                    "[recon: g*c product form; the max-min game's adversary model and LP]")
class RobustActiveDistillation:
    """Robust Active Distillation (Baykal et al., ICLR 2023, arXiv 2210.01213).

    Both modes use ``g_i = 1 − margin`` of the student (informativeness) and ``c_i`` = the
    teacher's top probability (an estimate of the chance its soft label is right).

    ``mode="product"`` (default): score ``g_i · c_i``, pick the top ``budget``.

    ``mode="maxmin"``: the game-theoretic form. ``score`` returns the learner's robust
    sampling distribution over the pool (sums to 1; :func:`rad_maxmin` with budget 1);
    ``pick(scores, budget)`` turns it into inclusion probabilities ``p`` with
    ``Σ p = budget`` (``budget · scores`` when no entry exceeds 1, which is then optimal for
    that budget too because the game is positively homogeneous in ``p``; otherwise it
    re-solves the LP for that budget from the ``g, c`` that ``score`` kept) and draws
    ``budget`` distinct rows without replacement with exactly those marginals
    (:func:`sample_inclusion`), from a generator seeded by ``seed`` (``reseed(seed)`` as
    for the ``random`` selector). ``errors``: the adversary's budget, default
    ``sqrt(Σ c_i (1 − c_i))``.

    What follows the paper (its abstract: the only part of the text retrieved when this
    was written): selection as a game between a learner choosing which soft labels to
    query and an adversary on the teacher's correctness, trading informativeness against
    correctness, with a worst-case guarantee and no tuning parameter. Reconstructed here,
    not checked against the paper's method section: the adversary model (lowering the
    correctness estimate ``c_i`` by ``δ_i ∈ [0, c_i]`` with ``Σ δ_i ≤ errors``; with
    ``c ≡ 1`` and ``errors = k`` this is "the adversary mislabels k points of its choice"),
    the default budget, the expected-gain tie-break among max-min optima,
    the LP solution instead of a closed form, and systematic sampling of the batch. With
    ``errors = 0`` the max-min plan is the product form's top-``budget``; with ``c ≡ 1``
    and ``errors = k`` its support gets ``p_i ∝ 1/g_i`` (the adversary strikes the largest
    ``p_i g_i``, so the learner equalises them) unless the cap ``p_i ≤ 1`` binds."""

    needs_teacher = True  # scores with the teacher's outputs

    def __init__(self, mode: str = "product", errors: float | None = None, seed: int = 0):
        if mode not in ("product", "maxmin"):
            raise ParameterError(f"rad.mode must be 'product' or 'maxmin', got {mode!r}")
        if errors is not None:
            check_param("rad", "errors", errors, low=0)
        self.mode, self.errors, self.seed = mode, errors, int(seed)
        self._gc: tuple[Tensor, Tensor] | None = None

    def reseed(self, seed: int) -> "RobustActiveDistillation":
        self.seed = int(seed)
        return self

    def score(self, pool: Pool, teacher=None, student=None) -> Tensor:
        g = 1.0 - margin(_probs(student, pool.x))
        c = _teacher_probs(teacher, pool).amax(-1)
        if self.mode == "product":
            return g * c
        self._gc = (g, c)
        return rad_maxmin(g, c, 1, self.errors)[0].float()

    def pick(self, scores: Tensor, budget: int) -> Tensor:
        if self.mode == "product":
            return top(scores, budget)
        check_param("rad", "budget", budget, low=1, high=len(scores))
        p = scores.double() * budget
        if float(p.max()) > 1.0 + 1e-6:
            if self._gc is None or len(self._gc[0]) != len(scores):
                raise MentorError("rad (maxmin): pick needs the scores of this selector's "
                                  "own score() on the same pool; expected score() first")
            p = rad_maxmin(*self._gc, budget, self.errors)[0]
        return sample_inclusion(p, int(budget), torch.Generator().manual_seed(self.seed))


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
                    paper="LLKD [recon of the threshold form]")
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
                    paper="STAT, skill-targeted adaptive training [recon]")
class SkillProfile:
    """``fit(x, y, teacher, student, index=None)`` measures the student's error rate per
    category (category = the teacher's predicted class) on rows with known labels (``index``:
    their positions in the training split, for teachers that answer by position, such as a
    label store; ``None``: the teacher is run on ``x``); ``score`` gives each pool row its
    category's error rate, so weak skills are picked (or weighted) first;
    ``weights(pool, teacher)`` normalises them to mean 1. A category no labeled row falls in
    takes the overall error rate. The active loop calls ``fit`` before each selection, on the
    rows labeled so far (:func:`mentor.active.active_loop`)."""

    needs_teacher = True  # scores with the teacher's outputs


    def __init__(self):
        self.error: Tensor | None = None

    def fit(self, x: Tensor, y: Tensor, teacher, student,
            index: Tensor | None = None) -> Tensor:
        if len(x) == 0:
            raise MentorError("skills selector: no rows with known labels to measure the "
                              "student's error rates on; expected at least one labeled row")
        if teacher is None:
            raise MentorError("this selector scores with the teacher's outputs, but no "
                              "teacher was given; expected a teacher")
        with torch.no_grad():
            t = teacher_logits(teacher, x, index).float()
        cat = t.argmax(-1).cpu()
        y = torch.as_tensor(y).long().cpu()
        wrong = (_probs(student, x).argmax(-1).cpu() != y).float()
        k = int(max(t.shape[-1], int(cat.max()) + 1, int(y.max()) + 1))
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
                    paper="TITAN [recon for classification]")
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
    """Pool positions of the ``budget`` rows ``selector`` (a selector or its
    :class:`~mentor.contracts.SelectorHooks`) picks (one clear error for a budget of zero or
    larger than the pool). A selector with a ``fit`` hook must have been fitted first."""
    if budget < 1 or budget > len(pool):
        raise MentorError(f"selection budget must be between 1 and the pool size {len(pool)}, "
                          f"got {budget}")
    hooks = SelectorHooks(selector)
    picked = hooks.pick(hooks.score(pool, teacher, student), budget)
    if len(picked) != budget or len(set(picked.tolist())) != budget:
        raise MentorError(f"{hooks.name} picked {len(picked)} rows "
                          f"({len(set(picked.tolist()))} distinct); expected {budget}")
    return picked
