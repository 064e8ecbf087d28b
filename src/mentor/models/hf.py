"""Hugging Face ``transformers`` models as students and teachers: a local folder written by
``save_pretrained`` (weights loaded, never downloaded) or a config (weights drawn from the
seed), for token ids (``AutoModelForSequenceClassification``) or images
(``AutoModelForImageClassification``).

:class:`HFClassifier` wraps the model so it is called like every mentor model: with the
batch's named tensors (``input_ids``, ``attention_mask``) or flat image rows (reshaped to
``pixel_values`` ``(B, C, H, W)``), returning the logits tensor.
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


def _check_config(config, kind: str, input_shape, num_classes: int, vocab_size, where: str,
                  new_head: bool) -> None:
    """A folder's config that does not fit the data is refused in one sentence."""
    saved = [a for a in (getattr(config, "architectures", None) or []) if isinstance(a, str)]
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


@MODELS.register("hf", description="a Hugging Face transformers model: a local folder "
                 "(path, from save_pretrained) or a config (weights from the seed), for token "
                 "ids or images", paper="Wolf et al. 2020, Transformers: State-of-the-Art "
                 "Natural Language Processing")
def hf(input_shape: Sequence[int], num_classes: int, vocab_size: int | None = None,
       path: str | None = None, config: dict[str, Any] | None = None,
       new_head: bool = False) -> nn.Module:
    """Exactly one of ``path`` (a ``save_pretrained`` folder) or ``config`` (``model_type``
    plus its fields, e.g. ``{model_type: bert, hidden_size: 64, num_hidden_layers: 2}``).
    ``new_head``: a folder's model gets a new classification head sized to the data."""
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
        return HFClassifier(_auto(kind).from_config(cfg), image)
    folder = Path(path)
    where = f"model folder '{folder}'"
    if not (folder / "config.json").is_file():
        raise MentorError(f"{where} has no config.json; expected a folder written by "
                         "save_pretrained")
    cfg = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True)
    _check_config(cfg, kind, input_shape, num_classes, vocab_size, where, new_head)
    try:
        if _building_on_meta():  # counting parameters: shapes only, no weights read
            cfg.num_labels = num_classes
            return HFClassifier(_auto(kind).from_config(cfg), image)
        model = _auto(kind).from_pretrained(str(folder), local_files_only=True,
                                            num_labels=num_classes,
                                            ignore_mismatched_sizes=new_head)
    except ValueError as e:  # a model type without this head ("Unrecognized configuration")
        if "Unrecognized configuration class" not in str(e):
            raise
        raise MentorError(f"{where} is a {cfg.model_type!r} model, which transformers has no "
                          f"{kind} classifier (*{HEADS[kind]}) for; expected a model type "
                          f"that classifies {kind}s") from None
    return HFClassifier(model, image)


def _building_on_meta() -> bool:
    import torch
    return torch.empty(0).device.type == "meta"
