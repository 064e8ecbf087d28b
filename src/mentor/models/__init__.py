"""Built-in models, built from recipe fields: ``linear``, ``mlp`` and a small ``cnn``.

Users of the Python API pass any ``torch.nn.Module`` that maps ``(B, features)`` to
``(B, classes)`` instead.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..registry import MODELS


class Reshape(nn.Module):
    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


@MODELS.register("linear", description="logistic regression: one linear layer")
def linear(input_shape: Sequence[int], num_classes: int) -> nn.Module:
    return nn.Linear(math.prod(input_shape), num_classes)


@MODELS.register("mlp", description="multi-layer perceptron with ReLU (optional dropout, "
                 "BatchNorm)")
def mlp(input_shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (256, 256),
        dropout: float = 0.0, batchnorm: bool = False) -> nn.Module:
    return nn.Sequential(*dense_layers(math.prod(input_shape), hidden, num_classes, dropout,
                                       batchnorm))


def dense_layers(width: int, hidden: Sequence[int], num_classes: int, dropout: float = 0.0,
                 batchnorm: bool = False) -> list[nn.Module]:
    """Linear-(BatchNorm)-ReLU-(Dropout) blocks of ``hidden`` widths from ``width`` inputs,
    then a linear layer to ``num_classes``: the head every built-in model ends with."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers.append(nn.Linear(width, h))
        if batchnorm:
            layers.append(nn.BatchNorm1d(h))
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, num_classes))
    return layers


@MODELS.register("cnn", description="small CNN: conv-ReLU blocks (2-D for HxW or CxHxW inputs "
                 "such as 8x8 digits or RGB images, 1-D for sequences such as MNIST-1D), global "
                 "average pool, linear")
def cnn(input_shape: Sequence[int], num_classes: int, channels: Sequence[int] = (16, 32),
        kernel_size: int = 3, hidden: Sequence[int] = (), dropout: float = 0.0,
        batchnorm: bool = False, pool: str = "avg", stride: int = 1) -> nn.Module:
    """Conv-ReLU blocks (1-D: stride 2 after the first block; 2-D: ``stride`` after the first
    block, default 1: every block at full resolution), then ``pool``: ``avg`` (global
    average, position-free) or ``flatten`` (keeps where features are, as MNIST-1D needs)."""
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"cnn.stride must be an integer >= 1, got {stride!r}")
    two_d = len(input_shape) in (2, 3)  # (H, W) or (C, H, W)
    conv = nn.Conv2d if two_d else nn.Conv1d
    norm = nn.BatchNorm2d if two_d else nn.BatchNorm1d
    c_in = input_shape[0] if len(input_shape) == 3 else 1
    layers: list[nn.Module] = [Reshape(c_in, *input_shape[-2 if two_d else -1:])]
    for i, c in enumerate(channels):
        later = stride if two_d else 2  # the blocks after the first
        layers.append(conv(c_in, c, kernel_size, padding=kernel_size // 2,
                           stride=1 if i == 0 else later))
        if batchnorm:
            layers.append(norm(c))
        layers.append(nn.ReLU())
        c_in = c
    if pool == "avg":
        layers += [nn.AdaptiveAvgPool2d(1) if two_d else nn.AdaptiveAvgPool1d(1), nn.Flatten()]
        width = c_in
    elif pool == "flatten":
        layers.append(nn.Flatten())
        with torch.no_grad():
            width = nn.Sequential(*layers)(torch.zeros(1, math.prod(input_shape))).shape[-1]
    else:
        raise ValueError(f"cnn.pool must be 'avg' or 'flatten', got {pool!r}")
    return nn.Sequential(*layers, *dense_layers(width, hidden, num_classes, dropout))


class TokenBag(nn.Module):
    """Mean of the token embeddings of a text (its attention mask's tokens), then an MLP:
    fastText's bag of embeddings (Joulin et al. 2017, "Bag of Tricks for Efficient Text
    Classification"). Called with ``input_ids`` and ``attention_mask`` ``(B, L)``."""

    def __init__(self, vocab_size: int, num_classes: int, embed: int, hidden: Sequence[int],
                 dropout: float):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed)
        self.head = nn.Sequential(*dense_layers(embed, hidden, num_classes, dropout))

    def forward(self, input_ids, attention_mask=None):
        e = self.embedding(input_ids)
        if attention_mask is None:
            return self.head(e.mean(1))
        m = attention_mask.to(e.dtype).unsqueeze(-1)
        return self.head((e * m).sum(1) / m.sum(1).clamp_min(1.0))


@MODELS.register("bag", description="text: mean of token embeddings, then an MLP (fastText's "
                 "bag of tricks); reads token ids from a data.text source",
                 paper="Joulin et al. 2017, Bag of Tricks for Efficient Text Classification")
def bag(input_shape: Sequence[int], num_classes: int, *, vocab_size: int, embed: int = 64,
        hidden: Sequence[int] = (), dropout: float = 0.0) -> nn.Module:
    return TokenBag(vocab_size, num_classes, embed, hidden, dropout)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# A built-in model above this size (8 GiB of float32 weights) is a typo in a recipe, not a
# model: refused before anything is allocated.
MAX_PARAMS = 2**31


def build_model(name: str, input_shape: Sequence[int], num_classes: int, *,
                vocab_size: int | None = None, check_only: bool = False,
                **fields) -> nn.Module | None:
    """Build a registered model by name from recipe fields.

    ``vocab_size``: the data are token ids of that vocabulary (a text source); a model that
    reads token ids takes it, one that reads numeric features is refused. ``check_only``:
    only the checks and the shapes-only build (a recipe being validated), nothing returned.

    The model is first built on the ``meta`` device (shapes only, no memory, no random
    draws) to count its parameters; sizes that cannot be built or exceed
    :data:`MAX_PARAMS` raise a :class:`~mentor.errors.MentorError` naming the fields instead
    of exhausting memory.
    """
    import inspect

    from ..errors import MentorError
    make = MODELS.get(name)
    # a model reads token ids if it takes vocab_size; only token ids if it has no default
    tokens = inspect.signature(make).parameters.get("vocab_size")
    if vocab_size is not None and tokens is None:
        raise MentorError(f"model {name!r} reads numeric features, but the data are token ids "
                          "(data.text); expected a text model such as 'bag'")
    if vocab_size is None and tokens is not None and tokens.default is inspect.Parameter.empty:
        raise MentorError(f"model {name!r} reads token ids; expected a text source "
                          "(data.text in the recipe)")
    if vocab_size is not None:
        fields = {**fields, "vocab_size": int(vocab_size)}
    return _checked(make, name, tuple(input_shape), int(num_classes), fields,
                    build=not check_only)


def _checked(make, name: str, shape: tuple[int, ...], classes: int, fields: dict,
             build: bool = True) -> nn.Module | None:
    """``make(shape, classes, **fields)``, first on the ``meta`` device (shapes only) to
    count its parameters; ``build=False`` stops there (a recipe being validated)."""
    from ..errors import MentorError
    given = ", ".join(f"{k}={v!r}" for k, v in fields.items() if k != "vocab_size") or \
        "its defaults"
    what = f"model {name!r} with {given} for inputs of shape {list(shape)} and {classes} classes"
    try:
        with torch.device("meta"):
            n = count_params(make(shape, classes, **fields))
        if n > MAX_PARAMS:
            raise MentorError(f"{what} would have {n:,} parameters; expected at most "
                              f"{MAX_PARAMS:,} (smaller widths)")
        return make(shape, classes, **fields) if build else None
    except MentorError:
        raise
    except (RuntimeError, MemoryError, OverflowError, TypeError, ValueError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise MentorError(f"{what} cannot be built ({why}); expected sizes that fit in "
                          "memory") from None


from . import hf  # noqa: E402,F401  (registers the Hugging Face model)
from . import tagger  # noqa: E402,F401  (registers the sequence tagger)
from . import graph  # noqa: E402,F401  (registers the graph teacher)

__all__ = ["MAX_PARAMS", "build_model", "count_params", "linear", "mlp", "cnn", "bag", "Reshape",
           "TokenBag"]
