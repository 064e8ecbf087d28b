"""A table with a text column as :class:`~mentor.data.splits.Splits` of token ids: each split's
rows are named tensors (``input_ids``, ``attention_mask``; :class:`~mentor.data.rows.NamedRows`)
that the task passes to the model as keyword arguments.

Labels, unlabeled rows (an empty label) and a given split column work as for numeric tables
(:mod:`mentor.data.columns`); rows keep their position in the file as sample id. The
tokenizer is a local folder's, or one trained on the training texts only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .columns import require_column
from .rows import NamedRows
from .split_file import row_splits, table_parts, train_ids
from .splits import Splits
from .text import encode_texts, local_tokenizer, trained_tokenizer


@dataclass(frozen=True)
class TextOptions:
    """``data.text`` and what turns it into token ids."""

    column: str
    tokenizer: str | None = None  # a local tokenizer folder; None: train one
    vocab_size: int = 8000
    max_length: int = 128
    truncation: bool = True


def text_splits(path: Path | str, target: str | None, options: TextOptions, *,
                split_column: str | None = None, num_classes: int | None = None,
                val_fraction: float = 0.2, test_fraction: float = 0.2,
                labeled_fraction: float = 1.0, labeled_sampling: str = "per_class",
                split_seed: int = 0, split_file: Path | None = None) -> Splits:
    """The rows of a table file's ``options.column`` texts and ``target`` labels as splits of
    token ids (see the module docstring)."""
    from .._util.safeio import shown
    from ..registry import DATASETS
    from .tables import SPLIT_COLUMN, hf_class_names, read_table
    where = f"data.source {shown(path)}"
    if not target:
        raise DataError(f"data.target is required for a text source ({shown(path)}); expected "
                        "the name of the label column")
    packaged = isinstance(path, str) and path in DATASETS
    table = DATASETS.get(path)() if packaged else read_table(Path(path))
    if not hasattr(table, "column_names"):
        raise DataError(f"data.text is set but {where} is not a table of named columns; "
                        "expected a table file, a dataset folder or a packaged text source")
    columns = list(table.column_names)
    for field, name in (("data.text", options.column), ("data.target", target)):
        require_column(columns, name, field, where)
    texts = _texts(table.column(options.column), f"{where}: column {options.column!r}")
    given = split_column if split_column is not None else (
        SPLIT_COLUMN if SPLIT_COLUMN in columns else None)
    rows = table_parts(
        table.column(target), None if given is None else table.column(given), name=str(path),
        where=where, target=target, split_field=given,
        class_names=() if packaged else hf_class_names(Path(path), target),
        num_classes=num_classes, split_file=split_file, val_fraction=val_fraction,
        test_fraction=test_fraction, labeled_fraction=labeled_fraction,
        labeled_sampling=labeled_sampling, seed=split_seed)
    known, extra, parts = rows.known, rows.unlabeled, rows.parts
    tok = (local_tokenizer(Path(options.tokenizer)) if options.tokenizer is not None
           else trained_tokenizer([texts[i] for i in train_ids(known, parts[0], extra)],
                                  options.vocab_size))
    encoded = encode_texts(tok, texts, options.max_length, options.truncation,
                           field=f"data.text {options.column!r}")

    def rows_of(ids: np.ndarray) -> NamedRows:
        pick = torch.as_tensor(ids, dtype=torch.long)
        return NamedRows({k: v[pick] for k, v in encoded.items()})

    return row_splits(str(path), rows_of, rows.labels, known, extra, parts,
                      num_classes=rows.num_classes,
                      input_shape=(int(encoded["input_ids"].shape[1]),), seed=split_seed,
                      vocab_size=tok.vocab_size, tokenizer=tok)


def _texts(col, field: str) -> list[str]:
    import pyarrow as pa
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        raise DataError(f"{field} holds {col.type} values; expected texts (strings)")
    values = col.to_pylist()
    for i, v in enumerate(values):
        if v is None:
            raise DataError(f"{field} is empty at row {i}; expected a text in every row")
    return values
