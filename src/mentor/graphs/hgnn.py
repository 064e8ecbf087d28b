"""The HGNN teacher (Feng et al., "Hypergraph Neural Networks", AAAI 2019), plain PyTorch.

One HGNN layer is ``X' = σ(L · X · Θ)`` with the normalized hypergraph propagation

    L = D_v^{-1/2} · H · W · D_e^{-1} · H^T · D_v^{-1/2}

``H`` the ``N × E`` incidence matrix, ``W`` the diagonal hyperedge weights, ``D_e`` the
hyperedge sizes ``δ(e) = Σ_v h(v, e)`` and ``D_v`` the weighted node degrees
``d(v) = Σ_e w(e)·h(v, e)`` (paper eq. 10-11; the official code, iMoonLab/HGNN
``utils/hypergraph_utils.py::_generate_G_from_H``: ``DV = sum(H * W, axis=1)``,
``DE = sum(H, axis=0)``, ``G = DV2 * H * W * invDE * HT * DV2``). The two-layer model is
that of LightHGNN's teacher (iMoonLab/LightHGNN ``my_model.py::MyHGNN`` on DHG's
``HGNNConv``: ``theta`` linear, propagation, ReLU, dropout 0.5; the last layer stops after
the propagation; hidden 32). Nodes in no hyperedge get a one-node hyperedge first
(LightHGNN's ``fix_iso_v``), so every ``d(v) > 0``.

:func:`hgnn_propagation` builds ``L`` once as a sparse matrix; :class:`HGNN` takes it as a
second input (the student never needs it); :func:`train_hgnn` is LightHGNN's teacher training
(``trans_train.py``: full batch, Adam lr 0.01, weight decay 5e-4, 200 epochs, cross-entropy
on the labeled nodes, the weights of the best validation accuracy).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .testbed import Hypergraph, NodeData


def hgnn_propagation(hypergraph: Hypergraph, dtype: torch.dtype = torch.float32) -> Tensor:
    """``D_v^{-1/2} H W D_e^{-1} H^T D_v^{-1/2}`` of ``hypergraph`` (nodes in no hyperedge
    first get a one-node hyperedge), as a sparse CSR ``N × N`` matrix of ``dtype``."""
    hg = hypergraph.with_singletons()
    w = hg.weights.to(dtype)
    dv = torch.zeros(hg.num_nodes, dtype=dtype).index_add_(0, hg.nodes, w[hg.edges])
    de = torch.bincount(hg.edges, minlength=hg.num_edges).to(dtype)
    dv_is = dv.pow(-0.5)
    idx = torch.stack([hg.nodes, hg.edges])
    # left factor D_v^{-1/2} H (N × E) and right factor W D_e^{-1} H^T D_v^{-1/2} (E × N)
    left = torch.sparse_coo_tensor(idx, dv_is[hg.nodes], (hg.num_nodes, hg.num_edges),
                                   check_invariants=False)
    right = torch.sparse_coo_tensor(idx.flip(0), (w / de)[hg.edges] * dv_is[hg.nodes],
                                    (hg.num_edges, hg.num_nodes), check_invariants=False)
    with warnings.catch_warnings():  # CSR (used inside too): the fast sparse product on CPU
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse.mm(left.coalesce(), right.coalesce()).coalesce().to_sparse_csr()


class HGNN(nn.Module):
    """Two HGNN layers: ``L·(relu-dropout(L·X·Θ₀))·Θ₁`` (logits; the propagation ``L`` of
    :func:`hgnn_propagation` is the second input). ``forward(x, propagation, embedding=True)``
    returns the hidden layer instead."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 32,
                 dropout: float = 0.5):
        super().__init__()
        self.theta0 = nn.Linear(in_features, hidden)
        self.theta1 = nn.Linear(hidden, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, propagation: Tensor, embedding: bool = False) -> Tensor:
        h = self.dropout(torch.relu(propagation @ self.theta0(x)))
        return h if embedding else propagation @ self.theta1(h)


@dataclass
class TrainedHGNN:
    """A trained teacher: the model (eval mode), its propagation, the selected epoch and its
    validation accuracy, and test accuracy with the graph and without it (every node alone:
    the identity propagation)."""

    model: HGNN
    propagation: Tensor
    best_epoch: int
    val_accuracy: float
    test_accuracy: float
    test_accuracy_without_graph: float

    @torch.no_grad()
    def logits(self, x: Tensor, propagation: Tensor | None = None) -> Tensor:
        """The teacher's logits for every node (eval mode), on its own graph by default."""
        self.model.eval()
        return self.model(x, self.propagation if propagation is None else propagation)


def accuracy(logits: Tensor, y: Tensor, mask: Tensor) -> float:
    return float((logits[mask].argmax(-1) == y[mask]).float().mean())


def fit_full_batch(net: nn.Module, loss: Callable[[], Tensor], val: Callable[[], float], *,
                   epochs: int, lr: float, weight_decay: float) -> tuple[int, float]:
    """The full-batch training both of LightHGNN's models use: each epoch one Adam step on
    ``loss()`` (train mode), then ``val()`` (eval mode, no gradient); ``net`` ends with the
    weights of the first epoch with the best validation score, in eval mode. Returns
    ``(best epoch, its score)``."""
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    best_state, best_epoch, best_val = copy.deepcopy(net.state_dict()), -1, -1.0
    for epoch in range(epochs):
        net.train()
        opt.zero_grad()
        loss().backward()
        opt.step()
        net.eval()
        with torch.no_grad():
            score = val()
        if score > best_val:
            best_state, best_epoch, best_val = copy.deepcopy(net.state_dict()), epoch, score
    net.load_state_dict(best_state)
    net.eval()
    return best_epoch, best_val


def train_hgnn(data: NodeData, *, seed: int = 0, epochs: int = 200, lr: float = 0.01,
               weight_decay: float = 5e-4, hidden: int = 32, dropout: float = 0.5,
               hypergraph: Hypergraph | None = None) -> TrainedHGNN:
    """LightHGNN's teacher training on ``data`` (its hypergraph, or ``hypergraph``): full
    batch, Adam, cross-entropy on the train-mask nodes, the weights of the first epoch with
    the best validation accuracy. ``seed`` sets the initial weights and dropout draws."""
    prop = hgnn_propagation(hypergraph or data.hypergraph)
    torch.manual_seed(seed)
    net = HGNN(data.x.shape[1], data.num_classes, hidden, dropout)
    x, y, tr = data.x, data.y, data.train_mask
    best_epoch, best_val = fit_full_batch(
        net, lambda: F.cross_entropy(net(x, prop)[tr], y[tr]),
        lambda: accuracy(net(x, prop), y, data.val_mask),
        epochs=epochs, lr=lr, weight_decay=weight_decay)
    for p in net.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        test = accuracy(net(x, prop), y, data.test_mask)
        alone = hgnn_propagation(data.hypergraph.without_edges())
        test_alone = accuracy(net(x, alone), y, data.test_mask)
    return TrainedHGNN(net, prop, best_epoch, best_val, test, test_alone)
