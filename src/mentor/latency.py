"""Inference latency of a model on a batch: the median of repeated timed forward passes.

:func:`speedup` is the one measurement of teacher vs student: the leaderboard's speed-up
column (``mentor run``, at the batch of the whole test split) and ``mentor bench --latency``
(at batch 1 and 256, :func:`compare`) both call it. :func:`bench_run` measures a finished run
folder and writes its ``latency.json``.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

WARMUP = 3  # untimed calls before timing
ROUNDS = 3  # interleaved rounds; the reported value is the median of their medians
BATCHES = (1, 256)


@torch.no_grad()
def median_latency(model, x: Tensor, repeats: int = 25, warmup: int = WARMUP) -> float:
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
    for _ in range(ROUNDS):
        t_teacher.append(median_latency(teacher_fn, x, repeats))
        t_student.append(median_latency(student, x, repeats))
    tt, ts = statistics.median(t_teacher), statistics.median(t_student)
    return {"teacher_latency_s": tt, "student_latency_s": ts, "speedup": tt / max(ts, 1e-12),
            "batch": len(x), "threads": torch.get_num_threads()}


def rows(x: Tensor, n: int) -> Tensor:
    """``n`` rows of ``x``, repeated cyclically when ``x`` has fewer."""
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
                out[name][str(b)] = _entry(lat, b)
                continue
            r = speedup(teacher_fn, model, xb, repeats)
            t_times.append(r["teacher_latency_s"])
            out[name][str(b)] = {**_entry(r["student_latency_s"], b), "speedup": r["speedup"]}
        if t_times:
            teacher[str(b)] = _entry(statistics.median(t_times), b)
    return {"teacher": teacher or None, "students": out}


def _entry(latency: float, batch: int) -> dict:
    return {"latency_s": latency, "throughput_rows_s": batch / max(latency, 1e-12)}


def method_text(repeats: int) -> str:
    return (f"median seconds per forward pass: the median of {ROUNDS} interleaved rounds, each "
            f"the median of {repeats} timed calls after {WARMUP} warm-up calls, under "
            "torch.no_grad on CPU; throughput = batch / latency; speed-up = teacher / student "
            "latency from mentor.latency.speedup (the function behind the leaderboard's "
            "speed-up column)")


def bench_run(run_dir: Path, batches=BATCHES, repeats: int = 25,
              field: str = "--latency") -> tuple[Path, dict]:
    """Teacher vs student latency of a finished run folder; writes ``latency.json``.

    One student per result row (the seed :func:`mentor.runs.read.choose_student` picks), as
    :mod:`mentor.commands.export` writes it; its setting's teacher when the run trained one
    (``teacher/model.safetensors``). Inputs are standard normal rows: the built-in models
    have no data-dependent paths, so values do not change their cost.
    """
    import datetime as dt
    import platform

    from .atomic import atomic_write_text
    from .models import count_params
    from .runs.read import (choose_student, inference_module, load_model, open_run,
                           setting_info, teacher_checkpoint)

    run_dir = Path(run_dir)
    results = open_run(run_dir, field)
    teachers: dict[Path, dict] = {}
    students = []
    by_setting: dict[str, list] = {}
    for row in results["rows"]:
        c = choose_student(run_dir, results, row["setting"], row["method"])
        module, meta = load_model(c.checkpoint, f"{row['setting']}/{row['method']}")
        module, note = inference_module(module, meta)
        entry = {"setting": c.setting, "method": c.method, "seed": c.seed,
                 "seed_choice": c.seed_reason, "params": count_params(module),
                 "test_accuracy_mean": row.get("test_accuracy_mean"),
                 "test_accuracy_std": row.get("test_accuracy_std"),
                 "test_accuracy_seed": c.test_accuracy, "inference": note, "teacher": None}
        students.append(entry)
        by_setting.setdefault(c.setting, []).append((entry, module, meta))
    for setting, members in by_setting.items():
        tpath = teacher_checkpoint(run_dir, results, setting)
        teacher_fn = None
        shape = members[0][2]["mentor.input_shape"]
        g = torch.Generator().manual_seed(0)
        x = torch.randn(max(int(b) for b in batches), _features(shape), generator=g)
        if tpath is not None:
            if tpath not in teachers:
                tmod, tmeta = load_model(tpath, str(tpath.relative_to(run_dir)))
                info = setting_info(results, setting).get("teacher") or {}
                teachers[tpath] = {"name": tpath.parent.name,
                                   "path": str(tpath.relative_to(run_dir)),
                                   "description": info.get("description"),
                                   "params": count_params(tmod),
                                   "test_accuracy": info.get("test_accuracy"),
                                   "settings": [], "module": tmod, "meta": tmeta, "times": {}}
            t = teachers[tpath]
            t["settings"].append(setting)
            teacher_fn = _teacher_fn(t["module"], t["meta"], shape, x)
        measured = compare(teacher_fn, {i: m for i, (_, m, _) in enumerate(members)}, x,
                           batches, repeats)
        for i, (entry, _, _) in enumerate(members):
            entry["batches"] = measured["students"][i]
            entry["teacher"] = teachers[tpath]["name"] if tpath is not None else None
        if tpath is not None:  # a teacher shared by settings: the median over all calls
            for b, e in (measured["teacher"] or {}).items():
                teachers[tpath]["times"].setdefault(b, []).append(e["latency_s"])
    teacher_list = []
    for t in teachers.values():
        t.pop("module"), t.pop("meta")
        times = t.pop("times")
        t["batches"] = {b: _entry(statistics.median(v), int(b)) for b, v in times.items()}
        teacher_list.append(t)
    data = {
        "format": "mentor-latency-1", "run": results.get("name"),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": "cpu", "threads": torch.get_num_threads(), "torch": torch.__version__,
        "platform": platform.platform(), "batches": [int(b) for b in batches],
        "repeats": repeats, "warmup": WARMUP, "rounds": ROUNDS,
        "method": method_text(repeats),
        "inputs": "standard normal rows of each model's input features",
        "teachers": teacher_list, "students": students,
    }
    path = run_dir / "latency.json"
    atomic_write_text(path, json.dumps(data, indent=1))
    return path, data


def _features(shape) -> int:
    import math
    return math.prod(int(n) for n in shape)


def _teacher_fn(module: nn.Module, meta: dict, student_shape, x: Tensor):
    """The teacher as a function of the students' input batch. A teacher with another input
    width (a privileged teacher sees its extra inputs too) gets rows of its own width."""
    width = _features(meta["mentor.input_shape"])
    if width == _features(student_shape):
        return module
    g = torch.Generator().manual_seed(1)
    own = torch.randn(len(x), width, generator=g)
    return lambda batch: module(own[:len(batch)])


__all__ = ["BATCHES", "bench_run", "compare", "median_latency", "method_text", "rows",
           "speedup"]
