"""The testbed of mentor.vl: scikit-learn's 8 x 8 digits (embedded, no download), split into
a part the tiny CLIP teacher is trained on and a disjoint part for the student
(train / validation / test, a few labels per class in train) [reconstruction of the
protocol: METHODS.md §50, §51, §54, §56 CPU experiments on TB-DIGITS]."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._util.args import non_negative_int, positive_int
from ..errors import MentorError


@dataclass
class VLDigits:
    """``clip_x``/``clip_y``: the teacher's training rows; ``splits``: the student's
    :class:`mentor.data.Splits` (rows in [0, 1], not standardized), disjoint from them."""

    clip_x: Tensor
    clip_y: Tensor
    splits: object

    def describe(self) -> str:
        return f"digits 8x8: teacher rows {len(self.clip_x)}; student {self.splits.describe()}"


def vl_digits(seed: int = 0, *, clip_rows: int = 400, val_rows: int = 100,
              test_rows: int = 400, labels_per_class: int | None = 1) -> VLDigits:
    """Shuffle the 1,797 digits with ``seed``; the first ``clip_rows`` train the teacher,
    then ``test_rows`` test and ``val_rows`` validation rows (labeled), and the rest is the
    student's training pool of which ``labels_per_class`` rows per class are labeled
    (``None``: every row)."""
    from sklearn.datasets import load_digits
    from ..data import from_arrays
    positive_int("vl_digits clip_rows", clip_rows)
    positive_int("vl_digits val_rows", val_rows)
    positive_int("vl_digits test_rows", test_rows)
    if labels_per_class is not None:
        non_negative_int("vl_digits labels_per_class", labels_per_class)
    x, y = load_digits(return_X_y=True)
    if clip_rows + val_rows + test_rows >= len(x):
        raise MentorError(f"vl_digits takes {clip_rows + val_rows + test_rows} rows for the "
                          f"teacher, validation and test; expected fewer than {len(x)}")
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = (x[order] / 16.0).astype(np.float32), y[order].astype(np.int64)
    clip_x, clip_y = x[:clip_rows], y[:clip_rows]
    rest_x, rest_y = x[clip_rows:], y[clip_rows:]
    part = np.array(["test"] * test_rows + ["val"] * val_rows
                    + ["pool"] * (len(rest_x) - test_rows - val_rows), dtype="<U5")
    pool = np.flatnonzero(part == "pool")
    labeled = np.concatenate([pool[rest_y[pool] == c][:labels_per_class] for c in range(10)])
    if len(labeled) == len(pool):  # every row labeled: keep the pool's order
        labeled = pool
    keep = part != "pool"
    keep[labeled] = True
    part[labeled] = "train"
    unlabeled = np.setdiff1d(pool, labeled)
    splits = from_arrays(rest_x[keep], rest_y[keep],
                         unlabeled=rest_x[unlabeled] if len(unlabeled) else None,
                         name="vl-digits", split=part[keep], standardize=False,
                         input_shape=(64,))
    return VLDigits(torch.from_numpy(clip_x), torch.from_numpy(clip_y), splits)
