"""A damaged or foreign label store is refused on opening with a StoreError naming the file;
``allow_mismatch`` overrides the teacher / data fingerprints but never the checksums; and
``mentor inspect`` reports the damage as one ``error:`` line (exit 2, no traceback)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from labelkit import CLASSES, make_teacher, run_mentor

from mentor.errors import MentorError
from mentor.labels import FullLogits, LabelStore, StoreError, TopK, write_store

SHARD = "shard-00001.arrow"


@pytest.fixture(scope="module")
def good_store(tmp_path_factory, teacher, digits_x):
    """A complete store of 3 shards (400 + 400 + 279 samples); tests damage copies of it."""
    out = tmp_path_factory.mktemp("labels") / "good"
    write_store(teacher, digits_x, out, TopK(CLASSES, 3), shard_samples=400)
    LabelStore.open(out, teacher=teacher, data=digits_x)  # intact: opens
    return out


@pytest.fixture
def store(tmp_path, good_store):
    """A fresh copy of the good store, to damage."""
    return shutil.copytree(good_store, tmp_path / "store")


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of a byte in the middle: same size
    path.write_bytes(bytes(data))


def remove(path):
    path.unlink()


DAMAGE = {"truncated": (truncate, "bytes"), "flipped_byte": (flip_byte, "sha256"),
          "missing": (remove, "missing")}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("allow_mismatch", [False, True])
def test_a_damaged_shard_is_refused_naming_it(store, teacher, digits_x, damage,
                                              allow_mismatch):
    size = (store / SHARD).stat().st_size
    hurt, words = DAMAGE[damage]
    hurt(store / SHARD)
    if damage == "flipped_byte":
        assert (store / SHARD).stat().st_size == size
    with pytest.raises(StoreError) as e:  # never overridden by allow_mismatch
        LabelStore.open(store, teacher=teacher, data=digits_x, allow_mismatch=allow_mismatch)
    assert str(store / SHARD) in str(e.value)
    assert words in str(e.value)


def test_a_flipped_byte_is_found_only_by_the_checksum(store):
    """Without verification the damaged store opens; with it (the default) it does not."""
    flip_byte(store / SHARD)
    LabelStore.open(store, verify=False)
    with pytest.raises(StoreError, match=SHARD):
        LabelStore.open(store)


def test_an_unreadable_shard_without_verification_still_names_it(store):
    truncate(store / SHARD)
    s = LabelStore.open(store, verify=False)
    with pytest.raises(StoreError, match=SHARD):
        s.outputs()


def test_a_store_of_another_teacher_is_refused(store, digits_x):
    other = make_teacher((32,), seed=1, scale=3.0)
    with pytest.raises(StoreError) as e:
        LabelStore.open(store, teacher=other)
    assert str(store / "manifest.json") in str(e.value)
    assert "another teacher" in str(e.value)
    with pytest.raises(StoreError, match="manifest.json"):
        LabelStore.open(store, teacher=other, data=digits_x)
    bigger = make_teacher((64,), seed=0, scale=3.0)  # another architecture, too
    with pytest.raises(StoreError, match="another teacher"):
        LabelStore.open(store, teacher=bigger)
    # allow_mismatch overrides the fingerprint, and the contents are still served
    s = LabelStore.open(store, teacher=other, data=digits_x, allow_mismatch=True)
    assert s.outputs().shape == (len(digits_x), 1, CLASSES)


def test_a_store_of_other_data_is_refused(store, teacher, digits_x):
    others = {"other rows": digits_x[1:], "same count, changed values": digits_x.flip(0),
              "one value changed": digits_x.clone().index_put_(
                  (torch.tensor([7]), torch.tensor([3])), torch.tensor(0.25))}
    for name, data in others.items():
        with pytest.raises(StoreError) as e:
            LabelStore.open(store, data=data)
        assert str(store / "manifest.json") in str(e.value), name
        assert "other data" in str(e.value), name
        LabelStore.open(store, teacher=teacher, data=data, allow_mismatch=True)
    LabelStore.open(store, teacher=teacher, data=digits_x.clone())  # equal values: same data


def test_a_foreign_or_broken_manifest_is_refused_naming_it(store):
    m = store / "manifest.json"
    text = m.read_text()
    m.write_text(text[:-20])
    with pytest.raises(StoreError, match="manifest.json"):
        LabelStore.open(store)
    manifest = json.loads(text)
    m.write_text(json.dumps({**manifest, "format": "something-else"}))
    with pytest.raises(StoreError, match="manifest.json"):
        LabelStore.open(store)
    m.write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(StoreError, match="manifest.json"):
        LabelStore.open(store)
    m.unlink()  # an incomplete store: the labeler was stopped before the manifest
    with pytest.raises(StoreError, match="manifest.json"):
        LabelStore.open(store)


def test_a_manifest_entry_edited_to_match_a_damaged_shard_still_fails(store):
    """Rewriting the recorded size after truncation (and the manifest's own checksum) does
    not get past the shard's sha256."""
    from mentor.labels.store import manifest_checksum
    truncate(store / SHARD)
    m = json.loads((store / "manifest.json").read_text())
    m["shards"][1]["bytes"] = (store / SHARD).stat().st_size
    m["checksum"] = manifest_checksum(m)
    (store / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(StoreError, match="sha256"):
        LabelStore.open(store, allow_mismatch=True)


def test_writing_into_a_store_of_another_teacher_is_refused(store, digits_x):
    other = make_teacher((32,), seed=1, scale=3.0)
    before = sorted(p.name for p in store.iterdir())
    with pytest.raises(StoreError, match="manifest.json"):
        write_store(other, digits_x, store, TopK(CLASSES, 3), shard_samples=400)
    with pytest.raises(StoreError, match="manifest.json"):  # same teacher, another kind
        write_store(make_teacher((32,), seed=0, scale=3.0), digits_x, store,
                    FullLogits(CLASSES), shard_samples=400)
    assert sorted(p.name for p in store.iterdir()) == before


def test_store_error_is_a_mentor_error():
    assert issubclass(StoreError, MentorError)  # the CLI turns it into one error: line


# --------------------------------------------------------------------------- mentor inspect


def test_inspect_reports_a_corrupt_store_as_one_error_line(tmp_path, good_store):
    """(One damage through the CLI: every StoreError takes the same path to the user.)"""
    bad = shutil.copytree(good_store, tmp_path / "flipped")
    flip_byte(bad / SHARD)
    proc = run_mentor("inspect", bad, "--json", cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert str(bad / SHARD) in lines[0] and "sha256" in lines[0]
    assert proc.stdout == ""


def test_inspect_describes_a_good_store(tmp_path, good_store, digits_x):
    proc = run_mentor("inspect", good_store, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["kind"] == {"kind": "topk", "num_classes": CLASSES, "k": 3, "temperature": 1.0}
    assert (info["samples"], info["views_per_sample"], info["rows"]) == (len(digits_x), 1,
                                                                         len(digits_x))
    assert info["shards"] == 3
    assert info["bytes_on_disk"] == sum(p.stat().st_size for p in good_store.glob("*.arrow"))
    assert sum(h["rows"] for h in info["confidence_by_class"].values()) == len(digits_x)
    assert info["checksums"].startswith("verified")
