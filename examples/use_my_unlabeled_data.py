"""Use my unlabeled data: a few labeled rows, many unlabeled ones, one small model.

You have arrays: ``x_labeled``/``y_labeled`` and ``x_unlabeled`` (here the digits images,
with the labels of 200 of them kept and the other 1,597 treated as unlabeled).
``mentor.data.from_arrays`` splits the labeled rows into train / validation / test and adds
the unlabeled rows to the training split; ``mentor.SemiSupervised`` then trains the model
with a semi-supervised method whose teacher is the model itself (here FixMatch: the model's
confident predictions on a weakly augmented view become the labels of a strongly augmented
view). The baseline is the
same model trained on the labeled rows alone, with the same weak view of them and as many
steps (``method="scratch"`` in the semi-supervised regime); both over three seeds, model
selection on validation.
Each epoch records the pseudo-labels' quality where the true labels are known (not here:
your unlabeled rows have none, so only the coverage is recorded).

Run:  python examples/use_my_unlabeled_data.py
"""

import statistics

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

import mentor
from mentor.data import from_arrays

torch.set_num_threads(1)
x, y = load_digits(return_X_y=True)
order = np.random.default_rng(0).permutation(len(x))
labeled, unlabeled = order[:200], order[200:]
# 60 % of the labeled rows are kept for an honest test score; pixels stay raw (0-16) and
# are read as 8x8 images, so the augmentations below can shift and rotate them
splits = from_arrays(x[labeled], y[labeled], unlabeled=x[unlabeled], name="my-digits",
                     input_shape=(8, 8), standardize=False, val_fraction=0.15,
                     test_fraction=0.6)
print(splits.describe())


def model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


# a weak view (small affine) labels each unlabeled image; the model learns that label on a
# strong view (larger affine + cutout); both views are tensor ops, seeded per step
views = {"weak": [{"name": "affine", "degrees": 10, "scale": 0.1, "translate": 0.15}],
         "strong": [{"name": "affine", "degrees": 15, "scale": 0.15, "translate": 0.25},
                    {"name": "cutout", "size": 0.5}]}
# both arms draw the same batches of 16 labeled (+ 7 x 16 unlabeled) rows and see the labeled
# rows through the weak view; only FixMatch uses the unlabeled rows
options = dict(epochs=40, batch_size=16, lr=3e-3, weight_decay=5e-4, unlabeled_ratio=7,
               augment=views)
for name, make in [
    ("labels only", lambda seed: mentor.SemiSupervised(model(), "scratch", seed=seed,
                                                       **options)),
    ("fixmatch", lambda seed: mentor.SemiSupervised(model(), "fixmatch", seed=seed,
                                                    threshold=0.8, **options)),
]:
    accs = []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        learner = make(seed)
        learner.fit(splits)
        accs.append(learner.evaluate(splits)["accuracy"])
    print(f"{name:>12}: test accuracy {100 * statistics.fmean(accs):.2f} ± "
          f"{100 * statistics.pstdev(accs):.2f} % (3 seeds, {len(splits.test)} test rows)")
