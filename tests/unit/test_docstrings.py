"""The runnable examples in public docstrings run and give what they show."""

import doctest

import pytest

import mentor.api
import mentor.data


@pytest.mark.parametrize("module", [mentor.api, mentor.data])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
