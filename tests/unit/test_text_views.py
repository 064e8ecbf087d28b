"""Views of token ids (``token_drop``, ``token_span``): against naive per-token references,
pure functions of their draws, independent of the batch; the SSL presets run on text with
them and resume bit for bit; views that cannot read the inputs are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mentor.data.augment import Augment
from mentor.data.text_views import token_drop, token_span
from mentor.errors import MentorError


def _batch():
    ids = torch.tensor([[5, 6, 7, 8, 0, 0], [9, 9, 9, 9, 9, 9], [3, 0, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    return {"input_ids": ids, "attention_mask": mask}


def test_token_drop_deletes_tokens_whose_draw_is_below_p_and_keeps_one():
    x = _batch()
    u = torch.rand(3, 6, generator=torch.Generator().manual_seed(0))
    for p in (0.0, 0.3, 0.7, 1.0):
        got = token_drop(x, u, (6,), p=p)
        assert torch.equal(got["input_ids"], x["input_ids"])
        for r in range(3):
            want = [int(m and u[r, j] >= p) for j, m in enumerate(x["attention_mask"][r])]
            if not any(want):  # everything dropped: the first real token stays
                want[int(x["attention_mask"][r].argmax())] = 1
            assert got["attention_mask"][r].tolist() == want, (p, r)


def test_token_span_keeps_one_contiguous_span_of_the_drawn_fraction():
    x = _batch()
    u = torch.tensor([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    got = token_span(x, u, (6,), min_keep=0.5)["attention_mask"]
    for r in range(3):
        n = int(x["attention_mask"][r].sum())
        span = max(1, int(np.ceil(n * (0.5 + 0.5 * float(u[r, 0])))))
        start = int(np.floor((n - span) * float(u[r, 1])))
        want = [int(start <= j < start + span) for j in range(6)]
        assert got[r].tolist() == want, r


def test_a_rows_view_depends_only_on_its_draws_not_on_the_batch():
    pipe = Augment([("token_drop", {"p": 0.4}), ("token_span", {"min_keep": 0.5})], (6,))
    x = _batch()
    whole = pipe(x, torch.Generator().manual_seed(3), positions=torch.arange(3))
    last = pipe({k: v[2:] for k, v in x.items()}, torch.Generator().manual_seed(3),
                positions=torch.tensor([2]))
    assert torch.equal(whole["attention_mask"][2:], last["attention_mask"])
    with pytest.raises(MentorError, match=r"mixes augmentations of token ids and of numeric "
                       r"rows"):
        Augment([("token_drop", {}), ("noise", {})], (6,))
    with pytest.raises(MentorError, match=r"token_drop.p must be"):
        Augment([("token_drop", {"p": 2})], (6,))


def _texts(tmp_path):
    from mentor.data import load
    from mentor.data.text_source import TextOptions
    rng = np.random.default_rng(0)
    words = ["cat dog horse bird".split(), "car bus ship train".split(),
             "rice soup cake milk".split()]
    with open(tmp_path / "t.jsonl", "w") as f:
        for i in range(180):
            f.write(json.dumps({"text": " ".join(rng.choice(words[i % 3], 5)),
                                "label": None if i % 3 == 1 and i % 2 else i % 3}) + "\n")
    return load(str(tmp_path / "t.jsonl"), target="label", text=TextOptions("text"),
                labeled_fraction=0.3)


def test_fixmatch_on_text_runs_with_token_views_and_resumes_bit_for_bit(tmp_path):
    from mentor.methods import get_method
    from mentor.models import build_model
    from mentor.recipe import TrainSpec
    s = _texts(tmp_path)
    spec = TrainSpec(epochs=2, batch_size=8, unlabeled_ratio=2, collapse_steps=0,
                     select="last")

    def fit(**kw):
        torch.manual_seed(0)
        net = build_model("bag", s.input_shape, 3, vocab_size=s.vocab_size, embed=8)
        return get_method("fixmatch").plan().fit(net, s.train, s.val, spec=spec, seed=2,
                                                 num_outputs=3, input_shape=s.input_shape,
                                                 **kw)
    full = fit()
    part = fit(checkpoint_dir=tmp_path / "ck", max_steps=7)
    assert not part.finished
    resumed = fit(checkpoint_dir=tmp_path / "ck", resume=True)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert resumed.finished and all(torch.equal(a[k], b[k]) for k in a)
    assert json.dumps(resumed.history, sort_keys=True) == json.dumps(full.history,
                                                                     sort_keys=True)


def test_views_that_cannot_read_the_inputs_are_refused(tmp_path):
    from mentor.methods import get_method
    from mentor.models import build_model
    from mentor.recipe import AugmentSpec, TrainSpec
    s = _texts(tmp_path)
    net = build_model("bag", s.input_shape, 3, vocab_size=s.vocab_size, embed=8)
    spec = TrainSpec(epochs=1, augment=AugmentSpec(weak=[{"name": "noise"}]))
    with pytest.raises(MentorError, match=r"train.augment noise augments numeric rows, but "
                       r"the inputs are token ids"):
        get_method("fixmatch").plan().fit(net, s.train, s.val, spec=spec, seed=0,
                                          num_outputs=3, input_shape=s.input_shape)
    from mentor.data import load
    digits = load("digits")
    spec = TrainSpec(epochs=1, augment=AugmentSpec(weak=[{"name": "token_drop"}],
                                                   strong=[{"name": "token_drop"}]))
    with pytest.raises(MentorError, match=r"augments token ids, but the inputs are numeric "
                       r"rows"):
        get_method("fixmatch").plan().fit(build_model("mlp", (64,), 10), digits.train,
                                          digits.val, spec=spec, seed=0, num_outputs=10,
                                          input_shape=digits.input_shape)


def test_labeled_rows_get_the_labeled_view_and_the_others_the_student_view():
    from mentor.engine.views import role_views
    x = _batch()
    pipes = {"labeled": Augment([("token_drop", {"p": 1.0})], (6,)),  # one token left
             "student": Augment([("token_span", {"min_keep": 1.0})], (6,))}  # unchanged
    labeled = torch.tensor([True, False, True])
    teacher, student = role_views(pipes, x, labeled, seed=0, step=0, local=None)
    assert teacher is x  # no teacher view: the rows as they are
    assert student["attention_mask"].sum(1).tolist() == [1, 6, 1]
    assert torch.equal(student["input_ids"], x["input_ids"])
