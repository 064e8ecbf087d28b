"""Checkpoints: weights as safetensors (never pickle) and an exact-resume training state.

The training state of a checkpoint folder is two files, each written atomically:
``ckpt-<step>-<epoch>.safetensors`` (the model, optimizer tensors, RNG states, the epoch's
data order, refiner/updater state) and ``state.json`` (everything else: step, epoch,
optimizer hyper-parameters, scheduler, best validation score), which is written last and is
the pointer: it names the tensor file with its size and CRC-32 and carries a sha256 checksum
of itself. Only the latest state is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import signal
import zlib
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .._util.atomic import atomic_path, atomic_write, atomic_write_text
from ..errors import CheckpointError
from .._util.safeio import MAX_JSON_BYTES, FileProblem, open_regular, read_bounded, shown


def unshared(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``tensors`` with every tensor that shares memory with an earlier one copied: safetensors
    refuses shared tensors, which tied weights are (a language model's input embedding and
    output head); loading writes the same values into the tied parameter twice."""
    seen: set[tuple] = set()
    out = {}
    for k, v in tensors.items():
        key = (v.untyped_storage().data_ptr(), v.device.type)
        out[k] = v.clone() if key in seen and v.numel() else v
        seen.add(key)
    return out


def save_weights(path: Path, model: nn.Module, metadata: dict[str, Any] | None = None) -> None:
    """Save ``model``'s state dict as safetensors; ``metadata`` values are stored as JSON."""
    tensors = unshared({k: v.detach().contiguous().cpu()
                        for k, v in model.state_dict().items()})
    meta = {k: json.dumps(v) for k, v in (metadata or {}).items()}
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata=meta))


# Leading bytes of files that torch.save / pickle write: a zip archive (torch >= 1.6) or a
# pickle stream (protocol 2+). Such files are refused without being read any further.
_PICKLE_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


# dtypes a checkpoint may hold: real weights, integer buffers and masks, bool flags
SUPPORTED_DTYPES = {torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64,
                    torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool}


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a finite JSON number")


def _decode_meta(v: str):
    """A metadata value as JSON (NaN / Infinity refused), else the string itself."""
    try:
        return json.loads(v, parse_constant=_reject_constant)
    except (TypeError, ValueError, RecursionError):
        return _NotJson(v)


class _NotJson(str):
    """A metadata value that is not (finite) JSON: kept as the raw string."""


def read_safetensors(path: Path, field: str = "checkpoint") -> tuple[dict[str, torch.Tensor],
                                                                     dict[str, Any]]:
    """Tensors and decoded metadata of a safetensors file; anything else is refused unread
    (a pickle, a FIFO or device, a truncated file, tensors of an unsupported dtype)."""
    path = Path(path)
    try:
        with open_regular(path, what="a .safetensors file") as f:
            head = f.read(9)
            size = os.fstat(f.fileno()).st_size
    except FileProblem as e:
        if e.reason == "missing":
            raise CheckpointError(f"{field}: file {shown(path)} does not exist") from None
        if e.reason == "directory":
            raise CheckpointError(f"{field}: {shown(path)} is a directory; expected a "
                                  ".safetensors file") from None
        raise CheckpointError(f"{field}: {e}") from None
    except OSError as e:
        raise CheckpointError(f"{field}: cannot read {shown(path)} ({e.strerror})") from None
    # safetensors: an 8-byte little-endian header length, then the JSON header. Its length
    # bytes can look like a pickle opcode (a 640-byte header starts 0x80 0x02), so the pickle
    # test applies only to files without a plausible safetensors header. Either way nothing
    # is ever unpickled: safetensors parsing executes no code.
    looks_safetensors = (len(head) == 9 and head[8:9] == b"{"
                         and 8 + int.from_bytes(head[:8], "little") <= size)
    if not looks_safetensors and head.startswith(_PICKLE_MAGIC):
        raise CheckpointError(f"{field}: {shown(path)} is a pickle / torch.save file, not a "
                              "safetensors file; mentor never unpickles checkpoints, expected a "
                              "safetensors file (save with safetensors.torch.save_file)")
    if size == 0:
        raise CheckpointError(f"{field}: {shown(path)} is empty (0 bytes); expected a "
                              "safetensors file")
    promised = _promised_size(path, head, size)
    if promised is not None and promised > size:
        raise CheckpointError(f"{field}: {shown(path)} is truncated: its safetensors header "
                              f"promises {promised} bytes but the file has {size}; expected the "
                              "complete file (copy or save it again)")
    try:
        from safetensors import safe_open
        with safe_open(str(path), framework="pt") as f:
            raw_meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, TypeError) as e:
        raise CheckpointError(f"{field}: {shown(path)} is not a safetensors file "
                              f"({_first_line(e)}); mentor loads weights only from safetensors, "
                              "never from pickle") from None
    _check_dtypes(tensors, path, field)
    meta = {k: _decode_meta(v) for k, v in raw_meta.items()}
    _check_mentor_meta(meta, path, field)
    return tensors, meta


# the metadata mentor writes and reads back, and how each value must look
MAX_CLASSES = 1 << 24
MAX_FEATURES = 1 << 31
MAX_PAIRS = 64


def _check_mentor_meta(meta: dict[str, Any], path: Path, field: str) -> None:
    """The ``mentor.*`` metadata that mentor acts on must be what it writes: JSON of the
    right types, finite and bounded (a hand-edited ``mentor.wrapper`` asking for 10^9 paired
    students would build them one by one)."""
    def bad(key: str, expected: str) -> CheckpointError:
        value = meta[key]
        text = str(value) if isinstance(value, _NotJson) else json.dumps(value)
        text = text if len(text) <= 80 else text[:77] + "..."
        return CheckpointError(f"{field}: {shown(path)} has metadata {key} {text}; expected "
                               f"{expected} (the metadata mentor writes)")

    def integer(v, low, high) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high

    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)  # finite: JSON parsed
    if "mentor.num_classes" in meta and not integer(meta["mentor.num_classes"], 2, MAX_CLASSES):
        raise bad("mentor.num_classes", f"an integer in [2, {MAX_CLASSES}]")
    if "mentor.input_shape" in meta:
        shape = meta["mentor.input_shape"]
        if not (isinstance(shape, list) and 1 <= len(shape) <= 4
                and all(integer(n, 1, MAX_FEATURES) for n in shape)
                and math.prod(shape) <= MAX_FEATURES):
            raise bad("mentor.input_shape", "a list of 1 to 4 positive integers")
    if "mentor.vocab_size" in meta and not integer(meta["mentor.vocab_size"], 1, 10_000_000):
        raise bad("mentor.vocab_size", "an integer in [1, 10000000]")
    if "mentor.model" in meta and not (isinstance(meta["mentor.model"], dict)
                                       and isinstance(meta["mentor.model"].get("model"), str)):
        raise bad("mentor.model", "an object naming its 'model'")
    if "mentor.privileged" in meta and not isinstance(meta["mentor.privileged"], dict):
        raise bad("mentor.privileged", "an object")
    w = meta.get("mentor.wrapper")
    if "mentor.wrapper" in meta and w is not None:
        if not isinstance(w, dict) or w.get("kind") not in ("pairs", "dual_head"):
            raise bad("mentor.wrapper", "none, {'kind': 'pairs', 'n': ...} or "
                                        "{'kind': 'dual_head', 'head', 'a', 'b'}")
        if w["kind"] == "pairs" and not integer(w.get("n"), 2, MAX_PAIRS):
            raise bad("mentor.wrapper", f"a pairs wrapper with n an integer in [2, {MAX_PAIRS}]")
        if w["kind"] == "dual_head" and not (isinstance(w.get("head"), str)
                                             and number(w.get("a")) and number(w.get("b"))):
            raise bad("mentor.wrapper", "a dual_head wrapper with a head name and numbers a, b")


def _first_line(e: BaseException, limit: int = 200) -> str:
    text = (str(e).splitlines() or [type(e).__name__])[0]
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _check_dtypes(tensors: dict[str, torch.Tensor], path: Path, field: str) -> None:
    for k, t in tensors.items():
        if t.dtype not in SUPPORTED_DTYPES:
            name = str(t.dtype).replace("torch.", "")
            raise CheckpointError(f"{field}: tensor {k[:100]!r} in {shown(path)} has dtype "
                                  f"{name}, which mentor does not load; expected real weights "
                                  "(float32, float16, bfloat16, float64), integer or bool "
                                  "tensors")


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
        with open_regular(path) as f:
            f.seek(8)
            header = json.loads(f.read(n))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            RecursionError, FileProblem):
        return None
    return 8 + n + max(ends, default=0)


def load_weights(path: Path, model: nn.Module, field: str = "checkpoint") -> dict[str, Any]:
    """Load safetensors weights into ``model`` after checking names and shapes; return metadata."""
    tensors, meta = read_safetensors(path, field)
    _load_into(model, tensors, path, field)
    return meta


def _load_into(model: nn.Module, tensors: dict[str, torch.Tensor], path: Path,
               field: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    extra = [k for k in tensors if k not in expected]
    if missing or extra:
        what = (f"lacks tensor {missing[0]!r}" if missing
                else f"has unexpected tensor {extra[0][:100]!r}")
        raise CheckpointError(f"{field}: {shown(path)} {what}; expected the tensors of the "
                              f"model ({len(expected)} tensors, first {next(iter(expected))!r})")
    for k, v in expected.items():
        if tuple(tensors[k].shape) != tuple(v.shape):
            raise CheckpointError(f"{field}: tensor {k!r} in {shown(path)} has shape "
                                  f"{list(tensors[k].shape)} but the model expects "
                                  f"{list(v.shape)}")
    model.load_state_dict({k: t.to(expected[k].dtype) for k, t in tensors.items()})


# ------------------------------------------------------------------------- training state

STATE = "state.json"
FORMAT = "mentor-state-2"
LATEST = "LATEST"  # the pointer file of the older layout (mentor-state-1: ckpt-* folders)
_WRITES = [0]


def save_state(directory: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer,
               scheduler, generator: torch.Generator, order: torch.Tensor,
               extra_tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
    """Everything needed to continue training bit-for-bit, in ``directory``.

    The tensors go to a new file ``ckpt-<step>-<epoch>.safetensors``; only when it is in
    place is ``state.json`` replaced (both by rename) to name it, with its size and CRC-32,
    and the previous tensor file removed. A process killed at any point leaves ``state.json``
    naming a complete checkpoint (or no ``state.json``: no checkpoint yet). The files are not
    fsynced: a rename is safe from a killed process without it, and costs the run a fraction
    of the time; after a power loss a checkpoint whose bytes did not reach the disk fails its
    CRC-32 on ``--resume`` and is named, never loaded.
    """
    directory = Path(directory)
    name = f"ckpt-{int(info.get('step', 0)):09d}-{int(info.get('epoch', 0)):05d}.safetensors"
    tensors = {f"model.{k}": v.detach().contiguous().cpu()
               for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
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
    _write_new(directory / name, tensors)
    size, crc = _crc32(directory / name)  # of the bytes written (from the page cache)
    _fault_injection()
    py_state = random.getstate()
    state = {
        "format": FORMAT,
        "tensors": {"file": name, "bytes": size, "crc32": crc},
        "optimizer": {"param_groups": opt["param_groups"], "scalars": opt_scalars,
                      "tensor_ids": sorted({int(k.split(".")[1]) for k in tensors
                                            if k.startswith("optim.")})},
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng_python": [py_state[0], list(py_state[1]), py_state[2]],
        **info,
    }
    body = json.dumps(state, sort_keys=True, separators=(",", ":"))
    text = body[:-1] + f',"checksum":"{hashlib.sha256(body.encode()).hexdigest()}"}}\n'
    atomic_write_text(directory / STATE, text, durable=False)
    for old in directory.glob("ckpt-*"):
        if old.name != name and old.is_file():
            old.unlink(missing_ok=True)


def _write_new(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Write ``tensors`` to ``path``: straight to a name nothing points to yet (no rename
    needed: until ``state.json`` names it, a half-written file is an orphan the next
    checkpoint removes), or by rename when the name exists (a re-save of the same step)."""
    tensors = unshared(tensors)
    if os.path.lexists(path):
        with atomic_path(path, durable=False) as tmp:
            save_file(tensors, str(tmp))
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(path))
    except BaseException as e:
        with contextlib.suppress(OSError):
            path.unlink()
        from .._util.atomic import _raise_write_error
        _raise_write_error(path, e)
        raise


def _crc32(path: Path) -> tuple[int, int]:
    """Size and CRC-32 of a file: enough to tell a checkpoint that did not reach the disk
    whole (a power loss) from the one written, at a fraction of a sha256's cost."""
    crc, size = 0, 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            crc, size = zlib.crc32(block, crc), size + len(block)
    return size, crc


def _checksum(state: dict[str, Any]) -> str:
    """sha256 of ``state`` without its ``checksum``, as canonical JSON (what
    :func:`save_state` hashes before it appends the checksum)."""
    body = {k: v for k, v in state.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def _fault_injection() -> None:
    """Fault injection for the crash tests: with ``MENTOR_KILL_IN_CHECKPOINT=N`` the process
    SIGKILLs itself during its N-th checkpoint write, after the new checkpoint's tensors and
    before ``state.json`` names them (the moment a non-atomic scheme would corrupt the
    state)."""
    n = os.environ.get("MENTOR_KILL_IN_CHECKPOINT")
    if not n:
        return
    _WRITES[0] += 1
    if _WRITES[0] == int(n):
        os.kill(os.getpid(), signal.SIGKILL)


def latest_state(directory: Path) -> Path | None:
    """The ``state.json`` of the checkpoint under ``directory`` (None if there is none yet)."""
    directory = Path(directory)
    path = directory / STATE
    if os.path.lexists(path):
        return path
    if os.path.lexists(directory / LATEST):
        raise CheckpointError(f"resume: {shown(directory)} holds a checkpoint in the layout of "
                              "an older mentor (LATEST and ckpt-* folders); expected "
                              f"{STATE}: finish the run with that mentor version, or delete "
                              f"{shown(directory)} to restart this training from its beginning")
    return None


def _damaged(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"resume: {shown(path)} {why}; expected the checkpoint the run "
                           f"wrote: delete {shown(path.parent)} to restart this training from "
                           "its beginning")


def _read_state_json(path: Path) -> dict[str, Any]:
    try:
        text = read_bounded(path, MAX_JSON_BYTES, "a training state").decode("utf-8")
        state = json.loads(text)
    except FileProblem as e:
        raise CheckpointError(f"resume: {e}") from None
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise _damaged(path, f"is not valid JSON ({_first_line(e)})") from None
    if not isinstance(state, dict):
        raise _damaged(path, f"holds a JSON {type(state).__name__}, not an object")
    if state.get("format") != FORMAT:
        raise _damaged(path, f"has format {str(state.get('format'))[:40]!r}, not {FORMAT!r}")
    if state.get("checksum") != _checksum(state):
        raise _damaged(path, "fails its checksum (it was edited or damaged since it was "
                             "written)")
    return state


def check_resume_info(info: dict[str, Any], *, epochs: int, steps_per_epoch: int,
                      directory: Path) -> None:
    """The training position a checkpoint records must be one of this training: integer
    step, epoch and batch within its epochs, a history of lists, numbers where the loop reads
    numbers (a :class:`CheckpointError` naming ``state.json`` otherwise)."""
    def number(key):
        v = info.get(key)
        return not isinstance(v, bool) and isinstance(v, (int, float))

    def integer(key, low, high):
        v = info.get(key)
        return not isinstance(v, bool) and isinstance(v, int) and low <= v <= high
    problems = [k for k, ok in (
        ("epoch", integer("epoch", 0, epochs)),
        ("batch", integer("batch", 0, steps_per_epoch)),
        ("step", integer("step", 0, epochs * max(steps_per_epoch, 1))),
        ("best_epoch", integer("best_epoch", -1, epochs)),
        ("best_val", number("best_val")), ("running_loss", number("running_loss")),
        ("history", isinstance(info.get("history"), dict) and all(
            isinstance(v, list) and len(v) <= epochs for v in info["history"].values())),
    ) if not ok]
    if problems:
        k = problems[0]
        raise _damaged(Path(directory) / STATE, f"records {k} {str(info.get(k))[:60]!r}, which "
                                                f"is not a position of this training ({epochs} "
                                                f"epochs of {steps_per_epoch} steps)")


def load_state(directory: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer,
               scheduler, generator: torch.Generator) -> tuple[dict[str, Any], torch.Tensor,
                                                              dict[str, torch.Tensor]]:
    """Restore what :func:`save_state` wrote; return ``(info, order, extra_tensors)``.

    ``state.json`` must pass its checksum and name a tensor file of the recorded size and
    CRC-32; anything else (a file edited by hand, a checkpoint damaged by a power loss, a
    pickle) is a :class:`CheckpointError` naming the file, and nothing is restored."""
    from safetensors.torch import load
    path = latest_state(Path(directory))
    if path is None:
        raise CheckpointError(f"resume: {shown(directory)} holds no checkpoint ({STATE} "
                              "missing)")
    state = _read_state_json(path)
    try:
        ref = state["tensors"]
        name = ref["file"]
        if (not isinstance(name, str) or Path(name).name != name or not name.startswith("ckpt-")
                or not isinstance(ref["bytes"], int) or not isinstance(ref["crc32"], int)):
            raise TypeError(f"tensors names {str(ref)[:80]}")
    except (KeyError, TypeError, AttributeError) as e:
        raise _damaged(path, f"is not a state mentor wrote ({_first_line(e)})") from None
    tpath = path.parent / name
    try:
        data = read_bounded(tpath, ref["bytes"], "the checkpoint's tensors")
    except FileProblem as e:
        raise _damaged(tpath, e.clause) from None
    if len(data) != ref["bytes"] or zlib.crc32(data) != ref["crc32"]:
        raise _damaged(tpath, f"fails its CRC-32 check ({len(data)} bytes; {STATE} records "
                              f"{ref['bytes']} and another CRC-32)")
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, TypeError) as e:  # bytes that match, yet unreadable
        raise _damaged(tpath, f"is not a safetensors file ({_first_line(e)})") from None
    _check_dtypes(tensors, tpath, "resume")
    try:
        _load_into(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
                   tpath, "resume")
        per_param: dict[int, dict[str, Any]] = {}
        for key, v in tensors.items():
            if key.startswith("optim."):
                _, pid, pname = key.split(".", 2)
                per_param.setdefault(int(pid), {})[pname] = v
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
        order = tensors["data.order"]
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError, AttributeError) as e:
        raise _damaged(path, f"does not fit this training ({type(e).__name__}: "
                             f"{_first_line(e)})") from None
    extra = {k[len("extra."):]: t for k, t in tensors.items() if k.startswith("extra.")}
    return state, order, extra
