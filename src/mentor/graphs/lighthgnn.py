"""LightHGNN and LightHGNN⁺: distil a hypergraph network into an MLP that needs no graph at
inference (Feng, Luo, Ying, Gao, "LightHGNN: Distilling Hypergraph Neural Networks into MLPs
for 100× Faster Inference", ICLR 2024; METHODS.md §38; official code iMoonLab/LightHGNN
``trans_train.py``, ``trans_config.yaml``).

Transductive setting: the teacher sees every node's features and the hypergraph; its soft
labels on *all* nodes -- the unlabeled ones are the transfer set -- teach an MLP on node
features. The student's loss (``train_stu``)::

    λ·CE(labeled nodes) + (1−λ)·[ KL(p_t ‖ p_s) over all nodes  +  L_HC ]

with the official defaults λ = 0 (no label term at all), τ = 1, hidden 128. LightHGNN is the
first two terms; LightHGNN⁺ adds ``L_HC``, the reliable-hyperedge ("high-order soft-label")
distillation (``HighOrderConstraint``):

- reliability: the teacher's node entropies ``H_v`` on the features and ``H̃_v`` on noised
  features ``X·(ε+1)·noise_level``, ``ε ~ N(0, 1)`` (``hc_noise_level`` 1.0); a hyperedge's
  entropy is the mean over its members; ``δ_e = |H̃_e − H_e|``, ``ρ_e = 1 − δ_e / max δ``
  (:func:`reliability`, :func:`hyperedge_reliability`): a hyperedge whose members' teacher
  predictions move little under feature noise is reliable;
- each step samples ``e ~ Bernoulli(ρ_e)`` and adds
  ``KL(mean_{v∈e} p_t,v ‖ mean_{v∈e} p_s,v)`` averaged over the sampled hyperedges
  (:func:`hyperedge_kd`).

Two departures from the code, both deliberate: the official ``F.kl_div(..., log_target=True)``
is given probabilities as targets for both KL terms, which is not the KL divergence
(METHODS.md §38); here both are the intended KL (mentor's registered loss ``kd`` at T = 1 for
the node term). And τ divides the logits (softmax at temperature τ) rather than the
probabilities inside the log, the same thing at the default τ = 1. The hyperedge samples come
from their own generator, so that ``hc_weight=0`` trains exactly LightHGNN and ``lamb=1``
exactly the supervised MLP.

:func:`distill_mlp` is the full-batch student training of ``trans_train.py`` (Adam lr 0.01,
weight decay 5e-4, 200 epochs, weights of the best validation accuracy) -- a loop of its own
because ``L_HC`` is a loss over sets of nodes (hyperedges), which the engine's per-row
objectives do not express. Plain node-level KD does fit the engine:
:class:`NodeLogitsTeacher` serves a fixed table of teacher logits by node id (``logits_at``),
so ``mentor.Distiller(student, NodeLogitsTeacher(logits), method="kd", alpha=1.0,
temperature=1.0, ...).fit(data.splits())`` trains a LightHGNN student on the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import MentorError
from ..losses import cross_entropy, kd
from .hgnn import accuracy, fit_full_batch
from .testbed import Hypergraph, NodeData


def hyperedge_mean(values: Tensor, hypergraph: Hypergraph) -> Tensor:
    """Mean over each hyperedge's members of per-node rows ``values`` ``(N, K)`` →
    ``(E, K)`` (DHG's ``v2e(..., aggr="mean")``)."""
    hg = hypergraph
    sizes = hg.sizes.to(values.dtype).clamp_min(1)
    out = values.new_zeros(hg.num_edges, values.shape[1])
    return out.index_add_(0, hg.edges, values[hg.nodes]) / sizes[:, None]


def node_entropy(logits: Tensor) -> Tensor:
    """Entropy ``−Σ p log p`` of ``softmax(logits)`` per node (0 where it is NaN, as the
    official code sets it)."""
    p = torch.softmax(logits, dim=-1)
    h = -(p * p.log()).sum(-1)
    return torch.nan_to_num(h, nan=0.0)


def reliability(entropy: Tensor, noisy_entropy: Tensor, hypergraph: Hypergraph) -> Tensor:
    """LightHGNN⁺'s hyperedge reliability ``ρ_e = 1 − δ_e / max δ`` with
    ``δ_e = |mean_{v∈e} H̃_v − mean_{v∈e} H_v|`` from the teacher's node entropies on clean
    (``entropy``) and noised (``noisy_entropy``) features. In ``[0, 1]``; the least stable
    hyperedge gets 0. When no hyperedge moves at all (``max δ = 0``) every ``ρ_e`` is 1
    (the code would divide by zero)."""
    he = hyperedge_mean(entropy.reshape(-1, 1), hypergraph)[:, 0]
    hn = hyperedge_mean(noisy_entropy.reshape(-1, 1), hypergraph)[:, 0]
    delta = (hn - he).abs()
    top = delta.max() if len(delta) else delta.new_zeros(())
    if float(top) == 0.0:
        return torch.ones_like(delta)
    return 1.0 - delta / top


@torch.no_grad()
def hyperedge_reliability(teacher, x: Tensor, hypergraph: Hypergraph, noise_level: float = 1.0,
                          generator: torch.Generator | None = None) -> Tensor:
    """``ρ`` (:func:`reliability`) of ``teacher`` (a callable: features → logits of every
    node, in eval mode) under the official feature noise ``x·(ε+1)·noise_level``,
    ``ε ~ N(0, 1)`` drawn from ``generator``."""
    if not noise_level > 0:
        raise MentorError(f"hc_noise_level must be > 0, got {noise_level}")
    eps = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return reliability(node_entropy(teacher(x)),
                       node_entropy(teacher(x * (eps + 1.0) * noise_level)), hypergraph)


def hyperedge_kd(student_logits: Tensor, teacher_logits: Tensor, hypergraph: Hypergraph,
                 temperature: float = 1.0) -> Tensor:
    """Per hyperedge ``KL(p̄_t,e ‖ p̄_s,e)`` with ``p̄_e = mean_{v∈e} softmax(z_v / τ)``
    (``(E,)``; the caller selects the sampled hyperedges and averages)."""
    if not temperature > 0:
        raise MentorError(f"temperature must be > 0, got {temperature}")
    if student_logits.shape != teacher_logits.shape:
        raise MentorError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                          f"{tuple(teacher_logits.shape)} differ; expected the same shape")
    ps = hyperedge_mean(torch.softmax(student_logits / temperature, -1), hypergraph)
    pt = hyperedge_mean(torch.softmax(teacher_logits / temperature, -1), hypergraph)
    tiny = torch.finfo(ps.dtype).tiny
    return (pt * (pt.clamp_min(tiny).log() - ps.clamp_min(tiny).log())).sum(-1)


def sampled_hyperedge_kd(student_logits: Tensor, teacher_logits: Tensor,
                         hypergraph: Hypergraph, rho: Tensor, generator: torch.Generator,
                         temperature: float = 1.0) -> Tensor:
    """``L_HC`` of one step: hyperedges drawn ``~ Bernoulli(ρ_e)`` from ``generator``, the
    mean of :func:`hyperedge_kd` over them (0 when none is drawn)."""
    keep = torch.bernoulli(rho, generator=generator).bool()
    if not bool(keep.any()):
        return student_logits.sum() * 0.0
    return hyperedge_kd(student_logits, teacher_logits, hypergraph, temperature)[keep].mean()


def lighthgnn_loss(student_logits: Tensor, teacher_logits: Tensor | None, labels: Tensor,
                   train_mask: Tensor, *, lamb: float = 0.0, temperature: float = 1.0,
                   hypergraph: Hypergraph | None = None, rho: Tensor | None = None,
                   hc_weight: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    """One step's loss over all nodes: ``lamb``·CE(train-mask nodes) + (1 − ``lamb``)·[KD on
    every node (mentor's ``kd`` at ``temperature``) + ``hc_weight``·``L_HC``], ``L_HC`` only
    with ``rho`` (:func:`sampled_hyperedge_kd` on ``hypergraph``, hyperedges drawn from
    ``generator``). Terms of weight 0 are not computed (no draws either)."""
    loss = student_logits.new_zeros(())
    if lamb > 0:
        loss = loss + lamb * cross_entropy(student_logits[train_mask],
                                           labels=labels[train_mask]).mean()
    if lamb < 1.0:
        distil = kd(student_logits, teacher_logits, temperature=temperature).mean()
        if rho is not None and hc_weight > 0:
            if hypergraph is None or generator is None:
                raise MentorError("L_HC needs the hypergraph and a generator for the hyperedge "
                                  "draws; expected both with rho")
            distil = distil + hc_weight * sampled_hyperedge_kd(
                student_logits, teacher_logits, hypergraph, rho, generator, temperature)
        loss = loss + (1.0 - lamb) * distil
    return loss


def student_mlp(in_features: int, num_classes: int, hidden: int = 128,
                dropout: float = 0.5) -> nn.Module:
    """LightHGNN's student (``MyMLPs``: DHG ``MLP([d, hidden])`` then a linear layer):
    linear, batch norm, ReLU, dropout 0.5, linear -- mentor's ``mlp`` (DHG puts the batch
    norm after the ReLU)."""
    from ..models import mlp
    return mlp((in_features,), num_classes, hidden=[hidden], dropout=dropout, batchnorm=True)


@dataclass
class DistilledMLP:
    """A trained student MLP (eval mode): the selected epoch, its validation accuracy and
    the test accuracy (features only: no graph)."""

    model: nn.Module
    best_epoch: int
    val_accuracy: float
    test_accuracy: float


def distill_mlp(data: NodeData, teacher_logits: Tensor | None = None, *, lamb: float = 0.0,
                temperature: float = 1.0, rho: Tensor | None = None, hc_weight: float = 1.0,
                seed: int = 0, epochs: int = 200, lr: float = 0.01,
                weight_decay: float = 5e-4, hidden: int = 128,
                dropout: float = 0.5) -> DistilledMLP:
    """Train an MLP on ``data.x`` (no graph) with LightHGNN's loss, full batch.

    ``teacher_logits`` ``(N, C)``: the teacher's outputs on every node (``None`` only with
    ``lamb=1``, the supervised MLP). ``lamb``: weight of cross-entropy on the train-mask
    nodes; ``1 − lamb`` weighs the distillation: KD (``kd`` at ``temperature``) on all nodes
    plus, with ``rho`` (:func:`hyperedge_reliability` of the teacher on
    ``data.hypergraph``), ``hc_weight``·``L_HC`` (LightHGNN⁺; the official loss adds it with
    weight 1). ``seed`` sets the initial weights, dropout and the hyperedge draws; terms of
    weight 0 are not computed. Returns the weights of the first epoch with the best
    validation accuracy."""
    if not 0.0 <= lamb <= 1.0:
        raise MentorError(f"lamb must be in [0, 1], got {lamb}")
    if not hc_weight >= 0.0:
        raise MentorError(f"hc_weight must be >= 0, got {hc_weight}")
    n, c = data.num_nodes, data.num_classes
    if lamb < 1.0:
        if teacher_logits is None:
            raise MentorError(f"lamb {lamb} < 1 distils, but no teacher_logits were given; "
                              "expected the teacher's logits for every node")
        if tuple(teacher_logits.shape) != (n, c):
            raise MentorError(f"teacher_logits has shape {tuple(teacher_logits.shape)}; "
                              f"expected ({n}, {c}): one row of class logits per node")
        teacher_logits = teacher_logits.detach()
    hg = data.hypergraph.with_singletons()
    use_hc = rho is not None and hc_weight > 0 and lamb < 1.0
    if rho is not None and len(rho) != hg.num_edges:
        raise MentorError(f"rho has {len(rho)} entries; expected one per hyperedge "
                          f"({hg.num_edges}, one-node hyperedges of isolated nodes included)")
    torch.manual_seed(seed)
    net = student_mlp(data.x.shape[1], c, hidden, dropout)
    draws = torch.Generator().manual_seed(seed)
    x, y, tr = data.x, data.y, data.train_mask

    def loss() -> Tensor:
        return lighthgnn_loss(net(x), teacher_logits, y, tr, lamb=lamb,
                              temperature=temperature, hypergraph=hg,
                              rho=rho if use_hc else None, hc_weight=hc_weight,
                              generator=draws)
    best_epoch, best_val = fit_full_batch(net, loss, lambda: accuracy(net(x), y, data.val_mask),
                                          epochs=epochs, lr=lr, weight_decay=weight_decay)
    with torch.no_grad():
        test = accuracy(net(x), y, data.test_mask)
    return DistilledMLP(net, best_epoch, best_val, test)


class NodeLogitsTeacher:
    """A fixed table of teacher logits, one row per node, served by node id: the engine asks
    ``logits_at(x, index)`` with the training rows' positions, which are node ids for
    :meth:`NodeData.splits` (train = every node in id order). Cached outputs of a graph
    teacher that the student's inputs cannot reproduce (they lack the graph)."""

    cacheable = True

    def __init__(self, logits: Tensor, description: str = "fixed node logits"):
        if not torch.is_tensor(logits) or logits.dim() != 2:
            raise MentorError(f"node logits have shape {tuple(getattr(logits, 'shape', ()))}; "
                              "expected (nodes, classes)")
        self.table = logits.detach().float()
        self.num_classes = int(logits.shape[1])
        self.description = description

    def logits_at(self, x: Tensor, index: Tensor) -> Tensor:
        if len(index) and (int(index.min()) < 0 or int(index.max()) >= len(self.table)):
            raise MentorError(f"node id {int(index.max())} asked of a table of "
                              f"{len(self.table)} nodes; expected ids in 0..{len(self.table) - 1}")
        return self.table.to(x.device).index_select(0, index.to(x.device))

    def logits(self, x: Tensor) -> Tensor:
        if len(x) != len(self.table):
            raise MentorError(f"a node-logits teacher knows nodes by id; asked for {len(x)} rows "
                              f"without ids, expected all {len(self.table)} nodes in id order")
        return self.table.to(x.device)

    def to(self, device) -> "NodeLogitsTeacher":
        return self
