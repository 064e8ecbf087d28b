"""A ``task: tokens`` recipe with Hugging Face causal LMs (``arch: hf``): a GPT-2 teacher and
student from configs, and a student from a local ``save_pretrained`` folder, run the regimes
end to end; a folder of another kind of model, too small a vocabulary or too few positions
are refused in one sentence before training."""

from __future__ import annotations

import json

import pytest

from mentor.commands.run import run_recipe
from mentor.errors import MentorError
from mentor.lm.testbed import VOCAB

transformers = pytest.importorskip("transformers")
GPT2 = {"model_type": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2, "n_positions": 16,
        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}


def _recipe(student: dict) -> dict:
    return {"name": "hf-tokens", "task": "tokens",
            "data": {"student_sequences": 200, "val": 32, "test": 32},
            "teacher": {"arch": "hf", "config": GPT2, "steps": 40, "batch_size": 32,
                        "eval_every": 20},
            "student": student,
            "methods": [{"name": "data", "regime": "supervised"},
                        {"name": "forward-kl", "regime": "off_policy"}],
            "train": {"steps": 20, "batch_size": 16, "eval_every": 10, "seeds": [0]}}


def test_hf_causal_lms_run_the_regimes_end_to_end(tmp_path):
    run = run_recipe(_recipe({"arch": "hf", "config": {**GPT2, "n_embd": 8}}), tmp_path,
                     progress=False)
    results = json.loads((run / "results.json").read_text())
    assert results["teacher"]["description"] == "transformers causal LM (gpt2)"
    assert [r["method"] for r in results["rows"]] == ["data", "forward-kl"]
    queries = {r["method"]: r["teacher_queries_mean"] for r in results["rows"]}
    assert queries["data"] == 0 and queries["forward-kl"] > 0
    assert all(0.0 <= r["test_accuracy_mean"] <= 1.0 for r in results["rows"])


def test_a_local_folder_is_a_student_and_a_wrong_folder_is_refused(tmp_path):
    cfg = transformers.GPT2Config(vocab_size=len(VOCAB), n_embd=8, n_layer=1, n_head=2,
                                  n_positions=16)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(str(tmp_path / "lm"))
    run = run_recipe(_recipe({"arch": "hf", "path": str(tmp_path / "lm")}), tmp_path / "runs",
                     progress=False)
    assert (run / "checkpoints" / "forward-kl" / "seed0" / "student.safetensors").is_file()
    bert = transformers.BertConfig(vocab_size=64, hidden_size=8, num_hidden_layers=1,
                                   num_attention_heads=2, intermediate_size=16)
    transformers.BertForSequenceClassification(bert).save_pretrained(str(tmp_path / "cls"))
    with pytest.raises(MentorError, match=r"holds a BertForSequenceClassification, not a "
                       r"causal language model"):
        run_recipe(_recipe({"arch": "hf", "path": str(tmp_path / "cls")}), tmp_path / "r2",
                   progress=False)
    small = transformers.GPT2Config(vocab_size=4, n_embd=8, n_layer=1, n_head=2, n_positions=16)
    transformers.GPT2LMHeadModel(small).save_pretrained(str(tmp_path / "small"))
    with pytest.raises(MentorError, match=r"has a vocabulary of 4 tokens but the data's ids "
                       rf"go up to {len(VOCAB) - 1}"):
        run_recipe(_recipe({"arch": "hf", "path": str(tmp_path / "small")}), tmp_path / "r3",
                   progress=False)
    with pytest.raises(MentorError, match=r"reads at most 4 positions but the data's "
                       r"sequences have \d+"):
        run_recipe(_recipe({"arch": "hf", "config": {**GPT2, "n_positions": 4}}),
                   tmp_path / "r4", progress=False)


def test_special_ids_of_a_model_type_beyond_the_vocabulary_are_unset():
    """GPT-2's config names token 50256 as bos and eos; over a vocabulary of 600 it names no
    token (transformers warns that it may misbehave): unset unless the recipe sets it."""
    from mentor.lm.hf_models import causal_lm
    model = causal_lm(vocab_size=600, max_len=16, config=GPT2)
    assert model.config.bos_token_id is None and model.config.eos_token_id is None
    model = causal_lm(vocab_size=600, max_len=16, config={**GPT2, "eos_token_id": 2})
    assert model.config.eos_token_id == 2 and model.config.bos_token_id is None
    assert causal_lm(vocab_size=60_000, max_len=16, config=GPT2).config.eos_token_id == 50256
