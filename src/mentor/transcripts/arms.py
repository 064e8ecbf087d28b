"""LDA's arms under one budget on TB-SEQ transcripts (METHODS.md §3 LDA's CPU experiment).

Per ``seed`` (the testbed is the caller's; the seed draws initial weights, batch orders
and noise), with the rare language ``rare`` (default: the last):

1. backbone: a :class:`~mentor.transcripts.model.Recogniser` (``hidden`` 64, one GRU
   layer) trained language-blind (adapters off) on the labeled utterances of all
   languages for ``backbone_steps`` -- the frozen "foundation model";
2. teacher: a larger recogniser (``teacher_hidden`` 128, ``teacher_layers`` 2) trained the
   same way, then its adapter of the rare language trained on the rare language's
   labeled utterances (``steps``, the checkpoint of lowest validation error kept)
   ``[reconstruction]``: the paper's teacher is a large non-streaming model, not read;
3. pseudo-transcripts: the teacher's greedy decodes of the rare language's unlabeled pool
   (:func:`~mentor.transcripts.train.pseudo_transcripts`, no confidence filter);
4. arms on the rare language, each from the same backbone for ``steps`` with the same
   input noise, batch size, learning rate and checkpoint interval (:data:`ARMS`):

   - ``full``: every parameter trained on labeled ∪ pseudo-labeled;
   - ``adapter``: only the rare language's adapters trained on labeled ∪ pseudo-labeled,
     the checkpoint of lowest validation error kept;
   - ``adapter_merge``: the same run, the final adapter the mean of the ``merge_k`` (3)
     checkpoints of lowest validation error;
   - ``labeled_only``: only the adapters, on the labeled utterances (no teacher).

5. ``joint`` (the merge question): the adapters of all languages trained together on
   the frozen backbone from the labeled utterances of every language ∪ the rare
   language's pseudo-labeled ones (batches drawn at the languages' natural frequencies),
   scored per language with (i) the single checkpoint of lowest mean validation error and
   (ii) each language's adapter merged from its own ``merge_k`` best checkpoints.

Every choice reads validation transcripts only; test transcripts are scored once at the
end; the pseudo-transcripts' error on the pool (its hidden truth) is telemetry only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import MentorError
from .metrics import token_error_rate
from .testbed import SeqData
from .train import (best_single, error_rate, merged, pseudo_transcripts, train_adapters,
                    train_recogniser)

ARMS = ("full", "adapter", "adapter_merge", "labeled_only")
NOISE = dict(std=0.3, time_masks=1, time_width=3, feature_masks=1, feature_width=3)


@dataclass
class LdaResult:
    """Test errors of the arms on the rare language (``test``), their validation errors
    (``val``), selected steps, trainable-parameter fractions, per-language test errors of
    the joint run (``joint``: ``single`` / ``merge`` -> language -> error), the teacher's
    validation error and the pseudo-transcripts' error on the pool."""

    test: dict[str, float] = field(default_factory=dict)
    val: dict[str, float] = field(default_factory=dict)
    steps: dict[str, object] = field(default_factory=dict)
    trainable: dict[str, float] = field(default_factory=dict)
    joint: dict[str, dict[int, float]] = field(default_factory=dict)
    teacher_val: float = 0.0
    pseudo_error: float = 0.0
    pseudo_kept: int = 0


def compare_arms(data: SeqData, seed: int = 0, *, rare: int | None = None,
                 backbone_steps: int = 600, teacher_steps: int = 600, steps: int = 300,
                 eval_every: int = 25, merge_k: int = 3, hidden: int = 64,
                 teacher_hidden: int = 128, teacher_layers: int = 2,
                 noise: dict | None = None, min_confidence: float | None = None,
                 joint: bool = True) -> LdaResult:
    """Every arm (module docstring) with the same data, seed and budget."""
    rare = data.languages - 1 if rare is None else rare
    if not isinstance(rare, int) or not 0 <= rare < data.languages:
        raise MentorError(f"rare is {rare!r}; expected a language id in "
                          f"0..{data.languages - 1}")
    noise = NOISE if noise is None else noise
    common = dict(seed=seed, steps=steps, eval_every=eval_every, noise=noise)
    labeled = data.ids("labeled")
    backbone = train_recogniser(data, labeled, seed=seed, steps=backbone_steps,
                                hidden=hidden, use_adapters=False, noise=noise)
    big = train_recogniser(data, labeled, seed=seed + 1000, steps=teacher_steps,
                           hidden=teacher_hidden, layers=teacher_layers,
                           use_adapters=False, noise=noise)
    rare_lab = data.ids("labeled", rare)
    teacher, _ = best_single(train_adapters(big, data, rare_lab, (rare,), **common))
    out = LdaResult(teacher_val=error_rate(teacher, data, "val", rare))
    pool = data.ids("unlabeled", rare)
    kept, hyps, _ = pseudo_transcripts(teacher, data, pool, min_confidence)
    out.pseudo_kept = len(kept)
    out.pseudo_error = token_error_rate(hyps, data.transcripts(kept)) if len(kept) else 1.0
    pseudo = data.with_transcripts(kept, hyps)
    both = torch.cat([rare_lab, kept])

    def record(arm, model, step, run):
        out.val[arm] = error_rate(model, data, "val", rare)
        out.test[arm] = error_rate(model, data, "test", rare)
        out.steps[arm] = step
        out.trainable[arm] = run.trainable_params / run.total_params

    full = train_adapters(backbone, pseudo, both, (rare,), trainable="full", **common)
    record("full", *best_single(full), full)
    ada = train_adapters(backbone, pseudo, both, (rare,), **common)
    record("adapter", *best_single(ada), ada)
    model, chosen = merged(ada, merge_k)
    record("adapter_merge", model, chosen[rare], ada)
    lab = train_adapters(backbone, data, rare_lab, (rare,), **common)
    record("labeled_only", *best_single(lab), lab)
    if joint:
        every = tuple(range(data.languages))
        ids = torch.cat([labeled[data.language[labeled] != rare], both])
        run = train_adapters(backbone, pseudo, ids, every, **common)
        single, step = best_single(run)
        model, chosen = merged(run, merge_k)
        out.joint = {"single": {lang: error_rate(single, data, "test", lang)
                                for lang in every},
                     "merge": {lang: error_rate(model, data, "test", lang) for lang in every}}
        out.steps["joint.single"] = step
        out.steps["joint.merge"] = chosen
    return out
