"""A run's split, written to its folder and read back: which rows of the source went to
train (and which of those the student saw labeled), validation and test.

``mentor run`` writes ``splits/<setting>.json`` for every setting whose data knows its rows'
sample ids (their positions in the source). A recipe reuses it with ``data.splits: <file>``:
the same rows in the same order with the same labeled flags, so a second run -- or another
tool -- trains and scores on exactly the first run's split. The file also records the
source's row count and a digest of its labels, so a changed source is refused rather than
silently re-split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .arrays import labels_digest
from .splits import Splits, draw_labeled, draw_parts, given_parts

FORMAT = "mentor-splits/1"


def split_record(splits: Splits) -> dict | None:
    """The JSON-able record of ``splits``, or ``None`` when they do not know their rows."""
    rows = splits.rows
    if rows is None or splits.rows_digest is None:
        return None
    # the source's labeled rows come first in train; unlabeled and generated rows (label
    # -1) are appended after them and come back with the source
    n_train = int((splits.train.y >= 0).sum())
    return {"format": FORMAT, "source": splits.name,
            "labeled_rows": n_train + len(rows["val"]) + len(rows["test"]),
            "labels_digest": splits.rows_digest,
            "train": rows["train"][:n_train].tolist(),
            "train_labeled": splits.train.labeled[:n_train].tolist(),
            "val": rows["val"].tolist(), "test": rows["test"].tolist()}


def write_split_file(path: Path, record: dict) -> None:
    from .._util.atomic import atomic_write_text
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record))


def read_split_file(path: Path, ids: np.ndarray, y: np.ndarray, name: str,
                    field: str = "data.splits") -> tuple[np.ndarray, ...]:
    """Rows ``(train, val, test)`` of a source's labeled rows (sample ids ``ids``, labels
    ``y``; indices into them) and the train rows' labeled flags, as the split file at
    ``path`` records them; one sentence when the file is not a split file or does not fit
    the source (``name``)."""
    from .._util.safeio import MAX_JSON_BYTES, FileProblem, read_bounded, shown
    where = f"{field} {shown(path)}"
    try:
        rec = json.loads(read_bounded(path, MAX_JSON_BYTES, what="a split file"))
    except FileProblem as e:
        raise DataError(f"{field}: {e}") from None
    except (OSError, ValueError) as e:
        raise DataError(f"{where} is not readable JSON ({e}); expected a splits/<setting>.json "
                        "file from a run folder") from None
    if not isinstance(rec, dict) or rec.get("format") != FORMAT:
        raise DataError(f"{where} is not a mentor split file (format "
                        f"{rec.get('format') if isinstance(rec, dict) else None!r}); expected "
                        f"format {FORMAT!r}, as a run folder's splits/<setting>.json has")
    if rec.get("labeled_rows") != len(y) or rec.get("labels_digest") != labels_digest(ids, y):
        raise DataError(f"{where} was made from a source with {rec.get('labeled_rows')} labeled "
                        f"rows and other labels than {name!r} ({len(y)} labeled rows) has "
                        "now; expected the same source as the run that wrote it")
    index = {int(r): i for i, r in enumerate(ids)}
    parts = []
    for part in ("train", "val", "test"):
        got = rec.get(part)
        if not isinstance(got, list) or not all(isinstance(r, int) and r in index for r in got):
            raise DataError(f"{where}: {part!r} is not a list of the source's labeled row ids; "
                            "expected the file as a run wrote it")
        parts.append(np.array([index[r] for r in got], dtype=np.int64))
    flags = rec.get("train_labeled")
    if not isinstance(flags, list) or len(flags) != len(parts[0]) or not all(
            isinstance(f, bool) for f in flags):
        raise DataError(f"{where}: 'train_labeled' is not one true/false per train row; "
                        "expected the file as a run wrote it")
    used = np.concatenate(parts)
    if len(used) != len(y) or len(np.unique(used)) != len(used):
        raise DataError(f"{where} places {len(used)} rows ({len(np.unique(used))} distinct) "
                        f"but the source has {len(y)} labeled rows; expected each row in "
                        "exactly one part")
    return (*parts, np.array(flags, dtype=bool))


def choose_rows(y: np.ndarray, ids: np.ndarray, name: str, *, given: np.ndarray | None = None,
                split_file=None, val_fraction: float = 0.2, test_fraction: float = 0.2,
                labeled_fraction: float = 1.0, labeled_sampling: str = "per_class",
                seed: int = 0) -> tuple[np.ndarray, ...]:
    """Train / val / test rows (indices into ``y``, the labeled rows' labels; ``ids`` their
    sample ids) and the train rows' labeled flags, for a source that is not read into
    :class:`ArrayData` (images, texts): from a run's split file, a given part per row
    (``given``), or drawn stratified with ``seed``."""
    if split_file is not None:
        return read_split_file(split_file, ids, y, name)
    rng = np.random.default_rng(seed)
    if given is not None:
        tr, va, te = given_parts(f"data.source {name!r}", given, y, rng,
                                 val_fraction=val_fraction, test_fraction=test_fraction,
                                 field="the given split")
    else:
        tr, va, te = draw_parts(y, np.arange(len(y)), rng, val_fraction, test_fraction)
    return tr, va, te, draw_labeled(y[tr], labeled_fraction, labeled_sampling, rng)


def train_ids(known: np.ndarray, tr: np.ndarray, unlabeled: np.ndarray) -> np.ndarray:
    """The training split's sample ids: its labeled source rows, then the unlabeled ones."""
    return np.concatenate([known[tr], unlabeled])


def row_splits(name: str, rows_of, labels: np.ndarray, known: np.ndarray,
               unlabeled: np.ndarray, parts: tuple[np.ndarray, ...], *, num_classes: int,
               input_shape: tuple[int, ...], seed: int, **fields) -> Splits:
    """:class:`Splits` of a source read by sample id (images, texts): ``rows_of(ids)`` makes
    a split's row source; ``labels`` holds every row's label (``-1`` unlabeled); ``known``
    the labeled rows' ids, ``unlabeled`` the others' (joined to train); ``parts`` is
    :func:`choose_rows`' ``(train, val, test, labeled flags)``. ``fields``: the rest of the
    :class:`Splits` (standardization, tokenizer)."""
    import torch

    from .splits import Split
    tr, va, te, labeled = parts
    ids = train_ids(known, tr, unlabeled)

    def split(rows: np.ndarray, flags: np.ndarray) -> Split:
        return Split(rows_of(rows), torch.as_tensor(labels[rows], dtype=torch.long),
                     torch.as_tensor(flags, dtype=torch.bool))
    return Splits(name, split(ids, np.concatenate([labeled, np.zeros(len(unlabeled), bool)])),
                  split(known[va], np.ones(len(va), bool)),
                  split(known[te], np.ones(len(te), bool)), num_classes, tuple(input_shape),
                  seed, unknown_rows="unlabeled",
                  rows={"train": ids, "val": known[va], "test": known[te]},
                  rows_digest=labels_digest(known, labels[known]), **fields)


@dataclass(frozen=True)
class LabeledRows:
    """A table's rows by label, and the parts they go to (:func:`table_parts`)."""

    labels: np.ndarray  # every row's class index, -1 for an unlabeled row
    known: np.ndarray  # the labeled rows' sample ids
    unlabeled: np.ndarray  # the unlabeled rows' sample ids (they join train)
    parts: tuple[np.ndarray, ...]  # choose_rows' (train, val, test, labeled flags)
    num_classes: int


def table_parts(label_col, split_col, *, name: str, where: str, target: str,
                split_field: str | None, class_names: tuple[str, ...] = (),
                num_classes: int | None = None, split_file=None, **fractions) -> LabeledRows:
    """The rows of a table that is not read into :class:`ArrayData` (texts, a streamed table)
    by its label column ``label_col`` (``-1``, null or ``""``: unlabeled) and, when given, its
    split column ``split_col`` (named ``split_field`` in errors): labels checked by the rules of
    every source (:func:`validate_arrays`, on a placeholder feature column), unlabeled rows
    kept in train, the parts chosen by :func:`choose_rows` (``fractions``: its fractions,
    sampling and ``seed``)."""
    from .arrays import validate_arrays
    from .columns import label_column, split_names
    from .files import UNLABELED
    labels, names = label_column(label_col, f"{where}: column {target!r}", class_names)
    data = validate_arrays(name, np.broadcast_to(np.float32(0), (len(labels), 1)), labels,
                           num_classes=num_classes, class_names=names, where=where,
                           unlabeled_mark=UNLABELED)
    known = data.ids
    extra = (np.zeros(0, np.int64) if data.unlabeled_ids is None else data.unlabeled_ids)
    y_all = np.full(len(labels), UNLABELED, dtype=np.int64)
    y_all[known] = data.y
    given = None
    if split_col is not None:
        given = split_names(split_col, f"{where}: {split_field!r}")
        off = extra[given[extra] != "train"]
        if len(off):
            raise DataError(f"{where}: row {int(off[0])} has no label but its split is "
                            f"{str(given[off[0]])!r}; expected unlabeled rows in 'train' only "
                            "(validation and test rows need labels to be scored)")
    parts = choose_rows(data.y, known, name, given=None if given is None else given[known],
                        split_file=split_file, **fractions)
    return LabeledRows(y_all, known, extra, parts, data.num_classes)
