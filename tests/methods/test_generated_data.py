"""Teacher-labeled generated inputs as extra training data (HarmAug, METHODS.md §2)."""

import statistics
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import mentor
from mentor.errors import DataError

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.measures.harmaug import generated_vs_plain  # noqa: E402


def test_generated_rows_join_train_unlabeled_and_standardized():
    s = mentor.load_data("digits")
    raw = np.random.default_rng(0).uniform(0, 16, size=(50, 64))
    g = mentor.data.with_generated(s, lambda n, rng: raw[:n], 50)
    assert len(g.train) == len(s.train) + 50
    assert not g.train.labeled[-50:].any() and (g.train.y[-50:] == -1).all()
    torch.testing.assert_close(g.train.x[-50:], s.standardize(raw))
    torch.testing.assert_close(g.train.x[:len(s.train)], s.train.x)
    assert g.val is s.val and g.test is s.test


def test_generator_output_is_checked():
    s = mentor.load_data("iris")
    with pytest.raises(DataError, match="returned inputs with 3 features; expected 4"):
        mentor.data.with_generated(s, lambda n, rng: np.zeros((n, 3)), 5)
    with pytest.raises(DataError, match="returned 4 inputs; expected 5"):
        mentor.data.with_generated(s, lambda n, rng: np.zeros((4, 4)), 5)
    with pytest.raises(DataError, match="NaN or infinite"):
        mentor.data.with_generated(s, lambda n, rng: np.full((n, 4), np.nan), 5)


def test_teacher_labeled_generated_inputs_help_a_small_student():
    """MNIST-1D, MLP 40-32-10 student, 3 seeds: KD on the 3,000 training inputs (60 epochs)
    vs KD with 12,000 more inputs from the data's own generator (15 epochs, about the same
    number of steps), labeled only by the CNN teacher. Measured (docs/methods.md,
    ``harmaug`` measurement): 54.17 ± 0.98 % -> 57.27 ± 1.55 %, a gap of 2.01 times the larger
    std (separated by the project's rule only just) and ahead on 2 of 3 seeds; this test asks
    for a mean gain of more than 2 points."""
    res = generated_vs_plain()
    assert statistics.fmean(res["generated"]) > statistics.fmean(res["plain"]) + 0.02, res
