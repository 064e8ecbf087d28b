"""An image folder as :class:`~mentor.data.splits.Splits`: its files split stratified (or as a
run's split file records), each split's images read by DataLoader workers
(:class:`~mentor.data.rows.DatasetRows` over :class:`~mentor.data.images.ImageFiles`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .images import ImageFiles, channel_stats, list_images, verify_images
from .rows import DatasetRows
from .split_file import choose_rows, row_splits
from .splits import Splits


def image_folder_splits(root: Path, *, image_size: int | tuple[int, int] = 32,
                        channels: int = 3, unlabeled: Path | None = None,
                        val_fraction: float = 0.2, test_fraction: float = 0.2,
                        labeled_fraction: float = 1.0, labeled_sampling: str = "per_class",
                        split_seed: int = 0, standardize: bool = True,
                        split_file: Path | None = None, workers: int = 2) -> Splits:
    """The images of ``root`` (one sub-folder per class; see :mod:`mentor.data.images`) as
    train / validation / test splits of rows decoded by ``workers`` DataLoader processes.
    ``unlabeled``: a folder of images without classes, joined to train as unlabeled rows."""
    if channels not in (1, 3):
        raise DataError(f"data.channels is {channels!r}; expected 1 (grayscale) or 3 (RGB)")
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, int) and 1 <= s <= 4096 for s in size):
        raise DataError(f"data.image_size is {image_size!r}; expected a side in pixels (1 to "
                        "4096) or [height, width]")
    images = list_images(root, unlabeled)
    verify_images(images.paths)
    known = np.flatnonzero(images.labels >= 0)
    y = images.labels[known]
    parts = choose_rows(
        y, known, str(root), split_file=split_file, val_fraction=val_fraction,
        test_fraction=test_fraction, labeled_fraction=labeled_fraction,
        labeled_sampling=labeled_sampling, seed=split_seed)
    mean = std = None
    if standardize:
        mean, std = channel_stats(ImageFiles(images.paths, size, channels), known[parts[0]],
                                  split_seed)
    files = ImageFiles(images.paths, size, channels, mean, std)

    def rows_of(ids: np.ndarray) -> DatasetRows:
        return DatasetRows(torch.utils.data.Subset(files, ids.tolist()), num_workers=workers)

    per_pixel = size[0] * size[1]
    return row_splits(str(root), rows_of, images.labels, known,
                      np.flatnonzero(images.labels < 0), parts,
                      num_classes=len(images.classes), input_shape=(channels, *size),
                      seed=split_seed,
                      mean=None if mean is None else np.repeat(mean, per_pixel),
                      std=None if std is None else np.repeat(std, per_pixel))
