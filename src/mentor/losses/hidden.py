"""Hidden-state distillation for sequence models: layer maps and learned projections.

The student's hidden states at some layers are projected to the teacher's width and pulled
towards the teacher's hidden states at matched layers, token by token:

- FitNets (Romero et al. 2015): a learned regressor from the student's "guided" layer to the
  teacher's "hint" layer, trained with the student (here one ``nn.Linear`` per matched pair).
- TinyBERT (Jiao et al. 2020): the *uniform* layer map ``g(m) = m · N / M`` of student layer
  ``m`` (of ``M``) to teacher layer ``g(m)`` (of ``N``), with an MSE on ``h_s W`` vs ``h_t``;
  DistilBERT (Sanh et al. 2019) uses the cosine of the hidden states instead.
- AlexaTM (FitzGerald et al. 2022, METHODS.md §6) distils multi-billion-parameter encoders
  into 17M-170M students; the catalogue marks a hidden-state term there as ``[recon]`` (the
  paper's confirmed objective is the MLM-output KD), so this module is the optional feature
  term of that pipeline, not a reproduction of a stated paper number.
- The Vision Wormhole (latent-space communication across heterogeneous VLM agents, METHODS.md
  §55, code xz-liu/heterogeneous-latent-mas) trains its codec with ``1.0 · MSE(h_s, h_t)``
  between the receiver's hidden states with and without the injected message at the last
  prompt position, next to a next-token KD term: ``loss="mse"``, ``project=False`` (same
  model, equal widths) and a mask selecting that one position per row.

**Layer indices.** Layers are numbered as Hugging Face ``output_hidden_states=True`` tuples
are: index ``0`` is the embedding output and index ``i`` (``1..num_layers``) the output of
transformer block ``i``. A layer map ``{3: 9}`` therefore compares ``student_hiddens[3]`` with
``teacher_hiddens[9]``. (In HF GPT-2, ``hidden_states[-1]`` has the final layer norm applied.)
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import MentorError, check_param, check_positive_int

__all__ = ["HiddenStateDistiller", "layer_map"]

LOSSES = ("mse", "cosine")


def _count(name: str, value: Any) -> int:
    return check_positive_int("layer_map", name, value, "a number of transformer layers")


def _index(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral)


def layer_map(student_layers: int, teacher_layers: int, *,
              mode: str | Mapping[int, int] = "uniform",
              embeddings: bool = False) -> dict[int, int]:
    """Which teacher layer each distilled student layer is compared with: ``{s: t}``.

    Layers are 1-based over the transformer blocks (``0`` is the embedding output, as index
    ``0`` of a Hugging Face ``hidden_states`` tuple).

    - ``"uniform"`` (TinyBERT, Jiao et al. 2020): every student layer ``i = 1..S`` maps to
      teacher layer ``round(i · T / S)``, halves rounded up and at least ``1``; 4 -> 12 gives
      ``{1: 3, 2: 6, 3: 9, 4: 12}``, 2 -> 4 gives ``{1: 2, 2: 4}``, the last student layer
      always meets the last teacher layer.
    - ``"last"``: ``{S: T}`` only.
    - a dict ``{s: t}``: checked (``0 <= s <= S``, ``0 <= t <= T``, at least one pair) and
      returned sorted.

    ``embeddings=True`` adds ``0: 0`` (TinyBERT's embedding-layer term) to ``"uniform"`` and
    ``"last"``.
    """
    s_n = _count("student_layers", student_layers)
    t_n = _count("teacher_layers", teacher_layers)
    if isinstance(mode, Mapping):
        if not mode:
            raise MentorError("layer_map.mode is an empty dict; expected at least one "
                              "student_layer: teacher_layer pair")
        out = {}
        for s, t in mode.items():
            if not _index(s) or not 0 <= s <= s_n:
                raise MentorError(f"layer_map.mode names student layer {s!r}; expected an "
                                  f"integer in 0..{s_n} (0 = embeddings)")
            if not _index(t) or not 0 <= t <= t_n:
                raise MentorError(f"layer_map.mode maps student layer {s} to teacher layer "
                                  f"{t!r}; expected an integer in 0..{t_n} (0 = embeddings)")
            out[int(s)] = int(t)
        return dict(sorted(out.items()))
    if mode == "uniform":
        # round half up, in integers: floor(i·T/S + 1/2)
        out = {i: max(1, (2 * i * t_n + s_n) // (2 * s_n)) for i in range(1, s_n + 1)}
    elif mode == "last":
        out = {s_n: t_n}
    else:
        raise MentorError(f"layer_map.mode must be 'uniform', 'last' or a dict "
                          f"{{student_layer: teacher_layer}}, got {mode!r}")
    return {0: 0, **out} if embeddings else out


class HiddenStateDistiller(nn.Module):
    """Token-level hidden-state loss over matched layers, with a projection per pair.

    ``layers``: ``{student_layer: teacher_layer}`` (see :func:`layer_map`; indices into the
    ``hidden_states`` tuples, ``0`` = embeddings). ``loss``: ``"mse"`` (FitNets / TinyBERT:
    mean of ``(W h_s - h_t)²`` over the selected tokens and the teacher's features) or
    ``"cosine"`` (DistilBERT: ``1 - cos(W h_s, h_t)`` per token, averaged over the selected
    tokens). ``project``: one ``nn.Linear(student_dim, teacher_dim)`` per pair in
    ``self.projections`` (key ``"layer<s>"``); required when the widths differ; with equal
    widths ``project=False`` compares the hidden states directly (identity).

    The projections are ordinary parameters of this module: put ``distiller.parameters()``
    in the optimizer next to the student's. They are training scaffolding (FitNets'
    regressor) and are not part of the exported student.
    """

    def __init__(self, student_dim: int, teacher_dim: int, layers: Mapping[int, int], *,
                 loss: str = "mse", project: bool = True):
        super().__init__()
        for name, dim in (("student_dim", student_dim), ("teacher_dim", teacher_dim)):
            if not _index(dim):
                raise MentorError(f"hidden_states.{name} must be a positive integer (a hidden "
                                  f"width), got {dim!r}")
            check_param("hidden_states", name, int(dim), low=1)
        if loss not in LOSSES:
            raise MentorError(f"hidden_states.loss must be 'mse' or 'cosine', got {loss!r}")
        if not isinstance(layers, Mapping) or not layers:
            raise MentorError(f"hidden_states.layers must be a non-empty dict "
                              f"{{student_layer: teacher_layer}} (see layer_map), got {layers!r}")
        for s, t in layers.items():
            if not (_index(s) and _index(t) and s >= 0 and t >= 0):
                raise MentorError(f"hidden_states.layers maps {s!r} to {t!r}; expected "
                                  "non-negative integer layer indices (0 = embeddings)")
        if student_dim != teacher_dim and not project:
            raise MentorError(f"hidden_states.project is False but the student width "
                              f"{student_dim} differs from the teacher width {teacher_dim}; "
                              "expected project=True (a learned projection) or equal widths")
        self.student_dim, self.teacher_dim = int(student_dim), int(teacher_dim)
        self.layers = {int(s): int(t) for s, t in sorted(layers.items())}
        self.loss, self.project = loss, bool(project)
        self.projections = nn.ModuleDict({
            f"layer{s}": (nn.Linear(self.student_dim, self.teacher_dim) if self.project
                          else nn.Identity())
            for s in self.layers})

    def extra_repr(self) -> str:
        return f"layers={self.layers}, loss={self.loss!r}"

    def forward(self, student_hiddens: Sequence[Tensor], teacher_hiddens: Sequence[Tensor],
                mask: Tensor | None = None) -> Tensor:
        """Mean over the mapped pairs of the per-token loss over the tokens ``mask`` selects.

        ``student_hiddens`` / ``teacher_hiddens``: ``hidden_states`` tuples (or model outputs
        that carry them) of ``(B, L, student_dim)`` / ``(B, L, teacher_dim)`` tensors;
        ``mask``: ``(B, L)``, nonzero = distil this token (e.g. the attention mask), ``None`` =
        every token. The teacher's states are detached.
        """
        s_all = _hiddens(student_hiddens, "student")
        t_all = _hiddens(teacher_hiddens, "teacher")
        for side, states, need in (("student", s_all, max(self.layers)),
                                   ("teacher", t_all, max(self.layers.values()))):
            if len(states) <= need:
                raise MentorError(f"hidden_states: the {side} gave {len(states)} hidden states "
                                  f"but the layer map uses {side} layer {need}; expected at least "
                                  f"{need + 1} (embeddings + {need} layers, as with "
                                  "output_hidden_states=True)")
        select = None
        total = []
        for s, t in self.layers.items():
            hs, ht = s_all[s], t_all[t].detach()
            if hs.ndim != 3 or hs.shape[-1] != self.student_dim:
                raise MentorError(f"hidden_states: student layer {s} has shape "
                                  f"{tuple(hs.shape)}; expected (batch, length, "
                                  f"{self.student_dim})")
            if ht.ndim != 3 or ht.shape[-1] != self.teacher_dim or ht.shape[:2] != hs.shape[:2]:
                raise MentorError(f"hidden_states: teacher layer {t} has shape "
                                  f"{tuple(ht.shape)}; expected ({hs.shape[0]}, {hs.shape[1]}, "
                                  f"{self.teacher_dim}) to match student layer {s}")
            if select is None:
                select = _selection(mask, hs.shape[:2], hs.device)
            ps = self.projections[f"layer{s}"](hs)
            dtype = torch.promote_types(ps.dtype, torch.float32)
            ps, ht = ps.to(dtype), ht.to(dtype)
            if select is not True:
                ps, ht = ps[select], ht[select]  # (tokens, D)
            if self.loss == "mse":
                total.append((ps - ht).pow(2).mean())
            else:
                total.append((1.0 - F.cosine_similarity(ps, ht, dim=-1, eps=1e-8)).mean())
        return torch.stack(total).mean()


def _hiddens(states: Any, side: str) -> Sequence[Tensor]:
    states = getattr(states, "hidden_states", states)
    if isinstance(states, Tensor) or not isinstance(states, Sequence) or not states:
        raise MentorError(f"hidden_states: the {side} hidden states must be a sequence of "
                          f"(batch, length, dim) tensors (output_hidden_states=True), got "
                          f"{type(states).__name__}")
    return states


def _selection(mask: Tensor | None, shape, device) -> Tensor | bool:
    if mask is None:
        return True
    mask = torch.as_tensor(mask, device=device)
    if tuple(mask.shape) != tuple(shape):
        raise MentorError(f"hidden_states mask has shape {tuple(mask.shape)}; expected "
                          f"{tuple(shape)} (batch, length)")
    select = mask != 0
    if not bool(select.any()):
        raise MentorError("hidden_states mask selects no token; expected at least one nonzero "
                          "position to distil")
    return select
