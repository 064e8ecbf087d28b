"""SPL, sub-pseudo labels (METHODS.md §13), on digits: 30 % of the training labels replaced
by the confusable next digit ((y + 1) mod 10); a teacher MLP 64-32-10 trained on those weak
labels; ``SubPseudoLabels`` (n_min 5) maps (weak label, teacher class) pairs to classes of
their own. Then the paper's use: students 64-h-K pre-trained with cross-entropy (40 epochs,
last epoch) on the weak labels, on the teacher's labels, or on the SPL ids (K = 10 + kept
pairs), and a logistic-regression probe (standardized features, clean training labels) on
their h hidden units, scored on the test split; h 8 / 16 / 32, 3 seeds.

:func:`weak_setup` is what ``tests/methods/test_sub_pseudo_labels.py`` asserts on.
Figures: docs/methods.md's row "13 SPL".
"""

from __future__ import annotations

import torch
from torch import nn

from ._fmt import pm, verdict

WIDTHS = (8, 16, 32)
SEEDS = (0, 1, 2)
KINDS = ("weak", "teacher", "spl")


def weak_setup(splits, teacher_epochs: int = 40) -> dict:
    """Weak labels, the teacher's predictions on the training rows and the fitted SPL map."""
    from mentor.data.splits import Split
    from mentor.engine import fit
    from mentor.methods import get_method
    from mentor.recipe import TrainSpec
    from mentor.targets import SubPseudoLabels
    y = splits.train.y
    g = torch.Generator().manual_seed(1)
    weak = torch.where(torch.rand(len(y), generator=g) < 0.3, (y + 1) % 10, y)
    torch.manual_seed(100)
    net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    every = torch.ones(len(weak), dtype=torch.bool)
    teacher = fit(net, Split(splits.train.x, weak, every), splits.val,
                  objectives=get_method("scratch").plan().objectives, seed=100, num_outputs=10,
                  spec=TrainSpec(epochs=teacher_epochs, batch_size=64, lr=3e-3,
                                 select="last")).model
    with torch.no_grad():
        pred = teacher(splits.train.x).argmax(-1)
    spl = SubPseudoLabels.fit(weak, pred, 10, min_count=5)
    return {"weak": weak, "pred": pred, "spl": spl}


def probe_accuracy(splits, labels: torch.Tensor, num_classes: int, width: int, seed: int,
                   epochs: int = 40) -> float:
    """Pre-train MLP 64-width-num_classes on ``labels`` (every training row), then fit a
    logistic-regression probe on its hidden units with the clean labels; test accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mentor.data.splits import Split
    from mentor.engine import fit
    from mentor.methods import get_method
    from mentor.recipe import TrainSpec
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, num_classes))
    every = torch.ones(len(labels), dtype=torch.bool)
    model = fit(net, Split(splits.train.x, labels, every), splits.val,
                objectives=get_method("scratch").plan().objectives, seed=seed,
                num_outputs=num_classes,
                spec=TrainSpec(epochs=epochs, batch_size=64, lr=3e-3, select="last")).model
    with torch.no_grad():
        f_train = model[:2](splits.train.x).numpy()
        f_test = model[:2](splits.test.x).numpy()
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    probe.fit(f_train, splits.train.y.numpy())
    return float(probe.score(f_test, splits.test.y.numpy()))


def measure(quick: bool) -> dict[str, str]:
    import mentor
    s = mentor.load_data("digits")
    setup = weak_setup(s, teacher_epochs=2 if quick else 40)
    spl, weak, pred = setup["spl"], setup["weak"], setup["pred"]
    moved = spl(weak, pred) >= 10
    flipped = weak != s.train.y

    def share(mask: torch.Tensor) -> str:
        return f"{100 * float(mask.float().mean()):.0f} %" if len(mask) else "0 %"
    out = {"pairs": str(len(spl.pairs)), "moved": f"{int(moved.sum()):,}",
           "moved_flipped": share(flipped[moved]),
           "moved_teacher_right": share(s.train.y[moved] == pred[moved]),
           "flipped": share(flipped)}
    labels = {"weak": (weak, 10), "teacher": (pred, 10), "spl": (spl(weak, pred), spl.num_classes)}
    seeds, epochs = ((0,), 2) if quick else (SEEDS, 40)
    for h in WIDTHS:
        accs = {k: [probe_accuracy(s, *labels[k], h, sd, epochs) for sd in seeds] for k in KINDS}
        for k in KINDS:
            out[f"h{h}.{k}"] = pm(accs[k])
        out[f"h{h}.spl_vs_weak"] = verdict(accs["spl"], accs["weak"])
        out[f"h{h}.spl_vs_teacher"] = verdict(accs["spl"], accs["teacher"])
    return out


from . import measurement  # noqa: E402

measurement("spl", about="SPL on digits with 30 % next-digit label noise: the kept pairs and "
            "moved rows; probe accuracy after pre-training on weak / teacher / SPL labels "
            "(h 8, 16, 32; 3 seeds)", ci="quick", minutes=0.5)(measure)
