"""Small causal language models for the TB-LM testbed and the tests: a GRU or a
transformer over token ids, returning next-token logits ``(B, L, V)``.

``forward(ids, output_hidden_states=True)`` returns ``(logits, hidden_states)`` where
``hidden_states`` is a tuple ``(embeddings, layer 1, ..., layer n)`` -- the same layout as
Hugging Face's ``output_hidden_states`` -- for hidden-state distillation. ``head`` is the
output projection, so losses can compute logits chunk by chunk from the last hidden state.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import MentorError


class CharLM(nn.Module):
    """``kind="gru"``: ``layers`` stacked GRU layers of width ``d_model``;
    ``kind="transformer"``: pre-norm causal transformer blocks (``heads`` heads, learned
    positions up to ``max_len``)."""

    def __init__(self, vocab_size: int, d_model: int = 32, layers: int = 1, *,
                 kind: str = "gru", heads: int = 2, max_len: int = 64):
        super().__init__()
        if kind not in ("gru", "transformer"):
            raise MentorError(f"CharLM kind {kind!r} is unknown; expected 'gru' or "
                              "'transformer'")
        if vocab_size < 2 or d_model < 1 or layers < 1:
            raise MentorError(f"CharLM needs vocab_size >= 2, d_model >= 1, layers >= 1; got "
                              f"{vocab_size}, {d_model}, {layers}")
        self.kind, self.vocab_size, self.d_model = kind, int(vocab_size), int(d_model)
        self.embed = nn.Embedding(vocab_size, d_model)
        if kind == "gru":
            self.blocks = nn.ModuleList(nn.GRU(d_model, d_model, batch_first=True)
                                        for _ in range(layers))
        else:
            self.pos = nn.Embedding(max_len, d_model)
            self.blocks = nn.ModuleList(
                nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout=0.0,
                                           batch_first=True, norm_first=True)
                for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def hidden(self, ids: Tensor) -> tuple[Tensor, ...]:
        """``(embeddings, block 1, ..., block n)``; the last is normalized, ready for ``head``."""
        h = self.embed(ids)
        if self.kind == "transformer":
            h = h + self.pos(torch.arange(ids.shape[1], device=ids.device))
            causal = nn.Transformer.generate_square_subsequent_mask(ids.shape[1],
                                                                    device=ids.device)
        states = [h]
        for i, block in enumerate(self.blocks):
            h = block(h)[0] if self.kind == "gru" else block(h, src_mask=causal,
                                                             is_causal=True)
            if i == len(self.blocks) - 1:
                h = self.norm(h)
            states.append(h)
        return tuple(states)

    def forward(self, ids: Tensor, output_hidden_states: bool = False):
        states = self.hidden(ids)
        logits = self.head(states[-1])
        return (logits, states) if output_hidden_states else logits
