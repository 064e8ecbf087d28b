"""A zero-shot vision-language teacher: class scores from image-text similarity.

Radford et al. 2021, "Learning Transferable Visual Models From Natural Language Supervision"
(ICML; openai/CLIP ``README.md`` zero-shot example and ``notebooks/Prompt_Engineering_for_
ImageNet.ipynb``: each class's text embedding is the normalized mean of its normalized
prompt embeddings over the templates; logits = ``logit_scale * image @ text.T``). The text
table is computed once and kept, as PromptKD does with its teacher's text features (Li et al.
2024, "PromptKD: Unsupervised Prompt Distillation for Vision-Language Models", CVPR; code
zhengli97/PromptKD ``trainers/promptkd.py``, where the teacher's text features are stored and
shared as the student's classifier). The teacher-source of DHO (Kang et al. 2025, "Simple
Semi-supervised Knowledge Distillation from Vision-Language Models via Dual-Head
Optimization"), PCoreSet (Kang et al. 2025, "Active Learning via Vision-Language Model
Adaptation with Open Data" / ActiveKD; code erjui/PCoreSet) and the text-anchored
objectives of Li et al. 2023 (:mod:`mentor.vl.objectives`).

:class:`ZeroShotTeacher` is a mentor teacher (``num_classes``, ``logits(x)``, ``cacheable``,
``to``): every method that takes a teacher takes it (``mentor.Distiller(student, teacher,
method=...)``, ``mentor.select``). It maps the student's rows -- flattened grey images, values
in [0, 1] -- to CLIP ``pixel_values`` itself; pass ``preprocess`` for other inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import MentorError
from .tiny_clip import TEMPLATES, load_clip, vectors_to_pixels


def _pooled(out) -> Tensor:
    """Projected features from ``get_*_features``: a tensor (older transformers) or the
    ``pooler_output`` of a model output (transformers 5)."""
    return out if torch.is_tensor(out) else out.pooler_output


def text_table(model, tokenizer, class_names: Sequence[str],
               templates: Sequence[str]) -> Tensor:
    """``(C, D)`` class text features: per class the normalized mean over ``templates`` of
    the normalized prompt embeddings, normalized again (CLIP's prompt ensembling)."""
    texts = [t.format(c) for t in templates for c in class_names]  # row t * C + c
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        feats = _pooled(model.get_text_features(input_ids=enc["input_ids"],
                                                attention_mask=enc["attention_mask"]))
    feats = F.normalize(feats.float(), dim=-1).reshape(len(templates), len(class_names), -1)
    return F.normalize(feats.mean(0), dim=-1)


class ZeroShotTeacher:
    """Zero-shot class scores of a CLIP-style model: ``logits = s * norm(f_img(x)) @ W.T``.

    ``model``: a ``transformers.CLIPModel`` or the path of a local directory holding one
    (:func:`mentor.vl.load_clip`; a directory written by :func:`mentor.vl.train_tiny_clip`
    also brings its tokenizer, class names, templates and pixel settings). ``tokenizer``:
    called as ``tokenizer(texts, padding=True, return_tensors="pt")``. ``class_names`` and
    ``templates`` (``"a photo of the digit {}"``) make the prompts; ``W`` (:attr:`text_features`,
    ``(C, D)``) is computed once here and reused. ``s`` is the model's ``exp(logit_scale)``.
    ``num_classes``: when given, must equal the number of class names.

    Inputs: rows of flattened ``image_size`` x ``image_size`` grey images in [0, 1], turned
    into pixels ``(x - pixel_mean) / pixel_std`` on the model's ``num_channels``; or
    ``preprocess(x) -> pixel_values`` for anything else. The model is frozen (eval mode, no
    gradients); outputs do not depend on the batch (``cacheable``).
    """

    cacheable = True

    def __init__(self, model, tokenizer=None, class_names: Sequence[str] | None = None,
                 templates: Sequence[str] | None = None, *, num_classes: int | None = None,
                 image_size: int | None = None, pixel_mean: float | None = None,
                 pixel_std: float | None = None,
                 preprocess: Callable[[Tensor], Tensor] | None = None):
        settings: dict = {}
        if isinstance(model, (str, Path)):
            model, loaded_tok, settings = load_clip(model)
            tokenizer = tokenizer if tokenizer is not None else loaded_tok
        if tokenizer is None:
            raise MentorError("vl teacher tokenizer is None; expected a tokenizer called as "
                              "tokenizer(texts, padding=True, return_tensors='pt')")
        names = list(class_names if class_names is not None
                     else settings.get("class_names", []))
        if not names:
            raise MentorError("vl teacher class_names is empty; expected one name per class")
        if num_classes is not None and int(num_classes) != len(names):
            raise MentorError(f"vl teacher has {len(names)} class names but num_classes is "
                              f"{num_classes}; expected one name per class")
        self.templates = list(templates if templates is not None
                              else settings.get("templates", TEMPLATES))
        if not self.templates or any("{}" not in t for t in self.templates):
            raise MentorError(f"vl teacher templates {self.templates!r}; expected at least one "
                              "template, each with a '{}' for the class name")
        vision = model.config.vision_config
        self.image_size = int(image_size if image_size is not None
                              else settings.get("image_size", vision.image_size))
        if preprocess is None and self.image_size != vision.image_size:
            raise MentorError(f"vl teacher image_size is {self.image_size} but the model takes "
                              f"{vision.image_size}x{vision.image_size} images; expected the "
                              "model's size (or a preprocess that makes it)")
        self.channels = int(vision.num_channels)
        self.pixel_mean = float(pixel_mean if pixel_mean is not None
                                else settings.get("pixel_mean", 0.5))
        self.pixel_std = float(pixel_std if pixel_std is not None
                               else settings.get("pixel_std", 0.5))
        self.preprocess = preprocess
        self.model = model.eval().requires_grad_(False)
        self.class_names = names
        self.tokenizer = tokenizer
        self.num_classes = len(names)
        self.text_features = text_table(model, tokenizer, names, self.templates)
        self.scale = float(model.logit_scale.detach().exp())
        self.description = f"zero-shot CLIP teacher ({len(names)} classes, " \
                           f"{len(self.templates)} templates)"

    def pixels(self, x: Tensor) -> Tensor:
        if self.preprocess is not None:
            return self.preprocess(x)
        return vectors_to_pixels(x, self.image_size, self.channels, self.pixel_mean,
                                 self.pixel_std)

    @torch.no_grad()
    def image_features(self, x: Tensor) -> Tensor:
        """``(B, D)`` normalized image embeddings of the rows ``x``."""
        device = self.text_features.device
        feats = _pooled(self.model.get_image_features(pixel_values=self.pixels(x).to(device)))
        return F.normalize(feats.float(), dim=-1).to(x.device)

    @torch.no_grad()
    def logits(self, x: Tensor) -> Tensor:
        w = self.text_features.to(x.device)
        return self.scale * self.image_features(x) @ w.T

    def to(self, device) -> "ZeroShotTeacher":
        self.model.to(device)
        self.text_features = self.text_features.to(device)
        return self
