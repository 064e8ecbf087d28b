"""Shared fixtures for method-behaviour tests: digits with 10 % of the labels visible to the
student, and a teacher trained on every training label (the default run's few-labels
setting). Session-scoped: the teacher is trained once for all method tests."""

import pytest
import torch

import mentor
from mentor.engine import fit
from mentor.methods import get_method
from mentor.models import mlp
from mentor.recipe import TrainSpec
from mentor.teachers import ModuleTeacher


@pytest.fixture(scope="session")
def few_labels():
    return mentor.load_data("digits", labeled_fraction=0.1)


@pytest.fixture(scope="session")
def teacher(few_labels):
    """MLP 64-128-128-10 trained on every training label."""
    s = few_labels
    full = mentor.data.Split(s.train.x, s.train.y, torch.ones(len(s.train), dtype=torch.bool))
    torch.manual_seed(0)
    res = fit(mlp(s.input_shape, 10, hidden=[128, 128]), full, s.val,
              objectives=get_method("scratch").plan().objectives,
              spec=TrainSpec(epochs=30, lr=1e-3), seed=0, num_outputs=10)
    return ModuleTeacher(res.model, 10)
