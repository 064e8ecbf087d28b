"""Data: embedded data sets by name, user files (.npz, .csv), stratified splits."""

from dataclasses import replace

import numpy as np
import torch

from . import augment  # noqa: F401  (registers shift, flip, noise, mask, cutout, scale)
from . import image_views  # noqa: F401
from . import text_views  # noqa: F401  (registers token_drop, token_span)
from . import packaged  # noqa: F401  (registers fashion-mnist, wordnet-glosses)
from ..errors import DataError
from ..registry import DATASETS
from .arrays import ArrayData, validate_arrays
from .generated import with_generated
from .rows import DatasetRows, NamedRows, StreamRows, TensorRows
from .sources import load_source
from .splits import Split, Splits, append_unlabeled, given_parts, make_splits, splits_at

__all__ = ["ArrayData", "DatasetRows", "NamedRows", "Split", "Splits", "StreamRows", "TensorRows",
           "from_arrays", "from_datasets", "load_source", "make_splits", "validate_arrays",
           "load", "with_generated"]


def load(source: str, *, val_fraction: float = 0.2, test_fraction: float = 0.2,
         labeled_fraction: float = 1.0, split_seed: int = 0, standardize: bool = True,
         target: str | None = None, num_classes: int | None = None,
         labeled_sampling: str = "per_class", weak_noise: float | None = None,
         weak_flip: str = "uniform", features: list[str] | None = None,
         split_column: str | None = None, split_file: str | None = None,
         images: dict | None = None, text=None, stream: bool | None = None) -> Splits:
    """Load a data set by name or path and split it (train / validation / test).

    A table file (CSV, Parquet, Arrow, JSON Lines) or a Hugging Face ``save_to_disk``
    folder: ``target`` names the label column, ``features`` the feature columns (default:
    every other numeric column), ``split_column`` a column giving each row's part (a dataset
    folder's named splits give it too). ``split_file``: the ``splits/<setting>.json`` of an
    earlier run, whose rows and labeled flags are reused as they are (the fractions and
    ``labeled_fraction`` are not used).

    A folder with one sub-folder of images per class is read by DataLoader workers
    (:func:`mentor.data.image_source.image_folder_splits`; ``images``: its options
    ``image_size``, ``channels``, ``unlabeled``, ``workers``).

    ``text``: a table's text column (its name, or a
    :class:`mentor.data.text_source.TextOptions` with the tokenizer and length); the splits
    hold token ids (``input_ids``, ``attention_mask``) from a local tokenizer or one trained
    on the training texts.

    ``stream``: read a table's rows from disk while training instead of holding them in
    memory (:mod:`mentor.data.stream_source`; default: for a file or folder over 1 GiB);
    ``images["workers"]`` then sets its DataLoader workers (default 0).

    >>> splits = load("wordnet-glosses", target="label", text="text")  # doctest: +SKIP

    >>> splits = load("iris")
    >>> splits.num_classes, splits.train.x.shape[1]
    (3, 4)
    """
    from pathlib import Path

    from .images import is_image_folder
    if is_image_folder(Path(source)):
        from .image_source import image_folder_splits
        for field, v in (("data.target", target), ("data.features", features),
                         ("data.split_column", split_column)):
            if v is not None:
                raise DataError(f"{field} is set but data.source {source!r} is an image folder "
                                "(classes are its sub-folders); expected no "
                                f"{field.split('.')[1]}")
        return image_folder_splits(
            Path(source), val_fraction=val_fraction, test_fraction=test_fraction,
            labeled_fraction=labeled_fraction, labeled_sampling=labeled_sampling,
            split_seed=split_seed, standardize=standardize,
            split_file=None if split_file is None else Path(split_file), **(images or {}))
    if text is not None:
        from .text_source import TextOptions, text_splits
        if isinstance(text, str):
            text = TextOptions(text)
        if stream:
            raise DataError("data.stream is true with data.text; expected data.stream unset or "
                            "false (texts are tokenized and held in memory)")
        if features is not None:
            raise DataError("data.features is set with data.text; expected one of them (a text "
                            "source reads its text column only)")
        return text_splits(source if source in DATASETS else Path(source), target, text, split_column=split_column,
                           num_classes=num_classes, val_fraction=val_fraction,
                           test_fraction=test_fraction, labeled_fraction=labeled_fraction,
                           labeled_sampling=labeled_sampling, split_seed=split_seed,
                           split_file=None if split_file is None else Path(split_file))
    table = _is_table(source)
    if stream and not table:
        raise DataError(f"data.stream is true but data.source {source!r} is not a table "
                        "file; expected a CSV, Parquet, Arrow or JSON Lines file or a "
                        "dataset folder (image folders are always read from disk)")
    if table and (stream or (stream is None and _big(source))):
        return _streamed(source, target=target, features=features, split_column=split_column,
                         num_classes=num_classes, val_fraction=val_fraction,
                         test_fraction=test_fraction, labeled_fraction=labeled_fraction,
                         labeled_sampling=labeled_sampling, split_seed=split_seed,
                         split_file=split_file, standardize=standardize,
                         weak_noise=weak_noise, images=images)
    if images:
        raise DataError(f"data.{next(iter(images))} is set but data.source {source!r} is not an "
                        "image folder; expected it only with a folder of class sub-folders")
    data = load_source(source, target=target, num_classes=num_classes, features=features,
                       split_column=split_column)
    if split_file is not None:
        from .split_file import read_split_file
        tr, va, te, labeled = read_split_file(Path(split_file), data.ids, data.y, data.name)
        return splits_at(data, tr, va, te, seed=split_seed, standardize=standardize,
                         labeled=labeled, weak_noise=weak_noise, weak_flip=weak_flip)
    return make_splits(data, val_fraction=val_fraction, test_fraction=test_fraction,
                       labeled_fraction=labeled_fraction, seed=split_seed,
                       standardize=standardize, labeled_sampling=labeled_sampling,
                       weak_noise=weak_noise, weak_flip=weak_flip)


def _is_table(source: str) -> bool:
    from .tables import is_table_path
    return is_table_path(source)


def _big(source: str) -> bool:
    from pathlib import Path

    from .stream_source import should_stream
    return should_stream(Path(source))


def _streamed(source: str, *, weak_noise, images, split_file, **fields) -> Splits:
    """A table read from disk while training (``data.stream``)."""
    from pathlib import Path

    from .stream_source import table_stream_splits
    if weak_noise is not None:
        raise DataError(f"data.weak_noise is set but data.source {source!r} is streamed "
                        "(data.stream); expected data.stream: false to draw weak labels")
    extra = dict(images or {})
    workers = extra.pop("workers", 0)
    if extra:
        raise DataError(f"data.{next(iter(extra))} is set but data.source {source!r} is not an "
                        "image folder; expected it only with a folder of class sub-folders")
    return table_stream_splits(Path(source), split_file=None if split_file is None
                               else Path(split_file), workers=workers, **fields)


def from_arrays(x, y, *, unlabeled=None, name: str = "arrays", num_classes: int | None = None,
                input_shape: tuple[int, ...] | None = None, class_names=(),
                val_fraction: float = 0.2, test_fraction: float = 0.2, split_seed: int = 0,
                standardize: bool = True, split=None) -> Splits:
    """Your own arrays as :class:`Splits`: labeled rows ``x`` (N, ...) with class indices
    ``y`` (N,), split stratified into train / validation / test, plus optional
    ``unlabeled`` rows (M, ...) that join the training split without a label (what
    semi-supervised methods and a teacher's soft labels learn from). NumPy arrays or tensors;
    features are standardized with the training rows' statistics (``Splits.mean`` and
    ``Splits.std``; ``standardize=False`` keeps them as given).

    ``split``: your own split instead of a drawn one -- ``'train'``, ``'val'`` or ``'test'``
    for each row of ``x`` (N,); rows keep their split and their order within it, and
    ``val_fraction``, ``test_fraction`` and ``split_seed`` are not used. Every class needs a
    training row.

    The splits remember that you hold the raw features: a teacher you trained on them is
    given raw inputs by :class:`mentor.Distiller` (``teacher_inputs`` there).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(60, 5)), np.repeat([0, 1, 2], 20)
    >>> splits = from_arrays(x, y, unlabeled=rng.normal(size=(100, 5)))
    >>> splits.describe()
    'arrays: train 136 (36 labeled, 100 unlabeled), val 12, test 12, 3 classes'
    >>> mine = np.tile(["train"] * 4 + ["val", "test"], 10)
    >>> from_arrays(x, y, split=mine).describe()
    'arrays: train 40 (40 labeled), val 10, test 10, 3 classes'
    """
    def arr(v):
        return v.detach().cpu().numpy() if torch.is_tensor(v) else np.asarray(v)

    data = validate_arrays(name, arr(x), arr(y), num_classes=num_classes,
                           input_shape=input_shape, class_names=tuple(class_names))
    if split is None:
        splits = make_splits(data, val_fraction=val_fraction, test_fraction=test_fraction,
                             seed=split_seed, standardize=standardize)
    else:
        tr, va, te = given_parts(name, arr(split), data.y, None)
        splits = splits_at(data, tr, va, te, seed=split_seed, standardize=standardize)
    splits = replace(splits, teacher_inputs="raw")
    if unlabeled is None:
        return splits
    u = arr(unlabeled)
    if u.ndim < 2 or len(u) == 0:
        raise DataError(f"{name}: unlabeled must have shape (rows, features...) with at least "
                        f"one row, got shape {u.shape}")
    return append_unlabeled(splits, u, raw=True, kind="unlabeled",
                            what=f"{name}: unlabeled has rows")


def from_datasets(train, val, test=None, *, num_classes: int, name: str = "datasets",
                  labels=None, labeled=None, num_workers: int = 0, pin_memory: bool = False,
                  prefetch_factor: int = 2) -> Splits:
    """Map-style datasets (``len`` and ``ds[i]`` giving ``(input, label)``) as
    :class:`Splits` whose inputs are read through a DataLoader
    (:class:`~mentor.data.rows.DatasetRows`: ``num_workers`` processes read ahead of the
    training step, ``pin_memory`` for GPUs); nothing is standardized or copied into memory.

    Labels are read once from the items (only the labels are kept), unless ``labels`` gives
    ``{"train": ..., "val": ..., "test": ...}`` tensors. ``labeled``: a boolean mask over the
    training rows whose label the student may see (default: all); the others are unlabeled
    rows for semi-supervised methods. ``test``: default the validation set.
    """
    loader = {"num_workers": num_workers, "pin_memory": pin_memory,
              "prefetch_factor": prefetch_factor}
    given = labels or {}
    parts = {}
    for part, ds in (("train", train), ("val", val), ("test", test if test is not None
                                                                else val)):
        rows = DatasetRows(ds, **loader)
        y = given.get(part)
        y = rows.labels() if y is None else torch.as_tensor(y, dtype=torch.long)
        if y.shape != (len(rows),):
            raise DataError(f"labels[{part!r}] has shape {tuple(y.shape)}; expected "
                            f"({len(rows)},), one label per row of the {part} dataset")
        bad = (y < 0) | (y >= num_classes)
        if bool(bad.any()):
            raise DataError(f"{part} dataset row {int(bad.nonzero()[0])} has label "
                            f"{int(y[bad][0])}; expected a class index in [0, {num_classes})")
        mask = torch.ones(len(rows), dtype=torch.bool)
        if part == "train" and labeled is not None:
            mask = torch.as_tensor(labeled, dtype=torch.bool)
            if mask.shape != (len(rows),):
                raise DataError(f"labeled has shape {tuple(mask.shape)}; expected "
                                f"({len(rows)},), one flag per training row")
        parts[part] = Split(rows, y, mask)
    return Splits(name, parts["train"], parts["val"], parts["test"], num_classes,
                  parts["train"].x.input_shape, seed=0, unknown_rows="unlabeled")
