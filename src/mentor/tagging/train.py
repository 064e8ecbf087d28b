"""Train a small sequence tagger on strong, weak and teacher-refined tags (METHODS.md §12
QUEACO's CPU experiment; Zhang et al., "QUEACO: Borrowing Treasures from Weakly-labeled
Behavior Data for Query Attribute Value Extraction", CIKM 2021).

The tagger (:func:`tagger`) is an embedding, a one-layer bidirectional GRU over the real
tokens (packed, so padding is never read) and a per-token linear head over the BIO tags. It
is trained with Adam on the cross-entropy of the real tokens of the given training sequences
(mini-batches in a seeded order; ``seed`` also sets the initial weights). Model selection
reads the validation sequences' span F1 only: the weights of the first epoch with the best
value are kept, and the test sequences are scored once, at the end (:class:`TrainedTagger`).

:func:`compare_arms` runs the three arms of the experiment on one data set and seed:

- ``strong``: the strong sequences' clean tags only;
- ``weak``: the strong sequences' clean tags and the weak sequences' weak tags;
- ``refined``: the strong tags and the weak tags refined by a teacher
  (:func:`~mentor.tagging.refine.refine`) -- the teacher is the ``strong`` arm's tagger,
  frozen. QUEACO's meta-feedback update of the teacher, the fourth arm, is
  :func:`mentor.tagging.meta.compare_meta_arms`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..errors import DataError, MentorError
from .metrics import span_f1, token_accuracy
from .refine import refine
from .testbed import TaggingData, check_tags


class Tagger(nn.Module):
    """``tokens (N, L), mask (N, L) → logits (N, L, tags)``."""

    def __init__(self, vocab: int, num_tags: int, embed: int = 32, hidden: int = 32):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed, padding_idx=0)
        self.gru = nn.GRU(embed, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, num_tags)

    def forward(self, tokens: Tensor, mask: Tensor) -> Tensor:
        lengths = mask.sum(-1).cpu()
        packed = pack_padded_sequence(self.embed(tokens), lengths, batch_first=True,
                                      enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=tokens.shape[1])
        return self.head(out)


def tagger(data: TaggingData, embed: int = 32, hidden: int = 32) -> Tagger:
    """A fresh :class:`Tagger` for ``data``'s vocabulary and tag set."""
    for name, v in (("embed", embed), ("hidden", hidden)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise MentorError(f"{name} must be a positive integer, got {v!r}")
    return Tagger(data.vocab, data.num_tags, embed, hidden)


@dataclass
class TrainedTagger:
    """A trained tagger (eval mode): the selected epoch, its validation span F1, and the
    test span F1 and token accuracy."""

    model: Tagger
    best_epoch: int
    val_f1: float
    test_f1: float
    test_accuracy: float


def probabilities(model: nn.Module, data: TaggingData, ids: Tensor) -> Tensor:
    """Softmax tag probabilities ``(len(ids), L, tags)`` of ``model`` on sequences ``ids``."""
    model.eval()
    with torch.no_grad():
        return torch.softmax(model(data.tokens[ids], data.mask[ids]), -1)


def evaluate(model: nn.Module, data: TaggingData, split: str) -> dict[str, float]:
    """``f1`` (span F1) and ``accuracy`` (token accuracy) of ``model`` on ``split`` (``val``
    or ``test``) against the gold tags."""
    if split not in ("val", "test"):
        raise MentorError(f"split must be 'val' or 'test', got {split!r}")
    ids = getattr(data, split)
    if not len(ids):
        raise DataError(f"split {split!r} names no sequence; expected at least one to evaluate")
    pred = probabilities(model, data, ids).argmax(-1)
    g, m = data.gold[ids], data.mask[ids]
    return {"f1": span_f1(pred, g, m, data.num_types),
            "accuracy": token_accuracy(pred, g, m, data.num_types)}


def student_step(net: nn.Module, opt: torch.optim.Optimizer, tokens: Tensor, mask: Tensor,
                 y: Tensor) -> float:
    """One optimiser step of ``net`` on the cross-entropy of the real tokens' tags ``y``
    (mean over the real tokens of the batch); returns the loss before the step."""
    logits = net(tokens, mask)
    loss = nn.functional.cross_entropy(logits[mask], y[mask])
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach())


def train_tagger(data: TaggingData, targets: Tensor, ids: Tensor, *, seed: int = 0,
                 epochs: int = 15, lr: float = 0.01, batch_size: int = 32, embed: int = 32,
                 hidden: int = 32, updater=None) -> TrainedTagger:
    """Train :func:`tagger` on ``targets`` ``(N, L)`` (tags for every sequence of ``data``;
    only the sequences ``ids`` are read) and keep the first epoch with the best validation
    span F1. ``updater``: ``None`` (each batch: :func:`student_step` on ``targets``) or an
    object whose ``step(student, optimizer, batch, targets)`` takes the batch's student step
    itself -- QUEACO's teacher updater :class:`~mentor.tagging.meta.MetaFeedback`, which
    re-labels the batch's weak sequences with its current teacher first."""
    check_tags(targets, data.mask, data.num_types, "targets")
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise MentorError(f"{name} must be a positive integer, got {v!r}")
    ids = torch.as_tensor(ids).long()
    if not len(ids):
        raise DataError("ids names no sequence; expected at least one training sequence")
    if not len(data.val):
        raise DataError("val names no sequence; expected validation sequences for selection")
    torch.manual_seed(seed)
    net = tagger(data, embed, hidden)
    order = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    best_state, best_epoch, best_val = copy.deepcopy(net.state_dict()), -1, -1.0
    for epoch in range(epochs):
        net.train()
        for batch in ids[torch.randperm(len(ids), generator=order)].split(batch_size):
            if updater is None:
                student_step(net, opt, data.tokens[batch], data.mask[batch], targets[batch])
            else:
                updater.step(net, opt, batch, targets)
        score = evaluate(net, data, "val")["f1"]
        if score > best_val:
            best_state, best_epoch, best_val = copy.deepcopy(net.state_dict()), epoch, score
    net.load_state_dict(best_state)
    net.eval()
    test = evaluate(net, data, "test")
    return TrainedTagger(net, best_epoch, best_val, test["f1"], test["accuracy"])


ARMS = ("strong", "weak", "refined")


def refined_targets(data: TaggingData, teacher: nn.Module,
                    threshold: float = 0.9) -> tuple[Tensor, Tensor]:
    """``(targets, overridden)``: ``data.weak`` with the weak sequences' tags refined by
    ``teacher`` at ``threshold`` (:func:`~mentor.tagging.refine.refine`); ``overridden``
    ``(N, L)`` marks the tokens the teacher replaced."""
    w = data.weak_ids
    targets = data.weak.clone()
    overridden = torch.zeros_like(data.mask)
    if len(w):
        new, over = refine(data.weak[w], probabilities(teacher, data, w), data.mask[w],
                           threshold, data.num_types)
        targets[w] = new
        overridden[w] = over
    return targets, overridden


def compare_arms(data: TaggingData, *, seed: int = 0, threshold: float = 0.9,
                 strong_epochs: int = 150, **train) -> dict[str, TrainedTagger]:
    """The three arms (module docstring) with the same seed. The ``strong`` arm (and so the
    teacher) trains for ``strong_epochs`` passes -- its few sequences give few steps per
    pass --, the other two for ``train``'s ``epochs``; ``train``: further arguments of
    :func:`train_tagger`."""
    strong = train_tagger(data, data.gold, data.strong, seed=seed,
                          **{**train, "epochs": strong_epochs})
    both = torch.cat([data.strong, data.weak_ids])
    weak = train_tagger(data, data.weak, both, seed=seed, **train)
    targets, _ = refined_targets(data, strong.model, threshold)
    refined = train_tagger(data, targets, both, seed=seed, **train)
    return {"strong": strong, "weak": weak, "refined": refined}
