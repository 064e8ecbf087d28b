"""Where a ``task: tagging`` recipe's rows come from (:func:`tagging_splits`): the generated
testbed ``tb-seq-tagging`` or a ``.npz`` file of token ids and tags."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..data.splits import Split, Splits
from ..errors import DataError
from ..tasks.tagging import PAD, check_tag_ids
from .splits import as_splits
from .testbed import tb_seq_tagging

if TYPE_CHECKING:
    from ..recipe import DataSpec

TESTBED = "tb-seq-tagging"
TESTBED_SEQUENCES = 3000
# DataSpec fields a tagging source reads; any other field set in a recipe is refused
READS = {"source", "val_fraction", "test_fraction", "labeled_fraction", "split_seed",
         "num_classes"}


def _refuse_other_fields(spec: "DataSpec") -> None:
    defaults = type(spec).model_fields
    for name, field in defaults.items():
        if name in READS or name == "labeled_sampling":
            continue
        if getattr(spec, name) != field.default:
            raise DataError(f"data.{name} is set for task: tagging; expected only "
                            f"{', '.join('data.' + f for f in sorted(READS))} (a tagging "
                            "source is token ids and tags)")


def tagging_splits(spec: "DataSpec") -> Splits:
    """The splits of a tagging recipe's ``data`` section.

    ``tb-seq-tagging``: TB-SEQ tagging (:func:`mentor.tagging.tb_seq_tagging`, 3,000
    sequences drawn with ``split_seed``, its own 60/20/20 split); ``labeled_fraction`` of the
    training sequences keep their tags, the others are the unlabeled (weakly tagged) pool.

    A ``.npz`` file: arrays ``tokens`` (sequences, length) of token ids, ``0`` padding the
    end of a row, and ``tags`` of the same shape, a tag id per real token (BIO: ``0`` is O,
    ``2k+1`` B-k, ``2k+2`` I-k) or ``-1`` where unknown (such a row is unlabeled); a tag on a
    padding position is ignored. Rows are split at random (``split_seed``) by
    ``val_fraction`` / ``test_fraction``; ``labeled_fraction`` of the remaining fully tagged
    rows are labeled. ``num_classes`` is the tag count (default: the largest tag + 1)."""
    _refuse_other_fields(spec)
    if spec.source == TESTBED:
        data = tb_seq_tagging(TESTBED_SEQUENCES, seed=spec.split_seed,
                              strong_fraction=spec.labeled_fraction)
        if spec.num_classes is not None and spec.num_classes != data.num_tags:
            raise DataError(f"data.num_classes is {spec.num_classes} but {TESTBED} has "
                            f"{data.num_tags} tags; expected it unset or {data.num_tags}")
        return as_splits(data)
    path = Path(spec.source)
    if path.suffix != ".npz":
        raise DataError(f"data.source {spec.source!r} is not a tagging source; expected "
                        f"{TESTBED!r} or a .npz file with arrays 'tokens' and 'tags'")
    return npz_splits(path, spec)


def _load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(f"data.source {str(path)!r} does not exist; expected a .npz file")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("tokens", "tags") if k not in z.files]
            if missing:
                raise DataError(f"data.source {str(path)!r} has no array {missing[0]!r}; "
                                "expected arrays 'tokens' and 'tags'")
            tokens, tags = z["tokens"], z["tags"]
    except DataError:
        raise
    except (OSError, ValueError) as e:
        raise DataError(f"data.source {str(path)!r} cannot be read as .npz ({e}); expected "
                        "a NumPy .npz file") from None
    for name, a in (("tokens", tokens), ("tags", tags)):
        if a.ndim != 2 or not np.issubdtype(a.dtype, np.integer):
            raise DataError(f"data.source {str(path)!r}: {name} has shape {a.shape} and "
                            f"dtype {a.dtype}; expected a 2-D integer array "
                            "(sequences, length)")
    return tokens, tags


def npz_splits(path: Path, spec: "DataSpec") -> Splits:
    """Splits of a ``.npz`` file of ``tokens`` and ``tags`` (:func:`tagging_splits`)."""
    tokens, tags = _load(path)
    x = torch.from_numpy(tokens.astype(np.int64))
    if bool((x < 0).any()):
        r, c = (int(v) for v in (x < 0).nonzero()[0])
        raise DataError(f"data.source {str(path)!r}: tokens row {r}, position {c} is "
                        f"{int(x[r, c])}; expected token ids >= 0 (0 pads)")
    real = x != 0
    lengths = real.sum(1)
    if bool((lengths == 0).any()):
        raise DataError(f"data.source {str(path)!r}: row {int((lengths == 0).nonzero()[0])} "
                        "has no token; expected at least one token id > 0 per row")
    if not torch.equal(real, torch.arange(x.shape[1]) < lengths[:, None]):
        r = int((real != (torch.arange(x.shape[1]) < lengths[:, None])).any(1).nonzero()[0])
        raise DataError(f"data.source {str(path)!r}: row {r} has padding (0) before a token; "
                        "expected the tokens first, then padding")
    y = torch.from_numpy(tags.astype(np.int64))
    if y.shape != x.shape:
        raise DataError(f"data.source {str(path)!r}: tags have shape {tuple(y.shape)} but "
                        f"tokens {tuple(x.shape)}; expected one tag per token")
    y = torch.where(real, y, torch.full_like(y, PAD))
    top = int(y.max()) + 1 if bool((y >= 0).any()) else 1
    num_tags = spec.num_classes if spec.num_classes is not None else top
    if num_tags < 3 or num_tags % 2 == 0:
        raise DataError(f"data.source {str(path)!r}: {num_tags} tags; expected an odd number "
                        ">= 3 (O, then B- and I- of each entity type)")
    check_tag_ids(y, x, num_tags, f"data.source {str(path)!r}: tags")
    return _split(x, y, num_tags, spec, path)


def _split(x, y, num_tags: int, spec: "DataSpec", path: Path) -> Splits:
    n = len(x)
    rng = np.random.default_rng(spec.split_seed)
    perm = torch.from_numpy(rng.permutation(n))
    n_val, n_test = int(round(spec.val_fraction * n)), int(round(spec.test_fraction * n))
    val, test, train = perm[:n_val], perm[n_val:n_val + n_test], perm[n_val + n_test:]
    tagged = (y[train] != -1).all(1)
    for name, ids in (("validation", val), ("test", test)):
        if len(ids) == 0 or not bool((y[ids] != -1).all()):
            raise DataError(f"data.source {str(path)!r}: the {name} split has "
                            f"{len(ids)} rows{'' if len(ids) == 0 else ', some untagged'}; "
                            "expected fully tagged rows (fewer untagged rows or other "
                            "fractions)")
    candidates = tagged.nonzero()[:, 0]
    if len(candidates) == 0:
        raise DataError(f"data.source {str(path)!r}: no training row is fully tagged; "
                        "expected some labeled rows")
    k = max(1, int(round(spec.labeled_fraction * len(candidates))))
    labeled = torch.zeros(len(train), dtype=torch.bool)
    labeled[candidates[torch.from_numpy(rng.permutation(len(candidates))[:k])]] = True

    def part(ids, flags=None) -> Split:
        return Split(x[ids], y[ids], torch.ones(len(ids), dtype=torch.bool)
                     if flags is None else flags)
    return Splits(path.stem, part(train, labeled), part(val), part(test), num_tags,
                  (int(x.shape[1]),), seed=spec.split_seed, vocab_size=int(x.max()) + 1)
