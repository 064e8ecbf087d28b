"""The one training loop (DESIGN.md §2), as named steps.

:func:`run_training` trains a student on whatever a *step feed* gives it (the contract
:class:`mentor.contracts.StepFeed`): per epoch, :func:`_run_epoch` asks the feed for each
step's micro-batches and :func:`_optimize` takes the optimizer step over them (forward,
loss, backward with gradient accumulation, optimizer, scheduler, teacher updater, weight
average); :func:`_end_epoch` validates with the feed, selects by the task's metric and
checkpoints; :func:`_save` / :func:`_restore` make a run resumable bit for bit. Data
parallelism is Accelerate's (DDP). Two feeds run on it: :class:`RowFeed` (classification and
the semi-supervised presets, set up by :func:`fit`: the batch's rows and views,
:func:`_draw_rows` and :func:`_make_batch`, the teacher's refined targets and batch mixing,
:func:`_supervise`, the weighted objectives) and the token feed of language-model
distillation (:mod:`mentor.lm.regimes`). The training inputs of the row feed are a row
source (:mod:`mentor.data.rows`): in-memory data is batched by tensor indexing (no
DataLoader), so the loop costs what a hand-written PyTorch loop costs; a map-style dataset is
read by DataLoader workers ahead of the step that needs its rows. Either way the loop draws
each step's row ids itself, so the batches, their views and a resume are the same for both.
"""

from __future__ import annotations

import collections
import copy
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch
from torch import Tensor, nn

from ..contracts import (Batch, Refiner, RefinerHooks, TaskAdapter, Targets, TeacherHooks,
                         TeacherUpdater, UpdaterHooks, takes_labels)
from ..data.augment import Augment, role_generator, view_inputs
from ..data.rows import NamedRows, as_rows
from ..data.splits import Split
from ..errors import MentorError, TrainingFault
from ..models.taps import Tap, TappedStudent, TappedTeacher, tapped_shapes
from ..tasks import CLASSIFICATION
from ..updates import EMA, Frozen
from .accel import get_accelerator, release, uses_plain_step
from .checkpoint import check_resume_info, latest_state, load_state, save_state
from .evaluate import evaluate
from .faults import check_weights, raise_fault
from ..losses.objective import Objective, probe_objectives, weighted_sum
from .optim import make_optimizer, make_scheduler
from .peek import peek_ahead
from .sampling import TwoStreams
from .signal import TeacherSide, prepare_teacher, resolve_teacher, teacher_targets
from .telemetry import PseudoLabelMonitor
from .views import draw_stored_views, pipelines, role_views, views_for

if TYPE_CHECKING:  # the recipe schema composes methods, which train on this loop
    from ..recipe import TrainSpec


@dataclass
class FitResult:
    """The trained student (best-on-validation weights loaded unless ``select='last'``).
    ``best_val_accuracy``: the selected epoch's validation metric -- the task's ``metric``
    (classification: accuracy), also in ``history`` as ``val_<metric>``."""

    model: nn.Module
    history: dict[str, list] = field(default_factory=dict)
    best_epoch: int = -1
    best_val_accuracy: float = float("nan")
    steps: int = 0
    finished: bool = True
    teacher_cached: bool = False
    resumed_step: int = 0  # the checkpoint's step when ``resume`` continued one, else 0
    step_losses: list[float] = field(default_factory=list)  # each optimizer step's loss


def fit(student: nn.Module, train: Split, val: Split, *, taps: Sequence[Tap] = (),
        teacher=None, **kwargs) -> FitResult:
    """Train ``student`` with the given objectives; return the selected weights and history.

    Keyword arguments: ``objectives``, ``spec`` (a :class:`mentor.recipe.TrainSpec`),
    ``seed``, ``num_outputs`` (the task's output size: classes for classification), and
    optionally ``teacher``, ``refiners``, ``updater``,
    ``checkpoint_dir``, ``resume``, ``max_steps``, ``on_epoch``, ``task``. ``seed`` fixes the
    data order (a dedicated generator); model initialisation is the caller's (seed before
    building the model). ``max_steps`` stops early (after writing a checkpoint when
    ``checkpoint_dir`` is set); ``resume`` continues from that checkpoint and gives the same
    final weights as an uninterrupted run.

    ``taps`` (feature distillation): forward hooks on the named student and teacher modules
    and training-only projectors; the hooks are removed and the projectors dropped when
    training ends (or fails), and the result's model is the plain ``student``.
    """
    if not taps:
        return _fit(student, train, val, teacher=teacher, **kwargs)
    if takes_labels(student):
        raise MentorError(f"feature taps work on students called as student(x); "
                          f"{type(student).__name__} takes the labels as input")
    if teacher is None:
        raise MentorError("feature taps need a teacher, but none was given")
    # a label store reads the tapped teacher modules from its feature columns
    tapped = TeacherHooks(teacher).tapped
    tapped_teacher = (tapped(list(taps)) if tapped is not None
                      else TappedTeacher(teacher, list(taps)))
    tapped_student = None
    try:
        first = (train.source_index[:2] if train.source_index is not None
                 else torch.arange(min(2, len(train))))
        example = as_rows(train.x).take(torch.arange(min(2, len(train))))
        tapped_student = TappedStudent(student, list(taps),
                                       tapped_shapes(tapped_teacher, example, first), example)
        result = _fit(tapped_student, train, val, teacher=tapped_teacher, **kwargs)
    finally:
        tapped_teacher.remove()
        if tapped_student is not None:
            tapped_student.remove()
    result.model = student.eval()
    return result


@dataclass
class _Data:
    """A training's rows, read onto the device. ``rows`` / ``val_rows``: the inputs by sample
    id (:class:`~mentor.data.rows.TensorRows` or a DataLoader-fed
    :class:`~mentor.data.rows.DatasetRows`); ``y``: the labels, hidden by the task where the
    student may not see the
    label; ``lab_mask`` marks the rows it may see (``None``: all); ``positions`` maps rows of
    a subset to the teacher's (and views') source rows; ``views_n`` rows cover every source
    row."""

    rows: Any
    y: Tensor
    lab_mask: Tensor | None
    positions: Tensor | None
    weak_y: Tensor | None
    val_rows: Any
    y_val: Tensor
    views_n: int
    input_shape: tuple[int, ...]


@dataclass
class _Training:
    """What stays fixed while one training runs: the model and its optimizer, the accelerator
    and the step feed (what each step trains on), then -- for the row feed (classification
    on rows, the SSL presets) -- the parts, the batching, the data on the device, the teacher
    side and the views."""

    spec: TrainSpec
    seed: int
    task: TaskAdapter
    acc: Any
    device: torch.device
    world: int  # processes
    rank: int  # this process
    model: nn.Module  # what is called: DDP-wrapped under several processes
    raw_model: nn.Module  # its weights
    optimizer: torch.optim.Optimizer
    opt_step: Any  # the optimizer, or Accelerate's wrapper of it
    plain: bool  # backward and step without Accelerate's wrappers
    scheduler: Any
    steps_per_epoch: int
    ckpt: Path | None
    gen: torch.Generator  # the data order (and every draw a feed shares across processes)
    updater: UpdaterHooks
    feed: Any = None  # a StepFeed: each step's micro-batches and the validation metric
    averaged: nn.Module | None = None  # an EMA of the student's weights (eval_ema)
    averager: EMA | None = None
    objectives: Sequence[Objective] = ()
    refiners: list[RefinerHooks] = field(default_factory=list)
    autocast: Callable | None = None
    with_labels: bool = False  # the model reads the labels as input: model(x, y)
    g_batch: int = 0  # rows of a global batch
    sampler: TwoStreams | None = None  # labeled and unlabeled streams (semi-supervised)
    data: _Data | None = None
    teacher: TeacherSide | None = None
    views: Any = None  # a label store's stored views
    mixer: Any = None  # SelfMix of two stored views
    batch_mixer: Any = None  # e.g. BCP's copy-paste
    pipes: dict[str, Augment] = field(default_factory=dict)  # weak / strong view per role
    monitor: PseudoLabelMonitor | None = None
    need_pseudo: bool = False  # unlabeled rows take the teacher's prediction as label
    ahead: int = 0  # virtual future steps of the teacher updater (FST)


@dataclass
class _Progress:
    """Where a training is: what a checkpoint saves and a resume restores."""

    history: dict[str, list]
    step: int = 0
    epoch: int = 0
    batch: int = 0  # the first batch of ``epoch`` still to run
    order: Tensor | None = None  # the epoch's row order (drawn at its start)
    running: float = 0.0  # loss sum of the epoch's batches run before a resume
    best_val: float = -1.0
    best_epoch: int = -1
    best_state: dict[str, Tensor] | None = None
    resumed_step: int = 0
    step_losses: list[float] = field(default_factory=list)


@dataclass
class _Rows:
    """The rows of one step on this process and the draws made for them."""

    idx: Tensor  # positions in the training split
    source: Tensor  # positions in the teacher's (and the views') split
    view: Tensor | None  # a stored view id per row (a label store made with views)
    mixing: tuple | None  # SelfMix: (rows that mix, their second view, box draws)
    local: Tensor | None  # this process's positions in the global batch (several processes)


def _fit(student: nn.Module, train: Split, val: Split, *, objectives: Sequence[Objective],
         spec: TrainSpec, seed: int, num_outputs: int, teacher=None,
         refiners: Sequence[Refiner] = (), updater: TeacherUpdater | None = None,
         checkpoint_dir: Path | None = None, resume: bool = False,
         max_steps: int | None = None,
         on_epoch: Callable[[int, dict[str, Any]], None] | None = None,
         task: TaskAdapter = CLASSIFICATION, views=None, mixer=None,
         augment: dict[str, str | None] | None = None,
         input_shape: Sequence[int] | None = None, batch_mixer=None) -> FitResult:
    """The training loop behind :func:`fit` (no feature taps).

    ``augment`` (semi-supervised views): which pipeline, ``"weak"``, ``"strong"`` or ``None``
    (the input as is), each role sees: ``{"teacher": ..., "student": ..., "labeled": ...}``
    -- the teacher's input, the student's input on unlabeled rows and on labeled rows.
    The pipelines are ``spec.augment`` or the defaults for ``input_shape``.
    ``batch_mixer``: rebuilds each batch from mixed labeled and unlabeled rows after the
    teacher's targets are refined (BCP copy-paste, :mod:`mentor.mix.batch`).
    """
    tr = _prepare(student, train, val, objectives=objectives, spec=spec, seed=seed,
                  num_outputs=num_outputs, teacher=teacher, refiners=refiners,
                  updater=updater, checkpoint_dir=checkpoint_dir, task=task, views=views,
                  mixer=mixer, augment=augment, input_shape=input_shape,
                  batch_mixer=batch_mixer)
    return run_training(tr, resume=resume, max_steps=max_steps, on_epoch=on_epoch)


def run_training(tr: _Training, *, resume: bool = False, max_steps: int | None = None,
                 on_epoch: Callable[[int, dict[str, Any]], None] | None = None) -> FitResult:
    """The loop: resume or start, then per epoch the feed's steps (:func:`_run_epoch`) and
    validation, selection and a checkpoint (:func:`_end_epoch`); the selected weights at the
    end (:func:`_finish`). ``tr.feed`` says what each step trains on."""
    if resume and tr.ckpt is not None and latest_state(tr.ckpt) is not None:
        progress = _restore(tr)
    else:
        progress = _Progress(tr.feed.new_history())
    tr.model.train()
    stopped = False
    for epoch in range(progress.epoch, tr.spec.epochs):
        stopped, running = _run_epoch(tr, progress, epoch, max_steps)
        if stopped:
            break
        _end_epoch(tr, progress, epoch, running, on_epoch)
    return _finish(tr, progress, stopped)


def _prepare(student: nn.Module, train: Split, val: Split, *, objectives, spec, seed,
             num_outputs, teacher, refiners, updater, checkpoint_dir, task, views, mixer,
             augment, input_shape, batch_mixer) -> _Training:
    """Check the parts against each other and the data, then set everything up, in the
    order the steps below need (the teacher is copied from the untrained student)."""
    updater, refiners, needs_teacher, own_teacher = _parts(objectives, teacher, updater,
                                                           refiners)
    acc = get_accelerator(spec.mixed_precision)
    rows = as_rows(train.x)
    task.check(student, teacher if needs_teacher and not own_teacher else None,
               rows.take(torch.arange(min(2, len(rows)))), num_outputs)
    probe_objectives(objectives, task.example(num_outputs), task.elements)
    if not task.per_row_parts:
        _refuse_row_parts(task, refiners, augment, mixer, batch_mixer, views)
    sampler, steps_per_epoch, augment = _batching(train, spec, seed, acc.num_processes,
                                                  objectives, augment)
    tr = prepare_training(student, spec, seed, task=task, updater=updater,
                          steps_per_epoch=steps_per_epoch,
                          total_steps=steps_per_epoch * spec.epochs,
                          checkpoint_dir=checkpoint_dir)
    data = _to_device(train, val, acc.device, input_shape, task)

    side = None
    if needs_teacher:
        side = prepare_teacher(
            resolve_teacher(teacher, updater, tr.raw_model, num_outputs), updater=updater,
            spec=spec, device=acc.device, rows=data.rows, positions=data.positions,
            n=len(train),
            subset=train.source_index is not None, views=views,
            teacher_view=augment is not None and bool(augment.get("teacher")))
        views = side.views
    if mixer is not None and (views is None or side is None):
        raise MentorError(f"{type(mixer).__name__} mixes two views of each sample, but this run "
                          "has no views; expected a label store made with --views/--augment "
                          "as the teacher (or fit(..., views=...)) and a teacher objective")
    _bind_refiners(refiners, train, rows, acc.device, num_outputs, task)
    monitor = None
    # pseudo-label quality against the hidden labels, per element (row, or tagging token)
    if side is not None and data.lab_mask is not None:
        judged = bool(refiners) or own_teacher  # collapse needs an admission or a self-teacher
        monitor = PseudoLabelMonitor(task, train.y.to(acc.device), num_outputs, refiners,
                                     spec.collapse_steps if judged else 0)
    ahead = updater.ahead if side is not None else 0
    if ahead and (batch_mixer is not None or mixer is not None):
        raise MentorError(f"{updater.name} peeks ahead with virtual steps on plain "
                          "batches; it cannot be combined with a batch mixer or SelfMix")
    tr.objectives, tr.refiners, tr.data, tr.teacher, tr.views = (objectives, refiners, data,
                                                                  side, views)
    tr.mixer, tr.batch_mixer, tr.sampler, tr.monitor, tr.ahead = (mixer, batch_mixer, sampler,
                                                                   monitor, ahead)
    named = isinstance(rows, NamedRows)
    tokens = named and "input_ids" in rows.x and "attention_mask" in rows.x
    inputs = view_inputs(task.position_views, tokens)
    tr.pipes = pipelines(augment, spec, data.input_shape, inputs)
    _check_views_fit(rows, tr.pipes, inputs, views is not None or mixer is not None
                     or batch_mixer is not None)
    tr.with_labels = takes_labels(student)
    tr.g_batch = spec.batch_size * spec.accumulate  # a step's global rows (shared by ranks)
    # unlabeled rows take the teacher's prediction as label when a loss or the monitor reads it
    tr.need_pseudo = data.lab_mask is not None and (monitor is not None or any(
        o.needs_labels and o.rows != "labeled" for o in objectives))
    tr.feed = RowFeed(tr)
    return tr


def _check_views_fit(rows, pipes: dict, inputs: str, mixes: bool) -> None:
    """Views and mixing that cannot read the inputs stop the run in one sentence: named
    tensors take token augmentations (token ids) and no mixing; rows that keep a label per
    position (``inputs`` ``'ids'``, tagging) take position-keeping token views only; one
    tensor takes no token augmentation."""
    from ..data.augment import IDS, TOKENS
    tokens = inputs == TOKENS
    if inputs == IDS:
        wrong = [p.describe() for p in pipes.values() if p and p.reads != IDS]
        if wrong:
            raise MentorError(f"train.augment {wrong[0]} does not keep every token in its "
                              "place, but each position of these rows has its own label; "
                              "expected position-keeping token views such as token_resample")
        return
    if isinstance(rows, NamedRows):
        names = ", ".join(rows.x)
        if mixes or (pipes and not tokens):
            raise MentorError(f"the training inputs are named tensors ({names}), but this "
                              "method mixes its inputs or augments them as one tensor; "
                              "expected a method without mixing (e.g. kd, fixmatch with "
                              "token views) or inputs as one tensor")
        wrong = [p.describe() for p in pipes.values() if p and p.reads != TOKENS]
        if wrong:
            raise MentorError(f"train.augment {wrong[0]} augments numeric rows, but the inputs "
                              f"are token ids ({names}); expected token augmentations such "
                              "as token_drop and token_span")
        return
    wrong = [p.describe() for p in pipes.values() if p and p.reads in (TOKENS, IDS)]
    if wrong:
        raise MentorError(f"train.augment {wrong[0]} augments token ids, but the inputs are "
                          "numeric rows; expected augmentations such as noise, shift, crop")


def prepare_training(student: nn.Module, spec: TrainSpec, seed: int, *, task: TaskAdapter,
                     updater: UpdaterHooks, steps_per_epoch: int, total_steps: int,
                     checkpoint_dir: Path | None) -> _Training:
    """What every training has, whatever its task and feed: the process's accelerator, the
    student on its device (DDP-wrapped under several processes), its optimizer and schedule,
    a weight average (``spec.eval_ema``) and the generator that draws the data (seeded with
    ``seed``). The caller sets the feed (``tr.feed``) before :func:`run_training`."""
    acc = get_accelerator(spec.mixed_precision)
    plain = uses_plain_step(acc)
    student.to(acc.device)
    model = acc.prepare_model(student)
    raw_model = acc.unwrap_model(model)
    optimizer = make_optimizer(model.parameters(), spec)
    updater.bind_steps(steps_per_epoch)  # updaters that act per round
    averaged = averager = None  # an EMA of the student's weights, validated (eval_ema)
    if spec.eval_ema > 0:
        averaged, averager = copy.deepcopy(raw_model).eval(), EMA(spec.eval_ema, warmup=True)
    return _Training(
        spec=spec, seed=seed, task=task, acc=acc, device=acc.device,
        world=acc.num_processes, rank=acc.process_index, model=model, raw_model=raw_model,
        optimizer=optimizer, opt_step=optimizer if plain else acc.prepare_optimizer(optimizer),
        plain=plain, scheduler=make_scheduler(optimizer, spec, total_steps),
        steps_per_epoch=steps_per_epoch,
        autocast=acc.autocast if spec.mixed_precision != "no" else None,
        ckpt=Path(checkpoint_dir) if checkpoint_dir is not None else None,
        gen=torch.Generator().manual_seed(seed), updater=updater, averaged=averaged,
        averager=averager)


def _parts(objectives, teacher, updater, refiners
           ) -> tuple[UpdaterHooks, list[RefinerHooks], bool, bool]:
    """The parts through their declared hooks, whether an objective reads a teacher, and
    whether the updater builds that teacher from the student (none given)."""
    if not objectives:
        raise MentorError("a method needs at least one objective, got none")
    updater = UpdaterHooks(updater or Frozen())
    needs_teacher = any(o.needs_teacher for o in objectives)
    own_teacher = teacher is None and updater.from_student
    if needs_teacher and teacher is None and not own_teacher:
        names = [o.loss for o in objectives if o.needs_teacher]
        raise MentorError(f"objective {names[0]!r} needs a teacher, but none was given")
    return updater, [RefinerHooks(r) for r in refiners], needs_teacher, own_teacher


def _bind_refiners(refiners: Sequence[RefinerHooks], train: Split, rows, device,
                   num_outputs: int, task: TaskAdapter) -> None:
    """Stateful refiners start afresh with each run, bound to the pool's elements (its rows;
    for tagging its tokens) and to every input, for the ones that read them (clusters)."""
    y = train.y.to(device)
    _, _, pool = task.elements(y, None, Batch(None, y, torch.arange(len(y), device=device),
                                              train.labeled.to(device)))
    for refiner in refiners:
        refiner.reset()
        refiner.bind(pool.labeled, pool.y, num_outputs)
        if refiner.reads_inputs:
            if rows.in_memory is None:
                raise MentorError(f"refiner {type(refiner.part).__name__} reads every training "
                                  "input up front, but the training rows are read from a "
                                  "dataset; expected in-memory training inputs (a tensor)")
            refiner.bind_inputs(rows.in_memory)


def _batching(train: Split, spec: TrainSpec, seed: int, world: int, objectives,
              augment) -> tuple[TwoStreams | None, int, dict | None]:
    """(sampler, steps per epoch, views): shuffled global batches of ``batch_size`` rows, each
    of the ``world`` processes taking an equal share (the convention of ``distill_lm`` too:
    the same recipe trains on the same batches on any number of processes), or --
    semi-supervised, ``train.unlabeled_ratio > 0`` -- labeled and unlabeled streams
    (:class:`~mentor.engine.sampling.TwoStreams`), where a method naming no views gets the
    presets' labeled view (:func:`~mentor.engine.views.views_for`)."""
    n = len(train)
    if spec.batch_size % world:
        raise MentorError(f"train.batch_size {spec.batch_size} is not divisible by the {world} "
                          f"processes; expected a multiple of {world} (the batch size is the "
                          "global batch, shared equally by the processes)")
    g_batch = spec.batch_size * spec.accumulate  # an optimizer step's rows
    steps_per_epoch = n // g_batch + (1 if n % g_batch >= world else 0)
    sampler = None
    if spec.unlabeled_ratio and not bool(train.labeled.all()):
        if not bool(train.labeled.any()):
            raise MentorError("train.unlabeled_ratio needs labeled rows, but the training split "
                              "has none; expected data.labeled_fraction > 0 or "
                              "unlabeled_ratio 0")
        if not as_rows(train.x).random_access:
            raise MentorError("train.unlabeled_ratio draws labeled and unlabeled rows from "
                              "anywhere in the training split, but its rows are a stream read "
                              "front to back; expected unlabeled_ratio 0 or rows with random "
                              "access (a tensor or a map-style dataset)")
        sampler = TwoStreams(train.labeled, g_batch // world, spec.unlabeled_ratio, seed, world,
                             draw_unlabeled=any(o.rows != "labeled" for o in objectives))
        steps_per_epoch = sampler.steps_per_epoch
        augment = views_for(augment, semi_supervised=True)  # a baseline sees the presets' views
    if steps_per_epoch == 0:
        raise MentorError(f"train.batch_size {spec.batch_size} ({world} processes) leaves no "
                          f"batch from {n} training samples")
    return sampler, steps_per_epoch, augment


def _to_device(train: Split, val: Split, device, input_shape, task: TaskAdapter) -> _Data:
    """The splits' rows read onto ``device`` (a tensor source is moved there once), labels
    hidden (the task's :meth:`~mentor.contracts.TaskAdapter.hide`) where they may not be
    seen."""
    labeled = train.labeled.to(device)
    y = train.y.to(device)
    # a subset (data selection) asks position-aware teachers and views for its source rows
    positions = train.source_index.to(device) if train.source_index is not None else None
    return _Data(
        rows=as_rows(train.x).to(device), y=task.hide(y, labeled),
        lab_mask=None if bool(labeled.all()) else labeled, positions=positions,
        weak_y=train.weak_y.to(device) if train.weak_y is not None else None,
        val_rows=as_rows(val.x).to(device), y_val=val.y.to(device),
        # the views' random table covers every source row (its rows do not depend on its size)
        views_n=int(positions.max()) + 1 if positions is not None else len(train),
        input_shape=tuple(input_shape or as_rows(train.x).input_shape))


def _run_epoch(tr: _Training, p: _Progress, epoch: int,
               max_steps: int | None) -> tuple[bool, float]:
    """Run the epoch's steps from ``p.batch`` on, each one the feed's micro-batches
    (:func:`_optimize`); return (stopped at ``max_steps``, the epoch's loss sum).
    Checkpoints every ``train.checkpoint_every`` steps inside the epoch."""
    running, p.running = p.running, 0.0
    first, last = p.batch, tr.feed.steps_in(epoch)
    for b, micro in zip(range(first, last), tr.feed.steps(p, epoch)):
        value = _optimize(tr, p, micro, epoch)
        p.step_losses.append(value)
        running += value
        if max_steps is not None and p.step >= max_steps:
            _save(tr, p, epoch, b + 1, _order(p), running)
            return True, running
        every = tr.spec.checkpoint_every
        if tr.ckpt is not None and every and p.step % every == 0 and b + 1 < last:
            _save(tr, p, epoch, b + 1, _order(p), running)
    return False, running


def _order(p: _Progress) -> Tensor:
    """The epoch's row order for a checkpoint (empty for a feed that draws no order)."""
    return p.order if p.order is not None else torch.empty(0, dtype=torch.long)


class RowFeed:
    """The row feed: each step's rows of the training split (a shuffled pass, or labeled and
    unlabeled streams), their views, the teacher's refined targets and any batch mixing, and
    one micro-batch whose loss is the method's weighted objectives; validation by the task's
    metric over the validation rows. Each step's rows are drawn (a pure function of the
    order, seed and step) before their inputs are read, so a DataLoader-fed source reads
    ahead what the steps will ask for."""

    def __init__(self, tr: _Training):
        self.tr = tr

    def steps_in(self, epoch: int) -> int:
        return self.tr.steps_per_epoch

    def new_history(self) -> dict[str, list]:
        return {"epoch": [], "train_loss": [], f"val_{self.tr.task.metric}": []}

    def steps(self, p: _Progress, epoch: int):
        tr = self.tr
        if p.order is None:
            p.order = tr.data.rows.order(tr.gen)  # a permutation (a stream: within windows)
        order_dev = p.order.to(tr.device)
        first, start = p.batch, p.step
        source = tr.data.rows
        drawn = (_draw_rows(tr, start + b - first, b, order_dev)
                 for b in range(first, tr.steps_per_epoch))
        if source.in_memory is not None:  # inputs in a tensor: each step indexes them
            with_inputs = ((rows, source.take(rows.idx)) for rows in drawn)
        else:  # a reader (DataLoader workers, a stream) fetches ahead
            with_inputs = _RowsAndInputs(drawn, source)
        k = tr.spec.accumulate
        for rows, x_rows in with_inputs:
            if k == 1:
                yield [_row_step(tr, p, epoch, rows, x_rows)]
            else:  # the step's rows in k interleaved micro-batches, each weighted by its share
                n = len(rows.idx)
                yield [_row_step(tr, p, epoch, *_micro_rows(rows, x_rows, part), len(part) / n)
                       for part in (torch.arange(j, n, k, device=rows.idx.device)
                                    for j in range(min(k, n)))]

    def validate(self, model: nn.Module) -> float:
        tr = self.tr
        return evaluate(model, tr.data.val_rows, tr.data.y_val, tr.acc, task=tr.task,
                        labels_as_input=tr.with_labels)[tr.task.metric]

    def epoch_summary(self, p: _Progress) -> dict[str, float]:
        return self.tr.monitor.epoch_summary() if self.tr.monitor is not None else {}

    def state_dict(self) -> dict[str, Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        return None


class _RowsAndInputs:
    """Each step's drawn rows with their inputs, read by the row source in step order."""

    def __init__(self, drawn, source):
        self.drawn, self.source, self.seen = drawn, source, collections.deque()

    def _ids(self):
        for rows in self.drawn:
            self.seen.append(rows)
            yield rows.idx

    def __iter__(self):
        for x_rows in self.source.batches(self._ids()):
            yield self.seen.popleft(), x_rows


def _micro_rows(rows: _Rows, x_rows, part: Tensor) -> tuple[_Rows, Tensor]:
    """Rows ``part`` (positions in this process's share) of a step's rows and inputs, with
    their positions in the global batch, so their view draws are those of the whole step."""
    def pick(t):
        return None if t is None else t[part.to(t.device)]
    local = part if rows.local is None else pick(rows.local)
    mixing = None if rows.mixing is None else tuple(pick(m) for m in rows.mixing)
    picked = _Rows(pick(rows.idx), pick(rows.source), pick(rows.view), mixing, local)
    x = ({name: pick(v) for name, v in x_rows.items()} if type(x_rows) is dict
         else pick(x_rows))
    return picked, x


def _row_step(tr: _Training, p: _Progress, epoch: int, rows: _Rows, x_rows: Tensor,
              share: float = 1.0):
    """The step's micro-batch on the drawn ``rows`` (inputs ``x_rows``): its batch and
    targets now, its forward pass and weighted objectives when :func:`_optimize` calls it;
    ``share``: its rows' share of the step (``train.accumulate``), which scales its loss so
    the accumulated gradient is the step's mean."""
    batch, x_teacher = _make_batch(tr, rows, x_rows, epoch, p.step)
    if tr.ahead:  # future-peek EMA (FST): K virtual student steps advance the teacher
        peek_ahead(tr, rows, batch, x_teacher, epoch, p.step)
    targets = None
    if tr.teacher is not None:
        batch, targets = _supervise(tr, rows, x_rows, batch, x_teacher, p.step)
    y_in = batch.y if tr.with_labels else None  # a model that reads the labels as input

    def micro():
        if tr.autocast is None:
            outputs, _, elems = tr.task.elements(
                tr.task.forward(tr.model, batch.x, y_in), None, batch)
            total = weighted_sum(tr.objectives, outputs, targets, elems, epoch)
        else:
            with tr.autocast():
                outputs, _, elems = tr.task.elements(
                    tr.task.forward(tr.model, batch.x, y_in), None, batch)
                total = weighted_sum(tr.objectives, outputs, targets, elems, epoch)

        def fault():
            raise_fault(tr.objectives, outputs, targets, elems, epoch, p.step, tr.raw_model)
        if share != 1.0:
            total = total * share
        # under several processes the loop sums the values: each rank's is its share
        return total, (total.detach() / tr.world if tr.world > 1 else total), fault
    return micro


def _draw_rows(tr: _Training, step: int, b: int, order_dev: Tensor) -> _Rows:
    """This process's rows of global batch ``b`` (a pure function of the order, or of the
    sampler and ``step``) and their stored-view draws (a pure function of seed and step)."""
    if tr.sampler is not None:
        idx = tr.sampler.batch(step).to(tr.device)
    else:
        idx = order_dev[b * tr.g_batch:(b + 1) * tr.g_batch]
    world, rank = tr.world, tr.rank
    view = mixing = local = None
    if world > 1:
        local = (tr.sampler.local(rank) if tr.sampler is not None
                 else torch.arange(len(idx)).tensor_split(world)[rank]).to(tr.device)
    if tr.views is not None:  # one stored view per row, drawn for the global batch
        view = draw_stored_views(tr.views.views, len(idx), tr.seed, step)
        if tr.mixer is not None:  # (rows that mix, their second view, box draws)
            mixing = tr.mixer.draw(tr.views.views, len(idx), tr.seed, step, view)
    if world > 1:
        idx = idx[local]
        view = view.tensor_split(world)[rank] if view is not None else None
        if mixing is not None:
            mixing = tuple(m.tensor_split(world)[rank] for m in mixing)
    source = tr.data.positions[idx] if tr.data.positions is not None else idx
    return _Rows(idx, source, view, mixing, local)


def _make_batch(tr: _Training, rows: _Rows, x_rows: Tensor, epoch: int,
                step: int) -> tuple[Batch, Tensor]:
    """The batch the student trains on and the teacher's input: the rows' inputs, their
    stored view, or the weak/strong view of each role (a pure function of seed, step and
    role)."""
    d = tr.data
    xb = (tr.views.apply(x_rows, rows.source, rows.view, d.views_n)
          if rows.view is not None else x_rows)
    task = tr.task
    batch = Batch(xb, task.take(d.y, rows.idx), rows.idx,
                  None if d.lab_mask is None else d.lab_mask[rows.idx], epoch, step,
                  None if d.weak_y is None else task.take(d.weak_y, rows.idx))
    x_teacher = xb
    if tr.pipes:
        x_teacher, xs = role_views(tr.pipes, x_rows, batch.labeled, tr.seed, step,
                                   rows.local)
        batch = replace(batch, x=xs)
    return batch, x_teacher


def _refuse_row_parts(task, refiners, augment, mixer, batch_mixer, views) -> None:
    """One sentence naming the first part that acts on whole rows, for a task whose rows
    hold elements those parts do not see (tagging: a row is a sequence of tokens). Refiners
    judge the task's elements (:func:`~mentor.engine.signal.teacher_targets`), except one
    that reads every input row up front (clusters)."""
    parts = [f"refiner {type(r.part).__name__} (it reads every input)" for r in refiners
             if r.reads_inputs]
    # views that keep every position are checked where the pipelines are built
    if augment and any(augment.values()) and not task.position_views:
        parts.append("augmentation views (" + ", ".join(
            f"{role}: {kind}" for role, kind in augment.items() if kind) + ")")
    parts += [type(m).__name__ for m in (mixer, batch_mixer) if m is not None]
    if views is not None:
        parts.append("stored views")
    if parts:
        allowed = ("mixers or stored views (scratch, kd, dkd, fixmatch, mean-teacher, or "
                   "compose with refiners)" if task.position_views else
                   "views or mixers (scratch, kd, dkd, or compose with refiners)")
        raise MentorError(f"the {task.name} task cannot run {parts[0]}: it acts on whole rows, "
                          f"and a {task.name} row is a sequence; expected a method without "
                          f"{allowed}")


def _supervise(tr: _Training, rows: _Rows, x_rows: Tensor, batch: Batch, x_teacher: Tensor,
               step: int) -> tuple[Batch, Targets]:
    """The teacher's refined targets for the batch (observed by the pseudo-label monitor),
    then batch mixing: a batch mixer (BCP) or SelfMix's pasted second view."""
    signal = tr.teacher.signal
    targets, labels = teacher_targets(signal, x_teacher, rows.idx, rows.view, batch,
                                      tr.need_pseudo, tr.refiners, tr.task)
    if tr.monitor is not None:
        tr.monitor.observe(targets, batch, batch.epoch, step)
    if tr.batch_mixer is not None:  # e.g. BCP: labeled <-> unlabeled copy-paste
        _, batch, targets = tr.batch_mixer.mix(batch.x, batch, targets,
                                               role_generator(tr.seed, step, 5),
                                               tr.data.input_shape)
    if rows.mixing is not None:  # SelfMix: paste a second view, mix its target in
        on, view2, u = rows.mixing
        d = tr.data
        x2 = tr.views.apply(x_rows, rows.source, view2, d.views_n)
        targets2 = Targets(signal(x2, rows.idx, view2), labels)
        for refine in tr.refiners:
            targets2 = refine(targets2, batch)
        xb, targets = tr.mixer.mix(batch.x, x2, targets, targets2, on, u, tr.views.input_shape)
        batch = replace(batch, x=xb)
    return batch, targets


def _optimize(tr: _Training, p: _Progress, micro: Sequence[Callable], epoch: int) -> float:
    """One optimizer step over the feed's micro-batches: each one's forward pass and loss,
    its backward (gradients accumulate; under DDP only the last one synchronizes), then the
    optimizer, scheduler, teacher-updater and weight-average steps. A micro-batch returns
    ``(loss, value, fault)``: the loss to differentiate, the value the step records (summed
    over micro-batches and processes) and what raises its :class:`TrainingFault`. A
    non-finite value stops the run naming its cause before the backward pass; under several
    processes every rank finishes the step's collectives first, then all of them stop."""
    total, fault, last = 0.0, None, len(micro) - 1
    if not micro:  # nothing to learn from this step: no gradient, the step changes nothing
        tr.optimizer.zero_grad(set_to_none=True)
    for i, part in enumerate(micro):
        if i < last and tr.world > 1 and tr.model is not tr.raw_model:
            with tr.model.no_sync():  # the next micro-batch's backward synchronizes
                value, fault = _micro_step(tr, i, part, fault)
        else:
            value, fault = _micro_step(tr, i, part, fault)
        total += value
    if tr.world > 1:
        total = _step_across_processes(tr, p, total, fault)
    if tr.updater.observe_gradients is not None:  # e.g. a Fisher-masked EMA reads g^2
        tr.updater.observe_gradients(tr.raw_model)
    if tr.spec.max_grad_norm is not None:  # after every micro-batch, on the summed gradient
        if tr.plain:
            torch.nn.utils.clip_grad_norm_(tr.raw_model.parameters(), tr.spec.max_grad_norm)
        else:  # Accelerate unscales fp16 gradients first
            tr.acc.clip_grad_norm_(tr.model.parameters(), tr.spec.max_grad_norm)
    tr.opt_step.step()
    if tr.scheduler is not None:
        tr.scheduler.step()
    p.step += 1
    if not tr.updater.frozen:
        tr.updater.update(tr.teacher.module if tr.teacher is not None else None, tr.raw_model,
                          p.step)
    if tr.averaged is not None:
        tr.averager.update(tr.averaged, tr.raw_model, p.step)
    return total


def _micro_step(tr: _Training, i: int, part: Callable, fault):
    """One micro-batch's forward pass, loss and backward; returns its value and the step's
    fault so far (a non-finite value raises here in one process)."""
    loss, value, on_fault = part()
    value = value.item()  # one read per micro-batch: the exact step of a NaN/inf
    if not math.isfinite(value):
        if tr.world == 1:
            on_fault()
        fault = fault or on_fault
    if i == 0:  # after the check: a fault report reads the last step's gradients
        tr.optimizer.zero_grad(set_to_none=True)
    if tr.plain:
        loss.backward()
    else:
        tr.acc.backward(loss)
    return value, fault


def _step_across_processes(tr: _Training, p: _Progress, total: float, fault) -> float:
    """The step's value summed over processes, and whether any process saw a non-finite
    loss (every rank stops together: none is left waiting in a collective)."""
    both = torch.tensor([total, float(fault is not None)], dtype=torch.float64,
                        device=tr.device)
    both = tr.acc.reduce(both, reduction="sum")
    total, faults = float(both[0]), float(both[1])
    if faults > 0:
        if fault is not None:
            fault()
        raise TrainingFault(f"the loss became non-finite on another process at training step "
                            f"{p.step + 1}")
    return total


def _end_epoch(tr: _Training, p: _Progress, epoch: int, running: float,
               on_epoch: Callable[[int, dict[str, Any]], None] | None) -> None:
    """Validate (the weight average when there is one), record the epoch, keep the best
    weights by the task's validation metric (higher or lower, as the task says), report,
    and checkpoint (at each epoch end, whatever ``checkpoint_every`` says). A feed without
    validation data records no score and keeps the last weights."""
    p.batch, p.order = 0, None
    judged = tr.model if tr.averaged is None else tr.averaged
    score = tr.feed.validate(judged)
    history = p.history
    history["epoch"].append(epoch + 1)
    history["train_loss"].append(running / max(tr.feed.steps_in(epoch), 1))
    if score is not None:
        history[f"val_{tr.task.metric}"].append(score)
    for k, v in tr.feed.epoch_summary(p).items():
        history.setdefault(k, []).append(v)
    better = (score is not None and
              (score > p.best_val if tr.task.higher_is_better else score < p.best_val))
    if tr.spec.select == "best_val" and score is not None and (p.best_epoch < 0 or better):
        p.best_val, p.best_epoch = score, epoch + 1
        source = tr.raw_model if tr.averaged is None else tr.averaged
        p.best_state = {k: v.detach().clone() for k, v in source.state_dict().items()}
    if on_epoch is not None:
        on_epoch(epoch + 1, {k: v[-1] for k, v in history.items() if k != "epoch" and v})
    _save(tr, p, epoch + 1, 0, torch.empty(0, dtype=torch.long))


def _finish(tr: _Training, p: _Progress, stopped: bool) -> FitResult:
    """Load the selected weights (best on validation, or the last -- averaged -- ones) into
    the student and release the run's Accelerate references."""
    raw_model, history = tr.raw_model, p.history
    # the last update made the weights non-finite (an earlier one: the next step's loss
    # was non-finite, and raise_fault named the update that did it)
    check_weights(raw_model, p.step)
    if not stopped:
        if tr.spec.select == "best_val" and p.best_state is not None:
            raw_model.load_state_dict(p.best_state)
        else:
            if tr.averaged is not None:  # the last averaged weights
                raw_model.load_state_dict(tr.averaged.state_dict())
            scores = history.get(f"val_{tr.task.metric}", [])
            p.best_val = scores[-1] if scores else float("nan")
            p.best_epoch = history["epoch"][-1] if history["epoch"] else -1
    release(tr.acc)
    raw_model.eval()
    cached = (tr.teacher is not None and tr.teacher.signal is not None
              and tr.teacher.signal.cached is not None)
    return FitResult(raw_model, history, p.best_epoch, p.best_val, p.step, not stopped, cached,
                     p.resumed_step, p.step_losses)


def _moving_teacher(tr: _Training) -> nn.Module | None:
    """The teacher module an updater moves, when it is not the student itself (checkpointed
    with the run), else ``None``."""
    module = tr.teacher.module if tr.teacher is not None else None
    if module is None or tr.updater.frozen or module is tr.raw_model:
        return None
    return module


def _save(tr: _Training, p: _Progress, epoch: int, b: int, order: Tensor,
          running: float = 0.0) -> None:
    """Checkpoint the run at batch ``b`` of ``epoch`` (main process only): the student, its
    optimizer, scheduler and generators, the best weights so far, a moving teacher, the
    refiners', updater's and monitor's state and the weight average."""
    if tr.ckpt is None or not tr.acc.is_main_process:
        return
    check_weights(tr.raw_model, p.step)  # a checkpoint never holds poisoned weights
    extra = {}
    if p.best_state is not None:
        extra.update({f"best.{k}": v for k, v in p.best_state.items()})
    teacher = _moving_teacher(tr)
    if teacher is not None:
        extra.update({f"teacher.{k}": v for k, v in teacher.state_dict().items()})
    extra.update(_part_state(tr.refiners, tr.updater))
    extra.update({f"feed.{k}": v for k, v in tr.feed.state_dict().items()})
    extra["progress.step_losses"] = torch.tensor(p.step_losses, dtype=torch.float64)
    if tr.monitor is not None:
        extra.update({f"monitor.{k}": v for k, v in tr.monitor.state_dict().items()})
    if tr.averaged is not None:
        extra.update({f"averaged.{k}": v for k, v in tr.averaged.state_dict().items()})
    save_state(tr.ckpt, model=tr.raw_model, optimizer=tr.optimizer, scheduler=tr.scheduler,
               generator=tr.gen, order=order, extra_tensors=extra,
               info={"step": p.step, "epoch": epoch, "batch": b, "history": p.history,
                     "best_val": p.best_val, "best_epoch": p.best_epoch,
                     "has_best": p.best_state is not None, "seed": tr.seed,
                     "running_loss": running})


def _restore(tr: _Training) -> _Progress:
    """Load the run's latest checkpoint into the training and return where it stood."""
    info, order, extra = load_state(tr.ckpt, model=tr.raw_model, optimizer=tr.optimizer,
                                    scheduler=tr.scheduler, generator=tr.gen)
    check_resume_info(info, epochs=tr.spec.epochs, steps_per_epoch=tr.steps_per_epoch,
                      directory=tr.ckpt)
    device = tr.device

    def part(prefix: str, to_device: bool = True) -> dict[str, Tensor]:
        return {k[len(prefix):]: (v.to(device) if to_device else v)
                for k, v in extra.items() if k.startswith(prefix)}

    p = _Progress(info["history"], step=info["step"], epoch=info["epoch"], batch=info["batch"],
                  order=order if info["batch"] != 0 else None,
                  running=float(info.get("running_loss", 0.0)), best_val=info["best_val"],
                  best_epoch=info["best_epoch"], resumed_step=info["step"])
    if info.get("has_best"):
        p.best_state = part("best.")
    teacher = _moving_teacher(tr)
    if teacher is not None:
        teacher.load_state_dict(part("teacher."))
    _load_part_state(tr.refiners, tr.updater, extra)
    tr.feed.load_state_dict(part("feed.", to_device=False))
    if "progress.step_losses" in extra:
        p.step_losses = extra["progress.step_losses"].tolist()
    if tr.monitor is not None and "monitor.sums" in extra:
        tr.monitor.load_state_dict(part("monitor.", to_device=False))
    if tr.averaged is not None:
        tr.averaged.load_state_dict(part("averaged."))
    return p


def _part_state(refiners: Sequence[RefinerHooks], updater: UpdaterHooks) -> dict[str, Tensor]:
    """Refiner and updater state as checkpoint tensors (``refiner.<i>.<key>``,
    ``updater.<key>``)."""
    out = {}
    for i, r in enumerate(refiners):
        state = r.state_dict()
        if state is not None:
            out.update({f"refiner.{i}.{k}": v for k, v in state.items()})
    state = updater.state_dict()
    if state is not None:
        out.update({f"updater.{k}": v for k, v in state.items()})
    return out


def _load_part_state(refiners: Sequence[RefinerHooks], updater: UpdaterHooks,
                     extra: dict[str, Tensor]) -> None:
    for i, r in enumerate(refiners):
        pre = f"refiner.{i}."
        r.load_state_dict({k[len(pre):]: v for k, v in extra.items() if k.startswith(pre)})
    updater.load_state_dict({k[8:]: v for k, v in extra.items() if k.startswith("updater.")})
