"""TRS on keypoint heatmaps (METHODS.md §11; mentor.keypoints) on the generated testbed
TB-KPT (:func:`mentor.keypoints.tb_kpt` with its defaults: 1,000 grey 24 × 24 images of a
stick figure with five landmarks -- head, hands, feet -- under random pose, scale,
rotation, clutter and noise; training pool 700 images of which 5 % (35) labeled; val 100,
test 200). Per seed 0/1/2 -- the seed draws the testbed, the initial weights and every
random draw -- the same student (:class:`mentor.keypoints.TinyPose`, a two-level U-Net)
trains 500 Adam steps (lr 2e-3) on 16 labeled images per step through random aligned
views (flip with left/right swap, shift up to 2 px, pixel noise), and:

- ``supervised``: the labeled heatmap MSE only;
- ``mean_teacher``: + an EMA teacher (momentum 0.95, mentor's ``ema`` updater) on 32
  unlabeled images per step: student on the viewed image, target the teacher's heatmaps
  of the plain image carried through the same view (MSE, weight 1 ramped in over 100 steps);
- ``trs``: + the reviewer's heatmaps as a second target (weight 0.5), the reviewer from
  mentor's ``reviewer`` updater (replaced by the teacher every 50 steps when the teacher's
  mean heatmap maximum over the period improved).

Selection: the step (every 50) with the best validation PCK; figures are test figures
once at the end: PCK@0.05 (a keypoint counts within 0.05 × 24 = 1.2 px of the truth,
arg-max of its heatmap), and heatmap MSE. Mean ± population std over the seeds, and per
seed. Verdicts by the project's rule on PCK (``higher`` / ``lower`` when the gap exceeds
twice the larger std, else ``not separated``) with per-seed wins.
"""

from __future__ import annotations

from ._fmt import mean_std, verdict, wins
from ._run import over_seeds

SEEDS = (0, 1, 2)
ARMS = ("supervised", "mean_teacher", "trs")
QUICK = dict(num_images=400, train=dict(steps=100, eval_every=25, rampup=30,
                                        review_every=25))
FULL = dict(num_images=1000, train=dict())
PAIRS = (("trs", "mean_teacher"), ("mean_teacher", "supervised"), ("trs", "supervised"))


def _v(values: list[float], digits: int = 3) -> str:
    m, s = mean_std(values)
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def _seeds(values: list[float], digits: int = 3) -> str:
    return " / ".join(f"{v:.{digits}f}" for v in values)


def run(seed: int, quick: bool) -> dict[str, float]:
    """Test figures of the three arms on the testbed of ``seed``."""
    from mentor.keypoints import compare_arms, tb_kpt
    setting = QUICK if quick else FULL
    data = tb_kpt(setting["num_images"], seed=seed)
    arms = compare_arms(data, seed, **setting["train"])
    out: dict[str, float] = {}
    for arm in ARMS:
        r = arms[arm]
        out[f"{arm}.pck"] = r.test["pck"]
        out[f"{arm}.mse"] = r.test["mse"]
        out[f"{arm}.best_step"] = r.best_step
    out["trs.replaced"] = arms["trs"].reviewer_replaced
    return out


def measure(quick: bool) -> dict[str, str]:
    from mentor.keypoints import tb_kpt
    seeds = (0,) if quick else SEEDS
    vals = over_seeds(run, seeds, quick)
    setting = QUICK if quick else FULL
    out = {"data": tb_kpt(setting["num_images"]).describe(), "seeds": str(len(seeds))}
    for arm in ARMS:
        out[f"{arm}.pck"] = _v(vals(f"{arm}.pck"))
        out[f"{arm}.pck.per_seed"] = _seeds(vals(f"{arm}.pck"))
        out[f"{arm}.mse"] = _v([1000 * v for v in vals(f"{arm}.mse")])
        out[f"{arm}.best_step"] = " / ".join(str(v) for v in vals(f"{arm}.best_step"))
    out["trs.replaced"] = " / ".join(str(v) for v in vals("trs.replaced"))
    for a, b in PAIRS:
        out[f"{a}_vs_{b}.pck"] = verdict(vals(f"{a}.pck"), vals(f"{b}.pck"))
        out[f"{a}_vs_{b}.pck.wins"] = wins(vals(f"{a}.pck"), vals(f"{b}.pck"))
    return out


from . import measurement  # noqa: E402

measurement("trs-keypoints", about="TRS on TB-KPT (1,000 grey 24×24 stick figures, five "
            "keypoints, 5 % of the 700 training images labeled): one small heatmap network, "
            "500 steps, supervised on the labeled images alone vs with a mean teacher on "
            "the unlabeled ones (geometrically aligned views) vs mean teacher + reviewer "
            "(TRS); test PCK@0.05 and heatmap MSE (×1000), 3 seeds",
            ci="quick", minutes=6.0)(measure)
