"""The tagging task adapter (mentor.tasks.tagging) against naive float64 references, its
element view of a batch, and the per-token tagger it trains."""

import pytest
import torch
import torch.nn.functional as F

import mentor  # noqa: F401  (registers built-ins)
from mentor.contracts import Batch, Targets
from mentor.errors import MentorError
from mentor.losses.objective import Objective
from mentor.models.tagger import BiGRUTagger, reverse_within_length
from mentor.tasks.tagging import PAD, TAGGING, check_tag_ids


def naive_spans(tags):
    """conlleval's chunks, written out as a state machine over tag strings."""
    names = ["O"] + [f"{p}-{k}" for k in range(3) for p in ("B", "I")]
    out, cur = [], None
    for j, t in enumerate([names[t] for t in tags] + ["O"]):
        prefix, kind = (t.split("-") + [None])[:2]
        starts = prefix == "B" or (prefix == "I" and (cur is None or cur[1] != kind))
        if cur is not None and (prefix == "O" or starts):
            out.append((cur[0], j, cur[1]))
            cur = None
        if starts:
            cur = (j, kind)
    return out


def naive_f1(pred, gold):
    c = p = g = 0.0
    for pr, go in zip(pred, gold):
        n = sum(1 for t in go if t >= 0)
        ps, gs = set(naive_spans(pr[:n])), set(naive_spans(go[:n]))
        c, p, g = c + len(ps & gs), p + len(ps), g + len(gs)
    if p == 0 and g == 0:
        return 1.0
    return 0.0 if c == 0 else 2 * c / (p + g)


def _random(seed, rows=40, length=9, tags=7):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, length + 1, (rows,), generator=g)
    pad = torch.arange(length)[None] >= lengths[:, None]
    gold = torch.randint(0, tags, (rows, length), generator=g).masked_fill(pad, PAD)
    logits = torch.randn(rows, length, tags, generator=g)
    return logits, gold


@pytest.mark.parametrize("seed", range(5))
def test_span_f1_matches_a_naive_float64_reference(seed):
    logits, gold = _random(seed)
    pred = logits.argmax(-1)
    want = naive_f1(pred.tolist(), gold.tolist())
    assert TAGGING.metric_value(TAGGING.metric_state(logits, gold)) == pytest.approx(want,
                                                                                   abs=1e-12)
    # shards add up to the whole split; an empty shard adds nothing
    parts = (TAGGING.metric_state(logits[:13], gold[:13]) + TAGGING.metric_state(
        logits[13:], gold[13:]) + TAGGING.metric_state(None, None))
    assert torch.equal(parts, TAGGING.metric_state(logits, gold))


def test_padding_predictions_are_never_scored():
    logits, gold = _random(0)
    noisy = logits.clone()
    noisy[gold == PAD] = torch.randn_like(noisy[gold == PAD]) * 100  # other tags on padding
    assert torch.equal(TAGGING.metric_state(noisy, gold), TAGGING.metric_state(logits, gold))


def test_hidden_tags_keep_padding_and_pseudo_labels_fill_only_hidden_tokens():
    _, gold = _random(1, rows=4)
    seen = torch.tensor([True, False, True, False])
    hidden = TAGGING.hide(gold, seen)
    assert torch.equal(hidden == PAD, gold == PAD)
    assert TAGGING.known(hidden).tolist() == seen.tolist()
    teacher = torch.randn(4, gold.shape[1], 7)
    pl = TAGGING.pseudo_labels(teacher, Batch(None, hidden, torch.arange(4), seen))
    assert torch.equal(pl[seen], gold[seen])
    unseen = ~seen[:, None] & (gold != PAD)
    assert torch.equal(pl[unseen], teacher.argmax(-1)[unseen])
    assert (pl[gold == PAD] == PAD).all()


def test_elements_are_real_tokens_and_kd_is_their_mean():
    logits, gold = _random(2, rows=6)
    teacher = torch.randn_like(logits, dtype=torch.float64)
    seen = torch.tensor([True, False] * 3)
    batch = Batch(None, TAGGING.hide(gold, seen), torch.arange(6), seen)
    row_mask = torch.tensor([True, True, False, True, False, True])
    out, tg, eb = TAGGING.elements(logits.double(), Targets(teacher, gold, mask=row_mask), batch)
    real = gold != PAD
    assert out.shape == (int(real.sum()), 7) and eb.y.shape == (int(real.sum()),)
    assert torch.equal(eb.labeled, seen[:, None].expand_as(real)[real])
    assert torch.equal(eb.index, torch.arange(6)[:, None].expand_as(real)[real])
    assert torch.equal(tg.mask, row_mask[:, None].expand_as(real)[real])
    # KD over the elements: the mean over real tokens of admitted rows, naive float64
    kd = Objective("kd", params={"temperature": 2.0})(out, tg, eb)
    total, count = 0.0, 0
    for r in range(6):
        for j in range(gold.shape[1]):
            if gold[r, j] == PAD or not row_mask[r]:
                continue
            pt = F.softmax(teacher[r, j] / 2, -1)
            ps = F.log_softmax(logits[r, j].double() / 2, -1)
            total += float((pt * (pt.log() - ps)).sum()) * 4
            count += 1
    assert float(kd) == pytest.approx(total / count, rel=1e-10)
    # per-token masks stay per token
    tok_mask = torch.rand(real.shape) > 0.5
    _, tg2, _ = TAGGING.elements(logits, Targets(teacher, gold, mask=tok_mask), batch)
    assert torch.equal(tg2.mask, tok_mask[real])


def test_tagger_outputs_ignore_padding_and_read_both_directions():
    torch.manual_seed(0)
    net = BiGRUTagger(30, 5, 6, 7).eval()
    ids = torch.randint(1, 30, (3, 6))
    padded = torch.cat([ids, torch.zeros(3, 4, dtype=torch.long)], 1)
    with torch.no_grad():
        plain, longer = net(ids), net(padded)
        assert torch.allclose(plain, longer[:, :6], atol=1e-6)
        mask = torch.cat([torch.ones(3, 6), torch.zeros(3, 4)], 1).long()
        assert torch.allclose(net(padded, mask), longer, atol=1e-6)
        later = ids.clone()
        later[:, -1] = (later[:, -1] % 29) + 1  # a later token changes an earlier output
        assert not torch.allclose(net(later)[:, 0], plain[:, 0])


def test_tagger_matches_a_per_row_bidirectional_reference():
    """Row by row, unpadded: the forward GRU on the tokens, the backward GRU on the tokens
    reversed and its outputs reversed back, the head on both."""
    torch.manual_seed(1)
    net = BiGRUTagger(30, 5, 6, 7).eval()
    ids = torch.tensor([[4, 9, 2, 0, 0], [7, 3, 8, 5, 1], [6, 0, 0, 0, 0]])
    with torch.no_grad():
        got = net(ids)
        for r, n in enumerate([3, 5, 1]):
            e = net.embedding(ids[r:r + 1, :n])
            ahead = net.forward_gru(e)[0]
            behind = net.backward_gru(e.flip(1))[0].flip(1)
            want = net.head(torch.cat([ahead, behind], -1))[0]
            assert torch.allclose(got[r, :n], want, atol=1e-6)


def test_reverse_within_length_flips_real_tokens_only():
    order = reverse_within_length(torch.tensor([3, 1, 5]), 5)
    assert order.tolist() == [[2, 1, 0, 3, 4], [0, 1, 2, 3, 4], [4, 3, 2, 1, 0]]
    assert torch.equal(order.gather(1, order), torch.arange(5).expand(3, 5))


def test_bad_tags_are_one_sentence():
    x = torch.tensor([[5, 6, 0], [7, 0, 0]])
    with pytest.raises(MentorError, match=r"row 0, token 1 has tag id 9; expected 0\.\.6 "
                                          r"\(7 tags\) or -1"):
        check_tag_ids(torch.tensor([[0, 9, PAD], [1, PAD, PAD]]), x, 7)
    with pytest.raises(MentorError, match="row 1, token 0 has tag id 7; expected 0..6"):
        check_tag_ids(torch.tensor([[0, 1, PAD], [7, PAD, PAD]]), x, 7)
    with pytest.raises(MentorError, match="row 0, token 0 has tag id -2; expected"):
        check_tag_ids(torch.tensor([[PAD, 1, PAD], [6, PAD, PAD]]), x, 7)
    with pytest.raises(MentorError, match="padding position 1 has tag id 2"):
        check_tag_ids(torch.tensor([[0, 1, PAD], [1, 2, PAD]]), x, 7)
    with pytest.raises(MentorError, match=r"shape \(2, 2\) but the token ids \(2, 3\)"):
        check_tag_ids(torch.zeros(2, 2, dtype=torch.long), x, 7)
    check_tag_ids(torch.tensor([[0, -1, PAD], [6, PAD, PAD]]), x, 7)
