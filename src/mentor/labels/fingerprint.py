"""Fingerprints that tie a label store to the teacher and the data that produced it."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch
from torch import Tensor


def _update_tensor(h, t: Tensor) -> None:
    t = t.detach().cpu().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.view(torch.uint8).numpy() if t.numel() else b"")  # buffer protocol: no copy


def data_fingerprint(x: Tensor) -> dict[str, Any]:
    """sha256 of the inputs' values, dtype and shape (the labels play no part)."""
    h = hashlib.sha256()
    _update_tensor(h, x)
    return {"sha256": h.hexdigest(), "rows": int(len(x)), "shape": list(x.shape[1:])}


def teacher_fingerprint(teacher, probe: Tensor | None = None) -> dict[str, Any]:
    """A module teacher: sha256 of its weights (names, dtypes, shapes, values) plus its
    architecture (the module's printed structure). Other teachers (committees, scikit-learn
    models): sha256 of their outputs on ``probe`` rows, a behavioural fingerprint."""
    modules = _modules(teacher)
    if modules:
        h = hashlib.sha256()
        arch = []
        for m in modules:
            arch.append(repr(m))
            for name, t in sorted(m.state_dict().items()):
                h.update(name.encode())
                _update_tensor(h, t)
        a = hashlib.sha256("\n".join(arch).encode()).hexdigest()
        return {"method": "weights", "sha256": h.hexdigest(), "architecture": a,
                "description": getattr(teacher, "description", type(teacher).__name__)}
    if probe is None:
        raise ValueError("a teacher without modules is fingerprinted by its outputs; pass probe")
    with torch.no_grad():
        z = teacher.logits(probe).float()
    h = hashlib.sha256()
    _update_tensor(h, torch.from_numpy(np.round(z.cpu().numpy(), 5)))
    return {"method": "outputs", "sha256": h.hexdigest(),
            "description": getattr(teacher, "description", type(teacher).__name__)}


def _modules(teacher) -> list[torch.nn.Module]:
    if isinstance(teacher, torch.nn.Module):
        return [teacher]
    module = getattr(teacher, "module", None)
    if isinstance(module, torch.nn.Module):
        return [module]
    return [m for member in getattr(teacher, "members", []) or [] for m in _modules(member)]


def same(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Whether two fingerprints name the same teacher / data (descriptions aside)."""
    if a is None or b is None:
        return False
    keys = ("method", "sha256", "architecture", "rows", "shape")
    return all(a.get(k) == b.get(k) for k in keys)
