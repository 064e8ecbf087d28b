"""Node classification data on a hypergraph, and the generated testbed TB-GRAPH.

:class:`Hypergraph` is the structure a graph teacher propagates over: ``num_nodes`` nodes and
hyperedges given as sets of node ids (stored as the incidence pairs ``(nodes[k], edges[k])``),
each with a weight. A plain graph is the special case of two-node hyperedges
(:meth:`Hypergraph.from_graph`), and :meth:`Hypergraph.clique_expansion` turns a hypergraph
into the pairwise graph (every two nodes that share a hyperedge are joined).

:class:`NodeData` holds the node features, labels, the hypergraph and the transductive
train / validation / test node masks; :meth:`NodeData.splits` gives the same nodes as mentor
:class:`~mentor.data.splits.Splits` (train: every node, labeled where the train mask says,
so the teacher's outputs on all other nodes are the transfer set).

:func:`contextual_hypergraph` generates the testbed (METHODS.md §0 TB-GRAPH, §38): a
contextual stochastic block hypergraph, deterministic for a seed. Nodes fall into ``C``
balanced classes; a node's features are its class mean plus heavy Gaussian noise (an MLP on
the features alone, trained on 20 labels per class, is weak); each hyperedge gathers nodes of
one class, each member drawn from that class with probability ``homophily`` and uniformly
otherwise, and a fraction ``noise_edges`` of the hyperedges is drawn uniformly from all nodes
(the generator records which, :attr:`NodeData.noise_edges`).

Bad input (a hyperedge naming a node that does not exist, an empty hyperedge, features and
labels of different lengths, ...) raises :class:`~mentor.errors.DataError`: one sentence
naming the field, the value and what is expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError


@dataclass(frozen=True, eq=False)
class Hypergraph:
    """Hyperedges over nodes ``0 .. num_nodes-1``: incidence pair ``k`` says node
    ``nodes[k]`` belongs to hyperedge ``edges[k]``; ``weights[e]`` is hyperedge ``e``'s
    weight (the ``W`` of HGNN). Build with :meth:`from_lists` or :meth:`from_graph`, which
    check their input."""

    num_nodes: int
    num_edges: int
    nodes: Tensor  # (nnz,) int64
    edges: Tensor  # (nnz,) int64, nondecreasing
    weights: Tensor  # (num_edges,) float32

    @classmethod
    def from_lists(cls, num_nodes: int, hyperedges: Sequence[Sequence[int]],
                   weights: Sequence[float] | None = None,
                   field_name: str = "hyperedges") -> "Hypergraph":
        """A hypergraph from one list of node ids per hyperedge. Each hyperedge names at least
        one node, each node at most once, every id in ``0 .. num_nodes-1``; ``weights``
        (default 1) are one positive number per hyperedge."""
        n = _count("num_nodes", num_nodes)
        nodes, edges = [], []
        for e, members in enumerate(hyperedges):
            ids = np.asarray(members).reshape(-1)
            if ids.size == 0:
                raise DataError(f"{field_name}[{e}] is empty; expected at least one node id")
            if not np.issubdtype(ids.dtype, np.integer):
                raise DataError(f"{field_name}[{e}] holds {ids.tolist()!r}; expected integer "
                                "node ids")
            bad = ids[(ids < 0) | (ids >= n)]
            if bad.size:
                raise DataError(f"{field_name}[{e}] names node {int(bad[0])}, but there are "
                                f"{n} nodes; expected ids in 0..{n - 1}")
            uniq, counts = np.unique(ids, return_counts=True)
            if (counts > 1).any():
                raise DataError(f"{field_name}[{e}] names node {int(uniq[counts > 1][0])} "
                                "twice; expected each node at most once per hyperedge")
            nodes.append(ids.astype(np.int64))
            edges.append(np.full(ids.size, e, dtype=np.int64))
        m = len(nodes)
        if weights is None:
            w = np.ones(m, dtype=np.float32)
        else:
            w = np.asarray(weights, dtype=np.float64).reshape(-1)
            if w.size != m:
                raise DataError(f"weights has {w.size} entries for {m} hyperedges; expected "
                                "one weight per hyperedge")
            bad_w = w[~(np.isfinite(w) & (w > 0))]
            if bad_w.size:
                raise DataError(f"weights holds {float(bad_w[0])!r}; expected positive finite "
                                "hyperedge weights")
            w = w.astype(np.float32)
        cat = (lambda parts: torch.from_numpy(np.concatenate(parts)) if parts
               else torch.zeros(0, dtype=torch.int64))
        return cls(n, m, cat(nodes), cat(edges), torch.from_numpy(w))

    @classmethod
    def from_graph(cls, num_nodes: int, edges) -> "Hypergraph":
        """A plain graph as a hypergraph of two-node hyperedges: ``edges`` is ``(2, M)`` (or
        ``(M, 2)``) node-id pairs; a self-loop ``(v, v)`` is refused (HGNN gives every node
        its own degree term already)."""
        n = _count("num_nodes", num_nodes)
        e = torch.as_tensor(np.asarray(edges))
        if e.dim() != 2 or 2 not in e.shape:
            raise DataError(f"edges has shape {tuple(e.shape)}; expected (2, M) node-id pairs")
        if e.numel() and (e.is_floating_point() or e.dtype == torch.bool):
            raise DataError(f"edges has dtype {e.dtype}; expected integer node ids")
        pairs = e.t() if e.shape[0] == 2 else e
        bad = ((pairs < 0) | (pairs >= n)).any(1).nonzero().flatten()
        if len(bad):
            k = int(bad[0])
            v = [int(u) for u in pairs[k] if not 0 <= int(u) < n][0]
            raise DataError(f"edges[{k}] = ({int(pairs[k, 0])}, {int(pairs[k, 1])}) names node "
                            f"{v}, but there are {n} nodes; expected ids in 0..{n - 1}")
        loops = (pairs[:, 0] == pairs[:, 1]).nonzero().flatten()
        if len(loops):
            k = int(loops[0])
            raise DataError(f"edges[{k}] = ({int(pairs[k, 0])}, {int(pairs[k, 1])}) is a "
                            "self-loop; expected two different nodes")
        return cls.from_lists(n, pairs.tolist(), field_name="edges")

    @property
    def sizes(self) -> Tensor:
        """Number of nodes in each hyperedge, ``(num_edges,)``."""
        return torch.bincount(self.edges, minlength=self.num_edges)

    @property
    def degrees(self) -> Tensor:
        """Weighted node degrees ``d(v) = Σ_e w(e)·h(v, e)``, ``(num_nodes,)`` float32."""
        return torch.zeros(self.num_nodes).index_add_(0, self.nodes, self.weights[self.edges])

    def members(self, e: int) -> list[int]:
        """The node ids of hyperedge ``e``."""
        return self.nodes[self.edges == e].tolist()

    def with_singletons(self) -> "Hypergraph":
        """This hypergraph plus a one-node hyperedge (weight 1) for every node in no
        hyperedge, so every degree is positive (LightHGNN's ``fix_iso_v``)."""
        iso = (torch.bincount(self.nodes, minlength=self.num_nodes) == 0).nonzero().flatten()
        if not len(iso):
            return self
        k = len(iso)
        return Hypergraph(self.num_nodes, self.num_edges + k, torch.cat([self.nodes, iso]),
                          torch.cat([self.edges, self.num_edges + torch.arange(k)]),
                          torch.cat([self.weights, torch.ones(k)]))

    def without_edges(self) -> "Hypergraph":
        """No structure at all: every node alone in its own hyperedge (the HGNN then
        propagates nothing: its propagation matrix is the identity)."""
        ids = torch.arange(self.num_nodes)
        return Hypergraph(self.num_nodes, self.num_nodes, ids, ids.clone(),
                          torch.ones(self.num_nodes))

    def incidence(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """The incidence matrix ``H`` (``num_nodes × num_edges``, sparse COO, ones)."""
        h = torch.sparse_coo_tensor(torch.stack([self.nodes, self.edges]),
                                    torch.ones(len(self.nodes), dtype=dtype),
                                    (self.num_nodes, self.num_edges), check_invariants=False)
        return h.coalesce()

    def clique_expansion(self) -> Tensor:
        """The pairwise graph: every two distinct nodes that share a hyperedge, once each,
        as a ``(2, M)`` int64 tensor of pairs ``(u, v)`` with ``u < v``, sorted."""
        order = torch.argsort(self.edges, stable=True)
        nodes, sizes = self.nodes[order], self.sizes.tolist()
        pairs = []
        start = 0
        for s in sizes:
            if s > 1:
                members = nodes[start:start + s]
                iu = torch.triu_indices(s, s, offset=1)
                pairs.append(members[iu])
            start += s
        if not pairs:
            return torch.zeros(2, 0, dtype=torch.int64)
        p = torch.cat(pairs, dim=1)
        p = torch.stack([p.min(0).values, p.max(0).values])
        key = torch.unique(p[0] * self.num_nodes + p[1])
        return torch.stack([key // self.num_nodes, key % self.num_nodes])


@dataclass(frozen=True, eq=False)
class NodeData:
    """Node features ``x`` ``(N, d)``, labels ``y`` ``(N,)`` in ``0 .. num_classes-1``, the
    ``hypergraph`` over the ``N`` nodes and boolean node masks (transductive: every node's
    features and the structure are seen; only ``train_mask`` nodes' labels are).
    ``noise_edges``: which hyperedges a generator drew at random (``None``: unknown)."""

    x: Tensor
    y: Tensor
    hypergraph: Hypergraph
    train_mask: Tensor
    val_mask: Tensor
    test_mask: Tensor
    num_classes: int
    noise_edges: Tensor | None = None
    name: str = "node data"
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        x, y = self.x, self.y
        if not torch.is_tensor(x) or x.dim() != 2:
            raise DataError(f"features has shape {tuple(getattr(x, 'shape', ()))}; expected "
                            "(nodes, features)")
        if not torch.is_tensor(y) or y.dim() != 1 or y.is_floating_point():
            raise DataError(f"labels has shape {tuple(getattr(y, 'shape', ()))}; expected one "
                            "integer class per node")
        n = len(x)
        if len(y) != n:
            raise DataError(f"labels has {len(y)} entries but features has {n} rows; expected "
                            "one label per node")
        if not torch.isfinite(x).all():
            raise DataError("features holds NaN or infinite values; expected finite numbers")
        c = int(self.num_classes)
        if c < 2:
            raise DataError(f"num_classes must be >= 2, got {c}")
        if n and (int(y.min()) < 0 or int(y.max()) >= c):
            bad = int(y[(y < 0) | (y >= c)][0])
            raise DataError(f"labels holds class {bad}; expected classes 0..{c - 1}")
        if self.hypergraph.num_nodes != n:
            raise DataError(f"hypergraph has {self.hypergraph.num_nodes} nodes but features "
                            f"has {n} rows; expected one row per node")
        for name in ("train_mask", "val_mask", "test_mask"):
            m = getattr(self, name)
            if not torch.is_tensor(m) or m.dtype != torch.bool or m.shape != (n,):
                raise DataError(f"{name} has shape {tuple(getattr(m, 'shape', ()))} and dtype "
                                f"{getattr(m, 'dtype', type(m).__name__)}; expected {n} booleans, "
                                "one per node")
        if not bool(self.train_mask.any()):
            raise DataError("train_mask marks no node; expected at least one labeled node")
        overlap = (self.train_mask.int() + self.val_mask.int() + self.test_mask.int()) > 1
        if bool(overlap.any()):
            raise DataError(f"node {int(overlap.nonzero()[0])} is in two of train_mask, "
                            "val_mask and test_mask; expected disjoint masks")
        if self.noise_edges is not None and len(self.noise_edges) != self.hypergraph.num_edges:
            raise DataError(f"noise_edges has {len(self.noise_edges)} entries for "
                            f"{self.hypergraph.num_edges} hyperedges; expected one per hyperedge")

    @property
    def num_nodes(self) -> int:
        return len(self.x)

    def edges(self) -> Tensor:
        """The plain-graph view: :meth:`Hypergraph.clique_expansion` of the hypergraph."""
        return self.hypergraph.clique_expansion()

    def splits(self):
        """The nodes as mentor :class:`~mentor.data.splits.Splits` for the engine: train is
        every node in id order (so a training row's position is its node id), labeled where
        ``train_mask`` is; validation and test are the masked nodes. Features are taken as
        they are (no standardization)."""
        from ..data.splits import Split, Splits
        ids = torch.arange(self.num_nodes)

        def part(mask: Tensor) -> Split:
            return Split(self.x[mask], self.y[mask], torch.ones(int(mask.sum()), dtype=torch.bool))
        train = Split(self.x, self.y, self.train_mask.clone())
        return Splits(self.name, train, part(self.val_mask), part(self.test_mask),
                      self.num_classes, (self.x.shape[1],), int(self.meta.get("seed", 0)),
                      rows={"train": ids.numpy(), "val": ids[self.val_mask].numpy(),
                            "test": ids[self.test_mask].numpy()},
                      unknown_rows="unlabeled nodes")

    def describe(self) -> str:
        hg = self.hypergraph
        return (f"{self.name}: {self.num_nodes} nodes, {self.num_classes} classes, "
                f"{self.x.shape[1]} features, {hg.num_edges} hyperedges (mean size "
                f"{float(hg.sizes.float().mean()):.1f}); train {int(self.train_mask.sum())}, "
                f"val {int(self.val_mask.sum())}, test {int(self.test_mask.sum())} nodes")


def contextual_hypergraph(num_nodes: int = 2000, num_classes: int = 5, num_features: int = 64,
                          num_hyperedges: int = 1500, edge_size: tuple[int, int] = (3, 8),
                          homophily: float = 0.8, noise_edges: float = 0.2,
                          signal: float = 0.15, train_per_class: int = 20,
                          val_per_class: int = 100, seed: int = 0) -> NodeData:
    """TB-GRAPH: a contextual stochastic block hypergraph, the same for the same arguments.

    Classes: ``num_nodes`` nodes, balanced over ``num_classes`` (node ``v``'s class is a
    seeded permutation of ``v mod C``). Features: ``x_v = μ_{y_v} + ε_v`` with class means
    ``μ_c ~ N(0, signal²·I)`` and unit Gaussian noise ``ε_v`` (``signal`` sets how weak a
    feature-only classifier is). Hyperedges: ``num_hyperedges``, sizes uniform in
    ``edge_size`` (inclusive); a fraction ``noise_edges`` of them has uniformly drawn
    members; each other one picks a class and draws each member from it with probability
    ``homophily``, else from all nodes (no node twice in a hyperedge). Nodes left in no
    hyperedge keep none (the HGNN gives them a one-node hyperedge, as LightHGNN does).
    Splits: per class ``train_per_class`` labeled training nodes, ``val_per_class``
    validation nodes, the rest test.
    """
    n, c, d, m = (_count(k, v) for k, v in (("num_nodes", num_nodes),
                                             ("num_classes", num_classes),
                                             ("num_features", num_features),
                                             ("num_hyperedges", num_hyperedges)))
    lo, hi = (int(s) for s in edge_size)
    if not 1 <= lo <= hi <= n:
        raise DataError(f"edge_size must be (low, high) with 1 <= low <= high <= {n}, got "
                        f"{tuple(edge_size)}")
    for name, v in (("homophily", homophily), ("noise_edges", noise_edges)):
        if not 0.0 <= float(v) <= 1.0:
            raise DataError(f"{name} must be in [0, 1], got {v}")
    if not float(signal) >= 0.0:
        raise DataError(f"signal must be >= 0, got {signal}")
    per_class = n // c
    if c < 2 or train_per_class < 1 or val_per_class < 0 or \
            train_per_class + val_per_class >= per_class:
        raise DataError(f"train_per_class + val_per_class must leave test nodes in each class "
                        f"of about {per_class} nodes, got {train_per_class} + {val_per_class}")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % c)
    means = rng.normal(0.0, float(signal), size=(c, d))
    x = means[y] + rng.normal(0.0, 1.0, size=(n, d))
    by_class = [np.flatnonzero(y == k) for k in range(c)]
    n_noise = int(round(noise_edges * m))
    is_noise = np.zeros(m, dtype=bool)
    is_noise[rng.choice(m, size=n_noise, replace=False)] = True
    hyperedges = []
    for e in range(m):
        size = int(rng.integers(lo, hi + 1))
        if is_noise[e]:
            hyperedges.append(rng.choice(n, size=size, replace=False))
            continue
        pool = by_class[int(rng.integers(c))]
        chosen: list[int] = []
        while len(chosen) < size:
            v = int(rng.choice(pool)) if rng.random() < homophily else int(rng.integers(n))
            if v not in chosen:
                chosen.append(v)
        hyperedges.append(np.asarray(chosen))
    train = np.zeros(n, dtype=bool)
    val = np.zeros(n, dtype=bool)
    for k in range(c):
        ids = rng.permutation(by_class[k])
        train[ids[:train_per_class]] = True
        val[ids[train_per_class:train_per_class + val_per_class]] = True
    test = ~(train | val)
    meta = {"seed": int(seed), "homophily": float(homophily), "noise_edges": float(noise_edges),
            "signal": float(signal), "edge_size": (lo, hi)}
    return NodeData(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64)),
                    Hypergraph.from_lists(n, hyperedges), torch.from_numpy(train),
                    torch.from_numpy(val), torch.from_numpy(test), c,
                    torch.from_numpy(is_noise), "contextual-hypergraph", meta)


def _count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
