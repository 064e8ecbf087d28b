"""Greedy CTC decoding and the corpus token error rate against naive loops written here."""

import numpy as np
import pytest
import torch

from mentor.errors import DataError
from mentor.transcripts import edit_errors, greedy_decode, token_error_rate


def naive_decode(logits, length, blank=0):
    out, prev = [], None
    for t in range(length):
        c = int(np.argmax(logits[t]))
        if c != blank and c != prev:
            out.append(c)
        prev = c
    return out


def naive_distance(a, b):
    d = np.zeros((len(a) + 1, len(b) + 1), dtype=np.float64)
    d[:, 0] = np.arange(len(a) + 1)
    d[0, :] = np.arange(len(b) + 1)
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1,
                          d[i - 1, j - 1] + (a[i - 1] != b[j - 1]))
    return d[-1, -1]


def test_greedy_decode_matches_a_naive_loop():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(40, 15, 5, generator=g)
    logits[:, :, 0] += 0.5  # plenty of blanks
    lengths = torch.randint(1, 16, (40,), generator=g)
    got = greedy_decode(logits, lengths)
    for b in range(40):
        assert got[b] == naive_decode(logits[b].numpy(), int(lengths[b]))


def test_greedy_decode_collapses_repeats_only_without_a_blank_between():
    # frames: 1 1 0 1 2 2 | padding 2
    ids = torch.tensor([[1, 1, 0, 1, 2, 2, 2]])
    logits = torch.nn.functional.one_hot(ids, 3).float()
    assert greedy_decode(logits, torch.tensor([6])) == [[1, 1, 2]]
    assert greedy_decode(logits, torch.tensor([2])) == [[1]]


def test_token_error_rate_is_corpus_level_against_a_float64_reference():
    rng = np.random.default_rng(3)
    hyps, refs = [], []
    for _ in range(30):
        refs.append(rng.integers(1, 6, rng.integers(1, 9)).tolist())
        hyps.append(rng.integers(1, 6, rng.integers(0, 10)).tolist())
    want = sum(naive_distance(h, r) for h, r in zip(hyps, refs)) / sum(map(len, refs))
    assert token_error_rate(hyps, refs) == pytest.approx(want, abs=1e-12)
    # corpus level, not the mean of per-utterance rates
    per_utt = np.mean([naive_distance(h, r) / len(r) for h, r in zip(hyps, refs)])
    assert abs(per_utt - want) > 1e-3
    assert edit_errors([[1, 2, 3]], [[1, 3]]) == (1, 2)
    assert token_error_rate([[1, 3]], [[1, 3]]) == 0.0


def test_bad_inputs_raise_one_sentence():
    with pytest.raises(DataError, match="hypotheses has 1 utterances but references has 2"):
        token_error_rate([[1]], [[1], [2]])
    with pytest.raises(DataError, match="references hold no token"):
        token_error_rate([[1]], [[]])
    with pytest.raises(DataError, match="expected \\(utterances, frames, classes\\)"):
        greedy_decode(torch.zeros(2, 3), torch.tensor([1, 1]))
