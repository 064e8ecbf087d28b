"""Teacher family: committee fusion (per-member outputs, mean / weighted / confidence) and
privileged-input teachers (LAD label channel, shared-weights self-teacher) through the engine."""

import numpy as np
import pytest
import torch
from torch import nn

import mentor
from mentor.data import Split
from mentor.engine import fit
from mentor.errors import MentorError
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec
from mentor.teachers import (CommitteeTeacher, ModuleTeacher, PrivilegedInputTeacher,
                             label_channel)


def _lin(seed, scale=1.0, out=3, dtype=torch.float64):
    torch.manual_seed(seed)
    net = nn.Linear(4, out).to(dtype)
    with torch.no_grad():
        net.weight.mul_(scale)
    return ModuleTeacher(net, out)


def _softmax64(z, t=1.0):
    z = np.asarray(z, dtype=np.float64) / t
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.fixture(scope="module")
def committee_members():
    return [_lin(0), _lin(1, 4.0), _lin(2, 0.3)]


@pytest.fixture(scope="module")
def xb():
    return torch.randn(7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(5))


# ----------------------------------------------------------------------------- committee


def test_mean_fusion_is_the_mean_probability(committee_members, xb):
    c = CommitteeTeacher(committee_members, "mean")
    ps = [_softmax64(m.logits(xb).numpy()) for m in committee_members]
    expected = sum(ps) / 3
    got = c.logits(xb)
    np.testing.assert_allclose(got.exp().numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(torch.softmax(got, -1).numpy(), expected, rtol=1e-12)


def test_weighted_fusion_uses_normalised_user_weights(committee_members, xb):
    c = CommitteeTeacher(committee_members, "weighted", weights=[2.0, 0.0, 6.0])
    ps = [_softmax64(m.logits(xb).numpy()) for m in committee_members]
    expected = 0.25 * ps[0] + 0.0 * ps[1] + 0.75 * ps[2]
    np.testing.assert_allclose(c.logits(xb).exp().numpy(), expected, rtol=1e-12)
    # a zero weight removes a member entirely, and the weights differ from the plain mean
    assert not np.allclose(expected, sum(ps) / 3, atol=1e-3)
    np.testing.assert_allclose(c.weights.numpy(), [0.25, 0.0, 0.75])


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_confidence_fusion_weights_each_sample_by_member_confidence(committee_members, xb,
                                                                   temperature):
    c = CommitteeTeacher(committee_members, "confidence", temperature=temperature)
    zs = [m.logits(xb).numpy() for m in committee_members]
    conf = np.stack([_softmax64(z, temperature).max(-1) for z in zs])  # (M, B)
    w = conf / conf.sum(0, keepdims=True)
    expected = sum(w[i][:, None] * _softmax64(zs[i]) for i in range(3))
    np.testing.assert_allclose(c.logits(xb).exp().numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(c.member_weights(c.member_logits(xb)).numpy(), w, rtol=1e-12)
    # per-sample weights really differ from the plain mean (the sharp member dominates)
    assert not np.allclose(expected, sum(_softmax64(z) for z in zs) / 3, atol=1e-3)


class _IndexedMember:
    """A teacher whose output depends on the training positions (records its calls)."""

    num_classes = 3

    def __init__(self):
        self.calls = []

    def logits_at(self, x, index):
        self.calls.append(index.clone())
        return torch.nn.functional.one_hot(index % 3, 3).to(x.dtype) * 5.0

    def logits(self, x):
        self.calls.append(None)
        return torch.zeros(len(x), 3, dtype=x.dtype)


def test_member_logits_are_exposed_per_member_and_use_logits_at(committee_members, xb):
    indexed = _IndexedMember()
    c = CommitteeTeacher([*committee_members, indexed])
    idx = torch.arange(10, 17)
    out = c.member_logits(xb, idx)
    assert out.shape == (4, 7, 3)
    for i, m in enumerate(committee_members):
        torch.testing.assert_close(out[i], m.logits(xb))
    torch.testing.assert_close(out[3], indexed.logits_at(xb, idx))
    assert torch.equal(indexed.calls[0], idx)
    # the fused training signal (logits_at) is the fusion of the indexed outputs
    torch.testing.assert_close(c.logits_at(xb, idx), c.fused(out))
    # without an index the member's plain logits are used
    assert c.member_logits(xb).shape == (4, 7, 3) and indexed.calls[-1] is None
    assert c.num_classes == 3 and "committee of 4" in c.description


def test_members_with_different_class_counts_are_rejected_at_construction(committee_members):
    with pytest.raises(MentorError, match=r"member 2 outputs 5 classes but member 0 outputs 3"):
        CommitteeTeacher([committee_members[0], committee_members[1], _lin(3, out=5)])


class _Liar:
    """Says 3 classes, returns 2 columns."""

    num_classes = 3

    def logits(self, x):
        return torch.zeros(len(x), 2, dtype=x.dtype)


def test_members_with_different_output_shapes_are_rejected_at_call_time(committee_members, xb):
    c = CommitteeTeacher([committee_members[0], committee_members[1], _Liar()])
    with pytest.raises(MentorError, match=r"member 2 returned shape \(7, 2\) but member 0 "
                                          r"returned \(7, 3\)"):
        c.logits(xb)
    with pytest.raises(MentorError, match=r"member 0 returned shape \(7, 2\)"):
        CommitteeTeacher([_Liar(), committee_members[0]]).logits(xb)


@pytest.mark.parametrize("weights, match", [
    ([1.0, -0.5, 1.0], "non-negative"),
    ([1.0, 1.0], "has 2 entries"),
    ([0.0, 0.0, 0.0], "all zero"),
    ([1.0, float("nan"), 1.0], "finite"),
    (None, "needs weights"),
])
def test_bad_weights_are_rejected(committee_members, weights, match):
    with pytest.raises(MentorError, match=match):
        CommitteeTeacher(committee_members, "weighted", weights=weights)


def test_bad_committee_settings_are_rejected(committee_members):
    with pytest.raises(MentorError, match="fuse must be one of"):
        CommitteeTeacher(committee_members, "median")
    with pytest.raises(MentorError, match="temperature must be > 0"):
        CommitteeTeacher(committee_members, "confidence", temperature=0.0)
    with pytest.raises(MentorError, match="only used with fuse 'weighted'"):
        CommitteeTeacher(committee_members, "mean", weights=[1, 1, 1])
    with pytest.raises(MentorError, match="at least one member"):
        CommitteeTeacher([])
    with pytest.raises(MentorError, match="member 1 of type str is not a teacher"):
        CommitteeTeacher([committee_members[0], "teacher"])


# ------------------------------------------------------------------------ label channel


def test_label_channel_appends_a_one_hot_code():
    fn = label_channel(4)
    x = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    out = fn(x, torch.tensor([2, -1]))
    torch.testing.assert_close(out, torch.tensor([[0., 1., 2., 0., 0., 1., 0.],
                                                  [3., 4., 5., 0., 0., 0., 0.]]))
    noisy = label_channel(4, noise=0.1, seed=3)(x, torch.tensor([2, 1]))
    assert torch.equal(noisy[:, :3], x)
    delta = noisy[:, 3:] - torch.tensor([[0., 0., 1., 0.], [0., 1., 0., 0.]])
    assert 0 < delta.abs().max() < 0.6
    with pytest.raises(MentorError, match="needs the label rows"):
        fn(x, None)
    with pytest.raises(MentorError, match="label 4 is out of range"):
        fn(x, torch.tensor([4, 0]))


def test_privileged_teacher_feeds_extra_rows_to_privileged_fn_only():
    seen = []

    def fn(x, rows):
        seen.append(rows)
        return x if rows is None else x + rows

    net = nn.Linear(3, 2)
    extra = torch.arange(30, dtype=torch.float32).reshape(10, 3)
    t = PrivilegedInputTeacher(net, 2, fn, extra=extra)
    x = torch.randn(4, 3)
    idx = torch.tensor([9, 0, 4, 4])
    out = t.logits_at(x, idx)
    assert torch.equal(seen[-1], extra[idx])
    torch.testing.assert_close(out, net(x + extra[idx]))
    assert not out.requires_grad and not any(p.requires_grad for p in net.parameters())
    torch.testing.assert_close(t.logits(x), net(x))  # no positions: privileged_fn(x, None)
    assert seen[-1] is None and t.cacheable
    with pytest.raises(MentorError, match="extra has 10 rows but training position 10"):
        t.logits_at(x, torch.tensor([0, 1, 2, 10]))
    lad = PrivilegedInputTeacher(nn.Linear(5, 2), 2, label_channel(2),
                                 extra=torch.tensor([0, 1, 1]))
    with pytest.raises(MentorError, match="needs the label rows"):
        lad.logits(torch.randn(2, 3))
    with pytest.raises(MentorError, match=r"returned shape \(4, 2\) for 4 samples; expected "
                                          r"\(4, 3\)"):
        PrivilegedInputTeacher(net, 3, fn, extra=extra).logits_at(x, idx)


def test_privileged_teacher_rejects_bad_wiring():
    net = nn.Linear(3, 2)
    with pytest.raises(MentorError, match="needs the student module"):
        PrivilegedInputTeacher(None, 2, lambda x, e: x, share_weights=True)
    with pytest.raises(MentorError, match="must be None or the student"):
        PrivilegedInputTeacher(nn.Linear(3, 2), 2, lambda x, e: x, share_weights=True,
                               student=net)
    with pytest.raises(MentorError, match="is not a torch module"):
        PrivilegedInputTeacher(None, 2, lambda x, e: x)
    with pytest.raises(MentorError, match="is not callable"):
        PrivilegedInputTeacher(net, 2, "concat")


# ---------------------------------------------------------------- end to end on digits


@pytest.fixture(scope="module")
def digits():
    return mentor.load_data("digits")


def _onehot_split(split):
    return Split(torch.cat([split.x, nn.functional.one_hot(split.y, 10).float()], 1), split.y,
                 split.labeled)


@pytest.fixture(scope="module")
def lad_net(digits):
    """An MLP trained on [x, onehot(y)]: a label-assisted teacher."""
    torch.manual_seed(0)
    net = mlp((64 + 10,), 10, hidden=[32])
    res = fit(net, _onehot_split(digits.train), _onehot_split(digits.val),
              objectives=get_method("scratch").plan().objectives,
              spec=TrainSpec(epochs=4, batch_size=64, lr=1e-2), seed=0, num_outputs=10)
    return res.model


class _WidthGuard(nn.Module):
    """A student that fails if it ever receives more than the 64 pixel features."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.widths = set()

    def forward(self, x):
        self.widths.add(x.shape[1])
        assert x.shape[1] == 64, f"student received width {x.shape[1]}"
        return self.net(x)


@pytest.mark.parametrize("cache", ["never", "auto"])
def test_label_assisted_teacher_distils_into_a_student_that_never_sees_labels(digits, lad_net,
                                                                             cache):
    train = digits.train
    calls = []
    code = label_channel(10)

    def recorded(x, y_rows):
        calls.append((x.clone(), y_rows.clone()))
        return code(x, y_rows)

    teacher = PrivilegedInputTeacher(lad_net, 10, recorded, extra=train.y)
    # near-perfect on train when it sees the label channel
    all_rows = teacher.logits_at(train.x, torch.arange(len(train)))
    assert (all_rows.argmax(1) == train.y).float().mean() > 0.98
    calls.clear()

    at_calls = []
    inner = teacher.logits_at

    def spy(x, index):
        at_calls.append((x.clone(), index.clone()))
        return inner(x, index)

    teacher.logits_at = spy
    torch.manual_seed(1)
    student = _WidthGuard(mlp((64,), 10, hidden=[32]))
    res = fit(student, train, digits.val, objectives=get_method("kd").plan().objectives,
              teacher=teacher, spec=TrainSpec(epochs=4, batch_size=64, lr=1e-2,
                                              cache_teacher=cache), seed=2, num_outputs=10)
    assert res.teacher_cached == (cache == "auto")
    assert at_calls, "the engine never called logits_at"
    seen = torch.cat([i for _, i in at_calls])
    if cache == "auto":  # one precomputation over the whole split, index = arange(n)
        assert torch.equal(seen, torch.arange(len(train)))
    else:  # one call per batch: every training row every epoch
        assert len(seen) == 4 * len(train) and set(seen.tolist()) == set(range(len(train)))
    for (x, index), (px, py) in zip(at_calls, calls):
        assert torch.equal(x, train.x[index])       # the batch rows...
        assert torch.equal(py, train.y[index])      # ...and exactly their extra rows
        assert torch.equal(px, x)
    assert student.widths == {64}
    assert res.best_val_accuracy > 0.85


def test_shared_weights_teacher_follows_the_student_and_must_not_be_cached(digits):
    """Self-teacher (papers 52/53): the student sees a noisy view, the same network sees the
    clean view as teacher; its outputs move as the student trains."""
    train = digits.train
    g = torch.Generator().manual_seed(0)
    noisy = Split(train.x + 1.0 * torch.randn(train.x.shape, generator=g), train.y,
                  train.labeled)
    torch.manual_seed(3)
    student = mlp((64,), 10, hidden=[32], dropout=0.3)
    teacher = PrivilegedInputTeacher(None, 10, lambda x, clean: clean, extra=train.x,
                                     share_weights=True, student=student)
    assert teacher.cacheable is False and teacher.frozen is False and teacher.module is student
    probe = torch.arange(0, len(train), 7)
    before = teacher.logits_at(noisy.x[probe], probe)
    torch.testing.assert_close(before, student.eval()(train.x[probe]))  # clean view, eval mode
    student.train()
    assert all(p.requires_grad for p in student.parameters())  # the student stays trainable
    assert student.training  # the teacher call restored the mode

    snapshots = []
    fit(student, noisy, digits.val, objectives=get_method("kd").plan().objectives,
        teacher=teacher, spec=TrainSpec(epochs=3, batch_size=64, lr=1e-2, select="last",
                                        cache_teacher="never"),
        seed=0, num_outputs=10,
        on_epoch=lambda e, info: snapshots.append(teacher.logits_at(noisy.x[probe], probe)))
    after = teacher.logits_at(noisy.x[probe], probe)
    assert not after.requires_grad
    # outputs at the same rows change every epoch: a cache computed at the start is stale
    for a, b in zip([before, *snapshots], snapshots):
        assert (a - b).abs().max() > 1e-2
    torch.testing.assert_close(after, student.eval()(train.x[probe]))
    assert (after.argmax(1) == train.y[probe]).float().mean() > 0.8


def test_engine_does_not_cache_a_non_cacheable_teacher(digits):
    torch.manual_seed(0)
    student = mlp((64,), 10, hidden=[16])
    teacher = PrivilegedInputTeacher(None, 10, lambda x, e: x, share_weights=True,
                                     student=student)
    small = Split(digits.train.x[:128], digits.train.y[:128], digits.train.labeled[:128])
    res = fit(student, small, digits.val, objectives=get_method("kd").plan().objectives,
              teacher=teacher, spec=TrainSpec(epochs=1, batch_size=64), seed=0,
              num_outputs=10)
    assert not res.teacher_cached


def test_committee_cacheability_follows_its_members(committee_members):
    shared = PrivilegedInputTeacher(None, 3, lambda x, e: x, share_weights=True,
                                    student=nn.Linear(4, 3).double())
    assert CommitteeTeacher(committee_members).cacheable
    assert not CommitteeTeacher([*committee_members, shared]).cacheable
