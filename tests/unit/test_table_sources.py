"""Table files as data sources: CSV, Parquet, Arrow, JSON Lines and Hugging Face folders give
the same rows; labels may be missing (unlabeled rows); a split may be given by a column or by
a DatasetDict's named splits; every refusal is one sentence naming the field or column."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
import torch

from mentor.data import load
from mentor.errors import DataError

N = 90


def _frame(seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1, 2], N // 3)
    x = rng.normal(size=(N, 3)) + y[:, None]
    return x, y


def _table(x, y, unlabeled=()):
    labels = [None if i in unlabeled else int(v) for i, v in enumerate(y)]
    return pa.table({"a": x[:, 0], "emb": [list(r) for r in x[:, 1:]],
                     "label": pa.array(labels, pa.int64())})


def _write_all(tmp_path, table):
    """The same rows in every table format mentor reads."""
    paths = {}
    paths["parquet"] = tmp_path / "d.parquet"
    pq.write_table(table, paths["parquet"])
    paths["arrow"] = tmp_path / "d.arrow"
    feather.write_feather(table, paths["arrow"])
    paths["jsonl"] = tmp_path / "d.jsonl"
    with open(paths["jsonl"], "w") as f:
        for row in table.to_pylist():
            f.write(json.dumps(row) + "\n")
    paths["csv"] = tmp_path / "d.csv"  # a CSV has no list column: the list as columns
    flat = {"a": table.column("a").to_pylist()}
    emb = np.array(table.column("emb").to_pylist())
    for k in range(emb.shape[1]):
        flat[f"emb{k}"] = emb[:, k]
    flat["label"] = table.column("label").to_pylist()
    import pyarrow.csv as pcsv
    pcsv.write_csv(pa.table(flat), paths["csv"])
    return paths


def _same(a, b):
    for part in ("train", "val", "test"):
        sa, sb = getattr(a, part), getattr(b, part)
        assert torch.allclose(sa.x, sb.x, atol=1e-6)  # JSON text round-trips floats to 1e-7
        assert torch.equal(sa.y, sb.y) and torch.equal(sa.labeled, sb.labeled)
        assert np.array_equal(a.rows[part], b.rows[part])


def test_every_table_format_gives_the_same_splits(tmp_path):
    x, y = _frame()
    paths = _write_all(tmp_path, _table(x, y, unlabeled={4, 7, 50}))
    got = {k: load(str(p), target="label") for k, p in paths.items()}
    ref = got["parquet"]
    assert ref.describe().endswith("train 54 (51 labeled, 3 unlabeled), val 18, test 18, "
                                   "3 classes")
    for k, s in got.items():
        _same(ref, s)
    # the unlabeled rows are the file's rows 4, 7 and 50, in train, with no label
    train = ref.rows["train"]
    assert sorted(train[ref.train.y.numpy() < 0].tolist()) == [4, 7, 50]
    # every labeled row appears once; row ids are the file's positions
    every = np.concatenate([train[ref.train.y.numpy() >= 0], ref.rows["val"], ref.rows["test"]])
    assert sorted(every.tolist()) == [i for i in range(N) if i not in (4, 7, 50)]
    # a row's features are the file's row (standardized with train statistics)
    i = int(ref.rows["val"][0])
    raw = np.concatenate([[x[i, 0]], x[i, 1:]]).astype(np.float32)
    assert np.allclose(ref.val.x[0].numpy() * ref.std + ref.mean, raw, atol=1e-5)


def test_the_legacy_csv_reader_and_the_arrow_one_agree(tmp_path):
    from mentor.data.sources import load_csv, load_table
    x, y = _frame(1)
    path = _write_all(tmp_path, _table(x, y, unlabeled={3}))["csv"]
    a, b = load_csv(path, "label"), load_table(path, "label")
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert np.array_equal(a.unlabeled, b.unlabeled)


def test_features_names_the_columns_in_order(tmp_path):
    x, y = _frame()
    path = tmp_path / "d.parquet"
    t = _table(x, y).append_column("note", pa.array(["text"] * N))
    pq.write_table(t, path)
    s = load(str(path), target="label", features=["emb", "a"], standardize=False)
    i = int(s.rows["train"][0])
    assert np.allclose(s.train.x[0].numpy(), [x[i, 1], x[i, 2], x[i, 0]], atol=1e-6)
    with pytest.raises(DataError, match=r"column 'note' holds string values; expected numbers "
                       r"for a feature column \(name the numeric columns with data.features\)"):
        load(str(path), target="label")


def test_a_split_column_keeps_its_rows_and_draws_a_missing_part(tmp_path):
    x, y = _frame()
    split = np.where(np.arange(N) % 6 == 0, "test", "train")
    t = _table(x, y).append_column("part", pa.array(split.tolist()))
    path = tmp_path / "d.parquet"
    pq.write_table(t, path)
    s = load(str(path), target="label", split_column="part")
    assert sorted(s.rows["test"].tolist()) == list(range(0, N, 6))
    assert not set(s.rows["val"].tolist()) & set(range(0, N, 6))  # val drawn from train
    assert len(s.val) > 0 and len(s.train) + len(s.val) + len(s.test) == N
    bad = t.set_column(3, "part", pa.array(["train"] * (N - 1) + ["holdout"]))
    pq.write_table(bad, path)
    with pytest.raises(DataError, match=r"column 'part' is 'holdout' at row 89; expected "
                       r"'train', 'val' \(or 'validation'\) or 'test'"):
        load(str(path), target="label", split_column="part")


def test_an_unlabeled_row_outside_train_is_refused(tmp_path):
    x, y = _frame()
    split = ["test" if i == 5 else "train" for i in range(N)]
    t = _table(x, y, unlabeled={5}).append_column("part", pa.array(split))
    path = tmp_path / "d.parquet"
    pq.write_table(t, path)
    with pytest.raises(DataError, match=r"row 5 has no label but column 'part' puts it in "
                       r"'test'; expected unlabeled rows in 'train' only"):
        load(str(path), target="label", split_column="part")


def test_a_hugging_face_folder_reads_its_named_splits_and_class_names(tmp_path):
    datasets = pytest.importorskip("datasets")
    x, y = _frame()
    feats = datasets.Features({"x": datasets.Sequence(datasets.Value("float32")),
                               "label": datasets.ClassLabel(names=["ant", "bee", "cat"])})

    def part(rows):
        return datasets.Dataset.from_dict(
            {"x": [list(map(float, x[i])) for i in rows],
             "label": [-1 if i == 2 else int(y[i]) for i in rows]}, features=feats)
    folder = tmp_path / "hf"
    datasets.DatasetDict({"train": part(range(60)), "validation": part(range(60, 75)),
                          "test": part(range(75, N))}).save_to_disk(str(folder))
    s = load(str(folder), target="label")
    assert s.rows["val"].tolist() == list(range(60, 75))  # the folder's order, kept
    assert s.rows["test"].tolist() == list(range(75, N))
    assert (s.train.y < 0).sum() == 1 and s.rows["train"][s.train.y.numpy() < 0][0] == 2
    one = tmp_path / "one"
    part(range(N)).save_to_disk(str(one))
    from mentor.data.sources import load_table
    data = load_table(one, "label")
    assert data.class_names == ("ant", "bee", "cat")
    assert data.unlabeled_ids.tolist() == [2]


def test_a_dataset_folder_with_an_unknown_split_name_is_refused(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"x": [1.0, 2.0, 3.0], "label": [0, 1, 0]})
    datasets.DatasetDict({"train": ds, "extra": ds}).save_to_disk(str(tmp_path / "hf"))
    with pytest.raises(DataError, match=r"has split 'extra'; expected split names among "
                       r"train, validation"):
        load(str(tmp_path / "hf"), target="label")


@pytest.mark.parametrize("case, match", [
    ("no-column", r"data.target 'lable' is not a column of data.source '.*d.parquet' "
                  r"\(did you mean 'label'\?\); columns: a, emb, label"),
    ("ragged", r"column 'emb' holds lists of 2 numbers but row 1 has 1; expected the same "
               r"length in every row"),
    ("null-feature", r"column 'a' is empty at row 3; expected a number in every row"),
    ("list-label", r"column 'label' holds list<element: int64> values; expected class indices "
                   r"\(integers\) or class names"),
    ("fraction-label", r"label 0.5 at row 0 is not a whole number"),
    ("garbage", r"data.source '.*d.parquet' is not a readable Parquet file"),
    ("missing", r"data.source: '.*nowhere.parquet' does not exist"),
    ("suffix", r"has suffix '.xlsx'; expected one of .arrow, .csv"),
])
def test_bad_tables_are_refused_in_one_sentence(tmp_path, case, match):
    from mentor.data.sources import load_table
    x, y = _frame()
    path, target = tmp_path / "d.parquet", "label"
    t = _table(x, y)
    if case == "no-column":
        target = "lable"
    elif case == "ragged":
        t = t.set_column(1, "emb", pa.array([[1.0, 2.0], [1.0]] + [[0.0, 0.0]] * (N - 2)))
    elif case == "null-feature":
        t = t.set_column(0, "a", pa.array([1.0, 2.0, 3.0, None] + [0.0] * (N - 4)))
    elif case == "list-label":
        t = t.set_column(2, "label", pa.array([[1]] * N))
    elif case == "fraction-label":
        t = t.set_column(2, "label", pa.array([0.5] + [1.0] * (N - 1)))
    if case == "garbage":
        path.write_bytes(b"PAR1 this is not parquet")
    elif case == "missing":
        path = tmp_path / "nowhere.parquet"
    elif case == "suffix":
        path = tmp_path / "d.xlsx"
        path.write_bytes(b"x")
    else:
        pq.write_table(t, path)
    with pytest.raises(DataError, match=match) as e:
        load_table(path, target)
    assert "\n" not in str(e.value)
