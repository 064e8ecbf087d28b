"""Every semi-supervised preset against supervised training on the same views.

Reruns the setup of ``tests/methods/test_ssl_engine.py::
test_presets_beat_supervised_training_on_the_same_views_with_5_percent_labels`` (the test
imports :func:`accuracy` and runs seed 0): digits with 5 % of the training labels (54
images, the fixed split of split seed 0), raw pixels read as 8x8 images, the ``ssl``
recipe's CNN (channels 16-32, flatten, 64 hidden), 40 epochs of 16 labeled + 7 x 16
unlabeled rows, Adam 3e-3, weight decay 5e-4, the ``ssl`` recipe's weak/strong views, the
epoch with the best validation accuracy kept; seeds 0, 1, 2 (the seed changes the
initialisation, the batches and the views, not the split). The baseline ``scratch`` trains
its labeled rows on the presets' weak view for as many steps (the engine's rule,
:mod:`mentor.engine.views`). Figures: each method's test accuracy (mean ± std) and the
project's verdict against ``scratch`` (:func:`._fmt.verdict`) with per-seed wins, as a
table; how many presets separate above ``scratch`` and the range of their means.
"""

from __future__ import annotations

import statistics
from functools import lru_cache

from . import measurement
from ._fmt import pm, verdict, wins

PRESETS = ["pseudo-label", "mean-teacher", "fixmatch", "flexmatch", "freematch", "softmatch",
           "gmm-teacher", "soft-teacher", "noisy-student", "bcp", "psmt", "future-teacher",
           "dual-mean-teacher"]
PARAMS = {"fixmatch": {"threshold": 0.8}}  # the ssl recipe's FixMatch threshold
SEEDS = (0, 1, 2)
EPOCHS = 40
VIEWS = {"weak": [{"name": "affine", "degrees": 10, "scale": 0.1, "translate": 0.15}],
         "strong": [{"name": "affine", "degrees": 15, "scale": 0.15, "translate": 0.25},
                    {"name": "cutout", "size": 0.5}]}


@lru_cache(maxsize=1)
def digits5():
    """Digits, 5 % of the training labels, raw pixels (split seed 0)."""
    import mentor
    return mentor.load_data("digits", labeled_fraction=0.05, standardize=False)


def accuracy(name: str, seed: int = 0, epochs: int = EPOCHS) -> float:
    """Test accuracy of method ``name`` (a preset, or ``scratch``) trained in this setup."""
    import torch

    from mentor.engine.evaluate import evaluate
    from mentor.methods import get_method
    from mentor.models import build_model
    from mentor.recipe import TrainSpec
    sp = digits5()
    plan = get_method(name).plan(**PARAMS.get(name, {}))
    torch.manual_seed(seed)
    net = build_model("cnn", sp.input_shape, sp.num_classes, channels=[16, 32],
                      pool="flatten", hidden=[64])
    spec = TrainSpec(epochs=epochs, batch_size=16, lr=3e-3, weight_decay=5e-4,
                     unlabeled_ratio=7, augment=VIEWS, collapse_steps=0)
    res = plan.fit(net, sp.train, sp.val, spec=spec, seed=seed, num_outputs=sp.num_classes,
                   input_shape=sp.input_shape)
    return evaluate(res.model, sp.test.x, sp.test.y)["accuracy"]


QUOTED = ("dual-mean-teacher", "mean-teacher", "bcp", "psmt")  # presets methods.md quotes


def figures(acc: dict[str, list[float]]) -> dict[str, str]:
    """The docs' figures from ``{method: [test accuracy per seed]}``."""
    base = acc["scratch"]
    means = {m: statistics.fmean(acc[m]) for m in PRESETS}
    said = {m: verdict(acc[m], base) for m in PRESETS}
    rows = ["| method | test accuracy (mean ± std over the seeds) | against `scratch` "
            "(project's rule; seeds above it) |", "|---|---|---|"]
    for m in sorted(PRESETS, key=lambda m: -means[m]):
        rows.append(f"| `{m}` | {pm(acc[m])} | {said[m]} ({wins(acc[m], base)}) |")
    rows.append(f"| `scratch` (labels only, same steps and weak view) | {pm(base)} | — |")
    higher = [m for m in PRESETS if said[m] == "higher"]
    out = {"table": "\n".join(rows), "scratch": pm(base),
           "presets.higher": f"{len(higher)} of {len(PRESETS)}",
           "presets.not_higher": ", ".join(f"`{m}`" for m in PRESETS if m not in higher)
           or "none",
           "presets.higher_low": f"{100 * min(means[m] for m in higher or PRESETS):.2f} %",
           "presets.high": f"{100 * max(means.values()):.2f} %"}
    for m in QUOTED:
        out[m] = pm(acc[m])
        out[f"{m}.verdict"] = said[m]
        out[f"{m}.wins"] = wins(acc[m], base)
    out["dual-mean-teacher.vs_mean_teacher"] = verdict(acc["dual-mean-teacher"],
                                                      acc["mean-teacher"])
    return out


@measurement("ssl-presets", about="every semi-supervised preset vs `scratch` on the same "
             "views: digits 5 % labels, raw pixels, CNN 16-32 flatten 64, 40 epochs, seeds "
             "0-2 (the setup of test_presets_beat_supervised_training_on_the_same_views_with_"
             "5_percent_labels)", ci="quick", minutes=8)
def measure(quick: bool) -> dict[str, str]:
    seeds, epochs = ((0,), 1) if quick else (SEEDS, EPOCHS)
    return figures({m: [accuracy(m, s, epochs) for s in seeds] for m in ["scratch", *PRESETS]})
