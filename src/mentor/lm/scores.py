"""Teacher-forced scores of a causal language model on the target tokens of
:class:`~mentor.lm.token_data.TokenData`: perplexity (exp of the mean negative
log-likelihood, every target token weighted alike across rows) and next-token accuracy.
Prompt and pad positions are never read. Model selection by validation perplexity
(``distill_lm(select="perplexity")``) and the ``tokens`` runs' perplexity column use them."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import MentorError
from ..tasks.tokens import logits_of
from .token_data import TokenData


def perplexity(model: nn.Module, data: TokenData, *, batch_size: int = 256) -> float:
    """exp of the mean negative log-likelihood of ``data``'s target tokens (each predicted
    from the tokens before it; never a prompt or pad position), every token weighted alike
    across rows."""
    return token_scores(model, data, batch_size=batch_size)["perplexity"]


def token_accuracy(model: nn.Module, data: TokenData, *, batch_size: int = 256) -> float:
    """Share of ``data``'s target tokens that are the model's most likely next token given
    the true tokens before them (teacher-forced top-1 accuracy)."""
    return token_scores(model, data, batch_size=batch_size)["accuracy"]


@torch.no_grad()
def token_scores(model: nn.Module, data: TokenData, *,
                 batch_size: int = 256) -> dict[str, float]:
    """:func:`perplexity` and :func:`token_accuracy` from one pass over ``data``."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count, hits = torch.zeros((), dtype=torch.float64), 0, 0
    try:
        for lo in range(0, len(data), batch_size):
            b = data.subset(slice(lo, lo + batch_size))
            ids, att = b.ids.to(device), b.attention.to(device)
            z = logits_of(model, ids, att)[:, :-1].float()
            target = b.target[:, 1:].to(device)
            nxt = ids[:, 1:]
            nll = -torch.log_softmax(z, -1).gather(-1, nxt[..., None]).squeeze(-1)
            total += nll[target].double().sum().cpu()
            hits += int((z.argmax(-1) == nxt)[target].sum())
            count += int(target.sum())
    finally:
        model.train(was)
    if count == 0:
        raise MentorError("perplexity needs target tokens; the data has none")
    return {"perplexity": float(torch.exp(total / count)), "accuracy": hits / count}


__all__ = ["perplexity", "token_accuracy", "token_scores"]
