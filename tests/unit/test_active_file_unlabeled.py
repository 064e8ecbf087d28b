"""The active loop's oracle reveals hidden labels: rows that are unlabeled in the data file
(label -1, no hidden label) cannot be served, and the loop says so before training."""

from __future__ import annotations

import pytest

import mentor
from mentor.active import active_loop
from mentor.errors import MentorError
from mentor.models import mlp
from mentor.recipe import TrainSpec
from mentor.select import RandomSelector


def test_oracle_refuses_a_pool_without_hidden_labels():
    splits = mentor.load_data("iris", labeled_fraction=0.3)
    train = splits.train
    y = train.y.clone()
    y[(~train.labeled).nonzero()[:5, 0]] = -1  # five rows unlabeled in the file
    splits.train = type(train)(train.x, y, train.labeled)
    with pytest.raises(MentorError, match="5 rows of the unlabeled pool have no label"):
        active_loop(splits, make_student=lambda: mlp((4,), 3, hidden=[4]),
                    selector=RandomSelector(), rounds=1, oracle_per_round=2,
                    spec=TrainSpec(epochs=1, batch_size=16))
