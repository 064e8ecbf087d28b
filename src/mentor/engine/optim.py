"""The optimizer and learning-rate schedule a training spec names."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # the recipe schema composes methods, which train on this engine
    from ..recipe import TrainSpec


def make_optimizer(params, spec: TrainSpec) -> torch.optim.Optimizer:
    """``spec.optimizer`` (``sgd``, ``adam`` or ``adamw``) over ``params``."""
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    if spec.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)
    return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum,
                           weight_decay=spec.weight_decay)


def make_scheduler(optimizer, spec: TrainSpec, total_steps: int):
    """Cosine decay to 0 over ``total_steps`` (``spec.schedule == "cosine"``), else none."""
    if spec.schedule == "constant":
        return None
    total = max(total_steps, 1)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total)))
