"""TB-LM: a synthetic language testbed (METHODS.md §0) -- fixed-width addition strings, and
:func:`reversal`, rows of different lengths for the padding paths.

A sequence is ``<bos>07+12=019;``: two zero-padded operands, ``=``, their zero-padded sum and
``;``. The prompt is ``<bos>07+12=``, the completion ``019;``. Every sequence of one task has
the same length, so there is no padding; the completion mask still separates prompt tokens
(never trained on) from target tokens. The metric is exact match of greedy completions on
held-out prompts (operand pairs never seen in training).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import MentorError
from .token_data import TokenData, from_lists

CHARS = "0123456789+=;"
PAD, BOS = 0, 1
VOCAB = ["<pad>", "<bos>", *CHARS]
_ID = {c: i for i, c in enumerate(VOCAB)}


def encode(text: str) -> list[int]:
    """Token ids of ``text`` (characters of :data:`CHARS`), without ``<bos>``."""
    try:
        return [_ID[c] for c in text]
    except KeyError as e:
        raise MentorError(f"TB-LM text {text!r} has character {e.args[0]!r}; expected only "
                          f"{CHARS!r}") from None


def decode(ids) -> str:
    """The text of token ids, ``<pad>``/``<bos>`` dropped."""
    return "".join(VOCAB[int(i)] for i in ids if int(i) > BOS)


class Addition:
    """Addition of ``digits``-digit operands. ``split(seed)`` gives disjoint train / val /
    test operand pairs (fractions of all pairs; ``train_size`` caps the training set)."""

    def __init__(self, digits: int = 2):
        if not 1 <= int(digits) <= 4:
            raise MentorError(f"TB-LM digits {digits!r} is out of range; expected 1..4")
        self.digits = int(digits)
        self.width = self.digits + 1

    def text(self, a: int, b: int) -> tuple[str, str]:
        d, w = self.digits, self.width
        return f"{a:0{d}d}+{b:0{d}d}=", f"{a + b:0{w}d};"

    def data(self, pairs: Tensor) -> TokenData:
        rows, target = [], []
        for a, b in pairs.tolist():
            p, c = self.text(a, b)
            rows.append([BOS, *encode(p), *encode(c)])
            target.append([False] * (1 + len(p)) + [True] * len(c))
        return TokenData(torch.tensor(rows), torch.tensor(target))

    def answer(self, prompt_ids) -> str:
        """The correct completion of a prompt given as ids."""
        a, b = decode(prompt_ids).rstrip("=").split("+")
        return self.text(int(a), int(b))[1]

    def split(self, seed: int = 0, *, train_size: int | None = None, val: int = 200,
              test: int = 500) -> tuple[TokenData, TokenData, TokenData]:
        n = 10 ** self.digits
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(n * n, generator=g)
        pairs = torch.stack([order // n, order % n], 1)
        if val + test >= len(pairs):
            raise MentorError(f"TB-LM val {val} + test {test} leave no training pairs out of "
                              f"{len(pairs)}")
        te, va, tr = pairs[:test], pairs[test:test + val], pairs[test + val:]
        if train_size is not None:
            tr = tr[:int(train_size)]
        return self.data(tr), self.data(va), self.data(te)


REVERSAL_VOCAB = 10  # ids: 0 <pad>, 1 <bos>, 2 <eos>, 3 "=", 4..9 the symbols


def reversal(n: int, seed: int = 0) -> TokenData:
    """``n`` rows of a task whose rows differ in length: prompt ``<bos> s1 .. sk =``,
    completion ``sk .. s1 <eos>``, ``k`` from 1 to 4 symbols among ids 4..9, drawn from
    ``seed`` (:data:`REVERSAL_VOCAB` ids; right-padded with 0, ``eos_id`` 2)."""
    pad, bos, eos, eq = 0, 1, 2, 3
    g = torch.Generator().manual_seed(seed)
    prompts, completions = [], []
    for _ in range(n):
        k = int(torch.randint(1, 5, (1,), generator=g))
        s = torch.randint(4, REVERSAL_VOCAB, (k,), generator=g).tolist()
        prompts.append([bos, *s, eq])
        completions.append([*s[::-1], eos])
    return from_lists(prompts, completions, pad_id=pad, eos_id=eos)
