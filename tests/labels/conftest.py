"""Fixtures of the label-store tests: the digits train inputs and a small teacher."""

from __future__ import annotations

import pytest
from labelkit import make_teacher

import mentor


@pytest.fixture(scope="session")
def digits_x():
    """The digits train split's inputs: (1079, 64) float32, rows of (8, 8) images."""
    x = mentor.load_data("digits").train.x
    assert tuple(x.shape) == (1079, 64)
    return x


@pytest.fixture(scope="session")
def teacher():
    """A small mlp teacher with peaked outputs (weights scaled), in eval mode."""
    return make_teacher((32,), seed=0, scale=3.0)
