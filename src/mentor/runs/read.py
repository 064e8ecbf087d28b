"""Reading a finished run folder: its results, the students it saved, its teacher, its data.

Used by ``mentor export`` and ``mentor bench --latency``. Models are rebuilt from the
architecture in their safetensors metadata (checked like recipe fields); nothing is ever
unpickled.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, MentorError
from ..labels.store import sha256_file as sha256
from .folder import student_dir
from ..selection import best_row
from .folder import PARTIAL
from .._util.safeio import MAX_JSON_BYTES, FileProblem, read_bounded, shown


def open_run(run_dir: Path, field: str = "RUN_DIR") -> dict:
    """``results.json`` of a finished run folder; a missing or unfinished folder is refused."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise MentorError(f"{field}: '{run_dir}' does not exist; expected a run folder written "
                          "by `mentor run`")
    if not run_dir.is_dir():
        raise MentorError(f"{field}: '{run_dir}' is a file; expected a run folder written by "
                          "`mentor run`")
    if run_dir.name.endswith(PARTIAL):
        raise MentorError(f"{field}: '{run_dir}' is an unfinished run (.partial); expected a "
                          f"finished run folder (continue it with `mentor run --resume "
                          f"{run_dir}`)")
    path = run_dir / "results.json"
    if not path.is_file():
        raise MentorError(f"{field}: '{run_dir}' has no results.json; expected a finished run "
                          "folder written by `mentor run`")
    try:
        results = json.loads(read_bounded(path, MAX_JSON_BYTES, "a results file"))
    except FileProblem as e:
        raise MentorError(f"{field}: {e}") from None
    except (ValueError, OSError, RecursionError) as e:
        raise MentorError(f"{field}: {shown(path)} is not readable JSON "
                          f"({str(e).splitlines()[0][:200] if str(e) else type(e).__name__})"
                          ) from None
    rows = results.get("rows") if isinstance(results, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "setting" in r
                                             and "method" in r for r in rows):
        raise MentorError(f"{field}: '{path}' has no rows of setting x method; expected the "
                          "results of a classification run")
    if not rows:
        raise MentorError(f"{field}: '{path}' has no result rows; expected at least one "
                          "trained student")
    return results


def metrics(run_dir: Path) -> list[dict]:
    """The lines of ``metrics.jsonl`` (one per student training); [] when absent."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    out = []
    try:
        text = read_bounded(path, MAX_JSON_BYTES, "a metrics file").decode("utf-8")
    except (FileProblem, OSError, ValueError):
        return []
    for line in text.splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


@dataclass
class Choice:
    """One trained student of a run: its result row, seed and checkpoint."""
    row: dict
    seed: int
    checkpoint: Path
    val_accuracy: float | None
    test_accuracy: float | None
    reason: str  # how the row and the seed were chosen
    seed_reason: str  # how the seed was chosen

    @property
    def setting(self) -> str:
        return self.row["setting"]

    @property
    def method(self) -> str:
        return self.row["method"]


def _choices(values, given, option: str) -> str:
    return f"{option} {given!r} is not in this run; expected one of " + \
        ", ".join(repr(v) for v in dict.fromkeys(values))


def choose_student(run_dir: Path, results: dict, setting: str | None = None,
                   method: str | None = None, seed: int | None = None) -> Choice:
    """The student to use: the given setting / method / seed, each defaulting to the best.

    The best row has the highest ``val_accuracy_mean`` (the first on ties; test accuracy is
    never read to choose, :mod:`mentor.selection`); its seed is the one with the best
    validation accuracy in ``metrics.jsonl`` (the first on ties).
    """
    rows = results["rows"]
    if setting is not None and not any(r["setting"] == setting for r in rows):
        raise MentorError(_choices([r["setting"] for r in rows], setting, "--setting"))
    rows = [r for r in rows if setting is None or r["setting"] == setting]
    if method is not None and not any(r["method"] == method for r in rows):
        raise MentorError(_choices([r["method"] for r in rows], method, "--method")
                          + (f" (in setting {setting!r})" if setting else ""))
    rows = [r for r in rows if method is None or r["method"] == method]
    if seed is not None and not any(seed in (r.get("seeds") or []) for r in rows):
        where = " / ".join(x for x in (setting, method) if x is not None)
        raise MentorError(_choices([s for r in rows for s in r.get("seeds") or []], seed,
                                   "--seed") + (f" (for {where})" if where else ""))
    rows = [r for r in rows if seed is None or seed in (r.get("seeds") or [])]

    row = best_row(rows)
    lines = {m.get("seed"): m for m in metrics(run_dir)
             if m.get("setting") == row["setting"] and m.get("method") == row["method"]}
    seeds = list(row.get("seeds") or [])
    if not seeds:
        raise MentorError(f"results.json row {row['setting']}/{row['method']} lists no seeds; "
                          "expected the seeds it was trained with")
    if seed is None:
        def val(s):
            v = (lines.get(s) or {}).get("val_accuracy")
            return v if isinstance(v, (int, float)) and math.isfinite(v) else -math.inf
        seed = max(seeds, key=val)
        how = ("best validation accuracy of its seeds" if val(seed) > -math.inf
               else "first seed (no validation accuracy recorded)")
    else:
        how = "seed given"
    picked = " / ".join(x for x in (setting, method) if x is not None)
    if not picked:
        reason = "best row of results.json by val_accuracy_mean; " + how
    elif len(rows) > 1:
        reason = f"given: {picked}; best of its {len(rows)} rows by val_accuracy_mean; {how}"
    else:
        reason = f"given: {picked}; {how}"
    ckpt = student_dir(run_dir, row["setting"], row["method"], seed) / "student.safetensors"
    if not ckpt.is_file():
        raise MentorError(f"no student checkpoint at '{ckpt}'; expected the run folder to hold "
                          "checkpoints/<setting>/<method>/seed<k>/student.safetensors")
    line = lines.get(seed) or {}
    test = line.get("test_accuracy")
    if test is None and seed in seeds and len(row.get("test_accuracies") or []) == len(seeds):
        test = row["test_accuracies"][seeds.index(seed)]
    return Choice(row, int(seed), ckpt, line.get("val_accuracy"), test, reason, how)


def load_model(path: Path, field: str = "checkpoint") -> tuple[nn.Module, dict[str, Any]]:
    """The model saved in a mentor safetensors file (with its inference wrapper, and the
    :class:`mentor.models.preprocess.Standardized` step of an exported student whose metadata
    has ``mentor.preprocess``), in eval mode, and the file's metadata. The architecture comes
    from the metadata."""
    from ..engine.checkpoint import read_safetensors
    from ..models.preprocess import PREPROCESS_KEY
    from ..models.preprocess import rebuild as rebuild_preprocess
    from ..teachers import load_checkpoint_teacher

    _, meta = read_safetensors(Path(path), field)
    shape, classes = meta.get("mentor.input_shape"), meta.get("mentor.num_classes")
    if not (isinstance(shape, list) and shape and all(isinstance(n, int) and n > 0
                                                      for n in shape)):
        raise CheckpointError(f"{field}: '{path}' has input shape {shape!r} in its metadata; "
                              "expected a list of positive integers (a file saved by mentor)")
    if not (isinstance(classes, int) and classes > 0):
        raise CheckpointError(f"{field}: '{path}' has num_classes {classes!r} in its metadata; "
                              "expected a positive integer (a file saved by mentor)")
    teacher = load_checkpoint_teacher(path, input_shape=shape, num_classes=classes, field=field)
    module = teacher.module
    if meta.get(PREPROCESS_KEY) is not None:  # an exported student carrying its standardization
        try:
            module = rebuild_preprocess(module, meta[PREPROCESS_KEY], shape, f"{field} '{path}'")
        except MentorError as e:
            raise CheckpointError(str(e)) from None
    return module.eval(), meta


def inference_module(model: nn.Module, meta: dict[str, Any]) -> tuple[nn.Module, str]:
    """What a saved student is at inference, without training-only parts, and a note.

    - no wrapper (a plain student, or an ``AuxHead`` student: the auxiliary head was already
      dropped when the run saved it): the student as it is, outputs its logits;
    - ``dual_head`` with ``a = 0`` (DHKD): the bare student; the second head is dropped (its
      output is unused at inference). The run scored ``log_softmax`` of these logits: the
      same predictions and probabilities;
    - ``dual_head`` with ``a > 0`` (DHO): both heads, output ``log((1-a)·softmax(z_ce) +
      a·softmax(z_kd / b))``;
    - ``pairs`` (paired students): every member, output the log of their mean probability.
    """
    from ..models.heads import DualHead, PairedStudents

    if isinstance(model, DualHead):
        if model.a == 0.0:
            return model.student.eval(), ("dual head with a=0 (DHKD): second head dropped, the "
                                          "bare student's CE-head logits")
        return model.eval(), (f"dual head (a={model.a:g}, b={model.b:g}): both heads kept, "
                              "output log((1-a)·softmax(z_ce) + a·softmax(z_kd/b))")
    if isinstance(model, PairedStudents):
        return model.eval(), (f"{len(model.members)} paired students kept, output the log of "
                              "their mean probability")
    wrapped = meta.get("mentor.wrapper")
    return model.eval(), ("the bare student, logits" if wrapped is None
                          else f"student with wrapper {wrapped!r}")


def teacher_checkpoint(run_dir: Path, results: dict, setting: str) -> Path | None:
    """The trained teacher of ``setting``: the folder the run recorded in the setting's
    teacher info (``teacher``, ``teacher-1``, ...); for runs written before it was recorded,
    ``teacher/`` for the run's first teacher and ``teacher-<i>/`` for the i-th distinct one.
    None when it was not trained in the run (a checkpoint, ensemble or label-store teacher)
    or the setting has none."""
    distinct: list[dict] = []
    mine = None
    for s in results.get("settings") or []:
        t = s.get("teacher")
        if t is None:
            continue
        if t not in distinct:
            distinct.append(t)
        if s.get("name") == setting:
            mine = t
    if mine is None:
        return None
    folder = mine.get("folder") if isinstance(mine, dict) else None
    if not isinstance(folder, str) or not folder.startswith("teacher") or "/" in folder:
        i = distinct.index(mine)
        folder = "teacher" if i == 0 else f"teacher-{i}"
    path = Path(run_dir) / folder / "model.safetensors"
    return path if path.is_file() else None


def setting_info(results: dict, setting: str) -> dict:
    for s in results.get("settings") or []:
        if s.get("name") == setting:
            return s
    return {}


@dataclass
class ParityInputs:
    """Inputs to check an exported model on: the run's test split when it can be reloaded."""
    x: torch.Tensor | dict  # (N, features) float32, preprocessed as in the run; or token ids
    y: torch.Tensor | None
    description: str
    mean: list[float] | None = None  # the standardization the run applied (train statistics)
    std: list[float] | None = None
    problem: str | None = None  # why the data could not be reloaded (x: standard normal rows)


def recipe_task(run_dir: Path) -> str:
    """The task the run's recipe names (``classification`` when it names none)."""
    from ..recipe import read_yaml
    for name in ("input.yaml", "recipe.yaml"):
        path = Path(run_dir) / name
        if path.is_file():
            return str(read_yaml(path).get("task") or "classification")
    return "classification"


def run_data_spec(run_dir: Path, setting: str):
    """``(data spec, file name)`` of ``setting``: the data section of the run's recipe
    (``input.yaml``, else ``recipe.yaml``; the setting's own data section where it has one),
    read without loading the data. Raises :class:`MentorError` when there is none."""
    from ..recipe import DataSpec, read_yaml, setting_raw

    for name in ("input.yaml", "recipe.yaml"):
        path = Path(run_dir) / name
        if not path.is_file():
            continue
        raw = read_yaml(path)
        if raw.get("settings") and any(isinstance(s, dict) and s.get("name") == setting
                                       for s in raw["settings"]):
            raw = setting_raw(raw, setting)
        if not isinstance(raw.get("data"), dict):
            raise MentorError(f"{name} has no data section")
        return DataSpec.model_validate(raw["data"]), name
    raise MentorError("the run folder has no input.yaml or recipe.yaml to rebuild the data "
                      "from")


def run_splits(run_dir: Path, setting: str, cache: dict | None = None):
    """``(splits, data spec, file name)`` of ``setting``, rebuilt from the run's recipe
    (:func:`run_data_spec`). ``cache`` keeps loaded splits by data section, for settings
    that share it. Raises :class:`MentorError` (or the data loader's error) when the data
    cannot be rebuilt."""
    spec, name = run_data_spec(run_dir, setting)
    key = json.dumps(spec.model_dump(mode="json"), sort_keys=True)
    if cache is None or key not in cache:
        from ..data.for_task import task_splits
        splits = task_splits(recipe_task(run_dir), spec)
        if cache is None:
            return splits, spec, name
        cache[key] = splits
    return cache[key], spec, name


PARITY_ROWS = 4096  # test rows read from a row source (an image folder) for export parity


def parity_inputs(run_dir: Path, setting: str, input_shape: list[int],
                  vocab_size: int | None = None) -> ParityInputs:
    """The setting's test split reloaded from the run's recipe (``input.yaml``, else
    ``recipe.yaml``); when the data cannot be reloaded (a file source that moved, a shape
    that differs), 64 standard normal rows -- for a text student (``vocab_size``), 64 texts
    of random token ids -- with ``y`` None and the reason in the description."""
    try:
        splits, spec, name = run_splits(run_dir, setting)
    except (MentorError, OSError, ValueError, KeyError, TypeError) as e:
        why = f"the run's data could not be reloaded: {str(e).splitlines()[0]}"
    else:
        if list(splits.input_shape) == list(input_shape):
            stats = ({"mean": [float(v) for v in splits.mean],
                      "std": [float(v) for v in splits.std]} if splits.mean is not None else {})
            from ..data.rows import first_tensor, head_rows
            x = head_rows(splits.test.x, PARITY_ROWS)
            if vocab_size is not None and type(x) is not dict:  # token ids, 0 pads (tagging)
                x = {"input_ids": x, "attention_mask": (x != 0).long()}
            x = {k: v.contiguous() for k, v in x.items()} if type(x) is dict else x.float()
            n = len(first_tensor(x))
            return ParityInputs(x, splits.test.y[:n],
                                f"test split of {spec.source} reloaded from {name} "
                                f"({n} rows)", **stats)
        why = (f"the data of {name} has input shape {list(splits.input_shape)}, the "
               f"checkpoint {list(input_shape)}")
    if vocab_size is not None:
        from ..models.token_inputs import random_tokens
        length = int(input_shape[0])
        return ParityInputs(random_tokens(64, length, vocab_size), None,
                            f"64 texts of random token ids, {length} positions ({why})",
                            problem=why)
    g = torch.Generator().manual_seed(0)
    return ParityInputs(torch.randn(64, math.prod(input_shape), generator=g), None,
                        f"64 standard normal rows of {math.prod(input_shape)} features ({why})",
                        problem=why)


__all__ = ["Choice", "ParityInputs", "choose_student", "inference_module", "load_model",
           "metrics", "open_run", "parity_inputs", "run_data_spec", "run_splits", "setting_info",
           "sha256", "teacher_checkpoint"]
