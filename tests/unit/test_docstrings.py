"""The runnable examples in public docstrings run and give what they show."""

import doctest

import pytest

import mentor.api
import mentor.data
import mentor.lm.distill
import mentor.losses.claps
import mentor.methods.plan
import mentor.targets.moveout
import mentor.targets.sub_pseudo
import mentor.runs.trackers


@pytest.mark.parametrize("module", [mentor.api, mentor.data, mentor.methods.plan,
                                    mentor.lm.distill,
                                    mentor.runs.trackers, mentor.targets.sub_pseudo,
                                    mentor.targets.moveout, mentor.losses.claps])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
