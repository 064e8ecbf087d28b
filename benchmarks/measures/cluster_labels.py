"""Cluster-then-label pseudo-labels (METHODS.md papers 33, 43): reruns the setup of
``tests/methods/test_cluster_labels.py::
test_cluster_then_label_pseudo_labels_train_a_better_student`` (the test imports
:func:`cluster_precision` and :func:`student`).

Digits with 5 % labels; k-means (k 20, seed 0) on the training inputs, each cluster labeled
by its labeled members' majority class. Figures: the pseudo-labels' precision and coverage on
the unlabeled rows (raw pixels, and standardized pixels for contrast), and an MLP student
(32 hidden, 20 epochs, 16 labeled + 7 x 16 unlabeled rows per step) trained on the labels
alone (the same steps and weak view) or with the cluster pseudo-labels on the unlabeled
rows, seeds 0-2, raw pixels.
"""

from __future__ import annotations

from . import measurement
from ._fmt import num, pct, pm, verdict, wins

SEEDS = (0, 1, 2)
K = 20


def digits5(standardize: bool):
    import mentor
    return mentor.load_data("digits", labeled_fraction=0.05, standardize=standardize)


def cluster_precision(sp, k: int = K) -> tuple[float, float]:
    """(precision, coverage) of the cluster-then-label pseudo-labels on the unlabeled rows."""
    from mentor.targets import ClusterLabels
    tr = sp.train
    refiner = ClusterLabels(k=k)
    refiner.bind(tr.labeled, tr.y, sp.num_classes)
    refiner.bind_inputs(tr.x)
    unl = ~tr.labeled
    cls = refiner.cluster_class[refiner.cluster][unl]
    has = cls >= 0
    return float((cls[has] == tr.y[unl][has]).double().mean()), float(has.double().mean())


def student(sp, clustered: bool, seed: int = 0, epochs: int = 20):
    """(test accuracy, history): the labels alone, or with the cluster pseudo-labels."""
    import torch

    from mentor.engine import fit
    from mentor.engine.evaluate import evaluate
    from mentor.methods import get_method
    from mentor.models import mlp
    from mentor.recipe import TrainSpec
    from mentor.targets import ClusterLabels
    base = get_method("fixmatch").plan(threshold=0.0)
    objectives = base.objectives if clustered else base.objectives[:1]
    torch.manual_seed(seed)
    res = fit(mlp(sp.input_shape, 10, hidden=[32]), sp.train, sp.val, objectives=objectives,
              refiners=[ClusterLabels(k=K)] if clustered else [], updater=base.updater,
              spec=TrainSpec(epochs=epochs, batch_size=16, unlabeled_ratio=7, lr=3e-3,
                             collapse_steps=0), seed=seed, num_outputs=10)
    return evaluate(res.model, sp.test.x, sp.test.y)["accuracy"], res.history


@measurement("cluster-labels", about="cluster-then-label pseudo-labels (k-means k 20) on "
             "digits 5 % labels: precision and coverage, MLP student vs the labels alone, "
             "seeds 0-2", ci="quick", minutes=0.5)
def measure(quick: bool) -> dict[str, str]:
    seeds, epochs = ((0,), 1) if quick else (SEEDS, 20)
    raw, std = digits5(False), digits5(True)
    (p_raw, c_raw), (p_std, c_std) = cluster_precision(raw), cluster_precision(std)
    base = [student(raw, False, s, epochs)[0] for s in seeds]
    clus = [student(raw, True, s, epochs)[0] for s in seeds]
    return {"precision.raw": num(p_raw, 3), "coverage.raw": pct(c_raw, 0),
            "precision.standardized": num(p_std, 3), "coverage.standardized": pct(c_std, 0),
            "student.clustered": pm(clus), "student.labels_only": pm(base),
            "student.verdict": verdict(clus, base), "student.wins": wins(clus, base)}
