"""Language-model teachers behind one interface: ``signal(ids, rows) -> logits | TopKSignal``.

A token teacher turns input ids ``(B, L)`` into next-token targets aligned with the
student's logits on the same ids: full logits ``(B, L, V)`` or a
:class:`~mentor.losses.tokens.TopKSignal`. Three sources:

* :class:`LocalTeacher` -- a model in this process (a mentor :class:`~mentor.lm.models.CharLM`,
  a Hugging Face ``*ForCausalLM``, any module ids -> logits); it can also generate.
* :class:`StoredTopKTeacher` -- offline top-k log-probabilities from a label store of kind
  ``token_topk`` (DistillKit-style offline logits, here with the tail mass kept): it knows only
  the dataset sequences it labeled, so it serves the off-policy regime.
* :class:`ServedTeacher` -- a callable (an API client) returning top-k log-probabilities per
  position, as served LLM APIs do; queries are counted and cost ``cost_per_query`` each.

Every teacher has ``vocab_size`` and ``cost_per_query``; ``queries`` counts the sequences it
was asked about.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ..errors import MentorError
from ..losses.tokens import TopKSignal
from .generate import complete_data, logits_of
from .token_data import TokenData
from .vocab import VocabAlignment


class LocalTeacher:
    """A local causal LM as the teacher. ``alignment`` (from
    :func:`mentor.lm.vocab.align_vocab`) cuts a padded teacher vocabulary to the shared
    prefix."""

    def __init__(self, model: nn.Module, *, alignment: VocabAlignment | None = None,
                 cost_per_query: float = 0.0):
        self.model, self.alignment = model, alignment
        self.cost_per_query = float(cost_per_query)
        self.queries = 0
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)

    @property
    def vocab_size(self) -> int:
        if self.alignment is not None:
            return self.alignment.size
        with torch.no_grad():
            return int(logits_of(self.model, torch.zeros(1, 1, dtype=torch.long,
                                                         device=self._device())).shape[-1])

    def _device(self):
        return next(self.model.parameters()).device

    @torch.no_grad()
    def signal(self, ids: Tensor, rows: Tensor | None = None,
               attention: Tensor | None = None) -> Tensor:
        self.queries += len(ids)
        dev = self._device()
        z = logits_of(self.model, ids.to(dev), None if attention is None else attention.to(dev))
        return z if self.alignment is None else self.alignment.teacher(z)

    def generate(self, batch: TokenData, new_tokens: int | None = None, *, greedy: bool = True,
                 temperature: float = 1.0, generator=None) -> TokenData:
        """``batch``'s prompts with this teacher's completions (:func:`complete_data`)."""
        self.queries += len(batch)
        dev, back = self._device(), batch.ids.device
        out = complete_data(self.model, _on(batch, dev), new_tokens, greedy=greedy,
                            temperature=temperature, generator=generator,
                            vocab=None if self.alignment is None else self.alignment.size)
        return _on(out, back)


class StoredTopKTeacher:
    """Offline top-k log-probabilities of ``data``'s sequences from a ``token_topk`` label
    store (written by ``write_store(LocalTeacher-like module, data.ids, kind=TokenTopK)``).
    ``signal(ids, rows)`` needs the dataset rows and checks that ``ids`` are those rows'
    sequences (cut to the same length)."""

    cost_per_query = 0.0

    def __init__(self, store, sequences: Tensor, *, renormalize: bool = False):
        from ..labels import LabelStore
        from ..labels.kinds import TokenTopK
        if not isinstance(store, LabelStore):
            store = LabelStore.open(store)
        if not isinstance(store.kind, TokenTopK):
            raise MentorError(f"label store '{store.path}' holds {store.kind.name!r} labels; "
                              "expected a 'token_topk' store of a language-model teacher")
        if store.samples != len(sequences):
            raise MentorError(f"label store '{store.path}' has {store.samples} sequences but "
                              f"the data has {len(sequences)}; expected the store of this data")
        idx, lp = store.outputs()
        self.indices, self.logprobs = idx[:, 0], lp[:, 0]
        self.sequences, self.renormalize = sequences, renormalize
        self.vocab_size = store.kind.vocab_size
        self.queries = 0

    def signal(self, ids: Tensor, rows: Tensor | None = None,
               attention: Tensor | None = None) -> TopKSignal:
        if rows is None:
            raise MentorError("a stored top-k teacher knows only the dataset sequences it "
                              "labeled; the on-policy and sequence-level regimes need a local "
                              "or served teacher")
        rows = rows.cpu()
        length = ids.shape[1]
        if not torch.equal(self.sequences[rows, :length].to(ids.device), ids):
            raise MentorError("the ids asked of the stored top-k teacher are not the dataset "
                              "sequences it labeled; expected off-policy batches of that data")
        return TopKSignal(self.indices[rows, :length].to(ids.device),
                          self.logprobs[rows, :length].to(ids.device), self.renormalize)


class ServedTeacher:
    """A served LLM: ``fn(sequences)`` takes a list of token-id lists and returns, for each
    sequence and each position, the top-k ``(token_id, logprob)`` pairs of the next token
    (what ``top_logprobs`` of a chat-completion API gives, mapped to ids). ``generate_fn``
    (optional) ``(prompts as id lists, new_tokens) -> completions as id lists`` lets the
    sequence-level and bridge regimes sample from it."""

    def __init__(self, fn: Callable[[list[list[int]]], Sequence], *, k: int, vocab_size: int,
                 cost_per_query: float = 0.0, renormalize: bool = False,
                 generate_fn: Callable | None = None):
        if k < 1 or vocab_size < k:
            raise MentorError(f"served teacher k {k} is out of range; expected 1..{vocab_size}")
        self.fn, self.k, self.vocab_size = fn, int(k), int(vocab_size)
        self.cost_per_query, self.renormalize = float(cost_per_query), renormalize
        self.generate_fn = generate_fn
        self.queries = 0

    def signal(self, ids: Tensor, rows: Tensor | None = None,
               attention: Tensor | None = None) -> TopKSignal:
        """Each row is sent without its padding (``attention``); the positions after a row's
        end are filled with token 0 at log-probability 0 (no loss reads them)."""
        b, length = ids.shape
        lengths = [length] * b if attention is None else attention.sum(1).tolist()
        out = self.fn([r[:int(n)] for r, n in zip(ids.tolist(), lengths)])
        self.queries += len(ids)
        idx = torch.zeros(b, length, self.k, dtype=torch.long)
        lp = torch.full((b, length, self.k), -1e4)
        if len(out) != b:
            raise MentorError(f"served teacher returned {len(out)} sequences for {b} asked")
        for i, seq in enumerate(out):
            if len(seq) != lengths[i]:
                raise MentorError(f"served teacher returned {len(seq)} positions for sequence "
                                  f"{i} of length {lengths[i]}; expected one per position")
            lp[i, len(seq):, 0] = 0.0
            for t, pairs in enumerate(seq):
                pairs = sorted(pairs, key=lambda p: -p[1])[:self.k]
                if len(pairs) < self.k:
                    raise MentorError(f"served teacher gave {len(pairs)} log-probabilities at "
                                      f"sequence {i} position {t}; expected k={self.k}")
                for j, (tok, val) in enumerate(pairs):
                    if not 0 <= int(tok) < self.vocab_size or val > 1e-6:
                        raise MentorError(f"served teacher pair ({tok}, {val}) at sequence {i} "
                                          f"position {t} is not (token id < {self.vocab_size}, "
                                          "log-probability <= 0)")
                    idx[i, t, j], lp[i, t, j] = int(tok), min(float(val), 0.0)
        return TopKSignal(idx.to(ids.device), lp.to(ids.device), self.renormalize)

    def generate(self, batch: TokenData, new_tokens: int | None = None, **_) -> TokenData:
        """``batch``'s prompts with ``generate_fn``'s completions (each cut after the data's
        end-of-sequence token)."""
        if self.generate_fn is None:
            raise MentorError("this served teacher has no generate_fn; the sequence-level and "
                              "bridge regimes need one")
        new = batch.max_new_tokens if new_tokens is None else new_tokens
        out = self.generate_fn(batch.prompt_lists(), new)
        self.queries += len(batch)
        if len(out) != len(batch):
            raise MentorError(f"served teacher generated {len(out)} completions for "
                              f"{len(batch)} prompts; expected one per prompt")
        return _on(batch.with_completions(out), batch.ids.device)


def _on(data: TokenData, device) -> TokenData:
    return TokenData(data.ids.to(device), data.target.to(device), data.attention.to(device),
                     data.pad_id, data.eos_id)


def as_token_teacher(obj, **kw):
    """A token teacher from a module (-> :class:`LocalTeacher`) or an object that already has
    ``signal``."""
    if hasattr(obj, "signal"):
        return obj
    if isinstance(obj, nn.Module):
        return LocalTeacher(obj, **kw)
    raise MentorError(f"teacher {type(obj).__name__} is not a language-model teacher; expected "
                      "a torch module, LocalTeacher, StoredTopKTeacher or ServedTeacher")
