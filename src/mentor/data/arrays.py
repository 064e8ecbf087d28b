"""In-memory arrays of a classification data set, validated once on load."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError


@dataclass(frozen=True)
class ArrayData:
    """Features ``x`` (N, ...) float32 and labels ``y`` (N,) int64 in ``[0, num_classes)``.

    ``input_shape`` is the shape of one sample as models should see it (``(8, 8)`` for the
    digits images, ``(40,)`` for MNIST-1D); ``x`` is stored flat as ``(N, prod(input_shape))``.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    num_classes: int
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...] = ()


def validate_arrays(name: str, x, y, *, num_classes: int | None = None,
                    input_shape: tuple[int, ...] | None = None,
                    class_names: tuple[str, ...] = (), where: str | None = None) -> ArrayData:
    """Check shapes, finiteness and label range; return an :class:`ArrayData`.

    Every failure is one :class:`DataError` sentence naming the field, the value and what is
    expected; it starts with ``where`` (default: ``name``), e.g. ``data.source 'x.npz'``.
    """
    label = name
    name = where or name
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim < 2:
        raise DataError(f"{name}: x must have shape (samples, features...), got shape {x.shape}")
    if len(x) == 0:
        raise DataError(f"{name}: the data set is empty (0 samples); expected at least one "
                        "sample per class")
    if y.ndim != 1:
        raise DataError(f"{name}: y must be one label per sample, got shape {y.shape}")
    if len(y) != len(x):
        raise DataError(f"{name}: x has {len(x)} samples but y has {len(y)}; expected the same")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{name}: x must be real numbers, got dtype {x.dtype}")
    flat = x.reshape(len(x), -1).astype(np.float32)
    bad = ~np.isfinite(flat)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise DataError(f"{name}: x has {int(bad.sum())} NaN or infinite values (first at row "
                        f"{row}, feature {col}); expected finite numbers")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            i = int(np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))[0])
            raise DataError(f"{name}: label {float(y[i])!r} at row {i} is not a whole number; "
                            "expected class indices 0, 1, ...")
    elif not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{name}: y must be integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    nc_field = "num_classes" if num_classes is None else "data.num_classes"
    if num_classes is None:
        if y.min() < 0:
            i = int(np.argmin(y))
            raise DataError(f"{name}: label {int(y[i])} at row {i} is negative; expected class "
                            "indices 0, 1, ...")
        num_classes = int(y.max()) + 1
    bad_label = (y < 0) | (y >= num_classes)
    if bad_label.any():
        i = int(np.flatnonzero(bad_label)[0])
        raise DataError(f"{name}: label {int(y[i])} at row {i} is outside [0, {num_classes}); "
                        f"expected class indices below {nc_field}={num_classes}")
    present = np.unique(y)
    if len(present) < 2:
        raise DataError(f"{name}: all {len(y)} samples have label {int(present[0])}; expected "
                        "at least 2 classes")
    shape = tuple(input_shape) if input_shape else tuple(x.shape[1:])
    if int(np.prod(shape)) != flat.shape[1]:
        raise DataError(f"{name}: input_shape {shape} does not hold {flat.shape[1]} features")
    return ArrayData(label, flat, y, int(num_classes), shape, tuple(class_names))
