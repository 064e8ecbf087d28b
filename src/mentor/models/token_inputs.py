"""A text student as its exported graph takes it: two named int64 inputs, ``input_ids`` and
``attention_mask`` ``(batch, length)``, padded as the run padded them, and logits out.

Text students are called with the batch's named tensors (:func:`mentor.models.call.call_model`:
``model(**x)``, a Hugging Face output's ``.logits`` read). The ONNX and TorchScript exporters
take positional inputs, so :class:`TokenInputs` names them in its signature; the exported
file's inputs carry those names."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .call import call_model

TOKEN_INPUTS = ("input_ids", "attention_mask")


class TokenInputs(nn.Module):
    """``module`` called as ``forward(input_ids, attention_mask) -> logits``."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return call_model(self.module, {"input_ids": input_ids,
                                        "attention_mask": attention_mask})


def random_tokens(rows: int, length: int, vocab_size: int, seed: int = 0) -> dict[str, Tensor]:
    """``rows`` texts of random token ids ``1..vocab_size-1`` (id 0 is padding in mentor's
    trained tokenizers) of random lengths ``1..length``, padded and masked as the run pads."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, max(2, vocab_size), (rows, length), generator=g)
    lengths = torch.randint(1, length + 1, (rows, 1), generator=g)
    mask = (torch.arange(length)[None, :] < lengths).long()
    return {"input_ids": ids * mask, "attention_mask": mask}


__all__ = ["TOKEN_INPUTS", "TokenInputs", "random_tokens"]
