"""`mentor.sklearn.SemiSupervisedClassifier` on digits: FixMatch against the supervised
baseline ``method="scratch"`` (the same network, steps and weak view of the labeled rows).

Reruns the setup of ``tests/unit/test_sklearn_estimator.py::
test_semi_supervised_beats_scratch_on_digits`` (the test imports :func:`digits_few_labels`
and :func:`scores`): a stratified 70/30 train/test split (random_state 0), 10 % of the
training labels kept (125 of 1,257 rows), the estimator's defaults (MLP with 64 hidden
units, standardized features, noise/mask views) and 60 epochs; ``random_state`` 0, 1, 2.
"""

from __future__ import annotations

from functools import lru_cache

from . import measurement
from ._fmt import pm, verdict, wins

SEEDS = (0, 1, 2)
EPOCHS = 60


@lru_cache(maxsize=1)
def digits_few_labels():
    """``(X_train, y_semi, X_test, y_test)``: 70/30 split, 10 % of the training labels
    (stratified), ``-1`` on the other training rows."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y,
                                              random_state=0)
    lab, _ = train_test_split(np.arange(len(y_tr)), train_size=0.1, stratify=y_tr,
                              random_state=0)
    y_semi = np.full_like(y_tr, -1)
    y_semi[lab] = y_tr[lab]
    return X_tr, y_semi, X_te, y_te


def scores(random_state: int = 0, epochs: int = EPOCHS):
    """``(fixmatch, scratch)``: the two fitted estimators' test accuracies, and the
    FixMatch estimator (for its history)."""
    from mentor.sklearn import SemiSupervisedClassifier
    X_tr, y_semi, X_te, y_te = digits_few_labels()
    ssl = SemiSupervisedClassifier(method="fixmatch", epochs=epochs,
                                   random_state=random_state).fit(X_tr, y_semi)
    scratch = SemiSupervisedClassifier(method="scratch", epochs=epochs,
                                       random_state=random_state).fit(X_tr, y_semi)
    return ssl.score(X_te, y_te), scratch.score(X_te, y_te), ssl


@measurement("sklearn-estimator", about="SemiSupervisedClassifier on digits (10 % labels, "
             "60 epochs, random_state 0-2): fixmatch vs scratch on the same views",
             ci="full", minutes=0.5)
def measure(quick: bool) -> dict[str, str]:
    ssl, base = zip(*[scores(s)[:2] for s in SEEDS])
    return {"fixmatch": pm(ssl), "scratch": pm(base), "verdict": verdict(ssl, base),
            "wins": wins(ssl, base), "gain": f"{100 * (sum(ssl) - sum(base)) / len(ssl):.1f}"}
