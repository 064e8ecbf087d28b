"""The Python API takes registered parts by name, as a recipe does: ``refiners=["threshold"]``
or ``updater={"name": "ema", "decay": 0.99}`` build the registered part (they used to raise
``TypeError: 'str' object is not callable``), and for ``method="compose"`` -- whose own
parameters are ``refiners`` and ``updater`` -- they are the composition's parts (the API
used to take them for its own extra parts and lose the composition's updater)."""

from __future__ import annotations

import pytest
import torch

import mentor
from mentor.errors import MentorError
from mentor.targets import ConfidenceThreshold

OPTS = dict(epochs=1, batch_size=16, unlabeled_ratio=2)


@pytest.fixture(scope="module")
def splits():
    return mentor.load_data("digits", labeled_fraction=0.1)


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))


def _weights(model):
    return [p.detach().clone() for p in model.parameters()]


def test_a_compose_method_takes_its_updater_and_refiners_from_the_api(splits):
    ssl = mentor.SemiSupervised(
        _net(), "compose", objectives=[{"loss": "ce", "rows": "labeled"},
                                       {"loss": "pseudo_ce", "rows": "unlabeled",
                                        "normalize": "rows"}],
        updater={"name": "ema", "decay": 0.99}, refiners=["threshold"], **OPTS)
    assert ssl.plan.description.endswith("refiners threshold; updater ema")
    assert ssl.refiners == [] and ssl.updater is None  # nothing added twice
    res = ssl.fit(splits)
    assert res.steps > 0 and "pl_coverage" in res.history


def test_a_refiner_by_name_is_the_registered_part(splits):
    by_name = mentor.SemiSupervised(_net(), "fixmatch", refiners=[{"name": "threshold",
                                                                   "threshold": 0.8}], **OPTS)
    by_object = mentor.SemiSupervised(_net(), "fixmatch",
                                      refiners=[ConfidenceThreshold(0.8)], **OPTS)
    assert isinstance(by_name.refiners[0], ConfidenceThreshold)
    by_name.fit(splits)
    by_object.fit(splits)
    for a, b in zip(_weights(by_name.model), _weights(by_object.model)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("refiners, expected", [
    (["nope"], "refiners[0].name: 'nope' is not a registered refiner"),
    ([{"tau": 1}], "refiners[0]: {'tau': 1} names no registered part"),
    ([{"name": "threshold", "tau": 1}], "refiners[0].tau: refiner 'threshold' has no "
                                        "parameter 'tau'"),
])
def test_a_bad_part_name_is_one_sentence(refiners, expected):
    with pytest.raises(MentorError) as info:
        mentor.Distiller(_net(), None, "scratch", refiners=refiners)
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)
