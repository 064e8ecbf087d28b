"""Real data sets from Debian packages (``fashion-mnist``, ``wordnet-glosses``): read from the
installed files without pickle, the documented rows and classes, the same rows every time;
a missing package is one sentence naming the ``apt-get install`` that fixes it."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from mentor.data import packaged
from mentor.errors import DataError

needs_fashion = pytest.mark.skipif(not packaged.FASHION.exists(),
                                   reason="apt-get install dataset-fashion-mnist (.ci/run does)")
needs_wordnet = pytest.mark.skipif(not packaged.WORDNET_NOUNS.exists(),
                                   reason="apt-get install wordnet-base (.ci/run does)")


def test_read_idx_reads_the_mnist_file_format(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    head = bytes([0, 0, 8, 3]) + b"".join(int(n).to_bytes(4, "big") for n in a.shape)
    with gzip.open(tmp_path / "x.gz", "wb") as f:
        f.write(head + a.tobytes())
    assert np.array_equal(packaged.read_idx(tmp_path / "x.gz"), a)
    with gzip.open(tmp_path / "bad.gz", "wb") as f:
        f.write(b"\x80\x04pickle")
    with pytest.raises(DataError, match=r"is not an IDX file of bytes"):
        packaged.read_idx(tmp_path / "bad.gz")


@needs_fashion
def test_fashion_mnist_is_1000_images_of_each_class_in_file_order():
    d = packaged.fashion_mnist()
    assert d.x.shape == (10000, 784) and d.input_shape == (1, 28, 28)
    assert np.bincount(d.y).tolist() == [1000] * 10
    assert d.class_names[0] == "T-shirt/top" and 0 <= d.x.min() and d.x.max() <= 1
    y = packaged.read_idx(packaged.FASHION / "train-labels-idx1-ubyte.gz")
    x = packaged.read_idx(packaged.FASHION / "train-images-idx3-ubyte.gz")
    first_bag = int(np.flatnonzero(y == 8)[0])  # the file's first bag is the set's first bag
    row = int(np.flatnonzero(d.y == 8)[0])
    assert np.allclose(d.x[row], x[first_bag].reshape(-1) / 255.0)


@needs_wordnet
def test_wordnet_glosses_are_1000_definitions_of_six_classes():
    t = packaged.wordnet_glosses()
    labels = t.column("label").to_pylist()
    assert sorted(set(labels)) == ["animal", "artifact", "food", "location", "person", "plant"]
    assert all(labels.count(c) == 1000 for c in set(labels))
    texts = t.column("text").to_pylist()
    assert all(texts) and not any(";" in s for s in texts)  # definitions, no examples
    assert packaged.wordnet_glosses().equals(t)


def test_a_missing_package_is_one_sentence_with_the_install(monkeypatch, tmp_path):
    monkeypatch.setattr(packaged, "FASHION", tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"data.source 'fashion-mnist' reads .*nowhere, which "
                       r"the Debian package 'dataset-fashion-mnist' installs, and it is not "
                       r"installed; expected `apt-get install dataset-fashion-mnist`"):
        packaged.fashion_mnist()
    from mentor.data import load
    with pytest.raises(DataError, match=r"'wordnet-glosses' is a text source; expected "
                       r"data.text: text"):
        monkeypatch.setattr(packaged, "WORDNET_NOUNS", packaged.WORDNET_NOUNS)
        if not packaged.WORDNET_NOUNS.exists():
            pytest.skip("wordnet-base is not installed")
        load("wordnet-glosses")
