"""``mentor bench --latency RUN_DIR``: teacher vs student inference latency of a finished run
folder, written to its ``latency.json`` (the measurement itself is :mod:`mentor.latency`)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import torch
from torch import Tensor, nn

from .._util.atomic import atomic_write_text
from ..latency import BATCHES, ROUNDS, WARMUP, compare, latency_entry, method_text
from ..models import count_params
from ..runs.read import (choose_student, inference_module, load_model, open_run, setting_info,
                         teacher_checkpoint)


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
        call_teacher = None
        shape = members[0][2]["mentor.input_shape"]
        g = torch.Generator().manual_seed(0)
        x = torch.randn(max(int(b) for b in batches), features(shape), generator=g)
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
            call_teacher = teacher_fn(t["module"], t["meta"], shape, x)
        measured = compare(call_teacher, {i: m for i, (_, m, _) in enumerate(members)}, x,
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
        t["batches"] = {b: latency_entry(statistics.median(v), int(b)) for b, v in times.items()}
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


def features(shape) -> int:
    import math
    return math.prod(int(n) for n in shape)


def teacher_fn(module: nn.Module, meta: dict, student_shape, x: Tensor):
    """The teacher as a function of the students' input batch. A teacher with another input
    width (a privileged teacher sees its extra inputs too) gets rows of its own width."""
    width = features(meta["mentor.input_shape"])
    if width == features(student_shape):
        return module
    g = torch.Generator().manual_seed(1)
    own = torch.randn(len(x), width, generator=g)
    return lambda batch: module(own[:len(batch)])


__all__ = ["bench_run", "teacher_fn"]
