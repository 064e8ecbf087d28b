"""``train.batch_size`` is the global batch in every entry point: classification's loop and
``distill_lm`` both split it equally over the processes, so a recipe trains on the same
batches on any number of processes (the 2-rank runs of tests/dist check the equality); a
batch that does not divide by the process count is refused in one sentence."""

from __future__ import annotations

import pytest
import torch

from mentor.data import Split
from mentor.engine.loop import _batching
from mentor.errors import MentorError
from mentor.methods import get_method
from mentor.recipe import TrainSpec


def _split(n=100, labeled=None):
    lab = torch.ones(n, dtype=torch.bool) if labeled is None else labeled
    return Split(torch.randn(n, 3), torch.arange(n) % 2, lab)


@pytest.mark.parametrize("world, steps", [(1, 3), (2, 3), (4, 3)])
def test_the_steps_of_an_epoch_do_not_depend_on_the_process_count(world, steps):
    objectives = get_method("scratch").plan().objectives
    _, per_epoch, _ = _batching(_split(), TrainSpec(batch_size=48), 0, world, objectives, None)
    assert per_epoch == steps  # 100 rows in global batches of 48, then a partial one of 4


def test_a_semi_supervised_stream_shares_the_global_batch():
    objectives = get_method("fixmatch").plan().objectives
    labeled = torch.zeros(100, dtype=torch.bool)
    labeled[:20] = True
    one, _, _ = _batching(_split(labeled=labeled), TrainSpec(batch_size=8, unlabeled_ratio=2),
                          0, 1, objectives, None)
    two, _, _ = _batching(_split(labeled=labeled), TrainSpec(batch_size=8, unlabeled_ratio=2),
                          0, 2, objectives, None)
    assert (one.b_lab, one.b_unl) == (two.b_lab, two.b_unl) == (8, 16)
    assert one.steps_per_epoch == two.steps_per_epoch


def test_a_batch_that_does_not_divide_by_the_processes_is_refused():
    objectives = get_method("scratch").plan().objectives
    with pytest.raises(MentorError, match=r"train.batch_size 30 is not divisible by the 4 "
                       r"processes; expected a multiple of 4"):
        _batching(_split(), TrainSpec(batch_size=30), 0, 4, objectives, None)


def test_a_shard_of_rows_held_in_memory_is_read_to_its_end_only():
    """Evaluation on several processes reads rows [lo, hi) of a tensor: a shard shorter than
    a chunk used to run to the end of the split (rank 0 scored 359 rows against 180 labels:
    every 2-rank run stopped with a size mismatch)."""
    from mentor.data.rows import TensorRows, read_chunks
    from mentor.engine.evaluate import predict_logits
    x = torch.arange(359.0)[:, None]
    got = [b for _, b in read_chunks(TensorRows(x), 0, 180, chunk=4096)]
    assert torch.equal(torch.cat(got), x[:180])
    got = [b for _, b in read_chunks(TensorRows(x), 180, 359, chunk=100)]
    assert torch.equal(torch.cat(got), x[180:])
    assert len(predict_logits(torch.nn.Linear(1, 2), x, 0, 180)) == 180
