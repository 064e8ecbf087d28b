"""How teacher outputs are stored in a label store: one class per kind.

Each kind turns a batch of teacher logits ``(B, C)`` into Arrow columns and back. Decoding
returns *logits* the engine can use directly (softmax gives back the stored distribution):

- ``logits``: the full logits as ``float32`` or ``float16`` (exact, or within float16).
- ``topk``: FKD-style top-k: ``topk_index`` (int32), ``topk_value`` (the probabilities of
  those classes at the capture ``temperature``) and ``tail_mass`` (1 - their sum). Decoding
  spreads the tail mass uniformly over the other classes (FKD's "marginal smoothing") and
  returns ``temperature · log p``, so that ``softmax(decoded / temperature)`` is the stored
  distribution.
- ``hard``: arg-max ``label`` (int32) and its probability ``confidence``; decoded as
  ``log`` of ``confidence`` on the label and the rest spread uniformly.
- ``tensor``: any per-row tensor (features, per-pixel maps), flattened, with its shape in the
  manifest; decoding reshapes it.
- ``token_topk``: a language-model teacher's top-k next-token log-probabilities at every one
  of ``seq_len`` positions (``topk_index`` int32, ``topk_logprob`` float32, ``seq_len · k``
  per row); decoding returns the pair ``(indices, logprobs)`` of shape ``(B, seq_len, k)``,
  not logits (see :class:`TokenTopK`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch import Tensor

from ..errors import MentorError, check_param

KIND_NAMES = ("logits", "topk", "hard", "tensor", "token_topk")


def _fixed(values: np.ndarray, width: int, arrow_type) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(values).reshape(-1), type=arrow_type)
    return pa.FixedSizeListArray.from_arrays(flat, width)


def _unfixed(column: pa.ChunkedArray | pa.Array, width: int, dtype) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    flat = column.flatten().to_numpy(zero_copy_only=False)
    return flat.astype(dtype).reshape(-1, width)  # a writable copy


class Kind:
    """Base: ``encode(z) -> {column: array}``, ``decode(table) -> Tensor``, ``describe()``."""

    name = ""

    def columns(self) -> list[str]:
        raise NotImplementedError

    def encode(self, z: Tensor) -> dict[str, pa.Array]:
        raise NotImplementedError

    def decode(self, table: pa.Table) -> Tensor:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError


class FullLogits(Kind):
    name = "logits"

    def __init__(self, num_classes: int, dtype: str = "float32"):
        if dtype not in ("float32", "float16"):
            raise MentorError(f"label store dtype {dtype!r} is not supported; expected "
                              "'float32' or 'float16'")
        self.num_classes, self.dtype = int(num_classes), dtype
        self._np = np.float32 if dtype == "float32" else np.float16
        self._arrow = pa.float32() if dtype == "float32" else pa.float16()

    def columns(self):
        return ["logits"]

    def encode(self, z):
        return {"logits": _fixed(z.detach().float().cpu().numpy().astype(self._np),
                                 self.num_classes, self._arrow)}

    def decode(self, table):
        return torch.from_numpy(_unfixed(table.column("logits"), self.num_classes, np.float32))

    def describe(self):
        return {"kind": self.name, "num_classes": self.num_classes, "dtype": self.dtype}


class TopK(Kind):
    name = "topk"

    def __init__(self, num_classes: int, k: int, temperature: float = 1.0):
        check_param("topk", "temperature", temperature, low=0, low_open=True)
        if not 1 <= int(k) <= int(num_classes):
            raise MentorError(f"label store topk {k} is out of range; expected 1..{num_classes} "
                              f"for {num_classes} classes")
        self.num_classes, self.k, self.temperature = int(num_classes), int(k), float(temperature)

    def columns(self):
        return ["topk_index", "topk_value", "tail_mass"]

    def encode(self, z):
        p = torch.softmax(z.detach().double() / self.temperature, dim=-1)
        value, index = p.topk(self.k, dim=-1)
        tail = (1.0 - value.sum(-1)).clamp_min(0.0)
        return {"topk_index": _fixed(index.int().cpu().numpy(), self.k, pa.int32()),
                "topk_value": _fixed(value.float().cpu().numpy(), self.k, pa.float32()),
                "tail_mass": pa.array(tail.float().cpu().numpy(), type=pa.float32())}

    def decode(self, table):
        index = torch.from_numpy(_unfixed(table.column("topk_index"), self.k, np.int64))
        value = torch.from_numpy(_unfixed(table.column("topk_value"), self.k, np.float64))
        tail = torch.from_numpy(table.column("tail_mass").to_numpy().astype(np.float64))
        rest = self.num_classes - self.k
        if rest:
            fill = (tail / rest).clamp_min(1e-12)
            p = fill[:, None].expand(len(tail), self.num_classes).clone()
        else:
            p = torch.zeros(len(tail), self.num_classes, dtype=torch.float64)
        p.scatter_(1, index, value.clamp_min(1e-12))
        return (self.temperature * p.log()).float()

    def describe(self):
        return {"kind": self.name, "num_classes": self.num_classes, "k": self.k,
                "temperature": self.temperature}


class Hard(Kind):
    name = "hard"

    def __init__(self, num_classes: int):
        self.num_classes = int(num_classes)

    def columns(self):
        return ["label", "confidence"]

    def encode(self, z):
        p = torch.softmax(z.detach().double(), dim=-1)
        conf, label = p.max(-1)
        return {"label": pa.array(label.int().cpu().numpy(), type=pa.int32()),
                "confidence": pa.array(conf.float().cpu().numpy(), type=pa.float32())}

    def decode(self, table):
        label = torch.from_numpy(table.column("label").to_numpy().astype(np.int64))
        conf = torch.from_numpy(table.column("confidence").to_numpy().astype(np.float64))
        c = self.num_classes
        rest = ((1.0 - conf) / max(c - 1, 1)).clamp_min(1e-12)
        p = rest[:, None].expand(len(label), c).clone()
        p.scatter_(1, label[:, None], conf.clamp_min(1e-12)[:, None])
        return p.log().float()

    def describe(self):
        return {"kind": self.name, "num_classes": self.num_classes}


class Tensors(Kind):
    name = "tensor"

    def __init__(self, shape: tuple[int, ...], dtype: str = "float32"):
        if dtype not in ("float32", "float16"):
            raise MentorError(f"label store dtype {dtype!r} is not supported; expected "
                              "'float32' or 'float16'")
        self.shape = tuple(int(s) for s in shape)
        self.width = math.prod(self.shape)
        self.dtype = dtype
        self._np = np.float32 if dtype == "float32" else np.float16
        self._arrow = pa.float32() if dtype == "float32" else pa.float16()

    def columns(self):
        return ["value"]

    def encode(self, z):
        if tuple(z.shape[1:]) != self.shape:
            raise MentorError(f"label store tensor rows have shape {tuple(z.shape[1:])}; "
                              f"expected {self.shape} as declared")
        return {"value": _fixed(z.detach().float().cpu().numpy().astype(self._np),
                                self.width, self._arrow)}

    def decode(self, table):
        flat = _unfixed(table.column("value"), self.width, np.float32)
        return torch.from_numpy(flat).reshape(-1, *self.shape)

    def describe(self):
        return {"kind": self.name, "shape": list(self.shape), "dtype": self.dtype}


class TokenTopK(Kind):
    """Sparse token-level LM targets: per position, the teacher's ``k`` most likely tokens and
    their log-probabilities at temperature 1: the cached top-k teacher targets of token-level
    LM distillation (studied by Anshumann et al. 2025, "Sparse Logit Sampling"), i.e. FKD's
    top-k label store (Shen & Xing 2022) applied per token position.

    ``encode(z)``: ``z`` the teacher's raw logits ``(B, seq_len, vocab_size)`` (or an output
    object with ``.logits``, e.g. a Hugging Face ``CausalLMOutput``). ``decode(table)`` returns
    ``(indices, logprobs)``: ``int64`` and ``float32`` tensors ``(B, seq_len, k)``, the
    log-probabilities sorted descending per position. The caller builds the loss target with
    ``mentor.losses.tokens.TopKSignal(indices, logprobs)``; the mass left outside the top k
    at each position is ``1 - logprobs.exp().sum(-1)``.
    """

    name = "token_topk"

    def __init__(self, vocab_size: int, seq_len: int, k: int):
        for field, value in (("vocab_size", vocab_size), ("seq_len", seq_len), ("k", k)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise MentorError(f"label store token_topk.{field} must be an integer, got "
                                  f"{value!r}")
        check_param("token_topk", "vocab_size", int(vocab_size), low=1)
        check_param("token_topk", "seq_len", int(seq_len), low=1)
        if not 1 <= int(k) <= int(vocab_size):
            raise MentorError(f"label store token_topk k {k} is out of range; expected "
                              f"1..{vocab_size} for a vocabulary of {vocab_size} tokens")
        self.vocab_size, self.seq_len, self.k = int(vocab_size), int(seq_len), int(k)
        self.width = self.seq_len * self.k

    def columns(self):
        return ["topk_index", "topk_logprob"]

    def encode(self, z):
        z = getattr(z, "logits", z)
        if not isinstance(z, Tensor) or tuple(z.shape[1:]) != (self.seq_len, self.vocab_size):
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise MentorError(f"label store token_topk teacher outputs have shape {shape}; "
                              f"expected (batch, {self.seq_len}, {self.vocab_size}) logits as "
                              "declared (seq_len, vocab_size)")
        logp = torch.log_softmax(z.detach().float(), dim=-1)
        value, index = logp.topk(self.k, dim=-1)
        return {"topk_index": _fixed(index.int().cpu().numpy(), self.width, pa.int32()),
                "topk_logprob": _fixed(value.cpu().numpy(), self.width, pa.float32())}

    def decode(self, table):
        shape = (-1, self.seq_len, self.k)
        index = _unfixed(table.column("topk_index"), self.width, np.int64).reshape(shape)
        logp = _unfixed(table.column("topk_logprob"), self.width, np.float32).reshape(shape)
        return torch.from_numpy(index), torch.from_numpy(logp)

    def describe(self):
        return {"kind": self.name, "vocab_size": self.vocab_size, "seq_len": self.seq_len,
                "k": self.k}


def make_kind(kind: str, *, num_classes: int | None = None, k: int | None = None,
              temperature: float = 1.0, dtype: str = "float32",
              shape: tuple[int, ...] | None = None, vocab_size: int | None = None,
              seq_len: int | None = None) -> Kind:
    """A kind from its name and parameters (as given on the command line or the manifest).

    ``token_topk`` takes ``vocab_size`` (or ``num_classes``), ``seq_len`` and ``k``."""
    if kind == "logits":
        return FullLogits(num_classes, dtype)
    if kind == "topk":
        if k is None:
            raise MentorError("label store kind 'topk' needs k (--topk K)")
        return TopK(num_classes, k, temperature)
    if kind == "hard":
        return Hard(num_classes)
    if kind == "tensor":
        if shape is None:
            raise MentorError("label store kind 'tensor' needs the row shape")
        return Tensors(tuple(shape), dtype)
    if kind == "token_topk":
        vocab = vocab_size if vocab_size is not None else num_classes
        for field, value in (("vocab_size", vocab), ("seq_len", seq_len), ("k", k)):
            if value is None:
                raise MentorError(f"label store kind 'token_topk' needs {field}")
        return TokenTopK(vocab, seq_len, k)
    raise MentorError(f"label store kind {kind!r} is not supported; expected one of "
                      f"{', '.join(KIND_NAMES)}")


def kind_from_manifest(d: dict[str, Any]) -> Kind:
    return make_kind(d["kind"], num_classes=d.get("num_classes"), k=d.get("k"),
                     temperature=d.get("temperature", 1.0), dtype=d.get("dtype", "float32"),
                     shape=d.get("shape"), vocab_size=d.get("vocab_size"),
                     seq_len=d.get("seq_len"))
