"""CLAPS: contrastive learning with adversarial perturbations for conditional generation
(Lee, Lee & Hwang, ICLR 2021; METHODS.md §42).

A regulariser added to the MLE loss of a conditional generator. The source (prompt / encoder)
states and the target (completion / decoder) states are projected (a shared ``Linear + ReLU``)
and mean-pooled into ``z_x`` and ``z_y``; an InfoNCE loss with cosine similarity and
temperature ``tau`` pulls each ``z_x`` to its own ``z_y`` and away from the other rows'. Two
hard examples are made by perturbing the target states ``H``, read through the output head only:

- the *imposter* (a hard negative): ``H + eps_neg · g / ||g||`` per position, ``g`` the
  gradient of the target NLL -- a small step that makes the target unlikely;
- the *distant positive*: ``H' = H + eps_pos · g_c / ||g_c||``, ``g_c`` the gradient of the
  InfoNCE loss (a large step away from the source), then ``H' - eps_pos · g_k / ||g_k||``,
  ``g_k`` the gradient of ``KL(p(H) || p(H'))`` -- pulled back to keep the target likely.

The loss is the mean of two InfoNCE terms over logits ``[cos(z_x, z_y) | cos(z_x, z_imp)]``: one
with the real ``z_y`` on the diagonal, one with the distant positive there. The perturbed states
are constants (no gradient to the model through them; they reach the projection and the source
states). Differences from the authors' code (seanie12/CLAPS): gradients are taken with
``torch.autograd.grad`` (no parameter ``.grad`` is touched) and both InfoNCE terms are divided
by ``tau`` (the second is not in their code).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import MentorError, check_param


def masked_mean(h: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``h`` ``(B, L, D)`` over the positions where ``mask`` ``(B, L)`` is true."""
    m = mask.to(h.dtype).unsqueeze(-1)
    return (h * m).sum(1) / m.sum(1).clamp_min(1.0)


def _unit(g: Tensor) -> Tensor:
    return g / (g.norm(dim=-1, keepdim=True) + 1e-12)


def _info_nce(zx: Tensor, zy: Tensor, tau: float) -> Tensor:
    sim = F.cosine_similarity(zx.unsqueeze(1), zy.unsqueeze(0), dim=-1) / tau
    return F.cross_entropy(sim, torch.arange(len(zx), device=zx.device))


def imposter(tgt_h: Tensor, tgt_mask: Tensor, head: nn.Module, targets: Tensor,
             eps: float) -> Tensor:
    """Target states moved ``eps`` (per position) up the gradient of the target NLL."""
    h = tgt_h.detach().requires_grad_(True)
    logits = head(h)
    nll = F.cross_entropy(logits[tgt_mask], targets[tgt_mask])
    (g,) = torch.autograd.grad(nll, h)
    return (h + eps * _unit(g)).detach()


def distant_positive(src_z: Tensor, tgt_h: Tensor, tgt_mask: Tensor, head: nn.Module,
                     projection: nn.Module, tau: float, eps: float) -> Tensor:
    """Target states pushed ``eps`` away from their source (up the InfoNCE gradient), then
    ``eps`` back down the gradient of the KL to the original output distribution."""
    h = tgt_h.detach().requires_grad_(True)
    loss = _info_nce(src_z.detach(), masked_mean(projection(h), tgt_mask), tau)
    (g,) = torch.autograd.grad(loss, h)
    far = (h + eps * _unit(g)).detach().requires_grad_(True)
    with torch.no_grad():
        p = F.softmax(head(tgt_h.detach()), -1)
    logq = F.log_softmax(head(far), -1)
    kl = (p * (torch.log(p.clamp_min(1e-30)) - logq)).sum(-1)
    kl = kl[tgt_mask].sum() / tgt_mask.sum().clamp_min(1)
    (gk,) = torch.autograd.grad(kl, far)
    return (far - eps * _unit(gk)).detach()


def claps_loss(src_h: Tensor, src_mask: Tensor, tgt_h: Tensor, tgt_mask: Tensor,
               head: nn.Module, targets: Tensor, projection: nn.Module, *, tau: float = 0.1,
               eps_neg: float = 1.0, eps_pos: float = 3.0) -> Tensor:
    """The CLAPS contrastive term for a batch (add it to the MLE loss).

    ``src_h`` ``(B, Ls, D)`` / ``tgt_h`` ``(B, Lt, D)``: the model's source and target states
    (with gradients); masks mark the real positions; ``head`` maps states to vocabulary logits;
    ``targets`` ``(B, Lt)``: the token each target position predicts; ``projection``: the
    shared projection (trainable, e.g. ``nn.Sequential(nn.Linear(D, D), nn.ReLU())``).
    Needs a batch of at least 2 rows (the other rows are the negatives).

    >>> import torch
    >>> from torch import nn
    >>> _ = torch.manual_seed(0)
    >>> head, proj = nn.Linear(8, 5), nn.Sequential(nn.Linear(8, 8), nn.ReLU())
    >>> src, tgt = torch.randn(4, 3, 8, requires_grad=True), torch.randn(4, 2, 8)
    >>> mask_s, mask_t = torch.ones(4, 3, dtype=torch.bool), torch.ones(4, 2, dtype=torch.bool)
    >>> loss = claps_loss(src, mask_s, tgt, mask_t, head, torch.randint(0, 5, (4, 2)), proj)
    >>> loss.backward(); bool(loss > 0), src.grad is not None
    (True, True)
    """
    check_param("claps", "tau", tau, low=0, low_open=True)
    check_param("claps", "eps_neg", eps_neg, low=0)
    check_param("claps", "eps_pos", eps_pos, low=0)
    if src_h.dim() != 3 or tgt_h.dim() != 3 or len(src_h) != len(tgt_h):
        raise MentorError(f"claps: source states {tuple(src_h.shape)} and target states "
                          f"{tuple(tgt_h.shape)} must be (batch, length, dim) with one batch")
    if len(src_h) < 2:
        raise MentorError("claps: a batch needs at least 2 rows (the other rows are the "
                          "negatives)")
    if not bool(tgt_mask.any()):
        raise MentorError("claps: the target mask masks every position; expected at least "
                          "one target token")
    zx = masked_mean(projection(src_h), src_mask)
    zy = masked_mean(projection(tgt_h), tgt_mask)
    z_imp = masked_mean(projection(imposter(tgt_h, tgt_mask, head, targets, eps_neg)),
                        tgt_mask)
    z_pos = masked_mean(projection(distant_positive(zx, tgt_h, tgt_mask, head, projection,
                                                    tau, eps_pos)), tgt_mask)
    sim = F.cosine_similarity(zx.unsqueeze(1), zy.unsqueeze(0), dim=-1)
    imp = F.cosine_similarity(zx, z_imp, dim=-1).unsqueeze(1)
    pos = F.cosine_similarity(zx, z_pos, dim=-1)
    eye = torch.eye(len(zx), dtype=torch.bool, device=zx.device)
    labels = torch.arange(len(zx), device=zx.device)
    real = F.cross_entropy(torch.cat([sim, imp], 1) / tau, labels)
    with_pos = torch.where(eye, pos.unsqueeze(1).expand_as(sim), sim)
    distant = F.cross_entropy(torch.cat([with_pos, imp], 1) / tau, labels)
    return 0.5 * (real + distant)
