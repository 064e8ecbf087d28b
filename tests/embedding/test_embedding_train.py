"""Cluster contrast and Learning to Purification's offline teacher on TB-REID (METHODS.md
§33): the distillation terms against naive float64 formulas, the teacher's first epoch
(labels from the teacher's embeddings, frozen memory), deterministic runs, selection reads
the validation split only, bad input one sentence, and the effect on a quick setting:
cluster contrast beats the raw features on test mAP on 3 of 3 seeds."""

import math

import pytest
import torch

from mentor.errors import DataError, MentorError
from mentor.embedding import (ReIDData, assignment_distillation, cluster_centroids,
                              cluster_labels, compare_arms, embed, feature_distillation,
                              label_quality, raw_features, tb_reid, train_embedder)

SMALL = dict(train_identities=60, val_identities=20, test_identities=40)
QUICK = dict(epochs=3, steps=15)


@pytest.fixture(scope="module")
def data():
    return tb_reid(seed=5, **SMALL)


def test_feature_distillation_matches_the_naive_formula():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 4, generator=g, dtype=torch.float64), \
        torch.randn(5, 4, generator=g, dtype=torch.float64)
    want = []
    for a, b in zip(s.tolist(), t.tolist()):
        na, nb = math.sqrt(sum(v * v for v in a)), math.sqrt(sum(v * v for v in b))
        want.append(sum((x / na - y / nb) ** 2 for x, y in zip(a, b)))
    assert feature_distillation(s, t).tolist() == pytest.approx(want, abs=1e-12)
    assert feature_distillation(s, 3 * s).abs().max() < 1e-12  # scale-free


def test_assignment_distillation_matches_the_naive_formula():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(4, 3, generator=g, dtype=torch.float64), \
        torch.randn(4, 5, generator=g, dtype=torch.float64)
    cs = torch.nn.functional.normalize(torch.randn(6, 3, generator=g, dtype=torch.float64), dim=1)
    ct = torch.nn.functional.normalize(torch.randn(6, 5, generator=g, dtype=torch.float64), dim=1)

    def soft(f, c, tau):
        n = math.sqrt(sum(v * v for v in f))
        z = [sum(a * b for a, b in zip(f, row)) / n / tau for row in c]
        m = max(z)
        e = [math.exp(v - m) for v in z]
        return [v / sum(e) for v in e]
    for tau in (0.1, 1.0):
        want = []
        for a, b in zip(s.tolist(), t.tolist()):
            ps, pt = soft(a, cs.tolist(), tau), soft(b, ct.tolist(), tau)
            want.append(sum(q * (math.log(q) - math.log(p)) for p, q in zip(ps, pt)))
        got = assignment_distillation(s, t, cs, ct, tau)
        assert got.tolist() == pytest.approx(want, abs=1e-9)


def test_the_student_starts_from_the_teachers_labels_and_frozen_memory(data, monkeypatch):
    import mentor.embedding.train as train_module
    made = []

    class Recorded(train_module.ClusterMemory):
        def __init__(self, centroids, **kw):
            super().__init__(centroids, **kw)
            made.append((self.momentum, self.centroids.clone()))
    monkeypatch.setattr(train_module, "ClusterMemory", Recorded)
    teacher = train_embedder(data, seed=1, **QUICK)
    assert [h["labels_from"] for h in teacher.history] == ["raw", "student", "student"]
    made.clear()
    student = train_embedder(data, teacher=teacher.model, seed=1, **QUICK)
    t_emb = embed(teacher.model, data.x[data.train])
    lab = torch.from_numpy(cluster_labels(t_emb, eps=0.5))
    assert [m for m, _ in made] == [1.0, 0.2, 0.2]  # frozen in the teacher's epoch
    assert torch.allclose(made[0][1], cluster_centroids(t_emb, lab), atol=1e-6)
    first = student.history[0]
    assert first["labels_from"] == "teacher" and first["momentum"] == 1.0
    assert [h["labels_from"] for h in student.history[1:]] == ["student", "student"]
    assert student.history[1]["momentum"] == 0.2
    want = label_quality(lab.numpy(), data.identity[data.train])
    assert {k: first[k] for k in want} == want
    # the teacher stays frozen
    assert all(not p.requires_grad for p in teacher.model.parameters())


def test_training_is_deterministic_and_selection_reads_validation_only(data):
    a = train_embedder(data, seed=2, **QUICK)
    b = train_embedder(data, seed=2, **QUICK)
    assert a.history == b.history and a.best_epoch == b.best_epoch and a.test == b.test
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)
    # other test identities and cameras: the selected epoch and its weights must not move
    ident, cam = data.identity.clone(), data.camera.clone()
    test = torch.cat([data.query, data.gallery])
    ident[test] = ident[test].flip(0)
    cam[test] = (cam[test] + 1) % 4
    other = ReIDData(data.x, ident, cam, data.train, data.val_query, data.val_gallery,
                     data.query, data.gallery, data.source)
    c = train_embedder(other, seed=2, **QUICK)
    assert c.best_epoch == a.best_epoch and c.val_mAP == a.val_mAP
    assert [h["val_mAP"] for h in c.history] == [h["val_mAP"] for h in a.history]
    for p, q in zip(a.model.parameters(), c.model.parameters()):
        assert torch.equal(p, q)


def test_generator_is_deterministic_with_disjoint_identities_and_the_query_protocol():
    a, b = tb_reid(seed=3, **SMALL), tb_reid(seed=3, **SMALL)
    assert torch.equal(a.x, b.x) and torch.equal(a.camera, b.camera)
    assert not torch.equal(a.x, tb_reid(seed=4, **SMALL).x)
    # one query per (test identity, camera), the rest in the gallery
    for i in torch.unique(a.identity[a.query]).tolist():
        rows = (a.identity == i).nonzero().flatten()
        q = [r for r in rows.tolist() if r in set(a.query.tolist())]
        assert sorted(a.camera[q].tolist()) == sorted(set(a.camera[rows].tolist()))
        assert len(set(a.camera[rows].tolist())) >= 2
    two = tb_reid(seed=3, samples_per_identity=2, cameras=2, **SMALL)
    for i in range(120):  # two samples from two cameras: never the same camera twice
        assert sorted(two.camera[two.identity == i].tolist()) == [0, 1]
    assert len(two.query) == 2 * 40 and len(two.gallery) == 0
    s = tb_reid(seed=3, source_identities=10, **SMALL)
    assert len(s.source) == 10 * 12 and torch.equal(s.x[s.train], a.x[a.train])
    assert "source domain 120 labeled samples of 10 identities" in s.describe()
    # the source domain's style: per-dimension offsets of 0.5·N(0, 1) move the means
    assert (s.x[s.source].mean(0) - s.x[s.train].mean(0)).abs().mean() > 0.2
    src = train_embedder(s, labels="identity", split="source", seed=0, epochs=1, steps=5)
    assert src.history[0]["labels_from"] == "identity" and src.history[0]["purity"] == 1.0
    warm = train_embedder(s, init=src.model, seed=0, epochs=1, steps=1, lr=1e-9)
    assert warm.history[0]["labels_from"] == "student"


def test_bad_input_is_one_sentence(data):
    with pytest.raises(MentorError, match=r"^labels must be one of clusters, identity, got "
                                          r"'gold'$"):
        train_embedder(data, labels="gold")
    with pytest.raises(MentorError, match=r"^batch_size must be a multiple of instances \(4\), "
                                          r"got 30$"):
        train_embedder(data, batch_size=30)
    with pytest.raises(MentorError, match=r"^teacher must be None with labels 'identity'"):
        train_embedder(data, labels="identity", teacher=torch.nn.Linear(64, 4))
    with pytest.raises(DataError, match=r"^source names no sample; expected training samples$"):
        train_embedder(data, labels="identity", split="source")
    with pytest.raises(MentorError, match=r"^init must be an Embedder of input 64, hidden 128 "
                                          r"and output 64, got Linear with other weights$"):
        train_embedder(data, init=torch.nn.Linear(64, 4))
    with pytest.raises(MentorError, match=r"^arms must be among raw, contrast, "):
        compare_arms(data, arms=("raw", "oracle"))
    with pytest.raises(DataError, match=r"^identity 70 appears in the validation and the test "
                                        r"samples; expected disjoint identities$"):
        ident = data.identity.clone()
        ident[data.query[0]] = 70
        ReIDData(data.x, ident, data.camera, data.train, data.val_query, data.val_gallery,
                 data.query, data.gallery, data.source)
    with pytest.raises(MentorError, match=r"^samples_per_identity must be an integer >= 2, "
                                          r"got 1$"):
        tb_reid(samples_per_identity=1)


def test_cluster_contrast_beats_raw_features_on_three_seeds():
    for seed in (0, 1, 2):
        d = tb_reid(seed=seed, train_identities=100, test_identities=60)
        raw = raw_features(d)
        trained = train_embedder(d, seed=seed, epochs=4, steps=30)
        assert trained.test["mAP"] > raw.test["mAP"] + 0.03, (seed, raw.test, trained.test)
