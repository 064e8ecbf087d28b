"""TB-LM fixtures: the addition testbed and a teacher trained once per test session."""

import pytest
import torch

from mentor.lm.distill import distill_lm
from mentor.lm.models import CharLM
from mentor.lm.testbed import VOCAB, Addition


@pytest.fixture(scope="session")
def addition():
    """(train, val, test) of 2-digit addition: 9,300 / 200 / 500 sequences."""
    return Addition().split(0)


@pytest.fixture(scope="session")
def tb_teacher(addition):
    """A 2-layer GRU (d=64) trained 800 steps on all training sequences (~93 % exact match)."""
    train, val, _ = addition
    torch.manual_seed(0)
    model = CharLM(len(VOCAB), 64, 2)
    distill_lm(model, None, train, val=val, regime="supervised", steps=800, batch_size=128,
               eval_every=200)
    return model.eval()
