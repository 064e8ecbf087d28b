"""Tagging data and the generated testbed TB-SEQ tagging (METHODS.md §0 TB-SEQ, §12 QUEACO,
Zhang et al., "QUEACO: Borrowing Treasures from Weakly-labeled Behavior Data for Query
Attribute Value Extraction", CIKM 2021).

Tags are BIO over ``num_types`` entity types: tag ``0`` is ``O``, ``1 + 2k`` is ``B-k`` and
``2 + 2k`` is ``I-k`` (:func:`tag_names`). :class:`TaggingData` holds padded sequences: word
ids ``tokens`` ``(N, L)``, a boolean ``mask`` ``(N, L)`` (real tokens first, then padding),
the clean ``gold`` tags, the ``weak`` tags a learner is given on the weak training sequences,
and the sequence ids of the splits ``strong`` (training, clean tags), ``weak_ids`` (training,
weak tags), ``val`` and ``test`` (clean tags, for selection and the final score).

:func:`tb_seq_tagging` generates the testbed, deterministic for a seed (vocabulary 200):

- word ids: ``0`` padding; ``1..9`` trigger words, three per type (type ``k``: ``1+3k..3+3k``);
  ``10..99`` entity words, thirty per type (type ``k``: ``10+30k..39+30k``); ``100..119``
  ambiguous words shared by all types; ``120..199`` context ("other") words.
- a sequence has a length drawn uniformly in ``8..20`` and ``1..3`` entity spans (as many as
  fit) of length ``1..3`` and a type drawn uniformly; each span is preceded by one trigger word
  of its type (tag ``O``), spans never touch. A span's words are entity words of its type,
  except that each is an ambiguous word with probability ``ambiguous`` (0.3): its type is
  readable only from the trigger. The remaining positions are context words, each replaced
  by an ambiguous word (tag ``O``) with probability 0.05, so an ambiguous word is not an
  entity by itself.
- ``strong`` is a seeded ``strong_fraction`` (5 %) of the training sequences, ``weak_ids``
  the rest. Weak tags (:func:`corrupt`): every real token of a weak sequence is selected
  independently with probability ``corruption`` (0.3) and a selected token's tag is replaced
  by a *different* tag, so the fraction of weak tags that differ from gold is ``corruption``
  in expectation. The replacement, by the gold tag ``g``:

  - ``g`` an entity tag ``B-k`` / ``I-k``: one of three kinds, uniformly: *wrong type* (same
    B/I, type ``(k + 1 + r) mod K`` with ``r`` uniform in ``0..K-2``), *dropped* (``O``),
    *shifted boundary* (``B-k → I-k``: the span begins elsewhere; ``I-k → B-k``: a boundary
    inside the span);
  - ``g = O``: *shifted boundary* ``I-k`` when the previous token's gold tag has type ``k``
    (the span ends one token later), else a spurious ``B-k`` with ``k`` uniform.

Strong, validation and test sequences keep ``weak == gold``.

Bad input (a tag id beyond the tag set, a word id beyond the vocabulary, shapes that do not
match, overlapping splits) raises :class:`~mentor.errors.DataError`: one sentence naming the
field, the value and what is expected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..data.splits import check_split_ids
from ..errors import DataError, MentorError

SPLITS = ("strong", "weak_ids", "val", "test")


def num_tags(num_types: int) -> int:
    """``O`` plus ``B-k`` and ``I-k`` for every type."""
    return 1 + 2 * num_types


def tag_names(num_types: int) -> list[str]:
    """``['O', 'B-0', 'I-0', 'B-1', ...]``."""
    return ["O"] + [f"{p}-{k}" for k in range(num_types) for p in ("B", "I")]


def check_tags(tags: Tensor, mask: Tensor, num_types: int, name: str = "tags") -> None:
    """Raise :class:`DataError` unless ``tags`` is an integer tensor of ``mask``'s shape with
    ids in ``0 .. 2·num_types`` on the real tokens."""
    if not torch.is_tensor(tags) or tags.is_floating_point() or tags.dtype == torch.bool:
        raise DataError(f"{name} has dtype {getattr(tags, 'dtype', type(tags).__name__)}; "
                        "expected integer tag ids")
    if tuple(tags.shape) != tuple(mask.shape):
        raise DataError(f"{name} has shape {tuple(tags.shape)} but mask has shape "
                        f"{tuple(mask.shape)}; expected one tag per token")
    top = num_tags(num_types) - 1
    real = tags[mask]
    bad = real[(real < 0) | (real > top)]
    if len(bad):
        raise DataError(f"{name} holds tag id {int(bad[0])}; expected ids 0..{top} "
                        f"(O, B- and I- of {num_types} types)")


@dataclass(frozen=True, eq=False)
class TaggingData:
    """Padded tagged sequences (see the module docstring); ``vocab`` word ids
    ``0..vocab-1`` with ``0`` the padding."""

    tokens: Tensor
    mask: Tensor
    gold: Tensor
    weak: Tensor
    strong: Tensor
    weak_ids: Tensor
    val: Tensor
    test: Tensor
    num_types: int = 3
    vocab: int = 200
    name: str = "tagging data"

    def __post_init__(self):
        t, m = self.tokens, self.mask
        if not torch.is_tensor(t) or t.dim() != 2 or t.is_floating_point():
            raise DataError(f"tokens has shape {tuple(getattr(t, 'shape', ()))}; expected "
                            "(sequences, length) integer word ids")
        if not torch.is_tensor(m) or m.dtype != torch.bool or tuple(m.shape) != tuple(t.shape):
            raise DataError(f"mask has shape {tuple(getattr(m, 'shape', ()))} and dtype "
                            f"{getattr(m, 'dtype', None)}; expected a boolean "
                            f"{tuple(t.shape)} like tokens")
        if int(self.num_types) < 1:
            raise DataError(f"num_types must be >= 1, got {self.num_types}")
        words = t[m]
        bad = words[(words < 1) | (words >= self.vocab)]
        if len(bad):
            raise DataError(f"tokens holds word id {int(bad[0])} on a real token; expected "
                            f"ids 1..{self.vocab - 1} (0 is padding)")
        lengths = m.sum(1)
        if len(m) and not torch.equal(m, torch.arange(m.shape[1]) < lengths[:, None]):
            raise DataError("mask has padding before a real token; expected real tokens "
                            "first, then padding")
        if len(m) and int(lengths.min()) < 1:
            raise DataError(f"sequence {int((lengths < 1).nonzero()[0])} has no real token; "
                            "expected at least one")
        check_tags(self.gold, m, self.num_types, "gold")
        check_tags(self.weak, m, self.num_types, "weak")
        check_split_ids({name: getattr(self, name) for name in SPLITS}, len(t), "sequence",
                        "sequences")

    @property
    def num_tags(self) -> int:
        return num_tags(self.num_types)

    def describe(self) -> str:
        n_tok = int(self.mask.sum())
        w = self.weak_ids
        noisy = (self.weak[w] != self.gold[w])[self.mask[w]].float().mean().item() if len(w) \
            else 0.0
        return (f"{self.name}: {len(self.tokens)} sequences, {n_tok} tokens, vocabulary "
                f"{self.vocab}, {self.num_types} entity types; strong {len(self.strong)}, "
                f"weak {len(self.weak_ids)} ({100 * noisy:.1f} % of weak tags wrong), val "
                f"{len(self.val)}, test {len(self.test)}")


def _check_fraction(name: str, value: float, *, top_open: bool = False) -> float:
    v = float(value)
    if not (0.0 <= v <= 1.0) or (top_open and v >= 1.0):
        raise MentorError(f"{name} must be in [0, 1{')' if top_open else ']'}, got {value!r}")
    return v


def corrupt(gold: Tensor, mask: Tensor, num_types: int, rate: float,
            generator: np.random.Generator) -> Tensor:
    """Weak tags from ``gold`` by the documented rule (module docstring): each real token is
    selected with probability ``rate`` and its tag replaced by a different tag."""
    check_tags(gold, mask, num_types, "gold")
    rate = _check_fraction("corruption", rate)
    g = gold.numpy()
    m = mask.numpy()
    out = g.copy()
    select = (generator.random(g.shape) < rate) & m
    kind = generator.integers(0, 3, size=g.shape)
    other = generator.integers(0, max(num_types - 1, 1), size=g.shape)
    spurious = generator.integers(0, num_types, size=g.shape)
    for i, j in zip(*np.nonzero(select)):
        t = int(g[i, j])
        if t > 0:
            k, is_b = (t - 1) // 2, (t - 1) % 2 == 0
            if kind[i, j] == 0 and num_types > 1:  # wrong type
                k2 = (k + 1 + int(other[i, j])) % num_types
                out[i, j] = 1 + 2 * k2 + (0 if is_b else 1)
            elif kind[i, j] == 1 or (kind[i, j] == 0 and num_types == 1):  # dropped
                out[i, j] = 0
            else:  # shifted boundary
                out[i, j] = 2 + 2 * k if is_b else 1 + 2 * k
        else:
            prev = int(g[i, j - 1]) if j > 0 else 0
            if prev > 0:  # the span before ends one token later
                out[i, j] = 2 + 2 * ((prev - 1) // 2)
            else:  # a spurious span
                out[i, j] = 1 + 2 * int(spurious[i, j])
    return torch.from_numpy(out)


def tb_seq_tagging(num_sequences: int = 3000, *, seed: int = 0, num_types: int = 3,
                   min_length: int = 8, max_length: int = 20, ambiguous: float = 0.3,
                   split: tuple[float, float, float] = (0.6, 0.2, 0.2),
                   strong_fraction: float = 0.05, corruption: float = 0.3) -> TaggingData:
    """Generate TB-SEQ tagging (module docstring), deterministic for ``seed``. ``split``:
    the train / val / test fractions of the sequences; ``strong_fraction`` of the training
    sequences (at least one) keep clean tags, the others get weak tags corrupted at rate
    ``corruption``."""
    if num_types != 3:
        raise MentorError(f"num_types must be 3 for TB-SEQ tagging's vocabulary, got "
                          f"{num_types!r}")
    if isinstance(num_sequences, bool) or not isinstance(num_sequences, int) or \
            num_sequences < 4:
        raise MentorError(f"num_sequences must be an integer >= 4, got {num_sequences!r}")
    if not (isinstance(min_length, int) and isinstance(max_length, int)
            and 4 <= min_length <= max_length):
        raise MentorError(f"min_length and max_length must be integers with 4 <= min_length <= "
                          f"max_length, got {min_length!r} and {max_length!r}")
    ambiguous = _check_fraction("ambiguous", ambiguous)
    strong_fraction = _check_fraction("strong_fraction", strong_fraction)
    if len(split) != 3 or min(split) < 0 or abs(sum(split) - 1) > 1e-6:
        raise MentorError(f"split must be three fractions summing to 1, got {split!r}")
    rng = np.random.default_rng(seed)
    n, lmax = num_sequences, max_length
    tokens = np.zeros((n, lmax), dtype=np.int64)
    gold = np.zeros((n, lmax), dtype=np.int64)
    lengths = rng.integers(min_length, max_length + 1, size=n)
    for i in range(n):
        length = int(lengths[i])
        words = 120 + rng.integers(0, 80, size=length)
        words = np.where(rng.random(length) < 0.05, 100 + rng.integers(0, 20, size=length),
                         words)
        tags = np.zeros(length, dtype=np.int64)
        want = int(rng.integers(1, 4))
        pos = int(rng.integers(0, 3))  # where the first trigger may go
        for _ in range(want):
            span = int(rng.integers(1, 4))
            if pos + 1 + span > length:
                break
            k = int(rng.integers(0, num_types))
            words[pos] = 1 + 3 * k + int(rng.integers(0, 3))
            for j in range(pos + 1, pos + 1 + span):
                words[j] = (100 + int(rng.integers(0, 20)) if rng.random() < ambiguous
                            else 10 + 30 * k + int(rng.integers(0, 30)))
                tags[j] = 1 + 2 * k if j == pos + 1 else 2 + 2 * k
            pos += 1 + span + 1 + int(rng.integers(0, 4))  # at least one O between spans
        tokens[i, :length] = words
        gold[i, :length] = tags
    mask = torch.arange(lmax)[None, :] < torch.from_numpy(lengths)[:, None]
    perm = rng.permutation(n)
    n_train = max(1, int(round(split[0] * n)))
    n_val = int(round(split[1] * n))
    train, val, test = perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]
    n_strong = max(1, int(round(strong_fraction * n_train)))
    strong, weak_ids = np.sort(train[:n_strong]), np.sort(train[n_strong:])
    gold_t = torch.from_numpy(gold)
    weak = gold_t.clone()
    if len(weak_ids):
        w = torch.from_numpy(weak_ids)
        weak[w] = corrupt(gold_t[w], mask[w], num_types, corruption, rng)
    return TaggingData(torch.from_numpy(tokens), mask, gold_t, weak, torch.from_numpy(strong),
                       torch.from_numpy(weak_ids), torch.from_numpy(np.sort(val)),
                       torch.from_numpy(np.sort(test)), num_types, 200,
                       name=f"TB-SEQ tagging (seed {seed})")
