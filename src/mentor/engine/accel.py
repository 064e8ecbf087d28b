"""One Accelerator per process: device placement, DDP, mixed precision, gathers."""

from __future__ import annotations

import os

from accelerate import Accelerator
from accelerate.utils import DistributedType

_ACCELERATOR: Accelerator | None = None


def get_accelerator(mixed_precision: str = "no") -> Accelerator:
    """The process's Accelerator (created once: Accelerate keeps one shared state).

    ``MENTOR_CPU=1`` (or no CUDA device) keeps everything on the CPU; under ``torchrun`` or
    ``accelerate launch`` each process gets its rank from the environment.
    """
    global _ACCELERATOR
    if _ACCELERATOR is None:
        cpu = os.environ.get("MENTOR_CPU", "") == "1"
        _ACCELERATOR = Accelerator(mixed_precision=mixed_precision, cpu=cpu)
    elif _ACCELERATOR.mixed_precision != mixed_precision:
        from ..errors import MentorError
        raise MentorError(f"train.mixed_precision {mixed_precision!r} differs from the "
                          f"{_ACCELERATOR.mixed_precision!r} this process started with; expected "
                          "one precision per process")
    return _ACCELERATOR


def uses_plain_step(accelerator: Accelerator) -> bool:
    """True when optimizer.step / loss.backward need no Accelerate wrapper.

    Under no distribution or plain DDP without a gradient scaler, Accelerate's optimizer
    wrapper only adds per-step Python work (a package look-up on every ``step``, an
    ``inspect.signature`` on every ``zero_grad``: ~60 µs a step, measured), so the loop calls
    the torch optimizer directly. FSDP, DeepSpeed, XLA and fp16 use Accelerate's wrappers.
    """
    plain = {DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU}
    return accelerator.distributed_type in plain and accelerator.scaler is None


def release(accelerator: Accelerator) -> None:
    """Drop Accelerate's references to this run's prepared objects.

    ``Accelerator.free_memory`` does the same but also runs a full ``gc.collect()`` (about
    0.1-0.2 s a call, measured), which would dominate short runs; the CUDA cache is emptied
    only where there is one.
    """
    for name in ("_models", "_optimizers", "_schedulers", "_dataloaders"):
        refs = getattr(accelerator, name, None)
        if isinstance(refs, list):
            refs.clear()
    if accelerator.device.type == "cuda":
        import torch
        torch.cuda.empty_cache()
