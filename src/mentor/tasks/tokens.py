"""Tokens (causal language models): outputs are next-token logits ``(B, L, V)``; a row's
labels are its next tokens, ``-1`` where no loss or metric reads them (prompt positions)."""

from __future__ import annotations

import sys

import torch
from torch import Tensor, nn

from ..errors import MentorError
from ..registry import TASKS
from .row_labels import RowLabels


def takes_attention_mask(model) -> bool:
    """Whether ``model`` (or the module a DDP wrapper holds) is a Hugging Face model or a PEFT
    wrapper of one: those take ``attention_mask`` and ``position_ids``."""
    model = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    kinds = [m.PreTrainedModel for m in [sys.modules.get("transformers")] if m is not None]
    kinds += [m.PeftModel for m in [sys.modules.get("peft")] if m is not None]
    return bool(kinds) and isinstance(model, tuple(kinds))


def logits_of(model, ids: Tensor, attention: Tensor | None = None) -> Tensor:
    """Next-token logits ``(B, L, V)`` of ``model`` on ``ids`` (Hugging Face outputs unwrapped:
    their ``.logits``, or a tuple's first element).

    ``attention`` ``(B, L)`` marks real tokens (``None``: all). A Hugging Face model gets it as
    ``attention_mask`` with ``position_ids`` counting real tokens only (0 at each row's first
    real token), so left- and right-padded rows read as unpadded. Any other module is called
    on the ids alone, which is right for right padding and a causal model (the pads come after
    every real position); left padding is refused for it."""
    if attention is None or bool(attention.all()):
        out = model(ids)
    elif takes_attention_mask(model):
        att = attention.long()
        positions = (att.cumsum(1) - 1).clamp(min=0)
        out = model(input_ids=ids, attention_mask=att, position_ids=positions)
    else:
        lengths = attention.sum(1, keepdim=True)
        if bool((attention != (torch.arange(ids.shape[1], device=ids.device) < lengths)).any()):
            raise MentorError(f"{type(model).__name__} takes no attention mask and these rows are "
                              "left-padded; expected right padding (or a Hugging Face model)")
        out = model(ids)
    if hasattr(out, "logits"):
        out = out.logits
    elif isinstance(out, tuple):
        out = out[0]
    if out.ndim != 3 or out.shape[:2] != ids.shape:
        raise MentorError(f"language model output has shape {tuple(out.shape)} for ids "
                          f"{tuple(ids.shape)}; expected (batch, length, vocabulary)")
    return out


class Tokens(RowLabels):
    """The tokens task adapter (the contract :class:`mentor.contracts.TaskAdapter`).

    The metric is exact match: a row counts when every labeled position's arg-max is its
    label. With teacher forcing this is the exact match of greedy decoding (a greedy
    completion equals the reference exactly when each of its tokens is the arg-max given the
    reference prefix), which is how :func:`mentor.lm.generate.exact_match` measures it by
    generating."""

    name = "tokens"
    metric = "exact_match"
    higher_is_better = True

    def num_outputs(self, model: nn.Module, example: Tensor) -> int:
        """The vocabulary ``model`` scores, checked on two example sequences ``(B, L)``."""
        with torch.no_grad():
            was = model.training
            model.eval()
            out = logits_of(model, example[:2])
            model.train(was)
        return int(out.shape[-1])

    def check(self, model: nn.Module, teacher, example: Tensor, num_outputs: int) -> None:
        """The student scores ``num_outputs`` tokens; a teacher (a token teacher,
        :mod:`mentor.lm.signals`: its ``vocab_size``) scores the same vocabulary."""
        got = self.num_outputs(model, example)
        if got != num_outputs:
            raise MentorError(f"the student scores {got} tokens but the data has a vocabulary "
                              f"of {num_outputs}; expected the same vocabulary")
        if teacher is not None and teacher.vocab_size != num_outputs:
            raise MentorError(f"the teacher scores {teacher.vocab_size} tokens but the student "
                              f"{num_outputs}; expected one vocabulary (or an alignment)")

    def forward(self, model, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Next-token logits of ``model`` on token ids ``x`` (:func:`logits_of`)."""
        return logits_of(model, x)

    def predict(self, logits: Tensor) -> Tensor:
        """The arg-max token at every position ``(B, L)``."""
        return logits.argmax(-1)

    def example(self, num_outputs: int) -> tuple[Tensor, Tensor]:
        """Zero outputs and labels of two one-position rows: ``(2, 1, V)`` logits, token 0."""
        return torch.zeros(2, 1, num_outputs), torch.zeros(2, 1, dtype=torch.long)

    def label_name(self, label: Tensor) -> str:
        return "sequence " + " ".join(str(int(t)) for t in label.flatten())

    def correct(self, logits: Tensor, y: Tensor) -> Tensor:
        """Per-row 1/0: every labeled position (``y >= 0``) predicts its label; ``y`` may
        also be another model's logits (agreement on every position)."""
        target = y.argmax(-1) if y.ndim == logits.ndim else y
        pred = self.predict(logits)
        if y.ndim == logits.ndim:
            return (pred == target).all(-1)
        return ((pred == target) | (target < 0)).all(-1)

    def score(self, logits: Tensor, y: Tensor) -> Tensor:
        """Exact match's per-row values."""
        return self.correct(logits, y)


TOKENS = TASKS.register("tokens", description="next-token logits (B, L, V); labels -1 off "
                        "the completion; teacher-forced exact match")(Tokens())


class TokensPerplexity(Tokens):
    """The tokens task selected by perplexity (lower is better): ``distill_lm(select=
    "perplexity")`` trains with it. Its metric is exp of the mean negative log-likelihood of
    every labeled position's label, each position weighted alike across rows and shards
    (:func:`mentor.lm.scores.perplexity` computes the same on token data). Not registered:
    a recipe names the ``tokens`` task and a selection."""

    metric = "perplexity"
    higher_is_better = False

    def metric_state(self, logits: Tensor | None, y: Tensor | None) -> Tensor:
        """``[Σ negative log-likelihood, labeled positions]`` in float64."""
        if logits is None:
            return torch.zeros(2, dtype=torch.float64)
        seen = y >= 0
        nll = -torch.log_softmax(logits.double(), -1).gather(
            -1, y.clamp(min=0)[..., None]).squeeze(-1)
        return torch.stack([nll[seen].sum(), seen.sum().double()]).cpu()

    def metric_value(self, state: Tensor) -> float:
        total, count = state.tolist()
        if count == 0:
            raise MentorError("perplexity needs labeled positions; the data has none")
        return float(torch.exp(torch.tensor(total / count, dtype=torch.float64)))


TOKENS_PERPLEXITY = TokensPerplexity()
