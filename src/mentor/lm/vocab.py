"""Vocabulary safety for token-level distillation of language models.

Token-level KD (Hinton et al. 2015 applied per position, as in DistilBERT, Sanh et al. 2019,
and in AlexaTM's distillation of masked-LM outputs, FitzGerald et al. 2022, METHODS.md §6)
compares the teacher's and the student's distributions over the *same* vocabulary: logit row
``i`` of both models must mean the same token. :func:`align_vocab` proves that from the two
tokenizers' vocabularies before any loss is computed, and gives back a
:class:`VocabAlignment` whose ``student(...)`` / ``teacher(...)`` cut both logits to the
shared size.

The one size difference accepted is *padding*: many models round their embedding matrix up
to a multiple of 64 or 128 for speed (GPT-2's 50257 tokens are often padded to 50304), and the
extra rows are ids no tokenizer ever produces. When both tokenizers map every id to the same
token and neither defines an id beyond the smaller model's logits, the extra rows are padding
and are dropped. Anything else -- a prefix that differs, or real tokens beyond it -- needs
cross-tokenizer alignment (e.g. ULD, Boizard et al. 2024; MinED, Wan et al. 2024), which
mentor does not support yet, so it is an error rather than a silent, meaningless KL.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from ..errors import MentorError, check_positive_int

__all__ = ["VocabAlignment", "align_vocab", "vocab_from_tokenizer"]


@dataclass(frozen=True)
class VocabAlignment:
    """How student and teacher logits line up: both are cut to their first ``size`` entries.

    ``size`` is the shared vocabulary size the token losses use; ``student_size`` and
    ``teacher_size`` are the models' logit widths; ``reason`` says in words why the cut is
    safe (shown in run reports).
    """

    size: int
    student_size: int
    teacher_size: int
    reason: str

    def student(self, logits: Tensor) -> Tensor:
        """The student's logits ``(..., student_size)`` cut to ``(..., size)`` (a view)."""
        return self._cut(logits, self.student_size, "student")

    def teacher(self, logits: Tensor) -> Tensor:
        """The teacher's logits ``(..., teacher_size)`` cut to ``(..., size)`` (a view)."""
        return self._cut(logits, self.teacher_size, "teacher")

    def _cut(self, logits: Tensor, width: int, side: str) -> Tensor:
        if logits.ndim < 1 or logits.shape[-1] != width:
            raise MentorError(f"{side} logits have shape {tuple(logits.shape)}; expected "
                              f"{width} entries in the last dimension ({side}_size of the "
                              "vocabulary alignment)")
        return logits[..., :self.size]


def vocab_from_tokenizer(tok: Any) -> dict[str, int]:
    """The token -> id map of ``tok``: a Hugging Face tokenizer (anything with
    ``get_vocab()``, added tokens included), a dict token -> id, or a list of tokens in id
    order. Ids must be distinct non-negative integers."""
    return {token: i for i, token in sorted(_id_to_token(tok, "vocabulary").items())}


def _id_to_token(vocab: Any, side: str) -> dict[int, Any]:
    """id -> token of a vocabulary given in any accepted form, with its ids validated."""
    if hasattr(vocab, "get_vocab") and callable(vocab.get_vocab):
        vocab = vocab.get_vocab()
    if isinstance(vocab, Mapping):
        out: dict[int, Any] = {}
        for token, i in vocab.items():
            if isinstance(i, bool) or not isinstance(i, numbers.Integral) or i < 0:
                raise MentorError(f"{side} vocabulary maps token {token!r} to {i!r}; expected "
                                  "a non-negative integer id")
            i = int(i)
            if i in out:
                raise MentorError(f"{side} vocabulary maps both {out[i]!r} and {token!r} to id "
                                  f"{i}; expected one token per id")
            out[i] = token
        return out
    if isinstance(vocab, Sequence) and not isinstance(vocab, (str, bytes)):
        seen: dict[Any, int] = {}
        for i, token in enumerate(vocab):
            if token in seen:
                raise MentorError(f"{side} vocabulary lists token {token!r} at ids {seen[token]} "
                                  f"and {i}; expected each token once")
            seen[token] = i
        return dict(enumerate(vocab))
    raise MentorError(f"{side} vocabulary of type {type(vocab).__name__} is not supported; "
                      "expected a dict token -> id, a list of tokens in id order, or a "
                      "tokenizer with get_vocab()")


def _check_size(name: str, value: Any) -> int:
    return check_positive_int("align_vocab", name, value, "the model's number of logits")


def _fits(ids: dict[int, Any], size: int, side: str) -> None:
    if ids and max(ids) >= size:
        top = max(ids)
        raise MentorError(f"the {side} tokenizer defines id {top} ({ids[top]!r}) but the {side} "
                          f"model has only {size} logits; expected every token id below "
                          f"{side}_size")


def _first_difference(s: dict[int, Any], t: dict[int, Any]) -> int | None:
    diff = [i for i in s.keys() | t.keys() if s.get(i, _NONE) != t.get(i, _NONE)]
    return min(diff) if diff else None


_NONE = object()


def _show(ids: dict[int, Any], i: int) -> str:
    return repr(ids[i]) if i in ids else "no token"


def align_vocab(student_size: int, teacher_size: int, *, student_vocab: Any = None,
                teacher_vocab: Any = None, allow_padding: bool = True) -> VocabAlignment:
    """Check that student and teacher logits index the same vocabulary; return the cut.

    ``student_size`` / ``teacher_size``: the models' numbers of logits (the last dimension of
    their outputs, e.g. ``config.vocab_size``). ``student_vocab`` / ``teacher_vocab``: their
    tokenizers' vocabularies -- a Hugging Face tokenizer, its ``get_vocab()`` dict, or a list
    of tokens in id order.

    - Equal sizes: accepted; when both vocabularies are given they must be identical.
    - Different sizes: accepted only with ``allow_padding`` and both vocabularies given,
      identical as id -> token maps (so ids ``0..n-1``, ``n`` the tokenizers' length, mean the
      same tokens) and with no id at or beyond the smaller size: the larger model's extra rows
      are then padding and ``size`` is the smaller size (the *shared prefix rule*).
    - Otherwise a :class:`MentorError` names the first id where the vocabularies differ and
      both tokens; aligning two different tokenizers is not supported yet.

    A tokenizer that defines an id at or beyond its own model's size (an added token the
    embedding matrix was not resized for) is an error too: its logits do not exist.
    """
    s_size = _check_size("student_size", student_size)
    t_size = _check_size("teacher_size", teacher_size)
    s_ids = None if student_vocab is None else _id_to_token(student_vocab, "student")
    t_ids = None if teacher_vocab is None else _id_to_token(teacher_vocab, "teacher")
    if s_ids is not None:
        _fits(s_ids, s_size, "student")
    if t_ids is not None:
        _fits(t_ids, t_size, "teacher")
    if s_ids is not None and t_ids is not None:
        i = _first_difference(s_ids, t_ids)
        if i is not None:
            n = min(len(s_ids), len(t_ids))
            if i >= n:  # the prefix agrees: one side has real tokens beyond it
                longer = "student" if i in s_ids else "teacher"
                raise MentorError(
                    f"the {longer} tokenizer defines real tokens beyond the shared prefix of {n} "
                    f"tokens (id {i} is {_show(s_ids, i)} for the student and "
                    f"{_show(t_ids, i)} for the teacher), so the vocabularies differ in more "
                    "than padding; cross-tokenizer alignment is not supported yet")
            raise MentorError(
                f"student and teacher vocabularies differ at id {i} ({_show(s_ids, i)} for the "
                f"student, {_show(t_ids, i)} for the teacher); expected the same tokenizer, "
                "cross-tokenizer alignment is not supported yet")
    if s_size == t_size:
        checked = ("identical vocabularies" if s_ids is not None and t_ids is not None
                   else "equal vocabulary sizes (token maps not checked)")
        return VocabAlignment(s_size, s_size, t_size, f"{checked} of {s_size} tokens")
    if not allow_padding:
        raise MentorError(f"student and teacher vocabulary sizes differ ({s_size} and {t_size}) "
                          "and allow_padding=False; expected equal sizes")
    if s_ids is None or t_ids is None:
        missing = " and ".join(side for side, ids in (("student", s_ids), ("teacher", t_ids))
                               if ids is None)
        raise MentorError(f"student and teacher vocabulary sizes differ ({s_size} and {t_size}) "
                          f"and the {missing} tokenizer vocabulary was not given; mentor needs "
                          "both tokenizers' vocabularies (student_vocab=, teacher_vocab=) to "
                          "prove the difference is padding")
    size = min(s_size, t_size)
    return VocabAlignment(size, s_size, t_size, f"padded vocabulary truncated to the shared "
                          f"prefix of {size} tokens")
