"""Scale-out: a KD run on 2 gloo processes (torchrun, Accelerate on CPU).

Both ranks must end with identical student weights, and metrics must be gathered over both
shards: the test count equals the whole test split and equals a single-process evaluation.
"""

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import mentor
from mentor.engine.evaluate import evaluate
from mentor.models import mlp

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"
sys.path.insert(0, str(HERE))
from launch import torchrun_two_ranks  # noqa: E402


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    torchrun_two_ranks("kd_two_ranks.py", out)
    return out


def test_both_ranks_end_with_identical_weights(two_rank_run):
    w0 = load_file(str(two_rank_run / "rank0.safetensors"))
    w1 = load_file(str(two_rank_run / "rank1.safetensors"))
    assert w0.keys() == w1.keys()
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k


def test_run_used_two_gloo_processes(two_rank_run):
    for r in (0, 1):
        info = json.loads((two_rank_run / f"rank{r}.json").read_text())
        assert info["world"] == 2
        assert "MULTI_CPU" in info["distributed_type"]


def test_metrics_are_gathered_over_both_shards(two_rank_run):
    splits = mentor.load_data("digits", labeled_fraction=0.5)
    student = mlp(splits.input_shape, 10, hidden=[16])
    student.load_state_dict(load_file(str(two_rank_run / "rank0.safetensors")))
    single = evaluate(student, splits.test.x, splits.test.y)
    for r in (0, 1):
        info = json.loads((two_rank_run / f"rank{r}.json").read_text())
        assert info["test"]["n"] == len(splits.test)  # every test row counted once
        assert info["test"]["accuracy"] == pytest.approx(single["accuracy"], abs=1e-12)
        assert 0.0 < info["test"]["teacher_agreement"] <= 1.0


def test_each_rank_took_half_of_each_global_batch(two_rank_run):
    # 1079 train rows, global batches of 64 (32 per rank): 17 steps per epoch, 4 epochs
    splits = mentor.load_data("digits", labeled_fraction=0.5)
    per_epoch = len(splits.train) // 64 + (1 if len(splits.train) % 64 >= 2 else 0)
    info = json.loads((two_rank_run / "rank0.json").read_text())
    assert info["steps"] == 4 * per_epoch


def test_semi_supervised_run_keeps_ranks_identical(two_rank_run):
    """Each rank takes half of the labeled and half of the unlabeled rows of every global
    batch, with views drawn for the whole batch: the ranks end with the same weights."""
    w0 = load_file(str(two_rank_run / "rank0-ssl.safetensors"))
    w1 = load_file(str(two_rank_run / "rank1-ssl.safetensors"))
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    splits = mentor.load_data("digits", labeled_fraction=0.1)
    n_unl = int((~splits.train.labeled).sum())
    infos = [json.loads((two_rank_run / f"rank{r}-ssl.json").read_text()) for r in (0, 1)]
    for info in infos:
        # one epoch = one pass over the unlabeled pool with 2 x 8 x 3 unlabeled rows per step
        assert info["steps"] == 2 * -(-n_unl // 48)
        assert len(info["coverage"]) == 2
    # FlexMatch's per-sample memory holds both ranks' rows, the same on each rank, and the
    # telemetry counts both shards
    assert infos[0]["selected"] == infos[1]["selected"]
    # (without the gather each rank would remember only its own, disjoint rows)
    assert sum(s >= 0 for s in infos[0]["selected"]) > 10
    assert infos[0]["precision"] == infos[1]["precision"]
    assert infos[0]["coverage"] == infos[1]["coverage"]


def test_a_dataset_fed_run_reads_each_row_once_per_epoch_and_equals_one_process(two_rank_run):
    """KD on rows read from a map-style dataset (DatasetRows) on 2 ranks: each rank reads only
    its half of each global batch, so across the ranks every row is read once per epoch; the
    ranks agree, equal the same run on in-memory rows bit for bit, and equal one process
    with the global batch (64 rows) up to float summation order."""
    from mentor.data import Split
    from mentor.engine import fit
    from mentor.methods import get_method
    from mentor.recipe import TrainSpec
    from mentor.teachers import ModuleTeacher
    reads = [torch.load(two_rank_run / f"rank{r}-reads.pt", weights_only=True) for r in (0, 1)]
    total = reads[0] + reads[1]
    assert torch.equal(total[2:], torch.full((1022,), 2))  # 2 epochs
    # rows 0 and 1 are also read as the example each rank checks the student with (and row 0
    # once more for the input shape)
    assert total[:2].tolist() == [2 + 2 + 2, 2 + 2]
    assert 0 < int((reads[0] > 0).sum()) < 1024  # each rank read a part
    w = {(r, name): load_file(str(two_rank_run / f"rank{r}-{name}.safetensors"))
         for r in (0, 1) for name in ("dataset", "memory")}
    for k in w[0, "dataset"]:
        assert torch.equal(w[0, "dataset"][k], w[1, "dataset"][k]), k
        assert torch.equal(w[0, "dataset"][k], w[0, "memory"][k]), k
    splits = mentor.load_data("digits", labeled_fraction=0.5)
    teacher_net = mlp(splits.input_shape, 10, hidden=[64])
    teacher_net.load_state_dict(load_file(str(two_rank_run / "teacher.safetensors")))
    sub = Split(splits.train.x[:1024], splits.train.y[:1024], torch.ones(1024, dtype=torch.bool))
    torch.manual_seed(3)
    one = fit(mlp(splits.input_shape, 10, hidden=[16]), sub, splits.val,
              objectives=get_method("kd").plan(temperature=4.0, alpha=0.9).objectives,
              teacher=ModuleTeacher(teacher_net, 10),
              spec=TrainSpec(epochs=2, batch_size=64, lr=3e-3, cache_teacher="never",
                             select="last"), seed=4, num_outputs=10).model.state_dict()
    for k in one:
        assert torch.allclose(one[k], w[0, "dataset"][k], atol=1e-5), k


def test_a_stream_on_two_ranks_trains_each_row_once_per_epoch_and_equals_one_process(
        two_rank_run):
    """The same rows as a stream (windows of 100 shuffled in place) on 2 ranks: each rank
    trains on its half of each global batch, so across the ranks every row is trained on once
    per epoch; the ranks agree and equal one process on the same stream with the global
    batch, up to float summation order."""
    from mentor.data import Split, StreamRows
    from mentor.engine import fit
    from mentor.methods import get_method
    from mentor.recipe import TrainSpec
    from mentor.teachers import ModuleTeacher
    ids = [torch.load(two_rank_run / f"rank{r}-stream-ids.pt", weights_only=True)[2:]
           for r in (0, 1)]  # [:2]: rows 0 and 1, the example the student is checked with
    assert torch.equal(torch.cat(ids).sort().values, torch.arange(1024).repeat_interleave(2))
    assert len(ids[0]) == len(ids[1]) == 1024  # 2 epochs of half the rows each
    w0, w1 = (load_file(str(two_rank_run / f"rank{r}-stream.safetensors")) for r in (0, 1))
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    splits = mentor.load_data("digits", labeled_fraction=0.5)
    teacher_net = mlp(splits.input_shape, 10, hidden=[64])
    teacher_net.load_state_dict(load_file(str(two_rank_run / "teacher.safetensors")))
    x, y = splits.train.x[:1024], splits.train.y[:1024]
    torch.manual_seed(3)
    one = fit(mlp(splits.input_shape, 10, hidden=[16]),
              Split(StreamRows(lambda: iter(x), 1024, window=100), y,
                    torch.ones(1024, dtype=torch.bool)), splits.val,
              objectives=get_method("kd").plan(temperature=4.0, alpha=0.9).objectives,
              teacher=ModuleTeacher(teacher_net, 10),
              spec=TrainSpec(epochs=2, batch_size=64, lr=3e-3, cache_teacher="never",
                             select="last"), seed=4, num_outputs=10).model.state_dict()
    for k in one:
        assert torch.allclose(one[k], w0[k], atol=1e-5), k
