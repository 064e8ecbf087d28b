"""Real data sets that Debian packages ship, read from their installed files (nothing is
downloaded; install the package with ``apt-get``):

- ``fashion-mnist`` (package ``dataset-fashion-mnist``, MIT licence): Zalando's Fashion-MNIST
  (Xiao et al. 2017), 28x28 grey images of 10 kinds of clothing, as IDX files. mentor takes
  the first 1,000 images of each class from the training file (10,000 rows).
- ``wordnet-glosses`` (package ``wordnet-base``, WordNet 3.0 licence): the definitions
  (glosses) of WordNet's noun synsets (Miller 1995; Princeton University), classified by
  their lexicographer file -- animal, artifact, food, location, person, plant. mentor takes
  1,000 glosses of each (evenly spaced through the file; 6,000 rows). A text source: its
  rows are read with ``data.text: text``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..registry import DATASETS
from .arrays import ArrayData, validate_arrays

FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
WORDNET_NOUNS = Path("/usr/share/wordnet/data.noun")
# lexicographer file number -> class (WordNet's lexnames: noun.animal is 05, ...)
WORDNET_CLASSES = {5: "animal", 6: "artifact", 13: "food", 15: "location", 18: "person",
                   20: "plant"}
PER_CLASS = {"fashion-mnist": 1000, "wordnet-glosses": 1000}


def _installed(path: Path, name: str, package: str) -> Path:
    if not path.exists():
        raise DataError(f"data.source {name!r} reads {path}, which the Debian package "
                        f"{package!r} installs, and it is not installed; expected `apt-get "
                        f"install {package}` (run as root)")
    return path


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (the MNIST file format: magic, dims, big-endian sizes, raw bytes),
    gzipped, as ``uint8``; never unpickled."""
    data = gzip.open(path).read()
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise DataError(f"{path} is not an IDX file of bytes; expected the package's files")
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(data[3])]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def _first_per_class(y: np.ndarray, k: int) -> np.ndarray:
    return np.sort(np.concatenate([np.flatnonzero(y == c)[:k] for c in np.unique(y)]))


@DATASETS.register("fashion-mnist", description="Fashion-MNIST from the Debian package "
                   "dataset-fashion-mnist: 10,000 28x28 grey images (1,000 per class), 10 "
                   "kinds of clothing", paper="Xiao et al. 2017, Fashion-MNIST")
def fashion_mnist() -> ArrayData:
    root = _installed(FASHION, "fashion-mnist", "dataset-fashion-mnist")
    x = read_idx(root / "train-images-idx3-ubyte.gz")
    y = read_idx(root / "train-labels-idx1-ubyte.gz")
    keep = _first_per_class(y, PER_CLASS["fashion-mnist"])
    return validate_arrays("fashion-mnist", x[keep].reshape(len(keep), -1) / 255.0,
                           y[keep].astype(np.int64), input_shape=(1, 28, 28),
                           class_names=FASHION_CLASSES)


@DATASETS.register("wordnet-glosses", description="WordNet noun glosses from the Debian package "
                   "wordnet-base: 6,000 definitions, 6 classes (animal, artifact, food, "
                   "location, person, plant); a text source (data.text: text)",
                   paper="Miller 1995, WordNet: A Lexical Database for English")
def wordnet_glosses():
    """The noun glosses of six lexicographer files as a ``pyarrow.Table`` (``text``,
    ``label``): each gloss's definition (the text before its first ``;``, no examples)."""
    import pyarrow as pa
    path = _installed(WORDNET_NOUNS, "wordnet-glosses", "wordnet-base")
    texts: dict[str, list[str]] = {c: [] for c in WORDNET_CLASSES.values()}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("  ") or " | " not in line:  # the licence header
                continue
            head, gloss = line.split(" | ", 1)
            lex = int(head.split()[1])
            if lex in WORDNET_CLASSES:
                texts[WORDNET_CLASSES[lex]].append(gloss.split(";")[0].strip())
    rows, labels = [], []
    for name in sorted(texts):
        every = texts[name]
        k = min(PER_CLASS["wordnet-glosses"], len(every))
        pick = np.linspace(0, len(every) - 1, k).round().astype(int)
        rows += [every[i] for i in pick]
        labels += [name] * k
    return pa.table({"text": rows, "label": labels})
