"""``train.max_grad_norm`` clips the gradients' global L2 norm before each optimizer step:
with plain SGD (lr 1, no momentum) one step moves the weights by exactly the clipped
gradient, whose norm is the bound; without it the step is the raw gradient."""

from __future__ import annotations

import torch

from mentor.data import load
from mentor.methods import get_method
from mentor.models import build_model
from mentor.recipe import TrainSpec


def _one_step(max_grad_norm):
    s = load("iris")
    torch.manual_seed(0)
    net = build_model("mlp", s.input_shape, 3, hidden=[8])
    before = torch.cat([p.detach().flatten().clone() for p in net.parameters()])
    spec = TrainSpec(epochs=1, batch_size=16, lr=1.0, optimizer="sgd", momentum=0.0,
                     max_grad_norm=max_grad_norm, select="last")
    res = get_method("scratch").plan().fit(net, s.train, s.val, spec=spec, seed=0,
                                           num_outputs=3, max_steps=1)
    after = torch.cat([p.detach().flatten() for p in res.model.parameters()])
    return (before - after).double()


def test_clipping_bounds_the_step_and_keeps_its_direction():
    raw = _one_step(None)
    assert raw.norm() > 0.05  # the raw gradient is larger than the bound below
    clipped = _one_step(0.01)
    assert abs(float(clipped.norm()) - 0.01) < 1e-5
    cos = float(clipped @ raw / (clipped.norm() * raw.norm()))
    assert cos > 1 - 1e-5  # the same direction, only shorter
    assert torch.allclose(_one_step(1e6), raw, atol=0)  # a bound above the norm: unchanged
