"""Selectors and the active distillation loop (METHODS.md §58.4; papers 30, 34, 44, 47, 51):
budgets, resume, and each selector's behaviour on digits."""

import sys
from pathlib import Path

import pytest
import torch

import mentor
from mentor.active import BudgetError, CountingTeacher, active_loop
from mentor.errors import MentorError
from mentor.models import mlp
from mentor.recipe import TrainSpec
from mentor.select import (LLKD, KCenter, ProbabilisticCoreSet, RandomSelector, SkillProfile,
                           coverage_radius, select)

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
# the setting docs/methods.md's figures are measured in (benchmarks/measures/active.py)
from benchmarks.measures.active import flawed_teacher as _flawed_teacher  # noqa: E402
from benchmarks.measures.active import SEEDS, selector_curves  # noqa: E402
from benchmarks.measures.active import active_setting as _active_setting  # noqa: E402
from benchmarks.measures.active import pool_setting as _pool_setting  # noqa: E402
from benchmarks.measures.active import variance_split_errors  # noqa: E402


@pytest.fixture(scope="module")
def active_setting():
    """The selector benchmark's setting: digits with 1 % labels for split seeds 0, 1, 2, each
    with its flawed teacher (benchmarks/active.py, docs/methods.md's table)."""
    return {seed: _active_setting(seed) for seed in SEEDS}


def _finals(name, budget, setting):
    """Test accuracy after round 3 per seed: 3 rounds of 20 oracle labels or teacher
    queries, the benchmark's loop (:func:`benchmarks.measures.active.selector_curves`)."""
    return [curve[-1] for curve in selector_curves(name, budget, setting)]


@pytest.mark.slow  # 40-60 s; CI runs benchmarks/active.py --quick
def test_pcoreset_is_ahead_of_random_on_every_seed_oracle_queries(active_setting):
    """PCoreSet's claim (paper 51) in the direction measured: ahead of random selection on
    each of the 3 split seeds. Whether the gap is separated from the seed noise by the
    project's rule is measured, not asserted (measurement ``active-bench``, docs/methods.md)."""
    random = _finals("random", "oracle", active_setting)
    pcore = _finals("pcoreset", "oracle", active_setting)
    assert all(p > r for p, r in zip(pcore, random, strict=True)), (pcore, random)


@pytest.mark.slow  # 40-60 s; CI runs benchmarks/active.py --quick
def test_rad_is_ahead_of_random_on_every_seed_teacher_queries(active_setting):
    """RAD's claim (paper 30) in the direction measured: with 3 rounds of 20 queries to the
    flawed teacher, ahead of random selection on each of the 3 split seeds (separation from
    the seed noise: measurement ``active-bench``)."""
    random = _finals("random", "teacher", active_setting)
    rad = _finals("rad", "teacher", active_setting)
    assert all(a > r for a, r in zip(rad, random, strict=True)), (rad, random)


@pytest.fixture(scope="module")
def pool_setting():
    """Digits with 5 % labels, the flawed teacher, a student on the labeled rows, and the
    unlabeled rows as the pool (:func:`benchmarks.measures.active.pool_setting`)."""
    return _pool_setting()


def test_llkd_selects_rows_whose_teacher_labels_are_more_often_right(pool_setting):
    sp, teacher, student, pool = pool_setting
    truth = sp.train.y[pool.index]
    t_pred = teacher.logits(pool.x).argmax(-1)
    sel = LLKD()
    sel.score(pool, teacher, student)
    chosen = sel.selected
    precision = float((t_pred[chosen] == truth[chosen]).double().mean())
    base = float((t_pred == truth).double().mean())  # what a random subset gets on average
    assert 0.05 < float(chosen.double().mean()) < 0.7
    assert precision > base + 0.03, (precision, base)
    w = sel.weights[chosen]
    assert bool(((w >= 0) & (w <= 1)).all())


def test_k_center_covers_the_pool_better_than_random(pool_setting):
    _, teacher, student, pool = pool_setting
    kc = select(KCenter(), pool, 50)
    rnd = select(RandomSelector(0), pool, 50)
    centers = torch.cat([pool.labeled_x, pool.x[kc]])
    r_kc = coverage_radius(pool.x, centers)
    r_rnd = coverage_radius(pool.x, torch.cat([pool.labeled_x, pool.x[rnd]]))
    assert r_kc < 0.8 * r_rnd, (r_kc, r_rnd)


def test_k_center_on_a_missing_student_module_names_it(pool_setting):
    _, teacher, student, pool = pool_setting
    with pytest.raises(MentorError, match="encoder"):
        select(KCenter(layer="encoder.fc"), pool, 5, teacher, student)


def test_skill_profile_weights_follow_the_per_category_error_rate(pool_setting):
    sp, teacher, student, pool = pool_setting
    sel = SkillProfile()
    err = sel.fit(sp.val.x, sp.val.y, teacher, student)
    cat = teacher.logits(sp.val.x).argmax(-1)
    wrong = student(sp.val.x).argmax(-1) != sp.val.y
    for c in range(10):  # a category the teacher never predicts takes the overall rate
        m = cat == c if bool((cat == c).any()) else torch.ones_like(cat, dtype=torch.bool)
        assert float(err[c]) == pytest.approx(float(wrong[m].double().mean()), abs=1e-6)
    w = sel.weights(pool, teacher, student)
    assert float(w.mean()) == pytest.approx(1.0, abs=1e-5)
    worst = int(err.argmax())
    on_worst = teacher.logits(pool.x).argmax(-1) == worst
    assert float(w[on_worst].mean()) == pytest.approx(float(w.max()), abs=1e-5)


def test_variance_split_puts_the_errors_in_the_hard_half(pool_setting):
    """TITAN's direction (higher prediction variance under augmentation = easier) holds
    for the digits student: its errors concentrate in the low-variance half (the figures
    docs/methods.md quotes: measurement ``active-variance``)."""
    easy, hard = variance_split_errors(pool_setting)
    assert hard > 2 * easy, (easy, hard)


# ------------------------------------------------------------------------- budgets, resume

def test_budgets_are_never_exceeded_and_picks_never_repeat():
    sp = mentor.load_data("digits", labeled_fraction=0.02)
    teacher = _flawed_teacher(sp)
    asked = []

    class Spy:
        num_classes = 10

        def logits(self, x):
            asked.append(len(x))
            return teacher.logits(x)

    res = active_loop(sp, make_student=lambda: mlp(sp.input_shape, 10, hidden=[8]),
                      selector=ProbabilisticCoreSet(), rounds=3,
                      spec=TrainSpec(epochs=2, batch_size=32), oracle_per_round=7,
                      teacher=Spy(), teacher_per_round=11, teacher_cost=0.5)
    picks_o = [i for r in res.rounds for i in r.picked_oracle]
    picks_t = [i for r in res.rounds for i in r.picked_teacher]
    assert len(set(picks_o)) == len(picks_o) == 21 and len(set(picks_t)) == len(picks_t) == 33
    assert not set(picks_o) & set(picks_t)
    assert not any(bool(sp.train.labeled[i]) for i in picks_o + picks_t)
    # selection scores the pool with the teacher (free); labeling queries are the 11 per round
    last = res.rounds[-1]
    assert last.teacher_queries == 33 and last.cost == pytest.approx(16.5)
    assert last.labels == int(sp.train.labeled.sum()) + 21
    counter = CountingTeacher(teacher, limit=3)
    counter.label(sp.train.x[:2], torch.arange(2))
    with pytest.raises(BudgetError, match="limit 3"):
        counter.label(sp.train.x[:2], torch.arange(2))


@pytest.mark.parametrize("kw,needle", [
    (dict(oracle_per_round=0), "both budgets are 0"),
    (dict(oracle_per_round=10_000), "exceeds the unlabeled pool"),
    (dict(teacher_per_round=5), "needs a teacher"),
    (dict(oracle_per_round=5, rounds=0), "rounds must be >= 1"),
])
def test_bad_budgets_fail_before_any_training(kw, needle):
    sp = mentor.load_data("iris", labeled_fraction=0.2)
    built = []
    args = dict(rounds=2, spec=TrainSpec(epochs=1))
    args.update(kw)
    with pytest.raises(MentorError, match=needle):
        active_loop(sp, make_student=lambda: built.append(1), selector=RandomSelector(),
                    **args)
    assert not built


def test_max_cost_is_checked_up_front():
    sp = mentor.load_data("iris", labeled_fraction=0.2)
    with pytest.raises(MentorError, match=r"costs 6 \(2 x 3 queries x 1\) but max_cost is 5"):
        active_loop(sp, make_student=lambda: None, selector=RandomSelector(), rounds=2,
                    spec=TrainSpec(epochs=1), teacher=object(), teacher_per_round=3,
                    teacher_cost=1.0, max_cost=5.0)


def test_a_resumed_loop_continues_after_the_last_finished_round(tmp_path):
    sp = mentor.load_data("digits", labeled_fraction=0.02)

    def run(rounds, state):
        return active_loop(sp, make_student=lambda: mlp(sp.input_shape, 10, hidden=[8]),
                           selector=ProbabilisticCoreSet(), rounds=rounds,
                           spec=TrainSpec(epochs=3, batch_size=32), oracle_per_round=10,
                           state_dir=state)

    straight = run(3, None)
    run(2, tmp_path)
    seen = []
    resumed = active_loop(sp, make_student=lambda: mlp(sp.input_shape, 10, hidden=[8]),
                          selector=ProbabilisticCoreSet(), rounds=3,
                          spec=TrainSpec(epochs=3, batch_size=32), oracle_per_round=10,
                          state_dir=tmp_path, on_round=seen.append)
    assert [r.round for r in seen] == [3]  # only the missing round ran
    assert [r.picked_oracle for r in resumed.rounds] == [r.picked_oracle for r in straight.rounds]
    assert [r.test_accuracy for r in resumed.rounds] == [r.test_accuracy
                                                          for r in straight.rounds]


def test_a_teacher_declares_its_cost_per_query():
    sp = mentor.load_data("digits", labeled_fraction=0.02)
    teacher = _flawed_teacher(sp)
    teacher.cost_per_query = 0.25  # e.g. an API teacher
    res = active_loop(sp, make_student=lambda: mlp(sp.input_shape, 10, hidden=[8]),
                      selector=RandomSelector(), rounds=2, spec=TrainSpec(epochs=1),
                      teacher=teacher, teacher_per_round=4)
    assert res.rounds[-1].teacher_queries == 8 and res.rounds[-1].cost == pytest.approx(2.0)
    with pytest.raises(MentorError, match="max_cost"):
        active_loop(sp, make_student=lambda: None, selector=RandomSelector(), rounds=2,
                    spec=TrainSpec(epochs=1), teacher=teacher, teacher_per_round=4,
                    max_cost=1.0)
