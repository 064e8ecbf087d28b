"""FST (METHODS.md §5, Learning from Future): reruns the setup of ``tests/methods/
test_ssl_engine.py::test_future_teacher_labels_more_rows_correctly_at_matched_steps`` (the
test imports :func:`histories`).

Digits with 5 % labels, raw pixels as 8x8 images, an MLP (64 hidden), 10 epochs of 16
labeled + 7 x 16 unlabeled rows, the ``ssl`` recipe's views; the preset ``future-teacher``
(EMA decay 0.99, 3 virtual steps before each real one) against the same preset whose teacher
is a plain EMA (decay 0.99, warm-up): the same number of real steps. Seeds 0-2. Figures:
correct pseudo-labels admitted per epoch (coverage x precision, summed over the epochs) and
their ratio, the mean coverage over the epochs, the lowest precision, and test accuracy.
"""

from __future__ import annotations

import statistics

from . import measurement
from ._fmt import num, pm, verdict, wins
from .ssl_presets import VIEWS

SEEDS = (0, 1, 2)
EPOCHS = 10


def _run(plan, seed: int, epochs: int):
    import torch

    from mentor.engine.evaluate import evaluate
    from mentor.models import mlp
    from mentor.recipe import TrainSpec

    from .ssl_presets import digits5
    sp = digits5()
    torch.manual_seed(seed)
    res = plan.fit(mlp(sp.input_shape, 10, hidden=[64]), sp.train, sp.val,
                   spec=TrainSpec(epochs=epochs, batch_size=16, lr=3e-3, weight_decay=5e-4,
                                  unlabeled_ratio=7, augment=VIEWS, collapse_steps=0),
                   seed=seed, num_outputs=10, input_shape=sp.input_shape)
    return res.history, evaluate(res.model, sp.test.x, sp.test.y)["accuracy"]


def histories(seed: int = 0, epochs: int = EPOCHS):
    """``{"fst": (history, test accuracy), "ema": (...)}`` for one seed."""
    from mentor.methods import get_method
    from mentor.updates import EMA
    fst = get_method("future-teacher").plan(decay=0.99)
    plain = get_method("future-teacher").plan(decay=0.99)
    plain.updater = EMA(0.99, warmup=True)
    return {"fst": _run(fst, seed, epochs), "ema": _run(plain, seed, epochs)}


def correct(h: dict) -> float:
    """Correct admitted pseudo-labels per epoch, as a share of the unlabeled pool, summed."""
    return sum(c * p for c, p in zip(h["pl_coverage"], h["pl_precision"]) if p == p)


@measurement("fst", about="FST's future-peek EMA teacher vs a plain EMA teacher at matched "
             "steps: digits 5 % labels, MLP 64, 10 epochs, seeds 0-2", ci="quick",
             minutes=0.5)
def measure(quick: bool) -> dict[str, str]:
    seeds, epochs = ((0,), 1) if quick else (SEEDS, EPOCHS)
    runs = [histories(s, epochs) for s in seeds]
    out = {}
    for arm in ("fst", "ema"):
        hs = [r[arm][0] for r in runs]
        out[f"{arm}.correct"] = num(statistics.fmean(correct(h) for h in hs), 2)
        out[f"{arm}.coverage"] = num(statistics.fmean(
            statistics.fmean(h["pl_coverage"]) for h in hs), 3)
        admitted = [p for h in hs for p in h["pl_precision"] if p == p]  # NaN: none admitted
        out[f"{arm}.precision_min"] = num(min(admitted), 2) if admitted else "—"
        out[f"{arm}.accuracy"] = pm([r[arm][1] for r in runs])
    ratios = [correct(r["fst"][0]) / max(correct(r["ema"][0]), 1e-9) for r in runs]
    out["ratio"] = f"{min(ratios):.1f}–{max(ratios):.1f}×"
    fst_acc, ema_acc = [r["fst"][1] for r in runs], [r["ema"][1] for r in runs]
    out["accuracy.verdict"] = verdict(fst_acc, ema_acc)
    out["accuracy.wins"] = wins(fst_acc, ema_acc)
    return out
