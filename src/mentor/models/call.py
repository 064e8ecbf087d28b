"""How a model is called on a batch's inputs: one tensor, the labels as a second input, or
named tensors (a dict, passed as keyword arguments, as Hugging Face models take
``input_ids`` and ``attention_mask``). The task adapters and the module teachers share it."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn


def call_model(model: nn.Module, x: Tensor | dict[str, Tensor], y: Tensor | None = None) -> Any:
    """``model(x)``; ``model(x, y)`` for a model that reads the labels as input (a
    label-assisted teacher); ``model(**x)`` for named tensors, a Hugging Face output's
    ``.logits`` unwrapped."""
    if type(x) is dict:
        out = model(**x)
        return out.logits if hasattr(out, "logits") else out
    return model(x) if y is None else model(x, y)
