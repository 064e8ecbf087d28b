"""A LoRA student (``model: hf`` with ``lora``; Hu et al. 2021): only the adapters and the
classification head train, the base weights stay as they were; the adapter saved alone
reloads over the same base with ``peft`` and gives the trained student's logits; merging
the adapter into the weights (what export does) changes no prediction; bad ``lora`` fields
are refused in one sentence; a recipe runs, saves ``adapter/`` and exports the merged model."""

from __future__ import annotations

import json

import pytest
import torch

from mentor.errors import MentorError
from textdata import small_texts
from mentor.methods import get_method
from mentor.models import build_model
from mentor.recipe import TrainSpec

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

BERT = {"model_type": "bert", "hidden_size": 16, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 32}
LORA = {"r": 4, "alpha": 8, "target_modules": ["query", "value"]}


def _texts(tmp_path, n=120):
    return small_texts(tmp_path, n)


def _student(s, seed=0):
    torch.manual_seed(seed)
    return build_model("hf", s.input_shape, 3, vocab_size=s.vocab_size, config=BERT, lora=LORA)


def _trained(s):
    net = _student(s)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    res = get_method("scratch").plan().fit(
        net, s.train, s.val, spec=TrainSpec(epochs=3, batch_size=16, lr=0.01), seed=0,
        num_outputs=3, input_shape=s.input_shape)
    return res.model.eval(), before


def test_only_the_adapters_and_the_head_train(tmp_path):
    s = _texts(tmp_path)
    net, before = _trained(s)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)
    after = net.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all("lora_" in k or "classifier" in k for k in moved)
    assert any("lora_B" in k for k in moved)  # B starts at zero: the adapter learned
    assert any("classifier" in k for k in moved)  # the new head learns too
    assert any("query.base_layer.weight" in k for k in before)  # the base is there, frozen


def test_the_saved_adapter_reloads_over_the_base_and_merging_changes_nothing(tmp_path):
    from mentor.models.hf import merged, save_adapter
    s = _texts(tmp_path)
    net, _ = _trained(s)
    batch = s.test.x.take(torch.arange(len(s.test)))
    with torch.no_grad():
        want = net(**batch)
    assert save_adapter(net, tmp_path / "adapter")
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert saved["r"] == 4 and sorted(saved["target_modules"]) == ["query", "value"]
    # the base: the same config and seed as the student before its adapters
    torch.manual_seed(0)
    base = build_model("hf", s.input_shape, 3, vocab_size=s.vocab_size, config=BERT).model
    again = peft.PeftModel.from_pretrained(base, str(tmp_path / "adapter")).eval()
    with torch.no_grad():
        assert torch.allclose(again(**batch).logits, want, atol=1e-5)
        plain = merged(net).eval()
        assert not any("lora_" in n for n, _ in plain.named_parameters())
        assert torch.allclose(plain(**batch), want, atol=1e-5)
    assert not save_adapter(build_model("mlp", (4,), 3), tmp_path / "none")


@pytest.mark.parametrize("lora, match", [
    ({"rank": 4}, r"lora has \['rank'\]; expected fields among r, alpha, dropout, "
                  r"target_modules"),
    ({"r": 0}, r"lora.r is 0; expected a rank of at least 1"),
    ({"dropout": 1.5}, r"lora.dropout is 1.5; expected a value in \[0, 1\)"),
    ({"target_modules": ["nope"]}, r"lora cannot be applied to a bert model \(.*\); expected "
                                   r"target_modules that name its layers"),
])
def test_bad_lora_fields_are_refused_in_one_sentence(tmp_path, lora, match):
    s = _texts(tmp_path, n=30)
    with pytest.raises(MentorError, match=match):
        build_model("hf", s.input_shape, 3, vocab_size=s.vocab_size, config=BERT, lora=lora)


def test_a_lora_recipe_runs_saves_its_adapter_and_exports_the_merged_model(tmp_path,
                                                                           monkeypatch):
    from mentor.commands.export import export_student
    from mentor.commands.run import run_recipe
    _texts(tmp_path)
    monkeypatch.chdir(tmp_path)
    run = run_recipe({
        "name": "lora", "data": {"source": "t.jsonl", "target": "label", "text": "text",
                                 "vocab_size": 40},
        "teacher": {"model": "bag", "embed": 16, "train": {"epochs": 8, "lr": 0.02}},
        "student": {"model": "hf", "config": BERT, "lora": LORA},
        "methods": [{"name": "kd"}], "train": {"epochs": 3, "lr": 0.01, "seeds": [0]}},
        tmp_path / "runs", progress=False)
    (adapter,) = list(run.glob("checkpoints/**/adapter/adapter_config.json"))
    assert json.loads(adapter.read_text())["r"] == 4
    out, card = export_student(run, "onnx", tmp_path / "onnx")
    assert "LoRA adapter merged into the weights" in card["student"]["inference"]
    assert "lora" not in card["student"]["architecture"]
    assert card["parity"]["max_abs_diff"] <= card["parity"]["tolerance"]
    results = json.loads((run / "results.json").read_text())
    assert card["accuracy"]["test_accuracy_exported"] == pytest.approx(
        results["rows"][0]["test_accuracy_mean"])
