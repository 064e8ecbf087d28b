"""Hugging Face ``transformers`` models as students and teachers: a local folder written by
``save_pretrained`` (weights loaded, never downloaded) or a config (weights drawn from the
seed), for token ids (``AutoModelForSequenceClassification``) or images
(``AutoModelForImageClassification``).

:class:`HFClassifier` wraps the model so it is called like every mentor model: with the
batch's named tensors (``input_ids``, ``attention_mask``) or flat image rows (reshaped to
``pixel_values`` ``(B, C, H, W)``), returning the logits tensor.

``lora``: a parameter-efficient student (Hu et al. 2021, LoRA: Low-Rank Adaptation of Large
Language Models), built with ``peft``: the model's weights frozen, low-rank adapters on the
``target_modules`` and the classification head trained. Checkpoints hold every weight (they
resume exactly); ``mentor run`` also saves the adapter alone (:func:`save_adapter`,
``adapter/`` beside the student's checkpoint) and ``mentor export`` merges it into the
weights (:func:`merged`), so the exported model is the plain architecture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from torch import nn

from ..errors import MentorError
from ..registry import MODELS


class HFClassifier(nn.Module):
    """A ``transformers`` classification model returning logits. ``image_shape``: ``(C, H,
    W)`` for an image model (flat rows in), ``None`` for a text model (named tensors in)."""

    def __init__(self, model: nn.Module, image_shape: tuple[int, ...] | None = None):
        super().__init__()
        self.model, self.image_shape = model, image_shape

    def forward(self, x=None, **named):
        if self.image_shape is not None:
            return self.model(pixel_values=x.reshape(len(x), *self.image_shape)).logits
        return self.model(**named).logits


def _kind(input_shape: Sequence[int], vocab_size: int | None) -> str:
    if vocab_size is not None:
        return "text"
    if len(tuple(input_shape)) == 3:
        return "image"
    raise MentorError(f"model 'hf' reads token ids (data.text) or images (C, H, W); the data "
                     f"have rows of shape {list(input_shape)}")


def _auto(kind: str):
    import transformers
    return (transformers.AutoModelForSequenceClassification if kind == "text"
            else transformers.AutoModelForImageClassification)


HEADS = {"text": "ForSequenceClassification", "image": "ForImageClassification"}


def folder_config(folder: Path):
    """``(config, where)`` of a local ``save_pretrained`` folder (``where`` names it in
    errors); one sentence when it has no ``config.json``."""
    import transformers
    where = f"model folder '{folder}'"
    if not (folder / "config.json").is_file():
        raise MentorError(f"{where} has no config.json; expected a folder written by "
                          "save_pretrained")
    return transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True), where


def saved_architectures(config) -> list[str]:
    """The model classes a folder's config says it was saved from (``architectures``)."""
    return [a for a in (getattr(config, "architectures", None) or []) if isinstance(a, str)]


def _check_config(config, kind: str, input_shape, num_classes: int, vocab_size, where: str,
                  new_head: bool) -> None:
    """A folder's config that does not fit the data is refused in one sentence."""
    saved = saved_architectures(config)
    if saved and not any(a.endswith(HEADS[kind]) for a in saved) and not new_head:
        raise MentorError(f"{where} holds a {saved[0]}, not a {kind} classifier (*"
                          f"{HEADS[kind]}); expected a model saved with that head, or "
                          "new_head: true to train a new classification head on its body")
    if kind == "text":
        have = getattr(config, "vocab_size", None)
        if isinstance(have, int) and have < vocab_size:
            raise MentorError(f"{where} has a vocabulary of {have:,} tokens but the tokenizer "
                             f"gives ids up to {vocab_size - 1:,}; expected the model's own "
                             "tokenizer (data.tokenizer: the same folder)")
    else:
        c, h, w = input_shape
        channels = getattr(config, "num_channels", c)
        size = getattr(config, "image_size", None)
        if channels != c:
            raise MentorError(f"{where} reads {channels}-channel images but the data have {c} "
                             "(data.channels)")
        if isinstance(size, int) and size != h:
            raise MentorError(f"{where} reads {size}x{size} images but the data are {h}x{w} "
                             f"(data.image_size: {size})")
    labels = getattr(config, "num_labels", num_classes)
    if labels != num_classes and not new_head:
        raise MentorError(f"{where} classifies {labels} classes but the data have "
                         f"{num_classes}; expected the same, or new_head: true for a new, "
                         "untrained classification head")


LORA_FIELDS = {"r": 8, "alpha": 16.0, "dropout": 0.0, "target_modules": None}


def _lora_config(lora: dict, kind: str):
    """A ``peft.LoraConfig`` from the recipe's ``lora`` fields (defaults :data:`LORA_FIELDS`;
    ``target_modules`` None: peft's default modules for the model type)."""
    try:
        import peft
    except ImportError:
        raise MentorError("lora needs the peft package; expected `pip install mentor[lm]`") \
            from None
    if not isinstance(lora, dict) or set(lora) - set(LORA_FIELDS):
        extra = sorted(set(lora) - set(LORA_FIELDS)) if isinstance(lora, dict) else lora
        raise MentorError(f"lora has {extra!r}; expected fields among "
                          f"{', '.join(LORA_FIELDS)}")
    f = {**LORA_FIELDS, **lora}
    if not isinstance(f["r"], int) or isinstance(f["r"], bool) or f["r"] < 1:
        raise MentorError(f"lora.r is {f['r']!r}; expected a rank of at least 1")
    if not isinstance(f["alpha"], (int, float)) or f["alpha"] <= 0:
        raise MentorError(f"lora.alpha is {f['alpha']!r}; expected a positive scale")
    if not isinstance(f["dropout"], (int, float)) or not 0 <= f["dropout"] < 1:
        raise MentorError(f"lora.dropout is {f['dropout']!r}; expected a value in [0, 1)")
    targets = f["target_modules"]
    if targets is not None and (not isinstance(targets, list) or not targets
                                or not all(isinstance(t, str) for t in targets)):
        raise MentorError(f"lora.target_modules is {targets!r}; expected module names such as "
                          "[query, value]")
    head = ({"task_type": "SEQ_CLS"} if kind == "text" else
            {"task_type": "CAUSAL_LM"} if kind == "causal" else {"modules_to_save": ["classifier"]})
    return peft.LoraConfig(r=f["r"], lora_alpha=float(f["alpha"]),
                           lora_dropout=float(f["dropout"]), target_modules=targets, **head)


def with_lora(model: nn.Module, lora: dict | None, kind: str, where: str) -> nn.Module:
    """``model`` with LoRA adapters (``lora``: the recipe's fields; ``None``: ``model`` itself)
    for a ``kind`` of model: ``text`` or ``image`` classifiers, ``causal`` language models."""
    if lora is None:
        return model
    config = _lora_config(lora, kind)  # one sentence if peft is missing or a field is bad
    import peft
    try:
        return peft.get_peft_model(model, config)
    except ValueError as e:  # target modules not found in the model
        why = (str(e).strip().splitlines() or [""])[0][:200]
        raise MentorError(f"lora cannot be applied to {where} ({why}); expected "
                          "target_modules that name its layers (e.g. query, value for BERT)") \
            from None


def save_adapter(module: nn.Module, folder) -> bool:
    """Save the LoRA adapter of an ``hf`` student with ``lora`` to ``folder``
    (``adapter_config.json``, ``adapter_model.safetensors``: what ``peft`` loads over the
    base model), or of a causal LM with ``lora`` (a ``peft`` model itself); ``False`` for any
    other model."""
    inner = module.model if isinstance(module, HFClassifier) else module
    if not _is_peft(inner):
        return False
    inner.save_pretrained(str(folder))
    return True


def merged(module: nn.Module) -> nn.Module:
    """An ``hf`` student with ``lora`` as the plain model with its adapters merged into the
    weights (what inference and export use); any other model as it is."""
    if isinstance(module, HFClassifier) and _is_peft(module.model):
        return HFClassifier(module.model.merge_and_unload(), module.image_shape)
    if _is_peft(module):  # a causal LM with lora
        return module.merge_and_unload()
    return module


def _is_peft(model: nn.Module) -> bool:
    try:
        import peft
    except ImportError:
        return False
    return isinstance(model, peft.PeftModel)


@MODELS.register("hf", description="a Hugging Face transformers model: a local folder "
                 "(path, from save_pretrained) or a config (weights from the seed), for token "
                 "ids or images; lora: a LoRA adapter over the frozen model (peft)",
                 paper="Wolf et al. 2020, Transformers: State-of-the-Art Natural Language "
                 "Processing; Hu et al. 2021, LoRA")
def hf(input_shape: Sequence[int], num_classes: int, vocab_size: int | None = None,
       path: str | None = None, config: dict[str, Any] | None = None,
       new_head: bool = False, lora: dict[str, Any] | None = None) -> nn.Module:
    """Exactly one of ``path`` (a ``save_pretrained`` folder) or ``config`` (``model_type``
    plus its fields, e.g. ``{model_type: bert, hidden_size: 64, num_hidden_layers: 2}``).
    ``new_head``: a folder's model gets a new classification head sized to the data.
    ``lora``: ``{r, alpha, dropout, target_modules}`` trains LoRA adapters and the head over
    the frozen model."""
    try:
        import transformers
    except ImportError:
        raise MentorError("model 'hf' needs the transformers package; expected `pip install "
                          "mentor[lm]`") from None
    if (path is None) == (config is None):
        raise MentorError("model 'hf' takes one of 'path' (a local model folder) or 'config'")
    kind = _kind(input_shape, vocab_size)
    image = tuple(input_shape) if kind == "image" else None
    if config is not None:
        fields = dict(config)
        model_type = fields.pop("model_type", None)
        if not isinstance(model_type, str):
            raise MentorError("config needs 'model_type' (e.g. bert, vit); got "
                             f"{model_type!r}")
        if kind == "text":
            fields["vocab_size"] = vocab_size
        else:
            fields.setdefault("num_channels", image[0])
            fields.setdefault("image_size", image[1])
        cfg = transformers.AutoConfig.for_model(model_type, num_labels=num_classes, **fields)
        return HFClassifier(with_lora(_auto(kind).from_config(cfg), lora, kind,
                                       f"a {model_type} model"), image)
    folder = Path(path)
    cfg, where = folder_config(folder)
    _check_config(cfg, kind, input_shape, num_classes, vocab_size, where, new_head)
    try:
        if _building_on_meta():  # counting parameters: shapes only, no weights read
            cfg.num_labels = num_classes
            return HFClassifier(with_lora(_auto(kind).from_config(cfg), lora, kind, where),
                                image)
        model = _auto(kind).from_pretrained(str(folder), local_files_only=True,
                                            num_labels=num_classes,
                                            ignore_mismatched_sizes=new_head)
    except ValueError as e:  # a model type without this head ("Unrecognized configuration")
        if "Unrecognized configuration class" not in str(e):
            raise
        raise MentorError(f"{where} is a {cfg.model_type!r} model, which transformers has no "
                          f"{kind} classifier (*{HEADS[kind]}) for; expected a model type "
                          f"that classifies {kind}s") from None
    return HFClassifier(with_lora(model, lora, kind, where), image)


def _building_on_meta() -> bool:
    import torch
    return torch.empty(0).device.type == "meta"
