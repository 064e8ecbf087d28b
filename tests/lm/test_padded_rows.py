"""Rows of different lengths on the language-model path (issue 21's silent traps):

* every row trains on its own completion mask (not row 0's), and each target token of a step
  weighs the same;
* Hugging Face models get the attention mask and position ids, so left- and right-padded rows
  give the unpadded logits;
* exact match compares completions up to their end-of-sequence token and nothing after it:
  the score equals the one computed with ``model.generate`` row by row, unpadded;
* generation uses the KV cache (one new position per forward after the prompt), stops a row
  at its end-of-sequence token and the batch when every row has stopped.

The model is a 2-layer GPT-2 trained here for a few steps on a reversal task whose prompts and
completions have 1 to 4 symbols (completions end with an end-of-sequence token)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

transformers = pytest.importorskip("transformers")

from mentor.errors import MentorError  # noqa: E402
from mentor.lm import CharLM, distill_lm, exact_match  # noqa: E402
from mentor.lm import regimes  # noqa: E402
from mentor.lm.generate import complete, complete_data  # noqa: E402
from mentor.lm.testbed import reversal  # noqa: E402
from mentor.lm.token_data import TokenData, from_lists  # noqa: E402
from mentor.losses.tokens import token_count  # noqa: E402
from mentor.tasks.tokens import logits_of  # noqa: E402

PAD, BOS, EOS, EQ = 0, 1, 2, 3


def gpt2(seed: int = 0):
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(vocab_size=10, n_positions=16, n_embd=32, n_layer=2,
                                  n_head=2, bos_token_id=BOS, eos_token_id=EOS,
                                  pad_token_id=PAD)
    return transformers.GPT2LMHeadModel(cfg)


@pytest.fixture(scope="module")
def trained():
    """A GPT-2 that has learned part of the reversal task (trained on padded rows)."""
    return distill_lm(gpt2(), None, reversal(1000, 0), regime="supervised", steps=120,
                      batch_size=64, lr=5e-3).model.eval()


def test_token_data_keeps_each_rows_layout():
    d = from_lists([[1, 5], [1, 6, 7, 3]], [[4, 2], [8, 9, 9, 9, 2, 7]], eos_id=2)
    assert d.ids.tolist() == [[1, 5, 4, 2, 0, 0, 0, 0, 0], [1, 6, 7, 3, 8, 9, 9, 9, 2]]
    assert d.prompt_lens.tolist() == [2, 4] and d.lengths.tolist() == [4, 9]
    assert d.completion_lists() == [[4, 2], [8, 9, 9, 9, 2]]  # cut after end-of-sequence
    with pytest.raises(MentorError, match="prompts of one length"):
        d.prompt_len
    with pytest.raises(MentorError, match="not right-padded"):
        TokenData(d.ids, d.target, torch.tensor([[0, 1, 1, 1, 0, 0, 0, 0, 0], [1] * 9]).bool())
    with pytest.raises(MentorError, match="row 0 has no completion token"):
        TokenData(d.ids, torch.zeros_like(d.target))


def test_each_row_trains_on_its_own_completion(monkeypatch):
    """Completions of 2 and 4 tokens: every micro-batch's mask is its rows' masks, and the
    step's loss is the cross-entropy summed over exactly those tokens over their count (the
    old feed put row 0's mask on every row: 16 target tokens for 4 rows instead of 8+)."""
    data = from_lists([[1, 4, 3]] * 3 + [[1, 5, 5, 3]] * 3,
                      [[6, 2]] * 3 + [[7, 8, 9, 2]] * 3, eos_id=EOS)
    seen = []
    real = regimes.micro_loss

    def spy(student, teacher, batch, rows, mode, n, regime, step):
        seen.append((batch, rows, n))
        return real(student, teacher, batch, rows, mode, n, regime, step)
    monkeypatch.setattr(regimes, "micro_loss", spy)
    torch.manual_seed(0)
    student = CharLM(10, 16)
    before = copy.deepcopy(student)
    res = distill_lm(student, None, data, regime="supervised", steps=1, batch_size=4,
                     accumulate=2, lr=1e-9)
    assert len(seen) == 2
    total = sum(int(b.target.sum()) for b, _, _ in seen)
    assert all(float(n) == total for _, _, n in seen)
    expected = 0.0
    for batch, rows, _ in seen:
        want = data.subset(rows)
        assert torch.equal(batch.target, want.target) and torch.equal(batch.ids, want.ids)
        with torch.no_grad():
            z = before(batch.ids).double()
        for i in range(len(batch)):
            for t in range(1, batch.ids.shape[1]):
                if batch.target[i, t]:
                    expected += -F.log_softmax(z[i, t - 1], -1)[batch.ids[i, t]].item()
    assert res.losses[0] == pytest.approx(expected / total, rel=1e-5)


@pytest.mark.parametrize("side", ["right", "left"])
def test_hugging_face_models_get_the_mask_and_positions(side):
    """Padded rows give the logits of the same rows unpadded, at every real position."""
    model = gpt2().eval()
    rows = [[1, 4, 5, 6, 3], [1, 7, 3], [1, 8, 9, 3]]
    width = max(map(len, rows))
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    att = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, r in enumerate(rows):
        sl = slice(0, len(r)) if side == "right" else slice(width - len(r), width)
        ids[i, sl], att[i, sl] = torch.tensor(r), True
    with torch.no_grad():
        padded = logits_of(model, ids, att)
        for i, r in enumerate(rows):
            alone = logits_of(model, torch.tensor([r]))[0]
            torch.testing.assert_close(padded[i][att[i]], alone, atol=1e-5, rtol=1e-5)


def test_a_module_without_a_mask_refuses_left_padding():
    ids = torch.tensor([[0, 1, 4], [1, 5, 6]])
    att = torch.tensor([[0, 1, 1], [1, 1, 1]]).bool()
    with pytest.raises(MentorError, match="left-padded; expected right padding"):
        logits_of(CharLM(10, 8), ids, att)


def _generate_reference(model, data: TokenData) -> float:
    """Exact match as a user computes it with ``generate``: each prompt alone, greedy, up to
    the end-of-sequence token."""
    right = 0
    for prompt, ref in zip(data.prompt_lists(), data.completion_lists()):
        out = model.generate(torch.tensor([prompt]), max_new_tokens=len(ref) + 2,
                             do_sample=False, eos_token_id=EOS, pad_token_id=PAD)
        got = out[0, len(prompt):].tolist()
        got = got[:got.index(EOS) + 1] if EOS in got else got
        right += int(got == ref)
    return right / len(data)


def test_exact_match_stops_at_end_of_sequence(trained):
    """mentor's exact match equals the row-by-row ``generate`` score, and positions after a
    completion's end (which the trained model fills with other tokens) are never compared."""
    val = reversal(120, 1)
    ours, reference = exact_match(trained, val, batch_size=32), _generate_reference(trained, val)
    assert ours == pytest.approx(reference)
    assert 0.3 < ours < 1.0
    out = complete(trained, *val.left_padded_prompts()[:1], 6,
                   attention=val.left_padded_prompts()[1], pad_id=PAD)
    after = out[:, val.left_padded_prompts()[0].shape[1]:]
    assert (after[:, 1:] != PAD).any()  # without an end-of-sequence stop, tokens follow it


def test_generation_uses_the_cache_and_stops_at_end_of_sequence(trained, monkeypatch):
    val = reversal(16, 2)
    lengths = []
    forward = type(trained).forward

    def counting(self, *a, **kw):
        lengths.append(kw["input_ids"].shape[1])
        return forward(self, *a, **kw)
    monkeypatch.setattr(type(trained), "forward", counting)
    out = complete_data(trained, val, 8)
    prompt_width = val.left_padded_prompts()[0].shape[1]
    assert lengths[0] == prompt_width and set(lengths[1:]) == {1}
    assert len(lengths) < 8  # every row stopped before 8 new tokens
    for c in out.completion_lists():
        assert c.count(EOS) <= 1 and (EOS not in c or c[-1] == EOS)


def test_sampling_is_reproducible_from_the_generator(trained):
    val = reversal(16, 3)
    a = complete_data(trained, val, greedy=False, generator=torch.Generator().manual_seed(5))
    b = complete_data(trained, val, greedy=False, generator=torch.Generator().manual_seed(5))
    c = complete_data(trained, val, greedy=False, generator=torch.Generator().manual_seed(6))
    assert a.completion_lists() == b.completion_lists() != c.completion_lists()


@pytest.mark.parametrize("regime", ["off_policy", "on_policy", "seqkd"])
def test_regimes_run_on_padded_hugging_face_rows(trained, regime):
    res = distill_lm(gpt2(1), trained, reversal(64, 4), val=reversal(16, 5), regime=regime,
                     steps=4, batch_size=8, eval_every=2, lr=1e-3)
    assert len(res.losses) == 4 and all(map(lambda v: v == v and v < 1e9, res.losses))
    assert [h["step"] for h in res.history] == [2, 4]


def test_token_count_counts_each_rows_tokens():
    d = from_lists([[1, 4]] * 2, [[5, 2], [6, 7, 8, 2]], eos_id=EOS)
    assert int(token_count([d.target[:, 1:]])) == 6


def test_the_models_saved_generation_settings_do_not_leak_in(trained):
    """A repetition penalty, n-gram ban or top-k saved in the model's generation config
    would change mentor's greedy and sampled completions; they are left out (and restored)."""
    val = reversal(16, 6)
    kw = dict(greedy=False, generator=torch.Generator().manual_seed(1))
    greedy, sampled = complete_data(trained, val), complete_data(trained, val, **kw)
    saved = trained.generation_config
    trained.generation_config = transformers.GenerationConfig(
        repetition_penalty=50.0, no_repeat_ngram_size=1, do_sample=True, top_k=2)
    try:
        kw["generator"] = torch.Generator().manual_seed(1)
        assert complete_data(trained, val).ids.tolist() == greedy.ids.tolist()
        assert complete_data(trained, val, **kw).ids.tolist() == sampled.ids.tolist()
        assert trained.generation_config.repetition_penalty == 50.0
    finally:
        trained.generation_config = saved
