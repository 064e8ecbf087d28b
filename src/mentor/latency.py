"""Inference latency of a model on a batch: the median of repeated timed forward passes.

:func:`speedup` is the one measurement of teacher vs student: the leaderboard's speed-up
column (``mentor run``, at the batch of the test split's first 512 rows, with a time budget per
model so a slow teacher does not stall the leaderboard) and ``mentor bench --latency``
(at batch 1 and 256, :func:`compare`) both call it; :func:`mentor.commands.latency.bench_run`
measures a finished run folder and writes its ``latency.json``.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch
from torch import Tensor, nn

from .data.rows import first_tensor

WARMUP = 3  # untimed calls before timing
ROUNDS = 3  # interleaved rounds; the reported value is the median of their medians
MIN_REPEATS = 5  # timed calls a time budget never goes below
BATCHES = (1, 256)


@torch.no_grad()
def median_latency(model, x: Tensor, repeats: int = 25, warmup: int = WARMUP,
                   budget_s: float | None = None) -> float:
    """Median seconds of ``model(x)`` (a module or a callable) over ``repeats`` runs.

    With ``budget_s`` the timed calls are fewer when one call is slow: as many as fit in
    ``budget_s`` seconds by the last warm-up call's time, never fewer than
    :data:`MIN_REPEATS` nor more than ``repeats`` (a fast model keeps all ``repeats``).
    """
    from .models.call import call_model
    was = getattr(model, "training", None)
    run = model
    if isinstance(model, nn.Module):
        model.eval()
        run = lambda v: call_model(model, v)  # noqa: E731  (named inputs as keywords)
    one = 0.0
    for _ in range(max(warmup, 1)):
        t0 = time.perf_counter()
        run(x)
        one = time.perf_counter() - t0
    if budget_s is not None:
        repeats = max(MIN_REPEATS, min(repeats, int(budget_s / max(one, 1e-9))))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t0)
    if isinstance(model, nn.Module) and was:
        model.train()
    return statistics.median(times)


def speedup(teacher_fn, student: nn.Module, x: Tensor, repeats: int = 25,
            budget_s: float | None = None) -> dict[str, float]:
    """Teacher and student latency on the same batch, interleaved, and their ratio
    (``budget_s``: seconds per model and round, see :func:`median_latency`)."""
    t_teacher, t_student = [], []
    for _ in range(ROUNDS):
        t_teacher.append(median_latency(teacher_fn, x, repeats, budget_s=budget_s))
        t_student.append(median_latency(student, x, repeats, budget_s=budget_s))
    tt, ts = statistics.median(t_teacher), statistics.median(t_student)
    return {"teacher_latency_s": tt, "student_latency_s": ts, "speedup": tt / max(ts, 1e-12),
            "batch": len(first_tensor(x)), "threads": torch.get_num_threads()}


def rows(x: Tensor | dict[str, Tensor], n: int) -> Tensor | dict[str, Tensor]:
    """``n`` rows of ``x`` (each named tensor's, for named inputs), repeated cyclically when
    ``x`` has fewer."""
    if type(x) is dict:
        return {k: rows(v, n) for k, v in x.items()}
    reps = -(-n // len(x))
    return x.repeat(reps, *([1] * (x.dim() - 1)))[:n].contiguous()


def compare(teacher_fn: Callable | None, students: dict[str, Callable], x: Tensor,
            batches=BATCHES, repeats: int = 25) -> dict:
    """Latency and throughput of the teacher and each student at each batch size.

    With a teacher every student is timed against it by :func:`speedup` (interleaved, so
    both see the same machine load) and the teacher's latency is the median over those
    calls; without one the students alone (:data:`ROUNDS` medians of ``repeats`` runs).
    Returns ``{"teacher": {batch: entry} | None, "students": {name: {batch: entry}}}``, an
    entry ``{"latency_s", "throughput_rows_s"[, "speedup"]}``; batch keys are strings.
    """
    teacher: dict[str, dict] = {}
    out = {name: {} for name in students}
    for b in batches:
        xb = rows(x, int(b))
        t_times = []
        for name, model in students.items():
            if teacher_fn is None:
                lat = statistics.median(median_latency(model, xb, repeats)
                                        for _ in range(ROUNDS))
                out[name][str(b)] = latency_entry(lat, b)
                continue
            r = speedup(teacher_fn, model, xb, repeats)
            t_times.append(r["teacher_latency_s"])
            out[name][str(b)] = {**latency_entry(r["student_latency_s"], b),
                                 "speedup": r["speedup"]}
        if t_times:
            teacher[str(b)] = latency_entry(statistics.median(t_times), b)
    return {"teacher": teacher or None, "students": out}


def latency_entry(latency: float, batch: int) -> dict:
    return {"latency_s": latency, "throughput_rows_s": batch / max(latency, 1e-12)}


def method_text(repeats: int) -> str:
    return (f"median seconds per forward pass: the median of {ROUNDS} interleaved rounds, each "
            f"the median of {repeats} timed calls after {WARMUP} warm-up calls, under "
            "torch.no_grad on CPU; throughput = batch / latency; speed-up = teacher / student "
            "latency from mentor.latency.speedup (the function behind the leaderboard's "
            "speed-up column)")


__all__ = ["BATCHES", "compare", "median_latency", "method_text", "rows",
           "speedup"]
