"""Privileged-input teachers: the teacher sees more than the student (METHODS.md §59.5).

The student is trained on ``x``; the teacher is evaluated on ``privileged_fn(x, extra_rows)``
where ``extra_rows`` is per-sample information the student never receives: the (noised)
label map of LAD (paper 1), object points (Point-DETR3D, 36), an evidence crop (Vision-OPD,
52), a wider-baseline view (S³, 53), a text message (Vision Wormhole, 55). The engine passes
the training-split positions of each batch to :meth:`PrivilegedInputTeacher.logits_at`, so
``extra`` is simply a tensor aligned with the training rows.

With ``share_weights=True`` the teacher *is* the student network evaluated on the privileged
input (a self-teacher, papers 52/53): its outputs change at every optimizer step, so they must
never be cached -- such a teacher has ``cacheable = False``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..errors import MentorError, check_param

PrivilegedFn = Callable[[Tensor, Any], Tensor]


class PrivilegedInputTeacher:
    """A teacher fed ``privileged_fn(x, extra[index])`` while the student is fed ``x``.

    ``module``: the teacher network (frozen, evaluated in eval mode), taking whatever
    ``privileged_fn`` returns. ``privileged_fn(x, extra_rows)``: builds the teacher's input
    from the batch and its rows of ``extra`` (``None`` when ``extra`` is None or when called
    outside training, see below). ``extra``: a tensor whose row ``i`` belongs to row ``i`` of
    the *training* split (e.g. the training labels for :func:`label_channel`), or ``None``.

    Training (the engine): :meth:`logits_at` computes
    ``module(privileged_fn(x, extra[index]))``. Without training positions (:meth:`logits`,
    e.g. on validation or test data) there are no extra rows, so ``privileged_fn(x, None)`` is
    called: a ``privileged_fn`` that can build an input without the extra information (e.g. a
    zero channel) makes the teacher usable anywhere; one that cannot (such as
    :func:`label_channel`) makes :meth:`logits` raise a :class:`~mentor.errors.MentorError`.

    ``share_weights=True`` (pass ``student=``; ``module`` may then be None or the student):
    the teacher evaluates the student's *current* weights on the privileged input, in eval
    mode and without gradients, restoring the student's train/eval mode afterwards. Its
    outputs change every step, so ``cacheable`` is False and ``frozen`` is False; run such a
    teacher with ``train.cache_teacher="never"`` until the engine honours ``cacheable``.
    Gradients never flow through the teacher path.
    """

    def __init__(self, module: nn.Module | None, num_classes: int, privileged_fn: PrivilegedFn,
                 extra: Tensor | None = None, share_weights: bool = False,
                 student: nn.Module | None = None):
        if not callable(privileged_fn):
            raise MentorError(f"PrivilegedInputTeacher privileged_fn of type "
                              f"{type(privileged_fn).__name__} is not callable; expected a "
                              "function (x, extra_rows) -> teacher input")
        check_param("PrivilegedInputTeacher", "num_classes", num_classes, low=1)
        if extra is not None:
            if not isinstance(extra, Tensor):
                raise MentorError(f"PrivilegedInputTeacher extra of type {type(extra).__name__} "
                                  "is not supported; expected a tensor aligned with the "
                                  "training rows, or None")
            if extra.ndim == 0:
                raise MentorError("PrivilegedInputTeacher extra is a scalar tensor; expected one "
                                  "row per training sample")
        if share_weights:
            if student is None:
                raise MentorError("PrivilegedInputTeacher share_weights=True needs the student "
                                  "module (student=...), got None")
            if module is not None and module is not student:
                raise MentorError("PrivilegedInputTeacher module must be None or the student "
                                  "itself when share_weights=True, got a different module")
            module = student
        else:
            if student is not None:
                raise MentorError("PrivilegedInputTeacher student is only used with "
                                  "share_weights=True; pass the teacher network as module")
            if not isinstance(module, nn.Module):
                raise MentorError(f"PrivilegedInputTeacher module of type "
                                  f"{type(module).__name__} is not a torch module; expected the "
                                  "teacher network (or share_weights=True with student=...)")
            module.eval()
            for p in module.parameters():
                p.requires_grad_(False)
        self.module = module
        self.num_classes = int(num_classes)
        self.privileged_fn = privileged_fn
        self.extra = extra
        self.share_weights = bool(share_weights)
        # a shared-weights teacher changes with every optimizer step of the student
        self.cacheable = not self.share_weights
        self.frozen = not self.share_weights
        name = getattr(privileged_fn, "__name__", type(privileged_fn).__name__)
        who = "self-teacher (shared weights)" if share_weights else type(module).__name__
        self.description = f"privileged-input {who} via {name}"

    # ----------------------------------------------------------------------------- inputs

    def extra_rows(self, index: Tensor | None) -> Tensor | None:
        """The rows of ``extra`` for training positions ``index`` (None without either)."""
        if self.extra is None or index is None:
            return None
        index = torch.as_tensor(index).to(self.extra.device).long()
        n = len(self.extra)
        if index.numel() and (int(index.max()) >= n or int(index.min()) < -n):
            bad = int(index.max()) if int(index.max()) >= n else int(index.min())
            raise MentorError(f"PrivilegedInputTeacher extra has {n} rows but training position "
                              f"{bad} was asked for; expected extra aligned with the training "
                              "split rows")
        return self.extra[index]

    def privileged_input(self, x: Tensor, index: Tensor | None = None) -> Tensor:
        """What the teacher sees for batch ``x``: ``privileged_fn(x, extra[index])``."""
        rows = self.extra_rows(index)
        if rows is not None:
            rows = rows.to(x.device)
        return self.privileged_fn(x, rows)

    # ---------------------------------------------------------------------------- outputs

    def _forward(self, inp: Tensor, b: int) -> Tensor:
        with torch.no_grad():
            if self.share_weights:
                was = self.module.training
                self.module.eval()
                try:
                    z = self.module(inp)
                finally:
                    self.module.train(was)
            else:
                z = self.module(inp)
        if z.ndim != 2 or tuple(z.shape) != (b, self.num_classes):
            raise MentorError(f"PrivilegedInputTeacher module returned shape {tuple(z.shape)} "
                              f"for {b} samples; expected ({b}, {self.num_classes})")
        return z

    def logits_at(self, x: Tensor, index: Tensor) -> Tensor:
        """Teacher logits for rows ``index``: ``module(privileged_fn(x, extra[index]))``."""
        with torch.no_grad():
            return self._forward(self.privileged_input(x, index), len(x))

    def logits_with(self, x: Tensor, extra_rows: Tensor) -> Tensor:
        """Teacher logits for ``x`` with explicit privileged rows (e.g. the test labels, to
        score a label-assisted teacher outside the training split)."""
        with torch.no_grad():
            return self._forward(self.privileged_fn(x, torch.as_tensor(extra_rows)
                                                    .to(x.device)), len(x))

    def logits(self, x: Tensor) -> Tensor:
        """Teacher logits without training positions: ``module(privileged_fn(x, None))``."""
        with torch.no_grad():
            try:
                inp = self.privileged_fn(x, None)
            except MentorError:
                raise
            except Exception as e:
                raise MentorError(f"PrivilegedInputTeacher.logits has no training positions, so "
                                  f"privileged_fn was called with extra=None and failed "
                                  f"({type(e).__name__}: {e}); expected a privileged_fn that "
                                  "accepts None, or use logits_at(x, index) on training rows"
                                  ) from e
            return self._forward(inp, len(x))

    def to(self, device) -> "PrivilegedInputTeacher":
        self.module.to(device)
        if self.extra is not None:
            self.extra = self.extra.to(device)
        return self

    def train(self, mode: bool = True):  # a frozen teacher stays in eval mode
        return self


def label_channel(num_classes: int, noise: float = 0.0, seed: int = 0) -> PrivilegedFn:
    """A ``privileged_fn`` for label-assisted distillation (LAD, METHODS.md §1).

    ``code`` is the one-hot of ``y_rows`` (``num_classes`` values per row) plus Gaussian noise
    of standard deviation ``noise`` (drawn from a generator seeded with ``seed``; fresh noise
    at each call), so the label is a noisy hint rather than the answer. Rows with a negative
    label (unknown) get an all-zero code plus noise. For vector inputs ``(B, F)``, ``fn(x,
    y_rows)`` returns ``cat([x, code], dim=1)`` and the teacher network takes ``F +
    num_classes`` inputs (e.g. ``mlp((64 + 10,), 10)`` for digits). For inputs with spatial
    dimensions ``(B, C, *S)`` the code is broadcast over ``S`` as ``num_classes`` extra
    channels -- LAD's label map appended as input channels -- and the teacher takes
    ``(C + num_classes, *S)``. Use it with
    ``PrivilegedInputTeacher(..., extra=train_labels)``. Without labels (``y_rows`` None, i.e.
    :meth:`PrivilegedInputTeacher.logits`) it raises :class:`~mentor.errors.MentorError`: a
    label-assisted teacher only exists on training rows.
    """
    check_param("label_channel", "num_classes", num_classes, low=1)
    check_param("label_channel", "noise", noise, low=0)
    c = int(num_classes)
    gen = torch.Generator().manual_seed(int(seed))

    def label_code(x: Tensor, y_rows: Tensor | None) -> Tensor:
        if y_rows is None:
            raise MentorError("label_channel needs the label rows of the batch but got None "
                              "(no training positions); expected the teacher to be used only "
                              "on training rows via logits_at")
        b = len(x)
        y = torch.as_tensor(y_rows, device=x.device).reshape(-1)
        if len(y) != b or y.is_floating_point():
            raise MentorError(f"label_channel labels have shape {tuple(y_rows.shape)} and dtype "
                              f"{y.dtype}; expected {b} integer labels, one per row")
        y = y.long()
        if y.numel() and int(y.max()) >= c:
            raise MentorError(f"label_channel label {int(y.max())} is out of range; expected "
                              f"0..{c - 1} (or negative for unknown)")
        dtype = x.dtype if x.is_floating_point() else torch.float32
        code = torch.zeros(b, c, dtype=dtype, device=x.device)
        known = y >= 0
        code[known, y[known]] = 1.0
        if noise > 0:
            code = code + noise * torch.randn(b, c, generator=gen).to(device=x.device,
                                                                       dtype=dtype)
        x = x.to(dtype)
        if x.ndim <= 2:
            return torch.cat([x.reshape(b, -1), code], dim=1)
        spatial = x.shape[2:]
        code = code.reshape(b, c, *([1] * len(spatial))).expand(b, c, *spatial)
        return torch.cat([x, code], dim=1)

    label_code.__name__ = f"label_channel({c}, noise={noise:g})"
    return label_code
