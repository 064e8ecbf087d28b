"""Unlabeled rows in data files: an empty target cell in a CSV, or the label -1 (CSV or
.npz), marks a row unlabeled; it joins the training split as an unlabeled row (never
validation or test, never a class), standardized with the training rows' statistics. The
issue's case: pandas writes labels as ``0.0, 1.0, ...`` and missing ones as empty cells,
which used to make ``""`` class 0 and shift every real class by one."""

from pathlib import Path

import numpy as np
import pytest
import torch

from mentor.data import load, load_source
from mentor.errors import DataError


def _rows(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of 3 features in 3 well-separated classes (class ``i % 3``)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = np.eye(3)[y] * 4 + rng.normal(0, 0.5, size=(n, 3))
    return x.round(4), y  # what a CSV of 4 decimals holds


def _csv(path: Path, x: np.ndarray, labels: list[str]) -> Path:
    lines = ["a,b,c,label"] + [",".join(f"{v:.4f}" for v in row) + f",{lab}"
                               for row, lab in zip(x, labels)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _check_unlabeled_pool(s, x_unl: np.ndarray) -> None:
    """``s.train`` ends with the unlabeled rows (label -1, not labeled), standardized with
    the training statistics; validation and test hold labeled rows only."""
    m = len(x_unl)
    assert s.train.y[-m:].tolist() == [-1] * m and not s.train.labeled[-m:].any()
    assert (s.train.y[:-m] >= 0).all() and s.train.labeled[:-m].all()
    assert (s.val.y >= 0).all() and (s.test.y >= 0).all()
    want = (x_unl - s.mean) / s.std
    np.testing.assert_allclose(s.train.x[-m:].numpy(), want, rtol=1e-5, atol=1e-5)


def test_issue_pandas_style_csv_with_empty_cells(tmp_path):
    """The issue's file: ``0.0``-style labels and empty cells for unlabeled rows."""
    x, y = _rows(60)
    unl = np.arange(60) % 5 == 0  # 12 unlabeled rows
    labels = ["" if u else f"{float(c)}" for c, u in zip(y, unl)]
    path = _csv(tmp_path / "d.csv", x, labels)
    data = load_source(str(path), target="label")
    assert data.num_classes == 3 and data.class_names == ()
    assert data.y.tolist() == y[~unl].tolist()  # each labeled row keeps its own class
    assert data.unlabeled.shape == (12, 3)
    s = load(str(path), target="label")
    assert s.num_classes == 3
    assert len(s.train) + len(s.val) + len(s.test) == 60
    assert len(s.val) + len(s.test) + int(s.train.labeled.sum()) == 48
    _check_unlabeled_pool(s, x[unl].astype(np.float32))
    assert "train 42 (30 labeled, 12 unlabeled), val 9, test 9" in s.describe() and "3 classes" in s.describe()


def test_minus_one_marks_unlabeled_rows_in_csv(tmp_path):
    x, y = _rows(45)
    unl = np.arange(45) % 4 == 1
    labels = ["-1" if u else str(c) for c, u in zip(y, unl)]
    labels[5] = "-1.0" if unl[5] else labels[5]
    s = load(str(_csv(tmp_path / "d.csv", x, labels)), target="label")
    assert s.num_classes == 3
    _check_unlabeled_pool(s, x[unl].astype(np.float32))


def test_minus_one_marks_unlabeled_rows_in_npz(tmp_path):
    x, y = _rows(60)
    unl = np.arange(60) % 6 == 2
    for dtype in (np.int64, np.float32):
        np.savez(tmp_path / "d.npz", x=x, y=np.where(unl, -1, y).astype(dtype))
        data = load_source(str(tmp_path / "d.npz"))
        assert data.num_classes == 3 and data.y.tolist() == y[~unl].tolist()
        s = load(str(tmp_path / "d.npz"))
        _check_unlabeled_pool(s, x[unl].astype(np.float32))


def test_named_labels_with_empty_cells(tmp_path):
    x, y = _rows(60)
    unl = np.arange(60) % 5 == 3
    names = np.array(["cat", "dog", "eel"])
    labels = ["" if u else names[c] for c, u in zip(y, unl)]
    data = load_source(str(_csv(tmp_path / "d.csv", x, labels)), target="label")
    assert data.class_names == ("cat", "dog", "eel") and data.num_classes == 3
    assert data.y.tolist() == y[~unl].tolist() and len(data.unlabeled) == int(unl.sum())


def test_files_without_unlabeled_rows_load_as_before(tmp_path):
    x, y = _rows(30)
    data = load_source(str(_csv(tmp_path / "d.csv", x, [str(c) for c in y])), target="label")
    assert data.unlabeled is None and data.y.tolist() == y.tolist()
    s = load(str(tmp_path / "d.csv"), target="label")
    assert bool(s.train.labeled.all()) and "(18 labeled)," in s.describe()


@pytest.mark.parametrize("labels, needles", [
    (["", "-1"] * 15,
     ("data.source", "d.csv", "column 'label' is empty or -1 in all 30 rows",
      "expected class labels")),
    (["0", "1", "2", "1.5"] + ["0", "1", "2"] * 8 + ["", "0"],
     ("data.source", "d.csv", "column 'label' line 5 is '1.5', not a whole number",
      "expected class indices 0, 1, ... (an empty cell or -1 for an unlabeled row)")),
    (["0", "1", "2", "-2"] + ["0", "1", "2"] * 8 + ["", "0"],
     ("data.source", "d.csv", "label -2 at line 5 is negative",
      "expected class indices 0, 1, ..., or -1 for an unlabeled row")),
])
def test_bad_csv_labels_are_refused_in_one_sentence(tmp_path, labels, needles):
    x, _ = _rows(len(labels))
    with pytest.raises(DataError) as e:
        load_source(str(_csv(tmp_path / "d.csv", x, labels)), target="label")
    msg = str(e.value)
    assert "\n" not in msg and all(n in msg for n in needles), msg


@pytest.mark.parametrize("y, needles", [
    (np.full(30, -1), ("data.source", "d.npz", "all 30 rows are unlabeled (label -1)",
                       "expected labeled rows of at least 2 classes")),
    (np.where(np.arange(30) == 4, 1.5, np.arange(30) % 3),
     ("d.npz", "label 1.5 at row 4 is not a whole number",
      "expected class indices 0, 1, ..., or -1 for an unlabeled row")),
    (np.where(np.arange(30) == 7, -3, np.arange(30) % 3),
     ("d.npz", "label -3 at row 7 is negative",
      "expected class indices 0, 1, ..., or -1 for an unlabeled row")),
])
def test_bad_npz_labels_are_refused_in_one_sentence(tmp_path, y, needles):
    np.savez(tmp_path / "d.npz", x=_rows(30)[0], y=y)
    with pytest.raises(DataError) as e:
        load_source(str(tmp_path / "d.npz"))
    msg = str(e.value)
    assert "\n" not in msg and all(n in msg for n in needles), msg


def test_negative_label_is_refused_with_num_classes_too(tmp_path):
    x, y = _rows(30)
    np.savez(tmp_path / "d.npz", x=x, y=np.where(np.arange(30) == 2, -2, y))
    with pytest.raises(DataError, match="label -2 at row 2 is negative"):
        load_source(str(tmp_path / "d.npz"), num_classes=3)


def test_kd_trains_on_a_csv_with_unlabeled_rows(tmp_path):
    """End to end through the recipe path (``DataSpec.load``, as ``mentor run`` loads
    data): the teacher's data is the labeled rows only, the student distils on all training
    rows, and the test accuracy counts the labeled test rows only."""
    import mentor
    from sklearn.linear_model import LogisticRegression

    from mentor.commands.run import _all_labeled
    from mentor.recipe import DataSpec

    x, y = _rows(90)
    unl = np.arange(90) % 4 == 0
    _csv(tmp_path / "d.csv", x, ["" if u else f"{float(c)}" for c, u in zip(y, unl)])
    splits = DataSpec(source=str(tmp_path / "d.csv"), target="label").load()
    own = _all_labeled(splits.train)  # what mentor run trains its teacher on
    assert len(own) == int(splits.train.labeled.sum()) and (own.y >= 0).all()
    assert int((~splits.train.labeled).sum()) == int(unl.sum())
    teacher = LogisticRegression().fit(own.x.numpy(), own.y.numpy())
    torch.manual_seed(0)
    student = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    d = mentor.Distiller(student, teacher, method="kd", epochs=15, lr=1e-2)
    d.fit(splits)
    result = d.evaluate(splits)
    assert result["n"] == len(splits.test) and (splits.test.y >= 0).all()
    assert result["accuracy"] > 0.9, result  # a class shifted by one would fail this
