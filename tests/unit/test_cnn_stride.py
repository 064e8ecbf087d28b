"""The 2-D ``cnn``'s ``stride``: the blocks after the first downsample by it (a 28x28 image's
second block works on 14x14 maps at stride 2); stride 1, the default, is the full-resolution
network unchanged; a stride that is not a whole number >= 1 is refused."""

from __future__ import annotations

import pytest
import torch

from mentor.errors import MentorError
from mentor.models import build_model, cnn


def test_stride_downsamples_the_blocks_after_the_first():
    torch.manual_seed(0)
    net = cnn((1, 28, 28), 10, channels=[4, 8], pool="flatten", stride=2)
    maps = net[:5](torch.randn(2, 784))  # reshape, conv, relu, conv, relu
    assert maps.shape == (2, 8, 14, 14)
    assert net(torch.randn(3, 784)).shape == (3, 10)


def test_stride_one_is_the_default_network():
    torch.manual_seed(0)
    a = cnn((3, 8, 8), 4, channels=[4, 8], pool="flatten")
    torch.manual_seed(0)
    b = cnn((3, 8, 8), 4, channels=[4, 8], pool="flatten", stride=1)
    x = torch.randn(2, 192)
    assert torch.equal(a(x), b(x))
    one_d = cnn((40,), 10, channels=[4, 8], stride=3)  # 1-D keeps its own rule: stride 2
    assert one_d[3].stride == (2,)


def test_a_bad_stride_is_refused():
    with pytest.raises(MentorError, match=r"cnn.stride must be an integer >= 1, got 0"):
        build_model("cnn", (1, 8, 8), 3, stride=0)
