"""Refiners on the tagging task judge tokens: the engine hands them the task's elements
(one per real token), so QUEACO's weak-label refiner and a confidence threshold decide per
token; checked against naive per-token loops, and through a training run."""

import pytest
import torch

import mentor  # noqa: F401  (registers built-ins)
from mentor.contracts import Batch, RefinerHooks
from mentor.engine.signal import teacher_targets
from mentor.tasks.tagging import PAD, TAGGING
from mentor.targets import ConfidenceThreshold, WeakLabelRefiner


def _batch(seed=0, rows=6, length=7, tags=7):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, length + 1, (rows,), generator=g)
    pad = torch.arange(length)[None] >= lengths[:, None]
    gold = torch.randint(0, tags, (rows, length), generator=g).masked_fill(pad, PAD)
    weak = torch.randint(0, tags, (rows, length), generator=g).masked_fill(pad, PAD)
    seen = torch.tensor([True, False, False, True, False, False])[:rows]
    weak[seen] = torch.where(weak[seen] == PAD, PAD, -1)  # labeled rows carry no weak tags
    zt = torch.randn(rows, length, tags, generator=g) * 3
    batch = Batch(None, TAGGING.hide(gold, seen), torch.arange(rows), seen, weak_y=weak)
    return zt, gold, batch


def _targets(zt, batch, refiner):
    return teacher_targets(lambda x, idx, view: zt, None, batch.index, None, batch, True,
                           [RefinerHooks(refiner)], TAGGING)[0]


def test_weak_label_refiner_decides_per_token():
    zt, gold, batch = _batch()
    got = _targets(zt, batch, WeakLabelRefiner(0.9))
    probs = torch.softmax(zt, -1)
    want = []
    for r in range(len(gold)):
        for j in range(gold.shape[1]):
            if gold[r, j] == PAD:
                continue
            if batch.labeled[r]:
                want.append(int(gold[r, j]))
                continue
            conf, pred = probs[r, j].max(-1)
            weak = int(batch.weak_y[r, j])
            want.append(int(pred) if conf >= 0.9 and int(pred) != weak else weak)
    assert got.labels.tolist() == want
    assert got.logits.shape == (len(want), 7)
    # a threshold above 1 keeps every weak tag
    never = _targets(zt, batch, WeakLabelRefiner(2.0))
    unl = ~batch.labeled[:, None].expand_as(gold)[gold != PAD]
    assert torch.equal(never.labels[unl], batch.weak_y[gold != PAD][unl])


def test_confidence_threshold_masks_tokens_not_rows():
    zt, gold, batch = _batch(1)
    got = _targets(zt, batch, ConfidenceThreshold(0.8))
    conf = torch.softmax(zt, -1).max(-1).values
    want = [bool(batch.labeled[r]) or bool(conf[r, j] >= 0.8)
            for r in range(len(gold)) for j in range(gold.shape[1]) if gold[r, j] != PAD]
    assert got.mask.tolist() == want
    assert 0 < sum(want) < len(want)  # some tokens of a row in, others out


def test_refined_weak_tags_train_a_tagger_through_the_engine():
    """QUEACO's composition on the engine: CE on the strong tags, pseudo-CE on the weak tags
    the frozen strong-tag teacher refines per token. The refined tags the student learns are
    cleaner than the raw weak tags, as the per-token rule predicts."""
    from mentor.engine import fit
    from mentor.losses.objective import Objective
    from mentor.models.tagger import BiGRUTagger
    from mentor.recipe import TrainSpec
    from mentor.tagging import as_splits, tb_seq_tagging
    from mentor.teachers import ModuleTeacher
    torch.set_num_threads(1)
    splits = as_splits(tb_seq_tagging(600, seed=0, strong_fraction=0.2))
    tr = splits.train
    strong = mentor.data.Split(tr.x[tr.labeled], tr.y[tr.labeled],
                               torch.ones(int(tr.labeled.sum()), dtype=torch.bool))
    torch.manual_seed(0)
    teacher = fit(BiGRUTagger(200, 7, 16, 16), strong, splits.val,
                  objectives=[Objective("ce", 1.0)], spec=TrainSpec(epochs=15, batch_size=16,
                                                                    lr=0.01),
                  seed=0, num_outputs=7, task=TAGGING).model.eval()
    spec = TrainSpec(epochs=6, batch_size=32, lr=0.01)
    torch.manual_seed(0)
    res = fit(BiGRUTagger(200, 7, 8, 8), tr, splits.val,
              objectives=[Objective("ce", 1.0, rows="labeled"),
                          Objective("pseudo_ce", 1.0, rows="unlabeled")],
              refiners=[WeakLabelRefiner(0.9)], teacher=ModuleTeacher(teacher, 7),
              spec=spec, seed=0, num_outputs=7, task=TAGGING)
    torch.manual_seed(0)
    strong_only = fit(BiGRUTagger(200, 7, 8, 8), tr, splits.val,
                      objectives=[Objective("ce", 1.0, rows="labeled")], spec=spec, seed=0,
                      num_outputs=7, task=TAGGING)
    # the refined weak tags add what the strong tags alone do not teach in the same epochs
    assert max(res.history["val_span_f1"]) > max(strong_only.history["val_span_f1"]) + 0.05
    # the targets it learned: per token, refined tags are right more often than weak ones
    weak_rows = ~tr.labeled
    batch = Batch(tr.x[weak_rows], TAGGING.hide(tr.y[weak_rows], torch.zeros(
        int(weak_rows.sum()), dtype=torch.bool)), torch.arange(int(weak_rows.sum())),
        torch.zeros(int(weak_rows.sum()), dtype=torch.bool), weak_y=tr.weak_y[weak_rows])
    with torch.no_grad():
        zt = teacher(tr.x[weak_rows])
    refined = _targets(zt, batch, WeakLabelRefiner(0.9)).labels
    real = tr.y[weak_rows] != PAD
    truth, weak = tr.y[weak_rows][real], tr.weak_y[weak_rows][real]
    assert (refined == truth).float().mean() > (weak == truth).float().mean() + 0.1


def test_pseudo_label_telemetry_scores_tokens():
    """The monitor scores each unlabeled token: with weak tags kept as they are (threshold
    above 1), one epoch's precision is the weak tags' token accuracy on the pool and every
    unlabeled token is covered."""
    from mentor.engine import fit
    from mentor.losses.objective import Objective
    from mentor.models.tagger import BiGRUTagger
    from mentor.recipe import TrainSpec
    from mentor.tagging import as_splits, tb_seq_tagging
    from mentor.teachers import ModuleTeacher
    torch.set_num_threads(1)
    splits = as_splits(tb_seq_tagging(200, seed=1, strong_fraction=0.2))
    tr = splits.train
    torch.manual_seed(0)
    res = fit(BiGRUTagger(200, 7, 4, 4), tr, splits.val,
              objectives=[Objective("ce", 1.0, rows="labeled"),
                          Objective("pseudo_ce", 1.0, rows="unlabeled")],
              refiners=[WeakLabelRefiner(2.0)],
              teacher=ModuleTeacher(BiGRUTagger(200, 7, 4, 4).eval(), 7),
              spec=TrainSpec(epochs=1, batch_size=16, lr=0.01, collapse_steps=0), seed=0,
              num_outputs=7, task=TAGGING)
    pool = ~tr.labeled[:, None] & (tr.y != PAD)
    weak_ok = (tr.weak_y[pool] == tr.y[pool]).double().mean().item()
    assert res.history["pl_precision"][-1] == pytest.approx(weak_ok, abs=1e-12)
    assert res.history["pl_coverage"][-1] == pytest.approx(1.0)
