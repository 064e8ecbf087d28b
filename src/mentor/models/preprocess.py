"""The input standardization a run applied, carried by an exported student.

A run standardizes each input feature with the training split's mean and std
(``Splits.mean`` / ``Splits.std``, flat ``(features,)``; per channel for image folders,
repeated over each channel's pixels). The student learns on ``(x - mean) / std``;
:class:`Standardized` puts that step in front of it, so that an exported model takes the raw
rows. Two metadata records, both JSON in a safetensors file:

- ``mentor.standardization`` (a run's student checkpoint, or an export made with
  ``--standardized-input``): the statistics the model's inputs must be standardized with;
  the model itself does not standardize.
- ``mentor.preprocess`` (an exported student that carries its standardization):
  ``{"kind": "standardize", "mean", "std", ...}``; :func:`rebuild` wraps the module built
  from the file in :class:`Standardized`. The wrapper's buffers are not saved with the
  weights (the statistics live in the metadata), so the file's tensors are those of the bare
  student.

Either record is ``{"mean": [...], "std": [...], "per": "feature" | "channel"}``: per
channel (``C`` values for an input shape ``(C, H, W)``) when every channel's statistics are
the same over its pixels, else one value per feature.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import MentorError

STATS_KEY = "mentor.standardization"
PREPROCESS_KEY = "mentor.preprocess"


class Standardized(nn.Module):
    """``module((x - mean) / std)`` for flat rows ``x`` ``(batch, features)``; ``mean`` and
    ``std`` are float32 buffers ``(features,)`` (not part of the state dict)."""

    def __init__(self, module: nn.Module, mean, std):
        super().__init__()
        self.module = module
        mean = torch.as_tensor(np.asarray(mean, dtype=np.float32)).reshape(-1)
        std = torch.as_tensor(np.asarray(std, dtype=np.float32)).reshape(-1)
        if mean.shape != std.shape:
            raise MentorError(f"standardization mean has {mean.numel()} values and std "
                              f"{std.numel()}; expected one of each per feature")
        self.register_buffer("mean", mean.clone(), persistent=False)
        self.register_buffer("std", std.clone(), persistent=False)

    def forward(self, x: Tensor):
        return self.module((x - self.mean) / self.std)


def standardization_record(mean, std, input_shape: Sequence[int]) -> dict[str, Any]:
    """The JSON record of flat statistics ``mean`` / ``std`` (per channel when each channel's
    values are constant over its pixels)."""
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    std = np.asarray(std, dtype=np.float64).reshape(-1)
    shape = [int(n) for n in input_shape]
    if len(shape) >= 2 and math.prod(shape) == len(mean):
        m, s = mean.reshape(shape[0], -1), std.reshape(shape[0], -1)
        if (m == m[:, :1]).all() and (s == s[:, :1]).all():
            return {"per": "channel", "mean": [float(v) for v in m[:, 0]],
                    "std": [float(v) for v in s[:, 0]]}
    return {"per": "feature", "mean": [float(v) for v in mean],
            "std": [float(v) for v in std]}


def flat_statistics(record: Any, input_shape: Sequence[int],
                    field: str = "checkpoint") -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)`` float32 ``(features,)`` of a :func:`standardization_record` (checked:
    finite numbers, positive std, as many as the features or channels)."""
    shape = [int(n) for n in input_shape]
    features = math.prod(shape)

    def bad(expected: str) -> MentorError:
        text = repr(record)
        return MentorError(f"{field}: standardization metadata "
                           f"{text if len(text) <= 80 else text[:77] + '...'}; expected "
                           f"{expected} (the metadata mentor writes)")
    if not isinstance(record, dict) or record.get("per", "feature") not in ("feature",
                                                                             "channel"):
        raise bad("an object with mean, std and per: feature or channel")
    values = []
    for key in ("mean", "std"):
        v = record.get(key)
        if not (isinstance(v, list) and all(isinstance(a, (int, float))
                                            and not isinstance(a, bool) for a in v)):
            raise bad(f"a list of numbers as {key}")
        values.append(np.asarray(v, dtype=np.float64))
    mean, std = values
    n = shape[0] if record.get("per") == "channel" else features
    if len(mean) != n or len(std) != n:
        raise bad(f"{n} values of mean and std (input shape {shape}, per "
                  f"{record.get('per', 'feature')})")
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise bad("finite means and positive stds")
    if record.get("per") == "channel":
        mean, std = np.repeat(mean, features // n), np.repeat(std, features // n)
    return mean.astype(np.float32), std.astype(np.float32)


def for_export(module: nn.Module, mean, std,
               input_shape: Sequence[int]) -> tuple[nn.Module, dict[str, Any]]:
    """``(Standardized(module, mean, std), its mentor.preprocess record)``; the record holds
    the float32 values the wrapper computes with."""
    mean, std = np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)
    record = {"kind": "standardize", **standardization_record(mean, std, input_shape),
              "apply": "module((x - mean) / std), x flat rows (batch, features)"}
    return Standardized(module, *flat_statistics(record, input_shape)), record


def rebuild(module: nn.Module, record: Any, input_shape: Sequence[int],
            field: str = "checkpoint") -> nn.Module:
    """The inverse of :func:`for_export`: wrap the module built from a file as saved."""
    if record is None:
        return module
    if not isinstance(record, dict) or record.get("kind") != "standardize":
        raise MentorError(f"{field}: unknown {PREPROCESS_KEY} {record!r:.80} in the metadata; "
                          "expected {'kind': 'standardize', 'mean', 'std', ...} or none")
    return Standardized(module, *flat_statistics(record, input_shape, field))


__all__ = ["PREPROCESS_KEY", "STATS_KEY", "Standardized", "flat_statistics", "for_export",
           "rebuild", "standardization_record"]
