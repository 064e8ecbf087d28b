"""Prompt + completion sequences for language-model distillation: :class:`TokenData`.

Rows are right-padded to one width: ``ids`` ``(N, L)``, ``attention`` ``(N, L)`` True on real
tokens (a prefix of every row), ``target`` ``(N, L)`` True on the tokens a loss or metric
predicts (the completion; never a prompt or pad token). Each row has its own prompt length
(the first target position) and its own completion length; nothing assumes row 0's layout
holds for the others. ``eos_id`` (optional) ends a completion: generation stops there and
exact match compares completions up to and including it, never the positions after it.

Right padding lets any causal module read a row without an attention mask (a causal model's
outputs at real positions never see the pads after them); Hugging Face models are given the
mask and position ids anyway (:func:`mentor.tasks.tokens.logits_of`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from ..errors import MentorError


@dataclass
class TokenData:
    """Right-padded sequences (module docstring). ``attention`` defaults to every position
    real; ``pad_id`` fills positions after a row's end."""

    ids: Tensor
    target: Tensor
    attention: Tensor | None = None
    pad_id: int = 0
    eos_id: int | None = None

    def __post_init__(self):
        if self.ids.ndim != 2 or self.target.shape != self.ids.shape:
            raise MentorError(f"token data ids {tuple(self.ids.shape)} and target mask "
                              f"{tuple(self.target.shape)} must both be (sequences, length)")
        self.target = self.target.bool()
        if self.attention is None:
            self.attention = torch.ones_like(self.target)
        self.attention = self.attention.bool()
        if self.attention.shape != self.ids.shape:
            raise MentorError(f"token data attention mask {tuple(self.attention.shape)} must "
                              f"have the ids' shape {tuple(self.ids.shape)}")
        if len(self.ids) == 0:
            return
        lengths = self.attention.sum(1)
        steps = torch.arange(self.ids.shape[1])
        bad = ((steps[None] < lengths[:, None]) != self.attention).any(1)
        if bad.any():
            raise MentorError(f"token data row {int(bad.nonzero()[0])} is not right-padded; "
                              "expected its real tokens first and padding after them")
        bad = (self.target & ~self.attention).any(1) | ~self.target.any(1) | self.target[:, 0]
        if bad.any():
            i = int(bad.nonzero()[0])
            raise MentorError(f"token data row {i} has no completion token, a target at "
                              "position 0 or a target on padding; expected at least one "
                              "prompt token and completion tokens among the real ones")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> Tensor:
        """Real tokens per row ``(N,)``."""
        return self.attention.sum(1)

    @property
    def prompt_lens(self) -> Tensor:
        """Prompt tokens per row ``(N,)``: the first target position."""
        return self.target.float().argmax(1)

    @property
    def prompt_len(self) -> int:
        """The prompt length, for paths that need every row's prompt to have one length."""
        lens = self.prompt_lens
        if len(lens) and bool((lens != lens[0]).any()):
            raise MentorError("this path needs prompts of one length; the data's prompts have "
                              f"{int(lens.min())} to {int(lens.max())} tokens")
        return int(lens[0]) if len(lens) else 0

    @property
    def max_new_tokens(self) -> int:
        """The longest completion (tokens from a row's prompt end to its last real token)."""
        return int((self.lengths - self.prompt_lens).max())

    def prompts(self) -> Tensor:
        """The prompts ``(N, P)`` of data whose prompts have one length."""
        return self.ids[:, :self.prompt_len]

    def subset(self, rows) -> "TokenData":
        """Rows ``rows``, trimmed to their longest row."""
        ids, target, att = self.ids[rows], self.target[rows], self.attention[rows]
        width = int(att.sum(1).max()) if len(ids) else ids.shape[1]
        return TokenData(ids[:, :width], target[:, :width], att[:, :width], self.pad_id,
                         self.eos_id)

    def prompt_lists(self) -> list[list[int]]:
        return [r[:int(p)].tolist() for r, p in zip(self.ids, self.prompt_lens)]

    def completion_lists(self) -> list[list[int]]:
        return [r[int(p):int(n)].tolist()
                for r, p, n in zip(self.ids, self.prompt_lens, self.lengths)]

    def left_padded_prompts(self) -> tuple[Tensor, Tensor]:
        """The prompts left-padded to the longest: ``(ids (N, P), attention (N, P))``."""
        return left_pad(self.prompt_lists(), self.pad_id)

    def with_completions(self, completions: Sequence[Sequence[int]]) -> "TokenData":
        """The same prompts with other completions (one per row; each cut after its first
        ``eos_id``), e.g. a model's samples."""
        return from_lists(self.prompt_lists(), completions, pad_id=self.pad_id,
                          eos_id=self.eos_id)


def cut_at_eos(tokens: Sequence[int], eos_id: int | None) -> list[int]:
    """``tokens`` up to and including the first ``eos_id`` (all of them without one)."""
    tokens = [int(t) for t in tokens]
    if eos_id is not None and eos_id in tokens:
        return tokens[:tokens.index(eos_id) + 1]
    return tokens


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), int(pad_id), dtype=torch.long)
    att = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, r in enumerate(rows):
        if len(r):
            ids[i, width - len(r):] = torch.as_tensor(list(r), dtype=torch.long)
            att[i, width - len(r):] = True
    return ids, att


def from_lists(prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], *,
               pad_id: int = 0, eos_id: int | None = None) -> TokenData:
    """Right-padded :class:`TokenData` from token-id lists: each prompt followed by its
    completion (cut after its first ``eos_id``); the completion is the target."""
    if len(prompts) != len(completions):
        raise MentorError(f"{len(prompts)} prompts but {len(completions)} completions; "
                          "expected one completion per prompt")
    rows = [(list(map(int, p)), cut_at_eos(c, eos_id)) for p, c in zip(prompts, completions)]
    width = max((len(p) + len(c) for p, c in rows), default=0)
    ids = torch.full((len(rows), width), int(pad_id), dtype=torch.long)
    target = torch.zeros(len(rows), width, dtype=torch.bool)
    att = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, (p, c) in enumerate(rows):
        n = len(p) + len(c)
        ids[i, :n] = torch.tensor(p + c, dtype=torch.long)
        target[i, len(p):n] = True
        att[i, :n] = True
    return TokenData(ids, target, att, pad_id, eos_id)
