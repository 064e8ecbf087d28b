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
    layers: list[nn.Module] = []
    width = math.prod(input_shape)
    for h in hidden:
        layers.append(nn.Linear(width, h))
        if batchnorm:
            layers.append(nn.BatchNorm1d(h))
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


@MODELS.register("cnn", description="small CNN: conv-ReLU blocks (2-D for HxW or CxHxW inputs "
                 "such as 8x8 digits or RGB images, 1-D for sequences such as MNIST-1D), global "
                 "average pool, linear")
def cnn(input_shape: Sequence[int], num_classes: int, channels: Sequence[int] = (16, 32),
        kernel_size: int = 3, hidden: Sequence[int] = (), dropout: float = 0.0,
        batchnorm: bool = False, pool: str = "avg") -> nn.Module:
    """Conv-ReLU blocks (1-D: stride 2 after the first block), then ``pool``: ``avg`` (global
    average, position-free) or ``flatten`` (keeps where features are, as MNIST-1D needs)."""
    two_d = len(input_shape) in (2, 3)  # (H, W) or (C, H, W)
    conv = nn.Conv2d if two_d else nn.Conv1d
    norm = nn.BatchNorm2d if two_d else nn.BatchNorm1d
    c_in = input_shape[0] if len(input_shape) == 3 else 1
    layers: list[nn.Module] = [Reshape(c_in, *input_shape[-2 if two_d else -1:])]
    for i, c in enumerate(channels):
        layers.append(conv(c_in, c, kernel_size, padding=kernel_size // 2,
                           stride=1 if (two_d or i == 0) else 2))
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
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# A built-in model above this size (8 GiB of float32 weights) is a typo in a recipe, not a
# model: refused before anything is allocated.
MAX_PARAMS = 2**31


def build_model(name: str, input_shape: Sequence[int], num_classes: int, **fields) -> nn.Module:
    """Build a registered model by name from recipe fields.

    The model is first built on the ``meta`` device (shapes only, no memory, no random
    draws) to count its parameters; sizes that cannot be built or exceed
    :data:`MAX_PARAMS` raise a :class:`~mentor.errors.MentorError` naming the fields instead
    of exhausting memory.
    """
    from ..errors import MentorError
    make = MODELS.get(name)
    shape, classes = tuple(input_shape), int(num_classes)
    given = ", ".join(f"{k}={v!r}" for k, v in fields.items()) or "its defaults"
    what = f"model {name!r} with {given} for inputs of shape {list(shape)} and {classes} classes"
    try:
        with torch.device("meta"):
            n = count_params(make(shape, classes, **fields))
        if n > MAX_PARAMS:
            raise MentorError(f"{what} would have {n:,} parameters; expected at most "
                              f"{MAX_PARAMS:,} (smaller widths)")
        return make(shape, classes, **fields)
    except MentorError:
        raise
    except (RuntimeError, MemoryError, OverflowError, TypeError, ValueError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise MentorError(f"{what} cannot be built ({why}); expected sizes that fit in "
                          "memory") from None


__all__ = ["MAX_PARAMS", "build_model", "count_params", "linear", "mlp", "cnn", "Reshape"]
