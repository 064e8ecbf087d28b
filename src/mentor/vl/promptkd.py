"""PromptKD's student: a frozen feature extractor with a learnable prompt and a projector,
classified by the teacher's stored text features (a shared classifier, never retrained).

Li, Li, Fu, Cheng, Ren, Li, Yang 2024, "PromptKD: Unsupervised Prompt Distillation for
Vision-Language Models" (CVPR); code zhengli97/PromptKD ``trainers/promptkd.py`` (student
logits ``logit_scale * norm(projector(f_s(x; prompts))) @ text_features.T`` with the
*teacher's* pre-computed text features; loss ``KD_WEIGHT * T^2 * KL(teacher || student)`` at
``T = 1``, no CE) and ``configs/trainers/PromptKD/vit_b16_c2_ep20_batch8_4+4ctx.yaml``.

The CPU stand-in (METHODS.md §54) [reconstruction]: the "small CLIP image encoder" is a
frozen random-feature map ``relu(x A + b)`` (buffers, not parameters); the deep visual prompt
tokens become one learnable additive input prompt; the projector is Linear-LayerNorm-ReLU-
Linear (the code's Conv1x1-BN-ReLU-Conv1x1 on a vector; LayerNorm so a one-row batch
trains). Train it with ``mentor.Distiller(..., method="kd", alpha=1.0, temperature=1.0)`` on
unlabeled rows. :class:`FrozenProbe` is the few-shot
baseline: the same frozen features and a linear classifier trained on the labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._util.args import positive_int


class RandomFeatures(nn.Module):
    """``relu(x A + b)`` with a fixed Gaussian ``A`` (scaled ``1/sqrt(in)``) and ``b``, drawn
    from ``seed``; stored as buffers, so no optimizer moves them."""

    def __init__(self, in_features: int, width: int = 128, seed: int = 0):
        super().__init__()
        positive_int("RandomFeatures in_features", in_features)
        positive_int("RandomFeatures width", width)
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("weight", torch.randn(in_features, width, generator=g)
                             / in_features ** 0.5)
        self.register_buffer("bias", torch.randn(width, generator=g) * 0.5)
        self.width = width

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x.float() @ self.weight + self.bias)


class PromptKDStudent(nn.Module):
    """``logits = s * norm(proj(feat(x + prompt))) @ W.T`` with the teacher's text features
    ``W`` (``(C, D)``) and scale ``s`` kept as buffers (shared, not trained)."""

    def __init__(self, text_features: Tensor, scale: float, in_features: int = 64,
                 width: int = 128, hidden: int = 64, feature_seed: int = 0):
        super().__init__()
        self.features = RandomFeatures(in_features, width, feature_seed)
        self.prompt = nn.Parameter(torch.zeros(in_features))
        self.projector = nn.Sequential(nn.Linear(width, hidden), nn.LayerNorm(hidden),
                                       nn.ReLU(), nn.Linear(hidden, text_features.shape[1]))
        self.register_buffer("text_features", F.normalize(text_features.detach().float(), dim=-1))
        self.register_buffer("scale", torch.tensor(float(scale)))

    def embed(self, x: Tensor) -> Tensor:
        return F.normalize(self.projector(self.features(x + self.prompt)), dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * self.embed(x) @ self.text_features.T


class FrozenProbe(nn.Module):
    """The linear probe: the same frozen random features and a trained linear classifier."""

    def __init__(self, num_classes: int, in_features: int = 64, width: int = 128,
                 feature_seed: int = 0):
        super().__init__()
        self.features = RandomFeatures(in_features, width, feature_seed)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
