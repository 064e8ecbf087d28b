"""RAD's max-min mode (METHODS.md §30; Baykal et al., ICLR 2023): the LP plan is a valid
sampling plan, beats the product top-b and uniform plans in the worst case (checked by an
independent adversary), degenerates sensibly, and selects reproducibly on digits."""

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

import mentor
from mentor.errors import ParameterError
from mentor.models import mlp
from mentor.registry import SELECTORS
from mentor.select import Pool, RobustActiveDistillation, select
from mentor.select.selectors import rad_maxmin, rad_worst_case, sample_inclusion
from mentor.teachers import ModuleTeacher


def _adversary_lp(p, g, c, errors):
    """Worst-case payoff by solving the adversary's own problem with a separate LP:
    min_δ Σ p g (c − δ) s.t. 0 ≤ δ ≤ c, Σ δ ≤ errors."""
    p, g, c = (np.asarray(t, dtype=float) for t in (p, g, c))
    w = p * g
    res = linprog(-w, A_ub=np.ones((1, len(w))), b_ub=[errors],
                  bounds=list(zip(np.zeros(len(w)), c)), method="highs")
    assert res.status == 0
    return float((w * c).sum() - w @ res.x)


def _adversary_subsets(p, g, k):
    """c ≡ 1, integer k: brute force over every set of k points the adversary mislabels."""
    w = np.asarray(p, dtype=float) * np.asarray(g, dtype=float)
    return min(w.sum() - w[list(s)].sum() for s in itertools.combinations(range(len(w)), k))


def _random_plans(n, b, count, rng):
    """Random feasible plans: convex mixtures of random b-subsets (each has Σ p = b,
    0 ≤ p ≤ 1, and so does every mixture)."""
    plans = []
    for _ in range(count):
        subsets = np.zeros((4, n))
        for row in subsets:
            row[rng.choice(n, b, replace=False)] = 1.0
        plans.append(rng.dirichlet(np.ones(4)) @ subsets)
    return plans


def _instance(seed, n):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.uniform(0.05, 1, n)), torch.from_numpy(rng.uniform(0.2, 1, n))


@pytest.mark.parametrize("seed,errors", [(0, None), (1, None), (2, 10.0), (3, 10.0)])
def test_plan_is_a_valid_distribution_and_its_value_is_attained(seed, errors):
    g, c = _instance(seed, 40)
    p, value = rad_maxmin(g, c, 7, errors)
    assert p.min() >= 0 and p.max() <= 1 + 1e-9
    assert abs(float(p.sum()) - 7) < 1e-6
    if errors is None:  # the default budget: one std of the number of teacher mistakes
        errors = float(torch.sqrt((c * (1 - c)).sum()))
    # strong duality: the plan really guarantees the LP's value against a best response
    assert abs(_adversary_lp(p, g, c, errors) - value) < 1e-6
    assert abs(rad_worst_case(p, g, c, errors) - value) < 1e-6
    q, _ = rad_maxmin(g, c, 1)  # the one-draw distribution score() returns
    assert q.min() >= 0 and abs(float(q.sum()) - 1) < 1e-6


@pytest.mark.parametrize("seed", range(6))
def test_worst_case_beats_product_top_b_uniform_and_random_plans(seed):
    rng = np.random.default_rng(100 + seed)
    n, b = (6, 2) if seed < 3 else (30, 5)
    g, c = _instance(seed, n)
    errors = float(rng.uniform(0.5, 3))
    p, value = rad_maxmin(g, c, b, errors)
    worst = _adversary_lp(p, g, c, errors)
    product = np.zeros(n)
    product[np.argsort(-(g * c).numpy(), kind="stable")[:b]] = 1.0
    uniform = np.full(n, b / n)
    others = [_adversary_lp(q, g, c, errors)
              for q in [product, uniform, *_random_plans(n, b, 300, rng)]]
    assert worst >= max(others) - 1e-7, (worst, max(others))
    assert worst > _adversary_lp(product, g, c, errors) + 1e-3  # robustness changes the plan


def test_paper_game_mislabel_k_points_brute_force():
    """c ≡ 1, errors = k: the adversary mislabels k points of its choice (checked by
    enumerating its subsets); the plan equalises p_i g_i on a top-gain support."""
    g = torch.tensor([0.9, 0.8, 0.75, 0.5, 0.3, 0.1], dtype=torch.float64)
    c = torch.ones(6, dtype=torch.float64)
    p, value = rad_maxmin(g, c, 2, errors=1)
    assert abs(_adversary_subsets(p, g, 1) - value) < 1e-7
    rng = np.random.default_rng(0)
    best_random = max(_adversary_subsets(q, g, 1) for q in _random_plans(6, 2, 500, rng))
    assert value >= best_random - 1e-9
    top2 = np.array([1, 1, 0, 0, 0, 0.0])
    assert value > _adversary_subsets(top2, g, 1) + 0.05  # top-b by gain is not robust
    inner = (p > 1e-9) & (p < 1 - 1e-9)
    assert int(inner.sum()) >= 3
    assert float((p * g)[inner].max() - (p * g)[inner].min()) < 1e-7  # p ∝ 1/g
    assert float(g[p > 1e-9].min()) > max(g[p <= 1e-9].tolist(), default=0.0)


def test_hopeless_adversary_falls_back_to_the_product_ranking():
    """When the adversary can zero every plan, all plans tie at 0 and the expected gain
    Σ p g c breaks the tie: the product form's top-b."""
    g, c = _instance(9, 20)
    p, value = rad_maxmin(g, c, 3, errors=20.0)
    assert abs(value) < 1e-9
    expected = torch.zeros(20, dtype=torch.float64)
    expected[torch.argsort(g * c, descending=True)[:3]] = 1.0
    assert torch.allclose(p, expected, atol=1e-7)


def test_teacher_always_right_reduces_to_informativeness_ranking():
    g, _ = _instance(7, 25)
    p, _ = rad_maxmin(g, torch.ones(25, dtype=torch.float64), 4)  # default budget is 0
    expected = torch.zeros(25, dtype=torch.float64)
    expected[torch.argsort(g, descending=True)[:4]] = 1.0
    assert torch.allclose(p, expected, atol=1e-7)


def test_equal_informativeness_prefers_points_the_teacher_is_likely_right_on():
    _, c = _instance(8, 30)
    p, _ = rad_maxmin(torch.full((30,), 0.5, dtype=torch.float64), c, 5)
    order = torch.argsort(c, descending=True)
    ranked = p[order]
    assert bool((ranked[:-1] >= ranked[1:] - 1e-7).all())  # never more mass on a less-sure row
    assert float(ranked[:15].sum()) > 4.5 and float(ranked[-5:].sum()) < 1e-7
    assert float(p.max()) < 1 - 1e-3  # hedged, not the product's top-5


def test_sampling_without_replacement_has_the_plan_as_marginals():
    p = torch.tensor([1.0, 0.9, 0.5, 0.3, 0.2, 0.1, 0.0], dtype=torch.float64)  # Σ = 3
    counts = torch.zeros(7)
    for s in range(3000):
        pick = sample_inclusion(p, 3, torch.Generator().manual_seed(s))
        assert len(set(pick.tolist())) == 3
        counts[pick] += 1
    assert torch.allclose(counts / 3000, p.float(), atol=0.03)


def _fit(net, x, y, steps, lr):
    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return net.eval()


@pytest.fixture(scope="module")
def digits_pool():
    """test_active.py's setting, trained full-batch for speed: a weak MLP teacher on every
    training label and a student on the 5 % labeled rows."""
    sp = mentor.load_data("digits", labeled_fraction=0.05)
    torch.manual_seed(0)
    teacher = ModuleTeacher(_fit(mlp(sp.input_shape, 10, hidden=[16]), sp.train.x,
                                 sp.train.y, 40, 1e-2), 10)
    lab = sp.train.labeled
    torch.manual_seed(1)
    student = _fit(mlp(sp.input_shape, 10, hidden=[32]), sp.train.x[lab], sp.train.y[lab],
                   100, 3e-3)
    pos = (~lab).nonzero().squeeze(-1)
    return teacher, student, Pool(sp.train.x[pos], pos, sp.train.x[lab])


def test_select_on_digits_returns_budget_distinct_rows_reproducibly(digits_pool):
    teacher, student, pool = digits_pool
    sel = SELECTORS.get("rad")(mode="maxmin")
    q = sel.score(pool, teacher, student)
    assert q.min() >= 0 and abs(float(q.sum()) - 1) < 1e-4 and int((q > 0).sum()) > 30
    a = select(sel, pool, 30, teacher, student)
    assert len(a) == 30 and len(set(a.tolist())) == 30 and int(a.max()) < len(pool)
    assert torch.equal(a, select(RobustActiveDistillation("maxmin"), pool, 30, teacher,
                                 student))
    b = select(sel.reseed(1), pool, 30, teacher, student)
    assert torch.equal(b, select(RobustActiveDistillation("maxmin").reseed(1), pool, 30,
                                 teacher, student))
    assert not torch.equal(a, b)
    assert bool((q[a] > 0).all())  # only rows the plan gives mass
    product = select(RobustActiveDistillation(), pool, 30, teacher, student)
    assert not torch.equal(a, product)


def test_bad_mode_is_one_sentence_parameter_error():
    with pytest.raises(ParameterError, match=r"^rad\.mode must be 'product' or 'maxmin', "
                                             r"got 'minmax'$"):
        SELECTORS.get("rad")(mode="minmax")
    with pytest.raises(ParameterError):
        RobustActiveDistillation("maxmin", errors=-1)
