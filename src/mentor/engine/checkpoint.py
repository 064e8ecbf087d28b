"""Checkpoints: weights as safetensors (never pickle) and an exact-resume training state.

The training state is two files written atomically: ``state.safetensors`` (optimizer
tensors, RNG states, the epoch's data order) and ``state.json`` (everything else: step,
epoch, optimizer hyper-parameters, scheduler, best validation score).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import random
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..atomic import atomic_write, atomic_write_text
from ..errors import CheckpointError


def save_weights(path: Path, model: nn.Module, metadata: dict[str, Any] | None = None) -> None:
    """Save ``model``'s state dict as safetensors; ``metadata`` values are stored as JSON."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {k: json.dumps(v) for k, v in (metadata or {}).items()}
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata=meta))


# Leading bytes of files that torch.save / pickle write: a zip archive (torch >= 1.6) or a
# pickle stream (protocol 2+). Such files are refused without being read any further.
_PICKLE_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def read_safetensors(path: Path, field: str = "checkpoint") -> tuple[dict[str, torch.Tensor],
                                                                     dict[str, Any]]:
    """Tensors and decoded metadata of a safetensors file; anything else is refused unread."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{field}: file '{path}' does not exist")
    if path.is_dir():
        raise CheckpointError(f"{field}: '{path}' is a directory; expected a .safetensors file")
    try:
        with open(path, "rb") as f:
            head = f.read(9)
        size = path.stat().st_size
    except OSError as e:
        raise CheckpointError(f"{field}: cannot read '{path}' ({e.strerror})") from None
    # safetensors: an 8-byte little-endian header length, then the JSON header. Its length
    # bytes can look like a pickle opcode (a 640-byte header starts 0x80 0x02), so the pickle
    # test applies only to files without a plausible safetensors header. Either way nothing
    # is ever unpickled: safetensors parsing executes no code.
    looks_safetensors = (len(head) == 9 and head[8:9] == b"{"
                         and 8 + int.from_bytes(head[:8], "little") <= size)
    if not looks_safetensors and head.startswith(_PICKLE_MAGIC):
        raise CheckpointError(f"{field}: '{path}' is a pickle / torch.save file, not a "
                              "safetensors file; mentor never unpickles checkpoints, expected a "
                              "safetensors file (save with safetensors.torch.save_file)")
    if size == 0:
        raise CheckpointError(f"{field}: '{path}' is empty (0 bytes); expected a safetensors "
                              "file")
    promised = _promised_size(path, head, size)
    if promised is not None and promised > size:
        raise CheckpointError(f"{field}: '{path}' is truncated: its safetensors header promises "
                              f"{promised} bytes but the file has {size}; expected the complete "
                              "file (copy or save it again)")
    try:
        from safetensors import safe_open
        with safe_open(str(path), framework="pt") as f:
            raw_meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{field}: '{path}' is not a safetensors file ({e}); mentor loads "
                              "weights only from safetensors, never from pickle") from None
    meta = {}
    for k, v in raw_meta.items():
        try:
            meta[k] = json.loads(v)
        except (TypeError, ValueError):
            meta[k] = v
    return tensors, meta


def _promised_size(path: Path, head: bytes, size: int) -> int | None:
    """The file size a safetensors header promises (8 + header + tensor data), or None when
    the file does not start like one or its header cannot be read."""
    if len(head) < 9 or head[8:9] != b"{":
        return None
    n = int.from_bytes(head[:8], "little")
    if n > 100_000_000:  # over safetensors' own limit on the header: not a header length
        return None
    if 8 + n > size:
        return 8 + n  # the header itself is cut
    try:
        with open(path, "rb") as f:
            f.seek(8)
            header = json.loads(f.read(n))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    return 8 + n + max(ends, default=0)


def load_weights(path: Path, model: nn.Module, field: str = "checkpoint") -> dict[str, Any]:
    """Load safetensors weights into ``model`` after checking names and shapes; return metadata."""
    tensors, meta = read_safetensors(path, field)
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    extra = [k for k in tensors if k not in expected]
    if missing or extra:
        what = (f"lacks tensor {missing[0]!r}" if missing
                else f"has unexpected tensor {extra[0]!r}")
        raise CheckpointError(f"{field}: '{path}' {what}; expected the tensors of the model "
                              f"({len(expected)} tensors, first {next(iter(expected))!r})")
    for k, v in expected.items():
        if tuple(tensors[k].shape) != tuple(v.shape):
            raise CheckpointError(f"{field}: tensor {k!r} in '{path}' has shape "
                                  f"{list(tensors[k].shape)} but the model expects {list(v.shape)}")
    model.load_state_dict({k: t.to(expected[k].dtype) for k, t in tensors.items()})
    return meta


# ------------------------------------------------------------------------- training state

def save_state(directory: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer,
               scheduler, generator: torch.Generator, order: torch.Tensor,
               extra_tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
    """Everything needed to continue training bit-for-bit, in ``directory``.

    Each checkpoint is a new sub-folder ``ckpt-<step>`` (model, state tensors, then
    ``state.json`` last, each written atomically); only when it is complete does the pointer
    file ``LATEST`` (replaced atomically) name it, and older sub-folders are removed after
    that. A process killed at any point leaves ``LATEST`` naming a complete checkpoint (or no
    ``LATEST``: no checkpoint yet).
    """
    directory = Path(directory)
    sub = directory / f"ckpt-{int(info.get('step', 0)):09d}-{int(info.get('epoch', 0)):05d}"
    if sub.exists():  # a write of the same step that was interrupted, or a re-save
        shutil.rmtree(sub)
    _write_state(sub, model=model, optimizer=optimizer, scheduler=scheduler,
                 generator=generator, order=order, extra_tensors=extra_tensors, info=info)
    _fault_injection()
    atomic_write_text(directory / LATEST, sub.name + "\n")
    for old in directory.glob("ckpt-*"):
        if old.name != sub.name:
            shutil.rmtree(old, ignore_errors=True)


LATEST = "LATEST"
_WRITES = [0]


def _fault_injection() -> None:
    """Fault injection for the crash tests: with ``MENTOR_KILL_IN_CHECKPOINT=N`` the process
    SIGKILLs itself during its N-th checkpoint write, after the new checkpoint's files and
    before the pointer names it (the moment a non-atomic scheme would corrupt the state)."""
    n = os.environ.get("MENTOR_KILL_IN_CHECKPOINT")
    if not n:
        return
    _WRITES[0] += 1
    if _WRITES[0] == int(n):
        os.kill(os.getpid(), signal.SIGKILL)


def latest_state(directory: Path) -> Path | None:
    """The folder of the newest complete checkpoint under ``directory`` (None if none)."""
    pointer = Path(directory) / LATEST
    if not pointer.is_file():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    sub = Path(directory) / name
    if not name.startswith("ckpt-") or "/" in name or not (sub / "state.json").is_file():
        raise CheckpointError(f"resume: '{pointer}' names {name!r}, which holds no complete "
                              "checkpoint; expected the folder of the last checkpoint")
    return sub


def _write_state(directory: Path, *, model, optimizer, scheduler, generator, order,
                 extra_tensors, info) -> None:
    save_weights(directory / "model.safetensors", model)
    opt = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    opt_scalars: dict[str, dict[str, Any]] = {}
    for pid, st in opt["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{pid}.{k}"] = v.detach().contiguous().cpu()
            else:
                opt_scalars.setdefault(str(pid), {})[k] = v
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.generator"] = generator.get_state()
    tensors["data.order"] = order.cpu()
    for k, v in extra_tensors.items():
        tensors[f"extra.{k}"] = v.detach().contiguous().cpu()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    atomic_write(directory / "state.safetensors", lambda tmp: save_file(tensors, tmp))
    py_state = random.getstate()
    state = {
        "format": "mentor-state-1",
        "optimizer": {"param_groups": opt["param_groups"], "scalars": opt_scalars,
                      "tensor_ids": sorted({int(k.split(".")[1]) for k in tensors
                                            if k.startswith("optim.")})},
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng_python": [py_state[0], list(py_state[1]), py_state[2]],
        **info,
    }
    atomic_write_text(directory / "state.json", json.dumps(state, indent=1))


def load_state(directory: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer,
               scheduler, generator: torch.Generator) -> tuple[dict[str, Any], torch.Tensor,
                                                              dict[str, torch.Tensor]]:
    """Restore what :func:`save_state` wrote; return ``(info, order, extra_tensors)``."""
    found = latest_state(Path(directory))
    if found is None:
        raise CheckpointError(f"resume: '{directory}' holds no complete checkpoint "
                              f"({LATEST} missing)")
    directory = found
    info_path = directory / "state.json"
    try:
        state = json.loads(info_path.read_text())
    except ValueError as e:
        raise CheckpointError(f"resume: '{info_path}' is not valid JSON ({e})") from None
    if state.get("format") != "mentor-state-1":
        raise CheckpointError(f"resume: '{info_path}' has format {state.get('format')!r}; "
                              "expected 'mentor-state-1'")
    load_weights(directory / "model.safetensors", model, field="resume")
    tensors, _ = read_safetensors(directory / "state.safetensors", field="resume")
    per_param: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            per_param.setdefault(int(pid), {})[name] = v
    for pid, scalars in state["optimizer"]["scalars"].items():
        per_param.setdefault(int(pid), {}).update(scalars)
    optimizer.load_state_dict({"state": per_param,
                               "param_groups": state["optimizer"]["param_groups"]})
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    generator.set_state(tensors["rng.generator"])
    if torch.cuda.is_available():
        cuda = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count())
                if f"rng.cuda.{i}" in tensors]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)
    v, s, g = state["rng_python"]
    random.setstate((v, tuple(s), g))
    extra = {k[len("extra."):]: t for k, t in tensors.items() if k.startswith("extra.")}
    return state, tensors["data.order"], extra
