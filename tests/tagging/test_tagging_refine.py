"""QUEACO's weak-label refiner (METHODS.md §12, reconstruction): the teacher overrides a weak
tag only where its top probability is strictly above the threshold; threshold 1.0 leaves the
weak tags unchanged (the degenerate case)."""

import pytest
import torch

from mentor.errors import DataError, MentorError
from mentor.tagging import refine


def _case(seed=0, n=50, lmax=10):
    g = torch.Generator().manual_seed(seed)
    weak = torch.randint(0, 7, (n, lmax), generator=g)
    probs = torch.softmax(3 * torch.randn(n, lmax, 7, generator=g), -1)
    mask = torch.arange(lmax) < torch.randint(1, lmax + 1, (n, 1), generator=g)
    return weak, probs, mask


def test_overrides_exactly_above_the_threshold():
    weak, probs, mask = _case()
    for th in (0.0, 0.5, 0.8, 0.95):
        out, over = refine(weak, probs, mask, th)
        for i in range(len(weak)):
            for j in range(weak.shape[1]):
                conf, top = float(probs[i, j].max()), int(probs[i, j].argmax())
                want = top if (mask[i, j] and conf > th) else int(weak[i, j])
                assert int(out[i, j]) == want
                assert bool(over[i, j]) == bool(mask[i, j] and conf > th)


def test_threshold_one_leaves_weak_tags_unchanged():
    weak, probs, mask = _case(1)
    probs = torch.zeros_like(probs).scatter_(-1, probs.argmax(-1, keepdim=True), 1.0)
    out, over = refine(weak, probs, mask, 1.0)
    assert torch.equal(out, weak) and not over.any()


def test_bad_input_is_one_sentence():
    weak, probs, mask = _case()
    with pytest.raises(DataError, match=r"teacher_probs has shape \(50, 10, 6\); expected"):
        refine(weak, probs[..., :6], mask)
    with pytest.raises(MentorError, match="threshold must be in"):
        refine(weak, probs, mask, 1.5)
