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


def _existing_file(path: Path, field: str = "data.source") -> Path:
    if not path.exists():
        raise DataError(f"{field}: file '{path}' does not exist")
    if path.is_dir():
        raise DataError(f"{field}: '{path}' is a directory; expected a file")
    return path


def load_npz(path: Path, *, num_classes: int | None = None) -> ArrayData:
    """Arrays ``x`` and ``y`` from a ``.npz`` file (``allow_pickle=False``: never unpickled)."""
    _existing_file(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise DataError(f"data.source '{path}' cannot be read ({e.strerror})") from None
    if head != b"PK\x03\x04":
        raise DataError(f"data.source '{path}' is not a .npz archive (it is not a zip file); "
                        "expected arrays 'x' and 'y' saved with numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("x", "y") if k not in f.files]
            if missing:
                raise DataError(f"data.source '{path}' has no array {missing[0]!r} (arrays: "
                                f"{', '.join(f.files) or 'none'}); expected arrays 'x' and 'y'")
            x, y = f["x"], f["y"]
    except DataError:
        raise
    except ValueError as e:  # object arrays would need pickle
        raise DataError(f"data.source '{path}' holds object arrays that need pickle ({e}); "
                        "expected numeric arrays 'x' and 'y'") from None
    except Exception as e:
        import zipfile
        if isinstance(e, (zipfile.BadZipFile, EOFError)):  # a zip header, unreadable after it
            raise DataError(f"data.source '{path}' is truncated or damaged ({e}); expected a "
                            "complete .npz file") from None
        raise DataError(f"data.source '{path}' is not a readable .npz file ({e})") from None
    return validate_arrays(str(path), x, y, num_classes=num_classes,
                           where=f"data.source '{path}'")


def load_csv(path: Path, target: str, *, num_classes: int | None = None) -> ArrayData:
    """Numeric feature columns and a ``target`` column from a CSV file with a header row.

    Integer targets are used as class indices; any other targets are mapped to indices in
    sorted order (the names are kept as ``class_names``).
    """
    _existing_file(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"data.source '{path}' is not a readable CSV file ({e})") from None
    if not rows:
        raise DataError(f"data.source '{path}' is empty; expected a header row and data rows")
    header, body = rows[0], [r for r in rows[1:] if r]
    if target not in header:
        raise DataError(f"data.target {target!r} is not a column of '{path}'"
                        f"{suggest(target, header)}; columns: {', '.join(header)}")
    if not body:
        raise DataError(f"data.source '{path}' has a header but no data rows")
    t = header.index(target)
    feats = [i for i in range(len(header)) if i != t]
    x = np.empty((len(body), len(feats)), dtype=np.float64)
    for r, row in enumerate(body):
        if len(row) != len(header):
            raise DataError(f"data.source '{path}': row {r + 2} has {len(row)} fields; expected "
                            f"{len(header)}")
        for j, i in enumerate(feats):
            try:
                x[r, j] = float(row[i])
            except ValueError:
                raise DataError(f"data.source '{path}': column {header[i]!r} row {r + 2} is "
                                f"{row[i]!r}; expected a number") from None
    raw = [row[t].strip() for row in body]
    try:
        y = np.array([int(v) for v in raw], dtype=np.int64)
        names: tuple[str, ...] = ()
    except ValueError:
        names = tuple(sorted(set(raw)))
        y = np.array([names.index(v) for v in raw], dtype=np.int64)
    return validate_arrays(str(path), x, y, num_classes=num_classes, class_names=names,
                           where=f"data.source '{path}'")
