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


def _fit_digits(method: str, batch_size: int, accumulate: int, **spec):
    import mentor
    from mentor.models import mlp
    s = mentor.load_data("digits", labeled_fraction=spec.pop("labeled_fraction", 1.0))
    torch.manual_seed(0)
    return get_method(method).plan().fit(
        mlp(s.input_shape, 10, hidden=[16]), s.train, s.val, seed=1, num_outputs=10,
        input_shape=s.input_shape,
        spec=TrainSpec(epochs=2, batch_size=batch_size, accumulate=accumulate, lr=3e-3,
                       select="last", **spec))


@pytest.mark.parametrize("method, spec", [("scratch", {}),
                                          ("fixmatch", {"unlabeled_ratio": 2,
                                                        "labeled_fraction": 0.2})])
def test_accumulating_micro_batches_is_one_step_of_their_rows(method, spec):
    """``train.accumulate: 4`` with batches of 16 takes the optimizer steps of batches of 64
    (the same rows, views and mean loss per step, in a quarter of the memory): the weights
    agree up to float summation order; without the loss shares they would not."""
    big = _fit_digits(method, 64, 1, **dict(spec))
    acc = _fit_digits(method, 16, 4, **dict(spec))
    assert acc.steps == big.steps
    for (k, a), b in zip(acc.model.state_dict().items(), big.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), k
    assert acc.history["train_loss"] == pytest.approx(big.history["train_loss"], rel=1e-5)
