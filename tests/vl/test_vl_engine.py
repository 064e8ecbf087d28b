"""The zero-shot teacher through mentor's engine (KD, DHO, an SSL composition, an active
selector), PromptKD's shared classifier, and the OOD arms of system 56 -- figures on
validation rows only."""

import warnings

import pytest
import torch

import mentor
from mentor.select import Pool, ProbabilisticCoreSet, select
from mentor.vl import vl_digits
from mentor.vl.objectives import l_cls, l_cst, l_mse, l_vlalign
from mentor.vl.ood import (ARMS, FeatureStudent, arm_loss, local_labels, nearest_text,
                           train_arm, zero_shot_accuracy)
from mentor.vl.promptkd import FrozenProbe, PromptKDStudent

warnings.filterwarnings("ignore")


def _mlp():
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(),
                               torch.nn.Linear(32, 10))


def _val(dist, splits):
    return dist.evaluate(splits, "val")["accuracy"]


@pytest.mark.parametrize("method, kw", [("kd", dict(alpha=0.5, temperature=2.0)),
                                        ("dho", {}), ("ssld", {})])
def test_distillation_methods_train_from_the_vl_teacher(teacher, vl_data, method, kw):
    d = mentor.Distiller(_mlp, teacher, method=method, epochs=6, lr=3e-3, **kw)
    d.fit(vl_data.splits)
    scratch = mentor.Distiller(_mlp, None, method="scratch", epochs=6, lr=3e-3)
    scratch.fit(vl_data.splits)
    assert _val(d, vl_data.splits) > _val(scratch, vl_data.splits) + 0.1


@pytest.mark.parametrize("updater", [None, {"name": "static_ema", "decay": 0.9}])
def test_an_ssl_composition_takes_pseudo_labels_from_the_vl_teacher(teacher, vl_data, updater):
    """CE on the labels + thresholded pseudo-CE on unlabeled rows, the pseudo-labels from the
    frozen VL teacher alone, or (system 9, BUS-SSL) from the VL teacher fused by entropy with
    an EMA teacher of the student (updater ``static_ema``)."""
    before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    d = mentor.Distiller(_mlp, teacher, method="compose", epochs=4, lr=3e-3, batch_size=16,
                         unlabeled_ratio=3, objectives=[
                             {"loss": "ce", "rows": "labeled"},
                             {"loss": "pseudo_ce", "rows": "unlabeled", "normalize": "rows"}],
                         refiners=[{"name": "threshold", "threshold": 0.5}], updater=updater)
    result = d.fit(vl_data.splits)
    assert result.history["pl_coverage"][-1] > 0.2
    assert _val(d, vl_data.splits) > 0.5
    assert all(torch.equal(v, teacher.model.state_dict()[k]) for k, v in before.items())


def test_pcoreset_picks_from_a_dho_student_of_the_vl_teacher(teacher, vl_data):
    d = mentor.Distiller(_mlp, teacher, method="dho", epochs=3, lr=3e-3)
    d.fit(vl_data.splits)
    train = vl_data.splits.train
    pool_rows = torch.nonzero(~train.labeled).flatten()[:200]
    pool = Pool(train.x[pool_rows], pool_rows, train.x[train.labeled])
    picked = select(ProbabilisticCoreSet(), pool, 10, teacher=teacher, student=d.model)
    assert len(set(picked.tolist())) == 10
    classes = teacher.logits(pool.x[picked]).argmax(1)
    assert len(set(classes.tolist())) >= 5  # the picks cover the (pseudo-)classes


def test_promptkd_keeps_the_teachers_text_table_and_beats_the_probe_on_val(teacher, vl_data):
    sp = vl_data.splits
    kd = mentor.Distiller(lambda: PromptKDStudent(teacher.text_features, teacher.scale), teacher,
                          method="kd", alpha=1.0, temperature=1.0, epochs=8, lr=3e-3)
    kd.fit(sp)
    probe = mentor.Distiller(lambda: FrozenProbe(10), None, method="scratch", epochs=40,
                             lr=1e-2)
    probe.fit(sp)
    student = kd.model
    assert torch.allclose(student.text_features, teacher.text_features)
    assert float(student.scale) == pytest.approx(teacher.scale)
    fresh = PromptKDStudent(teacher.text_features, teacher.scale)
    assert torch.equal(student.features.weight, fresh.features.weight)  # frozen extractor
    assert float(student.prompt.abs().sum()) > 0  # the prompt learned
    assert _val(kd, sp) > _val(probe, sp) + 0.1


def test_promptkd_logits_are_the_scaled_cosines_to_the_text_table(teacher):
    s = PromptKDStudent(teacher.text_features, teacher.scale).eval()
    x = torch.rand(4, 64)
    e = s.projector(s.features(x + s.prompt))
    e = e / e.norm(dim=-1, keepdim=True)
    w = teacher.text_features / teacher.text_features.norm(dim=-1, keepdim=True)
    assert torch.allclose(s(x), teacher.scale * e @ w.T, atol=1e-5)


SEEN, UNSEEN = list(range(7)), [7, 8, 9]


@pytest.fixture(scope="module")
def ood_rows():
    sp = vl_digits(0, labels_per_class=None).splits

    def rows(split, cls):
        m = torch.isin(split.y, torch.tensor(cls))
        return split.x[m], split.y[m]
    return rows(sp.train, SEEN), rows(sp.val, SEEN), rows(sp.val, UNSEEN)


def test_text_anchored_students_name_unseen_classes_the_ce_student_cannot(teacher, ood_rows):
    (x, y), (xv, yv), (xo, yo) = ood_rows
    acc = {}
    for arm in ("ce", "cls+feat"):
        r = train_arm(arm, teacher, x, y, xv, yv, SEEN, epochs=15, seed=0)
        acc[arm] = zero_shot_accuracy(r, teacher, xo, yo, UNSEEN)
        assert zero_shot_accuracy(r, teacher, xv, yv, SEEN, seen=True) == r.val_accuracy
    assert acc["cls+feat"] > acc["ce"] + 0.15


def test_ood_selection_reads_only_seen_validation_rows(teacher, ood_rows):
    (x, y), (xv, yv), _ = ood_rows
    with pytest.raises(mentor.errors.MentorError, match=r"labels \[7"):
        train_arm("cls", teacher, x, y, torch.cat([xv, xv[:1]]),
                  torch.cat([yv, torch.tensor([7])]), SEEN, epochs=1)
    with pytest.raises(mentor.errors.MentorError, match="ood arm 'mse' is unknown"):
        train_arm("mse", teacher, x, y, xv, yv, SEEN)
    assert set(ARMS) == {"ce", "cls", "cls+feat", "cls+feat+vlalign"}


def test_nearest_text_and_local_labels():
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    assert nearest_text(torch.tensor([[0.1, 2.0], [-3.0, 0.5]]), text).tolist() == [1, 2]
    assert local_labels(torch.tensor([9, 7, 8]), [7, 8, 9]).tolist() == [2, 0, 1]


def test_each_ood_arm_trains_on_the_sum_of_its_objectives():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = FeatureStudent(64, 8, 4)
    x, v, text = torch.rand(12, 64, generator=g), torch.randn(12, 8, generator=g), \
        torch.randn(4, 8, generator=g)
    y = torch.randint(4, (12,), generator=g)
    u = model(x)
    cls = l_cls(u, text, y)
    feat = l_mse(u, v) + l_cst(u, v)
    want = {"ce": torch.nn.functional.cross_entropy(model.head(u), y), "cls": cls,
            "cls+feat": cls + feat,
            "cls+feat+vlalign": cls + feat + l_vlalign(u, v, text, 3, y=y,
                                                       teacher_correct=True)}
    for arm in ARMS:
        assert torch.allclose(arm_loss(arm, model, x, y, v, text, 3), want[arm]), arm
