"""Vocabulary safety for token-level LM distillation (``mentor.lm.vocab``).

Vocabularies are built offline: dicts, lists, a fake tokenizer with ``get_vocab()``, and --
when ``tokenizers``/``transformers`` are installed -- real ``PreTrainedTokenizerFast`` objects
made from an in-memory word-level model (no downloads).
"""

from __future__ import annotations

import pytest
import torch

from mentor.errors import MentorError, ParameterError
from mentor.lm.vocab import VocabAlignment, align_vocab, vocab_from_tokenizer

TOKENS = ["<pad>", "<eos>", "the", "cat", "sat", "on", "mat", "."]


class FakeTokenizer:
    """The part of a Hugging Face tokenizer that mentor reads."""

    def __init__(self, tokens):
        self._vocab = {t: i for i, t in enumerate(tokens)}

    def get_vocab(self):
        return dict(self._vocab)


def hf_tokenizer(tokens):
    """A real transformers fast tokenizer over ``tokens`` (word level), built in memory."""
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    model = tokenizers.models.WordLevel({t: i for i, t in enumerate(tokens)}, unk_token="<pad>")
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizers.Tokenizer(model))


# --------------------------------------------------------------------------- accepted


def test_equal_vocabularies_share_everything():
    a = align_vocab(8, 8, student_vocab=TOKENS, teacher_vocab={t: i for i, t in enumerate(TOKENS)})
    assert isinstance(a, VocabAlignment)
    assert (a.size, a.student_size, a.teacher_size) == (8, 8, 8)
    assert "identical" in a.reason


def test_equal_sizes_without_vocabularies_are_accepted_unchecked():
    a = align_vocab(8, 8)
    assert a.size == 8 and "not checked" in a.reason


@pytest.mark.parametrize("student_size,teacher_size", [(8, 16), (16, 8), (12, 16)])
def test_padded_vocabulary_of_one_family_is_truncated(student_size, teacher_size):
    # the same 8-token tokenizer, each model padded to its own width (GPT-2 50257 -> 50304)
    a = align_vocab(student_size, teacher_size, student_vocab=TOKENS,
                    teacher_vocab=FakeTokenizer(TOKENS))
    size = min(student_size, teacher_size)
    assert a.size == size
    assert a.reason == f"padded vocabulary truncated to the shared prefix of {size} tokens"


def test_padded_vocabulary_with_real_tokenizers():
    tok = hf_tokenizer(TOKENS)
    assert vocab_from_tokenizer(tok) == {t: i for i, t in enumerate(TOKENS)}
    a = align_vocab(len(tok), 64, student_vocab=tok, teacher_vocab=hf_tokenizer(TOKENS))
    assert a.size == len(TOKENS)


def test_slicing_cuts_the_padding_rows_only():
    a = align_vocab(8, 11, student_vocab=TOKENS, teacher_vocab=TOKENS)
    zs, zt = torch.randn(2, 5, 8), torch.randn(2, 5, 11)
    assert torch.equal(a.student(zs), zs)
    assert torch.equal(a.teacher(zt), zt[..., :8])
    assert a.teacher(zt).data_ptr() == zt.data_ptr()  # a view, no copy
    with pytest.raises(MentorError, match=r"teacher logits have shape \(2, 5, 8\).*11 entries"):
        a.teacher(zs)


def test_vocab_from_tokenizer_forms():
    want = {t: i for i, t in enumerate(TOKENS)}
    assert vocab_from_tokenizer(TOKENS) == want
    assert vocab_from_tokenizer(tuple(TOKENS)) == want
    assert vocab_from_tokenizer(FakeTokenizer(TOKENS)) == want
    assert vocab_from_tokenizer(dict(reversed(list(want.items())))) == want


# --------------------------------------------------------------------------- refused


def test_prefix_mismatch_names_the_first_differing_id():
    other = TOKENS[:3] + ["dog"] + TOKENS[4:]
    with pytest.raises(MentorError, match=r"differ at id 3 \('cat' for the student, 'dog' for "
                                          r"the teacher\).*not supported yet"):
        align_vocab(8, 16, student_vocab=TOKENS, teacher_vocab=other)
    with pytest.raises(MentorError, match="differ at id 3"):  # equal sizes too
        align_vocab(8, 8, student_vocab=TOKENS, teacher_vocab=other)


def test_real_extra_tokens_are_not_padding():
    more = TOKENS + ["dog", "ran"]
    with pytest.raises(MentorError, match=r"teacher tokenizer defines real tokens beyond the "
                                          r"shared prefix of 8 tokens \(id 8 is no token for "
                                          r"the student and 'dog' for the teacher\).*not "
                                          r"supported yet"):
        align_vocab(8, 16, student_vocab=TOKENS, teacher_vocab=more)
    with pytest.raises(MentorError, match="student tokenizer defines real tokens"):
        align_vocab(16, 8, student_vocab=more, teacher_vocab=TOKENS)


def test_tokenizer_larger_than_its_model_is_refused():
    with pytest.raises(MentorError, match=r"teacher tokenizer defines id 7 \('\.'\) but the "
                                          r"teacher model has only 6 logits"):
        align_vocab(8, 6, student_vocab=TOKENS, teacher_vocab=TOKENS)


def test_size_mismatch_without_vocabularies_asks_for_them():
    with pytest.raises(MentorError, match=r"sizes differ \(50257 and 50304\).*student and "
                                          r"teacher tokenizer vocabulary was not given.*prove "
                                          r"the difference is padding"):
        align_vocab(50257, 50304)
    with pytest.raises(MentorError, match="the teacher tokenizer vocabulary was not given"):
        align_vocab(8, 16, student_vocab=TOKENS)


def test_size_mismatch_refused_without_padding():
    with pytest.raises(MentorError, match=r"\(8 and 16\) and allow_padding=False"):
        align_vocab(8, 16, student_vocab=TOKENS, teacher_vocab=TOKENS, allow_padding=False)


@pytest.mark.parametrize("size", [0, -3])
def test_non_positive_sizes(size):
    with pytest.raises(ParameterError, match=f"align_vocab.student_size must be >= 1, got {size}"):
        align_vocab(size, 8)


@pytest.mark.parametrize("size", [8.0, "8", True, None])
def test_non_integer_sizes(size):
    with pytest.raises(MentorError, match="align_vocab.teacher_size must be a positive integer"):
        align_vocab(8, size)


@pytest.mark.parametrize("vocab,match", [
    ({"a": 0, "b": 0}, "maps both 'a' and 'b' to id 0"),
    ({"a": -1}, "maps token 'a' to -1; expected a non-negative integer id"),
    (["a", "b", "a"], "lists token 'a' at ids 0 and 2"),
    ("abc", "of type str is not supported"),
])
def test_bad_vocabularies(vocab, match):
    with pytest.raises(MentorError, match=match):
        align_vocab(8, 8, student_vocab=vocab, teacher_vocab=TOKENS)
