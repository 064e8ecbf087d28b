"""TB-GRAPH and the node-data structures: the generator is deterministic and has the
structure it promises; the pairwise view is the clique expansion; bad input is refused in
one sentence that names the field, the value and what is expected."""

import numpy as np
import pytest
import torch

from mentor.errors import DataError, MentorError
from mentor.graphs import Hypergraph, NodeData, contextual_hypergraph

SMALL = dict(num_nodes=300, num_classes=3, num_features=16, num_hyperedges=200,
             train_per_class=5, val_per_class=20)


def _same(a: NodeData, b: NodeData) -> bool:
    return all(torch.equal(getattr(a, k), getattr(b, k))
               for k in ("x", "y", "train_mask", "val_mask", "test_mask", "noise_edges")) and \
        torch.equal(a.hypergraph.nodes, b.hypergraph.nodes) and \
        torch.equal(a.hypergraph.edges, b.hypergraph.edges)


def test_generation_is_deterministic_for_a_seed_and_differs_across_seeds():
    a, b = contextual_hypergraph(**SMALL, seed=3), contextual_hypergraph(**SMALL, seed=3)
    assert _same(a, b)
    assert not _same(a, contextual_hypergraph(**SMALL, seed=4))


def test_testbed_has_the_promised_structure():
    d = contextual_hypergraph(**SMALL, homophily=0.9, noise_edges=0.25)
    assert d.x.shape == (300, 16) and d.x.dtype == torch.float32
    assert torch.bincount(d.y).tolist() == [100, 100, 100]
    for c in range(3):
        assert int(d.train_mask[d.y == c].sum()) == 5
        assert int(d.val_mask[d.y == c].sum()) == 20
    assert bool((d.train_mask ^ d.val_mask ^ d.test_mask).all())  # a partition
    assert int(d.noise_edges.sum()) == 50
    sizes = d.hypergraph.sizes
    assert int(sizes.min()) >= 3 and int(sizes.max()) <= 8

    def majority(e):  # share of a hyperedge's members in its most common class
        ys = d.y[d.hypergraph.members(e)]
        return float(torch.bincount(ys, minlength=3).max()) / len(ys)
    clean = np.mean([majority(e) for e in range(200) if not d.noise_edges[e]])
    noise = np.mean([majority(e) for e in range(200) if d.noise_edges[e]])
    assert clean > 0.85 and noise < 0.7, (clean, noise)


def test_clique_expansion_by_hand():
    hg = Hypergraph.from_lists(5, [[0, 1, 2], [2, 3], [1, 0], [4]])
    assert hg.clique_expansion().tolist() == [[0, 0, 1, 2], [1, 2, 2, 3]]
    assert hg.sizes.tolist() == [3, 2, 2, 1]
    assert hg.degrees.tolist() == [2.0, 2.0, 2.0, 1.0, 1.0]
    assert hg.incidence().to_dense().tolist() == [[1, 0, 1, 0], [1, 0, 1, 0], [1, 1, 0, 0],
                                                  [0, 1, 0, 0], [0, 0, 0, 1]]


def test_a_plain_graph_is_two_node_hyperedges_and_its_clique_expansion_is_itself():
    edges = torch.tensor([[0, 2, 3, 1], [1, 1, 4, 4]])
    hg = Hypergraph.from_graph(5, edges)
    assert hg.num_edges == 4 and hg.sizes.tolist() == [2, 2, 2, 2]
    assert hg.clique_expansion().tolist() == [[0, 1, 1, 3], [1, 2, 4, 4]]
    assert Hypergraph.from_graph(5, edges.t()).clique_expansion().tolist() == \
        hg.clique_expansion().tolist()


def test_isolated_nodes_get_one_node_hyperedges_and_without_edges_leaves_every_node_alone():
    hg = Hypergraph.from_lists(4, [[0, 1]])
    fixed = hg.with_singletons()
    assert fixed.num_edges == 3 and fixed.members(1) == [2] and fixed.members(2) == [3]
    assert Hypergraph.from_lists(2, [[0, 1]]).with_singletons().num_edges == 1
    alone = hg.without_edges()
    assert [alone.members(e) for e in range(4)] == [[0], [1], [2], [3]]


def test_splits_train_on_every_node_in_id_order_labeled_where_the_train_mask_is():
    d = contextual_hypergraph(**SMALL)
    s = d.splits()
    assert torch.equal(s.train.x, d.x) and torch.equal(s.train.labeled, d.train_mask)
    assert torch.equal(s.val.y, d.y[d.val_mask]) and torch.equal(s.test.x, d.x[d.test_mask])
    assert s.num_classes == 3 and s.input_shape == (16,)


def _data(**changes):
    n = 4
    base = dict(x=torch.zeros(n, 2), y=torch.tensor([0, 1, 0, 1]),
                hypergraph=Hypergraph.from_lists(n, [[0, 1], [2, 3]]),
                train_mask=torch.tensor([True, True, False, False]),
                val_mask=torch.tensor([False, False, True, False]),
                test_mask=torch.tensor([False, False, False, True]), num_classes=2)
    return NodeData(**{**base, **changes})


BAD = {
    "hyperedge-to-missing-node": (lambda: Hypergraph.from_lists(5, [[0, 1], [2, 5]]),
                                  "hyperedges[1] names node 5, but there are 5 nodes; expected "
                                  "ids in 0..4"),
    "negative-node": (lambda: Hypergraph.from_lists(5, [[-1, 2]]),
                      "hyperedges[0] names node -1, but there are 5 nodes; expected ids in "
                      "0..4"),
    "empty-hyperedge": (lambda: Hypergraph.from_lists(5, [[0, 1], []]),
                        "hyperedges[1] is empty; expected at least one node id"),
    "node-twice": (lambda: Hypergraph.from_lists(5, [[0, 3, 3]]),
                   "hyperedges[0] names node 3 twice; expected each node at most once per "
                   "hyperedge"),
    "weights-count": (lambda: Hypergraph.from_lists(5, [[0, 1]], weights=[1.0, 2.0]),
                      "weights has 2 entries for 1 hyperedges; expected one weight per "
                      "hyperedge"),
    "weight-negative": (lambda: Hypergraph.from_lists(5, [[0, 1]], weights=[-1.0]),
                        "weights holds -1.0; expected positive finite hyperedge weights"),
    "edge-to-missing-node": (lambda: Hypergraph.from_graph(3, [[0, 1], [1, 2], [1, 3]]),
                             "edges[2] = (1, 3) names node 3, but there are 3 nodes; expected "
                             "ids in 0..2"),
    "edge-self-loop": (lambda: Hypergraph.from_graph(3, [[0, 2], [1, 2]]),
                       "edges[1] = (2, 2) is a self-loop; expected two different nodes"),
    "edges-shape": (lambda: Hypergraph.from_graph(3, [[0, 1, 2]]),
                    "edges has shape (1, 3); expected (2, M) node-id pairs"),
    "labels-length": (lambda: _data(y=torch.tensor([0, 1, 0])),
                      "labels has 3 entries but features has 4 rows; expected one label per "
                      "node"),
    "label-range": (lambda: _data(y=torch.tensor([0, 1, 2, 1])),
                    "labels holds class 2; expected classes 0..1"),
    "hypergraph-size": (lambda: _data(hypergraph=Hypergraph.from_lists(5, [[0, 4]])),
                        "hypergraph has 5 nodes but features has 4 rows; expected one row per "
                        "node"),
    "mask-length": (lambda: _data(val_mask=torch.tensor([False, True])),
                    "val_mask has shape (2,) and dtype torch.bool; expected 4 booleans, one "
                    "per node"),
    "overlapping-masks": (lambda: _data(test_mask=torch.tensor([True, False, False, True])),
                          "node 0 is in two of train_mask, val_mask and test_mask; expected "
                          "disjoint masks"),
    "nan-features": (lambda: _data(x=torch.full((4, 2), float("nan"))),
                     "features holds NaN or infinite values; expected finite numbers"),
    "generator-homophily": (lambda: contextual_hypergraph(**SMALL, homophily=1.5),
                            "homophily must be in [0, 1], got 1.5"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_sentence_naming_field_value_and_expectation(case):
    make, message = BAD[case]
    with pytest.raises(DataError) as err:
        make()
    assert isinstance(err.value, MentorError)
    assert str(err.value) == message
    assert "\n" not in str(err.value)
