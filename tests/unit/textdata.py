"""A small labeled text file for tests of text models: three classes whose words tell the
class, loaded as token ids with a word-level tokenizer trained on the training texts."""

from __future__ import annotations

import json

import numpy as np


def small_texts(tmp_path, n: int = 120):
    """``n`` texts of 4 words (class ``i % 3``) in ``tmp_path/t.jsonl``, loaded as splits."""
    from mentor.data import load
    from mentor.data.text_source import TextOptions
    rng = np.random.default_rng(0)
    words = ["cat dog horse".split(), "car bus ship".split(), "rice soup cake".split()]
    with open(tmp_path / "t.jsonl", "w") as f:
        for i in range(n):
            f.write(json.dumps({"text": " ".join(rng.choice(words[i % 3], 4)),
                                "label": i % 3}) + "\n")
    return load(str(tmp_path / "t.jsonl"), target="label",
                text=TextOptions("text", vocab_size=40))
