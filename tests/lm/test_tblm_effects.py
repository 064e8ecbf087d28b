"""The regimes' effects on TB-LM (2-digit addition, exact match on 500 held-out prompts), on
the very run the docs quote: `mentor run tokens` (the `tokens` measurement,
benchmarks/measures/lm.py) -- a 1-layer GRU student (d=64) trained on 1,000 sequences from a
2-layer GRU teacher (d=64), 800 steps of 64 sequences, 3 seeds, best step by validation exact
match.

The float32 GRU runs depend on the CPU's kernels (docs/numbers.json records the machine of
each measurement), so the tests assert the directions and the rule's verdicts, with margins
that hold on both machines measured so far. Teacher 93.0 % on both; data alone 14.2 / 11.8 /
13.0 % on both. On an AMD EPYC (torch AVX2 kernels, docs/methods.md): off-policy forward KL
9.4 / 27.2 / 16.2 % (gaps -4.8 / +15.4 / +3.2 points: not separated), bridge (forward-KL
warm-up on teacher samples, then on-policy reverse KL; paper 39) 18.6 / 35.2 / 29.4 % (gaps
over the data +4.4 / +23.4 / +16.4: higher, 3 of 3 seeds). On an earlier machine (CPU not
recorded): forward KL 14.8 / 26.4 / 14.4 %, bridge 26.0 / 29.0 / 27.8 %. One point is 5 test
prompts. Also: gold-agreement resampling (paper 41) keeps only right teacher answers, and
teacher sampling is reproducible for a seed."""

import sys
from pathlib import Path

import pytest
import torch

from mentor.lm.distill import _seqkd_data
from mentor.lm.generate import complete
from mentor.lm.testbed import Addition

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.measures._fmt import verdict  # noqa: E402
from benchmarks.measures.lm import NoisyProgram, tokens_run  # noqa: E402


@pytest.fixture(scope="module")
def tokens():
    """Per-seed test exact match of each method of `mentor run tokens`, and the teacher's."""
    return tokens_run()


def _gaps(a, b):
    return [x - y for x, y in zip(a, b, strict=True)]


@pytest.mark.slow  # the full `mentor run tokens` (2 min); CI runs its quick form
def test_the_teacher_is_good_at_the_task(tokens):
    assert tokens["teacher"] > 0.85, tokens  # measured 93.0 %


@pytest.mark.slow  # the full `mentor run tokens` (2 min); CI runs its quick form
def test_the_bridge_beats_the_data_alone_on_every_seed_by_10_prompts(tokens):
    """Paper 39's bridge against the data alone: separated by the project's rule (gap > 2 x
    the larger std) and at least 2 points (10 of 500 prompts) on each seed (measured +4.4 /
    +23.4 / +16.4 with AVX2 kernels, +11.8 / +17.2 / +14.8 on the earlier machine)."""
    assert verdict(tokens["bridge"], tokens["data"]) == "higher", tokens
    assert min(_gaps(tokens["bridge"], tokens["data"])) > 0.02, tokens


@pytest.mark.slow  # the full `mentor run tokens` (2 min); CI runs its quick form
def test_the_bridge_is_above_off_policy_forward_kl_on_every_seed(tokens):
    """The bridge over off-policy forward KL: at least 2 points (10 prompts) on each seed and
    5 points on the mean (measured +9.2 / +8.0 / +13.2, mean +10.1, with AVX2 kernels; +11.2 /
    +2.6 / +13.4, mean +9.1, on the earlier machine); not separated by the rule, because
    forward KL's seeds spread (std 7.3 points)."""
    g = _gaps(tokens["bridge"], tokens["forward-kl"])
    assert min(g) > 0.02 and sum(g) / len(g) > 0.05, tokens


@pytest.mark.slow  # the full `mentor run tokens` (2 min); CI runs its quick form
def test_off_policy_forward_kl_is_not_below_the_data_alone(tokens):
    """Off-policy forward KL against the data alone: on the mean at least 2 points higher
    (measured +4.6 with AVX2 kernels, per seed -4.8 / +15.4 / +3.2; +5.5 on the earlier machine, per
    seed +0.6 / +14.6 / +1.4) and not lower by the rule -- a gain the rule does not separate
    (one seed carries it; one seed is below on AVX2), which the docs say; the test guards
    against forward KL hurting on the mean, not for a gain."""
    g = _gaps(tokens["forward-kl"], tokens["data"])
    assert sum(g) / len(g) > 0.02, tokens
    assert verdict(tokens["forward-kl"], tokens["data"]) != "lower", tokens


def test_gold_agreement_resampling_keeps_only_right_teacher_answers(addition):
    """Meditron (paper 41): with a teacher wrong 30 % of the time, keeping the first of up to
    4 samples that agrees with the gold answer trains on right answers only, and keeps more
    than 98 % of the prompts (1 - 0.3**4 agree within 4 tries); every teacher sample keeps
    about 30 % wrong answers. Whether the student learns the task better from the kept ones
    is measured, not tested: the `gold-agreement` measurement (600 steps, 3 seeds) gives
    8.8 / 9.8 / 9.4 % exact match from every sample and 10.8 / 8.0 / 11.0 % from the kept
    ones -- not separated (docs/methods.md)."""
    train, _, _ = addition
    task, small = Addition(), train.subset(slice(0, 1000))
    right = {tuple(r) for r in small.ids.tolist()}
    kept = _seqkd_data(NoisyProgram(task), small, 4, 1.0, torch.Generator().manual_seed(0))
    assert len(kept) > 0.98 * len(small)
    assert all(tuple(r) in right for r in kept.ids.tolist())
    torch.manual_seed(0)  # greedy calls draw the teacher's errors from the global generator
    every = _seqkd_data(NoisyProgram(task), small, 0, 1.0, None)
    wrong = sum(tuple(r) not in right for r in every.ids.tolist()) / len(every)
    assert len(every) == len(small) and 0.25 < wrong < 0.35, wrong


def test_sampling_is_reproducible_for_a_seed(tb_teacher, addition):
    prompts = addition[0].ids[:16, :addition[0].prompt_len]
    a = complete(tb_teacher, prompts, 4, greedy=False, generator=torch.Generator().manual_seed(3))
    b = complete(tb_teacher, prompts, 4, greedy=False, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
