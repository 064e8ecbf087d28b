"""A graph teacher for ``task: graph_nodes``: a network that propagates over the graph,
trained full batch on the training nodes (LightHGNN's ``trans_train.py``, METHODS.md §38),
then served to the engine by node id.

The student reads node features only; the teacher's outputs on every node -- the
unlabeled ones are the transfer set -- are what the student distils
(:class:`GraphTeacher`). A graph network cannot train on the engine's shuffled mini-batches
of rows (its propagation couples every node), so :func:`train_graph_teacher` is the
full-batch loop of :func:`mentor.graphs.hgnn.fit_full_batch` (Adam, the recipe teacher's
``train.epochs``, ``lr``, ``weight_decay``; the weights of the best validation accuracy).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import MentorError
from .hgnn import fit_full_batch, hgnn_propagation
from .testbed import Hypergraph


class GraphTeacher:
    """A trained graph network ``module(x, propagation)`` over all ``x`` (every node's
    features, id order), frozen, served by node id: the engine asks :meth:`logits_at` with
    training positions, which are node ids (the training split is every node). Its outputs
    on all nodes are computed once (:attr:`table`). :meth:`on_nodes` gives the teacher as a
    function of some nodes' rows that runs the whole propagation on every call -- what the
    teacher costs at inference, where the student needs no graph."""

    cacheable = True

    def __init__(self, module: nn.Module, x: Tensor, propagation: Tensor, num_classes: int,
                 description: str = "graph teacher"):
        self.module = module.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.x, self.propagation = x, propagation
        self.num_classes = int(num_classes)
        self.description = description
        self.table = self.propagate()

    @torch.no_grad()
    def propagate(self) -> Tensor:
        """The teacher's logits on every node (eval mode, the whole propagation)."""
        return self.module(self.x, self.propagation)

    def logits_at(self, x: Tensor, index: Tensor) -> Tensor:
        n = len(self.table)
        if len(index) and (int(index.min()) < 0 or int(index.max()) >= n):
            raise MentorError(f"node id {int(index.max())} asked of a graph of {n} nodes; "
                              f"expected ids in 0..{n - 1}")
        return self.table.index_select(0, index.to(self.table.device)).to(x.device)

    def logits(self, x: Tensor) -> Tensor:
        if len(x) != len(self.table):
            raise MentorError(f"a graph teacher scores nodes by id; asked for {len(x)} rows "
                              f"without ids, expected all {len(self.table)} nodes in id order "
                              "(or training positions through logits_at)")
        return self.table.to(x.device)

    def on_nodes(self, ids) -> Callable[[Tensor], Tensor]:
        """The teacher as a function of the rows of nodes ``ids`` (the first ``len(x)`` of
        them), propagating over the whole graph on each call."""
        ids = torch.as_tensor(np.asarray(ids), dtype=torch.long)

        def fn(x: Tensor) -> Tensor:
            return self.propagate()[ids[:len(x)].to(self.table.device)].to(x.device)
        return fn

    def tapped(self, taps):
        raise MentorError("a graph teacher serves logits by node id; feature distillation "
                          "from it (taps) is not supported; expected a logit method such as "
                          "kd")

    def to(self, device) -> "GraphTeacher":
        self.module.to(device)
        self.x, self.propagation = self.x.to(device), self.propagation.to(device)
        self.table = self.table.to(device)
        return self


def train_graph_teacher(module: nn.Module, x: Tensor, y: Tensor, graph: Hypergraph,
                        train_nodes: Tensor, val_nodes: Tensor, val_y: Tensor, *,
                        epochs: int, lr: float, weight_decay: float, seed: int,
                        num_classes: int, on_epoch: Callable | None = None
                        ) -> tuple[GraphTeacher, dict]:
    """Train ``module(x, propagation)`` full batch: cross-entropy on ``train_nodes`` (ids,
    labels ``y[train_nodes]``), selected by accuracy on ``val_nodes`` (labels ``val_y``).
    ``seed`` sets dropout draws. Returns the teacher and ``{best_epoch, val_accuracy}``."""
    if not len(train_nodes):
        raise MentorError("the graph teacher has no labeled training node; expected at least "
                          "one")
    prop = hgnn_propagation(graph).to(x.device)
    torch.manual_seed(seed)
    tr = torch.as_tensor(train_nodes, dtype=torch.long)
    va = torch.as_tensor(val_nodes, dtype=torch.long)
    ytr = y[tr]
    epoch = [0]

    def loss() -> Tensor:
        return F.cross_entropy(module(x, prop)[tr], ytr)

    def val() -> float:
        score = float((module(x, prop)[va].argmax(-1) == val_y).float().mean())
        epoch[0] += 1
        if on_epoch is not None:
            on_epoch(epoch[0], {"val_accuracy": score})
        return score
    best_epoch, best_val = fit_full_batch(module, loss, val, epochs=epochs, lr=lr,
                                          weight_decay=weight_decay)
    teacher = GraphTeacher(module, x, prop, num_classes,
                           description=f"{type(module).__name__} over {graph.num_nodes} nodes "
                                       f"and {graph.num_edges} (hyper)edges")
    return teacher, {"best_epoch": best_epoch, "val_accuracy": best_val}


def fit_graph_teacher(module: nn.Module, splits, *, epochs: int = 200, lr: float = 0.01,
                      weight_decay: float = 5e-4, seed: int = 0,
                      on_epoch: Callable | None = None) -> tuple[GraphTeacher, dict]:
    """:func:`train_graph_teacher` on graph-node splits
    (:func:`mentor.graphs.source.graph_splits`: ``splits.graph`` and the node ids in
    ``splits.rows``): every training node with a label is the teacher's data, the validation
    nodes select its epoch. Defaults: LightHGNN's teacher training."""
    if splits.graph is None or splits.rows is None:
        raise MentorError("the splits have no graph; expected graph-node splits "
                          "(mentor.graphs.source.graph_splits)")
    device = next(module.parameters()).device
    x, y = splits.train.x.to(device), splits.train.y.to(device)
    return train_graph_teacher(
        module, x, y, splits.graph, (y >= 0).nonzero().flatten(),
        torch.as_tensor(splits.rows["val"], dtype=torch.long, device=device),
        splits.val.y.to(device), epochs=epochs, lr=lr, weight_decay=weight_decay, seed=seed,
        num_classes=splits.num_classes, on_epoch=on_epoch)
