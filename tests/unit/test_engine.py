"""The engine: exact resume, degenerate settings, teacher caching, refiner and updater hooks,
labeled-row masking and fault reporting."""

import pytest
import torch
from torch import nn

import mentor
from mentor.contracts import Targets
from mentor.engine import Objective, fit
from mentor.errors import MentorError, TrainingFault
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec
from mentor.teachers import ModuleTeacher
from mentor.updates import EMA


def _student(seed=1, dropout=0.0):
    torch.manual_seed(seed)
    return mlp((8, 8), 10, hidden=[16], dropout=dropout)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _run(splits, teacher, method="kd", spec=None, seed=3, student=None, **kw):
    plan = get_method(method).plan(**kw.pop("params", {}))
    return fit(student or _student(), splits.train, splits.val, objectives=plan.objectives,
               teacher=teacher if plan.needs_teacher else None,
               spec=spec or TrainSpec(epochs=3, batch_size=32, select="last"), seed=seed,
               num_outputs=10, **kw)


@pytest.mark.parametrize("stop_at", [7, 34, 50])
def test_resume_gives_the_uninterrupted_weights_bit_for_bit(splits, teacher, tmp_path, stop_at):
    """Stopped after N steps (mid-epoch or at an epoch edge) and resumed == uninterrupted.

    Dropout and a cosine schedule make RNG and scheduler state matter."""
    spec = TrainSpec(epochs=3, batch_size=32, schedule="cosine", select="best_val")
    full = _run(splits, teacher, spec=spec, student=_student(dropout=0.2))
    part = _run(splits, teacher, spec=spec, student=_student(dropout=0.2),
                checkpoint_dir=tmp_path, max_steps=stop_at)
    assert not part.finished and part.steps == stop_at
    # a fresh process would rebuild the model from scratch: use a differently seeded one
    resumed = _run(splits, teacher, spec=spec, student=_student(seed=99, dropout=0.2),
                   checkpoint_dir=tmp_path, resume=True)
    assert resumed.finished and resumed.steps == full.steps
    assert _same(_weights(resumed.model), _weights(full.model))
    assert resumed.history == full.history
    assert resumed.best_epoch == full.best_epoch


def test_checkpoint_every_resumes_from_last_periodic_checkpoint(splits, teacher, tmp_path):
    spec = TrainSpec(epochs=2, batch_size=32, checkpoint_every=5, select="last")
    full = _run(splits, teacher, spec=spec)
    _run(splits, teacher, spec=spec, checkpoint_dir=tmp_path, max_steps=23)
    resumed = _run(splits, teacher, spec=spec, student=_student(seed=5),
                   checkpoint_dir=tmp_path, resume=True)
    assert _same(_weights(resumed.model), _weights(full.model))


def test_kd_weight_zero_is_supervised_training(splits, teacher):
    """kd with alpha=0 trains exactly as scratch (same weights, bit for bit)."""
    a = _run(splits, teacher, "kd", params={"alpha": 0.0})
    b = _run(splits, None, "scratch")
    assert _same(_weights(a.model), _weights(b.model))


def test_kd_weight_nonzero_differs_from_supervised(splits, teacher):
    a = _run(splits, teacher, "kd", params={"alpha": 0.5})
    b = _run(splits, None, "scratch")
    assert not _same(_weights(a.model), _weights(b.model))


def test_cached_teacher_equals_online_teacher(splits, teacher):
    """Teacher outputs computed once give the same training as computing them per batch."""
    kw = dict(epochs=2, batch_size=32, select="last")
    cached = _run(splits, teacher, spec=TrainSpec(cache_teacher="always", **kw))
    online = _run(splits, teacher, spec=TrainSpec(cache_teacher="never", **kw))
    assert cached.teacher_cached and not online.teacher_cached
    for k, v in _weights(cached.model).items():
        torch.testing.assert_close(v, online.model.state_dict()[k], rtol=1e-5, atol=1e-6)


def test_unlabeled_labels_never_reach_the_supervised_loss(splits):
    """CE sees only labeled rows: changing hidden labels changes nothing."""
    tampered = mentor.data.Split(splits.train.x, torch.where(
        splits.train.labeled, splits.train.y, (splits.train.y + 3) % 10), splits.train.labeled)
    plan = get_method("scratch").plan()
    spec = TrainSpec(epochs=2, batch_size=32, select="last")
    a = fit(_student(), splits.train, splits.val, objectives=plan.objectives, spec=spec,
            seed=0, num_outputs=10)
    b = fit(_student(), tampered, splits.val, objectives=plan.objectives, spec=spec, seed=0,
            num_outputs=10)
    assert _same(_weights(a.model), _weights(b.model))


def test_refiners_see_teacher_targets_and_their_mask_is_applied(splits, teacher):
    """A refiner masking every row removes the KD term: training equals CE alone."""
    seen = []

    def drop_all(targets: Targets, batch) -> Targets:
        seen.append(targets.logits.shape)
        return targets.with_(mask=torch.zeros(len(targets.logits), dtype=torch.bool))

    spec = TrainSpec(epochs=1, batch_size=32, select="last")
    kd = get_method("kd").plan(alpha=0.5)
    a = fit(_student(), splits.train, splits.val, objectives=kd.objectives, teacher=teacher,
            refiners=[drop_all], spec=spec, seed=0, num_outputs=10)
    b = fit(_student(), splits.train, splits.val, objectives=[Objective("ce", 0.5,
            rows="labeled")], spec=spec, seed=0, num_outputs=10)
    assert seen and seen[0] == (32, 10)
    assert _same(_weights(a.model), _weights(b.model))


def test_ema_updater_decay_zero_copies_the_student(splits):
    torch.manual_seed(0)
    net = mlp((8, 8), 10, hidden=[16])
    teacher = ModuleTeacher(net, 10)
    before = _weights(net)
    res = fit(_student(), splits.train, splits.val, objectives=get_method("kd").plan().objectives,
              teacher=teacher, updater=EMA(decay=0.0),
              spec=TrainSpec(epochs=1, batch_size=32, select="last"), seed=0, num_outputs=10)
    assert not res.teacher_cached  # a moving teacher is never cached
    assert _same(_weights(net), _weights(res.model))
    assert not _same(before, _weights(net))


def test_ema_updater_decay_one_freezes_the_teacher(splits):
    torch.manual_seed(0)
    net = mlp((8, 8), 10, hidden=[16])
    before = _weights(net)
    fit(_student(), splits.train, splits.val, objectives=get_method("kd").plan().objectives,
        teacher=ModuleTeacher(net, 10), updater=EMA(decay=1.0),
        spec=TrainSpec(epochs=1, batch_size=32), seed=0, num_outputs=10)
    assert _same(before, _weights(net))


def test_ema_rejects_decay_outside_unit_interval():
    with pytest.raises(mentor.errors.ParameterError, match=r"ema.decay must be in \[0, 1\], got 1.5"):
        EMA(decay=1.5)


def test_non_finite_loss_stops_with_step_and_component(splits):
    class NaNTeacher:
        num_classes = 10

        def logits(self, x):
            return torch.full((len(x), 10), float("nan"))

    with pytest.raises(TrainingFault, match=r"kd\(temperature=4\).*training step 1 "):
        fit(_student(), splits.train, splits.val, objectives=get_method("kd").plan().objectives,
            teacher=NaNTeacher(), spec=TrainSpec(epochs=1), seed=0, num_outputs=10)


def test_student_with_wrong_number_of_classes_is_refused(splits, teacher):
    with pytest.raises(MentorError, match=r"student outputs shape \(2, 5\).*10 classes"):
        fit(mlp((8, 8), 5, hidden=[4]), splits.train, splits.val,
            objectives=get_method("scratch").plan().objectives, spec=TrainSpec(epochs=1),
            seed=0, num_outputs=10)


def test_teacher_with_wrong_number_of_classes_is_refused(splits):
    wrong = ModuleTeacher(nn.Linear(64, 7), 7)
    with pytest.raises(MentorError, match="teacher outputs 7 classes"):
        fit(_student(), splits.train, splits.val, objectives=get_method("kd").plan().objectives,
            teacher=wrong, spec=TrainSpec(epochs=1), seed=0, num_outputs=10)


def test_best_validation_weights_are_selected(splits, teacher):
    res = _run(splits, teacher, spec=TrainSpec(epochs=4, batch_size=32, select="best_val"))
    hist = res.history["val_accuracy"]
    assert res.best_val_accuracy == max(hist)
    assert res.best_epoch == hist.index(max(hist)) + 1
    got = mentor.engine.evaluate.evaluate(res.model, splits.val.x, splits.val.y)["accuracy"]
    assert got == pytest.approx(res.best_val_accuracy)


def test_same_seed_same_result_other_seed_other_order(splits, teacher):
    a = _run(splits, teacher, seed=3)
    b = _run(splits, teacher, seed=3)
    c = _run(splits, teacher, seed=4)
    assert _same(_weights(a.model), _weights(b.model))
    assert not _same(_weights(a.model), _weights(c.model))


def test_pseudo_labels_are_the_task_adapters_predictions():
    """Unlabeled rows take the task adapter's prediction from the teacher's outputs as their
    label (classification: the arg-max); the engine itself computes no arg-max."""
    from mentor.contracts import Batch
    from mentor.engine.signal import teacher_targets
    from mentor.tasks import CLASSIFICATION, Classification

    class Lowest(Classification):  # a task whose prediction is the lowest logit
        def predict(self, logits):
            return logits.argmin(-1)

    z = torch.tensor([[0.0, 2.0, 1.0], [3.0, 1.0, 2.0], [1.0, 0.0, 5.0]])
    labeled = torch.tensor([True, False, False])
    batch = Batch(torch.zeros(3, 4), torch.tensor([2, -1, -1]), torch.arange(3), labeled)
    signal = lambda x, idx, view: z  # noqa: E731
    for task, want in ((CLASSIFICATION, [2, 0, 2]), (Lowest(), [2, 1, 1])):
        targets, labels = teacher_targets(signal, batch.x, batch.index, None, batch, True,
                                          [], task)
        assert labels.tolist() == want and targets.labels.tolist() == want
    targets, labels = teacher_targets(signal, batch.x, batch.index, None, batch, False, [],
                                      Lowest())
    assert labels.tolist() == [2, -1, -1]  # no pseudo-labels asked for: the labels as given


@pytest.mark.parametrize("standardize", [False, True])
def test_the_weighted_sum_is_each_weight_times_its_objective(standardize):
    """The training loss is sum_i w_i * objective_i, also where a loss's fused mean takes the
    weight into its own factor (kd: T^2 * w): against a float64 reference written here."""
    from mentor.contracts import Batch
    from mentor.losses.objective import weighted_sum
    g = torch.Generator().manual_seed(0)
    zs = torch.randn(8, 5, generator=g, dtype=torch.float64)
    zt = torch.randn(8, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (8,), generator=g)
    objectives = [Objective("ce", 0.3), Objective("kd", 0.7, {"temperature": 3.0},
                                                  standardize=standardize)]
    got = weighted_sum(objectives, zs, Targets(zt, y), Batch(zs, y, torch.arange(8), None), 0)

    def z(v):  # logit standardization: eps + the unbiased std
        if not standardize:
            return v
        return (v - v.mean(-1, keepdim=True)) / (1e-7 + v.std(-1, keepdim=True))
    s, t = z(zs) / 3.0, z(zt) / 3.0
    pt, log_ps = t.softmax(-1), s.log_softmax(-1)
    kd = (pt * (pt.log() - log_ps)).sum(-1).mean() * 9.0
    ce = -zs.log_softmax(-1)[torch.arange(8), y].mean()
    torch.testing.assert_close(got, 0.3 * ce + 0.7 * kd, rtol=1e-12, atol=1e-12)


def test_model_selection_follows_the_tasks_metric_and_its_direction(splits, teacher):
    """A task whose validation metric is the error (lower is better): the engine records
    ``val_error`` per epoch and keeps the epoch with the lowest, not the highest."""
    from mentor.tasks.classification import Classification

    class ErrorRate(Classification):
        metric, higher_is_better = "error", False

        def score(self, logits, y):
            return (~self.correct(logits, y)).double()

    spec = TrainSpec(epochs=6, batch_size=32, lr=3e-2, select="best_val")
    res = _run(splits, teacher, spec=spec, task=ErrorRate())
    errors = res.history["val_error"]
    assert "val_accuracy" not in res.history and len(errors) == 6
    assert len(set(errors)) > 1  # the error moves, so the direction matters
    best = min(range(6), key=lambda e: (errors[e], e))  # the first epoch with the lowest error
    assert res.best_epoch == best + 1 and res.best_val_accuracy == errors[best]
    accuracy = _run(splits, teacher, spec=spec).history["val_accuracy"]  # same run, same seed
    assert [round(1 - a, 12) for a in accuracy] == [round(e, 12) for e in errors]


class _NamedInputs(nn.Module):
    """A student called with a named tensor only (``net(pixels=x)``), as many Hugging Face
    models are: a plain ``net(x)`` fails."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, *, pixels):
        return self.net(pixels)


class _NamedTask(type(mentor.tasks.CLASSIFICATION)):
    """Classification whose models are called by keyword: the task says how a model is
    called, the engine never calls one itself."""

    def forward(self, model, x, y=None):
        return model(pixels=x)


def test_the_engine_calls_models_through_the_task_adapter(splits, teacher):
    """Training, the teacher's pseudo-labels and validation all go through the task's
    ``forward``: a keyword-only student trains to the same weights and history as the same
    network called as ``net(x)``."""
    spec = TrainSpec(epochs=2, batch_size=32, select="best_val")
    plain = _run(splits, teacher, spec=spec)
    named = _run(splits, teacher, spec=spec, student=_NamedInputs(_student()), task=_NamedTask())
    assert _same(_weights(plain.model), _weights(named.model.net))
    assert plain.history == named.history
