"""Student export: one trained student of a run as ONNX, TorchScript or safetensors.

``export_student(run_dir, "onnx")`` writes the student alone (training-only parts removed,
see :func:`mentor.runs.read.inference_module`) into ``run_dir/export/<format>/`` with a model
card (``card.md``, ``card.json``): teacher lineage, data, method, seeds, accuracy, parameters,
latency and the parity of the exported file with the PyTorch model. Every file is written
into a temporary folder that is renamed into place when complete.

Input contract: a run trains its student on features standardized with the training split's
mean and std. The exported model takes the raw rows: the standardization is put in front of
the student (:class:`mentor.models.preprocess.Standardized`, in the ONNX and TorchScript
graphs; ``mentor.preprocess`` metadata and ``config.json``'s ``preprocess`` for safetensors,
rebuilt by :func:`mentor.runs.read.load_model`). The statistics are those recorded in the
student checkpoint (``mentor.standardization``), else those of the reloaded training split.
``standardized_input=True`` exports the student alone, for callers that standardize
themselves (the statistics are in the card). A run with ``data.standardize: false`` exports
the student alone; its input is the features as given. Image folders: pixels scaled to
[0, 1], flattened ``C*H*W`` (the per-channel standardization is in the model).

Formats:

- ``onnx``: ``student.onnx`` from ``torch.onnx.export(..., dynamo=True)`` (needs the
  ``export`` extra: onnx, onnxruntime, onnxscript) with a dynamic batch axis; input
  ``input`` ``(batch, features)`` float32, output ``logits``; checked with onnxruntime.
- ``torchscript``: ``student.pt`` from ``torch.jit.trace``; checked with ``torch.jit.load``.
  Loading TorchScript runs code stored in the file: load only files you made.
- ``safetensors``: ``student.safetensors`` (weights, with mentor's metadata) and
  ``config.json`` to rebuild the module with :func:`mentor.models.build_model` (and
  :func:`mentor.models.heads.rebuild` when a wrapper is kept); checked by rebuilding and reloading.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .._util.atomic import atomic_write_text
from ..errors import MentorError
from ..models.call import call_model
from ..models.token_inputs import TOKEN_INPUTS, TokenInputs, random_tokens

FORMATS = ("onnx", "torchscript", "safetensors")
# Largest accepted max abs logit difference, for logits within [-1, 1]; beyond that it grows
# with the largest reference logit (float32 rounding is relative): tol * max(1, max |logit|).
TOLERANCE = {"onnx": 1e-5, "torchscript": 1e-6, "safetensors": 0.0}
EXTRA = "pip install 'mentor[export]'"
ONNX_PACKAGES = ("onnx", "onnxruntime", "onnxscript")


class ExportFault(RuntimeError):
    """The exported file does not reproduce the model (not a user mistake)."""


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise MentorError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "onnx":
        import importlib.util
        missing = [p for p in ONNX_PACKAGES if importlib.util.find_spec(p) is None]
        if missing:
            raise MentorError(f"--format onnx needs the packages {', '.join(ONNX_PACKAGES)} "
                              f"(missing: {', '.join(missing)}); install the export extra: "
                              f"{EXTRA}")
    return fmt


def export_student(run_dir: Path, fmt: str, out: Path | None = None, *,
                   setting: str | None = None, method: str | None = None,
                   seed: int | None = None, repeats: int = 25,
                   standardized_input: bool = False) -> tuple[Path, dict]:
    """Export one student of ``run_dir``; return ``(output folder, card)``. The exported
    model takes raw rows (the run's standardization is part of it) unless
    ``standardized_input``."""
    from ..models import count_params
    from ..models.preprocess import for_export as standardized
    from ..registry import TASKS
    from ..runs.read import (choose_student, inference_module, load_model, open_run,
                           parity_inputs, recipe_task, setting_info, sha256,
                           teacher_checkpoint)

    check_format(fmt)
    run_dir = Path(run_dir)
    results = open_run(run_dir)
    out = Path(out) if out is not None else run_dir / "export" / fmt
    _check_out(out, run_dir)
    choice = choose_student(run_dir, results, setting, method, seed)
    saved, meta = load_model(choice.checkpoint, "student checkpoint")
    module, note = inference_module(saved, meta)
    if (meta.get("mentor.model") or {}).get("lora") is not None:  # LoRA merged: the plain model
        from ..models.hf import merged
        module = merged(module).eval()
        meta = {**meta, "mentor.model": {k: v for k, v in meta["mentor.model"].items()
                                         if k != "lora"}}
        note += "; its LoRA adapter merged into the weights"
    if isinstance(choice.row.get("params"), int) and choice.row["params"] != count_params(module):
        note += (f" (training-only parts removed: {choice.row['params']:,} parameters in "
                 f"training, {count_params(module):,} exported)")
    shape = list(meta["mentor.input_shape"])
    vocab = meta.get("mentor.vocab_size")  # a text student: token ids in
    tokenizer = run_dir / "tokenizer" / choice.setting  # the run's, for a text student
    data = parity_inputs(run_dir, choice.setting, shape, vocab_size=vocab)
    if vocab is None:
        data.x = data.x.contiguous()
        contract = input_contract(run_dir, choice.setting, meta, data, shape,
                                  standardized_input)
    else:
        contract = token_contract(shape, vocab, tokenizer.is_dir())
    exported, inputs, reference_x, round_trip = module, data.x, data.x, None
    if vocab is not None:
        exported = TokenInputs(module)
    elif contract.in_model:  # raw rows in: the test rows un-standardized (x * std + mean)
        exported, contract.preprocess = standardized(module, contract.mean, contract.std, shape)
        mean, std = torch.from_numpy(contract.mean), torch.from_numpy(contract.std)
        inputs = (data.x.double() * std.double() + mean.double()).float().contiguous()
        reference_x = (inputs - mean) / std  # the student's own input, computed here
        round_trip = float((reference_x - data.x).abs().max())
    with torch.no_grad():
        reference = call_model(module, reference_x)
        reference_one = call_model(module, _first(reference_x, 1))
    tpath = teacher_checkpoint(run_dir, results, choice.setting)
    teacher = load_model(tpath, "teacher checkpoint") if tpath else None

    made = [p for p in (out.parent, *out.parent.parents) if not os.path.lexists(p)]
    try:  # a read-only or full file system, a folder we may not write: one sentence
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    except OSError as e:
        _write_error(out, e)
    try:
        files, runtime = _WRITERS[fmt](exported, contract.metadata(meta), tmp, inputs)
        if vocab is not None and tokenizer.is_dir():  # the tokenizer that made its inputs
            shutil.copytree(tokenizer, tmp / "tokenizer")
            files["all"] = sorted(p.name for p in tmp.iterdir())
        with torch.no_grad():
            got = runtime(inputs)
            got_one = runtime(_first(inputs, 1))
        diff = max(float((got - reference).abs().max()),
                   float((got_one - reference_one).abs().max()))
        scale = max(1.0, float(reference.abs().max()))
        tolerance = TOLERANCE[fmt] * scale
        if not math.isfinite(diff) or diff > tolerance:
            raise ExportFault(f"the exported {fmt} model differs from the PyTorch student by "
                              f"{diff:.3g} (max abs logit difference), above the tolerance "
                              f"{tolerance:.3g}; nothing was written")
        task = TASKS.get(recipe_task(run_dir))  # the run's metric, on the exported outputs
        exported_acc = (task.metric_value(task.metric_state(got.double(), data.y))
                        if data.y is not None else None)
        latency = _latency(exported, runtime, teacher, shape, repeats, vocab)
        row, tinfo = choice.row, setting_info(results, choice.setting).get("teacher")
        tinfo = tinfo if tinfo is not None else (results.get("teacher") if tpath else None)
        env = _read_json(run_dir / "env.json")
        card = {
            "format": fmt, "files": files,
            "student": {
                "setting": choice.setting, "method": choice.method,
                "method_name": row.get("method_name"),
                "method_description": row.get("description"),
                "method_params": row.get("method_params"),
                "seed": choice.seed, "seeds": row.get("seeds"),
                "choice": choice.reason, "checkpoint": str(choice.checkpoint.relative_to(run_dir)),
                "architecture": meta.get("mentor.model"),
                "num_classes": meta.get("mentor.num_classes"), "input_shape": shape,
                "wrapper": meta.get("mentor.wrapper"), "inference": note,
                "preprocess": contract.preprocess,
                "params": count_params(module), "params_in_training": row.get("params"),
            },
            "accuracy": {
                "test_accuracy_mean": row.get("test_accuracy_mean"),
                "test_accuracy_std": row.get("test_accuracy_std"),
                "test_accuracy_seed": choice.test_accuracy,
                "val_accuracy_seed": choice.val_accuracy,
                "test_accuracy_exported": exported_acc,
                "metric": results.get("metric_name") or "test accuracy",
                "std": results.get("std"), "selection": results.get("selection"),
            },
            "teacher": _teacher_card(run_dir, tinfo, tpath, sha256),
            "data": {"setting": choice.setting,
                     "description": setting_info(results, choice.setting).get("data"),
                     "input": {"dtype": "float32" if vocab is None else "int64",
                               "shape": ["batch", _prod(shape)],
                               "layout": (f"rows of {_prod(shape)} features (input shape "
                                          f"{shape} flattened)" if vocab is None else
                                          f"{' and '.join(TOKEN_INPUTS)}, {shape[0]} "
                                          "positions each"),
                               "tokenizer": ("tokenizer/ (the run's)" if vocab is not None
                                             and tokenizer.is_dir() else None),
                               "contract": contract.text,
                               "standardized_input": standardized_input,
                               "standardization": contract.card()}},
            "parity": {"max_abs_diff": diff, "tolerance": tolerance,
                       "tolerance_rule": f"{TOLERANCE[fmt]:g} x max(1, max |reference logit|"
                                         f" = {scale:.3g})",
                       "inputs": data.description + ("; un-standardized to raw rows "
                                                     "(x * std + mean)" if contract.in_model
                                                     else "")
                                 + "; and its first row alone (batch 1)",
                       "compared": ("exported file on the raw rows vs the PyTorch student on "
                                    "them standardized again ((x - mean) / std, float32) "
                                    "(logits)" if contract.in_model else
                                    "exported file vs the PyTorch student (logits)"),
                       "round_trip_max_abs_diff": round_trip},
            "latency": latency,
            "mentor_version": _mentor_version(),
            "run": {"folder": str(run_dir), "name": results.get("name"),
                    "created": results.get("created"), "git": env.get("git"),
                    "torch": (env.get("versions") or {}).get("torch")},
        }
        atomic_write_text(tmp / "card.json", json.dumps(card, indent=1))
        atomic_write_text(tmp / "card.md", card_markdown(card))
        try:
            _replace(tmp, out)
        except OSError as e:
            _write_error(out, e)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in made:  # folders made for the export, innermost first
            with contextlib.suppress(OSError):
                p.rmdir()
        raise
    return out, card


# ------------------------------------------------------------------------ input contract

PIXELS = "pixels scaled to [0, 1], flattened C*H*W"


@dataclass
class InputContract:
    """What the exported model takes: its statistics (float32 ``(features,)``, None when the
    run did not standardize or they are unknown), whether they are in the model, the card's
    sentence, and the ``mentor.preprocess`` record once the wrapper is built."""
    mean: np.ndarray | None
    std: np.ndarray | None
    in_model: bool
    text: str
    source: str | None  # where the statistics come from
    images: bool
    input_shape: list
    preprocess: dict | None = None

    def metadata(self, meta: dict) -> dict:
        """The student's metadata for the exported file: ``mentor.preprocess`` when the model
        standardizes, else ``mentor.standardization`` when its inputs must be standardized."""
        from ..models.preprocess import PREPROCESS_KEY, STATS_KEY, standardization_record
        out = {k: v for k, v in meta.items() if k not in (PREPROCESS_KEY, STATS_KEY)}
        if self.preprocess is not None:
            out[PREPROCESS_KEY] = self.preprocess
        elif self.mean is not None:
            out[STATS_KEY] = standardization_record(self.mean, self.std, self.input_shape)
        return out

    def card(self) -> dict | None:
        if self.mean is None:
            return None
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std],
                "apply": "(x - mean) / std", "in_model": self.in_model,
                "per": "channel" if self.images else "feature", "source": self.source}


def token_contract(shape: list, vocab: int, tokenizer: bool) -> InputContract:
    """The input contract of a text student: token ids, never standardized; ``tokenizer``:
    whether the run saved its tokenizer (copied into the export)."""
    made = ("the run's tokenizer (tokenizer/)" if tokenizer else "the run's tokenizer (not "
            "saved by this run: rebuild it from its recipe)")
    return InputContract(None, None, False, f"token ids ({' and '.join(TOKEN_INPUTS)}, int64, "
                         f"batch x {shape[0]}) from {made}, padded to {shape[0]} positions "
                         f"with attention_mask 0 on padding; vocabulary of {vocab:,} ids",
                         None, False, list(shape))


def input_contract(run_dir: Path, setting: str, meta: dict, data, shape: list,
                   standardized_input: bool = False) -> InputContract:
    """The input contract of an export of the student with metadata ``meta``: its
    standardization statistics come from the checkpoint (``mentor.standardization``, written
    by the run), else from the reloaded training split (``data``: the
    :class:`~mentor.runs.read.ParityInputs`); a run without them did not standardize
    (``data.standardize: false``, a text source). Statistics that cannot be found for a run
    that standardized are refused unless ``standardized_input``."""
    from ..data.images import is_image_folder
    from ..models.preprocess import STATS_KEY, flat_statistics
    from ..runs.read import run_data_spec

    try:
        spec, _ = run_data_spec(run_dir, setting)
    except (MentorError, OSError, ValueError, KeyError, TypeError):
        spec = None
    recorded = meta.get(STATS_KEY)
    mean = std = source = None
    if recorded is not None:
        mean, std = flat_statistics(recorded, shape, "student checkpoint")
        source = "recorded in the student checkpoint (mentor.standardization)"
    elif data.mean is not None:
        mean = np.asarray(data.mean, dtype=np.float32)
        std = np.asarray(data.std, dtype=np.float32)
        source = "the training split of the reloaded data"
    images = (isinstance(recorded, dict) and recorded.get("per") == "channel") or (
        spec is not None and (any(getattr(spec, k) is not None for k in
                                  ("image_size", "channels", "unlabeled"))
                              or is_image_folder(Path(spec.source))))
    what = PIXELS if images else "features"
    if mean is None:  # the run did not standardize (reloaded without statistics, data
        # .standardize false, a text source), or its statistics cannot be found
        unknown = data.problem is not None and (spec is None or (spec.standardize
                                                                 and spec.text is None))
        if unknown and not standardized_input:
            raise MentorError(
                "the student's input standardization is unknown: its checkpoint records no "
                "mean and std (a run written before mentor recorded them) and "
                f"{data.problem}; expected the run's data where its recipe names it, or "
                "--standardized-input to export a model that takes standardized inputs")
        if unknown:
            return InputContract(None, None, False, f"{what}, standardized by the caller with "
                                 "the training split's mean and std, which this export could "
                                 "not find (the model does not standardize)", None, images,
                                 list(shape))
        return InputContract(None, None, False, f"{what} as given, not standardized (the run "
                             "did not standardize its inputs)", None, images, list(shape))
    if standardized_input:
        per = "per channel" if images else "per feature"
        return InputContract(mean, std, False, f"{what}, then standardized {per} by the "
                             "caller: (x - mean) / std with the training split's mean and std "
                             "(in card.json); the model does not standardize", source, images,
                             list(shape))
    if images:
        text = f"{PIXELS} (the per-channel standardization is part of the model)"
    else:
        text = ("raw features in the order of the training data (the standardization is part "
                "of the model)")
    return InputContract(mean, std, True, text, source, images, list(shape))


def _write_error(out: Path, e: OSError):
    """An export that cannot be written (read-only or full file system, no permission, a
    name too long) as one sentence; other errors as they are."""
    from .._util.atomic import _raise_write_error
    _raise_write_error(out, e)
    raise e


def _check_out(out: Path, run_dir: Path) -> None:
    """``--out`` must be a new folder, an empty one, or an earlier export (replaced as a
    whole): never the current folder, the run folder or a folder holding them (the export is
    renamed into place), never a symbolic link or a file."""
    from .._util.safeio import NAME_MAX, kind_of, shown
    if any(len(os.fsencode(p)) > NAME_MAX for p in out.parts):
        raise MentorError(f"--out: {shown(out)} has a name component longer than {NAME_MAX} "
                          "bytes (the file system's limit); expected a shorter name")
    if os.path.islink(out):
        raise MentorError(f"--out: {shown(out)} is a symbolic link; expected a folder to write "
                          "the export to (the export is renamed into place, which would replace "
                          "the link)")
    if os.path.lexists(out) and not os.path.isdir(out):
        what = "a file" if os.path.isfile(out) else kind_of(os.lstat(out).st_mode)
        raise MentorError(f"--out: {shown(out)} is {what}; expected a folder to write the "
                          "export to")
    here, target = Path.cwd().resolve(), out.resolve()
    for name, inner in (("the current folder", here), ("the run folder", run_dir.resolve())):
        if inner == target or target in inner.parents:
            which = name if inner == target else f"a folder holding {name}"
            raise MentorError(f"--out: {shown(out)} is {which}; expected a new folder for the "
                              "export (it is written next to it and renamed into place), e.g. "
                              "--out export")
    if out.is_dir() and any(out.iterdir()) and not (out / "card.json").is_file():
        raise MentorError(f"--out: {shown(out)} is a non-empty folder that holds no earlier "
                          "export (card.json); expected a new or empty folder")


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` folder to ``out``; an earlier export there is replaced."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------- writers

def _first(x, n: int):
    """The first ``n`` rows of a batch (each named tensor's, for token inputs)."""
    return {k: v[:n] for k, v in x.items()} if type(x) is dict else x[:n]


def _example(x):
    if type(x) is dict:
        return {k: _example(v) for k, v in x.items()}
    return x[:2] if len(x) >= 2 else torch.cat([x, x])


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' deprecation warnings and log lines (torchvision not found)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def _write_onnx(module: nn.Module, meta: dict, tmp: Path, x: torch.Tensor):
    import onnx
    import onnxruntime as ort

    path = tmp / "student.onnx"
    batch = torch.export.Dim("batch")
    names = list(x) if type(x) is dict else ["input"]  # token inputs keep their names
    if type(x) is dict:
        args, kwargs = (), _example(x)
        shapes = {k: {0: batch} for k in names}
    else:
        args, kwargs, shapes = (_example(x),), None, ({0: batch},)
    try:
        with _quiet(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            torch.onnx.export(module, args, str(path), kwargs=kwargs, dynamo=True,
                              input_names=names, output_names=["logits"],
                              dynamic_shapes=shapes, external_data=False, verbose=False)
        onnx.checker.check_model(str(path))
    except Exception as e:  # noqa: BLE001 - the exporter raises many types
        first = (str(e).strip().splitlines() or [""])[0]
        raise ExportFault(f"torch.onnx.export failed ({type(e).__name__}: {first})") from None
    opset = next((o.version for o in onnx.load(str(path)).opset_import
                  if o.domain in ("", "ai.onnx")), None)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(batch) -> torch.Tensor:
        feed = ({k: v.numpy() for k, v in batch.items()} if type(batch) is dict
                else {"input": batch.numpy()})
        return torch.from_numpy(session.run(None, feed)[0])
    files = sorted(p.name for p in tmp.iterdir())
    return {"model": "student.onnx", "all": files, "opset": opset,
            "exporter": "torch.onnx.export(dynamo=True)",
            "input": names[0] if len(names) == 1 else names,
            "output": "logits", "dynamic_axes": {**{k: [0] for k in names}, "logits": [0]},
            "runtime": f"onnxruntime {ort.__version__} (CPUExecutionProvider)"}, run


def _write_torchscript(module: nn.Module, meta: dict, tmp: Path, x: torch.Tensor):
    path = tmp / "student.pt"
    with _quiet(), torch.no_grad():
        traced = (torch.jit.trace(module, example_kwarg_inputs=_example(x)) if type(x) is dict
                  else torch.jit.trace(module, _example(x)))
        torch.jit.save(traced, str(path))
        loaded = torch.jit.load(str(path), map_location="cpu").eval()

    def run(batch) -> torch.Tensor:
        with _quiet():
            return loaded(**batch) if type(batch) is dict else loaded(batch)
    return {"model": "student.pt", "all": ["student.pt"], "exporter": "torch.jit.trace",
            "runtime": f"torch.jit.load (torch {torch.__version__})",
            "note": "loading TorchScript runs code stored in the file: load only files you "
                    "made"}, run


def _write_safetensors(module: nn.Module, meta: dict, tmp: Path, x: torch.Tensor):
    from ..engine.checkpoint import save_weights
    from ..models.heads import for_export
    from ..models.preprocess import PREPROCESS_KEY, STATS_KEY, Standardized
    from ..runs.read import load_model

    arch = dict(meta["mentor.model"])
    # the weights are the bare (or head-wrapped) student's; a standardization in front of it
    # is rebuilt from its metadata (mentor.preprocess)
    student = module.module if isinstance(module, (Standardized, TokenInputs)) else module
    _, wrapper = for_export(student)  # the inference module: a wrapper that predicts is kept
    new_meta = {"mentor.model": arch, "mentor.num_classes": meta["mentor.num_classes"],
                "mentor.input_shape": list(meta["mentor.input_shape"])}
    if wrapper is not None:
        new_meta["mentor.wrapper"] = wrapper
    for key in (PREPROCESS_KEY, STATS_KEY):
        if meta.get(key) is not None:
            new_meta[key] = meta[key]
    save_weights(tmp / "student.safetensors", student, new_meta)
    config = {"format": "mentor-student-1", "model": arch.pop("model"), "model_kwargs": arch,
              "num_classes": meta["mentor.num_classes"],
              "input_shape": list(meta["mentor.input_shape"]), "wrapper": wrapper,
              "preprocess": meta.get(PREPROCESS_KEY),
              "standardization": meta.get(STATS_KEY),
              "rebuild": "mentor.models.build_model(model, input_shape, num_classes, "
                         "**model_kwargs), wrapped by mentor.models.heads.rebuild(module, wrapper) "
                         "when wrapper is set, then safetensors.torch.load_file -> "
                         "load_state_dict; when preprocess is set, the model is "
                         "mentor.models.preprocess.rebuild(module, preprocess, input_shape): "
                         "module((x - mean) / std) on raw rows (mean and std repeated over each "
                         "channel's pixels when per is 'channel'); mentor.runs.read.load_model "
                         "does all of it",
              "input": (f"token ids: {' and '.join(TOKEN_INPUTS)} (named tensors, "
                        "model(**inputs))" if isinstance(module, TokenInputs) else
                        "raw rows: the model standardizes them (preprocess)"
                        if meta.get(PREPROCESS_KEY) is not None else
                        "rows standardized by the caller with standardization's mean and std"
                        if meta.get(STATS_KEY) is not None else "rows as given")}
    atomic_write_text(tmp / "config.json", json.dumps(config, indent=1))
    reloaded, _ = load_model(tmp / "student.safetensors", "exported student")
    mine = (student if isinstance(module, TokenInputs) else module).state_dict()
    theirs = reloaded.state_dict()
    if mine.keys() != theirs.keys() or any(not torch.equal(mine[k], theirs[k]) for k in mine):
        raise ExportFault("the exported safetensors weights differ from the student's after "
                          "reloading; nothing was written")
    same = isinstance(module, Standardized) == isinstance(reloaded, Standardized) and (
        not isinstance(module, Standardized)
        or (torch.equal(module.mean, reloaded.mean) and torch.equal(module.std, reloaded.std)))
    if not same:
        raise ExportFault("the exported safetensors student does not rebuild the same input "
                          "standardization; nothing was written")
    return {"model": "student.safetensors", "config": "config.json",
            "all": ["config.json", "student.safetensors"],
            "runtime": "mentor.runs.read.load_model (rebuild from config, load weights)",
            "weights_equal": True}, reloaded


_WRITERS: dict[str, Callable] = {"onnx": _write_onnx, "torchscript": _write_torchscript,
                                 "safetensors": _write_safetensors}


# ------------------------------------------------------------------------------- card

def _latency(module, runtime, teacher, shape, repeats: int, vocab: int | None = None) -> dict:
    """Batch 1 and 256: the PyTorch student against the teacher (the bench's measurement),
    and the exported file in its own runtime (a text student: on random token ids)."""
    from ..latency import BATCHES, compare, method_text
    from .latency import teacher_fn

    g = torch.Generator().manual_seed(0)
    x = (torch.randn(max(BATCHES), _prod(shape), generator=g) if vocab is None
         else random_tokens(max(BATCHES), int(shape[0]), vocab))
    call_teacher = teacher_fn(*teacher, shape, x) if teacher is not None else None
    m = compare(call_teacher, {"student": module, "exported": runtime}, x, BATCHES, repeats)
    return {"threads": torch.get_num_threads(), "device": "cpu", "batches": list(BATCHES),
            "teacher": m["teacher"], "student_torch": m["students"]["student"],
            "student_exported": m["students"]["exported"], "method": method_text(repeats),
            "inputs": "standard normal rows" if vocab is None else "random token ids"}


def _teacher_card(run_dir: Path, info: dict | None, path: Path | None, sha) -> dict | None:
    if info is None and path is None:
        return None
    info = info or {}
    return {"description": info.get("description"), "params": info.get("params"),
            "test_accuracy": info.get("test_accuracy"),
            "checkpoint": str(path.relative_to(run_dir)) if path else None,
            "sha256": sha(path) if path else None}


def _prod(shape) -> int:
    return math.prod(int(n) for n in shape)


def _read_json(path: Path) -> dict:
    try:
        from .._util.safeio import MAX_JSON_BYTES, read_bounded
        return json.loads(read_bounded(path, MAX_JSON_BYTES))
    except (OSError, ValueError):
        return {}


def _mentor_version() -> str:
    from .. import __version__
    return __version__


def _pct(v: Any) -> str:
    return f"{100 * v:.2f} %" if isinstance(v, (int, float)) else "n/a"


def _count(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else "n/a"


def _ms(entry: dict | None, b: int) -> str:
    e = (entry or {}).get(str(b))
    return f"{1e3 * e['latency_s']:.3f} ms ({e['throughput_rows_s']:,.0f} rows/s)" if e else "n/a"


def _first_upper(words: str) -> str:
    """``"test span F1"`` -> ``"Test span F1"`` (the rest of the words as they are)."""
    return words[:1].upper() + words[1:]


def card_markdown(card: dict) -> str:
    """The model card as Markdown (the same facts as ``card.json``)."""
    s, a, t, p, lat = (card["student"], card["accuracy"], card["teacher"], card["parity"],
                       card["latency"])
    params = ", ".join(f"{k}={v}" for k, v in (s.get("method_params") or {}).items()) or "none"
    lines = [
        f"# Student {s['setting']} / {s['method']} / seed {s['seed']} ({card['format']})", "",
        f"- **File**: `{card['files']['model']}` ({card['files'].get('runtime', '')})",
        f"- **Chosen**: {s['choice']}",
        f"- **Method**: {s.get('method_description') or s['method']} "
        f"(`{s.get('method_name')}`; parameters: {params})",
        f"- **Seeds of the method**: {s.get('seeds')}; this seed: {s['seed']}",
        f"- **{_first_upper(a.get('metric', 'test accuracy'))}**: "
        f"{_pct(a['test_accuracy_mean'])} ± {_pct(a['test_accuracy_std'])}"
        f" over seeds ({a.get('std')}); this seed {_pct(a['test_accuracy_seed'])}"
        f" (validation {_pct(a['val_accuracy_seed'])}); the exported file on the test split: "
        f"{_pct(a['test_accuracy_exported'])}",
        f"- **Architecture**: {s['architecture']}, {s['num_classes']} classes, input shape "
        f"{s['input_shape']}; {s['params']:,} parameters (in training: "
        f"{_count(s.get('params_in_training'))})",
        f"- **Inference**: {s['inference']}",
        f"- **Input**: {card['data']['input']['contract']}",
        f"- **Data**: {card['data'].get('description')}; input "
        f"{card['data']['input']['layout']}, float32"
        + ("; the training split's mean and std are in card.json"
           if card["data"]["input"]["standardization"] else ""),
    ]
    if t:
        lines.append(f"- **Teacher**: {t.get('description')}, {_count(t.get('params'))} "
                     "parameters, "
                     f"{a.get('metric', 'test accuracy')} {_pct(t.get('test_accuracy'))}; "
                     + (f"checkpoint `{t.get('checkpoint')}` sha256 `{t.get('sha256')}`"
                        if t.get("checkpoint") else "no checkpoint mentor can load alone "
                        "(a teacher from a label store, or one that reads a graph)"))
    else:
        lines.append("- **Teacher**: none in this run")
    lines += [
        f"- **Parity**: max abs logit difference {p['max_abs_diff']:.3g} (tolerance "
        f"{p['tolerance']:.3g} = {p['tolerance_rule']}) on {p['inputs']}",
        f"- **Latency** (CPU, {lat['threads']} torch thread(s); {lat['method']}):", "",
        "| model | batch 1 | batch 256 |", "|---|---|---|",
    ]
    if lat.get("teacher"):
        lines.append(f"| teacher (PyTorch) | {_ms(lat['teacher'], 1)} | "
                     f"{_ms(lat['teacher'], 256)} |")
    lines += [f"| student (PyTorch) | {_ms(lat['student_torch'], 1)} | "
              f"{_ms(lat['student_torch'], 256)} |",
              f"| student ({card['format']} file) | {_ms(lat['student_exported'], 1)} | "
              f"{_ms(lat['student_exported'], 256)} |", "",
              f"mentor {card['mentor_version']}; run `{card['run']['name']}` "
              f"({card['run'].get('created')}), git {card['run'].get('git')}.", ""]
    return "\n".join(lines)


__all__ = ["FORMATS", "TOLERANCE", "ExportFault", "card_markdown", "check_format",
           "export_student"]
