"""Round trips through a label store: what comes back out equals what the teacher said.

Every kind is written with ``write_store`` and decoded with ``LabelStore.outputs()``, then
compared with the live teacher on the same inputs (the teacher is run on whole batches, as
the labeler runs it: a lone row may take another BLAS path and differ in the last bit).
"""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
import torch
from labelkit import CLASSES, INPUT_SHAPE, make_net, read_shard

from mentor.errors import MentorError
from mentor.labels import (FullLogits, Hard, LabelStore, StoreTeacher, Tensors, TopK, Views,
                           write_store)


def live(teacher, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return teacher.logits(x)


def written(tmp_path, teacher, x, kind, **kw) -> LabelStore:
    out = write_store(teacher, x, tmp_path / "store", kind, **kw)
    assert out == tmp_path / "store"
    return LabelStore.open(out, teacher=teacher, data=x)


# --------------------------------------------------------------------------- full logits


def test_full_float32_logits_are_exact(tmp_path, teacher, digits_x):
    store = written(tmp_path, teacher, digits_x, FullLogits(CLASSES), shard_samples=400)
    out = store.outputs()
    assert out.shape == (len(digits_x), 1, CLASSES) and out.dtype == torch.float32
    assert torch.equal(out[:, 0], live(teacher, digits_x))
    assert len(store.manifest["shards"]) == 3  # 400 + 400 + 279 samples


def test_full_float16_logits_are_within_float16_rounding(tmp_path, teacher, digits_x):
    store = written(tmp_path, teacher, digits_x, FullLogits(CLASSES, "float16"))
    table = read_shard(store.path / store.manifest["shards"][0]["file"])
    assert table.schema.field("logits").type == pa.list_(pa.float16(), CLASSES)
    z = live(teacher, digits_x)
    out = store.outputs()[:, 0]
    # float16 rounding to nearest: relative error <= 2^-11 for normal numbers, absolute error
    # <= 2^-25 among subnormals; the decoded values are exactly float16(z) as float32
    err = (out - z).abs()
    assert bool((err <= z.abs() * 2.0 ** -11 + 2.0 ** -25).all()), float(err.max())
    assert torch.equal(out, z.half().float())
    assert not torch.equal(out, z)  # it was rounded: the float16 path was really taken


# --------------------------------------------------------------------------- top-k


@pytest.mark.parametrize("k", [3, CLASSES])
@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_topk_keeps_the_top_probabilities_and_spreads_the_tail(tmp_path, teacher, digits_x, k,
                                                               temperature):
    store = written(tmp_path, teacher, digits_x, TopK(CLASSES, k, temperature))
    assert store.as_teacher().num_classes == CLASSES
    p = torch.softmax(live(teacher, digits_x).double() / temperature, -1)
    q = torch.softmax(store.outputs()[:, 0].double() / temperature, -1)  # what a student sees
    top = p.topk(k, -1).indices
    assert torch.equal(q.argmax(-1), p.argmax(-1))
    assert (q.gather(1, top) - p.gather(1, top)).abs().max() <= 1e-6
    if k == CLASSES:
        assert (q - p).abs().max() <= 1e-6  # nothing dropped: the whole distribution
        return
    rest = torch.ones_like(p, dtype=torch.bool).scatter_(1, top, False)
    q_rest = q[rest].reshape(len(p), CLASSES - k)
    tail = 1.0 - p.gather(1, top).sum(-1, keepdim=True)
    assert (q_rest - tail / (CLASSES - k)).abs().max() <= 1e-6  # the tail mass, uniformly
    assert (q_rest.max(-1).values - q_rest.min(-1).values).max() <= 1e-9
    assert float(tail.max()) > 1e-3  # the tail was not negligible, so the test can tell
    table = read_shard(store.path / "shard-00000.arrow")
    assert table.column_names == ["sample_id", "view_id", "topk_index", "topk_value",
                                  "tail_mass"]


# --------------------------------------------------------------------------- hard labels


def test_hard_labels_keep_the_argmax_and_its_confidence(tmp_path, teacher, digits_x):
    store = written(tmp_path, teacher, digits_x, Hard(CLASSES))
    p = torch.softmax(live(teacher, digits_x).double(), -1)
    q = torch.softmax(store.outputs()[:, 0].double(), -1)
    label = q.argmax(-1)
    assert torch.equal(label, p.argmax(-1))
    assert (q.gather(1, label[:, None]) - p.max(-1, keepdim=True).values).abs().max() <= 1e-6
    assert len(set(label.tolist())) > 3  # a teacher that does not predict one class only
    table = read_shard(store.path / "shard-00000.arrow")
    assert table.column("label").to_pylist() == p.argmax(-1).tolist()


# --------------------------------------------------------------------------- tensors


class FeatureTeacher:
    """A teacher whose 'logits' are (B, 3, 4) feature maps (a module, so fingerprinted by
    its weights)."""

    def __init__(self):
        torch.manual_seed(3)
        self.module = torch.nn.Linear(64, 12)

    def logits(self, x):
        return self.module(x).reshape(len(x), 3, 4)


def test_tensor_kind_round_trips_features_exactly(tmp_path, digits_x):
    teacher = FeatureTeacher()
    x = digits_x[:300]
    store = written(tmp_path, teacher, x, Tensors((3, 4)), shard_samples=128)
    out = store.outputs()
    assert out.shape == (300, 1, 3, 4)
    assert torch.equal(out[:, 0], live(teacher, x))
    assert store.manifest["kind"] == {"kind": "tensor", "shape": [3, 4], "dtype": "float32"}
    with pytest.raises(MentorError, match="tensor"):
        store.as_teacher()  # no class outputs to distill from
    with pytest.raises(MentorError, match=r"\(3, 4\)"):
        Tensors((3, 4)).encode(torch.zeros(2, 4, 3))


def test_tensor_kind_encode_decode_directly():
    kind = Tensors((2, 5, 3))
    z = torch.randn(7, 2, 5, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(kind.decode(pa.table(kind.encode(z))), z)
    half = Tensors((2, 5, 3), "float16")
    assert torch.equal(half.decode(pa.table(half.encode(z))), z.half().float())


# --------------------------------------------------------------------------- views


@pytest.fixture
def crop_views():
    return Views("crop", 3, seed=7, input_shape=INPUT_SHAPE,
                 params={"scale_min": 0.4, "flip": True})


def test_views_rows_equal_the_teacher_on_the_regenerated_views(tmp_path, teacher, digits_x,
                                                               crop_views):
    n = len(digits_x)
    store = written(tmp_path, teacher, digits_x, FullLogits(CLASSES), views=crop_views,
                    shard_samples=200)
    out = store.outputs()
    assert out.shape == (n, 3, CLASSES)
    assert store.manifest["rows"] == 3 * n
    regenerated = Views.from_manifest(store.manifest["views"])
    sid = torch.arange(n)
    seen = []
    for v in range(3):
        vid = torch.full((n,), v)
        xv = crop_views.apply(digits_x[sid], sid, vid, n)
        assert torch.equal(regenerated.apply(digits_x[sid], sid, vid, n), xv)  # bitwise
        assert torch.equal(store.views.apply(digits_x[sid], sid, vid, n), xv)
        assert not torch.equal(xv, digits_x)  # the views really are augmentations
        seen.append(xv)
        assert torch.equal(out[:, v], live(teacher, xv)), v
    assert not torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])


def test_a_view_depends_only_on_its_sample_and_view_id(teacher, digits_x, crop_views):
    """Any subset, in any order, regenerates the same inputs as the whole table did."""
    n = len(digits_x)
    sid, vid = torch.tensor([5, 900, 5, 17, 1078]), torch.tensor([2, 0, 1, 2, 1])
    part = crop_views.apply(digits_x[sid], sid, vid, n)
    for j in range(len(sid)):
        one = crop_views.apply(digits_x[sid[j:j + 1]], sid[j:j + 1], vid[j:j + 1], n)
        whole = crop_views.apply(digits_x, torch.arange(n), torch.full((n,), int(vid[j])), n)
        assert torch.equal(one[0], part[j]) and torch.equal(whole[sid[j]], part[j])
    other_seed = Views("crop", 3, seed=8, input_shape=INPUT_SHAPE,
                       params={"scale_min": 0.4, "flip": True})
    assert not torch.equal(other_seed.apply(digits_x[sid], sid, vid, n), part)


def test_store_teacher_serves_the_stored_rows(tmp_path, teacher, digits_x, crop_views):
    store = written(tmp_path, teacher, digits_x, FullLogits(CLASSES), views=crop_views)
    st = store.as_teacher()
    assert isinstance(st, StoreTeacher) and st.num_classes == CLASSES
    assert st.views.describe() == crop_views.describe()
    out = store.outputs()
    index = torch.tensor([3, 0, 1078, 3])
    view = torch.tensor([0, 2, 1, 1])
    assert torch.equal(st.logits_at(None, index), out[index, 0])
    assert torch.equal(st.logits_at_view(None, index, view), out[index, view])
    with pytest.raises(MentorError, match="1079 samples"):
        st.logits_at(None, torch.tensor([1079]))
    with pytest.raises(MentorError):
        st.logits(digits_x[:4])  # a store cannot label new inputs


# --------------------------------------------------------------------------- plain Arrow


def test_shards_are_plain_arrow_with_the_documented_columns(tmp_path, teacher, digits_x,
                                                            crop_views):
    store = written(tmp_path, teacher, digits_x, FullLogits(CLASSES), views=crop_views,
                    shard_samples=300)
    shards = store.manifest["shards"]
    assert [s["file"] for s in shards] == [f"shard-{s:05d}.arrow" for s in range(4)]
    out = store.outputs()
    for s, sh in enumerate(shards):
        with pa.OSFile(str(store.path / sh["file"]), "rb") as f:
            t = pa.ipc.open_file(f).read_all()
        assert t.schema.names == ["sample_id", "view_id", "logits"]
        assert t.schema.field("sample_id").type == pa.int64()
        assert t.schema.field("view_id").type == pa.int32()
        assert t.schema.field("logits").type == pa.list_(pa.float32(), CLASSES)
        lo, hi = sh["samples"]
        assert (lo, hi) == (300 * s, min(300 * (s + 1), len(digits_x)))
        assert t.num_rows == sh["rows"] == 3 * (hi - lo)
        # sample-major: every view of a sample, in order
        assert t.column("sample_id").to_pylist() == [i for i in range(lo, hi) for _ in range(3)]
        assert t.column("view_id").to_pylist() == [0, 1, 2] * (hi - lo)
        logits = torch.tensor(t.column("logits").to_pylist())
        assert torch.equal(logits.reshape(hi - lo, 3, CLASSES), out[lo:hi])
        side = (store.path / f"shard-{s:05d}.json").read_text()
        assert f'"sha256": "{sh["sha256"]}"' in side


def test_shards_read_with_pandas(tmp_path, teacher, digits_x):
    pytest.importorskip("pandas")
    store = written(tmp_path, teacher, digits_x, Hard(CLASSES))
    with pa.OSFile(str(store.path / "shard-00000.arrow"), "rb") as f:
        df = pa.ipc.open_file(f).read_pandas()
    assert list(df.columns) == ["sample_id", "view_id", "label", "confidence"]
    assert df["sample_id"].tolist() == list(range(len(digits_x)))
    p = torch.softmax(live(teacher, digits_x).double(), -1)
    assert df["label"].tolist() == p.argmax(-1).tolist()


def test_a_rerun_of_a_complete_store_changes_no_shard(tmp_path, teacher, digits_x):
    out = tmp_path / "store"
    write_store(teacher, digits_x, out, FullLogits(CLASSES), shard_samples=300)
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("shard-*")}
    write_store(teacher, digits_x, out, FullLogits(CLASSES), shard_samples=300)
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("shard-*")}
    assert before == after and len(before) == 2 * math.ceil(len(digits_x) / 300)
    other = make_net((32,), seed=1)
    from mentor.teachers import ModuleTeacher
    with pytest.raises(MentorError, match="manifest.json"):  # another teacher: refused
        write_store(ModuleTeacher(other, CLASSES), digits_x, out, FullLogits(CLASSES),
                    shard_samples=300)


def test_a_manifest_whose_fields_cannot_be_read_is_a_store_error(tmp_path, teacher, digits_x):
    """A manifest that passes the structural checks but whose 'views' entry lacks a key is
    refused with StoreError naming the manifest (it was an UnboundLocalError)."""
    import json
    store = written(tmp_path, teacher, digits_x, Hard(CLASSES))
    mpath = store.path / "manifest.json"
    manifest = json.loads(mpath.read_text())
    manifest["views"] = {"augment": "crop"}
    from mentor.labels.store import manifest_checksum
    manifest["checksum"] = manifest_checksum(manifest)  # an edit that also fixes the checksum
    mpath.write_text(json.dumps(manifest))
    with pytest.raises(MentorError, match=r"manifest\.json' cannot be read \(KeyError"):
        LabelStore.open(store.path, verify=False, allow_mismatch=True)
