"""Fixtures of the engine tests: digits with 30 % of the training labels visible, and a
small teacher trained on them."""

import pytest
import torch

import mentor
from mentor.engine import fit
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec
from mentor.teachers import ModuleTeacher


@pytest.fixture(scope="module")
def splits():
    return mentor.load_data("digits", labeled_fraction=0.3)


@pytest.fixture(scope="module")
def teacher(splits):
    torch.manual_seed(0)
    net = mlp(splits.input_shape, 10, hidden=[64])
    res = fit(net, splits.train, splits.val, objectives=get_method("scratch").plan().objectives,
              spec=TrainSpec(epochs=3), seed=0, num_outputs=10)
    return ModuleTeacher(res.model, 10)
