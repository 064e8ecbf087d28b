"""QUEACO's teacher updater ``MetaFeedback`` (METHODS.md §12 ``teacher-updater:MetaFeedback``;
Zhang et al., "QUEACO: Borrowing Treasures from Weakly-labeled Behavior Data for Query
Attribute Value Extraction", CIKM 2021), in the style of Meta Pseudo Labels (Pham, Dai, Xie,
Luong and Le, "Meta Pseudo Labels", CVPR 2021).

QUEACO's teacher re-labels the weak (behaviour) tags for the student and is itself updated
from the student's performance on the strong (clean) tags. No QUEACO code was found; the
update follows MPL's paper and the code read: google-research/meta_pseudo_labels
(``training_utils.py``: feedback ``cross_entropy['s_on_l_new'] - shadow``, a moving-average
baseline with rate 0.01, teacher loss ``feedback * CE(teacher, pseudo-label)`` plus its
supervised loss) and kekmodel/MPL-pytorch (``main.py``, and its issue 6 on the sign). Per
student batch (:meth:`MetaFeedback.step`):

1. the current teacher re-labels the batch's weak sequences (:func:`~mentor.tagging.refine.
   refine` at ``threshold``: its top tag where its probability exceeds it, else the weak
   tag); the batch's strong sequences keep their clean tags. These are the tags ``ŷ_t``.
2. a strong feedback batch ``(x_s, y_s)`` of ``batch_size`` strong sequences is drawn (a
   seeded generator of its own, never the global one); ``L_old = CE(s(x_s), y_s)``.
3. the student takes its ordinary step on ``ŷ_t`` (:func:`~mentor.tagging.train.
   student_step`, the very step of the frozen-teacher arm): ``θ_s' = step(θ_s)``.
4. feedback ``h = L_old − L_new`` with ``L_new = CE(s'(x_s), y_s)``: the *exact difference*
   form, not MPL's first-order dot product ``η ∇L_s(θ_s')·∇L_w(θ_s)``; the two agree to first
   order for a small plain-gradient step (a test). ``h > 0`` when the step lowered the
   strong loss. With ``baseline`` ``β > 0`` the teacher reads ``h − b`` with the moving
   average ``b ← b + β (h − b)`` updated first, as in MPL's code (``b`` starts at 0
   [reconstruction]; MPL's code draws it at random).
5. teacher step (its own Adam, learning rate ``lr`` [reconstruction]) on
   ``meta_weight · (h − b) · CE(t(x_w), ŷ_t) + strong_weight · CE(t(x_s), y_s)``, the CE
   means over the real tokens -- the first over the batch's weak sequences only, against the
   tags the student was just given.

Sign [reconstruction of the convention]: METHODS.md writes ``h = L_strong(θ_s') −
L_strong(θ_s)`` with ``θ_t ← θ_t − η_t h ∇CE``, and MPL's code ``new − old``; with a
descent on ``h · CE`` that would *weaken* a pseudo-label that lowered the strong loss. We use
MPL's derivation instead (the dot product ``η ∇L_s(θ_s')·∇L_w(θ_s)`` is ``≈ L_old − L_new``;
kekmodel's issue 6, "theoretically correct formula"): a pseudo-label that lowers the strong
loss is reinforced (its teacher probability rises), one that raises it is weakened.

Also [reconstruction]: the student step is the frozen arm's mixed batch (strong clean tags and
refined weak tags, not MPL's pseudo-labelled-only batch), so the comparison has the same data,
steps and selection; the teacher's CE covers every real token of the weak sequences, the
tags it kept from the weak labels included (the action is the refined tag); QUEACO's
weak-label input to the teacher and its final fine-tuning on strong data are not built.

``meta_weight = strong_weight = 0`` takes no teacher step: the frozen-teacher arm, bitwise
(a test). ``meta_weight = 0`` alone keeps training the teacher on the strong batches: the
control that separates the feedback from the extra supervised teacher steps. Only the
strong sequences' gold tags reach the updater; the student's own step never reads the
feedback batch (a test).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from .._util.args import non_negative, positive_int, unit_interval
from ..errors import DataError, MentorError
from .refine import refine
from .testbed import TaggingData, check_tags
from .train import TrainedTagger, compare_arms, student_step, train_tagger


def _strong_ce(net: nn.Module, tokens: Tensor, mask: Tensor, y: Tensor) -> Tensor:
    return nn.functional.cross_entropy(net(tokens, mask)[mask], y[mask])


class MetaFeedback:
    """QUEACO's meta-feedback teacher updater (module docstring) on ``data``; ``teacher`` is
    updated in place. ``history``: the feedback ``h`` of every step, in order."""

    def __init__(self, teacher: nn.Module, data: TaggingData, *, threshold: float = 0.9,
                 meta_weight: float = 1.0, strong_weight: float = 1.0, lr: float = 1e-3,
                 batch_size: int = 32, baseline: float = 0.01, seed: int = 0,
                 optimizer: torch.optim.Optimizer | None = None):
        self.threshold = unit_interval("threshold", threshold)
        self.meta_weight = non_negative("meta_weight", meta_weight)
        self.strong_weight = non_negative("strong_weight", strong_weight)
        self.baseline = unit_interval("baseline", baseline)
        self.batch_size = positive_int("batch_size", batch_size)
        if not float(lr) > 0:
            raise MentorError(f"lr must be a positive number, got {lr!r}")
        if not len(data.strong):
            raise DataError("data.strong names no sequence; expected strong sequences for the "
                            "teacher's feedback")
        self.teacher, self.data = teacher, data
        self.optimizer = optimizer or torch.optim.Adam(teacher.parameters(), lr=float(lr))
        self.draw = torch.Generator().manual_seed(int(seed))
        self.is_weak = torch.zeros(len(data.tokens), dtype=torch.bool)
        self.is_weak[data.weak_ids] = True
        self.b = 0.0
        self.history: list[float] = []

    @property
    def frozen(self) -> bool:
        return self.meta_weight == 0 and self.strong_weight == 0

    def relabel(self, batch: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(tags, weak rows, teacher logits on them)``: ``targets[batch]`` with the batch's
        weak sequences re-labelled by the current teacher (logits keep their graph)."""
        d = self.data
        y = targets[batch].clone()
        rows = self.is_weak[batch].nonzero().flatten()
        logits = None
        if len(rows):
            w = batch[rows]
            self.teacher.train()
            with torch.set_grad_enabled(not self.frozen):
                logits = self.teacher(d.tokens[w], d.mask[w])
            probs = torch.softmax(logits.detach(), -1)
            y[rows], _ = refine(d.weak[w], probs, d.mask[w], self.threshold, d.num_types)
        return y, rows, logits

    def feedback_batch(self) -> Tensor:
        """The next strong feedback batch (sequence ids, from this updater's generator)."""
        s = self.data.strong
        return s[torch.randperm(len(s), generator=self.draw)[:self.batch_size]]

    def step(self, student: nn.Module, optimizer: torch.optim.Optimizer, batch: Tensor,
             targets: Tensor) -> float:
        """The student's step on ``batch`` (tags: ``targets`` re-labelled, :meth:`relabel`)
        and the teacher's update (module docstring); returns ``h`` (0 when frozen)."""
        d = self.data
        y, rows, t_logits = self.relabel(batch, targets)
        tok, m = d.tokens[batch], d.mask[batch]
        if self.frozen:
            student_step(student, optimizer, tok, m, y)
            return 0.0
        s = self.feedback_batch()
        xs, ms, ys = d.tokens[s], d.mask[s], d.gold[s]
        with torch.no_grad():
            old = float(_strong_ce(student, xs, ms, ys))
        student_step(student, optimizer, tok, m, y)
        with torch.no_grad():
            new = float(_strong_ce(student, xs, ms, ys))
        h = old - new
        self.history.append(h)
        if self.baseline > 0:
            self.b += self.baseline * (h - self.b)
        loss = self.strong_weight * _strong_ce(self.teacher, xs, ms, ys)
        if self.meta_weight > 0 and len(rows):
            mw = m[rows]
            ce = nn.functional.cross_entropy(t_logits[mw], y[rows][mw])
            loss = loss + self.meta_weight * (h - self.b) * ce
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return h


META_ARMS = ("strong", "weak", "refined", "teacher_sup", "meta")


def compare_meta_arms(data: TaggingData, *, seed: int = 0, threshold: float = 0.9,
                      strong_epochs: int = 150, meta_weight: float = 1.0,
                      strong_weight: float = 1.0, teacher_lr: float = 1e-3,
                      baseline: float = 0.01, control: bool = True,
                      **train) -> tuple[dict[str, TrainedTagger], dict[str, MetaFeedback]]:
    """:func:`~mentor.tagging.train.compare_arms`'s three arms and, from copies of the
    ``strong`` arm's tagger as teacher, the same student run (same seed, batches, steps and
    validation selection) with a :class:`MetaFeedback` teacher: ``meta`` (``meta_weight``,
    ``strong_weight``) and, when ``control``, ``teacher_sup`` (``meta_weight`` 0: the
    teacher keeps training on the strong batches without feedback). Returns the arms and the
    updaters (their teachers and feedback histories)."""
    check_tags(data.weak, data.mask, data.num_types, "weak")
    arms = compare_arms(data, seed=seed, threshold=threshold, strong_epochs=strong_epochs,
                        **train)
    both = torch.cat([data.strong, data.weak_ids])
    settings = {"meta": meta_weight}
    if control:
        settings["teacher_sup"] = 0.0
    updaters = {}
    for name, weight in settings.items():
        upd = MetaFeedback(copy.deepcopy(arms["strong"].model), data, threshold=threshold,
                           meta_weight=weight, strong_weight=strong_weight, lr=teacher_lr,
                           batch_size=train.get("batch_size", 32), baseline=baseline,
                           seed=seed)
        arms[name] = train_tagger(data, data.weak, both, seed=seed, updater=upd, **train)
        updaters[name] = upd
    return arms, updaters
