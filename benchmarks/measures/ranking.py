"""MemReranker's label pipeline (METHODS.md §25) on the generated testbed TB-RANK
(:func:`mentor.ranking.tb_rank` with its defaults: 300 queries × 20 candidates, 16 pair
features, hidden nonlinear relevance plus noise, grades 0-3; queries split 180 / 60 / 60).
Per seed 0/1/2 -- the seed draws the testbed, the three simulated judges' reading errors
(:class:`mentor.ranking.SimulatedTeachers` defaults: noise 0.5 / 0.75 / 1.0, position bias
0.5 / 1.0 / 1.5 logits, temperature 0.5) and the student's initial weights -- the same
student is trained on:

- ``hard``: the least noisy judge's pointwise yes/no labels (binary cross-entropy), an
  oracle choice: a user does not know which judge is least noisy;
- ``majority``: the majority vote of the three judges' pointwise yes/no labels
  (:meth:`mentor.ranking.SimulatedTeachers.majority_labels`; three judges never tie, a tie
  would count as not relevant; binary cross-entropy): hard labels from the same judges as
  the soft labels, the paper's ablation (``soft_vs_majority``);
- ``soft``: the Bradley–Terry soft labels of all three judges' pairwise comparisons, both
  presentation orders, calibrated on the training queries against the judges' mean pointwise
  answer (:func:`mentor.ranking.soft_labels`; soft BCE);
- ``soft_nce``: the soft labels plus InfoNCE (weight 1, τ 1, the 5 hardest negatives;
  positives: soft label ≥ 0.5);
- ``gold``: the true binary relevance of the training rows, a reference no arm sees.

Student: MLP 16-32-1 (``mlp``), Adam lr 0.01, full batch, 200 epochs, the weights of the
best validation nDCG@5; test MAP (relevant = grade ≥ 2), nDCG@5, and the ECE of the sigmoid
scores against binary relevance (10 bins). Also the linear student (``linear``, lr 0.03),
nDCG@5 only. Values are fractions (0..1), mean ± population std over the seeds. Verdicts
(``A_vs_B``) by the project's rule: ``higher`` / ``lower`` when the gap exceeds twice the
larger std, else ``not separated``; ``.wins``: the seeds where A is better than B (higher
MAP or nDCG, *lower* ECE).

Figures: docs/methods.md's row "25 MemReranker".
"""

from __future__ import annotations

from ._fmt import mean_std, verdict, wins
from ._run import one_torch_thread

SEEDS = (0, 1, 2)
ARMS = ("hard", "majority", "soft", "soft_nce", "gold")


def _v(values: list[float]) -> str:
    m, s = mean_std(values)
    return f"{m:.3f} ± {s:.3f}"


def _per_seed(values: list[float]) -> str:
    return " / ".join(f"{v:.3f}" for v in values)


def run(seed: int, epochs: int) -> dict[str, dict[str, float]]:
    """The five arms with the MLP student and hard / soft / gold with the linear one, on
    the testbed of ``seed``."""
    from mentor.ranking import SimulatedTeachers, soft_labels, tb_rank, train_scorer
    data = tb_rank(seed=seed)
    judges = SimulatedTeachers(data, seed=seed)
    labels = {"hard": judges.hard_labels(0), "majority": judges.majority_labels(),
              "soft": soft_labels(data, judges).labels,
              "gold": data.binary().float()}
    mlp = {"hidden": 32, "lr": 0.01, "epochs": epochs, "seed": seed}
    out = {}
    for arm in ARMS:
        y = labels["soft" if arm == "soft_nce" else arm]
        r = train_scorer(data, y, nce_weight=1.0 if arm == "soft_nce" else 0.0, **mlp)
        out[f"mlp.{arm}"] = {"map": r.test_map, "ndcg": r.test_ndcg, "ece": r.test_ece}
    for arm in ("hard", "soft", "gold"):
        r = train_scorer(data, labels[arm], hidden=0, lr=0.03, epochs=epochs, seed=seed)
        out[f"linear.{arm}"] = {"ndcg": r.test_ndcg}
    return out


def measure(quick: bool) -> dict[str, str]:
    from mentor.ranking import tb_rank
    seeds, epochs = ((0,), 20) if quick else (SEEDS, 200)
    with one_torch_thread():
        runs = [run(s, epochs) for s in seeds]

    def vals(arm: str, metric: str) -> list[float]:
        return [r[arm][metric] for r in runs]
    out = {"data": tb_rank().describe(), "seeds": str(len(seeds))}
    for arm in ARMS:
        for metric in ("map", "ndcg", "ece"):
            out[f"mlp.{arm}.{metric}"] = _v(vals(f"mlp.{arm}", metric))
    for arm in ("hard", "majority", "soft", "soft_nce"):
        out[f"mlp.{arm}.ndcg.per_seed"] = _per_seed(vals(f"mlp.{arm}", "ndcg"))
    for metric in ("map", "ndcg", "ece"):
        for a, b in (("soft", "hard"), ("soft_nce", "soft"), ("soft_nce", "hard"),
                     ("soft", "majority")):
            x, y = vals(f"mlp.{a}", metric), vals(f"mlp.{b}", metric)
            out[f"mlp.{a}_vs_{b}.{metric}"] = verdict(x, y)
            out[f"mlp.{a}_vs_{b}.{metric}.wins"] = wins(y, x) if metric == "ece" else wins(x, y)
    for arm in ("hard", "soft", "gold"):
        out[f"linear.{arm}.ndcg"] = _v(vals(f"linear.{arm}", "ndcg"))
    x, y = vals("linear.soft", "ndcg"), vals("linear.hard", "ndcg")
    out["linear.soft_vs_hard.ndcg"] = verdict(x, y)
    out["linear.soft_vs_hard.ndcg.wins"] = wins(x, y)
    return out


from . import measurement  # noqa: E402

measurement("memreranker", about="MemReranker's pairwise-to-pointwise labels on TB-RANK (300 "
            "queries × 20 candidates, three simulated position-biased judges): the least noisy "
            "judge's hard labels (an oracle choice) and the judges' majority-vote hard labels "
            "vs Bradley-Terry soft labels vs soft labels + InfoNCE, MLP and linear "
            "students, test MAP / nDCG@5 / ECE, 3 seeds", ci="quick", minutes=0.25)(measure)
