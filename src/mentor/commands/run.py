"""Run a recipe: teacher(s), then every setting x method x seed; results, report, leaderboard.

Everything that can be checked is checked before the run folder exists (recipe, data,
checkpoints, class counts). The run is written to ``<out>/.<name>-<time>.partial`` and moved
to ``<out>/<name>-<time>`` when complete, so a failed run leaves no half-written folder.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import torch
import yaml
from rich.text import Text

from .. import data as data_mod
from ..data.augment import IDS, ROWS, TOKENS, Augment, view_inputs
from ..data.rows import as_rows, head_rows, read_chunks, subset_rows
from ..data.splits import Splits
from ..engine import fit, get_accelerator
from .._util.atomic import atomic_write_text
from ..engine.checkpoint import save_weights
from ..engine.evaluate import evaluate
from ..losses.objective import probe_objectives
from ..errors import MentorError
from ..fairness import budget_notes
from ..models.heads import for_export
from ..labels import StoreTeacher
from ..latency import speedup
from ..methods import MethodPlan, get_method
from ..graphs.teacher import GraphTeacher
from ..models import build_model, count_params
from ..models.graph import GRAPH_MODELS
from ..registry import TASKS
from ..contracts import TaskAdapter
from ..tasks import CLASSIFICATION
from ..recipe import ModelSpec, Recipe, TeacherSpec, TrainSpec, parse_recipe, setting_raw
from ..runs.progress import Bars
from ..runs.folder import INPUT, finish_run_dir, open_run_folder, student_dir
from ..runs.env import environment
from ..runs.trackers import RunTrackers, Tracked, check_available
from ..teachers import (CommitteeTeacher, EnsembleTeacher, LabelAssistedNet, ModuleTeacher,
                       PrivilegedInputTeacher, dual_path_objectives, label_input_shape,
                       load_checkpoint_teacher)


@dataclass
class Setting:
    name: str
    description: str
    recipe: Recipe
    splits: Splits
    teacher: Any = None
    teacher_key: str = ""
    teacher_stages: list[Splits] = field(default_factory=list)  # teacher.pretrain data
    methods: list[tuple[str, str, MethodPlan, dict]] = field(default_factory=list)
    own_methods: bool = False  # the setting lists its own methods
    budget_notes: dict[str, str] = field(default_factory=dict)  # label -> what it saw (unequal)


@dataclass
class RunPlan:
    recipe: Recipe
    raw: dict
    settings: list[Setting]
    methods: list[tuple[str, str, MethodPlan, dict]]  # label, name, plan, resolved params
    teachers: dict[str, dict] = field(default_factory=dict)  # key -> info


def _teacher_key(recipe: Recipe) -> str:
    d = recipe.data.model_dump()
    for key in ("labeled_fraction", "generated", "generated_seed"):
        d.pop(key)  # the teacher trains on every real training row and label
    t = recipe.teacher.model_dump(mode="json") if recipe.teacher else None
    return json.dumps({"data": d, "teacher": t, "train": recipe.train.model_dump()},
                      sort_keys=True)


def _check_graph_models(recipe: Recipe, splits: Splits, plans) -> None:
    """A graph model (reads the graph) is a teacher trained on graph data, never a student,
    a checkpoint or a teacher of feature distillation."""
    if recipe.student.model in GRAPH_MODELS:
        raise MentorError(f"student.model {recipe.student.model!r} reads the graph; expected a "
                          "student that reads node features only (mlp, linear): a graph model "
                          "can be the teacher of task: graph_nodes")
    t = recipe.teacher
    if t is None or t.model not in GRAPH_MODELS:
        return
    if t.checkpoint is not None:
        raise MentorError(f"teacher.checkpoint with teacher.model {t.model!r}: a graph teacher "
                          "is trained from the recipe; expected no checkpoint")
    if splits.graph is None:
        raise MentorError(f"teacher.model {t.model!r} reads a graph; expected task: "
                          "graph_nodes with a graph source (data.source contextual-hypergraph "
                          "or a .npz with edges)")
    for label, _, plan, _ in plans:
        if plan.taps:
            raise MentorError(f"method {label!r} distils teacher features, but a graph teacher "
                              "serves logits by node id; expected a logit method (kd, dkd, ...)")


def _check_student(spec: ModelSpec, splits: Splits, where: str) -> None:
    if spec.num_classes is not None and spec.num_classes != splits.num_classes:
        raise MentorError(f"{where}.num_classes is {spec.num_classes} but the data and teacher "
                          f"have {splits.num_classes} classes; expected the same")
    if spec.model == "cnn" and len(splits.input_shape) not in (1, 2, 3):
        raise MentorError(f"{where}.model 'cnn' needs 1-D, 2-D or (C, H, W) image inputs, got "
                          f"input shape {splits.input_shape}")
    try:  # shapes only: a model that cannot read these data stops the run before it starts
        build_model(spec.model, splits.input_shape, splits.num_classes,
                    vocab_size=splits.vocab_size, check_only=True, **spec.build_kwargs())
    except MentorError as e:
        raise MentorError(f"{where}: {e}") from None


def _static_teacher(spec: TeacherSpec, splits: Splits, field: str = "teacher"):
    """A teacher that needs no training (checkpoint or ensemble of such), else None."""
    if spec.checkpoint is not None:
        fields = spec.model_spec().model_dump(exclude_none=True) if spec.model else None
        if fields:
            fields.pop("num_classes", None)
        return load_checkpoint_teacher(spec.checkpoint, input_shape=splits.input_shape,
                                       num_classes=splits.num_classes, model_fields=fields,
                                       field=f"{field}.checkpoint")
    if spec.store is not None:
        from ..labels import LabelStore
        store = LabelStore.open(spec.store, data=splits.train.x,
                                allow_mismatch=spec.allow_mismatch)
        if store.kind.name == "tensor" or store.kind.num_classes != splits.num_classes:
            raise MentorError(f"{field}.store '{spec.store}' holds "
                              f"{store.manifest['kind']}; expected class outputs for "
                              f"{splits.num_classes} classes")
        return store.as_teacher()
    if spec.ensemble is not None:
        members = [_static_teacher(m, splits, f"{field}.ensemble[{i}]")
                   for i, m in enumerate(spec.ensemble)]
        if any(m is None for m in members):
            return None
        if spec.combine in ("probs", "logits"):
            if spec.weights is not None:
                raise MentorError(f"{field}.weights are only used with combine 'weighted', got "
                                  f"combine {spec.combine!r}")
            return EnsembleTeacher(members, spec.combine)
        return CommitteeTeacher(members, fuse=spec.combine, weights=spec.weights)
    return None


def load_recipe_data(recipe: Recipe) -> Splits:
    """The splits a recipe's ``data`` section describes, read for its task
    (:func:`mentor.data.for_task.task_splits`)."""
    from ..data.for_task import task_splits
    return task_splits(recipe.task, recipe.data)


def plan_run(raw: dict, source: str = "recipe") -> RunPlan:
    """Validate everything and load data and checkpoint teachers, before writing anything."""
    recipe = parse_recipe(raw, source)
    if recipe.active is not None:
        raise MentorError(f"{source}: this recipe has an 'active' section; run it with "
                          "`mentor active`")
    check_available(recipe.train.log_with, f"{source}: train.log_with")
    setting_specs = recipe.settings or []
    settings: list[Setting] = []
    data_cache: dict[str, Splits] = {}
    if not setting_specs:
        entries = [("default", recipe.description, recipe)]
    else:
        entries = [(s.name, s.description, parse_recipe(setting_raw(raw, s.name), source))
                   for s in setting_specs]
        names = [e[0] for e in entries]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise MentorError(f"settings: name {sorted(dup)[0]!r} is used twice; expected "
                              "unique names")
    for name, desc, r in entries:
        key = json.dumps(r.data.model_dump(), sort_keys=True)
        if key not in data_cache:
            data_cache[key] = load_recipe_data(r)
        splits = data_cache[key]
        _check_student(r.student, splits, "student")
        if r.teacher is not None and r.teacher.model is not None:
            _check_student(r.teacher.model_spec(), splits, "teacher")
        own = any(sp.name == name and sp.methods for sp in setting_specs)
        planned = _plan_methods(r)
        _check_graph_models(r, splits, planned)
        semi = r.train.unlabeled_ratio > 0 and not bool(splits.train.labeled.all())
        notes = budget_notes(name, [(m[0], m[2]) for m in planned], semi,
                             list(r.train.allow_unequal))
        settings.append(Setting(name, desc, r, splits, teacher_key=_teacher_key(r),
                                methods=planned, own_methods=own, budget_notes=notes))
    methods = _plan_methods(recipe)
    for s in settings:
        students_of_teacher = [m[0] for m in s.methods if m[2].needs_teacher]
        if students_of_teacher and s.recipe.teacher is None:
            raise MentorError(f"teacher is required: method {students_of_teacher[0]!r} distills"
                              " from a teacher; expected a 'teacher' section (model or "
                              "checkpoint)")

    def check_ensemble(spec: TeacherSpec, where: str) -> None:
        for i, m in enumerate(spec.ensemble or []):  # every member must be a checkpoint
            if m.ensemble is not None:
                check_ensemble(m, f"{where}.ensemble[{i}]")
            elif m.checkpoint is None:
                raise MentorError(f"{where}.ensemble[{i}] has no checkpoint (model {m.model!r});"
                                  " expected every ensemble member to be a safetensors checkpoint"
                                  " (training ensemble members from a recipe is not supported)")
    for s in settings:
        if s.recipe.teacher is not None:
            check_ensemble(s.recipe.teacher, "teacher")
    for s in settings:
        aug = s.recipe.train.augment
        task = TASKS.get(s.recipe.task)
        expected = view_inputs(task.position_views, s.splits.vocab_size is not None)
        for role, ops in (aug.pipelines().items() if aug is not None else ()):
            if ops is not None:  # names and parameters checked against the input layout
                pipe = Augment(ops, s.splits.input_shape, where=f"train.augment.{role}")
                if pipe and pipe.reads != expected:
                    raise MentorError(
                        f"train.augment.{role}: {pipe.describe()} augments "
                        f"{_VIEW_WORDS[pipe.reads][0]}, but the data are "
                        f"{_VIEW_WORDS[expected][1]}; expected augmentations of "
                        f"{_VIEW_WORDS[expected][2]}")
        for label, _, plan, _ in s.methods:
            try:
                probe_objectives(plan.objectives, task.example(s.splits.num_classes),
                                 task.elements)
            except MentorError as e:
                raise MentorError(f"method {label!r}: {e}") from None
    run = RunPlan(recipe, raw, settings, methods)
    stage_cache: dict[str, list[Splits]] = {}
    for s in settings:
        if s.recipe.teacher is None:
            continue
        t = _static_teacher(s.recipe.teacher, s.splits)
        if t is not None:
            if t.num_classes != s.splits.num_classes:
                raise MentorError(f"teacher outputs {t.num_classes} classes but the data has "
                                  f"{s.splits.num_classes}")
            s.teacher = t
            if isinstance(t, StoreTeacher):  # tapped modules must be stored features
                for label, _, plan, _ in s.methods:
                    for tap in plan.taps:
                        if tap.teacher not in t.store.features:
                            held = ", ".join(map(repr, t.store.features)) or "none"
                            raise MentorError(
                                f"method {label!r} reads teacher module {tap.teacher!r}, but "
                                f"teacher.store '{s.recipe.teacher.store}' holds no such "
                                f"feature (it holds {held}); expected a store labeled with "
                                f"--feature {tap.teacher}")
        elif s.recipe.teacher.pretrain:
            if s.teacher_key not in stage_cache:  # settings that share a teacher load once
                stage_cache[s.teacher_key] = stage_splits(s.recipe.teacher, s.splits)
            s.teacher_stages = stage_cache[s.teacher_key]
        if t is None and s.recipe.teacher.model is None:
            raise MentorError("teacher.ensemble members must be checkpoints (training ensemble "
                              "members from a recipe is not supported yet)")
    return run


# what each kind of view reads, in words: (as augmented, as the data, as expected)
_VIEW_WORDS = {
    ROWS: ("numeric rows", "numeric rows", "rows"),
    TOKENS: ("token ids", "token ids (data.text)", "token ids (token_drop, token_span)"),
    IDS: ("token ids in place", "token ids with a tag per position (task: tagging)",
          "token ids that keep every position (token_resample)"),
}


def _plan_methods(recipe: Recipe) -> list[tuple[str, str, MethodPlan, dict]]:
    """(label, name, plan, resolved parameters) of each method of a recipe; a setting's own
    methods get their own plans (and so their own refiner state)."""
    methods = []
    for m in recipe.method_list():
        params = {k: v for k, v in (m.model_extra or {}).items()}
        method = get_method(m.name)
        resolved = method.params.model_validate(params).model_dump()
        methods.append((m.label or m.name, m.name, method.plan(**params), resolved))
    labels = [m[0] for m in methods]
    dup = {n for n in labels if labels.count(n) > 1}
    if dup:
        raise MentorError(f"methods: {sorted(dup)[0]!r} appears twice; give each a distinct "
                          "'label'")
    return methods


def _all_labeled(split: data_mod.Split, task: TaskAdapter = CLASSIFICATION) -> data_mod.Split:
    real = task.known(split.y)  # generated rows (label -1) are not the teacher's data
    return data_mod.Split(subset_rows(split.x, real), split.y[real],
                          torch.ones(int(real.sum()), dtype=torch.bool))


def _same_precision(tspec: TrainSpec, default_train: TrainSpec) -> TrainSpec:
    if "mixed_precision" not in tspec.model_fields_set:  # one precision per process
        tspec = tspec.model_copy(update={"mixed_precision": default_train.mixed_precision})
    return tspec


def stage_splits(spec: TeacherSpec, splits: Splits) -> list[Splits]:
    """The data of each ``teacher.pretrain`` stage, checked against the recipe's data."""
    out = []
    for i, stage in enumerate(spec.pretrain or []):
        where = f"teacher.pretrain[{i}].data"
        st = stage.data.load()
        if st.input_shape != splits.input_shape or st.num_classes != splits.num_classes:
            raise MentorError(f"{where} ({stage.data.source}) has inputs {st.input_shape} and "
                              f"{st.num_classes} classes; expected {splits.input_shape} and "
                              f"{splits.num_classes} like the recipe's data")
        out.append(st)
    return out


def train_teacher(spec: TeacherSpec, splits: Splits, default_train: TrainSpec,
                  out_dir: Path | None, on_epoch=None, *, stages: list[Splits] | None = None,
                  progress=None, resume: bool = False,
                  task: TaskAdapter = CLASSIFICATION) -> tuple[ModuleTeacher, dict]:
    """Train the teacher described in the recipe on every training label (method scratch),
    scored by ``task``'s metric (its ``test_accuracy`` is that metric).

    With ``teacher.pretrain`` the teacher first trains on each stage's data in turn (weights
    carried over; ``stages`` are their loaded splits), then -- unless ``adapt`` is false --
    on the recipe's data. ``progress(name, epochs)`` returns a per-epoch callback per stage.
    With ``out_dir`` each training checkpoints into ``out_dir/state*``; ``resume`` continues
    from those checkpoints.
    """
    if spec.model in GRAPH_MODELS:  # full batch over the data's graph
        from .graph_teacher import train_recipe_graph_teacher
        return train_recipe_graph_teacher(spec, splits, default_train, out_dir,
                                          progress("teacher", (spec.train or default_train)
                                                   .epochs) if progress else on_epoch)
    acc = get_accelerator(default_train.mixed_precision)
    tspec = _same_precision(spec.train or default_train, default_train)
    mspec = spec.model_spec()
    priv = spec.privileged
    input_shape = (label_input_shape(splits.input_shape, splits.num_classes) if priv
                   else splits.input_shape)
    torch.manual_seed(spec.seed)
    module = build_model(mspec.model, input_shape, splits.num_classes,
                         vocab_size=splits.vocab_size, **mspec.build_kwargs())
    if priv is not None:  # LAD: the label code is an input; two noisy passes per step
        module = LabelAssistedNet(module, splits.num_classes, train_noise=priv.train_noise,
                                  use_noise=priv.use_noise, seed=spec.seed)
        objectives = dual_path_objectives(priv.consistency, priv.temperature)
    else:
        objectives = get_method("scratch").plan().objectives
    test_x, test_y = splits.test.x.to(acc.device), splits.test.y.to(acc.device)
    stages = stage_splits(spec, splits) if stages is None else stages
    history = []
    for i, (stage, st) in enumerate(zip(spec.pretrain or [], stages)):
        name = stage.name or stage.data.source
        sspec = _same_precision(stage.train or tspec, default_train)
        cb = progress(f"teacher / {name}", sspec.epochs) if progress else None
        res = fit(module, _all_labeled(st.train, task), st.val, objectives=objectives, spec=sspec,
                  seed=spec.seed + i, num_outputs=splits.num_classes, on_epoch=cb,
                  checkpoint_dir=out_dir / f"state-stage{i}" if out_dir else None,
                  resume=resume, task=task)
        module = res.model
        history.append({"stage": name, "data": st.describe(),
                        "val_accuracy": res.best_val_accuracy,
                        "test_accuracy": evaluate(module, test_x, test_y, acc,
                                                  task=task)[task.metric]})
    if spec.adapt:
        cb = progress("teacher", tspec.epochs) if progress else on_epoch
        res = fit(module, _all_labeled(splits.train, task), splits.val, objectives=objectives,
                  spec=tspec, seed=spec.seed, num_outputs=splits.num_classes, on_epoch=cb,
                  checkpoint_dir=out_dir / "state" if out_dir else None, resume=resume,
                  task=task)
    elif not history:  # a saved model (model: hf, path) used as it is: scored, not trained
        module.to(acc.device).eval()
        val = evaluate(module, splits.val.x.to(acc.device), splits.val.y.to(acc.device), acc,
                       task=task)
        res = SimpleNamespace(model=module, best_val_accuracy=val[task.metric], best_epoch=0,
                              resumed_step=0)
    test = evaluate(res.model, test_x, test_y, acc, labels_as_input=priv is not None,
                    task=task)
    arch = {"model": mspec.model, **mspec.build_kwargs()}
    description = _describe_model(arch, splits) + (" trained on all train labels" if spec.adapt
                                                   or history else " as saved (not trained "
                                                   "here)")
    if history:
        chain = " then ".join(h["stage"] for h in history)
        description = (_describe_model(arch, splits) + f" pre-trained on {chain}" +
                       (", then adapted on all train labels" if spec.adapt
                        else " (not adapted to the recipe's data)"))
    net = res.model
    if priv is not None:
        plain = _describe_model(arch, splits).replace(f"MLP {splits.in_features}-",
                                                      f"MLP ({splits.in_features}+"
                                                      f"{splits.num_classes})-", 1)
        description = (f"label-assisted {plain} (LAD: sees a one-hot "
                       f"label code, noise {priv.train_noise:g}; dual-path consistency "
                       f"x{priv.consistency:g})")
        net = res.model.net
    info = {"description": description, "params": count_params(net),
            "test_accuracy": test[task.metric], "val_accuracy": res.best_val_accuracy,
            "best_epoch": res.best_epoch, "seed": spec.seed}
    if res.resumed_step:
        info["resumed_from_step"] = res.resumed_step
    if history:  # each stage's teacher scored on the recipe's test split
        info["stages"] = history
    if priv is not None:  # what the label channel buys: accuracy without any label code
        info["test_accuracy_without_labels"] = evaluate(res.model, test_x, test_y,
                                                        acc)["accuracy"]
    if out_dir is not None and acc.is_main_process:
        meta = {"mentor.model": arch, "mentor.num_classes": splits.num_classes,
                "mentor.input_shape": list(input_shape)}
        if splits.vocab_size is not None:
            meta["mentor.vocab_size"] = splits.vocab_size
        if priv is not None:
            meta["mentor.privileged"] = priv.model_dump(mode="json")
        save_weights(out_dir / "model.safetensors", net, meta)
        atomic_write_text(out_dir / "recipe.yaml", yaml.safe_dump(
            {"teacher": spec.model_dump(mode="json", exclude_none=True),
             "train": tspec.model_dump(mode="json"), "data": splits.describe(),
             "test_accuracy": test[task.metric]}, sort_keys=False))
    if priv is not None:
        return res.model.teacher(splits.train.y, description), info
    return ModuleTeacher(res.model, splits.num_classes, description), info


def metric_words(task: TaskAdapter) -> str:
    """A task's test metric in words for reports ("test span F1")."""
    return "test " + task.metric.replace("_f1", " F1").replace("_", " ")


def _describe_model(arch: dict, splits: Splits) -> str:
    name = arch["model"]
    if name == "mlp":
        widths = [splits.in_features, *arch.get("hidden", [256, 256]), splits.num_classes]
        return "MLP " + "-".join(map(str, widths))
    if name == "cnn":
        return f"CNN channels {arch.get('channels', [16, 32])}"
    if name == "bag":
        widths = [arch.get("embed", 64), *arch.get("hidden", []), splits.num_classes]
        return f"token bag {splits.vocab_size}x" + "-".join(map(str, widths))
    if name == "bigru_tagger":
        return (f"BiGRU tagger {splits.vocab_size}x{arch.get('embed', 32)}, "
                f"{arch.get('hidden', [32])[0]} per direction, {splits.num_classes} tags")
    if name == "hf":
        return (f"transformers {arch['config'].get('model_type')} (config)" if arch.get("config")
                else f"transformers model from {arch.get('path')}")
    return "linear"


def execute(run: RunPlan, out_root: Path, *, progress: bool = True, console=None,
            resume: Path | None = None) -> Path:
    """Train and evaluate everything in ``run``; return the finished run folder.

    The run lives in a partial folder until it is complete. Every training run checkpoints
    into it (at each epoch end, and every ``train.checkpoint_every`` steps), so after a crash
    ``resume=<partial folder>`` continues: finished trainings are loaded from their final
    checkpoint, an interrupted one continues from its last checkpoint, and the final weights
    equal those of an uninterrupted run.
    """
    acc = get_accelerator(run.recipe.train.mixed_precision)
    main = acc.is_main_process
    with open_run_folder(out_root, run.recipe.name, run.raw, resume, main=main,
                         rank=acc.process_index) as (tmp, final, held):
        trackers = RunTrackers(run.recipe.train.log_with, tmp, run.recipe.name,
                               final_dir=final, main=main, resume=resume is not None)
        with trackers.session():
            results, histories = _execute(run, tmp, progress and main, resume is not None,
                                          trackers)
        if main:
            _write_outputs(run, tmp, results, histories)
            final = finish_run_dir(tmp, final, lock=held,
                                   required=(INPUT, "results.json", "metrics.jsonl"))
    if main and console is not None:
        from ..report.table import leaderboard
        console.print(leaderboard(results))
        console.print(Text(f"run folder: {final}"))
    return final


def _tracked_teacher(bars: Bars, trackers: RunTrackers, folder: str, config: dict
                     ) -> tuple[Callable, list[Tracked]]:
    """A ``train_teacher(progress=...)`` that also opens one tracker run per teacher training
    (named after the teacher's folder: ``teacher``, ``teacher-1``, ``teacher/<stage>``),
    and the list it fills with them."""
    opened: list[Tracked] = []

    def progress(name: str, epochs: int):
        cb = bars.start(name, epochs)
        stage = name.split(" / ", 1)[1] if " / " in name else None
        tr = trackers.open(folder if stage is None else f"{folder}/{stage}", config)
        if tr is None:
            return cb
        opened.append(tr)
        return tr.on_epoch(cb)
    return progress, opened


def _execute(run: RunPlan, tmp: Path, show: bool, resume: bool = False,
             trackers: RunTrackers | None = None) -> tuple[dict, list[dict]]:
    acc = get_accelerator(run.recipe.train.mixed_precision)
    device = acc.device
    seeds = run.recipe.train.seeds
    n_runs = sum(len(s.recipe.train.seeds) * len(s.methods) for s in run.settings)
    teachers: dict[str, tuple[Any, dict]] = {}
    rows, histories = [], []
    metrics_lines: list[str] = []
    trackers = trackers or RunTrackers([], tmp, run.recipe.name)
    with Bars(show, n_runs) as bars:
        for s in run.settings:
            task = TASKS.get(s.recipe.task)
            # a setting with methods of its own trains the teacher only if one of them uses it
            wants_teacher = s.recipe.teacher is not None and (
                not s.own_methods or any(m[2].needs_teacher for m in s.methods))
            if wants_teacher and s.teacher_key not in teachers:
                if s.teacher is not None:
                    t = s.teacher.to(device) if hasattr(s.teacher, "to") else s.teacher
                    info = {"description": t.description,
                            "params": sum(count_params(m) for m in _modules(t)) or None}
                    if not isinstance(t, StoreTeacher):  # a store has no test-split outputs
                        tl = _over_rows(t.logits, s.splits.test.x.to(device))
                        info["test_accuracy"] = task.metric_value(task.metric_state(
                            tl, s.splits.test.y.to(device)))
                else:
                    tdir = tmp / "teacher" if not teachers else tmp / f"teacher-{len(teachers)}"
                    progress, opened = _tracked_teacher(bars, trackers, tdir.name, {
                        "setting": s.name, "teacher": s.recipe.teacher.model_dump(mode="json"),
                        "train": s.recipe.train.model_dump(mode="json")})
                    t, info = train_teacher(s.recipe.teacher, s.splits, s.recipe.train, tdir,
                                            stages=s.teacher_stages, progress=progress,
                                            resume=resume, task=task)
                    info["folder"] = tdir.name  # where export, report and bench find it
                    if task is not CLASSIFICATION:  # the report names the task's metric
                        info["metric_name"] = metric_words(task)
                    stage_info = info.get("stages", [])
                    for i, tr in enumerate(opened):  # the stages', then the teacher's
                        tr.log({"test_accuracy": (stage_info[i] if i < len(stage_info)
                                                  else info)["test_accuracy"]})
                        tr.finish()
                teachers[s.teacher_key] = (t, info)
            teacher, tinfo = teachers.get(s.teacher_key, (None, None))
            test_x, test_y = s.splits.test.x.to(device), s.splits.test.y.to(device)
            teacher_fn = _teacher_on(teacher, s.splits) if teacher is not None else None
            t_test = _over_rows(teacher_fn, test_x) if teacher_fn is not None else None
            for label, mname, plan, params in s.methods:
                accs, agrees, vals, n_params = [], [], [], 0
                latency = None  # per method: a method may change what runs at inference
                for seed in s.recipe.train.seeds:
                    torch.manual_seed(seed)
                    student = build_model(
                        s.recipe.student.model, s.splits.input_shape, s.splits.num_classes,
                        vocab_size=s.splits.vocab_size, **s.recipe.student.build_kwargs())
                    cb = bars.start(f"{s.name} / {label} / seed {seed}", s.recipe.train.epochs)
                    tracked = trackers.open(f"{s.name}/{label}/seed{seed}", {
                        "setting": s.name, "method": mname, "method_params": params,
                        "seed": seed, "train": s.recipe.train.model_dump(mode="json")})
                    cb = tracked.on_epoch(cb) if tracked is not None else cb
                    ckpt = student_dir(tmp, s.name, label, seed)
                    res = plan.fit(student, s.splits.train, s.splits.val,
                                   spec=s.recipe.train, seed=seed,
                                   num_outputs=s.splits.num_classes, teacher=teacher,
                                   input_shape=s.splits.input_shape, checkpoint_dir=ckpt,
                                   resume=resume, on_epoch=cb, task=task)
                    n_params = count_params(res.model)
                    ev = evaluate(res.model, test_x, test_y, acc, teacher_logits=t_test,
                                  task=task)
                    if acc.is_main_process:
                        saved, wrapper = for_export(res.model)
                        meta = {"mentor.model": {"model": s.recipe.student.model,
                                                 **s.recipe.student.build_kwargs()},
                                "mentor.num_classes": s.splits.num_classes,
                                "mentor.input_shape": list(s.splits.input_shape)}
                        if wrapper is not None:  # e.g. the dual head used at inference
                            meta["mentor.wrapper"] = wrapper
                        if s.splits.mean is not None:  # the inputs' standardization (export)
                            from ..models.preprocess import STATS_KEY, standardization_record
                            meta[STATS_KEY] = standardization_record(
                                s.splits.mean, s.splits.std, s.splits.input_shape)
                        if s.splits.vocab_size is not None:
                            meta["mentor.vocab_size"] = s.splits.vocab_size
                        save_weights(ckpt / "student.safetensors", saved, meta)
                        from ..models.hf import save_adapter
                        save_adapter(saved, ckpt / "adapter")  # a LoRA student's adapter
                    if tracked is not None:
                        tracked.log({"test_accuracy": ev[task.metric],
                                     "teacher_agreement": ev.get("teacher_agreement")})
                        tracked.finish()
                    accs.append(ev[task.metric])
                    vals.append(res.best_val_accuracy)
                    if "teacher_agreement" in ev:
                        agrees.append(ev["teacher_agreement"])
                    histories.append({"setting": s.name, "method": label, "seed": seed,
                                      **res.history})
                    metrics_lines.append(json.dumps({
                        "setting": s.name, "method": label, "seed": seed,
                        "test_accuracy": ev[task.metric], "test_n": ev["n"],
                        "teacher_agreement": ev.get("teacher_agreement"),
                        "best_epoch": res.best_epoch, "val_accuracy": res.best_val_accuracy,
                        "steps": res.steps, "teacher_cached": res.teacher_cached,
                        "resumed_from_step": res.resumed_step,
                        "history": res.history}))
                    if latency is None and teacher_fn is not None and acc.is_main_process:
                        latency = speedup(teacher_fn, res.model, _latency_rows(test_x),
                                          budget_s=LATENCY_BUDGET_S)
                    bars.done()
                rows.append({
                    "setting": s.name, "method": label, "method_name": mname,
                    "description": plan.description, "method_params": params,
                    "params": n_params, "seeds": list(s.recipe.train.seeds),
                    "test_accuracy_mean": statistics.fmean(accs),
                    "test_accuracy_std": statistics.pstdev(accs) if len(accs) > 1 else 0.0,
                    "test_accuracies": accs, "val_accuracy_mean": statistics.fmean(vals),
                    "teacher_agreement_mean": statistics.fmean(agrees) if agrees else None,
                    "speedup": latency["speedup"] if latency else None,
                    "latency": latency,
                    **({"budget_note": s.budget_notes[label]}
                       if s.budget_notes.get(label) else {}),
                })
    first_teacher = next(iter(teachers.values()))[1] if teachers else None
    results = {
        "name": run.recipe.name, "description": run.recipe.description,
        "created": environment()["created"], "teacher": first_teacher,
        "settings": [{"name": s.name, "description": s.description or s.splits.describe(),
                      "data": s.splits.describe(),
                      "teacher": teachers[s.teacher_key][1] if s.teacher_key in teachers
                      else None} for s in run.settings],
        "rows": rows, "seeds": seeds,
        "std": "population standard deviation over seeds",
        "selection": f"student weights selected by {run.recipe.train.select} on the "
                     "validation split; test split evaluated once per run",
    }
    if run.recipe.task != "classification":  # the leaderboard's score column names it
        results["metric_name"] = metric_words(TASKS.get(run.recipe.task))
    if acc.is_main_process:
        atomic_write_text(tmp / "metrics.jsonl", "\n".join(metrics_lines) + "\n")
    return results, histories


def _over_rows(fn, x):
    """``fn`` over every row of ``x``: a tensor at once, a row source chunk by chunk."""
    if isinstance(x, torch.Tensor):
        return fn(x)
    rows = as_rows(x)
    return torch.cat([fn(chunk) for _, chunk in read_chunks(rows, 0, len(rows))])


LATENCY_ROWS = 512  # test rows the latency measurement runs on (a row source's read once)
LATENCY_BUDGET_S = 1.0  # seconds of timed calls per model and round (fewer calls if slow)


def _latency_rows(test_x):
    """The first :data:`LATENCY_ROWS` test inputs (the leaderboard's speed-up batch)."""
    x = head_rows(test_x, LATENCY_ROWS)
    return x[:LATENCY_ROWS] if isinstance(x, torch.Tensor) else x


def _teacher_on(teacher, splits: Splits):
    """The teacher as a function of the test inputs. A privileged teacher gets the test rows'
    privileged information (a label-assisted teacher: the test labels), so its agreement and
    latency are those of the teacher the student learned from; a graph teacher gets the test
    rows' node ids and propagates over the whole graph on each call."""
    if isinstance(teacher, PrivilegedInputTeacher) and teacher.extra is not None:
        return lambda x: teacher.logits_with(x, splits.test.y[:len(x)])
    if isinstance(teacher, GraphTeacher):
        return teacher.on_nodes(splits.rows["test"])
    if isinstance(teacher, StoreTeacher):  # outputs exist for the training rows only
        return None
    return getattr(teacher, "logits", None)


def _modules(teacher) -> list[torch.nn.Module]:
    if hasattr(teacher, "module"):
        return [teacher.module]
    return [m for member in getattr(teacher, "members", []) for m in _modules(member)]


def resolved_recipe(run: RunPlan) -> dict:
    out = run.recipe.model_dump(mode="json", exclude_none=True)
    out.pop("method", None)
    out["methods"] = [{"name": name, "label": label, **params}
                      for label, name, _, params in run.methods]
    if run.raw.get("settings"):
        out["settings"] = run.raw["settings"]
    return out


def _write_outputs(run: RunPlan, tmp: Path, results: dict, histories: list[dict]) -> None:
    from ..report import write_report
    atomic_write_text(tmp / "recipe.yaml", yaml.safe_dump(resolved_recipe(run), sort_keys=False))
    atomic_write_text(tmp / "env.json", json.dumps(environment(run.recipe.train.seeds), indent=1))
    atomic_write_text(tmp / "results.json", json.dumps(results, indent=1))
    _write_splits(run, tmp)
    write_report(tmp, results, histories)


def _write_splits(run: RunPlan, tmp: Path) -> None:
    """``splits/<setting>.json``: each setting's train/val/test rows, for ``data.splits``;
    ``tokenizer/<setting>/``: the tokenizer that made a text setting's token ids (what
    ``mentor export`` ships beside the student)."""
    from ..data.split_file import split_record, write_split_file
    for s in run.settings:
        record = split_record(s.splits)
        if record is not None:
            write_split_file(tmp / "splits" / f"{s.name}.json", record)
        tok = s.splits.tokenizer
        if tok is not None and tok.save is not None:
            folder = tmp / "tokenizer" / s.name
            folder.mkdir(parents=True, exist_ok=True)
            tok.save(folder)


def run_recipe(raw: dict, out_root: str | Path = "runs", *, source: str = "recipe",
               progress: bool = True, console=None, resume: Path | None = None) -> Path:
    """Validate, plan and execute a recipe mapping; return the run folder. A recipe with
    ``task: tokens`` runs the language-model regimes (:mod:`mentor.commands.tokens`)."""
    from ..lm.recipe import is_tokens_recipe
    if is_tokens_recipe(raw):
        from .tokens import run_tokens
        return run_tokens(raw, Path(out_root), source=source, progress=progress,
                          console=console, resume=resume)
    return execute(plan_run(raw, source), Path(out_root), progress=progress, console=console,
                   resume=resume)


__all__ = ["plan_run", "execute", "run_recipe", "train_teacher"]
