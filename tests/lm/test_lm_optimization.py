"""The optimization options of the language-model path (issue 21: "no learning-rate schedule,
clipping, checkpointing or resume on this path"): ``distill_lm(optimization=...)`` and a
tokens recipe's ``train`` reach the engine's training spec; clipping bounds the update;
gradient checkpointing gives the gradients of the plain backward; bf16 autocast trains."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from mentor.errors import MentorError
from mentor.lm import Addition, CharLM, distill_lm, regimes
from mentor.lm.recipe import parse_tokens_recipe
from mentor.lm.regimes import Optimization
from mentor.lm.testbed import VOCAB


@pytest.fixture(scope="module")
def data():
    return Addition(digits=1).split(0, val=20, test=20)[0]


def _student(seed=0):
    torch.manual_seed(seed)
    return CharLM(len(VOCAB), 16)


def test_the_options_reach_the_training_spec(data, monkeypatch):
    seen = {}
    real = regimes.prepare_training

    def spy(student, spec, seed, **kw):
        seen["spec"] = spec
        return real(student, spec, seed, **kw)
    monkeypatch.setattr(regimes, "prepare_training", spy)
    o = Optimization(lr=1e-2, optimizer="adamw", weight_decay=0.1, schedule="cosine",
                     max_grad_norm=0.5)
    distill_lm(_student(), None, data, regime="supervised", steps=2, batch_size=8,
               optimization=o)
    s = seen["spec"]
    assert (s.lr, s.optimizer, s.weight_decay, s.schedule, s.max_grad_norm) == (
        1e-2, "adamw", 0.1, "cosine", 0.5)


def test_clipping_bounds_the_first_update(data):
    """SGD without momentum: one step moves the weights by lr x the clipped gradient, whose
    norm is at most max_grad_norm."""
    moved = {}
    for clip in (None, 1e-3):
        s = _student()
        before = [p.detach().clone() for p in s.parameters()]
        o = Optimization(lr=1.0, optimizer="sgd", max_grad_norm=clip)
        distill_lm(s, None, data, regime="supervised", steps=1, batch_size=8, optimization=o)
        moved[clip] = torch.sqrt(sum(((p.detach() - b) ** 2).sum()
                                     for p, b in zip(s.parameters(), before))).item()
    assert moved[1e-3] <= 1e-3 * (1 + 1e-4) < moved[None]


def test_gradient_checkpointing_gives_the_same_training(data):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=len(VOCAB), n_positions=16, n_embd=16,
                                  n_layer=2, n_head=2)
    base = transformers.GPT2LMHeadModel(cfg)
    runs = {}
    for gc in (False, True):
        m = copy.deepcopy(base)
        res = distill_lm(m, None, data, regime="supervised", steps=3, batch_size=8,
                         optimization=Optimization(gradient_checkpointing=gc))
        runs[gc] = (res.losses, m)
    assert runs[True][1].is_gradient_checkpointing
    assert runs[True][0] == pytest.approx(runs[False][0], rel=1e-5)
    for a, b in zip(runs[True][1].parameters(), runs[False][1].parameters()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_gradient_checkpointing_needs_a_hugging_face_model(data):
    with pytest.raises(MentorError, match="gradient_checkpointing needs a Hugging Face"):
        distill_lm(_student(), None, data, regime="supervised", steps=1, batch_size=8,
                   optimization=Optimization(gradient_checkpointing=True))


def test_a_bad_option_is_one_sentence(data):
    with pytest.raises(MentorError, match="distill_lm schedule"):
        distill_lm(_student(), None, data, regime="supervised", steps=1, batch_size=8,
                   optimization=Optimization(schedule="linear"))


def test_bf16_autocast_trains():
    """In a fresh process (the accelerator's precision is fixed per process): finite losses
    under bf16 autocast that differ from the float32 run's, with the teacher's forward pass
    under autocast too (its logits are bf16)."""
    code = textwrap.dedent("""
        import json, sys, torch
        from mentor.lm import Addition, CharLM, distill_lm
        from mentor.lm.regimes import Optimization
        from mentor.lm.testbed import VOCAB
        data = Addition(digits=1).split(0, val=20, test=20)[0]
        torch.manual_seed(0)
        teacher, student = CharLM(len(VOCAB), 16), CharLM(len(VOCAB), 16)
        dtypes = set()
        teacher.head.register_forward_hook(lambda m, i, o: dtypes.add(str(o.dtype)))
        res = distill_lm(student, teacher, data, regime="off_policy", steps=3, batch_size=8,
                         optimization=Optimization(mixed_precision=sys.argv[1]))
        print(json.dumps([res.losses, sorted(dtypes)]))
    """)
    out = {}
    for mp in ("no", "bf16"):
        r = subprocess.run([sys.executable, "-c", code, mp], capture_output=True, text=True,
                           env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        out[mp] = json.loads(r.stdout.strip().splitlines()[-1])
    (lo_no, dt_no), (lo_bf, dt_bf) = out["no"], out["bf16"]
    assert dt_no == ["torch.float32"] and "torch.bfloat16" in dt_bf
    assert all(v == v and abs(v) < 1e6 for v in lo_bf)
    assert lo_bf != lo_no and lo_bf == pytest.approx(lo_no, rel=0.05)


def test_a_tokens_recipe_takes_the_options():
    raw = {"name": "t", "task": "tokens", "methods": [{"name": "kd", "regime": "off_policy"}],
           "train": {"schedule": "cosine", "max_grad_norm": 1.0, "optimizer": "adamw",
                     "weight_decay": 0.01, "mixed_precision": "bf16"}}
    o = parse_tokens_recipe(raw).train.optimization()
    assert (o.schedule, o.max_grad_norm, o.optimizer, o.weight_decay, o.mixed_precision) == (
        "cosine", 1.0, "adamw", 0.01, "bf16")
    raw["train"]["schedule"] = "linear"
    with pytest.raises(Exception, match="schedule"):
        parse_tokens_recipe(raw)
