"""A LoRA student language model (issue 21): only the adapters train, they save and reload,
the merged model gives the adapter model's logits within 1e-5, a stopped run resumes to the
uninterrupted one, and a tokens recipe writes the adapter and the merged model."""

from __future__ import annotations

import copy
import json

import pytest
import torch

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from mentor.lm import Addition, distill_lm  # noqa: E402
from mentor.lm.hf_models import causal_lm, save_causal_lm  # noqa: E402
from mentor.lm.testbed import VOCAB  # noqa: E402

GPT2 = {"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 16}


@pytest.fixture(scope="module")
def data():
    return Addition(digits=1).split(0, val=20, test=20)


@pytest.fixture(scope="module")
def teacher(data):
    torch.manual_seed(1)
    t = causal_lm(vocab_size=len(VOCAB), max_len=16, config=GPT2)
    return distill_lm(t, None, data[0], regime="supervised", steps=30, batch_size=32).model


def lora_student(seed=0):
    torch.manual_seed(seed)
    return causal_lm(vocab_size=len(VOCAB), max_len=16, config=GPT2,
                     lora={"r": 4, "alpha": 8, "target_modules": ["c_attn", "c_fc"]})


def test_only_the_adapters_train(data, teacher):
    student = lora_student()
    before = {k: v.detach().clone() for k, v in student.named_parameters()}
    distill_lm(student, teacher, data[0], regime="off_policy", steps=5, batch_size=16,
               lr=1e-2)
    changed = {k for k, v in student.named_parameters() if not torch.equal(v, before[k])}
    trainable = {k for k, v in student.named_parameters() if v.requires_grad}
    assert changed and changed == trainable
    assert all("lora_" in k for k in changed)


def test_the_adapter_saves_reloads_and_merges(data, teacher, tmp_path):
    student = lora_student()
    distill_lm(student, teacher, data[0], regime="off_policy", steps=5, batch_size=16,
               lr=1e-2)
    student.eval()
    ids = data[2].ids[:8]
    with torch.no_grad():
        want = student(ids).logits
    save_causal_lm(student, tmp_path)
    with torch.no_grad():
        assert torch.equal(student(ids).logits, want)  # saving left the student as it was
    base = lora_student().get_base_model()  # the same frozen base weights (same seed)
    reloaded = peft.PeftModel.from_pretrained(base, str(tmp_path / "adapter")).eval()
    merged = transformers.AutoModelForCausalLM.from_pretrained(
        str(tmp_path / "model"), local_files_only=True).eval()
    assert not isinstance(merged, peft.PeftModel)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, want, atol=1e-6, rtol=0)
        torch.testing.assert_close(merged(ids).logits, want, atol=1e-5, rtol=0)


def test_a_stopped_lora_run_resumes_to_the_uninterrupted_one(data, teacher, tmp_path):
    kw = dict(regime="off_policy", steps=6, batch_size=16, eval_every=3, lr=1e-2,
              val=data[1])
    whole = distill_lm(lora_student(), teacher, data[0], **kw)
    distill_lm(lora_student(), teacher, data[0], checkpoint_dir=tmp_path, max_steps=3, **kw)
    resumed = distill_lm(lora_student(), teacher, data[0], checkpoint_dir=tmp_path,
                         resume=True, **kw)
    assert resumed.losses == whole.losses
    for a, b in zip(resumed.model.parameters(), whole.model.parameters()):
        assert torch.equal(a, b)


def test_a_tokens_recipe_with_a_lora_student_writes_adapter_and_model(tmp_path):
    from mentor.commands.tokens import run_tokens
    hf = {"arch": "hf", "config": {"model_type": "gpt2", "n_embd": 16, "n_layer": 1,
                                   "n_head": 2}}
    raw = {"name": "lora", "task": "tokens",
           "data": {"digits": 1, "val": 10, "test": 10, "student_sequences": 50},
           "teacher": {**hf, "steps": 4, "batch_size": 8, "eval_every": 2},
           "student": {**hf, "lora": {"r": 2, "target_modules": ["c_attn"]}},
           "train": {"steps": 2, "batch_size": 8, "eval_every": 2, "seeds": [0]},
           "methods": [{"name": "kd", "regime": "off_policy"}]}
    run = run_tokens(raw, tmp_path, progress=False)
    seed = run / "checkpoints" / "kd" / "seed0"
    assert (seed / "adapter" / "adapter_config.json").is_file()
    cfg = json.loads((seed / "model" / "config.json").read_text())
    assert cfg["model_type"] == "gpt2"
    model = transformers.AutoModelForCausalLM.from_pretrained(str(seed / "model"),
                                                              local_files_only=True)
    assert copy.deepcopy(model) is not None
