"""Issue 21: "2 gloo ranks on the Hugging Face path equal one process". GPT-2 teacher and
student on right-padded rows of different lengths: both ranks end identical and equal a
single-process run of the same global batches (off-policy); sequence-level KD gathers the
ranks' completions of different lengths in prompt order, as one process makes them."""

import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

from mentor.lm.distill import distill_lm  # noqa: E402

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from launch import rank_info, rank_weights, torchrun_two_ranks  # noqa: E402
import lm_two_ranks_hf as script  # noqa: E402


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm_dist_hf")
    torchrun_two_ranks("lm_two_ranks_hf.py", out)
    return out


@pytest.mark.parametrize("name", list(script.SETTINGS))
def test_two_ranks_equal_one_process(two_rank_run, name):
    """Weights within 1e-5 after Adam's steps: each rank pads its half of a batch to its own
    longest row, so the sums run in another order than one process's (1.6e-6 seen)."""
    kw = script.SETTINGS[name]
    student, teacher = script.models()
    single = distill_lm(student, teacher, script.train_data(), **kw)
    w0, w1 = rank_weights(two_rank_run, 0, name), rank_weights(two_rank_run, 1, name)
    for k, v in single.model.state_dict().items():
        assert torch.equal(w0[k], w1[k]), k
        assert torch.allclose(w0[k], v, rtol=0, atol=1e-5), (k, (w0[k] - v).abs().max())
    i0, i1 = rank_info(two_rank_run, 0, name), rank_info(two_rank_run, 1, name)
    assert i0["world"] == 2 and i0["losses"] == i1["losses"]
    assert i0["losses"] == pytest.approx(single.losses, rel=1e-5)
    assert i0["teacher_queries"] == single.teacher_queries
    assert i0["kept"] == single.kept_sequences
