"""QUEACO's weak-label refinement (METHODS.md §12; Zhang et al., "QUEACO: Borrowing
Treasures from Weakly-labeled Behavior Data for Query Attribute Value Extraction", CIKM 2021)
on the generated testbed TB-SEQ tagging (:func:`mentor.tagging.tb_seq_tagging` with its
defaults: 3000 sequences of 8-20 tokens, vocabulary 200, 3 entity types, BIO tags; split
1800 / 600 / 600; 5 % of the training sequences keep clean "strong" tags, the other 95 %
get "weak" tags with 30 % of the tokens corrupted at random: wrong type, dropped, shifted
boundary). Per seed 0/1/2 -- the seed draws the testbed, the corruption and the tagger's
initial weights -- the same tagger (embedding 32, bidirectional GRU 32, per-token head;
Adam lr 0.01, batch 32) is trained on:

- ``strong``: the strong tags only (150 epochs: few sequences, few steps per epoch);
- ``weak``: the strong tags and the raw weak tags (10 epochs);
- ``refined``: the strong tags and the weak tags refined by the frozen ``strong`` tagger as
  teacher -- its top tag replaces the weak tag where its probability exceeds 0.9, the
  reconstruction of QUEACO's refiner (10 epochs). QUEACO's meta-feedback teacher update is
  not run.

Selection: the epoch with the best validation span F1; figures are test span F1 (exact span
and type, micro) as fractions 0..1, mean ± population std over the seeds; ``.wrong``: the
fraction of the weak sequences' tags that differ from gold, raw and refined. Verdicts
(``A_vs_B``) by the project's rule: ``higher`` / ``lower`` when the gap exceeds twice the
larger std, else ``not separated``; ``.wins``: the seeds where A's test span F1 is higher.
"""

from __future__ import annotations

from ._fmt import mean_std, verdicts
from ._run import over_seeds

SEEDS = (0, 1, 2)
ARMS = ("strong", "weak", "refined")


def _v(values: list[float]) -> str:
    m, s = mean_std(values)
    return f"{m:.3f} ± {s:.3f}"


def run(seed: int, quick: bool) -> dict[str, float]:
    """Test span F1 of the three arms and the wrong-tag fractions on the testbed of
    ``seed``."""
    from mentor.tagging import compare_arms, refined_targets, tb_seq_tagging
    data = tb_seq_tagging(num_sequences=1500 if quick else 3000, seed=seed)
    train = dict(strong_epochs=100, epochs=5) if quick else dict(strong_epochs=150, epochs=10)
    arms = compare_arms(data, seed=seed, threshold=0.9, **train)
    targets, _ = refined_targets(data, arms["strong"].model, 0.9)
    w, m = data.weak_ids, data.mask[data.weak_ids]
    out = {arm: arms[arm].test_f1 for arm in ARMS}
    out["weak.wrong"] = (data.weak[w] != data.gold[w])[m].float().mean().item()
    out["refined.wrong"] = (targets[w] != data.gold[w])[m].float().mean().item()
    return out


def measure(quick: bool) -> dict[str, str]:
    from mentor.tagging import tb_seq_tagging
    seeds = (0,) if quick else SEEDS
    vals = over_seeds(run, seeds, quick)
    out = {"data": tb_seq_tagging(num_sequences=1500 if quick else 3000).describe(),
           "seeds": str(len(seeds))}
    out.update(figures(vals, ARMS, ("weak.wrong", "refined.wrong"),
                       (("refined", "weak"), ("refined", "strong"), ("weak", "strong"))))
    return out


def figures(vals, arms, extra, pairs) -> dict[str, str]:
    """Per arm ``ARM.f1`` (mean ± std) and ``ARM.f1.per_seed``; each key of ``extra`` as mean
    ± std; per pair ``A_vs_B`` (the verdict) and ``A_vs_B.wins``. ``vals``: over_seeds'."""
    out = {}
    for arm in arms:
        out[f"{arm}.f1"] = _v(vals(arm))
        out[f"{arm}.f1.per_seed"] = " / ".join(f"{v:.3f}" for v in vals(arm))
    for key in extra:
        out[key] = _v(vals(key))
    out.update(verdicts(vals, pairs))
    return out


from . import measurement  # noqa: E402

measurement("queaco", about="QUEACO's weak-label refinement on TB-SEQ tagging (3000 "
            "sequences, 5 % strong tags, 95 % weak tags 30 % corrupted): a BiGRU tagger on "
            "strong tags only vs strong + raw weak tags vs strong + weak tags refined by a "
            "frozen strong-only teacher (threshold 0.9), test span F1, 3 seeds", ci="quick",
            minutes=1.0)(measure)
