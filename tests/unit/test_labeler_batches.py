"""LLMLabeler with a BatchBackend: cache misses go to ``backend.many`` ``batch_size`` at a
time, retries in batches too, with the labels and counters of asking one prompt at a time;
the backend's ``model_id`` names the cache unless the labeler is given one."""

from __future__ import annotations

import pytest

from mentor.errors import MentorError
from mentor.lm.backend import BatchBackend
from mentor.lm.labeler import LabelCache, LLMLabeler, number


class Flaky:
    """Replies 'no idea' the first time an odd-numbered prompt is asked."""

    def __init__(self):
        self.asked: dict[str, int] = {}

    def __call__(self, prompt: str) -> str:
        self.asked[prompt] = self.asked.get(prompt, 0) + 1
        i = int(prompt[1:])
        return "no idea" if i % 2 and self.asked[prompt] == 1 else f"it is {i}"


class FlakyBatches(BatchBackend):
    batch_size = 3

    def __init__(self):
        self.flaky = Flaky()
        self.batches: list[list[str]] = []

    @property
    def model_id(self) -> str:
        return "flaky-batches"

    def many(self, prompts):
        self.batches.append(list(prompts))
        return [self.flaky(p) for p in prompts]


def test_misses_are_asked_in_batches_with_the_one_by_one_results():
    items = [{"i": i} for i in range(7)]
    backend = FlakyBatches()
    batched = LLMLabeler(backend, "Q{i}", number(), retries=1, cache=LabelCache())
    one_by_one = LLMLabeler(Flaky(), "Q{i}", number(), retries=1, cache=LabelCache())
    assert batched.label(items) == one_by_one.label(items) == list(range(7))
    assert backend.batches == [["Q0", "Q1", "Q2"], ["Q1"], ["Q3", "Q4", "Q5"], ["Q3", "Q5"],
                               ["Q6"]]
    assert batched.stats.as_dict() == one_by_one.stats.as_dict()
    assert batched.stats.calls == 10 and batched.stats.parse_failures == 3
    assert batched.model_id == "flaky-batches" and one_by_one.model_id == "stub"
    backend.batches.clear()
    assert batched.label(items) == list(range(7)) and backend.batches == []
    assert batched.stats.cache_hits == 7


def test_an_explicit_model_id_wins_and_bad_batches_are_errors():
    assert LLMLabeler(FlakyBatches(), "Q{i}", number(), model_id="mine").model_id == "mine"

    class Empty(FlakyBatches):
        batch_size = 0

    with pytest.raises(MentorError, match=r"backend.batch_size must be an integer >= 1, got 0"):
        LLMLabeler(Empty(), "Q{i}", number())

    class Short(FlakyBatches):
        def many(self, prompts):
            return ["1"]

    with pytest.raises(MentorError, match=r"must return a list of 3 reply strings, got 1 items"):
        LLMLabeler(Short(), "Q{i}", number()).label([{"i": i} for i in range(3)])
