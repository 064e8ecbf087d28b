"""CORE-ReID on a part-structured re-ID testbed (METHODS.md §43; Nguyen et al., "CORE-ReID:
Comprehensive Optimization and Refinement through Ensemble Fusion in Domain Adaptation for
Person Re-identification", Software 2024; official code TrinhQuocNguyen/CORE-ReID):
unsupervised domain adaptation from a labeled source domain to an unlabeled target domain
on TB-REID-PARTS (:func:`mentor.embedding.tb_reid_parts` with its defaults: 150 unlabeled
target training identities, 40 validation and 100 test identities, 12 samples each from 4
cameras; a 64-d input of two 32-d part blocks, each a fixed random nonlinear map of the
identity's own part latent plus camera shift, noise and nuisance, one block of 30 % of the
samples occluded; 150 labeled source identities with a per-dimension style shift). Per seed
0/1/2 -- the seed draws the testbed, the initial weights, the batches and the k-means
initialisations -- :func:`mentor.embedding.compare_core_arms`:

- ``source_only``: the model pre-trained on the source labels (CE + soft triplet on the
  global view, 8 epochs × 40 P×K steps, the epoch with the best target-validation mAP);
- from it, under one budget (20 epochs × 30 steps, batch 16 pseudo-identities × 4, Adam lr
  1e-3, EMA teacher momentum ``min(1 − 1/(t+1), 0.99)``, k-means with 150 centres on the
  teacher's features every epoch):
  ``single_view`` (global clustering only; CE + soft triplet on the global view; retrieval
  on the global feature), ``multi_view`` (k-means per view on the global, upper and lower
  views, CE + triplet on the global view + 0.5 × triplet on each part view with its own
  labels; retrieval on the concatenated views, as the official evaluation) and
  ``multi_view_fusion`` (the same, clustering the fusion head's fused views of the teacher's
  map and the student's part embeddings).

Selection: the epoch with the best validation mAP of the EMA teacher; figures are test mAP
and Rank-1 (same-identity same-camera gallery entries excluded) as fractions 0..1, mean ±
population std over the seeds, and per seed. ``.nmi``: the normalised mutual information
(scikit-learn) between the global view's pseudo-labels and the hidden training identities,
mean over the epochs (telemetry; ``.nmi_upper`` / ``.nmi_lower``: the part views' labels);
``.global_mAP``: a multi-view arm's test mAP on its global feature alone. Verdicts
(``A_vs_B``) on test mAP (``.nmi``: on NMI, ``.rank1``: on Rank-1) by the project's rule:
``higher`` / ``lower`` when the gap exceeds twice the larger std, else ``not separated``;
``.wins``: the seeds where A is higher.
"""

from __future__ import annotations

from ._fmt import verdict, wins
from ._run import over_seeds
from .reid import _v, arm_figures

SEEDS = (0, 1, 2)
ADAPTED = ("single_view", "multi_view", "multi_view_fusion")
MULTI = ("multi_view", "multi_view_fusion")
QUICK = dict(data=dict(train_identities=60, val_identities=20, test_identities=40,
                       source_identities=60),
             pretrain=dict(epochs=4, steps=20), train=dict(epochs=4, steps=15, clusters=60))
FULL = dict(data=dict(source_identities=150), pretrain=dict(epochs=8, steps=40),
            train=dict(epochs=20, steps=30, clusters=150))
PAIRS = (("multi_view", "single_view"), ("multi_view_fusion", "multi_view"),
         ("multi_view_fusion", "single_view"), ("single_view", "source_only"),
         ("multi_view", "source_only"))


def _seeds(values: list[float]) -> str:
    return " / ".join(f"{v:.3f}" for v in values)


def _data(seed: int, quick: bool):
    from mentor.embedding import tb_reid_parts
    return tb_reid_parts(seed=seed, **(QUICK if quick else FULL)["data"])


def run(seed: int, quick: bool) -> dict[str, float]:
    """Test figures and pseudo-label NMI of every arm on the testbed of ``seed``."""
    from mentor.embedding import compare_core_arms
    setting = QUICK if quick else FULL
    arms = compare_core_arms(_data(seed, quick), seed=seed, pretrain=setting["pretrain"],
                             **setting["train"])
    out: dict[str, float] = {}
    for arm, r in arms.items():
        out[f"{arm}.mAP"] = r.test["mAP"]
        out[f"{arm}.rank1"] = r.test["rank1"]
        out[f"{arm}.best_epoch"] = r.best_epoch
        if arm in ADAPTED:
            out[f"{arm}.nmi"] = r.nmi(0)
        if arm in MULTI:
            out[f"{arm}.nmi_upper"] = r.nmi(1)
            out[f"{arm}.nmi_lower"] = r.nmi(2)
            out[f"{arm}.global_mAP"] = r.test_global["mAP"]
    out["evaluated"] = arms["source_only"].test["evaluated"]
    out["skipped"] = arms["source_only"].test["skipped"]
    return out


def measure(quick: bool) -> dict[str, str]:
    from mentor.embedding import CORE_ARMS
    seeds = (0,) if quick else SEEDS
    vals = over_seeds(run, seeds, quick)
    out = arm_figures(vals, CORE_ARMS, _data(0, quick).describe(), len(seeds))
    for arm in CORE_ARMS:
        out[f"{arm}.best_epoch"] = " / ".join(str(int(v)) for v in vals(f"{arm}.best_epoch"))
    for arm in ADAPTED:
        out[f"{arm}.nmi"] = _v(vals(f"{arm}.nmi"))
        out[f"{arm}.nmi.per_seed"] = _seeds(vals(f"{arm}.nmi"))
    for arm in MULTI:
        for k in ("nmi_upper", "nmi_lower", "global_mAP"):
            out[f"{arm}.{k}"] = _v(vals(f"{arm}.{k}"))
    for a, b in PAIRS:
        out[f"{a}_vs_{b}"] = verdict(vals(f"{a}.mAP"), vals(f"{b}.mAP"))
        out[f"{a}_vs_{b}.wins"] = wins(vals(f"{a}.mAP"), vals(f"{b}.mAP"))
    for a, b in PAIRS[:3]:
        out[f"{a}_vs_{b}.nmi"] = verdict(vals(f"{a}.nmi"), vals(f"{b}.nmi"))
        out[f"{a}_vs_{b}.nmi.wins"] = wins(vals(f"{a}.nmi"), vals(f"{b}.nmi"))
    a, b = PAIRS[0]
    out[f"{a}_vs_{b}.rank1"] = verdict(vals(f"{a}.rank1"), vals(f"{b}.rank1"))
    out[f"{a}_vs_{b}.rank1.wins"] = wins(vals(f"{a}.rank1"), vals(f"{b}.rank1"))
    return out


from . import measurement  # noqa: E402

measurement("core-reid", about="CORE-ReID UDA on TB-REID-PARTS (labeled source domain with a "
            "style shift -> 150 unlabeled target identities with two-part inputs): source-only "
            "vs single-view clustering vs multi-view (global / upper / lower k-means) "
            "clustering vs multi-view + fusion head, EMA teacher, soft triplet + CE, test "
            "mAP / Rank-1 and pseudo-label NMI, 3 seeds", ci="quick", minutes=5)(measure)
