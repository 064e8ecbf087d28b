"""A table file streamed from disk (``data.stream``): every format gives the split, labels,
labeled flags and sample ids of the in-memory path and the same inputs (to float32 rounding
of the statistics); a run on the streamed splits equals the run on the same rows held in
memory, bit for bit, and resumes mid-epoch exactly; errors name the file's row, not the
piece's; the scratch file goes with the splits."""

from __future__ import annotations

import gc
import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
import torch

import mentor.data.stream_source as stream_source
from mentor.data import DatasetRows, load
from mentor.errors import DataError
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec
from mentor.teachers import as_teacher


def _table(n=900, seed=0, names=False):
    """Five numeric columns and a 3-dim embedding list column; the label follows the first
    two; every 7th row is unlabeled (null)."""
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, 5)) * 3 + 10).astype(np.float32)
    y = (x[:, 0] > 10).astype(int) + (x[:, 1] > 10)
    labels = [None if i % 7 == 0 else (["lo", "mid", "hi"][v] if names else int(v))
              for i, v in enumerate(y)]
    emb = rng.normal(size=(n, 3)).astype(np.float32)
    return pa.table({**{f"f{j}": x[:, j] for j in range(5)},
                     "emb": pa.array(list(emb), pa.list_(pa.float32())),
                     "label": pa.array(labels)})


def _write(tmp_path, fmt, table):
    if fmt == "parquet":
        pq.write_table(table, tmp_path / "t.parquet", row_group_size=200)
        return tmp_path / "t.parquet"
    if fmt == "arrow":
        feather.write_feather(table, tmp_path / "t.arrow", chunksize=150)
        return tmp_path / "t.arrow"
    if fmt == "jsonl":
        with open(tmp_path / "t.jsonl", "w") as f:
            for row in table.to_pylist():
                f.write(json.dumps(row) + "\n")
        return tmp_path / "t.jsonl"
    if fmt == "hf":
        datasets = pytest.importorskip("datasets")
        datasets.Dataset(table).save_to_disk(str(tmp_path / "hf"), max_shard_size="20KB")
        return tmp_path / "hf"
    flat = table.drop_columns(["emb"])
    pcsv.write_csv(flat, tmp_path / "t.csv")
    return tmp_path / "t.csv"


def _inputs(split) -> torch.Tensor:
    """A split's inputs as one tensor (in memory already, or read from its source)."""
    x = split.x
    return x if isinstance(x, torch.Tensor) else x.take(torch.arange(len(split)))


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "jsonl", "hf", "csv"])
def test_every_format_streams_the_split_and_rows_of_the_in_memory_path(tmp_path, fmt,
                                                                       monkeypatch):
    monkeypatch.setattr("mentor.data.table_stream.BATCH_ROWS", 128)  # several pieces
    monkeypatch.setattr("mentor.data.table_stream.CSV_BLOCK", 4096)
    path = _write(tmp_path, fmt, _table(names=fmt in ("jsonl", "csv")))
    kw = dict(target="label", labeled_fraction=0.3, split_seed=4)
    memory, streamed = load(str(path), **kw), load(str(path), stream=True, **kw)
    assert isinstance(memory.train.x, torch.Tensor)
    assert isinstance(streamed.train.x, DatasetRows)
    assert streamed.describe() == memory.describe()
    assert streamed.input_shape == memory.input_shape
    for part in ("train", "val", "test"):
        a, b = getattr(memory, part), getattr(streamed, part)
        assert np.array_equal(memory.rows[part], streamed.rows[part])
        assert torch.equal(a.y, b.y) and torch.equal(a.labeled, b.labeled)
        assert torch.allclose(_inputs(a), _inputs(b), atol=2e-5)
    assert streamed.rows_digest == memory.rows_digest
    # float64 sums here, NumPy's float32 mean there
    assert np.allclose(streamed.mean, memory.mean, rtol=1e-5, atol=1e-6)
    assert np.allclose(streamed.std, memory.std, rtol=1e-5, atol=1e-6)


def test_unstandardized_rows_are_the_file_values(tmp_path):
    path = _write(tmp_path, "parquet", _table())
    s = load(str(path), target="label", stream=True, standardize=False)
    got = _inputs(s.val)[:, :5].numpy()
    want = pq.read_table(path).select([f"f{j}" for j in range(5)]).to_pandas().to_numpy()
    assert np.array_equal(got, want[s.rows["val"]].astype(np.float32))
    assert s.mean is None


def _memory_twin(s):
    from dataclasses import replace

    from mentor.data import Split

    def held(split):
        return Split(_inputs(split), split.y, split.labeled)
    return replace(s, train=held(s.train), val=held(s.val), test=held(s.test))


def _fit(s, spec, **kw):
    torch.manual_seed(0)
    teacher = as_teacher(mlp(s.input_shape, s.num_classes, hidden=[16]),
                         num_classes=s.num_classes)
    torch.manual_seed(1)
    return get_method("kd").plan().fit(
        mlp(s.input_shape, s.num_classes, hidden=[8]), s.train, s.val, spec=spec, seed=3,
        num_outputs=s.num_classes, teacher=teacher, input_shape=s.input_shape, **kw)


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_streamed_run_equals_the_run_on_its_rows_in_memory(tmp_path, workers):
    path = _write(tmp_path, "arrow", _table())
    s = load(str(path), target="label", labeled_fraction=0.5, stream=True,
             images={"workers": workers})
    spec = TrainSpec(epochs=2, batch_size=32, select="best_val")
    streamed, memory = _fit(s, spec), _fit(_memory_twin(s), spec)
    assert _same(streamed.model, memory.model) and streamed.history == memory.history


def test_a_streamed_run_resumes_mid_epoch_bit_for_bit(tmp_path):
    path = _write(tmp_path, "parquet", _table())
    s = load(str(path), target="label", stream=True)
    spec = TrainSpec(epochs=2, batch_size=32, schedule="cosine", select="best_val")
    full = _fit(s, spec)
    part = _fit(s, spec, checkpoint_dir=tmp_path / "ck", max_steps=5)
    assert not part.finished
    resumed = _fit(s, spec, checkpoint_dir=tmp_path / "ck", resume=True)
    assert resumed.finished and _same(resumed.model, full.model)
    assert repr(resumed.history) == repr(full.history)  # NaN telemetry compares by text


def test_a_large_file_streams_by_default(tmp_path, monkeypatch):
    path = _write(tmp_path, "parquet", _table())
    assert isinstance(load(str(path), target="label").train.x, torch.Tensor)
    monkeypatch.setattr(stream_source, "STREAM_BYTES", path.stat().st_size - 1)
    assert isinstance(load(str(path), target="label").train.x, DatasetRows)
    assert isinstance(load(str(path), target="label", stream=False).train.x, torch.Tensor)


def test_the_scratch_file_goes_with_the_splits(tmp_path):
    path = _write(tmp_path, "parquet", _table())
    s = load(str(path), target="label", stream=True)
    folder = s.train.x.dataset._owner.path
    assert (folder / "features.f32").stat().st_size == 900 * 8 * 4
    del s
    gc.collect()
    assert not folder.exists()


def _bad_piece(tmp_path, change):
    """A Parquet file of 600 rows in pieces of 200 whose row 450 is spoiled by ``change``."""
    t = _table(600).to_pylist()
    change(t[450])
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist(t), path, row_group_size=200)
    return path


@pytest.mark.parametrize("change, match", [
    (lambda r: r.update(f2=None), r"column 'f2' is empty at row 450; expected a number"),
    (lambda r: r.update(f3=float("nan")), r"row 450 has a NaN or infinite value"),
    (lambda r: r.update(emb=[1.0, 2.0]), r"column 'emb' holds lists of 3 numbers but row 450 "
                                         r"has 2"),
])
def test_errors_name_the_files_row_not_the_pieces(tmp_path, monkeypatch, change, match):
    monkeypatch.setattr("mentor.data.table_stream.BATCH_ROWS", 200)
    with pytest.raises(DataError, match=match):
        load(str(_bad_piece(tmp_path, change)), target="label", stream=True)


def test_a_list_column_whose_length_changes_between_pieces_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("mentor.data.table_stream.BATCH_ROWS", 200)
    t = _table(400).to_pylist()
    for row in t[200:]:
        row["emb"] = row["emb"][:2]
    path = tmp_path / "ragged.parquet"
    pq.write_table(pa.Table.from_pylist(t), path, row_group_size=200)
    with pytest.raises(DataError, match=r"column 'emb' holds lists of 3 numbers but row 200 "
                                         r"has 2; expected the same length in every row"):
        load(str(path), target="label", stream=True)


@pytest.mark.parametrize("kw, match", [
    (dict(source="iris"), r"data.stream is true but data.source 'iris' is not a table file"),
    (dict(text="f0"), r"data.stream is true with data.text"),
    (dict(weak_noise=0.2), r"data.weak_noise is set but .* is streamed"),
    (dict(target="nope"), r"data.target .*'nope'"),
    (dict(images={"image_size": 8}), r"data.image_size is set but .* is not an image folder"),
])
def test_what_a_stream_cannot_do_is_refused_in_one_sentence(tmp_path, kw, match):
    path = _write(tmp_path, "parquet", _table(100))
    args = {"source": str(path), "target": "label", "stream": True, **kw}
    with pytest.raises(DataError, match=match):
        load(args.pop("source"), **args)
