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
    # 1079 train rows, 32 per rank per step, 2 ranks: 17 steps per epoch, 4 epochs
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
