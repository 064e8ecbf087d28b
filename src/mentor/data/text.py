"""Texts as token ids: a tokenizer from a local folder (``transformers.AutoTokenizer``), or a
word-level tokenizer trained on the training split's texts with ``tokenizers`` when the user
has none; padding and truncation to ``max_length`` tokens, attention masks.

A trained tokenizer sees only the training rows (validation and test texts never shape the
vocabulary). ``Tokenizer.save(folder)`` writes it there (``tokenizer.json``, or a local
tokenizer's ``save_pretrained`` files): ``mentor run`` saves each text setting's tokenizer in
``tokenizer/<setting>/`` of the run folder and ``mentor export`` copies it beside the
student, so the exported model comes with the tokenizer that made its inputs.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import DataError

SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # [PAD] is id 0


class Tokenizer:
    """What mentor asks of a tokenizer: ``encode(texts) -> list of id lists`` (no special
    tokens beyond what the tokenizer adds itself), its ``pad_id`` and ``vocab_size``."""

    def __init__(self, encode, pad_id: int, vocab_size: int, description: str, save=None):
        self.encode, self.pad_id, self.vocab_size = encode, pad_id, vocab_size
        self.description, self.save = description, save


def trained_tokenizer(texts: Sequence[str], vocab_size: int) -> Tokenizer:
    """A lower-casing word-level tokenizer (BERT's normalizer and pre-tokenizer: words and
    punctuation) of the ``vocab_size`` most frequent words of ``texts``, ties broken by the
    word; rarer words are ``[UNK]``.

    Word-level, not WordPiece: the ``tokenizers`` WordPiece and BPE trainers assign ids in
    hash-map order, so the same texts give different vocabularies from run to run
    (huggingface/tokenizers#1794); the word-level trainer sorts, so a seed fixes the run."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, normalizers, pre_tokenizers, trainers
    tok = HFTokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL),
                                        show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)

    def encode(batch: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in tok.encode_batch(list(batch))]
    return Tokenizer(encode, tok.token_to_id("[PAD]"), tok.get_vocab_size(),
                     f"words of the training texts ({tok.get_vocab_size():,} tokens)",
                     save=lambda folder: tok.save(str(Path(folder) / "tokenizer.json")))


def hf_tokenizer(path: Path, field: str = "data.tokenizer"):
    """``transformers.AutoTokenizer`` from a local folder (never downloaded); one
    :class:`DataError` sentence for a missing folder, a missing package or another folder."""
    from .._util.safeio import shown
    if not path.is_dir():
        raise DataError(f"{field}: {shown(path)} is not a folder; expected a tokenizer folder "
                        "(tokenizer.json or vocab.txt with tokenizer_config.json)")
    try:
        from transformers import AutoTokenizer
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except ImportError:
        raise DataError(f"{field} needs the transformers package; expected `pip install "
                        "mentor[lm]`") from None
    except Exception as e:  # OSError, ValueError, KeyError: not a tokenizer folder
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise DataError(f"{field}: {shown(path)} is not a tokenizer folder ({why}); expected "
                        "the files of a Hugging Face tokenizer saved with save_pretrained") \
            from None


def local_tokenizer(path: Path, field: str = "data.tokenizer") -> Tokenizer:
    """A local folder's tokenizer (:func:`hf_tokenizer`) as mentor's :class:`Tokenizer`."""
    from .._util.safeio import shown
    tok = hf_tokenizer(path, field)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0

    def encode(batch: Sequence[str]) -> list[list[int]]:
        return tok(list(batch), add_special_tokens=True, truncation=False)["input_ids"]
    return Tokenizer(encode, int(pad), int(len(tok)), f"tokenizer from {shown(path)}",
                     save=lambda folder: tok.save_pretrained(str(folder)))


def encode_texts(tokenizer: Tokenizer, texts: Sequence[str], max_length: int,
                 truncation: bool = True, rows: Sequence[int] | None = None,
                 field: str = "data.text") -> dict[str, torch.Tensor]:
    """``input_ids`` and ``attention_mask`` ``(N, L)``, ``L`` the longest text's token count
    up to ``max_length``; longer texts are cut (one warning counting them) or, without
    ``truncation``, refused naming the first (``rows``: the texts' row ids, for messages)."""
    ids = tokenizer.encode(texts)
    lengths = np.array([len(i) for i in ids])
    long = np.flatnonzero(lengths > max_length)
    if len(long) and not truncation:
        r = int(long[0]) if rows is None else int(rows[long[0]])
        raise DataError(f"{field}: row {r} has {int(lengths[long[0]])} tokens, more than "
                        f"data.max_length {max_length}; expected shorter texts, a larger "
                        "max_length, or data.truncation: true")
    if len(long):
        warnings.warn(f"{field}: {len(long):,} of {len(ids):,} texts have more than "
                      f"{max_length} tokens (the longest {int(lengths.max())}) and were cut "
                      f"to their first {max_length} (data.max_length)", stacklevel=2)
    width = int(min(max_length, max(1, lengths.max(initial=1))))
    out = torch.full((len(ids), width), tokenizer.pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for k, seq in enumerate(ids):
        seq = seq[:width]
        out[k, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[k, :len(seq)] = 1
    return {"input_ids": out, "attention_mask": mask}
