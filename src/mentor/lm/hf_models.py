"""Hugging Face causal language models (``AutoModelForCausalLM``) as the teacher or student of
a ``task: tokens`` recipe: built from a config (``model_type`` and its fields; weights from
the seed) or loaded from a local folder written by ``save_pretrained`` (never downloaded).
The regimes call them with token ids and read their output's ``.logits``
(:mod:`mentor.lm.generate`), as they call mentor's own ``CharLM``.

A folder that does not fit is refused in one sentence before any training: a model saved
with another head (a sequence classifier is not a language model), a vocabulary smaller
than the data's token ids, or fewer positions than its sequences need."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from ..errors import MentorError

CAUSAL_HEADS = ("ForCausalLM", "LMHeadModel")


def causal_lm(*, vocab_size: int, max_len: int, config: dict[str, Any] | None = None,
              path: str | None = None, lora: dict[str, Any] | None = None) -> nn.Module:
    """A causal LM over ``vocab_size`` token ids reading sequences of ``max_len`` tokens; with
    ``lora`` (:func:`mentor.models.hf.with_lora`'s fields) a ``peft`` model whose base weights
    are frozen and whose LoRA adapters train (Hu et al. 2021, "LoRA: Low-Rank Adaptation of
    Large Language Models")."""
    from ..models.hf import with_lora
    model = _causal_lm(vocab_size, max_len, config, path)
    return with_lora(model, lora, "causal", "the causal LM")


def _causal_lm(vocab_size: int, max_len: int, config: dict[str, Any] | None,
               path: str | None) -> nn.Module:
    try:
        import transformers
    except ImportError:
        raise MentorError("arch 'hf' needs the transformers package; expected `pip install "
                          "mentor[lm]`") from None
    if config is not None:
        fields = dict(config)
        model_type = fields.pop("model_type", None)
        if not isinstance(model_type, str):
            raise MentorError(f"config needs 'model_type' (e.g. gpt2); got {model_type!r}")
        try:
            fields.update(_special_ids_beyond(transformers, model_type, fields, vocab_size))
            cfg = transformers.AutoConfig.for_model(model_type, **fields,
                                                    vocab_size=vocab_size)
        except (ValueError, TypeError) as e:
            raise MentorError(f"config: {_first(e)}; expected a transformers model_type and "
                              "its fields") from None
        _check_positions(cfg, max_len, f"config {model_type!r}")
        return _build(transformers.AutoModelForCausalLM.from_config, cfg, f"a {model_type}")
    from ..models.hf import folder_config, saved_architectures
    folder = Path(path)
    cfg, where = folder_config(folder)
    saved = saved_architectures(cfg)
    if saved and not any(a.endswith(CAUSAL_HEADS) for a in saved):
        raise MentorError(f"{where} holds a {saved[0]}, not a causal language model "
                          "(*ForCausalLM); expected a model saved with a language-modeling head")
    have = getattr(cfg, "vocab_size", None)
    if isinstance(have, int) and have < vocab_size:
        raise MentorError(f"{where} has a vocabulary of {have:,} tokens but the data's ids "
                          f"go up to {vocab_size - 1:,}; expected at least {vocab_size:,}")
    _check_positions(cfg, max_len, where)
    return _build(lambda c: transformers.AutoModelForCausalLM.from_pretrained(
        str(folder), local_files_only=True), cfg, where)


def _special_ids_beyond(transformers, model_type: str, fields: dict,
                        vocab_size: int) -> dict[str, None]:
    """The special-token ids a model type's defaults set beyond ``vocab_size`` (GPT-2's
    50256) and ``fields`` does not: they name no token of this vocabulary, so they are
    unset."""
    try:
        default = transformers.CONFIG_MAPPING[model_type]()
    except KeyError:  # an unknown model type: for_model says so
        return {}
    return {key: None for key in ("bos_token_id", "eos_token_id", "pad_token_id")
            if key not in fields and isinstance(getattr(default, key, None), int)
            and getattr(default, key) >= vocab_size}


def _build(make, cfg, where: str) -> nn.Module:
    try:
        return make(cfg)
    except ValueError as e:  # a model type without a causal LM ("Unrecognized configuration")
        raise MentorError(f"{where} model has no causal language model in transformers "
                          f"({_first(e)}); expected a model type such as gpt2") from None


def _check_positions(cfg, max_len: int, where: str) -> None:
    limit = next((getattr(cfg, k) for k in ("n_positions", "max_position_embeddings")
                  if isinstance(getattr(cfg, k, None), int)), None)
    if limit is not None and limit < max_len:
        raise MentorError(f"{where} reads at most {limit} positions but the data's "
                          f"sequences have {max_len} (the longest prompt and the longest "
                          f"completion); expected n_positions (or max_position_embeddings) "
                          f"of at least {max_len}")


def _first(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]



def save_causal_lm(model: nn.Module, folder: Path, tokenizer=None) -> None:
    """A trained Hugging Face student as what users load: ``folder/model`` (``save_pretrained``;
    a LoRA student with its adapters merged into the weights, the model itself unchanged),
    ``folder/adapter`` for a LoRA student (what ``peft`` loads over the base model), and the
    tokenizer beside the model when the data had one."""
    import copy

    from ..models.hf import merged, save_adapter
    from transformers.utils import logging as hf_logging
    save_adapter(model, folder / "adapter")
    plain = merged(copy.deepcopy(model))
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # mentor's own bars say how the run goes
    try:
        plain.save_pretrained(str(folder / "model"))
    finally:
        if shown:
            hf_logging.enable_progress_bar()
    if tokenizer is not None:
        tokenizer.save_pretrained(str(folder / "model"))


__all__ = ["causal_lm", "save_causal_lm"]
