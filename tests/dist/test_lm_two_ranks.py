"""Scale-out of language-model distillation: ``distill_lm`` on 2 gloo processes (torchrun,
Accelerate on CPU) keeps both ranks identical and matches a single-process run of the same
global batches."""

import sys
from pathlib import Path

import pytest
import torch

from mentor.errors import MentorError
from mentor.lm.distill import distill_lm

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"
sys.path.insert(0, str(HERE))
from launch import rank_info, rank_weights, torchrun_two_ranks  # noqa: E402
import lm_two_ranks as script  # noqa: E402


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm_dist")
    torchrun_two_ranks("lm_two_ranks.py", out)
    return out


@pytest.mark.parametrize("name", list(script.SETTINGS))
def test_both_ranks_end_with_identicalrank_weights(two_rank_run, name):
    w0, w1 = rank_weights(two_rank_run, 0, name), rank_weights(two_rank_run, 1, name)
    assert w0.keys() == w1.keys()
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    i0, i1 = rank_info(two_rank_run, 0, name), rank_info(two_rank_run, 1, name)
    assert i0["world"] == 2 and "MULTI_CPU" in i0["distributed_type"]
    assert i0["losses"] == i1["losses"]  # the global loss, the same on both ranks
    assert i0["teacher_queries"] == i1["teacher_queries"]


def test_off_policy_equals_single_process_run_of_the_global_batches(two_rank_run):
    """Each rank trains on its half of every global batch of 16 rows, normalized by the global
    token count; the summed gradients are those of the whole batch, so the weights after 20
    Adam steps equal a single-process run up to float summation order (atol 1e-6)."""
    kw = script.SETTINGS["off"]
    student, teacher = script.models()
    single = distill_lm(student, teacher, script.train_data(), **kw)
    w = rank_weights(two_rank_run, 0, "off")
    for k, v in single.model.state_dict().items():
        assert torch.allclose(w[k], v, rtol=0, atol=1e-6), (k, (w[k] - v).abs().max())
    info = rank_info(two_rank_run, 0, "off")
    assert info["losses"] == pytest.approx(single.losses, rel=1e-5)
    # every rank queried the teacher on its 8 rows of each micro-batch: 16 a micro-batch in all
    assert info["teacher_queries"] == single.teacher_queries == \
        kw["steps"] * kw["accumulate"] * kw["batch_size"]


def test_on_policy_counts_queries_of_both_ranks(two_rank_run):
    kw = script.SETTINGS["on"]
    info = rank_info(two_rank_run, 0, "on")
    assert len(info["losses"]) == kw["steps"]
    assert info["teacher_queries"] == kw["steps"] * kw["accumulate"] * kw["batch_size"]


def test_seqkd_completions_are_gathered_from_both_ranks(two_rank_run):
    for r in (0, 1):
        info = rank_info(two_rank_run, r, "seqkd")
        assert info["kept"] == script.TRAIN_SIZE  # greedy: every prompt kept, once
        # each rank completed half of the prompts, then the signal-free seqkd steps
        assert info["teacher_queries"] == script.TRAIN_SIZE


def test_a_failure_after_a_collective_is_raised_on_every_rank(two_rank_run):
    """No random-teacher completion agrees with the gold answer: both ranks raise the same
    MentorError after gathering (neither waits for the other)."""
    errors = [rank_info(two_rank_run, r, "gold")["error"] for r in (0, 1)]
    assert errors[0] is not None and errors[0] == errors[1]
    assert "agreed with the gold answer" in errors[0]


def test_batch_size_must_split_evenly_over_the_ranks():
    class TwoRanks:
        num_processes, process_index = 2, 0

    student, teacher = script.models()
    with pytest.raises(MentorError, match="batch_size 15 is not divisible by the world size 2"):
        distill_lm(student, teacher, script.train_data(), batch_size=15, steps=1,
                   accelerator=TwoRanks())
