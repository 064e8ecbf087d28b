"""Batch mixers: rebuild a training batch from mixed rows, with the targets the losses need
(METHODS.md §59.7: a region mixer returns the mixed input *and* its region weights).

Every batch mixer follows one protocol, the engine's hook: ``mix(x, batch, targets,
generator, input_shape) -> (x, batch, targets)``, called after the teacher's targets are
refined, with a generator that is a pure function of the seed and the step (so a run stays
reproducible). :func:`batch_mixer` turns a registered mixer
(:data:`mentor.registry.MIXERS`) into its batch mixer; :class:`BatchMixers` applies several
in order.

Targets are carried the one way the losses read them: a soft target ``q`` of a row is put in
``targets.logits`` as ``T·log q`` (so ``softmax(logits / T) = q`` for the objectives' common
temperature ``T``) with a row weight in ``targets.weight``; a mixed row has no hard label
(``y = -1``, ``labeled`` False; ``targets.labels`` is ``argmax q``, which no objective may
read -- :mod:`mentor.methods.compose` refuses compositions that would).

:class:`CopyPasteBatch` is BCP's self-training step for classification (Bai et al. 2023,
METHODS.md §29): each labeled row ``l`` is paired with an unlabeled row ``u``; the batch
becomes the labeled rows (cross-entropy on their labels) plus ``x_in = u⊙M + l⊙(1−M)`` and
``x_out = l⊙M + u⊙(1−M)``. A mixed row's target is the mixture of the labeled row's label and
the unlabeled row's (refined) pseudo-label, each weighted by the area it covers times its
region weight (1 for ground truth, ``u_weight`` for pseudo-labels, BCP's 0.5):
``w_l·CE(y_l) + w_u·CE(ŷ_u)`` is carried as a soft target ``q ∝ w_l·1[y_l] + w_u·1[ŷ_u]``
with row weight ``w_l + w_u`` (a KD loss at T 1 on ``q`` has the same gradient). A
pseudo-label the refiners rejected contributes nothing.

:class:`MixBatch` is MixUp / CutMix on the rows whose labels the student may not see (in a
batch without such rows -- distillation -- every row); see its docstring for the targets.
:class:`AmplitudeSwitchBatch` is Switch's frequency-domain switch (METHODS.md §35), a style
perturbation that leaves the targets alone.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..contracts import Batch, Targets
from ..errors import MentorError, check_param
from .mixers import (BidirectionalCopyPaste, CutMix, FrequencyAmplitudeSwitch, MixUp,
                     MultiScalePatches, mixed_label_weights)


class CopyPasteBatch:
    """``mix(x, batch, targets, generator, input_shape) -> (x, batch, targets)``; with
    ``scales='multi'`` the mask is Switch's multiscale patches (METHODS.md §35).

    ``mixer``: a :class:`BidirectionalCopyPaste` or :class:`MultiScalePatches` to use instead
    of the one ``ratio`` and ``scales`` describe (a recipe's ``mixers:`` entry, with its own
    parameters). ``temperature``: the mixed rows' soft target ``q`` is carried as
    ``temperature·log q``, so a KD objective at that temperature reads ``q`` itself."""

    def __init__(self, ratio: float = 2 / 3, u_weight: float = 0.5, scales: str = "single",
                 *, mixer: BidirectionalCopyPaste | MultiScalePatches | None = None,
                 temperature: float = 1.0):
        check_param("bcp", "u_weight", u_weight, low=0)
        check_param("bcp", "temperature", temperature, low=0, low_open=True)
        if mixer is None:
            mixer = (BidirectionalCopyPaste(ratio) if scales == "single"
                     else MultiScalePatches())
        self.mixer = mixer
        self.u_weight = float(u_weight)
        self.temperature = float(temperature)

    def mix(self, x: Tensor, batch: Batch, targets: Targets, g: torch.Generator,
            input_shape) -> tuple[Tensor, Batch, Targets]:
        if batch.labeled is None:
            return x, batch, targets
        lab = batch.labeled.nonzero().squeeze(-1)
        unl = (~batch.labeled).nonzero().squeeze(-1)
        k = min(len(lab), len(unl))
        if k == 0:
            return x, batch, targets
        li, ui = lab[:k], unl[:k]
        cp = self.mixer.mix(x[li], x[ui], tuple(input_shape), g)
        c = targets.logits.shape[-1]
        y_l = F.one_hot(batch.y[li], c).to(targets.logits.dtype)
        y_u = F.one_hot(targets.labels[ui], c).to(targets.logits.dtype)
        keep = torch.ones(k, dtype=y_u.dtype, device=y_u.device)
        if targets.mask is not None:
            keep = keep * targets.mask[ui].to(keep.dtype)
        if targets.weight is not None:
            keep = keep * targets.weight[ui].to(keep.dtype)
        rows_q, rows_w = [], []
        for from_labeled in (False, True):  # x_in, then x_out
            w_l, w_u = mixed_label_weights(cp.area.to(keep.dtype), from_labeled, self.u_weight)
            w_u = w_u * keep
            q = w_l[:, None] * y_l + w_u[:, None] * y_u
            total = q.sum(-1)
            rows_q.append(q / total.clamp_min(1e-12)[:, None])
            rows_w.append(total)
        q = torch.cat(rows_q)
        n_lab = len(lab)
        new_x = torch.cat([x[lab], cp.x_in, cp.x_out])
        labeled = torch.cat([torch.ones(n_lab, dtype=torch.bool, device=x.device),
                             torch.zeros(2 * k, dtype=torch.bool, device=x.device)])
        y = torch.cat([batch.y[lab], torch.full((2 * k,), -1, dtype=batch.y.dtype,
                                                device=batch.y.device)])
        index = torch.cat([batch.index[lab], batch.index[ui], batch.index[ui]])
        log_q = self.temperature * q.clamp_min(1e-12).log()
        logits = torch.cat([targets.logits[lab], log_q])
        labels = torch.cat([batch.y[lab], q.argmax(-1)])
        weight = torch.cat([torch.ones(n_lab, dtype=q.dtype, device=q.device), *rows_w])
        new_batch = Batch(new_x, y, index, labeled, batch.epoch, batch.step)
        return new_x, new_batch, Targets(logits, labels, None, weight)


def _mixed_rows(batch: Batch) -> Tensor:
    """The rows a :class:`MixBatch` mixes: the unlabeled ones, or every row of a batch whose
    labels are all visible (``labeled`` is None: distillation)."""
    if batch.labeled is None:
        return torch.arange(len(batch.y), device=batch.y.device)
    return (~batch.labeled).nonzero().squeeze(-1)


class MixBatch:
    """MixUp (Zhang et al. 2018) or CutMix (Yun et al. 2019) as a batch mixer.

    **Which rows.** The rows whose labels the student may not see are mixed (ICT, Verma et
    al. 2019, mixes the unlabeled rows with mean-teacher targets); in a batch without hidden
    labels (``batch.labeled`` None: distillation) every row is. Labeled rows of a
    semi-supervised batch stay as they are, so cross-entropy on their labels stays exact.
    Each mixed row ``i`` is paired with row ``j = π(i)``, ``π`` a permutation of the mixed
    rows drawn from the generator (then ``lam``, or the box, from the same generator: the
    mix is a pure function of it). MixUp: ``x = lam·x_i + (1 − lam)·x_j``,
    ``lam ~ Beta(alpha, alpha)`` per row; CutMix: a box of ``x_j`` pasted into ``x_i``, and
    ``lam = 1 − area`` (the exact fraction of ``x_i`` left).

    **What is mixed in the targets: probabilities, not logits.** The objectives that read a
    mixed row read the teacher's distribution ``p = softmax(z / T)`` at their temperature
    ``T`` (``kd``; ``prob_mse`` reads ``T = 1``). The mixed row's target is the probability
    mixture, weighted by what the refiners kept of each row (mask ``m``, weight ``w``)::

        a = lam·m_i·w_i,   b = (1 − lam)·m_j·w_j
        q = (a·p_i + b·p_j) / (a + b)           (mix_probs of p_i, p_j at a / (a + b))
        targets.logits = T·log q,  targets.weight = a + b,  targets.mask = (a + b > 0)

    computed in log space (``logaddexp``), so ``softmax(T·log q / T) = q`` to rounding and no
    probability is clamped. Mixing the logits instead (``lam·z_i + (1 − lam)·z_j``) would give
    ``softmax`` of a geometric mixture, another distribution. With ``q`` so carried, a loss
    that is linear in its target's probabilities (up to a term the student does not change)
    gets exactly the mixed loss's gradient: ``(a + b)·KD_T(q)`` has the gradient of
    ``a·KD_T(p_i) + b·KD_T(p_j)`` (its value is lower by the entropy gap
    ``T²·((a + b)·H(q) − a·H(p_i) − b·H(p_j)) >= 0``, constant in the student), and the
    cross-entropy with ``q`` is exactly ``(a·CE(p_i) + b·CE(p_j)) / (a + b)``; with hard
    teacher targets (one-hot ``p``) that is ``lam·CE(ŷ_i) + (1 − lam)·CE(ŷ_j)``. The same
    holds for ``prob_mse`` (squared error is a quadratic whose cross term is linear).
    Hard-label losses (``ce``, ``pseudo_ce``, ...) cannot read a mixture, so a mixed row has
    ``y = -1``, ``labeled`` False and ``targets.labels = argmax q``;
    :mod:`mentor.methods.compose` refuses objectives that would read them. Without a mask
    and weights the row weight is 1 (``weight`` stays None); with a mask, a mixed row is
    admitted when either part was. ``targets.extra`` (tapped teacher features) is dropped:
    it describes the unmixed rows.

    ``labeled_objectives``: names of objectives on ``rows: labeled``; in a distillation batch
    every row is mixed, none stays labeled, and such an objective would silently read
    nothing, so :meth:`mix` refuses.
    """

    def __init__(self, mixer: MixUp | CutMix, temperature: float = 1.0,
                 labeled_objectives: Sequence[str] = ()):
        if not isinstance(mixer, (MixUp, CutMix)):
            raise MentorError(f"MixBatch mixes with MixUp or CutMix, got {type(mixer).__name__}")
        check_param("mix", "temperature", temperature, low=0, low_open=True)
        self.mixer = mixer
        self.temperature = float(temperature)
        self.labeled_objectives = tuple(labeled_objectives)

    @property
    def name(self) -> str:
        return "mixup" if isinstance(self.mixer, MixUp) else "cutmix"

    def draw(self, x1: Tensor, x2: Tensor, g: torch.Generator,
             input_shape) -> tuple[Tensor, Tensor]:
        """The mixed rows and ``lam`` ``(n,)``, the weight of ``x1``'s target."""
        if isinstance(self.mixer, MixUp):
            return self.mixer.mix(x1, x2, g)
        mixed, area = self.mixer.mix(x1, x2, tuple(input_shape), g)
        return mixed, 1 - area

    def mix(self, x: Tensor, batch: Batch, targets: Targets, g: torch.Generator,
            input_shape) -> tuple[Tensor, Batch, Targets]:
        if batch.labeled is None and self.labeled_objectives:
            raise MentorError(f"{self.name} mixes every row of a batch whose labels are all "
                              "visible (distillation), so objective "
                              f"{self.labeled_objectives[0]!r} on rows: labeled would read "
                              "none; drop it (distil with kd or prob_mse alone) or train "
                              "with unlabeled rows")
        rows = _mixed_rows(batch)
        n = len(rows)
        if n == 0:
            return x, batch, targets
        perm = torch.randperm(n, generator=g, device=g.device).to(rows.device)
        a, b = rows, rows[perm]
        mixed, lam = self.draw(x[a], x[b], g, input_shape)

        z = targets.logits
        work = torch.promote_types(z.dtype, torch.float32)
        log_p = F.log_softmax(z.to(work) / self.temperature, -1)
        keep = torch.ones(len(z), dtype=work, device=z.device)
        if targets.mask is not None:
            keep = keep * targets.mask.to(work)
        if targets.weight is not None:
            keep = keep * targets.weight.to(work)
        lam = lam.to(device=z.device, dtype=work)
        w_a, w_b = lam * keep[a], (1 - lam) * keep[b]
        total = w_a + w_b
        log_q = torch.logaddexp(w_a.log()[:, None] + log_p[a], w_b.log()[:, None] + log_p[b])
        log_q = torch.where(total[:, None] > 0, log_q - total.log()[:, None], log_p[a])

        logits = z.clone()
        logits[a] = (self.temperature * log_q).to(z.dtype)
        labels = targets.labels.clone()
        labels[a] = log_q.argmax(-1).to(labels.dtype)
        mask = weight = None
        if targets.mask is not None:
            mask = targets.mask.clone()
            mask[a] = total > 0
        if targets.mask is not None or targets.weight is not None:
            weight = (targets.weight.to(work).clone() if targets.weight is not None
                      else torch.ones(len(z), dtype=work, device=z.device))
            weight[a] = total
        new_x = x.clone()
        new_x[a] = mixed.to(x.dtype)
        y = batch.y.clone()
        y[a] = -1
        labeled = (torch.ones(len(y), dtype=torch.bool, device=y.device)
                   if batch.labeled is None else batch.labeled.clone())
        labeled[a] = False
        weak_y = None
        if batch.weak_y is not None:
            weak_y = batch.weak_y.clone()
            weak_y[a] = -1
        new_batch = replace(batch, x=new_x, y=y, labeled=labeled, weak_y=weak_y)
        return new_x, new_batch, replace(targets, logits=logits, labels=labels, mask=mask,
                                         weight=weight, extra=None)


class AmplitudeSwitchBatch:
    """Switch's frequency-domain switch (FDS, METHODS.md §35) as a batch mixer: each row takes
    the low-frequency Fourier amplitude of a partner row and keeps its own phase
    (:func:`mentor.mix.amplitude_switch`); the targets are unchanged (amplitude is "style",
    not content).

    Partners: when the batch has labeled and unlabeled rows, as in Switch, a labeled row's
    partner is an unlabeled row and the reverse: the rows of the larger side, in an order
    drawn from the generator, are paired with the rows of the smaller side, the first ones
    as swaps (both take each other's amplitude) and the rest cycling over the smaller side
    (they take its amplitude). Otherwise the partners are a permutation of the batch drawn
    from the generator.
    """

    def __init__(self, switch: FrequencyAmplitudeSwitch):
        self.mixer = switch

    def partners(self, batch: Batch, n: int, g: torch.Generator, device) -> Tensor:
        """Row ``i`` takes the amplitude of row ``partners[i]``."""
        if batch.labeled is not None:
            lab = batch.labeled.nonzero().squeeze(-1)
            unl = (~batch.labeled).nonzero().squeeze(-1)
            if len(lab) and len(unl):
                small, large = (lab, unl) if len(lab) <= len(unl) else (unl, lab)
                order = large[torch.randperm(len(large), generator=g,
                                             device=g.device).to(large.device)]
                partner = torch.empty(n, dtype=torch.long, device=large.device)
                partner[order] = small[torch.arange(len(large), device=large.device)
                                       % len(small)]
                partner[small] = order[:len(small)]
                return partner.to(device)
        return torch.randperm(n, generator=g, device=g.device).to(device)

    def mix(self, x: Tensor, batch: Batch, targets: Targets, g: torch.Generator,
            input_shape) -> tuple[Tensor, Batch, Targets]:
        partner = self.partners(batch, len(x), g, x.device)
        switched, _ = self.mixer.switch(x, x[partner], tuple(input_shape))
        switched = switched.to(x.dtype)
        return switched, replace(batch, x=switched), targets


class BatchMixers:
    """Several batch mixers applied in order, each on the previous one's batch and targets
    (each reads the targets as the previous one left them: ``softmax(logits / T)`` with row
    weights, so mixtures of mixtures stay exact)."""

    def __init__(self, mixers: Sequence[Any]):
        self.mixers = list(mixers)

    def mix(self, x: Tensor, batch: Batch, targets: Targets, g: torch.Generator,
            input_shape) -> tuple[Tensor, Batch, Targets]:
        for m in self.mixers:
            x, batch, targets = m.mix(x, batch, targets, g, input_shape)
        return x, batch, targets


def mixes_targets(mixer: Any) -> bool:
    """True when a registered mixer or its batch form changes the rows' targets (MixUp,
    CutMix, copy-paste); False for the amplitude switch, a style perturbation that keeps
    them, and for a mixer with no batch form."""
    if isinstance(mixer, BatchMixers):
        return any(mixes_targets(m) for m in mixer.mixers)
    return isinstance(mixer, (MixUp, CutMix, BidirectionalCopyPaste, MultiScalePatches,
                              MixBatch, CopyPasteBatch))


def batch_mixer(part: Any, *, temperature: float = 1.0, u_weight: float = 0.5,
                labeled_objectives: Sequence[str] = ()) -> Any:
    """The batch mixer of a registered mixer (:data:`mentor.registry.MIXERS`): MixUp and
    CutMix -> :class:`MixBatch`; BCP's and Switch's copy-paste -> :class:`CopyPasteBatch`
    (with ``u_weight``, the pseudo-label regions' weight); the amplitude switch ->
    :class:`AmplitudeSwitchBatch`. ``temperature``: the objectives' temperature the mixed
    targets are carried at."""
    if isinstance(part, (MixUp, CutMix)):
        return MixBatch(part, temperature, labeled_objectives)
    if isinstance(part, (BidirectionalCopyPaste, MultiScalePatches)):
        return CopyPasteBatch(u_weight=u_weight, mixer=part, temperature=temperature)
    if isinstance(part, FrequencyAmplitudeSwitch):
        return AmplitudeSwitchBatch(part)
    raise MentorError(f"mixer {type(part).__name__} has no batch form; expected MixUp, CutMix, "
                      "a copy-paste or the frequency amplitude switch")
