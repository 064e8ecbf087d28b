"""The zero-shot teacher: its logits against a naive float64 computation from the model's
embeddings, the text table computed once, invariances, frozen weights, the saved and loaded
model, and one-sentence errors."""

import copy
import math

import pytest
import torch

import mentor
from mentor.errors import MentorError
from mentor.vl import (DIGIT_NAMES, TEMPLATES, WordTokenizer, ZeroShotTeacher, load_clip,
                       tiny_clip_config)


def _pooled(out):
    return out if torch.is_tensor(out) else out.pooler_output


def _norm64(v):
    return [a / math.sqrt(sum(b * b for b in v)) for a in v]


def test_logits_equal_a_float64_loop_over_prompts_and_rows(teacher, clip_dir, vl_data):
    model = copy.deepcopy(teacher.model).double()
    tok = WordTokenizer.from_file(clip_dir / "tokenizer.json")
    table = []
    for name in DIGIT_NAMES:
        acc = None
        for tmpl in TEMPLATES:
            enc = tok([tmpl.format(name)])
            with torch.no_grad():
                f = _pooled(model.get_text_features(**enc))[0].tolist()
            f = _norm64(f)
            acc = f if acc is None else [a + b for a, b in zip(acc, f)]
        table.append(_norm64([a / len(TEMPLATES) for a in acc]))
    x = vl_data.splits.val.x[:6]
    scale = math.exp(float(model.logit_scale))
    got = teacher.logits(x)
    for i in range(len(x)):
        pix = ((x[i].double() - 0.5) / 0.5).reshape(1, 1, 8, 8)
        with torch.no_grad():
            img = _norm64(_pooled(model.get_image_features(pixel_values=pix))[0].tolist())
        for c in range(10):
            want = scale * sum(a * b for a, b in zip(img, table[c]))
            assert abs(float(got[i, c]) - want) < 1e-3 * max(1.0, abs(want))


def test_text_features_are_computed_once_and_reused(clip_dir, vl_data):
    model, tok, _ = load_clip(clip_dir)
    calls = {"text": 0, "image": 0}
    text_fn, image_fn = model.get_text_features, model.get_image_features

    def text(*a, **k):
        calls["text"] += 1
        return text_fn(*a, **k)

    def image(*a, **k):
        calls["image"] += 1
        return image_fn(*a, **k)
    model.get_text_features, model.get_image_features = text, image
    t = ZeroShotTeacher(model, tok, DIGIT_NAMES)
    for _ in range(3):
        t.logits(vl_data.splits.val.x[:8])
    assert calls == {"text": 1, "image": 3}


def test_logits_do_not_depend_on_batch_order_or_size(teacher, vl_data):
    x = vl_data.splits.val.x[:40]
    full = teacher.logits(x)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))
    assert torch.allclose(teacher.logits(x[perm]), full[perm], atol=1e-5)
    parts = torch.cat([teacher.logits(c) for c in x.split(7)])
    assert torch.allclose(parts, full, atol=1e-5)


def test_the_zero_shot_teacher_is_better_than_chance_on_validation(teacher, vl_data):
    val = vl_data.splits.val
    assert float((teacher.logits(val.x).argmax(1) == val.y).float().mean()) > 0.5


def test_teacher_is_frozen_through_a_distiller_run(teacher, vl_data):
    before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    table = teacher.text_features.clone()
    d = mentor.Distiller(lambda: torch.nn.Linear(64, 10), teacher, method="kd", epochs=2)
    d.fit(vl_data.splits)
    assert all(not p.requires_grad and p.grad is None for p in teacher.model.parameters())
    after = teacher.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(table, teacher.text_features)


def test_the_model_loaded_from_its_directory_equals_the_saved_one(tmp_path):
    from transformers import CLIPModel
    tok = WordTokenizer.from_texts(["a photo of the digit one", "a photo of the digit two"])
    torch.manual_seed(3)
    model = CLIPModel(tiny_clip_config(tok.vocab_size)).eval()
    model.save_pretrained(tmp_path)
    tok.save(tmp_path / "tokenizer.json")
    (tmp_path / "mentor_vl.json").write_text('{"class_names": ["one", "two"]}')
    loaded, tok2, settings = load_clip(tmp_path)
    saved = model.state_dict()
    assert set(saved) == set(loaded.state_dict())
    assert all(torch.equal(saved[k], v) for k, v in loaded.state_dict().items())
    enc = tok(["a photo of the digit two", "a two"])
    assert torch.equal(enc["input_ids"], tok2(["a photo of the digit two", "a two"])["input_ids"])
    pix = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(_pooled(model.get_image_features(pixel_values=pix)),
                           _pooled(loaded.get_image_features(pixel_values=pix)))
    assert settings["class_names"] == ["one", "two"]


def test_tokenizer_wraps_prompts_in_bos_eos_and_pads_right():
    tok = WordTokenizer.from_texts(["a photo of the digit seven"])
    enc = tok(["a photo of the digit seven", "a seven"])
    ids, mask = enc["input_ids"], enc["attention_mask"]
    assert ids.shape == (2, 8) and ids[0, 0] == tok.bos_id and ids[0, 7] == tok.eos_id
    assert ids[1, 3] == tok.eos_id and ids[1, 4:].eq(tok.pad_id).all()
    assert mask.sum(1).tolist() == [8, 4]
    assert tok(["a nine"])["input_ids"][0, 2] == 2  # an unknown word is [UNK]


def test_pixels_are_the_rows_reshaped_and_normalized(teacher):
    x = torch.rand(2, 64)
    pix = teacher.pixels(x)
    assert pix.shape == (2, 1, 8, 8)
    assert torch.allclose(pix[1, 0, 3, 5], (x[1, 3 * 8 + 5] - 0.5) / 0.5)


@pytest.mark.parametrize("kwargs, field", [
    (dict(class_names=[]), "class_names is empty"),
    (dict(class_names=DIGIT_NAMES, num_classes=9), "num_classes is 9"),
    (dict(image_size=16), "image_size is 16"),
    (dict(templates=["a photo"]), "templates"),
])
def test_bad_settings_are_one_sentence(clip_dir, kwargs, field):
    with pytest.raises(MentorError, match=field):
        ZeroShotTeacher(clip_dir, **kwargs)


def test_missing_directory_and_bad_rows_are_one_sentence(tmp_path, teacher):
    with pytest.raises(MentorError, match="holds no config.json"):
        ZeroShotTeacher(tmp_path / "nowhere")
    with pytest.raises(MentorError, match=r"shape \(3, 63\)"):
        teacher.logits(torch.rand(3, 63))
