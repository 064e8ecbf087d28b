"""Teacher-labeled generated inputs as extra training data (HarmAug, METHODS.md §2)."""

import numpy as np
import pytest
import torch

import mentor
from mentor.engine import fit
from mentor.engine.evaluate import evaluate
from mentor.errors import DataError
from mentor.methods import get_method
from mentor.models import cnn, mlp
from mentor.data.sources import mnist1d_generator
from mentor.recipe import TrainSpec
from mentor.teachers import ModuleTeacher


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
    number of steps), labeled only by the CNN teacher. Measured here: 54.17 ± 0.98 % ->
    57.27 ± 1.55 %."""
    import statistics
    s = mentor.load_data("mnist1d")
    torch.manual_seed(0)
    t = fit(cnn(s.input_shape, 10, channels=[32, 32, 32], kernel_size=5, pool="flatten",
                batchnorm=True), s.train, s.val,
            objectives=get_method("scratch").plan().objectives,
            spec=TrainSpec(epochs=60, lr=3e-3, schedule="cosine", weight_decay=1e-4), seed=0,
            num_classes=10)
    teacher = ModuleTeacher(t.model, 10)
    g = mentor.data.with_generated(s, mnist1d_generator, 12000, seed=1)
    plan = get_method("kd").plan()
    means = []
    for splits, epochs in ((s, 60), (g, 15)):
        accs = []
        for seed in (0, 1, 2):
            torch.manual_seed(seed)
            res = fit(mlp(s.input_shape, 10, hidden=[32]), splits.train, s.val,
                      objectives=plan.objectives, teacher=teacher,
                      spec=TrainSpec(epochs=epochs, lr=3e-3), seed=seed, num_classes=10)
            accs.append(evaluate(res.model, s.test.x, s.test.y)["accuracy"])
        means.append(statistics.fmean(accs))
    assert means[1] > means[0] + 0.02, means
