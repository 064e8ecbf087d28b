"""Text-anchored objectives of VLM -> student distillation with OOD generalisability.

Li, Fang, Zhang, Su et al. 2023, "Distilling Large Vision-Language Model with
Out-of-Distribution Generalizability" (ICCV); code xuanlinli17/large_vlm_distillation_ood
``main_experiments.py`` (the loss block, lines ~660-770). Notation: student feature ``u``,
teacher image feature ``v`` (both normalized here), teacher text table ``W`` (normalized rows,
one per label text), temperature ``tau`` (0.07, CLIP's initial temperature).

- ``L-cls``    ``CE(u W^T / tau, y)``: the student classified by the teacher's text embeddings.
- ``L-vlalign`` per row, ``K = top-k(v W^T)``; ``KL(softmax((v W^T/tau)_K) || softmax((u W^T/
  tau)_K))`` -- the student's similarities to the teacher's ``k`` closest label texts follow the
  teacher's; optionally only on rows the teacher gets right (``argmax v W^T = y``).
- ``L-mse``    ``||u - v||^2`` (sum over dimensions, mean over rows).
- ``L-cst``    ``CE(u v^T / tau, arange)``: image-image contrastive, the teacher feature of the
  same image is the positive; ``bidirectional`` averages with ``CE(v u^T / tau, arange)``.

Every loss is a mean over the rows it uses; the ``tau`` factors are as in the paper's code (KL
not rescaled by ``tau^2``) [reconstruction where the code was not followed line by line].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import MentorError

TAU = 0.07


def _unit(z: Tensor) -> Tensor:
    return F.normalize(z.float(), dim=-1)


def _check(u: Tensor, other: Tensor, what: str) -> None:
    if u.dim() != 2 or other.dim() != 2 or u.shape[1] != other.shape[1]:
        raise MentorError(f"student features {tuple(u.shape)} and {what} "
                          f"{tuple(other.shape)} do not match; expected (rows, D) and (n, D)")


def l_cls(u: Tensor, text: Tensor, y: Tensor, tau: float = TAU) -> Tensor:
    """``CE(norm(u) norm(W)^T / tau, y)``, mean over rows."""
    _check(u, text, "text features")
    return F.cross_entropy(_unit(u) @ _unit(text).T / tau, y)


def l_vlalign(u: Tensor, v: Tensor, text: Tensor, k: int, tau: float = TAU,
              y: Tensor | None = None, teacher_correct: bool = False) -> Tensor:
    """KL over the teacher's top-``k`` label texts per row (``k`` = all texts: the full KL);
    ``teacher_correct``: only rows where the teacher's closest text is the label ``y`` (zero
    when there is none)."""
    _check(u, text, "text features")
    _check(v, text, "text features")
    if not 1 <= int(k) <= len(text):
        raise MentorError(f"l_vlalign k is {k}; expected 1..{len(text)} (the label texts)")
    t = _unit(v) @ _unit(text).T / tau
    s = _unit(u) @ _unit(text).T / tau
    if teacher_correct:
        if y is None:
            raise MentorError("l_vlalign teacher_correct needs the labels y; got None")
        keep = t.argmax(-1) == y
        t, s = t[keep], s[keep]
        if len(t) == 0:
            return u.sum() * 0.0
    top = t.topk(int(k), dim=-1).indices
    lt = F.log_softmax(t.gather(1, top), -1)
    ls = F.log_softmax(s.gather(1, top), -1)
    return (lt.exp() * (lt - ls)).sum(-1).mean()


def l_mse(u: Tensor, v: Tensor) -> Tensor:
    """``||norm(u) - norm(v)||^2``, mean over rows."""
    _check(u, v, "teacher features")
    return (_unit(u) - _unit(v)).pow(2).sum(-1).mean()


def l_cst(u: Tensor, v: Tensor, tau: float = TAU, bidirectional: bool = False) -> Tensor:
    """``CE(norm(u) norm(v)^T / tau, arange)`` (and its transpose, averaged, when
    ``bidirectional``)."""
    _check(u, v, "teacher features")
    sim = _unit(u) @ _unit(v).T / tau
    target = torch.arange(len(u), device=u.device)
    loss = F.cross_entropy(sim, target)
    return (loss + F.cross_entropy(sim.T, target)) / 2 if bidirectional else loss
