"""Where a split's inputs come from: tensors in memory, or a map-style dataset read through
``torch.utils.data.DataLoader``.

Both are :class:`mentor.contracts.RowSource`: rows are known by a stable sample id (their
position ``0..n-1``), which is what the batch order, the label store, teacher caching,
per-sample augmentation draws and resume index by. The engine asks a source for the inputs
of a sequence of id batches (:meth:`batches`) and trains on them in that order, so a
DataLoader-fed run sees exactly the batches an in-memory run of the same data sees (same
seed, same order, same views) -- only where the bytes come from differs.

- :class:`TensorRows`: indexing a tensor (the fast path: no DataLoader, no worker, no
  collation; what a hand-written PyTorch loop over in-memory data costs).
- :class:`NamedRows`: named tensors in memory (``{"input_ids": ..., "attention_mask": ...}``);
  a batch is the dict of each tensor's rows, which the task passes to the model as keyword
  arguments (a Hugging Face model's inputs).
- :class:`DatasetRows`: ``dataset[i]`` for each id, read by DataLoader workers ahead of the
  step that needs them (``num_workers``, ``pin_memory``, ``prefetch_factor``); items are an
  input tensor or an ``(input, label, ...)`` tuple (the label is read from the split's ``y``,
  not from the item). Memory holds the batches in flight, not the data set.
- :class:`StreamRows`: a stream read front to back (a file, a generator, an
  ``IterableDataset``); row ``i`` is the stream's ``i``-th item. It has no random access, so
  its epoch order (:meth:`StreamRows.order`) shuffles rows only within windows of ``window``
  consecutive rows (a shuffle buffer, drawn by the engine's seeded generator), and the stream
  is read once per epoch holding at most two windows.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch import Tensor

from ..errors import MentorError

__all__ = ["DatasetRows", "NamedRows", "StreamRows", "TensorRows", "as_rows", "first_tensor",
           "head_rows", "read_chunks", "subset_rows"]


class TensorRows:
    """Inputs held as one tensor ``(N, ...)``; a batch is ``x[ids]``."""

    def __init__(self, x: Tensor):
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def in_memory(self) -> Tensor:
        """The inputs as one tensor (parts that read every input up front use it)."""
        return self.x

    random_access = True  # any row, in any order

    def to(self, device: Any) -> "TensorRows":
        return TensorRows(self.x.to(device))

    def order(self, generator: torch.Generator) -> Tensor:
        """An epoch's row order: a permutation of every row."""
        return torch.randperm(len(self.x), generator=generator)

    def take(self, ids: Tensor) -> Tensor:
        """Rows ``ids`` (1-D sample ids), gathered with ``index_select`` (the same values as
        ``x[ids]``; on CPU about half its cost for a batch of rows)."""
        return self.x.index_select(0, ids)

    def batches(self, ids: Iterable[Tensor]) -> Iterator[Tensor]:
        x = self.x
        for i in ids:
            yield x.index_select(0, i)

    def subset(self, ids: Tensor) -> "TensorRows":
        return TensorRows(self.x[ids])


class NamedRows:
    """Inputs as named tensors held in memory: ``{name: (N, ...)}``, every tensor with the same
    ``N`` rows (a tokenizer's ``input_ids`` and ``attention_mask``). A batch is
    ``{name: tensor[ids]}``; the task adapter calls the model with it as keyword arguments.
    Augmentations and mixers transform one input tensor, so a run on named inputs takes none."""

    random_access = True  # any row, in any order

    def __init__(self, x: dict[str, Tensor]):
        if not x:
            raise MentorError("named inputs need at least one tensor, got an empty dict; "
                              "expected {name: tensor of shape (rows, ...)}")
        sizes = {}
        for name, t in x.items():
            if not isinstance(name, str) or not isinstance(t, Tensor) or t.ndim == 0:
                raise MentorError(f"named input {name!r} is a {type(t).__name__}"
                                  f"{' of 0 dimensions' if isinstance(t, Tensor) else ''}; "
                                  "expected a tensor of shape (rows, ...) under a string name")
            sizes[name] = len(t)
        if len(set(sizes.values())) > 1:
            raise MentorError(f"named inputs have different row counts {sizes}; expected the "
                              "same number of rows in every tensor")
        self.x = dict(x)
        self.n = next(iter(sizes.values()))

    def __len__(self) -> int:
        return self.n

    @property
    def input_shape(self) -> tuple[int, ...]:
        """``()``: named inputs have no one row layout (no augmentation applies)."""
        return ()

    @property
    def in_memory(self) -> None:
        """``None``: the inputs are not one tensor (parts that read every input up front
        want one)."""
        return None

    def to(self, device: Any) -> "NamedRows":
        return NamedRows({k: v.to(device) for k, v in self.x.items()})

    def order(self, generator: torch.Generator) -> Tensor:
        """An epoch's row order: a permutation of every row."""
        return torch.randperm(self.n, generator=generator)

    def take(self, ids: Tensor) -> dict[str, Tensor]:
        return {k: v.index_select(0, ids) for k, v in self.x.items()}

    def batches(self, ids: Iterable[Tensor]) -> Iterator[dict[str, Tensor]]:
        for i in ids:
            yield self.take(i)

    def subset(self, ids: Tensor) -> "NamedRows":
        return NamedRows({k: v[ids] for k, v in self.x.items()})


def _input_of(item: Any) -> Tensor:
    x = item[0] if isinstance(item, (tuple, list)) else item
    if not isinstance(x, Tensor):
        x = torch.as_tensor(x)
    return x


def _collate_inputs(items: Sequence[Any]) -> Tensor:
    """A batch of ``dataset[i]`` items as one input tensor (module level: workers pickle it)."""
    return torch.stack([_input_of(item) for item in items])


def _item_label(item: Any) -> int:
    if not isinstance(item, (tuple, list)) or len(item) < 2:
        raise MentorError("a dataset item must be (input, label, ...) for its labels to be "
                          f"read, got {type(item).__name__}; expected tuples or labels=...")
    return int(item[1])


def _collate_labels(items: Sequence[Any]) -> Tensor:
    return torch.tensor([_item_label(item) for item in items], dtype=torch.long)


class _ReadRows:
    """What the sources that read their rows (rather than hold them) share: ``n`` rows of
    inputs of shape ``_shape``, delivered on ``device``; a subclass reads in :meth:`batches`."""

    n: int
    _shape: tuple[int, ...]
    device: torch.device

    def __len__(self) -> int:
        return self.n

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def in_memory(self) -> None:
        """``None``: the inputs are not held in memory."""
        return None

    def to(self, device: Any):
        moved = copy.copy(self)  # the same source and settings (no row is read again)
        moved.device = torch.device(device)
        return moved

    def take(self, ids: Tensor) -> Tensor:
        return next(self.batches([ids]))

    def batches(self, ids: Iterable[Tensor]) -> Iterator[Tensor]:
        raise NotImplementedError


class DatasetRows(_ReadRows):
    """A map-style dataset (``len`` and ``dataset[i]``) read through a DataLoader.

    ``num_workers`` processes read the rows of the next batches while the model trains on
    the current one (``prefetch_factor`` batches each); ``pin_memory`` pins them for a fast
    copy to a GPU. ``device``: where :meth:`batches` puts the inputs (set by :meth:`to`).
    Workers start for each pass (a training epoch, a validation), as a DataLoader created per
    epoch starts them: on a 2-core CPU that is a few tenths of a second per pass.
    """

    def __init__(self, dataset, *, num_workers: int = 0, pin_memory: bool = False,
                 prefetch_factor: int = 2, device: Any = None):
        try:
            n = len(dataset)
        except TypeError:
            raise MentorError(f"a {type(dataset).__name__} has no len(); expected a map-style "
                              "dataset (len() and dataset[i])") from None
        if n == 0:
            raise MentorError("the dataset is empty; expected at least one row")
        for name, v, low in (("num_workers", num_workers, 0),
                             ("prefetch_factor", prefetch_factor, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise MentorError(f"{name} {v!r} is not a count; expected an integer >= {low}")
        self.dataset, self.n = dataset, n
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.prefetch_factor = prefetch_factor
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self._shape = tuple(_input_of(dataset[0]).shape)

    random_access = True  # dataset[i] for any i

    # a take() of at most this many rows reads them in this process: starting workers for a
    # shape check (two rows) costs 0.1-0.2 s per fit on a 2-core CPU
    IN_PROCESS_ROWS = 8

    def order(self, generator: torch.Generator) -> Tensor:
        """An epoch's row order: a permutation of every row."""
        return torch.randperm(self.n, generator=generator)

    def take(self, ids: Tensor) -> Tensor:
        """Rows ``ids``: a few read here (the same values the workers would collate), more
        through the loader."""
        if len(ids) > self.IN_PROCESS_ROWS:
            return next(self.batches([ids]))
        return _collate_inputs([self.dataset[int(i)] for i in ids]).to(self.device)

    def _loader(self, ids: Iterable[Tensor], collate) -> torch.utils.data.DataLoader:
        extra = {"prefetch_factor": self.prefetch_factor} if self.num_workers else {}
        return torch.utils.data.DataLoader(
            self.dataset, batch_sampler=_IdBatches(ids), num_workers=self.num_workers,
            pin_memory=self.pin_memory and self.device.type != "cpu", collate_fn=collate,
            **extra)

    def batches(self, ids: Iterable[Tensor]) -> Iterator[Tensor]:
        non_blocking = self.pin_memory and self.device.type != "cpu"
        for x in self._loader(ids, _collate_inputs):
            yield x.to(self.device, non_blocking=non_blocking)

    def subset(self, ids: Tensor) -> "DatasetRows":
        """Rows ``ids`` (a ``Subset`` of the dataset), read with the same loader settings."""
        picked = torch.as_tensor(ids)
        if picked.dtype == torch.bool:
            picked = picked.nonzero().flatten()
        return DatasetRows(torch.utils.data.Subset(self.dataset, picked.tolist()),
                           num_workers=self.num_workers, pin_memory=self.pin_memory,
                           prefetch_factor=self.prefetch_factor, device=self.device)

    def labels(self, chunk: int = 1024) -> Tensor:
        """Every row's label (``dataset[i][1]``), read once through the loader."""
        ids = torch.arange(self.n).split(chunk)
        return torch.cat(list(self._loader(ids, _collate_labels)))


class _IdBatches:
    """A DataLoader batch sampler over given id batches, drawn lazily (the engine's draws
    are pure functions of seed and step, so drawing ahead changes nothing)."""

    def __init__(self, ids: Iterable[Tensor]):
        self.ids = ids

    def __iter__(self) -> Iterator[list[int]]:
        for i in self.ids:
            yield i.tolist()


class StreamRows(_ReadRows):
    """Rows read front to back from ``open()``, an iterable of input tensors or
    ``(input, label, ...)`` tuples in a fixed order (opened anew for every pass), ``n`` rows.

    An epoch's order keeps windows of ``window`` consecutive rows in place and shuffles each
    window (``window >= n``: a full shuffle, holding every row); :meth:`batches` reads the
    stream once, keeping only the rows of the windows in use. Under several processes each
    reads the stream and keeps only the rows of its share of each batch.
    """

    def __init__(self, open: Callable[[], Iterable[Any]], n: int, *, window: int = 4096,
                 device: Any = None):
        if not callable(open):
            raise MentorError(f"open {open!r} is not callable; expected a function that returns "
                              "an iterable of the stream's rows")
        for name, v in (("n", n), ("window", window)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise MentorError(f"{name} {v!r} is not a count; expected an integer >= 1")
        self.open, self.n, self.window = open, n, window
        self.device = torch.device("cpu") if device is None else torch.device(device)
        first = next(iter(open()), None)
        if first is None:
            raise MentorError("the stream is empty; expected at least one row")
        self._shape = tuple(_input_of(first).shape)

    random_access = False  # read front to back, once per pass

    def order(self, generator: torch.Generator) -> Tensor:
        """Each window of ``window`` consecutive rows shuffled in place."""
        return torch.cat([start + torch.randperm(min(self.window, self.n - start),
                                                 generator=generator)
                          for start in range(0, self.n, self.window)])

    def _items(self) -> Iterator[Any]:
        count = 0
        for item in self.open():
            if count == self.n:
                return
            yield item
            count += 1
        if count < self.n:
            raise MentorError(f"the stream ended after {count} rows; expected {self.n}, as its "
                              "n says")

    def batches(self, ids: Iterable[Tensor]) -> Iterator[Tensor]:
        items, held, read, dropped = self._items(), {}, 0, 0
        for batch in ids:
            wanted = batch.tolist()
            if not wanted:
                yield torch.empty(0, *self._shape)
                continue
            lowest = min(wanted)
            if lowest < dropped:
                raise MentorError(f"row {lowest} of a stream was asked for after its window had "
                                  "passed; expected ids in the stream's window order")
            while read <= max(wanted):
                held[read] = _input_of(next(items))
                read += 1
            keep_from = lowest - lowest % self.window  # earlier windows are done
            for i in range(dropped, keep_from):
                held.pop(i, None)
            dropped = max(dropped, keep_from)
            yield torch.stack([held[i] for i in wanted]).to(self.device)

    def subset(self, ids: Tensor) -> "StreamRows":
        raise MentorError("a stream has no random access, so a subset of its rows cannot be "
                          "read; expected an in-memory or map-style source for a method that "
                          "takes some rows apart (a teacher's labeled rows, a data selection)")

    def labels(self) -> Tensor:
        """Every row's label (``item[1]``), read in one pass."""
        return torch.tensor([_item_label(item) for item in self._items()], dtype=torch.long)


def as_rows(x) -> TensorRows | NamedRows | DatasetRows | StreamRows:
    """A split's ``x`` as a row source (a tensor becomes :class:`TensorRows`, a dict of
    tensors :class:`NamedRows`)."""
    if isinstance(x, (TensorRows, NamedRows, DatasetRows, StreamRows)):
        return x
    if isinstance(x, Tensor):
        return TensorRows(x)
    if isinstance(x, dict):
        return NamedRows(x)
    raise MentorError(f"training inputs of type {type(x).__name__} are not supported; "
                      "expected a tensor, a dict of named tensors, mentor.data.DatasetRows or "
                      "mentor.data.StreamRows")



def subset_rows(x, ids: Tensor):
    """Rows ``ids`` (indices or a boolean mask) of a split's ``x``: a tensor or a row source."""
    return x[ids] if isinstance(x, Tensor) else as_rows(x).subset(ids)


def head_rows(x, limit: int):
    """A split's inputs held in memory: a tensor as it is, a row source's first ``limit``
    rows read (what a latency measurement or an export's parity check runs on)."""
    if isinstance(x, Tensor):
        return x
    rows = as_rows(x)
    return rows.take(torch.arange(min(len(rows), limit)))


def first_tensor(inputs: Tensor | dict[str, Tensor]) -> Tensor:
    """A batch's inputs as one tensor, or its first named tensor: its rows and device are the
    batch's."""
    return next(iter(inputs.values())) if type(inputs) is dict else inputs


def read_chunks(rows, lo: int, hi: int, chunk: int = 4096) -> Iterator[tuple[Tensor, Tensor]]:
    """Rows ``[lo, hi)`` of a row source in one pass, as ``(ids, inputs)`` of at most
    ``chunk`` rows (a teacher's cached outputs, a validation). Rows held in memory are read
    as slices (views of the tensor, no copy)."""
    ids = list(torch.arange(lo, hi).split(chunk))
    if isinstance(rows, TensorRows):
        return zip(ids, (rows.x[a:min(a + chunk, hi)] for a in range(lo, hi, chunk)))
    return zip(ids, rows.batches(ids))
