"""The HGNN teacher's propagation ``D_v^{-1/2} H W D_e^{-1} H^T D_v^{-1/2}`` (Feng et al.
2019) against a naive float64 reference written here, and the two-layer model against the
same formula in dense algebra."""

import random

import torch

from mentor.graphs import HGNN, Hypergraph, contextual_hypergraph, hgnn_propagation, train_hgnn


def naive_propagation(n: int, hyperedges: list[list[int]],
                      weights: list[float]) -> list[list[float]]:
    """Entry (u, v) = Σ_e w(e)·h(u,e)·h(v,e) / (δ(e)·sqrt(d(u)·d(v))), Python floats; a node
    in no hyperedge first gets a one-node hyperedge of weight 1."""
    edges, ws = [list(e) for e in hyperedges], list(weights)
    for v in range(n):
        if not any(v in e for e in edges):
            edges.append([v])
            ws.append(1.0)
    d = [sum(w for e, w in zip(edges, ws) if v in e) for v in range(n)]
    out = [[0.0] * n for _ in range(n)]
    for e, w in zip(edges, ws):
        for u in e:
            for v in e:
                out[u][v] += w / (len(e) * (d[u] * d[v]) ** 0.5)
    return out


def test_propagation_matches_a_naive_float64_reference():
    rng = random.Random(0)
    n = 12
    hyperedges = [rng.sample(range(n - 1), rng.randint(1, 5)) for _ in range(9)]  # node 11 isolated
    weights = [rng.choice([0.5, 0.75, 1.0, 1.5, 2.0]) for _ in hyperedges]  # exact in float32
    got = hgnn_propagation(Hypergraph.from_lists(n, hyperedges, weights), torch.float64)
    want = torch.tensor(naive_propagation(n, hyperedges, weights), dtype=torch.float64)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got.to_dense(), want, rtol=0, atol=1e-12)


def test_two_node_hyperedges_give_half_identity_plus_normalized_adjacency():
    # with unit weights and δ(e) = 2: H H^T = A + D, so L = (I + D^-1/2 A D^-1/2) / 2
    edges = torch.tensor([[0, 0, 1, 2, 3], [1, 2, 2, 3, 4]])
    a = torch.zeros(5, 5, dtype=torch.float64)
    a[edges[0], edges[1]] = 1.0
    a = a + a.t()
    dis = a.sum(1).pow(-0.5)
    want = (torch.eye(5, dtype=torch.float64) + dis[:, None] * a * dis[None, :]) / 2
    got = hgnn_propagation(Hypergraph.from_graph(5, edges), torch.float64).to_dense()
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_without_edges_the_propagation_is_the_identity():
    hg = Hypergraph.from_lists(6, [[0, 1, 2], [3, 4]]).without_edges()
    torch.testing.assert_close(hgnn_propagation(hg).to_dense(), torch.eye(6))


def test_hgnn_is_two_propagated_layers():
    hg = Hypergraph.from_lists(7, [[0, 1, 2], [2, 3, 4, 5], [5, 6], [0, 6]])
    prop = hgnn_propagation(hg)
    torch.manual_seed(0)
    net = HGNN(4, 3, hidden=5).eval()
    x = torch.randn(7, 4)
    dense = prop.to_dense()
    h = torch.relu(dense @ (x @ net.theta0.weight.t() + net.theta0.bias))
    want = dense @ (h @ net.theta1.weight.t() + net.theta1.bias)
    torch.testing.assert_close(net(x, prop), want)
    torch.testing.assert_close(net(x, prop, embedding=True), h)


def test_the_teacher_uses_the_graph():
    d = contextual_hypergraph(num_nodes=600, num_classes=4, num_features=32, num_hyperedges=450,
                              train_per_class=20, val_per_class=30)
    t = train_hgnn(d, seed=0, epochs=100)
    assert t.test_accuracy > t.test_accuracy_without_graph + 0.15, \
        (t.test_accuracy, t.test_accuracy_without_graph)
    assert not t.model.training and 0 <= t.best_epoch < 100
