"""Data sources by name: scikit-learn's embedded sets, MNIST-1D (generated), user files."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError
from ..registry import DATASETS, suggest
from .arrays import ArrayData, validate_arrays
from .files import UNLABELED, existing_file, max_data_bytes, text_labels


def _sklearn(loader: Callable, name: str, shape: tuple[int, ...] | None = None) -> ArrayData:
    bunch = loader()
    names = tuple(str(n) for n in getattr(bunch, "target_names", ()))
    return validate_arrays(name, bunch.data, bunch.target, input_shape=shape,
                           class_names=names)


@DATASETS.register("digits", description="scikit-learn digits: 1,797 8x8 images, 10 classes")
def digits() -> ArrayData:
    from sklearn.datasets import load_digits
    return _sklearn(load_digits, "digits", (8, 8))


@DATASETS.register("breast_cancer", description="scikit-learn breast cancer: 569 x 30, 2 classes")
def breast_cancer() -> ArrayData:
    from sklearn.datasets import load_breast_cancer
    return _sklearn(load_breast_cancer, "breast_cancer")


@DATASETS.register("wine", description="scikit-learn wine: 178 x 13, 3 classes")
def wine() -> ArrayData:
    from sklearn.datasets import load_wine
    return _sklearn(load_wine, "wine")


@DATASETS.register("iris", description="scikit-learn iris: 150 x 4, 3 classes")
def iris() -> ArrayData:
    from sklearn.datasets import load_iris
    return _sklearn(load_iris, "iris")


@DATASETS.register("mnist1d", description="MNIST-1D (Greydanus 2020), 5,000 x 40, 10 classes, "
                   "generated offline by the mnist1d package with its default arguments")
def mnist1d() -> ArrayData:
    # make_dataset is the package's own generator; its download path is never used.
    d = _mnist1d_make()
    x = np.concatenate([d["x"], d["x_test"]])
    y = np.concatenate([d["y"], d["y_test"]])
    return validate_arrays("mnist1d", x, y, input_shape=(40,))


# a second domain of the same task: stronger correlated and i.i.d. noise, more shear and
# scale variation, other random draws -- the "generic" data of a multi-stage recipe
MNIST1D_SHIFTED = {"num_samples": 10000, "corr_noise_scale": 0.6, "iid_noise_scale": 0.1,
                   "shear_scale": 1.5, "scale_coeff": 0.6, "seed": 7}


@DATASETS.register("mnist1d-shifted", description="MNIST-1D from the same generator in a "
                   "shifted domain (more noise, shear and scale), 10,000 x 40, 10 classes")
def mnist1d_shifted() -> ArrayData:
    d = _mnist1d_make(**MNIST1D_SHIFTED)
    x = np.concatenate([d["x"], d["x_test"]])
    y = np.concatenate([d["y"], d["y_test"]])
    return validate_arrays("mnist1d-shifted", x, y, input_shape=(40,))


def _mnist1d_make(**changes) -> dict:
    from mnist1d.data import get_dataset_args, make_dataset
    args = get_dataset_args()
    for k, v in changes.items():
        setattr(args, k, v)
    state = np.random.get_state()  # the generator seeds numpy's global RNG; restore it
    try:
        return make_dataset(args)
    finally:
        np.random.set_state(state)


def mnist1d_generator(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` new MNIST-1D inputs from the package's generator with a seed drawn from ``rng``
    (the default data set uses seed 42)."""
    return _mnist1d_make(num_samples=n, train_split=1.0, seed=int(rng.integers(43, 2**31)))["x"]


# sources whose inputs can be generated anew (data.generated in a recipe)
GENERATORS = {"mnist1d": mnist1d_generator}


def load_source(source: str, *, target: str | None = None, num_classes: int | None = None,
                features: list[str] | None = None,
                split_column: str | None = None) -> ArrayData:
    """An embedded data set by name, or a user file: ``.npz`` (arrays ``x``, ``y``), or a
    table of named columns (CSV, Parquet, Arrow, JSON Lines, a Hugging Face ``save_to_disk``
    folder; :mod:`mentor.data.columns`: ``target`` is the label column, ``features`` the
    feature columns, ``split_column`` a given train/val/test split)."""
    from .tables import is_table_path
    if source.endswith(".npz"):
        _no_columns(source, features, split_column)
        return load_npz(Path(source), num_classes=num_classes)
    if is_table_path(source):
        return load_table(Path(source), target, num_classes=num_classes, features=features,
                          split_column=split_column)
    if source not in DATASETS:
        raise DataError(f"data.source {source!r} is not an embedded data set"
                        f"{suggest(source, DATASETS.names())} or a data file; expected one "
                        f"of {', '.join(DATASETS.names())}, or a .npz, .csv, .parquet, "
                        ".arrow or .jsonl file or a dataset folder")
    _no_columns(source, features, split_column)
    data = DATASETS.get(source)()
    if not isinstance(data, ArrayData):  # a packaged table of texts
        raise DataError(f"data.source {source!r} is a text source; expected data.text: text "
                        "(and data.target: label) with a text model such as 'bag'")
    if num_classes is not None and num_classes != data.num_classes:
        raise DataError(f"data.num_classes is {num_classes} but {source} has "
                        f"{data.num_classes} classes")
    return data


def _no_columns(source: str, features, split_column) -> None:
    for field, v in (("data.features", features), ("data.split_column", split_column)):
        if v is not None:
            raise DataError(f"{field} is set but data.source {source!r} has no named columns; "
                            "expected it only with a table file (CSV, Parquet, Arrow, JSON "
                            "Lines) or a dataset folder")


def load_table(path: Path, target: str | None, *, num_classes: int | None = None,
               features: list[str] | None = None,
               split_column: str | None = None) -> ArrayData:
    """A table file or Hugging Face folder as :class:`ArrayData` (see
    :mod:`mentor.data.columns`). A CSV file whose table is refused is read again by
    :func:`load_csv`, whose messages name file lines."""
    from .._util.safeio import shown
    from .columns import table_arrays
    from .tables import SPLIT_COLUMN, hf_class_names, read_table
    where = f"data.source {shown(path)}"
    if not target:
        raise DataError(f"data.target is required for a table source ({shown(path)}); "
                        "expected the name of the label column")
    csv_file = path.suffix.lower() == ".csv"
    try:
        table = read_table(path)
        given = split_column
        if SPLIT_COLUMN in table.column_names:
            if split_column is not None:
                raise DataError(f"data.split_column {split_column!r} is set but {where} is a "
                                "dataset folder whose splits are given by name; expected no "
                                "split column")
            given = SPLIT_COLUMN
        return table_arrays(table, name=str(path), where=where, target=target,
                            features=features, split_column=given, num_classes=num_classes,
                            class_names=hf_class_names(path, target))
    except DataError:
        if not csv_file or features is not None or split_column is not None:
            raise
    return load_csv(path, target, num_classes=num_classes)  # its message, naming lines


def load_npz(path: Path, *, num_classes: int | None = None) -> ArrayData:
    """Arrays ``x`` and ``y`` from a ``.npz`` file (``allow_pickle=False``: never unpickled);
    a row labeled ``-1`` is unlabeled (:attr:`ArrayData.unlabeled`)."""
    import zipfile

    from .._util.safeio import FileProblem, open_regular, shown
    existing_file(path)
    where = f"data.source {shown(path)}"
    try:
        with open_regular(path, limit=max_data_bytes(), what="a data file") as f:
            head = f.read(4)
            if head != b"PK\x03\x04":
                raise DataError(f"{where} is not a .npz archive (it is not a zip file); "
                                "expected arrays 'x' and 'y' saved with numpy.savez")
            f.seek(0)
            try:  # the sizes the archive declares, before anything is decompressed
                declared = sum(i.file_size for i in zipfile.ZipFile(f).infolist())
            except (zipfile.BadZipFile, EOFError, ValueError, OSError) as e:
                raise DataError(f"{where} is truncated or damaged ({e}); expected a complete "
                                ".npz file") from None
            if declared > max_data_bytes():
                raise DataError(f"{where} declares {declared:,} bytes of arrays, above the "
                                f"limit of {max_data_bytes():,} (MENTOR_MAX_DATA_BYTES); "
                                "expected a smaller data file")
            f.seek(0)
            x, y = _npz_arrays(f, path, where)
    except FileProblem as e:
        raise DataError(f"data.source: {e}") from None
    except OSError as e:
        raise DataError(f"{where} cannot be read ({e.strerror})") from None
    return validate_arrays(str(path), x, y, num_classes=num_classes, where=where,
                           unlabeled_mark=UNLABELED)


def _npz_arrays(f, path: Path, where: str):
    try:
        with np.load(f, allow_pickle=False) as z:
            missing = [k for k in ("x", "y") if k not in z.files]
            if missing:
                raise DataError(f"{where} has no array {missing[0]!r} (arrays: "
                                f"{', '.join(z.files) or 'none'}); expected arrays 'x' and 'y'")
            return z["x"], z["y"]
    except DataError:
        raise
    except ValueError as e:  # object arrays would need pickle
        raise DataError(f"{where} holds object arrays that need pickle ({e}); expected numeric "
                        "arrays 'x' and 'y'") from None
    except Exception as e:
        import zipfile
        if isinstance(e, (zipfile.BadZipFile, EOFError)):  # a zip header, unreadable after it
            raise DataError(f"{where} is truncated or damaged ({e}); expected a complete .npz "
                            "file") from None
        raise DataError(f"{where} is not a readable .npz file ({e})") from None


def load_csv(path: Path, target: str, *, num_classes: int | None = None) -> ArrayData:
    """Numeric feature columns and a ``target`` column from a CSV file with a header row.

    Every column name must be unique. A row whose target is empty or ``-1`` is unlabeled
    (:attr:`ArrayData.unlabeled`). Other targets that are all numbers must be whole numbers
    (``1``, ``1.0``, ``1e3``): class indices (``1`` and ``1.0`` are the same class); any
    other targets are names, mapped to indices in sorted order (kept as ``class_names``).
    Messages name rows by their line in the file (the header is line 1; blank lines count).
    """
    import io

    from .._util.safeio import FileProblem, open_regular, shown
    existing_file(path)
    where = f"data.source {shown(path)}"
    try:
        with open_regular(path, limit=max_data_bytes(), what="a data file") as f:
            text = io.TextIOWrapper(f, encoding="utf-8", newline="")
            reader = csv.reader(text)
            rows = [(reader.line_num, row) for row in reader]
    except FileProblem as e:
        raise DataError(f"data.source: {e}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{where} is not a readable CSV file ({e})") from None
    if not rows:
        raise DataError(f"{where} is empty; expected a header row and data rows")
    header = rows[0][1]
    body = [(line, r) for line, r in rows[1:] if r]
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in seen:
            raise DataError(f"{where}: column {name!r} appears twice in the header (columns "
                            f"{seen[name] + 1} and {i + 1}); expected unique column names (a "
                            "second copy of the target would be read as a feature)")
        seen[name] = i
    if target not in header:
        raise DataError(f"data.target {target!r} is not a column of {shown(path)}"
                        f"{suggest(target, header)}; columns: {', '.join(header)}")
    if not body:
        raise DataError(f"{where} has a header but no data rows")
    t = header.index(target)
    feats = [i for i in range(len(header)) if i != t]
    x = np.empty((len(body), len(feats)), dtype=np.float64)
    for r, (line, row) in enumerate(body):
        if len(row) != len(header):
            raise DataError(f"{where}: line {line} has {len(row)} fields; expected "
                            f"{len(header)}")
        for j, i in enumerate(feats):
            try:
                x[r, j] = float(row[i])
            except ValueError:
                raise DataError(f"{where}: column {header[i]!r} line {line} is "
                                f"{row[i][:60]!r}; expected a number") from None
    raw = [row[t].strip() for _, row in body]
    lines = [line for line, _ in body]
    y, names = text_labels(raw, f"{where}: column {target!r}", lines)
    return validate_arrays(str(path), x, y, num_classes=num_classes, class_names=names,
                           where=where, row_name=lambda i: f"line {lines[i]}",
                           feature_name=lambda j: f"column {header[feats[j]]!r}",
                           unlabeled_mark=UNLABELED)
