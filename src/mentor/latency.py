"""Inference latency of a model on a batch: the median of repeated timed forward passes."""

from __future__ import annotations

import statistics
import time

import torch
from torch import Tensor, nn


@torch.no_grad()
def median_latency(model, x: Tensor, repeats: int = 25, warmup: int = 3) -> float:
    """Median seconds of ``model(x)`` (a module or a callable) over ``repeats`` runs."""
    was = getattr(model, "training", None)
    if isinstance(model, nn.Module):
        model.eval()
    for _ in range(warmup):
        model(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - t0)
    if isinstance(model, nn.Module) and was:
        model.train()
    return statistics.median(times)


def speedup(teacher_fn, student: nn.Module, x: Tensor, repeats: int = 25) -> dict[str, float]:
    """Teacher and student latency on the same batch, interleaved, and their ratio."""
    t_teacher, t_student = [], []
    for _ in range(3):
        t_teacher.append(median_latency(teacher_fn, x, repeats))
        t_student.append(median_latency(student, x, repeats))
    tt, ts = statistics.median(t_teacher), statistics.median(t_student)
    return {"teacher_latency_s": tt, "student_latency_s": ts, "speedup": tt / max(ts, 1e-12),
            "batch": len(x), "threads": torch.get_num_threads()}
