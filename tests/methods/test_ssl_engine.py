"""Golden tests of the semi-supervised engine: EMA closed form, nonzero unlabeled gradients,
threshold 1.0 = supervised training, collapse detection, state saved and restored on resume,
weak/strong views as pure functions of (seed, step)."""

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import mentor
from mentor.contracts import Batch, Targets
from mentor.engine import fit
from mentor.errors import TrainingFault
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec
from mentor.tasks import CLASSIFICATION
from mentor.updates import EMA

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.measures import future_teacher as fst  # noqa: E402
from benchmarks.measures import ssl_presets as presets  # noqa: E402

SSL_PRESETS = presets.PRESETS


@pytest.fixture(scope="module")
def digits5():
    return mentor.load_data("digits", labeled_fraction=0.05)


def _spec(**kw):
    base = dict(epochs=2, batch_size=8, lr=3e-3, unlabeled_ratio=3, collapse_steps=0,
                select="last")
    base.update(kw)
    return TrainSpec(**base)


def _fit(plan, splits, spec, seed=0, **kw):
    torch.manual_seed(seed)
    student = mlp(splits.input_shape, 10, hidden=[32])
    return fit(student, splits.train, splits.val, objectives=plan.objectives,
               refiners=plan.refiners, updater=plan.updater, spec=spec, seed=seed,
               num_outputs=10, augment=plan.augment, input_shape=splits.input_shape,
               batch_mixer=plan.batch_mixer, **kw)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture
def made_teachers(monkeypatch):
    """The modules of every ModuleTeacher built while the test runs (the engine's copy of
    the student, for mean teachers)."""
    made = []
    orig = mentor.teachers.ModuleTeacher.__init__

    def spy(self, module, *a, **k):
        orig(self, module, *a, **k)
        made.append(module)

    monkeypatch.setattr(mentor.teachers.ModuleTeacher, "__init__", spy)
    return made


# ------------------------------------------------------------------------------ EMA teacher

def test_ema_decay_schedules():
    assert EMA(0.99).decay_at(5) == 0.99
    warm = EMA(0.99, warmup=True)
    assert [warm.decay_at(t) for t in (1, 2, 9)] == [0.5, 1 - 1 / 3, 0.9]
    assert warm.decay_at(1000) == 0.99
    cos = EMA(0.999, schedule="cosine", start=0.9, ramp_steps=100)
    assert cos.decay_at(0) == pytest.approx(0.9)
    assert cos.decay_at(50) == pytest.approx(0.9495)
    assert cos.decay_at(100) == pytest.approx(0.999)
    assert cos.decay_at(500) == pytest.approx(0.999)


def test_ema_teacher_moves_and_equals_the_closed_form(digits5, made_teachers):
    """Record the student after every step; the teacher must equal the float64 recursion
    theta_t <- m_t theta_t + (1 - m_t) theta_s started from the initial student."""
    recorded = []

    class Recording(EMA):
        def update(self, teacher, student, step):
            recorded.append({k: v.detach().double().clone()
                             for k, v in student.named_parameters()})
            super().update(teacher, student, step)

    plan = get_method("mean-teacher").plan(decay=0.9)
    updater = Recording(0.9, warmup=True)
    torch.manual_seed(0)
    student = mlp(digits5.input_shape, 10, hidden=[32])
    start = {k: v.detach().double().clone() for k, v in student.named_parameters()}
    fit(student, digits5.train, digits5.val, objectives=plan.objectives, updater=updater,
        spec=_spec(epochs=1), seed=0, num_outputs=10, augment=plan.augment,
        input_shape=digits5.input_shape)
    (teacher,) = made_teachers
    ref = start
    for step, s in enumerate(recorded, start=1):
        m = updater.decay_at(step)
        ref = {k: m * ref[k] + (1 - m) * s[k] for k in ref}
    assert len(recorded) > 3
    moved = False
    for k, v in teacher.named_parameters():
        torch.testing.assert_close(v.double(), ref[k], rtol=0, atol=1e-5)
        moved |= not torch.allclose(v.double(), start[k])
    assert moved


def test_ema_decay_zero_copies_and_one_freezes_the_student_made_teacher(digits5,
                                                                        made_teachers):
    for decay, same_as in ((0.0, "student"), (1.0, "start")):
        plan = get_method("mean-teacher").plan()
        torch.manual_seed(0)
        student = mlp(digits5.input_shape, 10, hidden=[32])
        start = _state(student)
        res = fit(student, digits5.train, digits5.val, objectives=plan.objectives,
                  updater=EMA(decay), spec=_spec(epochs=1), seed=0, num_outputs=10,
                  augment=plan.augment)
        want = _state(res.model) if same_as == "student" else start
        got = _state(made_teachers[-1])
        assert all(torch.equal(got[k], want[k]) for k in want), decay


def test_relabel_teacher_is_frozen_within_a_round_and_the_student_at_its_end(digits5):
    """Noisy-student rounds: the teacher copies the student exactly every `every_epochs`
    epochs and does not move in between."""
    from mentor.updates import Relabel
    seen = []

    class Watch(Relabel):
        def update(self, teacher, student, step):
            super().update(teacher, student, step)
            seen.append((step, _state(teacher), _state(student)))

    updater = Watch(every_epochs=1)
    plan = get_method("noisy-student").plan(every_epochs=1)
    torch.manual_seed(0)
    student = mlp(digits5.input_shape, 10, hidden=[32])
    fit(student, digits5.train, digits5.val, objectives=plan.objectives,
        refiners=plan.refiners, updater=updater, spec=_spec(epochs=2), seed=0,
        num_outputs=10, augment=plan.augment, input_shape=digits5.input_shape)
    period = updater.period
    assert period > 1 and len(seen) == 2 * period
    for step, teacher, student_now in seen:
        if step % period == 0:
            assert all(torch.equal(teacher[k], student_now[k]) for k in teacher)
        else:
            prev = seen[step - 2][1] if step > 1 else teacher
            assert all(torch.equal(teacher[k], prev[k]) for k in teacher)
            assert not all(torch.equal(teacher[k], student_now[k]) for k in teacher)


# ----------------------------------------------------------------- unlabeled loss gradients

@pytest.mark.parametrize("name", SSL_PRESETS)
def test_unlabeled_loss_gives_the_student_a_nonzero_gradient(name):
    torch.manual_seed(0)
    student = mlp((8, 8), 10, hidden=[16])
    x = torch.randn(12, 64)
    labeled = torch.tensor([True] * 4 + [False] * 8)
    y = torch.where(labeled, torch.arange(12) % 10, torch.full((12,), -1))
    batch = Batch(x, y, torch.arange(12), labeled)
    plan = get_method(name).plan()
    student = plan.prepare_student(student, x[:2])
    for r in plan.refiners:
        if hasattr(r, "bind"):
            r.bind(labeled, y, 10)
    out = student(x)
    # a confident teacher on another view (one-hot-like logits); two agreeing members for
    # refiners that compare teachers
    zt = 9 * torch.nn.functional.one_hot(torch.randint(10, (12,)), 10) + torch.randn(12, 10)
    targets = Targets(zt, torch.where(labeled, y, zt.argmax(-1)),
                      extra={"members": torch.stack([zt, zt], 1)})
    for r in plan.refiners:
        targets = r(targets, batch)
    unsup = [o for o in plan.objectives if o.needs_teacher]
    assert unsup, name
    loss = sum(o(out, targets, batch) for o in unsup)
    grads = torch.autograd.grad(loss, list(student.parameters()))
    assert sum(float(g.abs().sum()) for g in grads) > 0, name


# ------------------------------------------------------------ degenerate: threshold 1.0

def test_threshold_one_admits_nothing_and_equals_supervised_training(digits5):
    spec = _spec(epochs=3)
    ssl = _fit(get_method("fixmatch").plan(threshold=1.0), digits5, spec)
    assert all(c == 0.0 for c in ssl.history["pl_coverage"])
    sup_plan = get_method("scratch").plan()
    sup_plan.augment = get_method("fixmatch").plan().augment  # same views and batches
    sup = _fit(sup_plan, digits5, spec)
    a, b = _state(ssl.model), _state(sup.model)
    # the supervised run skips the unlabeled rows: same batches of labeled rows and views,
    # smaller matrix products (equal up to float summation order)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_collapse_stops_the_run_with_steps_and_hint(digits5):
    with pytest.raises(TrainingFault, match=r"teacher collapse: no pseudo-label was admitted "
                       r"at every step from 1 to 5 .*train.collapse_steps"):
        _fit(get_method("fixmatch").plan(threshold=1.0), digits5, _spec(collapse_steps=5))


def test_collapse_on_one_class_is_detected():
    from mentor.engine.telemetry import PseudoLabelMonitor
    mon = PseudoLabelMonitor(CLASSIFICATION, torch.zeros(40, dtype=torch.long), 4,
                             collapse_steps=3)
    labeled = torch.zeros(40, dtype=torch.bool)
    batch = Batch(torch.zeros(40, 2), torch.full((40,), -1), torch.arange(40), labeled)
    logits = torch.zeros(40, 4)
    labels = torch.zeros(40, dtype=torch.long)
    labels[:3] = 1  # class 0 takes 37/40 = 92.5 %
    for step in range(2):
        mon.observe(Targets(logits, labels), batch, 0, step)
    labels2 = labels.clone()
    labels2[:8] = 2  # 80 %: healthy, the count restarts
    mon.observe(Targets(logits, labels2), batch, 0, 2)
    for step in range(3, 5):
        mon.observe(Targets(logits, labels), batch, 0, step)
    with pytest.raises(TrainingFault, match=r"class 0 took 92 % .* from 4 to 6"):
        mon.observe(Targets(logits, labels), batch, 0, 5)


def test_monitor_matches_a_naive_count():
    from mentor.engine.telemetry import PseudoLabelMonitor
    g = torch.Generator().manual_seed(0)
    truth = torch.randint(3, (30,), generator=g)
    truth[0] = -1  # a generated row without a true label is not scored
    mon = PseudoLabelMonitor(CLASSIFICATION, truth, 3)
    labeled = torch.zeros(30, dtype=torch.bool)
    labeled[25:] = True
    logits = torch.randn(30, 3, generator=g)
    labels = logits.argmax(-1)
    mask = torch.rand(30, generator=g) > 0.4
    weight = torch.rand(30, generator=g)
    batch = Batch(torch.zeros(30, 2), torch.where(labeled, truth, -1), torch.arange(30), labeled)
    mon.observe(Targets(logits, labels, mask, weight), batch, 0, 0)
    got = mon.epoch_summary()
    sw = swok = tok = sw_all = n_all = 0.0
    for i in range(30):
        if labeled[i]:
            continue
        w = float(mask[i]) * float(weight[i])
        sw_all, n_all = sw_all + w, n_all + 1  # coverage needs no true label
        if truth[i] < 0:
            continue
        ok = float(labels[i] == truth[i])
        sw, swok, tok = sw + w, swok + w * ok, tok + ok
    assert got["pl_precision"] == pytest.approx(swok / sw)
    assert got["pl_recall"] == pytest.approx(swok / tok)
    assert got["pl_coverage"] == pytest.approx(sw_all / n_all)


# -------------------------------------------------------------------------- resume

@pytest.mark.parametrize("name", ["flexmatch", "gmm-teacher", "softmatch", "freematch"])
def test_resume_restores_refiner_and_teacher_state(name, digits5, tmp_path):
    spec = _spec(epochs=2)
    full = _fit(get_method(name).plan(), digits5, spec)
    plan = get_method(name).plan()
    part = _fit(plan, digits5, spec, checkpoint_dir=tmp_path, max_steps=7)
    assert not part.finished
    saved = [copy.deepcopy(r.state_dict()) for r in plan.refiners if hasattr(r, "state_dict")]
    plan2 = get_method(name).plan()  # a fresh process: new refiner objects
    done = _fit(plan2, digits5, spec, checkpoint_dir=tmp_path, resume=True)
    a, b = _state(full.model), _state(done.model)
    assert all(torch.equal(a[k], b[k]) for k in a), name
    assert saved and all(v.numel() for s in saved for v in s.values())
    # the history after resume equals the uninterrupted history
    assert done.history["pl_precision"][-1] == pytest.approx(full.history["pl_precision"][-1])


def test_refiner_state_round_trips_through_the_checkpoint(digits5, tmp_path):
    """Stop after 5 steps, resume in a fresh plan for one more step: FlexMatch's per-sample
    memory equals that of a run that took 6 steps without stopping."""
    straight = get_method("flexmatch").plan(threshold=0.0)
    _fit(straight, digits5, _spec(epochs=1), checkpoint_dir=tmp_path / "a", max_steps=6)
    plan = get_method("flexmatch").plan(threshold=0.0)
    _fit(plan, digits5, _spec(epochs=1), checkpoint_dir=tmp_path / "b", max_steps=5)
    plan2 = get_method("flexmatch").plan(threshold=0.0)
    _fit(plan2, digits5, _spec(epochs=1), checkpoint_dir=tmp_path / "b", resume=True,
         max_steps=6)
    want = straight.refiners[0].selected
    assert int((want >= 0).sum()) > int((plan.refiners[0].selected >= 0).sum()) > 0
    assert torch.equal(plan2.refiners[0].selected, want)


# ------------------------------------------------------------------------ views and batches

def test_two_stream_batches_keep_the_ratio_and_are_pure_functions_of_the_step(digits5):
    from mentor.engine.sampling import TwoStreams
    lab = digits5.train.labeled
    s1 = TwoStreams(lab, 8, 3, seed=0, world=1)
    s2 = TwoStreams(lab, 8, 3, seed=0, world=1)
    for step in (0, 5, 40):
        b = s1.batch(step)
        assert torch.equal(b, s2.batch(step))
        assert bool(lab[b[:8]].all()) and not bool(lab[b[8:]].any())
        assert len(b) == 32
    # every unlabeled row appears once per pass over the unlabeled pool
    n_unl = int((~lab).sum())
    seen = torch.cat([s1.batch(t)[8:] for t in range(n_unl // 24)])
    assert len(set(seen.tolist())) == len(seen)


def test_views_differ_by_role_and_repeat_by_step():
    from mentor.data.augment import Augment, default_views, role_generator
    rows = torch.randn(6, 64)
    strong = Augment(default_views((8, 8))["strong"], (8, 8))
    a = strong(rows, role_generator(0, 3, 2))
    b = strong(rows, role_generator(0, 3, 2))
    c = strong(rows, role_generator(0, 4, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, rows)


def test_shift_matches_a_naive_loop():
    from mentor.data.augment import shift
    x = torch.randn(5, 12)
    u = torch.rand(5, 2)
    out = shift(x, u, (3, 4), pixels=1)
    for i in range(5):
        dx = min(int(u[i, 0] * 3), 2) - 1
        dy = min(int(u[i, 1] * 3), 2) - 1
        img = x[i].reshape(3, 4).numpy()
        ref = np.zeros((3, 4), dtype=np.float32)
        for r in range(3):
            for c in range(4):
                if 0 <= r - dy < 3 and 0 <= c - dx < 4:
                    ref[r, c] = img[r - dy, c - dx]
        assert np.array_equal(out[i].reshape(3, 4).numpy(), ref)


def test_noise_and_mask_use_one_draw_per_element():
    from mentor.data.augment import Augment
    aug = Augment([("noise", {"std": 1.0}), ("mask", {"p": 0.5})], (10,))
    out = aug(torch.zeros(2000, 10), torch.Generator().manual_seed(0))
    zeros = (out == 0).float().mean()
    assert 0.45 < float(zeros) < 0.55
    kept = out[out != 0]
    assert abs(float(kept.std()) - 1.0) < 0.05


# ------------------------------------------------------------------ the effect on digits

@pytest.fixture(scope="module")
def supervised5():
    return presets.accuracy("scratch", seed=0)


# presets whose gain over the fair baseline is separated over seeds 0-2 (the ssl-presets
# measurement); pseudo-label (90.34 ± 0.35 % vs 88.77 ± 1.14 %) and psmt (87.93 ± 2.23 %)
# are not, and are not claimed to beat it
NOT_SEPARATED = ("pseudo-label", "psmt")


@pytest.mark.parametrize("name", [p for p in presets.PRESETS if p not in NOT_SEPARATED])
def test_presets_beat_supervised_training_on_the_same_views_with_5_percent_labels(name,
                                                                                 supervised5):
    """54 labels + the unlabeled digits (raw pixels as 8x8 images, the ssl recipe's CNN
    16-32 flatten 64, 40 epochs): each of these presets uses the unlabeled rows to beat
    ``scratch``, which trains its labeled rows on the same weak view for as many steps (the
    engine's rule, mentor.engine.views). Measured (``ssl-presets``, seeds 0-2): scratch
    88.77 ± 1.14 %, these presets 92.11-94.89 %, each higher by the project's rule on 3 of 3
    seeds. This test runs seed 0 (scratch 87.47 %; the smallest gain, noisy-student's, 3.6
    points) and asks for 3 points, 2.6 times scratch's std over the seeds."""
    acc = presets.accuracy(name, seed=0)
    assert acc > supervised5 + 0.03, (name, acc, supervised5)


def test_copy_paste_batch_targets_are_the_area_weighted_label_mixture():
    """BCP for classification: labeled rows kept; x_in / x_out carry q ∝ w_l·1[y_l] +
    w_u·1[ŷ_u] with row weight w_l + w_u (BCP's region weights 1 and 0.5 times areas); a
    rejected pseudo-label contributes nothing."""
    from mentor.mix.batch import CopyPasteBatch
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 64, generator=g)
    labeled = torch.tensor([True, True, False, False, False, False])
    y = torch.tensor([3, 5, -1, -1, -1, -1])
    z = torch.randn(6, 10, generator=g)
    pseudo = torch.tensor([3, 5, 1, 7, 2, 2])
    mask = torch.tensor([True, True, True, False, True, True])  # row 3's label rejected
    batch = Batch(x, y, torch.arange(6), labeled)
    mixer = CopyPasteBatch(ratio=0.5, u_weight=0.5)
    new_x, nb, t = mixer.mix(x, batch, Targets(z, pseudo, mask), g, (8, 8))
    assert new_x.shape == (6, 64) and nb.labeled.tolist() == [True, True] + [False] * 4
    assert torch.equal(new_x[:2], x[:2]) and nb.index.tolist() == [0, 1, 2, 3, 2, 3]
    torch.testing.assert_close(new_x[2:4] + new_x[4:6], x[:2] + x[2:4])
    area = 0.25  # a 4x4 patch of the labeled image in an 8x8 unlabeled one (x_in)
    for r, (yl, yu, keep) in enumerate([(3, 1, 1.0), (5, 7, 0.0)]):
        for row, (wl, wu) in ((2 + r, (area, 0.5 * (1 - area))),
                              (4 + r, (1 - area, 0.5 * area))):
            q = torch.zeros(10, dtype=torch.float64)
            q[yl] += wl
            q[yu] += wu * keep
            torch.testing.assert_close(float(t.weight[row]), float(q.sum()), rtol=0,
                                       atol=1e-6)
            torch.testing.assert_close(t.logits[row].softmax(-1).double(), q / q.sum(),
                                       rtol=0, atol=1e-6)


def test_future_teacher_labels_more_rows_correctly_at_matched_steps():
    """FST (METHODS.md §5): a teacher advanced by 3 virtual student steps admits far more
    correct pseudo-labels per epoch than the same EMA teacher without the peek, at the same
    number of real steps (the ``fst`` measurement, MLP, 10 epochs, seeds 0-2: 4.3-8.8x as
    many, precision >= 0.97; this test: seed 0)."""
    runs = fst.histories(0)
    h_fst, h_ema = runs["fst"][0], runs["ema"][0]
    assert fst.correct(h_fst) > 2 * fst.correct(h_ema)
    assert min(p for p in h_fst["pl_precision"] if p == p) > 0.95


def test_peek_ahead_restores_the_student_and_the_optimizer():
    from mentor.engine.peek import peek_ahead
    from mentor.tasks import CLASSIFICATION
    from mentor.updates import FuturePeekEMA
    torch.manual_seed(0)
    student = mlp((8, 8), 10, hidden=[16])
    teacher = copy.deepcopy(student)
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    x = torch.randn(12, 64)
    labeled = torch.tensor([True] * 4 + [False] * 8)
    y = torch.where(labeled, torch.arange(12) % 10, torch.full((12,), -1))
    batch = Batch(x, y, torch.arange(12), labeled)
    student(x).sum().backward()
    opt.step()  # some optimizer state to restore
    before, opt_before = _state(student), copy.deepcopy(opt.state_dict())
    t_before = _state(teacher)
    plan = get_method("future-teacher").plan(threshold=0.0)

    class Signal:
        def __call__(self, xt, idx, view=None):
            with torch.no_grad():
                return teacher(xt)

    from types import SimpleNamespace

    from mentor.contracts import RefinerHooks, UpdaterHooks
    training = SimpleNamespace(  # the fields of the engine's training that peek_ahead reads
        ahead=3, updater=UpdaterHooks(FuturePeekEMA(0.5, ahead=3)),
        teacher=SimpleNamespace(module=teacher, signal=Signal()), raw_model=student,
        model=student, optimizer=opt, opt_step=opt, plain=True, acc=None,
        refiners=[RefinerHooks(r) for r in plan.refiners], objectives=plan.objectives,
        need_pseudo=True, with_labels=False, task=CLASSIFICATION)
    peek_ahead(training, SimpleNamespace(idx=torch.arange(12), view=None), batch, x, 0, 0)
    assert all(torch.equal(before[k], v) for k, v in _state(student).items())
    after = opt.state_dict()["state"]
    for k, st in opt_before["state"].items():
        assert all(torch.equal(st[n], after[k][n]) for n in st if torch.is_tensor(st[n]))
    assert not all(torch.equal(t_before[k], v) for k, v in _state(teacher).items())
