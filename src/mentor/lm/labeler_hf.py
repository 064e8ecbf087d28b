"""A local Hugging Face causal LM as the teacher of :class:`~mentor.lm.labeler.LLMLabeler`.

The LLM-as-teacher systems that the labeler serves (METHODS.md §59 item 9: HarmAug, TAIL, LLKD,
Protect, Fully Open Meditron) call an API model; :class:`TransformersBackend` runs an open
model on this machine instead, with the labeler's cache and parsers unchanged. It loads a
local ``save_pretrained`` folder (never downloads) or takes a built ``(model, tokenizer)``
pair, and answers prompts in left-padded batches through ``model.generate`` with the KV cache.

Decoding is greedy (``temperature=0``, the default) or sampled from the full distribution
(``temperature > 0``; ``top_p`` and ``top_k`` narrow it, ``top_k=0`` keeps every token).
Sampling uses the Gumbel-max trick: each prompt's row draws its noise from its own
``torch.Generator`` seeded by ``sha256(seed, attempt, prompt)`` and the greedy step takes the
arg-max of log-probabilities plus noise, which is an exact draw from the (temperature-scaled,
truncated) distribution (Gumbel 1954; Maddison, Tarlow & Minka 2014, "A* Sampling"). So a
reply depends on the prompt, the seed and how many times the prompt was asked before
(``attempt``, so a labeler's retry gets a new sample), not on which other prompts share its
batch, and the global torch random state is neither read nor changed.

What holds, exactly: the same prompts, settings and attempts on the same kind of device give
the same replies. Batched and one-by-one replies are equal up to floating-point differences
of the padded batch's logits, which can only flip a near-tie (checked equal on a small GPT-2
in ``tests/lm/test_labeler_hf.py``). A CPU and a GPU draw different noise, so sampled replies
differ across device kinds.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import MentorError
from .backend import BatchBackend
from .hf_models import CAUSAL_HEADS, _first
from .token_data import left_pad

__all__ = ["TransformersBackend"]

_SAMPLE_POINTS = 64  # values read from each weight tensor for the model fingerprint


def _seed_of(seed: int, attempt: int, prompt: str) -> int:
    digest = hashlib.sha256(f"{seed}\x1f{attempt}\x1f{prompt}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class _RowGumbel:
    """Logits processor: temperature, top-k, top-p, then per-row Gumbel noise (see module)."""

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float, top_k: int,
                 device: torch.device):
        self.generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        logits = scores.float() / self.temperature
        vocab = logits.shape[-1]
        if 0 < self.top_k < vocab:
            kth = logits.topk(self.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            order = logits.argsort(dim=-1, descending=True)
            probs = logits.gather(-1, order).softmax(dim=-1)
            before = probs.cumsum(dim=-1) - probs  # mass of the tokens ranked above
            drop = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order,
                                                                       before >= self.top_p)
            logits = logits.masked_fill(drop, float("-inf"))
        logp = logits.log_softmax(dim=-1)
        tiny = torch.finfo(torch.float32).tiny
        u = torch.stack([torch.rand(vocab, generator=g, device=logits.device)
                         for g in self.generators])
        return logp - torch.log(-torch.log(u.clamp_min(tiny)))


def _load_folder(folder: Path, dtype: Any) -> tuple[Any, Any]:
    import transformers

    from ..models.hf import folder_config, saved_architectures
    if not folder.is_dir():
        raise MentorError(f"model folder '{folder}' does not exist; expected a local folder "
                          "written by save_pretrained")
    cfg, where = folder_config(folder)
    saved = saved_architectures(cfg)
    if saved and not any(a.endswith(CAUSAL_HEADS) for a in saved):
        raise MentorError(f"{where} holds a {saved[0]}, not a causal language model "
                          "(*ForCausalLM); expected a model saved with a language-modeling head")
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(folder), local_files_only=True, dtype=dtype)
    except (ValueError, OSError) as e:
        raise MentorError(f"{where} cannot be loaded as a causal language model ({_first(e)}); "
                          "expected a model type such as gpt2 saved with save_pretrained") from None
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (ValueError, OSError, TypeError) as e:
        raise MentorError(f"{where} has no tokenizer that loads ({_first(e)}); expected the "
                          "model's tokenizer saved in the same folder") from None
    return model, tokenizer


class TransformersBackend(BatchBackend):
    """A local ``transformers`` causal LM as a labeler backend: ``prompt -> reply``.

    ``source`` is a local folder written by ``save_pretrained`` (model and tokenizer, loaded
    with ``local_files_only=True``; ``dtype`` is passed to ``from_pretrained``) or a
    ``(model, tokenizer)`` pair already built. ``device`` moves the model there (the pair's
    model too); by default it stays where it is.

    Each reply is the generated continuation only: at most ``max_new_tokens`` new tokens, cut
    at the first end-of-sequence token (the tokenizer's and the model's generation config's),
    decoded without special tokens and stripped. ``chat=True`` wraps each prompt as one user
    message in the tokenizer's chat template with the assistant's turn opened
    (``add_generation_prompt=True``). Decoding is greedy for ``temperature=0``, sampled for
    ``temperature > 0`` (see the module for the seeding); the backend decides the decoding,
    so a model's saved generation defaults (temperature, top-p, repetition penalty) are not
    used. :meth:`many` answers in left-padded batches of ``batch_size``.

    :attr:`model_id` names the model by content: a hash of its config, a sample of every
    weight tensor, its dtype, the tokenizer (vocabulary, special tokens, chat template) and
    the decoding settings, so :class:`~mentor.lm.labeler.LLMLabeler` keeps separate cache
    entries for another model or other settings. ``name`` (default: the folder's name or the
    config's ``_name_or_path``) is its readable prefix. The hash is taken when the backend
    is built; a model changed in place afterwards keeps its id.
    """

    def __init__(self, source: str | Path | tuple[Any, Any], *, max_new_tokens: int = 32,
                 temperature: float = 0.0, top_p: float = 1.0, top_k: int = 0, seed: int = 0,
                 chat: bool = False, batch_size: int = 8, device: str | torch.device | None = None,
                 dtype: Any = None, name: str | None = None):
        import transformers
        for key, value, low in (("max_new_tokens", max_new_tokens, 1),
                                ("batch_size", batch_size, 1), ("top_k", top_k, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise MentorError(f"TransformersBackend.{key} must be an integer >= {low}, "
                                  f"got {value!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise MentorError(f"TransformersBackend.seed must be an integer, got {seed!r}")
        if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                or not 0.0 <= temperature < float("inf")):
            raise MentorError(f"TransformersBackend.temperature must be a finite number >= 0 "
                              f"(0 = greedy), got {temperature!r}")
        if (isinstance(top_p, bool) or not isinstance(top_p, (int, float))
                or not 0.0 < top_p <= 1.0):
            raise MentorError(f"TransformersBackend.top_p must be in (0, 1], got {top_p!r}")
        if temperature == 0 and (top_p < 1.0 or top_k > 0):
            raise MentorError(f"TransformersBackend top_p={top_p} / top_k={top_k} apply only to "
                              "sampling; expected temperature > 0, or top_p=1 and top_k=0 for "
                              "greedy replies")
        if isinstance(source, (str, Path)):
            folder = Path(source)
            model, tokenizer = _load_folder(folder, dtype)
            label = name or folder.resolve().name
        elif isinstance(source, tuple) and len(source) == 2:
            model, tokenizer = source
            if dtype is not None:
                raise MentorError("TransformersBackend.dtype applies to a folder only; expected "
                                  "dtype=None with a (model, tokenizer) pair (cast the model "
                                  "yourself)")
            label = name
        else:
            raise MentorError(f"TransformersBackend.source must be a model folder or a (model, "
                              f"tokenizer) pair, got {type(source).__name__}")
        if not (isinstance(model, transformers.PreTrainedModel)
                and isinstance(model, transformers.GenerationMixin)
                and type(model).__name__.endswith(CAUSAL_HEADS)):
            raise MentorError(f"TransformersBackend model is a {type(model).__name__}, not a "
                              "transformers causal language model; expected an "
                              "AutoModelForCausalLM (e.g. GPT2LMHeadModel)")
        if label is None:  # a pair: the name it was loaded under, if any
            label = Path(str(model.config._name_or_path or "")).name
        if not isinstance(tokenizer, transformers.PreTrainedTokenizerBase):
            raise MentorError(f"TransformersBackend tokenizer is a {type(tokenizer).__name__}; "
                              "expected a transformers tokenizer (AutoTokenizer)")
        if chat and not tokenizer.chat_template:
            raise MentorError(f"TransformersBackend(chat=True) needs a tokenizer with a chat "
                              f"template, but the {type(tokenizer).__name__} of "
                              f"{label or 'this model'!r} has none; expected chat=False for a "
                              "base model")
        if device is not None:
            model.to(device)
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.top_k = top_k
        self.seed = seed
        self.chat = bool(chat)
        self.batch_size = batch_size
        eos = model.generation_config.eos_token_id
        eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
            eos.append(tokenizer.eos_token_id)
        self.eos_ids: list[int] = eos
        pad = tokenizer.pad_token_id
        self.pad_id: int = pad if pad is not None else (eos[0] if eos else 0)
        self.limit = next((getattr(model.config, k) for k in ("n_positions",
                                                              "max_position_embeddings")
                           if isinstance(getattr(model.config, k, None), int)), None)
        self._asked: dict[str, int] = {}
        self._model_id = f"hf:{label or 'model'}:{self._fingerprint()[:16]}"

    @property
    def sampled(self) -> bool:
        """True when replies are sampled (``temperature > 0``), False when greedy."""
        return self.temperature > 0

    @property
    def model_id(self) -> str:
        return self._model_id

    def _fingerprint(self) -> str:
        h = hashlib.sha256()
        config = {k: v for k, v in self.model.config.to_dict().items()
                  if k not in ("_name_or_path", "transformers_version")}
        h.update(json.dumps(config, sort_keys=True, default=str).encode())
        with torch.no_grad():
            for key, tensor in sorted(self.model.state_dict().items()):
                flat = tensor.detach().reshape(-1)
                n = flat.numel()
                idx = torch.linspace(0, max(n - 1, 0), min(n, _SAMPLE_POINTS),
                                     device=flat.device).long()
                h.update(f"{key}|{tuple(tensor.shape)}|{tensor.dtype}".encode())
                h.update(flat[idx].float().cpu().numpy().tobytes())
        tok = self.tokenizer
        h.update(json.dumps([type(tok).__name__, sorted(tok.get_vocab().items()),
                             tok.special_tokens_map, tok.chat_template], sort_keys=True,
                            default=str).encode())
        settings = {"max_new_tokens": self.max_new_tokens, "chat": self.chat,
                    "temperature": self.temperature}
        if self.sampled:
            settings.update(top_p=self.top_p, top_k=self.top_k, seed=self.seed)
        h.update(json.dumps(settings, sort_keys=True).encode())
        return h.hexdigest()

    def rendered(self, prompt: str) -> str:
        """The text the model reads for ``prompt`` (the chat template applied with ``chat``)."""
        if not isinstance(prompt, str):
            raise MentorError(f"TransformersBackend prompts must be strings, got "
                              f"{type(prompt).__name__}")
        if not self.chat:
            return prompt
        return self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                                  tokenize=False, add_generation_prompt=True)

    def _ids(self, prompt: str) -> list[int]:
        ids = self.tokenizer(self.rendered(prompt), add_special_tokens=not self.chat)["input_ids"]
        if not ids:
            raise MentorError(f"TransformersBackend prompt {prompt[:60]!r} gives no tokens; "
                              "expected a non-empty prompt")
        if self.limit is not None and len(ids) + self.max_new_tokens > self.limit:
            raise MentorError(f"TransformersBackend prompt {prompt[:60]!r} has {len(ids)} tokens "
                              f"and max_new_tokens is {self.max_new_tokens}, but the model reads "
                              f"at most {self.limit} positions; expected a shorter prompt or "
                              "fewer new tokens")
        return ids

    def many(self, prompts: Sequence[str], attempts: Sequence[int] | None = None) -> list[str]:
        """Replies to ``prompts``, in order, generated ``batch_size`` at a time.

        ``attempts`` (sampling only) says which draw of each prompt to take; by default the
        backend counts how often each prompt was asked before, so asking again samples anew
        (greedy replies do not depend on it).
        """
        if isinstance(prompts, str) or not isinstance(prompts, Sequence):
            raise MentorError(f"TransformersBackend.many takes a list of prompts, got "
                              f"{type(prompts).__name__}")
        prompts = list(prompts)
        ids = [self._ids(p) for p in prompts]  # every prompt checked before any generation
        if attempts is None:
            attempts = []
            if self.sampled:
                for p in prompts:
                    attempts.append(self._asked.get(p, 0))
                    self._asked[p] = attempts[-1] + 1
            else:
                attempts = [0] * len(prompts)
        elif len(attempts) != len(prompts):
            raise MentorError(f"TransformersBackend.many got {len(attempts)} attempts for "
                              f"{len(prompts)} prompts; expected one per prompt")
        out: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            stop = start + self.batch_size
            out += self._generate(prompts[start:stop], ids[start:stop], attempts[start:stop])
        return out

    def _generate(self, prompts: list[str], ids: list[list[int]],
                  attempts: Sequence[int]) -> list[str]:
        import transformers
        device = next(self.model.parameters()).device
        # left padding: every prompt ends where generation starts
        input_ids, mask = left_pad(ids, self.pad_id)
        mask, width = mask.long(), input_ids.shape[1]
        config = transformers.GenerationConfig(
            max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1, use_cache=True,
            eos_token_id=self.eos_ids or None, pad_token_id=self.pad_id, temperature=1.0,
            top_p=1.0, repetition_penalty=1.0, no_repeat_ngram_size=0, min_length=0)
        processors = None
        if self.sampled:
            seeds = [_seed_of(self.seed, a, p) for p, a in zip(prompts, attempts)]
            processors = transformers.LogitsProcessorList(
                [_RowGumbel(seeds, self.temperature, self.top_p, self.top_k, device)])
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                gen = self.model.generate(input_ids=input_ids.to(device),
                                          attention_mask=mask.to(device),
                                          generation_config=config, logits_processor=processors)
        finally:
            self.model.train(was_training)
        replies = []
        for row in gen[:, width:].tolist():
            cut = next((k for k, t in enumerate(row) if t in self.eos_ids), len(row))
            replies.append(self.tokenizer.decode(row[:cut], skip_special_tokens=True).strip())
        return replies

    def __repr__(self) -> str:
        mode = (f"temperature={self.temperature}, top_p={self.top_p}, top_k={self.top_k}, "
                f"seed={self.seed}" if self.sampled else "greedy")
        return (f"TransformersBackend({self.model_id!r}, {mode}, "
                f"max_new_tokens={self.max_new_tokens}, chat={self.chat})")
