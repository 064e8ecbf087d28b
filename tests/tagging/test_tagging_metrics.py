"""Span F1 and token accuracy (METHODS.md §12 QUEACO's evaluation) against naive float64 /
loop references written here, with the edge cases: no predicted spans, no gold spans, an
I- without a preceding B-."""

import random

import pytest
import torch

from mentor.errors import DataError
from mentor.tagging import span_f1, spans, token_accuracy


def naive_spans(tags):
    """conlleval's reading, written as a token-by-token chunk scan."""
    out, cur = [], None
    for j, t in enumerate(list(tags) + [0]):
        if t == 0:
            if cur:
                out.append((cur[0], j, cur[1]))
            cur = None
        else:
            typ, prefix = (t - 1) // 2, "B" if (t - 1) % 2 == 0 else "I"
            if prefix == "B" or cur is None or cur[1] != typ:
                if cur:
                    out.append((cur[0], j, cur[1]))
                cur = (j, typ)
    return out


def naive_f1(pred, gold, lengths):
    c = p = g = 0
    for pr, go, n in zip(pred, gold, lengths):
        ps, gs = naive_spans(pr[:n]), naive_spans(go[:n])
        c += sum(1 for s in ps if s in gs)
        p += len(ps)
        g += len(gs)
    if p == 0 and g == 0:
        return 1.0
    if c == 0:
        return 0.0
    prec, rec = float(c) / p, float(c) / g
    return 2 * prec * rec / (prec + rec)


def _batch(rng, n=40, lmax=12):
    lengths = [rng.randint(1, lmax) for _ in range(n)]
    pred = [[rng.choice(range(7)) if j < k else 0 for j in range(lmax)] for k in lengths]
    gold = [[rng.choice([0, 0, 1, 2, 3, 4, 5, 6]) if j < k else 0 for j in range(lmax)]
            for k in lengths]
    mask = torch.tensor([[j < k for j in range(lmax)] for k in lengths])
    return pred, gold, lengths, mask


def test_span_f1_and_accuracy_match_naive_references():
    rng = random.Random(0)
    for _ in range(20):
        pred, gold, lengths, mask = _batch(rng)
        p, g = torch.tensor(pred), torch.tensor(gold)
        # padding holds random tags: they must not count
        p_pad = torch.where(mask, p, torch.randint(0, 7, p.shape))
        assert span_f1(p_pad, g, mask) == pytest.approx(naive_f1(pred, gold, lengths), abs=1e-12)
        hits = sum(pr[j] == go[j] for pr, go, n in zip(pred, gold, lengths) for j in range(n))
        assert token_accuracy(p_pad, g, mask) == pytest.approx(float(hits) / sum(lengths),
                                                               abs=1e-12)


def test_spans_decode_i_without_b_as_a_new_span():
    # O I-0 I-0 B-0 I-1 O I-2
    assert spans([0, 2, 2, 1, 4, 0, 6]) == {(1, 3, 0), (3, 4, 0), (4, 5, 1), (6, 7, 2)}
    assert spans([1, 2, 2]) == {(0, 3, 0)}
    assert sorted(spans([2, 1, 6, 6])) == sorted(naive_spans([2, 1, 6, 6]))


def test_edge_cases_no_predicted_or_no_gold_spans():
    mask = torch.ones(2, 4, dtype=torch.bool)
    none = torch.zeros(2, 4, dtype=torch.long)
    some = torch.tensor([[1, 2, 0, 0], [0, 0, 3, 0]])
    assert span_f1(none, none, mask) == 1.0
    assert span_f1(none, some, mask) == 0.0  # nothing predicted
    assert span_f1(some, none, mask) == 0.0  # no gold span
    assert span_f1(some, some, mask) == 1.0
    # one right of two predicted, one of two gold found
    half = torch.tensor([[1, 2, 0, 0], [0, 0, 5, 0]])
    assert span_f1(half, some, mask) == pytest.approx(0.5)


def test_bad_input_is_one_sentence():
    mask = torch.ones(1, 3, dtype=torch.bool)
    ok = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(DataError, match=r"pred holds tag id 7; expected ids 0\.\.6"):
        span_f1(torch.tensor([[0, 7, 0]]), ok, mask)
    with pytest.raises(DataError, match=r"gold has shape \(1, 2\) but mask has shape"):
        token_accuracy(ok, torch.zeros(1, 2, dtype=torch.long), mask)
