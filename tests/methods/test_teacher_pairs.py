"""Teachers of several models: a static teacher beside an EMA teacher fused by entropy
(BUS-SSL, METHODS.md §9) and an EMA teacher with a reviewer (TRS, §11)."""

import copy

import numpy as np
import pytest
import torch

import mentor
from mentor.engine import fit
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec
from mentor.teachers import CommitteeTeacher, ModuleTeacher
from mentor.updates import ReviewerBank, StaticPlusEMA


@pytest.fixture(scope="module")
def digits10():
    return mentor.load_data("digits", labeled_fraction=0.1)


def _state(m):
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def test_entropy_fusion_weights_members_by_exp_minus_entropy():
    g = torch.Generator().manual_seed(0)
    z = [torch.randn(4, 5, generator=g, dtype=torch.float64) * s for s in (0.5, 3.0)]

    class Fixed:
        num_classes = 5

        def __init__(self, z):
            self.z = z

        def logits(self, x):
            return self.z

    committee = CommitteeTeacher([Fixed(z[0]), Fixed(z[1])], fuse="entropy")
    fused = committee.logits(torch.zeros(4, 1)).exp()
    p = [zi.softmax(-1).numpy() for zi in z]
    for b in range(4):
        h = np.array([-(pm[b] * np.log(pm[b])).sum() for pm in p])
        w = np.exp(-h) / np.exp(-h).sum()
        np.testing.assert_allclose(fused[b].numpy(), w[0] * p[0][b] + w[1] * p[1][b],
                                   rtol=1e-10)


def test_static_plus_ema_keeps_the_static_teacher_and_moves_the_ema_one(digits10):
    torch.manual_seed(0)
    static_net = mlp(digits10.input_shape, 10, hidden=[16])
    before = _state(static_net)
    made = []

    class Watch(StaticPlusEMA):
        def build_teacher(self, given, student_copy, num_classes):
            t = super().build_teacher(given, student_copy, num_classes)
            made.append((t, _state(student_copy)))
            return t

    plan = get_method("fixmatch").plan(threshold=0.5)
    torch.manual_seed(1)
    fit(mlp(digits10.input_shape, 10, hidden=[16]), digits10.train, digits10.val,
        objectives=plan.objectives, refiners=plan.refiners, updater=Watch(0.9),
        teacher=ModuleTeacher(static_net, 10), augment=plan.augment,
        spec=TrainSpec(epochs=1, batch_size=8, unlabeled_ratio=3, collapse_steps=0),
        seed=0, num_outputs=10, input_shape=digits10.input_shape)
    (teacher, start), = made
    assert all(torch.equal(before[k], v) for k, v in _state(static_net).items())
    assert not all(torch.equal(start[k], v) for k, v in _state(teacher.module).items())
    assert teacher.fuse == "entropy" and len(teacher.members) == 2


def test_static_plus_ema_needs_a_teacher(digits10):
    plan = get_method("fixmatch").plan()
    with pytest.raises(mentor.MentorError, match="needs a teacher"):
        fit(mlp(digits10.input_shape, 10, hidden=[8]), digits10.train, digits10.val,
            objectives=plan.objectives, updater=StaticPlusEMA(0.9),
            spec=TrainSpec(epochs=1), seed=0, num_outputs=10)


def test_reviewer_is_replaced_only_when_the_teacher_grows_more_confident():
    torch.manual_seed(0)
    student = torch.nn.Linear(3, 4)
    bank = ReviewerBank(0.0, every_epochs=1, warmup=False)
    bank.bind_steps(2)  # a period of 2 steps
    t = bank.build_teacher(None, copy.deepcopy(student), 4)
    x = torch.randn(5, 3)
    r0 = _state(t.reviewer.module)
    for step, scale in ((1, 3.0), (2, 1.0)):  # period 1: first score -> replaced
        with torch.no_grad():
            student.weight.mul_(scale)
        t.outputs(x)
        bank.update(t.module, student, step)
    assert bank.replaced == 1
    r1 = _state(t.reviewer.module)
    assert not all(torch.equal(r0[k], r1[k]) for k in r0)
    with torch.no_grad():  # a flatter student: lower confidence -> reviewer kept
        student.weight.mul_(0.01)
        student.bias.mul_(0.01)
    for step in (3, 4):
        bank.update(t.module, student, step)
        t.outputs(x)
    assert bank.replaced == 1 and all(torch.equal(r1[k], v)
                                      for k, v in _state(t.reviewer.module).items())


def test_mean_teacher_with_a_reviewer_resumes_bit_for_bit(digits10, tmp_path):
    def run(**kw):
        plan = get_method("mean-teacher").plan(reviewer_weight=1.0, reviewer_every=1)
        torch.manual_seed(0)
        return fit(mlp(digits10.input_shape, 10, hidden=[16]), digits10.train, digits10.val,
                   objectives=plan.objectives, updater=plan.updater, augment=plan.augment,
                   spec=TrainSpec(epochs=3, batch_size=8, unlabeled_ratio=3,
                                  collapse_steps=0, select="last"),
                   seed=0, num_outputs=10, input_shape=digits10.input_shape, **kw), plan
    full, plan_full = run()
    run(checkpoint_dir=tmp_path, max_steps=40)
    done, plan_done = run(checkpoint_dir=tmp_path, resume=True)
    a, b = _state(full.model), _state(done.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert plan_full.updater.replaced >= 1
    ra = _state(plan_full.updater.teacher.reviewer.module)
    rb = _state(plan_done.updater.teacher.reviewer.module)
    assert all(torch.equal(ra[k], rb[k]) for k in ra)


def test_paired_students_differ_average_at_inference_and_rebuild_from_metadata():
    from mentor.models.heads import PairedStudents, for_export, rebuild
    torch.manual_seed(0)
    student = mlp((8, 8), 10, hidden=[8])
    state = torch.get_rng_state()
    pairs = PairedStudents(student, n=3)
    assert torch.equal(state, torch.get_rng_state())  # re-initialised in a forked RNG
    w = [next(m.parameters()) for m in pairs.members]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2])
    x = torch.randn(5, 64)
    out = pairs.train()(x)
    assert out["members"].shape == (5, 3, 10) and torch.equal(out["head:1"],
                                                               out["members"][:, 1])
    mean = torch.stack([o.softmax(-1) for o in out["members"].unbind(1)]).mean(0)
    torch.testing.assert_close(pairs.eval()(x).exp(), mean)
    saved, meta = for_export(pairs)
    assert meta == {"kind": "pairs", "n": 3}
    again = rebuild(mlp((8, 8), 10, hidden=[8]), meta)
    again.load_state_dict(saved.state_dict())
    torch.testing.assert_close(again.eval()(x), pairs(x))
