"""QUEACO's meta-feedback teacher updater (mentor.tagging.meta, METHODS.md §12): the feedback
``h`` and the teacher's update against naive float64 computations on a tiny tagger, MPL's
first-order dot product, the sign convention, the frozen-teacher arm as the degenerate case
(bitwise), what reaches the student, determinism and validation-only selection."""

import copy
import math

import pytest
import torch

from mentor.errors import DataError, MentorError
from mentor.tagging import refined_targets, tb_seq_tagging, train_tagger
from mentor.tagging.meta import MetaFeedback, compare_meta_arms
from mentor.tagging.train import Tagger

THR = 0.2  # the tiny teacher's median top probability: it overrides about half the tokens


def tiny(seed=3, n=120):
    return tb_seq_tagging(num_sequences=n, seed=seed, strong_fraction=0.2)


def nets(data, seed=0):
    torch.manual_seed(seed)
    s = Tagger(data.vocab, data.num_tags, 4, 3).double()
    t = Tagger(data.vocab, data.num_tags, 4, 3).double()
    return s, t


def naive_ce(net, data, ids, tags):
    """Mean over the real tokens of ``-log softmax(z)[y]``, one sequence and token at a time."""
    total, count = 0.0, 0
    with torch.no_grad():
        for i in ids.tolist():
            n = int(data.mask[i].sum())
            z = net(data.tokens[i:i + 1, :n], data.mask[i:i + 1, :n])[0].tolist()
            for j in range(n):
                lse = math.log(sum(math.exp(v) for v in z[j]))
                total += lse - z[j][int(tags[i, j])]
                count += 1
    return total / count


def naive_relabel(teacher, data, batch, thr):
    y = data.weak.clone()
    with torch.no_grad():
        for i in batch.tolist():
            if not bool((data.weak_ids == i).any()):
                continue
            n = int(data.mask[i].sum())
            p = torch.softmax(teacher(data.tokens[i:i + 1, :n], data.mask[i:i + 1, :n])[0], -1)
            for j in range(n):
                if float(p[j].max()) > thr:
                    y[i, j] = int(p[j].argmax())
    return y


def ce_grads(net, data, ids, tags):
    m = data.mask[ids]
    logp = torch.log_softmax(net(data.tokens[ids], m), -1)
    loss = -logp.gather(-1, tags[ids][..., None])[..., 0][m].mean()
    return torch.autograd.grad(loss, list(net.parameters()))


def test_feedback_and_teacher_update_match_a_naive_float64_step():
    data = tiny()
    student, teacher = nets(data)
    batch = torch.cat([data.strong[:3], data.weak_ids[:9]])
    eta, eta_t, mw, sw = 0.5, 0.1, 3.0, 0.7
    ref_s, ref_t = copy.deepcopy(student), copy.deepcopy(teacher)
    upd = MetaFeedback(teacher, data, threshold=THR, meta_weight=mw, strong_weight=sw,
                       batch_size=5, baseline=0.0, seed=7,
                       optimizer=torch.optim.SGD(teacher.parameters(), lr=eta_t))
    xs = copy.deepcopy(upd).feedback_batch()  # the updater's next strong batch
    h = upd.step(student, torch.optim.SGD(student.parameters(), lr=eta), batch, data.weak)
    # by hand: re-label, loss before, plain gradient step, loss after
    y = naive_relabel(ref_t, data, batch, THR)
    with torch.no_grad():
        top = ref_t(data.tokens[batch], data.mask[batch]).argmax(-1)
    real = data.mask[batch]
    assert (y[batch] != data.weak[batch])[real].any()  # the teacher acted ...
    assert (y[batch] != top)[real].any()  # ... and left weak tags it disagrees with
    old = naive_ce(ref_s, data, xs, data.gold)
    hand, grads = copy.deepcopy(ref_s), ce_grads(ref_s, data, batch, y)
    with torch.no_grad():
        for p, g in zip(hand.parameters(), grads):
            p -= eta * g
    want_h = old - naive_ce(hand, data, xs, data.gold)
    assert abs(h - want_h) < 1e-10, (h, want_h)
    for p, q in zip(student.parameters(), hand.parameters()):
        assert torch.allclose(p, q, atol=1e-12)
    # teacher: θ_t − η_t (mw · h · ∇CE(t(x_w), ŷ) + sw · ∇CE(t(x_s), y_s))
    weak_rows = batch[(batch[:, None] == data.weak_ids[None]).any(1)]
    g_w = ce_grads(ref_t, data, weak_rows, y)
    g_s = ce_grads(ref_t, data, xs, data.gold)
    with torch.no_grad():
        for p, q, a, b in zip(teacher.parameters(), ref_t.parameters(), g_w, g_s):
            assert torch.allclose(p, q - eta_t * (mw * want_h * a + sw * b), atol=1e-12)


def test_difference_form_agrees_with_mpl_first_order_dot_product():
    """For a small plain step, h = L_old − L_new ≈ η ∇L_s(θ_s)·∇L_w(θ_s) (MPL's form), same
    sign: the difference form carries MPL's sign convention."""
    data = tiny()
    student, teacher = nets(data, 1)
    batch = data.weak_ids[:12]
    eta = 1e-4
    upd = MetaFeedback(teacher, data, threshold=1.0, batch_size=6, baseline=0.0, seed=2,
                       optimizer=torch.optim.SGD(teacher.parameters(), lr=0.0))
    xs = copy.deepcopy(upd).feedback_batch()
    g_w = ce_grads(student, data, batch, data.weak)
    g_s = ce_grads(student, data, xs, data.gold)
    dot = eta * sum(float((a * b).sum()) for a, b in zip(g_s, g_w))
    h = upd.step(student, torch.optim.SGD(student.parameters(), lr=eta), batch, data.weak)
    assert abs(dot) > 1e-9 and abs(h - dot) < 1e-2 * abs(dot), (h, dot)


@pytest.mark.parametrize("helpful", [True, False])
def test_a_pseudo_label_that_lowers_the_strong_loss_is_reinforced(helpful):
    data = tiny()
    student, teacher = nets(data, 2)
    batch = data.weak_ids[:20]
    # threshold 1: the tags given are the weak tags; clean ones help, a constant wrong tag hurts
    weak = data.weak.clone()
    weak[batch] = data.gold[batch] if helpful else 1
    data = type(data)(data.tokens, data.mask, data.gold, weak, data.strong, data.weak_ids,
                      data.val, data.test)
    upd = MetaFeedback(teacher, data, threshold=1.0, strong_weight=0.0, baseline=0.0,
                       batch_size=10, optimizer=torch.optim.SGD(teacher.parameters(), lr=0.5))
    m = data.mask[batch]

    def logp():
        with torch.no_grad():
            z = torch.log_softmax(teacher(data.tokens[batch], m), -1)
            return float(z.gather(-1, weak[batch][..., None])[..., 0][m].mean())

    before = logp()
    h = upd.step(student, torch.optim.SGD(student.parameters(), lr=1.0), batch, weak)
    assert (h > 0) == helpful, h
    assert (logp() > before) == helpful, (h, before, logp())


def test_weights_zero_are_the_frozen_teacher_arm_bitwise():
    data = tb_seq_tagging(num_sequences=300, seed=5)
    teacher = train_tagger(data, data.gold, data.strong, seed=1, epochs=20).model
    both = torch.cat([data.strong, data.weak_ids])
    targets, _ = refined_targets(data, teacher, 0.9)
    frozen = train_tagger(data, targets, both, seed=1, epochs=3)
    t0 = copy.deepcopy(teacher.state_dict())
    upd = MetaFeedback(teacher, data, meta_weight=0.0, strong_weight=0.0)
    meta = train_tagger(data, data.weak, both, seed=1, epochs=3, updater=upd)
    assert (meta.best_epoch, meta.val_f1, meta.test_f1) == \
        (frozen.best_epoch, frozen.val_f1, frozen.test_f1)
    for p, q in zip(meta.model.parameters(), frozen.model.parameters()):
        assert torch.equal(p, q)
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, t0[k])
    # meta_weight 0 alone: the teacher keeps learning the strong tags, without feedback
    upd = MetaFeedback(copy.deepcopy(teacher), data, meta_weight=0.0, strong_weight=1.0)
    train_tagger(data, data.weak, both, seed=1, epochs=1, updater=upd)
    assert any(not torch.equal(v, t0[k]) for k, v in upd.teacher.state_dict().items())


def _one_step(data, seed=0):
    student, teacher = nets(data, seed)
    opt = torch.optim.Adam(student.parameters(), lr=0.01)
    upd = MetaFeedback(teacher, data, threshold=THR, meta_weight=5.0, batch_size=6)
    h = upd.step(student, opt, data.weak_ids[:10], data.weak)
    return h, student, teacher, opt


def test_the_student_step_never_reads_the_strong_feedback_batch():
    data = tiny()
    gold = data.gold.clone()
    gold[data.strong] = (gold[data.strong] + 1) % data.num_tags  # other strong tags
    other = type(data)(data.tokens, data.mask, gold, data.weak, data.strong, data.weak_ids,
                       data.val, data.test)
    h1, s1, t1, o1 = _one_step(data)
    h2, s2, t2, o2 = _one_step(other)
    assert h1 != h2
    assert any(not torch.equal(p, q) for p, q in zip(t1.parameters(), t2.parameters()))
    for p, q in zip(s1.parameters(), s2.parameters()):  # the student and its gradients
        assert torch.equal(p, q) and torch.equal(p.grad, q.grad)
    for a, b in zip(o1.state.values(), o2.state.values()):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_updater_reads_gold_tags_of_strong_sequences_only():
    data = tiny()
    gold = data.gold.clone()
    hidden = torch.cat([data.weak_ids, data.val, data.test])
    gold[hidden] = 0  # the weak sequences' hidden truth, validation and test tags
    other = type(data)(data.tokens, data.mask, gold, data.weak, data.strong, data.weak_ids,
                       data.val, data.test)
    h1, _, t1, _ = _one_step(data)
    h2, _, t2, _ = _one_step(other)
    assert h1 == h2
    for p, q in zip(t1.parameters(), t2.parameters()):
        assert torch.equal(p, q)


def test_meta_arm_is_deterministic_and_selects_on_validation_only():
    data = tb_seq_tagging(num_sequences=300, seed=4)
    kw = dict(seed=2, strong_epochs=10, epochs=2, meta_weight=10.0, control=False)
    a, ua = compare_meta_arms(data, **kw)
    b, ub = compare_meta_arms(data, **kw)
    assert ua["meta"].history == ub["meta"].history and len(ua["meta"].history) > 0
    assert a["meta"].test_f1 == b["meta"].test_f1
    for p, q in zip(a["meta"].model.parameters(), b["meta"].model.parameters()):
        assert torch.equal(p, q)
    gold = data.gold.clone()
    gold[data.test] = 0  # other test tags: nothing before the final score may move
    other = type(data)(data.tokens, data.mask, gold, data.weak, data.strong, data.weak_ids,
                       data.val, data.test)
    c, uc = compare_meta_arms(other, **kw)
    assert uc["meta"].history == ua["meta"].history
    assert (c["meta"].best_epoch, c["meta"].val_f1) == (a["meta"].best_epoch, a["meta"].val_f1)


def test_bad_settings_raise_one_sentence_errors():
    data = tiny()
    _, teacher = nets(data)
    with pytest.raises(MentorError, match="meta_weight"):
        MetaFeedback(teacher, data, meta_weight=-1.0)
    with pytest.raises(MentorError, match="lr"):
        MetaFeedback(teacher, data, lr=0.0)
    empty = type(data)(data.tokens, data.mask, data.gold, data.weak, data.strong[:0],
                       torch.cat([data.weak_ids, data.strong]).sort().values, data.val,
                       data.test)
    with pytest.raises(DataError, match="strong"):
        MetaFeedback(teacher, empty)


def test_baseline_is_updated_before_the_teacher_reads_it():
    """MPL's moving baseline: ``b ← b + β (h − b)`` first, the teacher reads ``h − b``; with
    β = 1 the feedback term vanishes and the teacher's step is its supervised one alone."""
    data = tiny()
    student, teacher = nets(data)
    t2 = copy.deepcopy(teacher)
    batch = data.weak_ids[:10]
    sgd = dict(lr=0.3)
    a = MetaFeedback(teacher, data, threshold=THR, meta_weight=5.0, baseline=1.0, batch_size=6,
                     optimizer=torch.optim.SGD(teacher.parameters(), **sgd))
    b = MetaFeedback(t2, data, threshold=THR, meta_weight=0.0, baseline=1.0, batch_size=6,
                     optimizer=torch.optim.SGD(t2.parameters(), **sgd))
    s2 = copy.deepcopy(student)
    ha = a.step(student, torch.optim.SGD(student.parameters(), lr=0.5), batch, data.weak)
    b.step(s2, torch.optim.SGD(s2.parameters(), lr=0.5), batch, data.weak)
    assert ha != 0 and a.b == ha
    for p, q in zip(teacher.parameters(), t2.parameters()):
        assert torch.allclose(p, q, atol=1e-14)
