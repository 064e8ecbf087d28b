"""Token-level distillation losses for language models.

Each function compares, at every sequence position, the teacher's next-token distribution
``p_t`` with the student's ``p_s`` (both ``softmax(logits / T)``), keeps the positions a mask
selects (target tokens; prompt, padding and tool tokens are left out) and reduces them.

Divergences (:data:`DIVERGENCES`), per position:

* ``forward_kl``   ``KL(p_t ‖ p_s)`` -- classic (mode-covering) KD.
* ``reverse_kl``   ``KL(p_s ‖ p_t)`` -- mode-seeking; MiniLLM (Gu et al. 2024, "MiniLLM:
  Knowledge Distillation of Large Language Models", ICLR).
* ``jsd``          generalized Jensen-Shannon of GKD (Agarwal et al. 2024, "On-Policy
  Distillation of Language Models: Learning from Self-Generated Mistakes", ICLR) with mixture
  ``M = β p_t + (1-β) p_s``, **divided by** ``β(1-β)``:
  ``[β KL(p_t ‖ M) + (1-β) KL(p_s ‖ M)] / (β(1-β)) = KL(p_t ‖ M)/(1-β) + KL(p_s ‖ M)/β``.
  The division makes it continuous in β: it tends to ``forward_kl`` as β → 0 and to
  ``reverse_kl`` as β → 1, and exactly those are returned at β = 0 and β = 1 (TRL's
  ``generalized_jsd_loss`` does not divide, so its value tends to 0 at both ends and jumps to
  the KLs there).
* ``skew_forward_kl``  ``KL(p_t ‖ α p_t + (1-α) p_s)`` and ``skew_reverse_kl``
  ``KL(p_s ‖ α p_s + (1-α) p_t)``: DistiLLM (Ko et al. 2024, "DistiLLM: Towards Streamlined
  Distillation for Large Language Models", ICML). α is the weight of the distribution on the
  *first* argument inside the mixture, as in the official ``jongwooko/distillm``
  ``losses.py`` (``skewed_forward_kl``: ``lam * teacher + (1-lam) * student``;
  ``skewed_reverse_kl``: ``(1-lam) * teacher + lam * student``; default ``lam = 0.1``).
  α = 0 gives the plain KLs. The official code returns the cross-entropy
  ``-Σ p_t log M`` for the forward variant; here both are true KLs (zero at equality; the
  gradient is the same).
* ``tvd``          total variation ``½ Σ |p_t - p_s|``.

Masked vocabulary entries (``-inf`` logits, e.g. a padded or constrained vocabulary) follow
``0·log 0 = 0``: an entry where both teacher and student are ``-inf`` contributes 0 to every
divergence, with zero gradient (never NaN), also with a temperature, a mask, chunking, a
:class:`TopKSignal` or :func:`chunked_head_divergence`. An entry that is ``-inf`` on one side
only keeps its true value: ``forward_kl`` is ``+inf`` where the student is ``-inf`` and the
teacher has mass, and gets 0 from an entry where only the teacher is ``-inf``
(``reverse_kl`` the other way round); ``jsd`` (0 < β < 1), the skew KLs (α > 0) and ``tvd``
stay finite (their mixtures have mass wherever either side has). A position whose value is
``+inf`` passes no gradient (zero, not NaN): the ``+inf`` reports that the supports disagree.
torchtune's ``ForwardKLLoss``/``ReverseKLLoss`` (``torchtune/modules/loss/kd_losses.py``) and
DistiLLM's ``distillm/losses.py`` instead zero every entry where the student's logit (forward
KL) or either logit (reverse KL, JSD, TVD, skews) is infinite, so a one-sided ``-inf`` is
silently dropped there; on shared ``-inf`` entries they agree with this module.

The teacher is a ``(B, L, V)`` logits tensor, a :class:`TopKSignal` (stored top-k
log-probabilities), or -- for :func:`chunked_head_divergence` -- a ``(hidden, head)`` pair whose
logits are computed chunk by chunk. The teacher only provides targets: it is detached.

Memory: ``chunk_size=n`` processes ``n`` sequence positions at a time inside
:func:`torch.utils.checkpoint.checkpoint`, so the float32 ``B×L×V`` intermediates never exist at
once; :func:`chunked_head_divergence` also never materializes the ``B×L×V`` logits.

Gradient accumulation / data parallelism: pass ``reduction="mean"`` and
``normalizer=token_count(masks_of_the_whole_step, accelerator)`` to every micro-batch so that
each target token of the optimizer step has the same weight.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..errors import MentorError, ParameterError, check_param

DIVERGENCES = ("forward_kl", "reverse_kl", "jsd", "skew_forward_kl", "skew_reverse_kl", "tvd")
REDUCTIONS = ("none", "sum", "mean")
# floor of the 'rest' bin of a TopKSignal (teacher and student) when the top-k hold all the mass
TAIL_EPS = 1e-10
_C = "tokens"


class TopKSignal(NamedTuple):
    """A teacher's stored top-k next-token log-probabilities.

    ``indices`` (B, L, k) long: the teacher's top-k token ids per position; ``logprobs``
    (B, L, k) float: their log-probabilities at temperature 1. With ``renormalize=False`` the
    divergence runs over k + 1 bins: the k tokens and one 'rest' bin holding the tail mass
    ``1 - Σ exp(logprobs)`` (the student's rest bin is ``1 - Σ p_s[indices]``), both floored
    at :data:`TAIL_EPS`; only temperature 1 is exact then. With ``renormalize=True`` teacher
    and student are both renormalized over the k tokens (``softmax(logprobs / T)`` and the
    student's ``softmax(z[indices] / T)``), which applies any temperature exactly.
    """

    indices: Tensor
    logprobs: Tensor
    renormalize: bool = False


# ------------------------------------------------------------------------------ kernels
# All kernels take log-probabilities over the last dimension (bins) and return the sum over it.

def _kl(lp: Tensor, lq: Tensor) -> Tensor:
    """``KL(p ‖ q)`` per row from log-probabilities, with ``0·log(0/q) = 0``.

    A bin where ``p = 0`` (``lp = -inf``) contributes 0 whatever ``q`` (also where both are
    ``-inf``: a masked vocabulary entry) and passes no gradient. A bin where ``p > 0 = q``
    makes the row ``+inf``; such a row passes no gradient (zero, never NaN), so a position
    that a mask leaves out cannot poison the gradient of the others.
    """
    diff = lp - lq  # NaN where both are -inf, -inf where p = 0 < q, +inf where p > 0 = q
    finite = torch.nan_to_num(diff, nan=0.0, posinf=0.0, neginf=0.0)
    out = (lp.exp() * finite).sum(-1)
    return out.masked_fill(torch.isposinf(diff).any(-1), math.inf)


def _skew_kl(lp: Tensor, lq: Tensor, e: float) -> Tensor:
    """``KL(p ‖ (1-e) p + e q)`` per row, ``0 < e <= 1``.

    Computed from ``log(M/p) = logaddexp(log(1-e), log(e) + log q - log p)`` so that the value
    stays accurate when ``e`` is tiny (``KL = O(e²)``): dividing by ``e`` (JSD near its ends)
    then keeps an absolute error of the order of the float precision, not ``eps/e``.
    A bin with ``p = 0`` contributes 0 with zero gradient (``log q - log p`` is replaced by 0
    there before the product, so no ``0·inf`` or ``0·NaN`` arises, forward or backward); a bin
    with ``q = 0 < p`` is finite for ``e < 1`` (``-p·log(1-e)``), its gradient too.
    """
    if e == 1.0:
        return _kl(lp, lq)
    u = torch.nan_to_num(lq - lp, nan=0.0, posinf=0.0, neginf=-math.inf)
    log_ratio = torch.logaddexp(u.new_tensor(math.log1p(-e)), u + math.log(e))
    return -(lp.exp() * log_ratio).sum(-1)


def _divergence(lp_t: Tensor, lp_s: Tensor, kind: str, beta: float, alpha: float) -> Tensor:
    if kind == "forward_kl":
        return _kl(lp_t, lp_s)
    if kind == "reverse_kl":
        return _kl(lp_s, lp_t)
    if kind == "tvd":
        return 0.5 * (lp_t.exp() - lp_s.exp()).abs().sum(-1)
    if kind == "skew_forward_kl":
        return _skew_kl(lp_t, lp_s, 1.0 - alpha)
    if kind == "skew_reverse_kl":
        return _skew_kl(lp_s, lp_t, 1.0 - alpha)
    # jsd / (beta (1 - beta)) = KL(p_t || M) / (1 - beta) + KL(p_s || M) / beta
    if beta == 0.0:
        return _kl(lp_t, lp_s)
    if beta == 1.0:
        return _kl(lp_s, lp_t)
    return (_skew_kl(lp_t, lp_s, 1.0 - beta) / (1.0 - beta)
            + _skew_kl(lp_s, lp_t, beta) / beta)


def _tail(lp: Tensor) -> Tensor:
    """Log of the mass outside the given bins, ``log max(1 - Σ exp(lp), TAIL_EPS)``."""
    return torch.log(torch.clamp(1.0 - lp.exp().sum(-1, keepdim=True), min=TAIL_EPS))


class _Cfg(NamedTuple):
    kind: str
    beta: float
    alpha: float
    temperature: float
    t2: bool
    dtype: torch.dtype
    teacher_mode: str  # "logits" | "topk" | "head"
    renormalize: bool


def _scaled(z: Tensor, cfg: _Cfg) -> Tensor:
    z = z.to(cfg.dtype)
    return z if cfg.temperature == 1.0 else z / cfg.temperature


def _chunk_values(cfg: _Cfg, s_in: Tensor, s_w: Tensor | None, s_b: Tensor | None,
                  t_w: Tensor | None, t_b: Tensor | None, *t_in: Tensor) -> Tensor:
    """Per-position divergence ``(B, n)`` of one chunk (the function that is checkpointed)."""
    zs = s_in if s_w is None else F.linear(s_in, s_w, s_b)
    zs = _scaled(zs, cfg)
    if cfg.teacher_mode == "topk":
        idx, t_lp = t_in
        t_lp = t_lp.to(cfg.dtype)
        g = zs.gather(-1, idx)
        if cfg.renormalize:
            lp_t = F.log_softmax(t_lp if cfg.temperature == 1.0 else t_lp / cfg.temperature, -1)
            lp_s = F.log_softmax(g, -1)
        else:  # temperature is 1 here (checked)
            g = g - torch.logsumexp(zs, -1, keepdim=True)
            lp_t = torch.cat([t_lp, _tail(t_lp)], -1)
            lp_s = torch.cat([g, _tail(g)], -1)
    else:
        if cfg.teacher_mode == "head":
            with torch.no_grad():
                zt = F.linear(t_in[0], t_w, t_b)
        else:
            zt = t_in[0]
        lp_t = F.log_softmax(_scaled(zt, cfg), -1)
        lp_s = F.log_softmax(zs, -1)
    out = _divergence(lp_t, lp_s, cfg.kind, cfg.beta, cfg.alpha)
    return out * (cfg.temperature ** 2) if cfg.t2 else out


# ------------------------------------------------------------------------------ checks

def _check_options(kind, beta, alpha, temperature, reduction, normalizer, chunk_size) -> None:
    if kind not in DIVERGENCES:
        raise ParameterError(f"{_C}.kind must be one of {', '.join(DIVERGENCES)}, got {kind!r}")
    if reduction not in REDUCTIONS:
        raise ParameterError(f"{_C}.reduction must be one of {', '.join(REDUCTIONS)}, "
                             f"got {reduction!r}")
    for name, value in (("temperature", temperature), ("beta", beta), ("alpha", alpha)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParameterError(f"{_C}.{name} must be a number, got {value!r}")
    check_param(_C, "temperature", temperature, low=0, low_open=True)
    check_param(_C, "beta", beta, low=0, high=1)
    check_param(_C, "alpha", alpha, low=0, high=1, high_open=True)
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
            raise ParameterError(f"{_C}.chunk_size must be an integer >= 1 or None, "
                                 f"got {chunk_size!r}")
        check_param(_C, "chunk_size", chunk_size, low=1)
    if normalizer is not None:
        if isinstance(normalizer, Tensor):
            normalizer = float(normalizer)
        check_param(_C, "normalizer", normalizer, low=0, low_open=True)


def _weight_bias(head: Any, what: str) -> tuple[Tensor, Tensor | None]:
    if isinstance(head, nn.Linear):
        return head.weight, head.bias
    if isinstance(head, Tensor) and head.dim() == 2:
        return head, None
    raise MentorError(f"{what} must be an nn.Linear or a (V, D) weight tensor, "
                      f"got {type(head).__name__}"
                      f"{tuple(head.shape) if isinstance(head, Tensor) else ''}")


def _check_bl(what: str, shape: tuple[int, ...], b: int, n: int) -> None:
    if tuple(shape[:2]) != (b, n):
        raise MentorError(f"{what} has batch×length {shape[0]}×{shape[1]} but the student's is "
                          f"{b}×{n}; expected the same (B, L)")


def _check_vocab(v_t: int, v: int) -> None:
    if v_t != v:
        raise MentorError(f"teacher vocabulary has {v_t} entries but the student's has {v}; "
                          f"align them first with mentor.lm.vocab.align_vocab (shared prefix "
                          f"of one tokenizer family)")


def _teacher_parts(teacher: Any, b: int, n: int, v: int, temperature: float
                   ) -> tuple[str, bool, list[Tensor], Tensor | None, Tensor | None]:
    """(mode, renormalize, per-position tensors split along L, head weight, head bias)."""
    if isinstance(teacher, TopKSignal):
        idx, lp = teacher.indices, teacher.logprobs
        if not isinstance(idx, Tensor) or not isinstance(lp, Tensor) or idx.dim() != 3 \
                or idx.shape != lp.shape:
            raise MentorError(f"TopKSignal indices and logprobs must be (B, L, k) tensors of "
                              f"the same shape, got "
                              f"{tuple(getattr(idx, 'shape', ()))} and "
                              f"{tuple(getattr(lp, 'shape', ()))}")
        _check_bl("the TopKSignal", tuple(idx.shape), b, n)
        k = idx.shape[-1]
        if not 1 <= k <= v:
            raise MentorError(f"TopKSignal has k={k} tokens per position; expected 1 <= k <= "
                              f"the vocabulary size {v}")
        if idx.dtype != torch.long:
            raise MentorError(f"TopKSignal indices must be int64 token ids, got {idx.dtype}")
        lo, hi = torch.aminmax(idx)
        if int(lo) < 0 or int(hi) >= v:
            raise MentorError(f"TopKSignal indices range over [{int(lo)}, {int(hi)}] but the "
                              f"student's vocabulary has {v} entries; expected ids in "
                              f"[0, {v - 1}] (align the vocabularies with "
                              f"mentor.lm.vocab.align_vocab)")
        if not teacher.renormalize and temperature != 1.0:
            raise ParameterError(f"{_C}.temperature must be 1 with a TopKSignal that has "
                                 f"renormalize=False (its tail bin holds the mass at "
                                 f"temperature 1), got {temperature!r}; use renormalize=True "
                                 f"or store the top-k at the wanted temperature")
        return "topk", bool(teacher.renormalize), [idx, lp.detach()], None, None
    if isinstance(teacher, tuple) and len(teacher) == 2:
        hidden, head = teacher
        w, bias = _weight_bias(head, "the teacher head")
        if not isinstance(hidden, Tensor) or hidden.dim() != 3:
            raise MentorError(f"teacher hidden states must be a (B, L, D) tensor, got "
                              f"{tuple(getattr(hidden, 'shape', ())) or type(hidden).__name__}")
        _check_bl("the teacher's hidden states", tuple(hidden.shape), b, n)
        if hidden.shape[-1] != w.shape[1]:
            raise MentorError(f"teacher hidden states have {hidden.shape[-1]} features but the "
                              f"teacher head expects {w.shape[1]}; expected the same D")
        _check_vocab(w.shape[0], v)
        return ("head", False, [hidden.detach()], w.detach(),
                None if bias is None else bias.detach())
    if isinstance(teacher, Tensor):
        if teacher.dim() != 3:
            raise MentorError(f"teacher logits must be (B, L, V), got shape "
                              f"{tuple(teacher.shape)}")
        _check_bl("the teacher", tuple(teacher.shape), b, n)
        _check_vocab(teacher.shape[-1], v)
        return "logits", False, [teacher.detach()], None, None
    raise MentorError(f"teacher must be a (B, L, V) logits tensor, a TopKSignal or a "
                      f"(hidden, head) pair, got {type(teacher).__name__}")


def _run(s_in: Tensor, s_w: Tensor | None, s_b: Tensor | None, v: int, teacher: Any,
         mask: Tensor | None, chunk_size: int | None, kind: str, beta: float, alpha: float,
         temperature: float, t2: bool, reduction: str, normalizer: float | None) -> Tensor:
    _check_options(kind, beta, alpha, temperature, reduction, normalizer, chunk_size)
    b, n = s_in.shape[:2]
    mode, renorm, t_parts, t_w, t_b = _teacher_parts(teacher, b, n, v, temperature)
    dtype = torch.float64 if s_in.dtype == torch.float64 else torch.float32
    cfg = _Cfg(kind, float(beta), float(alpha), float(temperature), bool(t2), dtype, mode,
               renorm)

    sel = None
    if mask is not None:
        if not isinstance(mask, Tensor) or tuple(mask.shape) != (b, n):
            raise MentorError(f"mask must be a (B, L) = ({b}, {n}) tensor of bool or 0/1, got "
                              f"{tuple(getattr(mask, 'shape', ())) or type(mask).__name__}")
        sel = (mask != 0).to(s_in.device)
        count = int(sel.sum())
    else:
        count = b * n
    if count == 0 and normalizer is None:
        raise MentorError(f"mask selects no target token (all {b}×{n} positions are masked "
                          f"out); expected at least one")

    if chunk_size is None:
        values = _chunk_values(cfg, s_in, s_w, s_b, t_w, t_b, *t_parts)
    else:
        pieces = []
        for s_chunk, *t_chunk in zip(s_in.split(chunk_size, 1),
                                     *(t.split(chunk_size, 1) for t in t_parts)):
            pieces.append(checkpoint(_chunk_values, cfg, s_chunk, s_w, s_b, t_w, t_b, *t_chunk,
                                     use_reentrant=False, preserve_rng_state=False))
        values = torch.cat(pieces, 1)
    if sel is not None:
        values = torch.where(sel, values, values.new_zeros(()))

    if reduction == "none":
        return values
    total = values.sum()
    if reduction == "sum":
        return total
    return total / (float(normalizer) if normalizer is not None else count)


# ------------------------------------------------------------------------------ public API

def token_divergence(student_logits: Tensor, teacher: Tensor | TopKSignal,
                     mask: Tensor | None = None, *, kind: str = "forward_kl", beta: float = 0.5,
                     alpha: float = 0.1, temperature: float = 1.0, t2: bool = False,
                     reduction: str = "mean", normalizer: float | None = None,
                     chunk_size: int | None = None) -> Tensor:
    """Per-token divergence between a teacher and the student's ``(B, L, V)`` logits.

    ``teacher``: ``(B, L, V)`` logits (same vocabulary as the student), a :class:`TopKSignal`,
    or a ``(teacher_hidden, teacher_head)`` pair (see :func:`chunked_head_divergence`). Both
    distributions are ``softmax(logits / temperature)``; ``t2=True`` multiplies each position's
    value by ``temperature²``. ``kind`` is one of :data:`DIVERGENCES` (module docstring; ``beta``
    is the JSD mixture weight in [0, 1], ``alpha`` the DistiLLM skew in [0, 1)). Computed in
    float32 (float64 for float64 logits) whatever the input dtype; the teacher is detached.

    ``mask`` (B, L), bool or 0/1: the positions that count; None counts all. ``reduction``:
    ``"none"`` gives ``(B, L)`` values with 0 at masked-out positions, ``"sum"`` their sum,
    ``"mean"`` the sum divided by the number of selected positions, or by ``normalizer`` (a
    token count over all micro-batches and ranks of one optimizer step, from
    :func:`token_count`). With a ``normalizer`` a mask that selects nothing is allowed (the
    micro-batch contributes 0); without one it is an error.

    ``chunk_size=n`` computes ``n`` sequence positions at a time under activation
    checkpointing (backward recomputes each chunk), so the float32 ``B×L×V`` intermediates
    never exist at once; value and gradients equal the one-pass result.
    """
    if not isinstance(student_logits, Tensor) or student_logits.dim() != 3:
        raise MentorError(f"student logits must be a (B, L, V) tensor, got "
                          f"{tuple(getattr(student_logits, 'shape', ())) or type(student_logits).__name__}")
    return _run(student_logits, None, None, student_logits.shape[-1], teacher, mask, chunk_size,
                kind, beta, alpha, temperature, t2, reduction, normalizer)


def chunked_head_divergence(student_hidden: Tensor, student_head: nn.Linear | Tensor,
                            teacher: Tensor | TopKSignal | tuple, mask: Tensor | None = None, *,
                            chunk_size: int | None = 64, kind: str = "forward_kl",
                            beta: float = 0.5, alpha: float = 0.1, temperature: float = 1.0,
                            t2: bool = False, reduction: str = "mean",
                            normalizer: float | None = None) -> Tensor:
    """:func:`token_divergence` of ``student_head(student_hidden)`` without the full logits.

    ``student_hidden`` (B, L, D); ``student_head`` an ``nn.Linear`` or a ``(V, D)`` weight. The
    logits of ``chunk_size`` positions at a time are computed inside the checkpointed chunk
    function, so the ``B×L×V`` logits (and their gradient) are never materialized; gradients
    reach the hidden states and the head's weight and bias. ``teacher``: ``(B, L, V)`` logits,
    a :class:`TopKSignal`, or ``(teacher_hidden (B, L, D_t), teacher_head)`` whose logits are
    also computed per chunk, under ``torch.no_grad()``. ``chunk_size=None``: one pass. Other
    arguments as in :func:`token_divergence`; the result equals
    ``token_divergence(student_head(student_hidden), ...)``.
    """
    if not isinstance(student_hidden, Tensor) or student_hidden.dim() != 3:
        raise MentorError(f"student hidden states must be a (B, L, D) tensor, got "
                          f"{tuple(getattr(student_hidden, 'shape', ())) or type(student_hidden).__name__}")
    w, bias = _weight_bias(student_head, "the student head")
    if student_hidden.shape[-1] != w.shape[1]:
        raise MentorError(f"student hidden states have {student_hidden.shape[-1]} features but "
                          f"the student head expects {w.shape[1]}; expected the same D")
    return _run(student_hidden, w, bias, w.shape[0], teacher, mask, chunk_size, kind, beta,
                alpha, temperature, t2, reduction, normalizer)


def token_count(masks: Iterable[Tensor], accelerator: Any = None) -> float:
    """Number of selected positions in ``masks`` (all micro-batches of one optimizer step),
    summed over data-parallel ranks.

    The sum across ranks uses ``accelerator.reduce(..., reduction="sum")`` when an
    ``accelerate.Accelerator`` is given, else ``torch.distributed.all_reduce`` when a process
    group is initialized. Pass the result as ``normalizer`` with ``reduction="mean"`` to every
    micro-batch: each target token of the step then has the same weight, however the tokens
    fall into micro-batches and ranks (the gradients summed over micro-batches equal those of
    one big batch). Two scale conventions of the training loop still apply: DDP *averages*
    gradients over ranks, so multiply the loss by the world size to get the single-process
    scale (as transformers' Trainer does with ``average_tokens_across_devices``), and do not
    let ``accelerator.backward`` divide by the accumulation steps again.
    """
    total = None
    for m in masks:
        c = (m != 0).sum()
        total = c if total is None else total + c.to(total.device)
    if total is None:
        total = torch.zeros((), dtype=torch.long)
    total = total.to(torch.long)
    if accelerator is not None:
        total = accelerator.reduce(total.to(accelerator.device), reduction="sum")
    else:
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            if dist.get_backend() == "nccl" and total.device.type != "cuda":
                total = total.to(torch.device("cuda", torch.cuda.current_device()))
            dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return float(total)
