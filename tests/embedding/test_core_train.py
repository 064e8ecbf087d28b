"""CORE-ReID's training (METHODS.md §43): source pre-training reads the source labels only,
the target adaptation never reads the target training identities, one pseudo-label set per
view from the teacher's features, the EMA teacher at momentum 0 (the student) and 1 (frozen),
the official momentum schedule, deterministic runs, selection on the validation split
only, bad input in one sentence."""

import dataclasses

import pytest
import torch

from mentor.embedding import (compare_core_arms, evaluate_views, label_quality, multiview_labels,
                              pretrain_source, tb_reid_parts, train_core_reid, view_features)
from mentor.errors import MentorError
from mentor.updates.ema import EMA

SMALL = dict(train_identities=16, val_identities=6, test_identities=6, source_identities=16,
             samples_per_identity=6)
PRE = dict(epochs=2, steps=4, batch_size=16)
TRAIN = dict(epochs=3, steps=3, batch_size=16, clusters=8)


@pytest.fixture(scope="module")
def data():
    return tb_reid_parts(seed=2, **SMALL)


@pytest.fixture(scope="module")
def pre(data):
    return pretrain_source(data, seed=0, **PRE)


def _with_x(data, rows, x_new):
    x = data.x.clone()
    x[rows] = x_new
    return dataclasses.replace(data, x=x)


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_pretraining_reads_the_source_labels_and_no_target_training_sample(data, pre):
    noise = torch.randn(len(data.train), data.dim, generator=torch.Generator().manual_seed(9))
    longer = dict(PRE, steps=12)
    base = pretrain_source(data, seed=0, **longer)
    other = pretrain_source(_with_x(data, data.train, noise), seed=0, **longer)
    assert _same_weights(base.model, other.model)
    ident = data.identity.clone()
    src = data.source
    ident[src] = ident[src][torch.randperm(len(src), generator=torch.Generator().manual_seed(1))]
    shuffled = pretrain_source(dataclasses.replace(data, identity=ident), seed=0, **PRE)
    assert not _same_weights(pre.model, shuffled.model)
    assert pre.model.classifier.out_features == 16


def test_adaptation_never_reads_the_target_training_identities(data, pre):
    a = train_core_reid(data, pre.model, seed=0, **TRAIN)
    ident = data.identity.clone()
    tr = data.train
    ident[tr] = ident[tr][torch.randperm(len(tr), generator=torch.Generator().manual_seed(3))]
    b = train_core_reid(dataclasses.replace(data, identity=ident), pre.model, seed=0, **TRAIN)
    assert _same_weights(a.model, b.model) and a.val_mAP == b.val_mAP


def test_one_label_set_per_view_from_the_teachers_features(data, pre):
    r = train_core_reid(data, pre.model, seed=0, **TRAIN)
    g = train_core_reid(data, pre.model, seed=0, views="global", **TRAIN)
    assert all(len(h["nmi"]) == 3 for h in r.history) and r.views == 3
    assert all(len(h["nmi"]) == 1 for h in g.history) and g.views == 1
    # the first epoch clusters the pre-trained model's views, each on its own
    feats = view_features(pre.model, data.x[data.train])
    labs = multiview_labels(feats, 8, seed=0)
    truth = data.identity[data.train]
    assert r.history[0]["nmi"] == [label_quality(lab.numpy(), truth)["nmi"] for lab in labs]
    assert g.history[0]["nmi"] == r.history[0]["nmi"][:1]
    f = train_core_reid(data, pre.model, seed=0, fusion=True, **TRAIN)
    assert len(f.history[0]["nmi"]) == 3 and f.history[0]["nmi"] != r.history[0]["nmi"]


def test_ema_momentum_zero_is_the_student_and_one_freezes_the_teacher(data, pre):
    one = dict(TRAIN, epochs=1)
    r0 = train_core_reid(data, pre.model, seed=0, alpha=0.0, **one)
    assert _same_weights(r0.model, r0.student)
    r1 = train_core_reid(data, pre.model, seed=0, alpha=1.0, warmup=False, **one)
    frozen = {k: v for k, v in r1.model.state_dict().items()
              if k.startswith(("trunks", "fc", "ecab")) or k.endswith(("weight", "bias"))
              and not k.startswith("classifier")}
    init = pre.model.state_dict()
    assert frozen and all(torch.equal(v, init[k]) for k, v in frozen.items())
    assert not _same_weights(r1.model, r1.student)
    # the official schedule: min(1 - 1/(t + 1), alpha) at 0-based step t; its first step
    # copies the student
    first = train_core_reid(data, pre.model, seed=0, alpha=1.0, **dict(one, steps=1))
    assert _same_weights(first.model, first.student)
    ema = EMA(0.99, warmup=True)
    assert [ema.decay_at(t) for t in (0, 1, 9, 1000)] == [0.0, 0.5, 0.9, 0.99]


def test_runs_are_deterministic(data, pre):
    a = train_core_reid(data, pre.model, seed=1, fusion=True, **TRAIN)
    b = train_core_reid(data, pre.model, seed=1, fusion=True, **TRAIN)
    assert _same_weights(a.model, b.model) and a.history == b.history and a.test == b.test


def test_selection_reads_the_validation_split_only(data, pre):
    a = train_core_reid(data, pre.model, seed=0, **TRAIN)
    rows = torch.cat([data.query, data.gallery])
    noise = torch.randn(len(rows), data.dim, generator=torch.Generator().manual_seed(5))
    b = train_core_reid(_with_x(data, rows, noise), pre.model, seed=0, **TRAIN)
    assert a.best_epoch == b.best_epoch and _same_weights(a.model, b.model)
    assert a.test != b.test
    best = max(range(len(a.history)), key=lambda e: (a.history[e]["val_mAP"], -e))
    assert a.best_epoch == best and a.val_mAP == a.history[best]["val_mAP"]
    # a run whose best epoch is not the last returns the best epoch's teacher
    c = train_core_reid(data, pre.model, seed=0, lr=0.3, **TRAIN)
    assert c.best_epoch < len(c.history) - 1
    assert evaluate_views(c.model, data, "val", c.views)["mAP"] == c.val_mAP


def test_compare_arms_and_bad_input(data):
    arms = compare_core_arms(data, seed=0, pretrain=PRE, **TRAIN)
    assert list(arms) == ["source_only", "single_view", "multi_view", "multi_view_fusion"]
    assert arms["source_only"].views == 1 and arms["multi_view"].views == 3
    with pytest.raises(MentorError, match="views"):
        train_core_reid(data, arms["source_only"].model, views="parts")
    with pytest.raises(MentorError, match="fusion"):
        train_core_reid(data, arms["source_only"].model, views="global", fusion=True)
    with pytest.raises(MentorError, match="init must be a PartEmbedder"):
        train_core_reid(data, torch.nn.Linear(2, 2))
    with pytest.raises(MentorError, match="arms"):
        compare_core_arms(data, arms=("dual",))
