"""QUEACO's meta-feedback teacher (METHODS.md §12 ``teacher-updater:MetaFeedback``; Zhang et
al., "QUEACO: Borrowing Treasures from Weakly-labeled Behavior Data for Query Attribute Value
Extraction", CIKM 2021; the update of Pham et al., "Meta Pseudo Labels", CVPR 2021) on the
testbed of the ``queaco`` measurement (TB-SEQ tagging, 3000 sequences, 5 % strong tags, 95 %
weak tags 30 % corrupted; seeds 0/1/2 draw the testbed, the corruption and the initial
weights). The same BiGRU student (embedding 32, GRU 32 each way; Adam lr 0.01, batch 32, 10
epochs, the epoch with the best validation span F1 kept) is trained on the strong tags plus:

- ``weak``: the raw weak tags;
- ``refined``: the weak tags refined once by the frozen strong-only teacher (150 epochs on
  the strong tags; its top tag replaces a weak tag above probability 0.9);
- ``teacher_sup``: refined per batch by a teacher that keeps training on strong batches (its
  own Adam, lr ``TEACHER_LR``) without feedback -- the control for the extra teacher steps;
- ``meta``: the same, plus the meta feedback (:class:`mentor.tagging.meta.MetaFeedback`,
  weight ``META_WEIGHT``, MPL's moving baseline 0.01): the teacher's CE on the tags it gave
  the batch, scaled by the drop of the student's loss on a strong batch over its step.

All four share the student's seed, batches, steps and selection; meta weight 0 with no
supervised teacher steps is the ``refined`` arm bitwise (a test). ``META_WEIGHT`` and
``TEACHER_LR`` were chosen on *validation* span F1 of two other testbeds (seeds 10 and 11;
grid: weight 0 / 10 / 30 / 100, lr 1e-3 / 3e-3), never on these seeds' figures.

Figures: test span F1 (fractions 0..1), mean ± population std over the seeds and per seed;
``.wrong``: the fraction of the weak sequences' tags that differ from gold under the frozen
teacher's refinement and under the final teacher of ``teacher_sup`` / ``meta``; ``meta.h``:
the mean feedback ``h`` (strong-loss drop per step). Verdicts (``A_vs_B``): ``higher`` /
``lower`` when the gap exceeds twice the larger std, else ``not separated``; ``.wins``: the
seeds where A's test span F1 is higher.
"""

from __future__ import annotations

from ._run import over_seeds
from .tagging import figures

SEEDS = (0, 1, 2)
ARMS = ("weak", "refined", "teacher_sup", "meta")
META_WEIGHT = 30.0
TEACHER_LR = 3e-3
PAIRS = (("meta", "refined"), ("meta", "teacher_sup"), ("meta", "weak"),
         ("teacher_sup", "refined"), ("refined", "weak"))


def _wrong(data, targets) -> float:
    w, m = data.weak_ids, data.mask[data.weak_ids]
    return (targets[w] != data.gold[w])[m].float().mean().item()


def run(seed: int, quick: bool) -> dict[str, float]:
    """Test span F1 of the four arms, the wrong-tag fractions and the mean feedback on the
    testbed of ``seed``."""
    import statistics

    from mentor.tagging import refined_targets, tb_seq_tagging
    from mentor.tagging.meta import compare_meta_arms
    data = tb_seq_tagging(num_sequences=1500 if quick else 3000, seed=seed)
    train = dict(strong_epochs=100, epochs=5) if quick else dict(strong_epochs=150, epochs=10)
    arms, upd = compare_meta_arms(data, seed=seed, threshold=0.9, meta_weight=META_WEIGHT,
                                  teacher_lr=TEACHER_LR, **train)
    out = {arm: arms[arm].test_f1 for arm in ARMS}
    out["refined.wrong"] = _wrong(data, refined_targets(data, arms["strong"].model, 0.9)[0])
    for arm in ("teacher_sup", "meta"):
        out[f"{arm}.wrong"] = _wrong(data, refined_targets(data, upd[arm].teacher, 0.9)[0])
    out["meta.h"] = statistics.fmean(upd["meta"].history)
    return out


def measure(quick: bool) -> dict[str, str]:
    from mentor.tagging import tb_seq_tagging
    seeds = (0,) if quick else SEEDS
    vals = over_seeds(run, seeds, quick)
    out = {"data": tb_seq_tagging(num_sequences=1500 if quick else 3000).describe(),
           "seeds": str(len(seeds)),
           "settings": f"meta weight {META_WEIGHT:g}, teacher Adam lr {TEACHER_LR:g}, "
                       "threshold 0.9, baseline rate 0.01"}
    out.update(figures(vals, ARMS, ("refined.wrong", "teacher_sup.wrong", "meta.wrong",
                                    "meta.h"), PAIRS))
    return out


from . import measurement  # noqa: E402

measurement("queaco-meta", about="QUEACO's meta-feedback teacher on TB-SEQ tagging (the queaco "
            "testbed): a BiGRU student on strong + raw weak tags vs weak tags refined by a "
            "frozen teacher vs by a teacher that keeps training on strong tags vs by a "
            "meta-feedback teacher (MPL-style), test span F1, 3 seeds", ci="quick",
            minutes=4.0)(measure)
