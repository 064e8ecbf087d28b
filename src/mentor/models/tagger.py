"""``bigru_tagger``: a per-token tagger on token ids ``(B, L) -> (B, L, tags)``.

Embedding, a bidirectional GRU and a linear head per position. Padding is token id ``0`` at
the end of each row. The backward direction reads each row reversed *within its length*
(an index gather, not a packed sequence), so the padding never reaches a real token's
output and the model exports to ONNX as plain tensor ops; outputs at padded positions are
defined but read by no loss or metric (their labels are the tagging task's padding,
:data:`mentor.tasks.tagging.PAD`).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ..errors import MentorError
from ..registry import MODELS


def reverse_within_length(lengths: Tensor, width: int) -> Tensor:
    """Per row, the positions ``(B, width)`` that reverse its first ``lengths[b]`` entries
    and leave its padding where it is (the map is its own inverse)."""
    j = torch.arange(width, device=lengths.device)[None, :]  # broadcast: no fixed batch size
    flipped = lengths[:, None] - 1 - j
    return torch.where(j < lengths[:, None], flipped, j + 0 * flipped)


class BiGRUTagger(nn.Module):
    """Token ids ``(B, L)`` (``0`` pads the end of a row) to tag logits ``(B, L, tags)``."""

    def __init__(self, vocab_size: int, num_tags: int, embed: int = 32, hidden: int = 32):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=0)
        self.forward_gru = nn.GRU(embed, hidden, batch_first=True)
        self.backward_gru = nn.GRU(embed, hidden, batch_first=True)
        self.head = nn.Linear(2 * hidden, num_tags)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """``attention_mask`` (``(B, L)``, 1 on real tokens, right padding) gives the row
        lengths when given (an exported model's inputs), else the non-zero ids do."""
        e = self.embedding(input_ids)
        # an explicit initial state keeps the batch size dynamic in an exported graph
        h0 = e.new_zeros(1, e.shape[0], self.forward_gru.hidden_size)
        ahead, _ = self.forward_gru(e, h0)  # padding comes after each real token: unseen
        lengths = (input_ids != 0).sum(1) if attention_mask is None else attention_mask.sum(1)
        order = reverse_within_length(lengths, input_ids.shape[1])
        index = order[..., None].expand_as(e)
        behind, _ = self.backward_gru(e.gather(1, index), h0)
        behind = behind.gather(1, order[..., None].expand_as(behind))
        return self.head(torch.cat([ahead, behind], -1))


@MODELS.register("bigru_tagger", description="sequence tagging: token embedding, a "
                 "bidirectional GRU and a per-token head; reads token ids (0 = padding) and "
                 "outputs (batch, length, tags) for task: tagging")
def bigru_tagger(input_shape: Sequence[int], num_classes: int, *, vocab_size: int,
                 embed: int = 32, hidden: Sequence[int] = (32,)) -> nn.Module:
    """``hidden``: one width, the GRU state of each direction."""
    if len(hidden) != 1:
        raise MentorError(f"bigru_tagger: hidden is {list(hidden)}; expected one width (the "
                          "GRU state of each direction), e.g. [32]")
    return BiGRUTagger(vocab_size, num_classes, embed, hidden[0])
