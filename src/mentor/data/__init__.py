"""Data: embedded data sets by name, user files (.npz, .csv), stratified splits."""

import numpy as np
import torch

from . import augment  # noqa: F401  (registers shift, flip, noise, mask, cutout, scale)
from ..errors import DataError
from .arrays import ArrayData, validate_arrays
from .generated import append_unlabeled, with_generated
from .sources import load_source
from .splits import Split, Splits, make_splits

__all__ = ["ArrayData", "Split", "Splits", "from_arrays", "load_source", "make_splits",
           "validate_arrays", "load", "with_generated"]


def load(source: str, *, val_fraction: float = 0.2, test_fraction: float = 0.2,
         labeled_fraction: float = 1.0, split_seed: int = 0, standardize: bool = True,
         target: str | None = None, num_classes: int | None = None,
         labeled_sampling: str = "per_class", weak_noise: float | None = None,
         weak_flip: str = "uniform") -> Splits:
    """Load a data set by name or path and split it (train / validation / test).

    >>> splits = load("iris")
    >>> splits.num_classes, splits.train.x.shape[1]
    (3, 4)
    """
    data = load_source(source, target=target, num_classes=num_classes)
    return make_splits(data, val_fraction=val_fraction, test_fraction=test_fraction,
                       labeled_fraction=labeled_fraction, seed=split_seed,
                       standardize=standardize, labeled_sampling=labeled_sampling,
                       weak_noise=weak_noise, weak_flip=weak_flip)


def from_arrays(x, y, *, unlabeled=None, name: str = "arrays", num_classes: int | None = None,
                input_shape: tuple[int, ...] | None = None, class_names=(),
                val_fraction: float = 0.2, test_fraction: float = 0.2, split_seed: int = 0,
                standardize: bool = True) -> Splits:
    """Your own arrays as :class:`Splits`: labeled rows ``x`` (N, ...) with class indices
    ``y`` (N,), split stratified into train / validation / test, plus optional
    ``unlabeled`` rows (M, ...) that join the training split without a label (what
    semi-supervised methods and a teacher's soft labels learn from). NumPy arrays or tensors;
    features are standardized with the training rows' statistics.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(60, 5)), np.repeat([0, 1, 2], 20)
    >>> splits = from_arrays(x, y, unlabeled=rng.normal(size=(100, 5)))
    >>> splits.describe()
    'arrays: train 136 (36 labeled, 100 unlabeled), val 12, test 12, 3 classes'
    """
    def arr(v):
        return v.detach().cpu().numpy() if torch.is_tensor(v) else np.asarray(v)

    data = validate_arrays(name, arr(x), arr(y), num_classes=num_classes,
                           input_shape=input_shape, class_names=tuple(class_names))
    splits = make_splits(data, val_fraction=val_fraction, test_fraction=test_fraction,
                         seed=split_seed, standardize=standardize)
    if unlabeled is None:
        return splits
    u = arr(unlabeled)
    if u.ndim < 2 or len(u) == 0:
        raise DataError(f"{name}: unlabeled must have shape (rows, features...) with at least "
                        f"one row, got shape {u.shape}")
    return append_unlabeled(splits, u, raw=True, kind="unlabeled",
                            what=f"{name}: unlabeled has rows")
