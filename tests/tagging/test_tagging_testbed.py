"""TB-SEQ tagging (METHODS.md §12 QUEACO's CPU experiment): the weak tags' corruption is as
documented, strong / val / test keep clean tags, the generator is deterministic, bad input is
one sentence."""

import numpy as np
import pytest
import torch

from mentor.errors import DataError
from mentor.tagging import TaggingData, corrupt, spans, tb_seq_tagging


@pytest.fixture(scope="module")
def data():
    return tb_seq_tagging(num_sequences=1500, seed=3)


def test_shapes_lengths_and_splits(data):
    lengths = data.mask.sum(1)
    assert int(lengths.min()) >= 8 and int(lengths.max()) <= 20
    assert (data.tokens[~data.mask] == 0).all() and (data.tokens[data.mask] > 0).all()
    assert len(data.strong) == round(0.05 * 900)
    ids = torch.cat([data.strong, data.weak_ids, data.val, data.test])
    assert sorted(ids.tolist()) == list(range(1500))
    # every gold sequence has a span, each preceded by a trigger word of its type
    for i in range(100):
        n = int(lengths[i])
        found = spans(data.gold[i, :n].tolist())
        assert found
        for start, _, k in found:
            assert 1 + 3 * k <= int(data.tokens[i, start - 1]) <= 3 + 3 * k


def test_weak_tags_are_corrupted_at_the_documented_rate(data):
    w, m = data.weak_ids, data.mask[data.weak_ids]
    wrong = (data.weak[w] != data.gold[w])[m].float().mean().item()
    n = int(m.sum())
    assert abs(wrong - 0.3) < 4 * (0.3 * 0.7 / n) ** 0.5, wrong
    clean = torch.cat([data.strong, data.val, data.test])
    assert torch.equal(data.weak[clean], data.gold[clean])


def test_corruption_kinds_follow_the_rule():
    gold = torch.tensor([[0, 1, 2, 0, 3, 0]] * 4000)
    mask = torch.ones_like(gold, dtype=torch.bool)
    weak = corrupt(gold, mask, 3, 1.0, np.random.default_rng(0))
    assert (weak != gold).all()  # every selected tag changes
    col = lambda j: weak[:, j].tolist()  # noqa: E731
    # B-0: wrong type keeps B (B-1, B-2), dropped O, shifted I-0; each about a third
    b = col(1)
    assert set(b) == {3, 5, 0, 2}
    for tag, share in ((0, 1 / 3), (2, 1 / 3), (3, 1 / 6), (5, 1 / 6)):
        assert abs(b.count(tag) / 4000 - share) < 0.03
    assert set(col(2)) == {4, 6, 0, 1}  # I-0: I-1, I-2, O, B-0
    assert set(col(3)) == {2}  # O after a type-0 span: the span ends one later
    assert set(col(0)) == {1, 3, 5}  # O at the start: a spurious B-k
    assert set(col(5)) == {4}  # O after B-1


def test_rate_zero_is_gold_and_generator_is_deterministic():
    a, b = tb_seq_tagging(300, seed=5), tb_seq_tagging(300, seed=5)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.weak, b.weak)
    assert not torch.equal(a.tokens, tb_seq_tagging(300, seed=6).tokens)
    clean = tb_seq_tagging(300, seed=5, corruption=0.0)
    assert torch.equal(clean.weak, clean.gold)


def test_bad_input_is_one_sentence(data):
    bad = data.gold.clone()
    bad[0, 0] = 9
    with pytest.raises(DataError, match=r"weak holds tag id 9; expected ids 0\.\.6"):
        TaggingData(data.tokens, data.mask, data.gold, bad, data.strong, data.weak_ids,
                    data.val, data.test)
    with pytest.raises(DataError, match=r"gold has shape \(1500, 19\) but mask has shape"):
        TaggingData(data.tokens, data.mask, data.gold[:, :19], data.weak, data.strong,
                    data.weak_ids, data.val, data.test)
    with pytest.raises(DataError, match="named twice"):
        TaggingData(data.tokens, data.mask, data.gold, data.weak, data.strong,
                    data.weak_ids, data.val, data.val)
