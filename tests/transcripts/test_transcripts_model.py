"""The recogniser's adapters, the noisy-student input noise and checkpoint merging."""

import pytest
import torch

from mentor.errors import MentorError
from mentor.transcripts import (Adapter, Recogniser, merge_checkpoints, noisy_frames,
                                select_checkpoints)


def test_an_untrained_adapter_is_the_identity():
    torch.manual_seed(0)
    a = Adapter(12, 3)
    h = torch.randn(4, 7, 12)
    assert torch.equal(a(h), h)
    m = Recogniser(6, 5, 3, hidden=12, bottleneck=3)
    x, lang = torch.randn(4, 9, 6), torch.tensor([0, 1, 2, 2])
    assert torch.equal(m(x, lang), m(x, lang, use_adapters=False))
    with torch.no_grad():
        m.adapters[2]["post"].up.weight.add_(0.1)
    out, plain = m(x, lang), m(x, lang, use_adapters=False)
    assert torch.equal(out[:2], plain[:2]) and not torch.allclose(out[2:], plain[2:])


def test_each_language_goes_through_its_own_adapter():
    torch.manual_seed(1)
    m = Recogniser(6, 5, 2, hidden=8, bottleneck=2)
    for a in m.adapters:
        torch.nn.init.normal_(a["pre"].up.weight)
    x = torch.randn(2, 5, 6)
    both = m(x, torch.tensor([0, 1]))
    assert torch.allclose(both[0], m(x[:1], torch.tensor([0]))[0], atol=1e-6)
    assert torch.allclose(both[1], m(x[1:], torch.tensor([1]))[0], atol=1e-6)
    assert not torch.allclose(both[1], m(x[1:], torch.tensor([0]))[0])


def test_packed_lengths_ignore_padding_frames():
    torch.manual_seed(2)
    m = Recogniser(4, 3, 1, hidden=6, bidirectional=True)
    x = torch.randn(1, 5, 4)
    padded = torch.cat([x, torch.randn(1, 3, 4)], 1)
    a = m(padded, torch.tensor([0]), lengths=torch.tensor([5]))[:, :5]
    assert torch.allclose(a, m(x, torch.tensor([0])), atol=1e-6)


def test_merge_is_the_elementwise_mean_and_identical_checkpoints_merge_to_themselves():
    g = torch.Generator().manual_seed(0)
    states = [{"w": torch.randn(3, 4, generator=g), "b": torch.randn(4, generator=g)}
              for _ in range(3)]
    got = merge_checkpoints(states)
    for k in ("w", "b"):
        naive = torch.zeros_like(states[0][k], dtype=torch.float64)
        for s in states:
            naive += s[k].double()
        assert torch.allclose(got[k].double(), naive / 3, atol=1e-7)
    same = merge_checkpoints([states[0]] * 4)
    assert all(torch.allclose(same[k], states[0][k], atol=1e-7) for k in states[0])
    with pytest.raises(MentorError, match="checkpoint 1 has keys or shapes unlike"):
        merge_checkpoints([states[0], {"w": states[0]["w"]}])


def test_select_checkpoints_best_and_last():
    errs = [0.5, 0.2, 0.3, 0.2, 0.9]
    assert select_checkpoints(errs, 2) == [1, 3]
    assert select_checkpoints(errs, 3) == [1, 2, 3]
    assert select_checkpoints(errs, 2, "last") == [3, 4]
    assert select_checkpoints(errs, 9) == [0, 1, 2, 3, 4]
    with pytest.raises(MentorError, match="rule must be one of best, last, got 'mean'"):
        select_checkpoints(errs, 2, "mean")
    with pytest.raises(MentorError, match="k must be a positive integer, got 0"):
        select_checkpoints(errs, 0)


def test_noise_masks_and_keeps_padding_zero():
    x = torch.ones(64, 10, 8)
    lengths = torch.randint(3, 11, (64,), generator=torch.Generator().manual_seed(0))
    x = x * (torch.arange(10)[None, :, None] < lengths[:, None, None])
    g = torch.Generator().manual_seed(1)
    y = noisy_frames(x, lengths, g, std=0.0, time_masks=1, time_width=3,
                     feature_masks=0)
    zero_frames = (y == 0).all(-1) & (torch.arange(10)[None, :] < lengths[:, None])
    assert int(zero_frames.sum(1).max()) <= 3 and int(zero_frames.sum()) > 0
    runs = [zero_frames[b].nonzero().flatten() for b in range(64)]
    assert all(len(r) == 0 or int(r[-1] - r[0]) == len(r) - 1 for r in runs)  # contiguous
    y = noisy_frames(x, lengths, g, std=0.0, time_masks=0, feature_masks=1,
                     feature_width=2)
    zero_feats = (y == 0).all(1)
    assert int(zero_feats.sum(1).max()) <= 2 and int(zero_feats.sum()) > 0
    y = noisy_frames(x, lengths, g, std=0.5, time_masks=0, feature_masks=0)
    pad = torch.arange(10)[None, :] >= lengths[:, None]
    assert float(y[pad].abs().sum()) == 0.0
    assert 0.4 < float((y - x)[~pad].std()) < 0.6
    a = noisy_frames(x, lengths, torch.Generator().manual_seed(3))
    b = noisy_frames(x, lengths, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
