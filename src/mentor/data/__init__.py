"""Data: embedded data sets by name, user files (.npz, .csv), stratified splits."""

from . import augment  # noqa: F401  (registers shift, flip, noise, mask, cutout, scale)
from .arrays import ArrayData, validate_arrays
from .generated import with_generated
from .sources import load_source
from .splits import Split, Splits, make_splits

__all__ = ["ArrayData", "Split", "Splits", "load_source", "make_splits", "validate_arrays",
           "load", "with_generated"]


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
