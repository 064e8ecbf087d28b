"""Token generation and evaluation for any causal LM: a mentor :class:`CharLM`, a Hugging
Face ``*ForCausalLM`` (or a PEFT wrapper of one) or any module mapping ids ``(B, L)`` to
logits ``(B, L, V)``.

A Hugging Face model generates with its own ``generate``: the KV cache, left-padded prompts
with their attention mask, the full distribution when sampling (``top_k=0``, ``top_p=1``),
draws from mentor's generator (a seed drawn from it, under a forked global RNG). Any other
module recomputes the prefix at every new token, in groups of prompts of one length (it
takes no attention mask): meant for the small models of tests and testbeds. Both stop a row
at its first ``eos_id`` (pads after it) and the batch when every row has stopped.
"""

from __future__ import annotations

import sys

import torch
from torch import Tensor, nn

from ..errors import MentorError
from ..tasks.tokens import logits_of, takes_attention_mask
from .token_data import TokenData, cut_at_eos

__all__ = ["complete", "complete_data", "exact_match", "logits_of"]


def complete(model, prompts: Tensor, new_tokens: int, *, greedy: bool = True,
             temperature: float = 1.0, generator: torch.Generator | None = None,
             vocab: int | None = None, attention: Tensor | None = None,
             eos_id: int | None = None, pad_id: int = 0) -> Tensor:
    """Append up to ``new_tokens`` tokens to every prompt ``(B, P)``: arg-max when ``greedy``,
    else sampled from softmax(logits / temperature). ``attention`` ``(B, P)`` marks the real
    prompt tokens of left-padded prompts (``None``: no padding). ``vocab`` limits the choice
    to the first ``vocab`` ids (a padded head's extra rows are never sampled). A row stops
    after ``eos_id`` (``pad_id`` after it); the result is ``(B, P + m)``, ``m <= new_tokens``
    (fewer when every row stopped)."""
    if new_tokens < 1:
        raise MentorError(f"new_tokens must be >= 1, got {new_tokens}")
    if not greedy and temperature <= 0:
        raise MentorError(f"sampling temperature must be > 0, got {temperature}")
    if attention is not None and bool(attention.all()):
        attention = None
    was = model.training if isinstance(model, nn.Module) else False
    if isinstance(model, nn.Module):
        model.eval()
    try:
        with torch.no_grad():
            if takes_attention_mask(model):
                return _hf_generate(model, prompts, new_tokens, greedy, temperature, generator,
                                    vocab, attention, eos_id, pad_id)
            if attention is None:
                return _recompute(model, prompts, new_tokens, greedy, temperature, generator,
                                  vocab, eos_id, pad_id)
            return _by_prompt_length(model, prompts, attention, new_tokens, greedy,
                                     temperature, generator, vocab, eos_id, pad_id)
    finally:
        if isinstance(model, nn.Module):
            model.train(was)


def _recompute(model, ids, new_tokens, greedy, temperature, generator, vocab, eos_id, pad_id):
    done = torch.zeros(len(ids), dtype=torch.bool, device=ids.device)
    for _ in range(new_tokens):
        z = logits_of(model, ids)[:, -1].float()
        if vocab is not None:
            z = z[:, :vocab]
        if greedy:
            nxt = z.argmax(-1)
        else:
            p = torch.softmax(z / temperature, -1)
            nxt = torch.multinomial(p.cpu(), 1, generator=generator).squeeze(-1).to(z.device)
        nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
        ids = torch.cat([ids, nxt[:, None]], 1)
        if eos_id is not None:
            done = done | (nxt == eos_id)
            if bool(done.all()):
                break
    return ids


def _by_prompt_length(model, prompts, attention, new_tokens, greedy, temperature, generator,
                      vocab, eos_id, pad_id):
    """Left-padded prompts for a module without an attention mask: each group of prompts of
    one length is completed unpadded, in the order the lengths first appear."""
    lengths = attention.sum(1)
    width = prompts.shape[1]
    parts = {}
    for n in dict.fromkeys(lengths.tolist()):
        rows = (lengths == n).nonzero().squeeze(-1)
        parts[n] = (rows, _recompute(model, prompts[rows, width - n:], new_tokens, greedy,
                                     temperature, generator, vocab, eos_id, pad_id)[:, n:])
    m = max(c.shape[1] for _, c in parts.values())
    out = torch.full((len(prompts), width + m), pad_id, dtype=prompts.dtype,
                     device=prompts.device)
    out[:, :width] = prompts
    for rows, c in parts.values():
        out[rows, width:width + c.shape[1]] = c
    return out


def _hf_generate(model, prompts, new_tokens, greedy, temperature, generator, vocab, attention,
                 eos_id, pad_id):
    from transformers import GenerationConfig, LogitsProcessorList
    sampling = {} if greedy else dict(temperature=float(temperature), top_k=0, top_p=1.0)
    config = GenerationConfig(max_new_tokens=new_tokens, do_sample=not greedy,
                              eos_token_id=eos_id, pad_token_id=pad_id, bos_token_id=None,
                              use_cache=True, **sampling)
    processors = LogitsProcessorList([_FirstIds(vocab)] if vocab is not None else [])
    att = (torch.ones_like(prompts) if attention is None else attention.long())
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator)) if not greedy else 0
    devices = [prompts.device] if prompts.device.type == "cuda" else []
    # generate() fills every setting left unset from the model's saved generation config
    # (a repetition penalty, top-k, ...): a blank one stands in for it during the call
    peft = sys.modules.get("peft")
    inner = model.get_base_model() if peft is not None and isinstance(model, peft.PeftModel) \
        else model
    saved, inner.generation_config = inner.generation_config, GenerationConfig()
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            out = model.generate(input_ids=prompts, attention_mask=att,
                                 generation_config=config, logits_processor=processors)
    finally:
        inner.generation_config = saved
    return out  # rows that stopped at eos_id are padded with pad_id by generate


class _FirstIds:
    """A logits processor keeping only the first ``vocab`` token ids."""

    def __init__(self, vocab: int):
        self.vocab = vocab

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        scores = scores.clone()
        scores[:, self.vocab:] = float("-inf")
        return scores


def complete_data(model, batch: TokenData, new_tokens: int | None = None, *,
                  greedy: bool = True, temperature: float = 1.0,
                  generator: torch.Generator | None = None,
                  vocab: int | None = None) -> TokenData:
    """``batch``'s prompts with ``model``'s completions (up to ``new_tokens``, default the
    batch's longest completion; each cut after ``batch.eos_id``) as right-padded
    :class:`TokenData` whose targets are the new tokens."""
    new = batch.max_new_tokens if new_tokens is None else new_tokens
    device = batch.ids.device
    if bool((batch.prompt_lens == batch.prompt_lens[0]).all()):
        prompts, att = batch.ids[:, :int(batch.prompt_lens[0])], None
    else:
        prompts, att = (t.to(device) for t in batch.left_padded_prompts())
    out = complete(model, prompts, new, greedy=greedy, temperature=temperature,
                   generator=generator, vocab=vocab, attention=att, eos_id=batch.eos_id,
                   pad_id=batch.pad_id)
    data = batch.with_completions(out[:, prompts.shape[1]:].cpu().tolist())
    return TokenData(data.ids.to(device), data.target.to(device), data.attention.to(device),
                     data.pad_id, data.eos_id)


@torch.no_grad()
def exact_match(model, data: TokenData, *, batch_size: int = 512) -> float:
    """Share of rows of ``data`` whose greedy completion equals the reference completion
    token for token: up to and including ``data.eos_id`` when the data has one (what comes
    after it is never compared), else over the reference's length."""
    device = next(model.parameters()).device if isinstance(model, nn.Module) else "cpu"
    right = 0
    for lo in range(0, len(data), batch_size):
        batch = data.subset(slice(lo, lo + batch_size))
        batch = TokenData(batch.ids.to(device), batch.target, batch.attention.to(device),
                          batch.pad_id, batch.eos_id)
        got = complete_data(model, batch).completion_lists()
        for ref, out in zip(batch.completion_lists(), got):
            ref = cut_at_eos(ref, data.eos_id)
            out = out[:len(ref)] if data.eos_id is None else out
            right += int(out == ref)
    return right / len(data)
