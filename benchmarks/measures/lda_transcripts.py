"""LDA on sequence transcripts (METHODS.md §3; mentor.transcripts) on the generated testbed
TB-SEQ transcripts (:func:`mentor.transcripts.tb_seq` with its defaults: 8,000 utterances
of three synthetic "languages" at 70 / 25 / 5 %, token sequences of 3..8 tokens from 10
rendered as noisy 16-dim frames; the rare language has 12 labeled utterances, 228
unlabeled, 80 val, 80 test). A toy stand-in for streaming multilingual ASR.

Per seed 0/1/2 -- the seed draws the testbed, the initial weights and every random draw
-- :func:`mentor.transcripts.compare_arms` with its defaults: a frozen backbone (GRU 64,
language-blind, 600 steps on the labeled utterances of all languages); a larger teacher
(2-layer GRU 128 + its rare-language adapter on the rare labeled utterances) whose greedy
decodes of the rare pool are the pseudo-transcripts; then 300 Adam steps per arm with the
same noisy-student input noise (frame noise 0.3, one time and one feature mask):

- ``full``: the whole model on labeled ∪ pseudo-labeled;
- ``adapter``: only the rare language's adapters (the checkpoint of best validation error);
- ``adapter_merge``: the same run, the mean of its 3 best checkpoints (by validation);
- ``labeled_only``: only the adapters, on the 12 labeled utterances (no teacher);
- ``joint``: the adapters of all three languages trained together (labeled of every
  language ∪ the rare pseudo-labeled), per-language test error of the single checkpoint of
  best mean validation error vs each language's adapter merged from its 3 best.

Figures: the corpus token error rate (edit distance / reference tokens, %) on the rare
language's test utterances, mean ± population std over the seeds and per seed;
trainable-parameter fractions; the teacher's validation error and the pseudo-transcripts'
error on the pool (hidden truth, telemetry). Verdicts by the project's rule on the error
(``lower`` = fewer errors, when the gap exceeds twice the larger std; else ``not
separated``) with per-seed counts of fewer errors.
"""

from __future__ import annotations

from ._fmt import mean_std, verdict, wins
from ._run import over_seeds

SEEDS = (0, 1, 2)
ARMS = ("full", "adapter", "adapter_merge", "labeled_only")
QUICK = dict(num_utterances=4000, train=dict(backbone_steps=150, teacher_steps=150,
                                             steps=60, eval_every=20))
FULL = dict(num_utterances=8000, train=dict())
PAIRS = (("adapter", "full"), ("adapter", "labeled_only"), ("adapter_merge", "adapter"))
LANGS = (0, 1, 2)


def _v(values: list[float]) -> str:
    m, s = mean_std([100 * v for v in values])
    return f"{m:.1f} ± {s:.1f} %"


def _seeds(values: list[float]) -> str:
    return " / ".join(f"{100 * v:.1f}" for v in values) + " %"


def run(seed: int, quick: bool) -> dict:
    """Figures of every arm on the testbed of ``seed``."""
    from mentor.transcripts import compare_arms, tb_seq
    setting = QUICK if quick else FULL
    data = tb_seq(setting["num_utterances"], seed=seed)
    r = compare_arms(data, seed, **setting["train"])
    out: dict = {f"{arm}.ter": r.test[arm] for arm in ARMS}
    out.update({f"{arm}.step": r.steps[arm] for arm in ARMS})
    out.update({f"{arm}.trainable": r.trainable[arm] for arm in ("full", "adapter")})
    out.update({"teacher.val": r.teacher_val, "pseudo.ter": r.pseudo_error,
                "pseudo.kept": r.pseudo_kept})
    for how in ("single", "merge"):
        for lang in LANGS:
            out[f"joint.{how}.{lang}"] = r.joint[how][lang]
        out[f"joint.{how}.mean"] = sum(r.joint[how].values()) / len(LANGS)
    return out


def measure(quick: bool) -> dict[str, str]:
    from mentor.transcripts import tb_seq
    seeds = (0,) if quick else SEEDS
    vals = over_seeds(run, seeds, quick)
    setting = QUICK if quick else FULL
    out = {"data": tb_seq(setting["num_utterances"]).describe(), "seeds": str(len(seeds))}
    for arm in ARMS:
        out[f"{arm}.ter"] = _v(vals(f"{arm}.ter"))
        out[f"{arm}.ter.per_seed"] = _seeds(vals(f"{arm}.ter"))
        out[f"{arm}.step"] = " / ".join(str(v) for v in vals(f"{arm}.step"))
    for arm in ("full", "adapter"):
        out[f"{arm}.trainable"] = f"{100 * vals(f'{arm}.trainable')[0]:.1f} %"
    out["teacher.val_ter"] = _v(vals("teacher.val"))
    out["pseudo.ter"] = _v(vals("pseudo.ter"))
    out["pseudo.kept"] = " / ".join(str(v) for v in vals("pseudo.kept"))
    for how in ("single", "merge"):
        for lang in (*LANGS, "mean"):
            out[f"joint.{how}.{lang}"] = _v(vals(f"joint.{how}.{lang}"))
    for a, b in PAIRS:
        out[f"{a}_vs_{b}.ter"] = verdict(vals(f"{a}.ter"), vals(f"{b}.ter"))
        out[f"{a}_vs_{b}.fewer_errors"] = wins(vals(f"{b}.ter"), vals(f"{a}.ter"))
    single, merge = vals("joint.single.mean"), vals("joint.merge.mean")
    out["joint.merge_vs_single.ter"] = verdict(merge, single)
    out["joint.merge_vs_single.fewer_errors"] = wins(single, merge)
    return out


from . import measurement  # noqa: E402

measurement("lda-transcripts", about="LDA on TB-SEQ transcripts (a toy stand-in for "
            "multilingual ASR: three synthetic languages at 70/25/5 %, the rare one with "
            "12 labeled and 228 unlabeled utterances): a frozen language-blind GRU backbone "
            "with per-language adapters trained on labeled + a teacher's pseudo-transcripts "
            "with input noise, vs full fine-tuning, vs labeled only, vs merged adapter "
            "checkpoints; rare-language test token error rate, per-language error of a "
            "joint adapter run, 3 seeds", ci="quick", minutes=6.0)(measure)
