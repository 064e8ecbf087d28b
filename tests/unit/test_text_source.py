"""A table's text column as token ids: a word-level tokenizer trained on the training texts
only (or a local tokenizer folder), padding, attention masks, truncation with a warning or a
refusal; a text model (``bag``) trains on the named tensors; a numeric model is refused."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from mentor.data import load
from mentor.data.text_source import TextOptions
from mentor.errors import DataError, MentorError
from mentor.models import build_model

WORDS = {"animal": "cat dog horse bird fish lion".split(),
         "vehicle": "car bus train plane ship truck".split(),
         "food": "apple bread cheese rice soup cake".split()}


def _write(path, n=150, extra=None, unlabeled=()):
    rng = np.random.default_rng(0)
    names = sorted(WORDS)
    with open(path, "w") as f:
        for i in range(n):
            c = names[i % 3]
            text = " ".join(rng.choice(WORDS[c], size=3 + i % 5))
            if extra and i in extra:
                text = extra[i]
            f.write(json.dumps({"text": text, "label": None if i in unlabeled else c}) + "\n")


def test_texts_become_padded_ids_and_masks_from_a_tokenizer_of_the_training_texts(tmp_path):
    path = tmp_path / "t.jsonl"
    _write(path, unlabeled={1, 2})
    s = load(str(path), target="label", text=TextOptions("text", vocab_size=100,
                                                          max_length=16))
    assert s.describe().endswith("train 90 (88 labeled, 2 unlabeled), val 30, test 30, "
                                 "3 classes")
    x = s.train.x.x
    assert set(x) == {"input_ids", "attention_mask"} and x["input_ids"].shape[1] == 7
    lengths = x["attention_mask"].sum(1)
    assert ((x["input_ids"] == s.tokenizer.pad_id) == (x["attention_mask"] == 0)).all()
    assert lengths.min() >= 3 and s.vocab_size == s.tokenizer.vocab_size
    # the tokenizer was trained on the training rows only: a word only a test row has is
    # unknown to it
    test_row = int(s.rows["test"][0])
    path2 = tmp_path / "u.jsonl"
    _write(path2, unlabeled={1, 2}, extra={test_row: "zebra zebra zebra"})
    s2 = load(str(path2), target="label", text=TextOptions("text", vocab_size=100,
                                                            max_length=16))
    unk = s2.tokenizer.encode(["zebra"])[0]
    assert s2.tokenizer.encode(["cat"])[0] != unk
    assert unk == s2.tokenizer.encode(["[UNK]"])[0]


def test_long_texts_are_cut_with_a_warning_or_refused(tmp_path):
    path = tmp_path / "t.jsonl"
    _write(path, extra={7: "cat " * 40})
    with pytest.warns(UserWarning, match=r"1 of 150 texts have more than 8 tokens \(the "
                      r"longest 40\) and were cut to their first 8"):
        s = load(str(path), target="label", text=TextOptions("text", max_length=8,
                                                              vocab_size=100))
    assert s.train.x.x["input_ids"].shape[1] == 8
    with pytest.raises(DataError, match=r"row 7 has 40 tokens, more than data.max_length 8; "
                       r"expected shorter texts"):
        load(str(path), target="label", text=TextOptions("text", max_length=8, vocab_size=100,
                                                          truncation=False))


def test_a_local_tokenizer_folder_is_used_and_a_wrong_folder_refused(tmp_path):
    transformers = pytest.importorskip("transformers")
    from mentor.data.text import trained_tokenizer
    path = tmp_path / "t.jsonl"
    _write(path)
    tok = trained_tokenizer([" ".join(w) for w in WORDS.values()], 60)
    tok.save(tmp_path)  # tokenizer.json in the folder
    fast = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"),
                                                pad_token="[PAD]", unk_token="[UNK]")
    fast.save_pretrained(str(tmp_path / "tokdir"))
    s = load(str(path), target="label", text=TextOptions("text", tokenizer=str(
        tmp_path / "tokdir")))
    assert s.vocab_size == tok.vocab_size
    row = int(s.rows["train"][0])
    text = [json.loads(line)["text"] for line in path.read_text().splitlines()][row]
    want = tok.encode([text])[0]
    assert s.train.x.x["input_ids"][0, :len(want)].tolist() == want
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"data.tokenizer: '.*empty' is not a tokenizer folder"):
        load(str(path), target="label", text=TextOptions("text", tokenizer=str(
            tmp_path / "empty")))


def test_a_missing_text_column_suggests_the_nearest(tmp_path):
    path = tmp_path / "t.jsonl"
    _write(path)
    with pytest.raises(DataError, match=r"data.text 'txt' is not a column of data.source "
                       r"'.*t.jsonl' \(did you mean 'text'\?\)"):
        load(str(path), target="label", text=TextOptions("txt"))


def test_a_text_model_trains_on_token_ids_and_a_numeric_one_is_refused(tmp_path):
    from mentor.methods import get_method
    from mentor.recipe import TrainSpec
    path = tmp_path / "t.jsonl"
    _write(path, n=300)
    s = load(str(path), target="label", text=TextOptions("text", vocab_size=100))
    with pytest.raises(MentorError, match=r"model 'mlp' reads numeric features, but the data "
                       r"are token ids \(data.text\); expected a text model such as 'bag'"):
        build_model("mlp", s.input_shape, 3, vocab_size=s.vocab_size)
    with pytest.raises(MentorError, match=r"model 'bag' reads token ids; expected a text "
                       r"source"):
        build_model("bag", (4,), 3)
    torch.manual_seed(0)
    net = build_model("bag", s.input_shape, 3, vocab_size=s.vocab_size, embed=16)
    res = get_method("scratch").plan().fit(net, s.train, s.val, num_outputs=3, seed=0,
                                           spec=TrainSpec(epochs=15, lr=0.02, batch_size=32))
    assert res.best_val_accuracy > 0.9  # the words tell the class; chance is 1/3


def test_the_bag_model_averages_only_the_masked_tokens():
    torch.manual_seed(0)
    net = build_model("bag", (5,), 2, vocab_size=10, embed=4)
    ids = torch.tensor([[3, 4, 0, 0, 0]])
    a = net(input_ids=ids, attention_mask=torch.tensor([[1, 1, 0, 0, 0]]))
    b = net(input_ids=torch.tensor([[3, 4, 9, 9, 9]]),
            attention_mask=torch.tensor([[1, 1, 0, 0, 0]]))
    mean = net.embedding.weight[[3, 4]].double().mean(0)
    want = net.head(mean.float()[None])
    assert torch.allclose(a, b) and torch.allclose(a, want, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert net(input_ids=ids).shape == (1, 2)


def test_the_trained_tokenizer_is_the_same_in_every_process(tmp_path):
    """huggingface/tokenizers#1794: its WordPiece trainer numbers tokens in hash-map order,
    which changes from process to process; mentor's word-level tokenizer must not."""
    import subprocess
    import sys
    words = " ".join(f"w{i}" for i in range(40))  # 40 words seen equally often: all ties
    code = ("from mentor.data.text import trained_tokenizer as t; "
            f"k = t([{words!r}] * 3, 20); print(k.encode([{words!r}])[0])")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout for _ in range(3)}
    assert len(runs) == 1, runs
