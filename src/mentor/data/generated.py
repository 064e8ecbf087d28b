"""Teacher-labeled generated inputs as extra training data (HarmAug, METHODS.md §2).

A generator proposes new inputs; they join the training split as unlabeled rows, so the
teacher's outputs are their only supervision (every distillation objective that reads all
rows learns from them; the supervised term never sees them).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np
import torch

from ..errors import DataError
from .splits import Split, Splits


def with_generated(splits: Splits, generator: Callable[[int, np.random.Generator], object],
                   n: int, seed: int = 0, *, raw: bool = True) -> Splits:
    """``splits`` with ``n`` generated inputs appended to train as unlabeled rows.

    ``generator(n, rng)`` returns ``n`` inputs (array or tensor ``(n, ...)``); with
    ``raw=True`` they are standardized like the original data. Their label is ``-1``
    (unknown): only the teacher labels them.
    """
    if n < 1:
        raise DataError(f"generated.n must be >= 1, got {n}")
    x = generator(int(n), np.random.default_rng(seed))
    x = x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)
    if len(x) != n:
        raise DataError(f"the generator returned {len(x)} inputs; expected {n}")
    return append_unlabeled(splits, x, raw=raw, what="the generator returned inputs")


def append_unlabeled(splits: Splits, x: np.ndarray, *, raw: bool = True,
                     kind: str = "generated", what: str = "unlabeled rows") -> Splits:
    """``splits`` with the rows of ``x`` ``(n, ...)`` appended to train as unlabeled rows of
    unknown label (``-1``), standardized like the data when ``raw``; ``kind`` names them in
    :meth:`Splits.describe`, ``what`` in the errors (rows that are not ``in_features`` finite
    real numbers each)."""
    flat = x.reshape(len(x), -1)
    if flat.shape[1] != splits.in_features:
        raise DataError(f"{what} with {flat.shape[1]} features; expected "
                        f"{splits.in_features} like the data")
    if not np.issubdtype(flat.dtype, np.number) or not np.isfinite(flat).all():
        raise DataError(f"{what} with NaN or infinite values or non-numbers; expected finite "
                        "numbers")
    flat = flat.astype(np.float32)
    n = len(flat)
    new_x = splits.standardize(flat) if raw else torch.as_tensor(flat, dtype=torch.float32)
    t = splits.train
    weak = (None if t.weak_y is None
            else torch.cat([t.weak_y, torch.full((n,), -1, dtype=t.weak_y.dtype)]))
    train = Split(torch.cat([t.x, new_x]),
                  torch.cat([t.y, torch.full((n,), -1, dtype=t.y.dtype)]),
                  torch.cat([t.labeled, torch.zeros(n, dtype=torch.bool)]), weak_y=weak)
    return replace(splits, train=train, unknown_rows=kind)
