"""Data sources by name: scikit-learn's embedded sets, MNIST-1D (generated), user files."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError
from ..registry import DATASETS, suggest
from .arrays import ArrayData, validate_arrays


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


def load_source(source: str, *, target: str | None = None,
                num_classes: int | None = None) -> ArrayData:
    """An embedded data set by name, or a user file ending in ``.npz`` or ``.csv``."""
    if source.endswith(".npz"):
        return load_npz(Path(source), num_classes=num_classes)
    if source.endswith(".csv"):
        if not target:
            raise DataError(f"data.target is required for a .csv source ({source!r}); expected "
                            "the name of the label column")
        return load_csv(Path(source), target, num_classes=num_classes)
    if source not in DATASETS:
        raise DataError(f"data.source {source!r} is not an embedded data set"
                        f"{suggest(source, DATASETS.names())} or a .npz/.csv file; expected one "
                        f"of {', '.join(DATASETS.names())}")
    data = DATASETS.get(source)()
    if num_classes is not None and num_classes != data.num_classes:
        raise DataError(f"data.num_classes is {num_classes} but {source} has "
                        f"{data.num_classes} classes")
    return data


# the label of an unlabeled row in a data file (in a CSV, an empty target cell too)
UNLABELED = -1

# data files are read whole into memory; beyond this they are refused with a sentence
# (MENTOR_MAX_DATA_BYTES raises the bound), never read until memory runs out
MAX_DATA_BYTES = 4 << 30


def _max_data_bytes() -> int:
    import os
    try:
        return int(os.environ.get("MENTOR_MAX_DATA_BYTES", MAX_DATA_BYTES))
    except ValueError:
        return MAX_DATA_BYTES


def _existing_file(path: Path, field: str = "data.source") -> Path:
    """``path`` if it is a regular file of at most the data bound (a FIFO, device, socket or
    folder is refused by name, before anything is opened)."""
    from .._util.safeio import FileProblem, regular_file, shown
    try:
        regular_file(path, limit=_max_data_bytes(), what="a data file")
    except FileProblem as e:
        if e.reason == "missing":
            raise DataError(f"{field}: file {shown(path)} does not exist") from None
        if e.reason == "directory":
            raise DataError(f"{field}: {shown(path)} is a directory; expected a file") from None
        raise DataError(f"{field}: {e}") from None
    return path


def load_npz(path: Path, *, num_classes: int | None = None) -> ArrayData:
    """Arrays ``x`` and ``y`` from a ``.npz`` file (``allow_pickle=False``: never unpickled);
    a row labeled ``-1`` is unlabeled (:attr:`ArrayData.unlabeled`)."""
    import zipfile

    from .._util.safeio import FileProblem, open_regular, shown
    _existing_file(path)
    where = f"data.source {shown(path)}"
    try:
        with open_regular(path, limit=_max_data_bytes(), what="a data file") as f:
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
            if declared > _max_data_bytes():
                raise DataError(f"{where} declares {declared:,} bytes of arrays, above the "
                                f"limit of {_max_data_bytes():,} (MENTOR_MAX_DATA_BYTES); "
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
    _existing_file(path)
    where = f"data.source {shown(path)}"
    try:
        with open_regular(path, limit=_max_data_bytes(), what="a data file") as f:
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
    y, names = _csv_labels(raw, f"{where}: column {target!r}", lines)
    return validate_arrays(str(path), x, y, num_classes=num_classes, class_names=names,
                           where=where, row_name=lambda i: f"line {lines[i]}",
                           feature_name=lambda j: f"column {header[feats[j]]!r}",
                           unlabeled_mark=UNLABELED)


def _csv_labels(raw: list[str], field: str,
                lines: list[int]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class indices of a CSV target column, ``-1`` for an unlabeled row (an empty cell or
    ``-1``): whole numbers when every other value is a number (``1`` and ``1.0`` alike; a
    number such as ``1.5`` is refused), else names in sorted order."""
    numbers = [_number(v) for v in raw]
    unlabeled = [v == "" or f == UNLABELED for v, f in zip(raw, numbers)]
    if all(unlabeled):
        raise DataError(f"{field} is empty or -1 in all {len(raw):,} rows, so no row has a "
                        "label; expected class labels (an empty cell or -1 only marks an "
                        "unlabeled row)")
    if all(u or f is not None for u, f in zip(unlabeled, numbers)):
        values = []
        for v, f, u, line in zip(raw, numbers, unlabeled, lines):
            if u:
                values.append(UNLABELED)
                continue
            if not np.isfinite(f) or f != int(f):
                raise DataError(f"{field} line {line} is {v[:60]!r}, not a whole number; "
                                "expected class indices 0, 1, ... (an empty cell or -1 for "
                                "an unlabeled row)")
            values.append(int(v) if _is_int_text(v) else int(f))
        return np.array(values, dtype=object), ()
    names = tuple(sorted({v for v, u in zip(raw, unlabeled) if not u}))
    index = {n: i for i, n in enumerate(names)}
    return np.array([UNLABELED if u else index[v] for v, u in zip(raw, unlabeled)],
                    dtype=np.int64), names


def _number(v: str) -> float | None:
    try:
        return float(v)
    except ValueError:
        return None


def _is_int_text(v: str) -> bool:
    try:
        int(v)
        return True
    except ValueError:
        return False
