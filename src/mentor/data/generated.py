"""Teacher-labeled generated inputs as extra training data (HarmAug, METHODS.md §2).

A generator proposes new inputs; they join the training split as unlabeled rows, so the
teacher's outputs are their only supervision (every distillation objective that reads all
rows learns from them; the supervised term never sees them).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..errors import DataError
from .splits import Splits, append_unlabeled


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
