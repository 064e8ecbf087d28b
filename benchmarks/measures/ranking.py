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

Label scarcity (added 2026-12-08; the protocol below was written before any figure of
these settings was seen). At 180 training queries the testbed is saturated: every arm is
within 0.01 nDCG@5 of the gold labels. The paper's setting is a student trained on a limited
amount of judge-labelled data, so the same arms (``hard``, ``majority``, ``soft``, ``gold``;
MLP student, the same hyperparameters, no tuning per size) are trained with only ``n`` of the
180 training queries (:meth:`mentor.ranking.RankingData.with_train_queries`: the first ``n``
of a permutation drawn from the seed, nested across sizes; the soft labels' calibration is
fitted on those ``n`` queries only; validation, 60 gold-graded queries for early stopping,
and test, 60 queries, unchanged -- a validation set that large is generous to a label-scarce
setting, and it is the same for every arm). Sizes ``n`` = 10 / 20 / 40 / 80, fixed in
advance; 180 is the figures above. No setting is selected: every size is reported on test
(a curve), measured once.

- ``scarce.q{n}.*``: a new testbed per seed, as above (seeds 0/1/2 draw the testbed, the
  kept queries, the judges' reading errors and the initial weights);
- ``paired.q{n}.*`` (also ``n`` = 180): a disclosed second view, one testbed (seed 0, its
  kept queries drawn with seed 0) for every seed; seeds 0/1/2 draw only the judges'
  reading errors and the student's initial weights. It asks whether the per-seed spread
  above is mostly the testbed draw; it speaks for one testbed, not across testbeds, and its
  seed 0 is the main view's seed 0 (the same testbed, judges and weights).

Keys: ``{view}.q{n}.{arm}.ndcg``: test nDCG@5 mean ± population std (per seed);
``{view}.q{n}.soft_vs_majority.ndcg`` and ``.soft_vs_hard.ndcg``: the verdict by the rule
with the per-seed wins (:func:`_fmt.claim`). Reading rule, fixed in advance: "soft labels
beat hard labels where labels are scarce" counts as shown only if ``soft_vs_majority`` (the
paper's ablation: hard labels from the same judges) is separated, higher, in the main view
at both of the two smallest sizes (10 and 20 queries); a separation at one size alone is
reported as that, not as a general finding; the paired view cannot by itself show the claim.

Figures: docs/methods.md's row "25 MemReranker".
"""

from __future__ import annotations

from ._fmt import claim, mean_std, verdict, wins
from ._run import one_torch_thread

SEEDS = (0, 1, 2)
ARMS = ("hard", "majority", "soft", "soft_nce", "gold")
SCARCE_ARMS = ("hard", "majority", "soft", "gold")
SIZES = (10, 20, 40, 80)  # training queries of the label-scarce curve, fixed in advance
FULL = 180  # the testbed's training queries (the figures of ``run``)


def _v(values: list[float]) -> str:
    m, s = mean_std(values)
    return f"{m:.3f} ± {s:.3f}"


def _per_seed(values: list[float]) -> str:
    return " / ".join(f"{v:.3f}" for v in values)


def _labels(data, judges) -> dict:
    """The arms' training labels for ``data`` (soft labels calibrated on its training
    queries)."""
    from mentor.ranking import soft_labels
    return {"hard": judges.hard_labels(0), "majority": judges.majority_labels(),
            "soft": soft_labels(data, judges).labels, "gold": data.binary().float()}


def run(seed: int, epochs: int) -> dict[str, dict[str, float]]:
    """The five arms with the MLP student and hard / soft / gold with the linear one, on
    the testbed of ``seed``."""
    from mentor.ranking import SimulatedTeachers, tb_rank, train_scorer
    data = tb_rank(seed=seed)
    labels = _labels(data, SimulatedTeachers(data, seed=seed))
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


def run_scarce(testbed_seed: int, seed: int, sizes, epochs: int) -> dict[str, float]:
    """Test nDCG@5 of the label-scarce arms (MLP student) at each training-set size:
    ``{"q{n}.{arm}": value}``. ``testbed_seed`` draws the testbed and the kept training
    queries, ``seed`` the judges' reading errors and the student's initial weights."""
    from mentor.ranking import SimulatedTeachers, tb_rank, train_scorer
    full = tb_rank(seed=testbed_seed)
    judges = SimulatedTeachers(full, seed=seed)
    out = {}
    for n in sizes:
        data = full.with_train_queries(n, seed=testbed_seed)
        labels = _labels(data, judges)
        for arm in SCARCE_ARMS:
            r = train_scorer(data, labels[arm], hidden=32, lr=0.01, epochs=epochs, seed=seed)
            out[f"q{n}.{arm}"] = r.test_ndcg
    return out


def _curve(view: str, runs: list[dict[str, float]], sizes) -> dict[str, str]:
    out = {}
    for n in sizes:
        def vals(arm: str) -> list[float]:
            return [r[f"q{n}.{arm}"] for r in runs]
        for arm in SCARCE_ARMS:
            out[f"{view}.q{n}.{arm}.ndcg"] = f"{_v(vals(arm))} ({_per_seed(vals(arm))})"
        for base in ("majority", "hard"):
            out[f"{view}.q{n}.soft_vs_{base}.ndcg"] = claim(vals("soft"), vals(base))
    return out


def measure(quick: bool) -> dict[str, str]:
    from mentor.ranking import tb_rank
    seeds, epochs = ((0,), 20) if quick else (SEEDS, 200)
    with one_torch_thread():
        runs = [run(s, epochs) for s in seeds]
        scarce = [run_scarce(s, s, SIZES, epochs) for s in seeds]
        paired = [scarce[0] if s == 0 else run_scarce(0, s, SIZES, epochs) for s in seeds]
        for s, r in zip(seeds, paired):  # the full size on the one testbed
            r.update(run_scarce(0, s, (FULL,), epochs))

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
    out.update(_curve("scarce", scarce, SIZES))
    out.update(_curve("paired", paired, SIZES + (FULL,)))
    return out


from . import measurement  # noqa: E402

measurement("memreranker", about="MemReranker's pairwise-to-pointwise labels on TB-RANK (300 "
            "queries × 20 candidates, three simulated position-biased judges): the least noisy "
            "judge's hard labels (an oracle choice) and the judges' majority-vote hard labels "
            "vs Bradley-Terry soft labels vs soft labels + InfoNCE, MLP and linear "
            "students, test MAP / nDCG@5 / ECE, 3 seeds; and a curve over 10 / 20 / 40 / 80 "
            "training queries (label scarcity), also on one testbed with the judges and "
            "weights varying", ci="quick", minutes=1.0)(measure)
