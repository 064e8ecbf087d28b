"""LightHGNN / LightHGNN⁺ (METHODS.md §38): the reliable-hyperedge selection and the
hyperedge-level KD against hand-computed tiny cases, the whole loss against a naive float64
reference, the degenerate cases (KD weight 0 is the supervised MLP, hyperedge weight 0 is
LightHGNN, both exactly), the engine path with node-id teacher outputs, and the effect."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

import mentor
from mentor.errors import MentorError
from mentor.graphs import (Hypergraph, NodeLogitsTeacher, contextual_hypergraph, distill_mlp,
                           hyperedge_kd, hyperedge_reliability, lighthgnn_loss, reliability,
                           sampled_hyperedge_kd, student_mlp, train_hgnn)

TINY = Hypergraph.from_lists(4, [[0, 1], [1, 2, 3], [3]])


def test_reliability_by_hand():
    clean = torch.tensor([0.1, 0.3, 0.5, 0.7], dtype=torch.float64)
    noisy = torch.tensor([0.2, 0.3, 0.9, 0.7], dtype=torch.float64)
    # hyperedge entropies: clean (0.2, 0.5, 0.7), noisy (0.25, 0.6333.., 0.7)
    # δ = (0.05, 0.1333.., 0); ρ = 1 - δ / max δ = (1 - 0.375, 0, 1)
    torch.testing.assert_close(reliability(clean, noisy, TINY),
                               torch.tensor([0.625, 0.0, 1.0], dtype=torch.float64))
    # only |change| counts: entropies falling under noise are as unreliable as rising ones
    torch.testing.assert_close(reliability(noisy, clean, TINY),
                               torch.tensor([0.625, 0.0, 1.0], dtype=torch.float64))


def test_reliability_when_no_hyperedge_moves_is_one_everywhere():
    h = torch.tensor([0.1, 0.3, 0.5, 0.7])
    assert reliability(h, h.clone(), TINY).tolist() == [1.0, 1.0, 1.0]


def test_hyperedge_reliability_uses_the_official_feature_noise():
    seen = []

    def teacher(x):
        seen.append(x.clone())
        return x[:, :2] * 3.0

    x = torch.randn(4, 3)
    rho = hyperedge_reliability(teacher, x, TINY, noise_level=0.5,
                                generator=torch.Generator().manual_seed(7))
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    assert torch.equal(seen[0], x)
    torch.testing.assert_close(seen[1], x * (eps + 1.0) * 0.5)
    entropy = [-(F.softmax(z, -1) * F.log_softmax(z, -1)).sum(-1) for z in
               (teacher(x), teacher(seen[1]))]
    torch.testing.assert_close(rho, reliability(*entropy, TINY))


def test_hyperedge_kd_by_hand_is_the_kl_of_mean_probabilities():
    hg = Hypergraph.from_lists(3, [[0, 1], [2]])
    pt = [[0.9, 0.1], [0.3, 0.7], [0.5, 0.5]]
    ps = [[0.6, 0.4], [0.2, 0.8], [0.25, 0.75]]
    t_logits = torch.tensor(pt, dtype=torch.float64).log()
    s_logits = torch.tensor(ps, dtype=torch.float64).log()
    # hyperedge 0: teacher mean (0.6, 0.4), student mean (0.4, 0.6)
    e0 = 0.6 * math.log(0.6 / 0.4) + 0.4 * math.log(0.4 / 0.6)
    e1 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    got = hyperedge_kd(s_logits, t_logits, hg)
    torch.testing.assert_close(got, torch.tensor([e0, e1], dtype=torch.float64))
    # a set-level term: not the mean of the members' node-level KL divergences
    node = [sum(p * math.log(p / q) for p, q in zip(pt[v], ps[v])) for v in (0, 1)]
    assert abs(e0 - sum(node) / 2) > 0.03
    assert float(hyperedge_kd(t_logits, t_logits, hg).abs().max()) == 0.0


def test_hyperedges_are_drawn_bernoulli_rho_and_averaged():
    hg = Hypergraph.from_lists(5, [[0, 1], [1, 2], [2, 3, 4], [4]])
    torch.manual_seed(0)
    s, t = torch.randn(5, 3, requires_grad=True), torch.randn(5, 3)
    per_edge = hyperedge_kd(s, t, hg)
    g = torch.Generator().manual_seed(0)
    got = sampled_hyperedge_kd(s, t, hg, torch.tensor([1.0, 0.0, 1.0, 0.0]), g)
    torch.testing.assert_close(got, (per_edge[0] + per_edge[2]) / 2)
    none = sampled_hyperedge_kd(s, t, hg, torch.zeros(4), g)
    assert float(none.detach()) == 0.0 and none.requires_grad
    # draws follow rho: hyperedge e is kept in about rho_e of the steps
    rho = torch.tensor([0.2, 0.5, 0.9, 1.0])
    kept = torch.stack([torch.bernoulli(rho, generator=g) for _ in range(4000)]).mean(0)
    torch.testing.assert_close(kept, rho, atol=0.03, rtol=0)


def _naive_loss(s, t, y, train, lamb, keep, hyperedges):
    """λ·CE(train) + (1-λ)·[mean_v KL(p_t,v ‖ p_s,v) + mean_{e kept} KL(p̄_t,e ‖ p̄_s,e)],
    Python floats."""
    def softmax(row):
        m = max(row)
        ex = [math.exp(r - m) for r in row]
        return [e / sum(ex) for e in ex]

    ps = [softmax(r) for r in s.tolist()]
    pt = [softmax(r) for r in t.tolist()]
    ce = [-math.log(ps[v][y[v]]) for v in range(len(y)) if train[v]]
    kl = [sum(a * math.log(a / b) for a, b in zip(pt[v], ps[v])) for v in range(len(y))]
    hc = []
    for e, members in enumerate(hyperedges):
        if keep[e]:
            mt = [sum(pt[v][c] for v in members) / len(members) for c in range(len(pt[0]))]
            ms = [sum(ps[v][c] for v in members) / len(members) for c in range(len(pt[0]))]
            hc.append(sum(a * math.log(a / b) for a, b in zip(mt, ms)))
    return lamb * sum(ce) / len(ce) + (1 - lamb) * (sum(kl) / len(kl) + sum(hc) / len(hc))


def test_loss_matches_a_naive_float64_reference():
    hyperedges = [[0, 1, 2], [2, 3], [4, 5, 0], [1, 5], [3]]
    hg = Hypergraph.from_lists(6, hyperedges)
    torch.manual_seed(1)
    s = torch.randn(6, 3, dtype=torch.float64)
    t = torch.randn(6, 3, dtype=torch.float64) * 2
    y = torch.tensor([0, 2, 1, 1, 0, 2])
    train = torch.tensor([True, False, True, False, False, True])
    rho = torch.tensor([0.9, 0.4, 0.7, 0.5, 0.8], dtype=torch.float64)
    keep = torch.bernoulli(rho, generator=torch.Generator().manual_seed(3)).bool().tolist()
    assert any(keep) and not all(keep)
    got = lighthgnn_loss(s, t, y, train, lamb=0.3, hypergraph=hg, rho=rho,
                         generator=torch.Generator().manual_seed(3))
    want = _naive_loss(s, t, y.tolist(), train.tolist(), 0.3, keep, hyperedges)
    assert abs(float(got) - want) < 1e-12, (float(got), want)


@pytest.fixture(scope="module")
def small():
    """TB-GRAPH at METHODS.md's size: 600 nodes, 4 classes, 32 features, 20 labels per class;
    an HGNN teacher (100 epochs), its logits and hyperedge reliabilities."""
    d = contextual_hypergraph(num_nodes=600, num_classes=4, num_features=32,
                              num_hyperedges=450, train_per_class=20, val_per_class=30)
    t = train_hgnn(d, seed=0, epochs=100)
    rho = hyperedge_reliability(t.logits, d.x, d.hypergraph.with_singletons(),
                                generator=torch.Generator().manual_seed(0))
    return d, t, t.logits(d.x), rho


def _supervised_by_hand(d, seed, epochs):
    """The MLP on the labels alone, written out: full batch CE, Adam, best validation."""
    torch.manual_seed(seed)
    net = student_mlp(d.x.shape[1], d.num_classes)
    opt = torch.optim.Adam(net.parameters(), lr=0.01, weight_decay=5e-4)
    best, best_val = None, -1.0
    for _ in range(epochs):
        net.train()
        opt.zero_grad()
        F.cross_entropy(net(d.x)[d.train_mask], d.y[d.train_mask]).backward()
        opt.step()
        net.eval()
        with torch.no_grad():
            val = float((net(d.x)[d.val_mask].argmax(-1) == d.y[d.val_mask]).float().mean())
        if val > best_val:
            best, best_val = copy.deepcopy(net.state_dict()), val
    return best


def _equal_weights(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_kd_weight_zero_is_the_supervised_mlp_exactly(small):
    d, _, z, rho = small
    want = _supervised_by_hand(d, seed=2, epochs=25)
    for got in (distill_mlp(d, z, lamb=1.0, rho=rho, seed=2, epochs=25),
                distill_mlp(d, None, lamb=1.0, seed=2, epochs=25)):
        assert _equal_weights(got.model.state_dict(), want)


def test_hyperedge_weight_zero_is_lighthgnn_exactly_and_the_hyperedge_term_changes_it(small):
    d, _, z, rho = small
    plain = distill_mlp(d, z, seed=1, epochs=25).model.state_dict()
    off = distill_mlp(d, z, rho=rho, hc_weight=0.0, seed=1, epochs=25).model.state_dict()
    on = distill_mlp(d, z, rho=rho, seed=1, epochs=25).model.state_dict()
    assert _equal_weights(plain, off)
    assert not _equal_weights(plain, on)


def test_distilled_mlp_beats_the_mlp_on_labels_alone(small):
    d, t, z, rho = small
    alone = distill_mlp(d, None, lamb=1.0, seed=0, epochs=100)
    light = distill_mlp(d, z, seed=0, epochs=100)
    plus = distill_mlp(d, z, rho=rho, seed=0, epochs=100)
    assert light.test_accuracy > alone.test_accuracy + 0.15, (light.test_accuracy,
                                                              alone.test_accuracy)
    assert plus.test_accuracy > alone.test_accuracy + 0.15
    assert t.test_accuracy > alone.test_accuracy


def test_the_engine_distils_from_node_logits_served_by_node_id(small):
    d, _, z, _ = small
    asked = []

    class Recording(NodeLogitsTeacher):
        def logits_at(self, x, index):
            asked.append(index.clone())
            return super().logits_at(x, index)

    dist = mentor.Distiller(lambda: student_mlp(d.x.shape[1], d.num_classes), Recording(z),
                            method="kd", alpha=1.0, temperature=1.0, epochs=40,
                            batch_size=d.num_nodes, lr=0.01, weight_decay=5e-4, seed=0)
    dist.fit(d.splits())
    # the frozen table is looked up once for all nodes (cached), by node id
    assert torch.equal(torch.cat(asked), torch.arange(d.num_nodes))
    ids = torch.tensor([5, 2, 599])
    assert torch.equal(NodeLogitsTeacher(z).logits_at(d.x[ids], ids), z[ids])
    with torch.no_grad():
        agree = float((dist.model(d.x).argmax(-1) == z.argmax(-1)).float().mean())
    assert agree > 0.7, agree  # the student lacks the graph: agreement stays below 1


def test_bad_distillation_input_is_one_sentence(small):
    d, _, z, _ = small
    with pytest.raises(MentorError, match=r"^lamb 0\.5 < 1 distils, but no teacher_logits were "
                                          r"given; expected the teacher's logits for every "
                                          r"node$"):
        distill_mlp(d, None, lamb=0.5)
    with pytest.raises(MentorError, match=r"^teacher_logits has shape \(10, 4\); expected "
                                          r"\(600, 4\): one row of class logits per node$"):
        distill_mlp(d, z[:10])
    with pytest.raises(MentorError, match=r"^node id 600 asked of a table of 600 nodes; "
                                          r"expected ids in 0\.\.599$"):
        NodeLogitsTeacher(z).logits_at(d.x[:1], torch.tensor([600]))
