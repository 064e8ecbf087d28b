"""A tiny CLIP trained here: the stand-in for a pretrained vision-language teacher.

Radford et al. 2021, "Learning Transferable Visual Models From Natural Language Supervision"
(ICML), official code openai/CLIP (``model.py``: image and text towers, projections, a
learned ``logit_scale``, the symmetric contrastive loss). The model itself is
``transformers.CLIPModel`` built from a small :class:`transformers.CLIPConfig` (one layer,
hidden size 32, 8 x 8 images in 4 x 4 patches); its loss is ``CLIPModel(...,
return_loss=True)``, the symmetric InfoNCE of the paper.

What is ours [reconstruction]: the captions are class-name prompts ("a photo of the digit
seven"), tokenized by a word-level tokenizer built from them (:class:`WordTokenizer`, a
``tokenizers`` WordLevel model saved as ``tokenizer.json``; no download); every batch holds one
image per class, so the in-batch negatives of the contrastive loss are true negatives (with
class-name captions, two images of one class would share a caption). Users with a real CLIP
point :func:`mentor.vl.load_clip` (or :class:`mentor.vl.ZeroShotTeacher`) at its local
directory instead.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from .._util.args import positive_int
from ..errors import MentorError

PAD, BOS, UNK, EOS = "[PAD]", "[BOS]", "[UNK]", "[EOS]"
SPECIALS = (PAD, BOS, UNK, EOS)  # ids 0..3; EOS is not 2 (CLIP's legacy arg-max pooling)
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEMPLATES = ("a photo of the digit {}", "a drawing of the number {}", "a picture of a {}")
MARKER = "mentor_vl.json"  # written next to the model: how inputs become pixels


class WordTokenizer:
    """Whitespace word-level tokenizer with ``[BOS] ... [EOS]`` and right padding, called like
    a ``transformers`` tokenizer: ``tok(texts, padding=True, return_tensors="pt")`` gives
    ``input_ids`` and ``attention_mask``."""

    def __init__(self, tokenizer):
        self.backend = tokenizer
        self.pad_id = tokenizer.token_to_id(PAD)
        self.eos_id = tokenizer.token_to_id(EOS)
        self.bos_id = tokenizer.token_to_id(BOS)

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> "WordTokenizer":
        from tokenizers import Tokenizer, models, pre_tokenizers, processors
        words = sorted({w for t in texts for w in t.lower().split()})
        vocab = {s: i for i, s in enumerate(SPECIALS)}
        vocab.update({w: len(SPECIALS) + i for i, w in enumerate(words)})
        tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        tok.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A {EOS}", special_tokens=[(BOS, 1), (EOS, 3)])
        return cls(tok)

    @classmethod
    def from_file(cls, path: str | Path) -> "WordTokenizer":
        from tokenizers import Tokenizer
        return cls(Tokenizer.from_file(str(path)))

    def save(self, path: str | Path) -> None:
        self.backend.save(str(path))

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    def __call__(self, texts: Sequence[str], padding: bool = True,
                 return_tensors: str = "pt") -> dict[str, Tensor]:
        encs = [self.backend.encode(t.lower()) for t in texts]
        width = max(len(e.ids) for e in encs)
        ids = torch.full((len(encs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(encs), width), dtype=torch.long)
        for i, e in enumerate(encs):
            ids[i, :len(e.ids)] = torch.tensor(e.ids)
            mask[i, :len(e.ids)] = 1
        return {"input_ids": ids, "attention_mask": mask}


def tiny_clip_config(vocab_size: int, *, image_size: int = 8, patch_size: int = 4,
                     channels: int = 1, hidden: int = 32, layers: int = 1, embed_dim: int = 32,
                     max_words: int = 16):
    """A small :class:`transformers.CLIPConfig` (both towers ``layers`` deep, ``hidden`` wide,
    two heads, projections to ``embed_dim``)."""
    from transformers import CLIPConfig
    common = dict(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                  num_attention_heads=2)
    text = dict(common, vocab_size=vocab_size, max_position_embeddings=max_words,
                pad_token_id=0, bos_token_id=1, eos_token_id=3)
    vision = dict(common, image_size=image_size, patch_size=patch_size, num_channels=channels)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=embed_dim)


def vectors_to_pixels(x: Tensor, image_size: int, channels: int, mean: float,
                      std: float) -> Tensor:
    """Rows of flattened images ``(B, image_size**2)`` (values in [0, 1]) as CLIP
    ``pixel_values`` ``(B, channels, image_size, image_size)``: reshaped, normalized
    ``(x - mean) / std``, the grey channel repeated ``channels`` times."""
    side = image_size * image_size
    if x.dim() != 2 or x.shape[1] != side:
        raise MentorError(f"vl teacher inputs have shape {tuple(x.shape)}; expected (rows, "
                          f"{side}) flattened {image_size}x{image_size} images")
    img = ((x.float() - mean) / std).reshape(len(x), 1, image_size, image_size)
    return img.expand(-1, channels, -1, -1)


@contextmanager
def _quiet():
    """transformers' progress bars off inside the block (saving and loading a tiny model)."""
    from transformers.utils import logging
    was = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            logging.enable_progress_bar()


def captions(class_names: Sequence[str], templates: Sequence[str]) -> list[str]:
    return [t.format(c) for t in templates for c in class_names]


def train_tiny_clip(images: Tensor, labels: Tensor, class_names: Sequence[str],
                    out_dir: str | Path, *, templates: Sequence[str] = TEMPLATES,
                    steps: int = 1500, lr: float = 3e-3, seed: int = 0, image_size: int = 8,
                    patch_size: int = 4, channels: int = 1, hidden: int = 32,
                    layers: int = 1, embed_dim: int = 32, pixel_mean: float = 0.5,
                    pixel_std: float = 0.5) -> Path:
    """Train a tiny CLIP contrastively on ``(image, caption)`` pairs and save it to
    ``out_dir`` (``save_pretrained`` + ``tokenizer.json`` + :data:`MARKER`); returns the path.

    ``images``: ``(N, image_size**2)`` rows in [0, 1] (the data the teacher is trained on --
    keep it disjoint from the student's rows); ``labels``: ``(N,)`` class ids; each step draws
    one image per class and, for each, a caption from a random template of ``templates``.
    Adam at ``lr`` for ``steps`` steps, seeded by ``seed``."""
    from transformers import CLIPModel
    positive_int("train_tiny_clip steps", steps)
    labels = torch.as_tensor(labels).long()
    names = list(class_names)
    present = sorted(set(labels.tolist()))
    if present != list(range(len(names))):
        raise MentorError(f"train_tiny_clip labels cover classes {present}; expected every "
                          f"class 0..{len(names) - 1} of the {len(names)} class names")
    tok = WordTokenizer.from_texts(captions(names, templates))
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = CLIPModel(tiny_clip_config(tok.vocab_size, image_size=image_size,
                                           patch_size=patch_size, channels=channels,
                                           hidden=hidden, layers=layers, embed_dim=embed_dim))
    pixels = vectors_to_pixels(torch.as_tensor(images), image_size, channels, pixel_mean,
                               pixel_std)
    by_class = [torch.nonzero(labels == c).flatten() for c in range(len(names))]
    texts = tok(captions(names, templates))  # row t * C + c: template t, class c
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    classes = torch.arange(len(names))
    for _ in range(steps):
        pick = torch.stack([rows[torch.randint(len(rows), (1,), generator=g)]
                            for rows in by_class]).flatten()
        tmpl = torch.randint(len(templates), (len(names),), generator=g)
        which = tmpl * len(names) + classes
        out = model(input_ids=texts["input_ids"][which],
                    attention_mask=texts["attention_mask"][which],
                    pixel_values=pixels[pick], return_loss=True)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    model.eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _quiet():
        model.save_pretrained(out_dir)
    tok.save(out_dir / "tokenizer.json")
    (out_dir / MARKER).write_text(json.dumps({
        "class_names": names, "templates": list(templates), "image_size": image_size,
        "channels": channels, "pixel_mean": pixel_mean, "pixel_std": pixel_std}, indent=1))
    return out_dir


def load_clip(path: str | Path):
    """``(model, tokenizer, settings)`` from a local directory: the ``CLIPModel`` by
    ``from_pretrained(path, local_files_only=True)``, in eval mode; the tokenizer from its
    ``tokenizer.json`` (ours, :class:`WordTokenizer`) or else ``AutoTokenizer`` (a real
    CLIP's); ``settings``: the :data:`MARKER` file's fields (``{}`` when absent)."""
    from transformers import CLIPModel
    path = Path(path)
    if not (path / "config.json").is_file():
        raise MentorError(f"vl teacher directory '{path}' holds no config.json; expected a "
                          "local CLIP directory written by save_pretrained")
    with _quiet():
        model = CLIPModel.from_pretrained(path, local_files_only=True).eval()
    marker = path / MARKER
    if marker.is_file():
        return model, WordTokenizer.from_file(path / "tokenizer.json"), json.loads(
            marker.read_text())
    from transformers import AutoTokenizer
    return model, AutoTokenizer.from_pretrained(path, local_files_only=True), {}
