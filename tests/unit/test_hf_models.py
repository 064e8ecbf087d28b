"""Hugging Face models in recipes (``model: hf``): from a config or a local folder, on token
ids and on images; a folder whose config does not fit the data is refused in one sentence;
a training of an HF student resumes mid-epoch bit for bit; its checkpoint reloads."""

from __future__ import annotations


import pytest
import torch

from mentor.errors import MentorError
from textdata import small_texts
from mentor.models import build_model

transformers = pytest.importorskip("transformers")

BERT = {"model_type": "bert", "hidden_size": 16, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 32}
VIT = {"model_type": "vit", "patch_size": 4, "hidden_size": 16, "num_hidden_layers": 1,
       "num_attention_heads": 2, "intermediate_size": 32}


def _texts(tmp_path, n=120):
    return small_texts(tmp_path, n)


def test_a_config_model_reads_token_ids_and_images_and_returns_logits(tmp_path):
    s = _texts(tmp_path)
    torch.manual_seed(0)
    net = build_model("hf", s.input_shape, 3, vocab_size=s.vocab_size, config=BERT)
    batch = s.train.x.take(torch.arange(5))
    out = net(**batch)
    assert out.shape == (5, 3)
    assert net.model.config.vocab_size == s.vocab_size and net.model.config.num_labels == 3
    torch.manual_seed(0)  # the seed fixes the initial weights
    again = build_model("hf", s.input_shape, 3, vocab_size=s.vocab_size, config=BERT)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(),
                                                 again.state_dict().values()))
    vit = build_model("hf", (3, 8, 8), 4, config=VIT)
    assert vit(torch.randn(2, 3 * 8 * 8)).shape == (2, 4)


def test_a_local_folder_loads_its_weights_and_a_mismatch_is_refused(tmp_path):
    s = _texts(tmp_path)
    torch.manual_seed(0)
    net = build_model("hf", s.input_shape, 3, vocab_size=s.vocab_size, config=BERT)
    net.model.save_pretrained(str(tmp_path / "m"))
    loaded = build_model("hf", s.input_shape, 3, vocab_size=s.vocab_size,
                         path=str(tmp_path / "m"))
    batch = s.val.x.take(torch.arange(4))
    net.eval(), loaded.eval()
    assert torch.equal(net(**batch), loaded(**batch))
    with pytest.raises(MentorError, match=r"classifies 3 classes but the data have 5; "
                       r"expected the same, or new_head: true"):
        build_model("hf", s.input_shape, 5, vocab_size=s.vocab_size, path=str(tmp_path / "m"))
    fresh = build_model("hf", s.input_shape, 5, vocab_size=s.vocab_size,
                        path=str(tmp_path / "m"), new_head=True)
    assert fresh(**batch).shape == (4, 5)
    with pytest.raises(MentorError, match=r"has a vocabulary of \d+ tokens but the tokenizer "
                       r"gives ids up to 999"):
        build_model("hf", s.input_shape, 3, vocab_size=1000, path=str(tmp_path / "m"))
    with pytest.raises(MentorError, match=r"reads 3-channel images but the data have 1"):
        vit = build_model("hf", (3, 8, 8), 3, config=VIT)
        vit.model.save_pretrained(str(tmp_path / "v"))
        build_model("hf", (1, 8, 8), 3, path=str(tmp_path / "v"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(MentorError, match=r"has no config.json; expected a folder written by "
                       r"save_pretrained"):
        build_model("hf", s.input_shape, 3, vocab_size=s.vocab_size, path=str(tmp_path /
                                                                               "empty"))
    with pytest.raises(MentorError, match=r"model 'hf' reads token ids \(data.text\) or "
                       r"images"):
        build_model("hf", (4,), 3, config=BERT)


def test_an_hf_student_resumes_mid_epoch_bit_for_bit(tmp_path):
    from mentor.methods import get_method
    from mentor.recipe import TrainSpec
    s = _texts(tmp_path)
    spec = TrainSpec(epochs=2, batch_size=16, lr=1e-3, select="best_val")

    def fit(**kw):
        torch.manual_seed(0)
        net = build_model("hf", s.input_shape, 3, vocab_size=s.vocab_size, config=BERT)
        return get_method("scratch").plan().fit(net, s.train, s.val, spec=spec, seed=1,
                                                num_outputs=3, **kw)
    full = fit()
    part = fit(checkpoint_dir=tmp_path / "ck", max_steps=5)
    assert not part.finished
    resumed = fit(checkpoint_dir=tmp_path / "ck", resume=True)
    assert resumed.finished and resumed.history == full.history
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # dropout draws included


def test_a_saved_hf_checkpoint_reloads_as_a_teacher(tmp_path):
    from mentor.engine.checkpoint import save_weights
    from mentor.teachers import load_checkpoint_teacher
    s = _texts(tmp_path)
    torch.manual_seed(0)
    net = build_model("hf", s.input_shape, 3, vocab_size=s.vocab_size, config=BERT).eval()
    save_weights(tmp_path / "t.safetensors", net,
                 {"mentor.model": {"model": "hf", "config": BERT}, "mentor.num_classes": 3,
                  "mentor.input_shape": list(s.input_shape), "mentor.vocab_size": s.vocab_size})
    teacher = load_checkpoint_teacher(tmp_path / "t.safetensors", input_shape=s.input_shape,
                                      num_classes=3)
    batch = s.val.x.take(torch.arange(6))
    assert torch.equal(teacher.logits(batch), net(**batch))


def test_a_folder_of_another_kind_of_model_is_refused_in_one_sentence(tmp_path):
    """A causal language model's folder given as a text classifier names what it holds
    (with new_head: true its body gets a new classification head); a vision model's folder
    for token ids is refused as a model type without a text classifier."""
    s = _texts(tmp_path)
    cfg = transformers.GPT2Config(vocab_size=64, n_embd=16, n_layer=1, n_head=2, n_positions=32)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(str(tmp_path / "lm"))
    with pytest.raises(MentorError, match=r"model folder '.*lm' holds a GPT2LMHeadModel, not a "
                       r"text classifier \(\*ForSequenceClassification\); expected a model "
                       r"saved with that head, or new_head: true"):
        build_model("hf", s.input_shape, 3, vocab_size=s.vocab_size, path=str(tmp_path / "lm"))
    body = build_model("hf", s.input_shape, 3, vocab_size=s.vocab_size,
                       path=str(tmp_path / "lm"), new_head=True)
    body.model.config.pad_token_id = 0
    assert body(**s.val.x.take(torch.arange(2))).shape == (2, 3)
    vit = build_model("hf", (3, 8, 8), 3, config=VIT)
    vit.model.save_pretrained(str(tmp_path / "v"))
    with pytest.raises(MentorError, match=r"is a 'vit' model, which transformers has no text "
                       r"classifier \(\*ForSequenceClassification\) for"):
        build_model("hf", s.input_shape, 3, vocab_size=s.vocab_size, path=str(tmp_path / "v"),
                    new_head=True)
