"""Token generation and evaluation for any causal LM: a mentor :class:`CharLM`, a Hugging
Face ``*ForCausalLM`` (its output's ``.logits``) or any module mapping ids ``(B, L)`` to
logits ``(B, L, V)``. Generation recomputes the prefix every step (no KV cache): meant for
the short sequences of tests and testbeds, not for serving."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import MentorError
from ..tasks.tokens import logits_of

__all__ = ["complete", "exact_match", "logits_of"]


def complete(model, prompts: Tensor, new_tokens: int, *, greedy: bool = True,
             temperature: float = 1.0, generator: torch.Generator | None = None,
             vocab: int | None = None) -> Tensor:
    """Append ``new_tokens`` tokens to every prompt (B, P): arg-max when ``greedy``, else
    sampled from softmax(logits / temperature). ``vocab`` limits the choice to the first
    ``vocab`` ids (a padded head's extra rows are never sampled)."""
    if new_tokens < 1:
        raise MentorError(f"new_tokens must be >= 1, got {new_tokens}")
    if not greedy and temperature <= 0:
        raise MentorError(f"sampling temperature must be > 0, got {temperature}")
    was = model.training if isinstance(model, nn.Module) else False
    if isinstance(model, nn.Module):
        model.eval()
    ids = prompts
    try:
        for _ in range(new_tokens):
            z = logits_of(model, ids)[:, -1].float()
            if vocab is not None:
                z = z[:, :vocab]
            if greedy:
                nxt = z.argmax(-1)
            else:
                p = torch.softmax(z / temperature, -1)
                nxt = torch.multinomial(p.cpu(), 1, generator=generator).squeeze(-1).to(z.device)
            ids = torch.cat([ids, nxt[:, None]], 1)
    finally:
        if isinstance(model, nn.Module):
            model.train(was)
    return ids


@torch.no_grad()
def exact_match(model, data, *, batch_size: int = 512) -> float:
    """Share of rows of ``data`` (a :class:`TokenData`) whose greedy completion equals the
    reference completion token for token."""
    p = data.prompt_len
    new = data.ids.shape[1] - p
    device = next(model.parameters()).device if isinstance(model, nn.Module) else "cpu"
    right = 0
    for lo in range(0, len(data), batch_size):
        ids = data.ids[lo:lo + batch_size].to(device)
        out = complete(model, ids[:, :p], new)
        right += int((out[:, p:] == ids[:, p:]).all(1).sum())
    return right / len(data)
