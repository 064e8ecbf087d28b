"""Unsupervised re-ID with cluster contrast and Learning to Purification's offline teacher
(METHODS.md §33; Lan et al., "Learning to Purification for Unsupervised Person
Re-identification", IEEE TIP 2023; cluster contrast: Dai et al., ACCV 2022) on the generated
testbed TB-REID (:func:`mentor.embedding.tb_reid` with its defaults: 150 unlabeled training
identities, 40 validation and 100 test identities, 12 samples each from 4 cameras, 64-d
inputs from a fixed random nonlinear map of a 16-d identity latent plus camera shift, noise
and a 16-d nuisance). Per seed 0/1/2 -- the seed draws the testbed, the initial weights and
the batches -- the arms of :func:`mentor.embedding.compare_arms`, every trained arm the same
MLP embedder (64 → 128 → 128 → 64), Adam lr 1e-3, 40 P×K steps per epoch (16 clusters × 4),
12 epochs, DBSCAN (eps 0.5) on k-reciprocal Jaccard distances every epoch, memory
temperature 0.1 and momentum 0.2:

- ``raw``: the raw inputs, no training (cosine or Euclidean, chosen on validation mAP);
- ``contrast``: cluster contrast (the first epoch clusters the raw inputs); the teacher;
- ``contrast_long``: cluster contrast for 24 epochs, the compute of teacher + student;
- ``purification``: the student of the frozen ``contrast`` teacher as in the official code:
  first epoch on the teacher's pseudo-labels with its centroids frozen, then its own
  clusters; plus the feature distillation ``‖n(f_s) − n(f_t)‖²`` with weight 1;
- ``purification_kl``: the same with the catalogue's soft-assignment KL instead
  [reconstruction];
- ``teacher_labels``: the student without the distillation term (weight 0): only the
  teacher's first-epoch labels (an ablation);
- ``supervised``: the true training identities as the clusters (an upper bound).

Selection: the epoch with the best validation mAP; figures are test mAP and Rank-1 (same-
identity same-camera gallery entries excluded; ties against the embedder) as fractions 0..1,
mean ± population std over the seeds, and per seed. ``.purity``: the pseudo-labels' purity
against the hidden identities at the selected epoch (``teacher.purity``: of the teacher's
labels, the student's first epoch; ``raw.purity``: of the raw-input clusters, the first
epoch of ``contrast``). Verdicts (``A_vs_B``) on test mAP (``.rank1``: on Rank-1) by the
project's rule: ``higher`` / ``lower`` when the gap exceeds twice the larger std, else ``not
separated``; ``.wins``: the seeds where A is higher.
"""

from __future__ import annotations

from ._fmt import mean_std, verdict, wins
from ._run import over_seeds

SEEDS = (0, 1, 2)
TRAINED = ("contrast", "contrast_long", "purification", "purification_kl", "teacher_labels",
           "supervised")
PAIRS = (("purification", "contrast"), ("purification", "contrast_long"),
         ("purification_kl", "contrast"), ("teacher_labels", "contrast"),
         ("purification", "teacher_labels"), ("contrast", "raw"), ("supervised", "contrast"))


def _v(values: list[float]) -> str:
    m, s = mean_std(values)
    return f"{m:.3f} ± {s:.3f}"


def _data(seed: int, quick: bool):
    from mentor.embedding import tb_reid
    return tb_reid(seed=seed, train_identities=100, test_identities=60) if quick \
        else tb_reid(seed=seed)


def run(seed: int, quick: bool) -> dict[str, float]:
    """Test mAP / Rank-1 of every arm and the pseudo-label purities on the testbed of
    ``seed``."""
    from mentor.embedding import compare_arms
    data = _data(seed, quick)
    train = dict(epochs=3, steps=20) if quick else dict(epochs=12, steps=40)
    arms = compare_arms(data, seed=seed, **train)
    out: dict[str, float] = {}
    for arm, r in arms.items():
        out[f"{arm}.mAP"] = r.test["mAP"]
        out[f"{arm}.rank1"] = r.test["rank1"]
        if arm in TRAINED:
            out[f"{arm}.purity"] = r.purity
    out["teacher.purity"] = arms["purification"].history[0]["purity"]
    out["raw.purity"] = arms["contrast"].history[0]["purity"]
    out["skipped"] = arms["raw"].test["skipped"]
    out["evaluated"] = arms["raw"].test["evaluated"]
    return out


def arm_figures(vals, arms, described: str, seeds: int) -> dict[str, str]:
    """The data line, seed count, query counts and every arm's test mAP / Rank-1 (mean ± std
    and per seed) of a re-ID measurement whose runs give ``ARM.mAP``, ``ARM.rank1``,
    ``evaluated`` and ``skipped``."""
    out = {"data": described, "seeds": str(seeds),
           "queries": f"{int(vals('evaluated')[0])} evaluated, {int(vals('skipped')[0])} "
                      "skipped (no match from another camera) on seed 0"}
    for arm in arms:
        for m in ("mAP", "rank1"):
            out[f"{arm}.{m}"] = _v(vals(f"{arm}.{m}"))
            out[f"{arm}.{m}.per_seed"] = " / ".join(f"{v:.3f}" for v in vals(f"{arm}.{m}"))
    return out


def measure(quick: bool) -> dict[str, str]:
    from mentor.embedding import ARMS
    seeds = (0,) if quick else SEEDS
    vals = over_seeds(run, seeds, quick)
    out = arm_figures(vals, ARMS, _data(0, quick).describe(), len(seeds))
    for arm in (*TRAINED, "teacher", "raw"):
        out[f"{arm}.purity"] = _v(vals(f"{arm}.purity"))
    for a, b in PAIRS:
        out[f"{a}_vs_{b}"] = verdict(vals(f"{a}.mAP"), vals(f"{b}.mAP"))
        out[f"{a}_vs_{b}.wins"] = wins(vals(f"{a}.mAP"), vals(f"{b}.mAP"))
    for a, b in PAIRS[:1] + PAIRS[5:6]:
        out[f"{a}_vs_{b}.rank1"] = verdict(vals(f"{a}.rank1"), vals(f"{b}.rank1"))
        out[f"{a}_vs_{b}.rank1.wins"] = wins(vals(f"{a}.rank1"), vals(f"{b}.rank1"))
    return out


from . import measurement  # noqa: E402

measurement("reid", about="Unsupervised re-ID on TB-REID (150 unlabeled training identities, "
            "100 test identities, 4 cameras): raw features vs cluster contrast (DBSCAN on "
            "Jaccard distances, centroid memory) vs Learning to Purification's student of an "
            "offline cluster-contrast teacher (official feature distillation; soft-assignment "
            "KL; teacher labels only), a 2x-epochs control and a supervised upper bound, "
            "test mAP / Rank-1, 3 seeds", ci="quick", minutes=7.5)(measure)
