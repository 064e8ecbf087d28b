"""The one training loop (DESIGN.md §2).

Per step: indices of a batch -> teacher signal (cached or computed) -> refiners -> weighted
objectives -> backward -> optimizer + scheduler -> teacher updater. Per epoch: validation
accuracy, model selection, optional checkpoint. In-memory data is batched by tensor
indexing (no DataLoader), so the loop costs what a hand-written PyTorch loop costs.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch
from torch import Tensor, nn

from ..contracts import (Batch, Refiner, RefinerHooks, TaskAdapter, Targets, TeacherHooks,
                         TeacherUpdater, UpdaterHooks, takes_labels)
from ..data.augment import Augment, default_views, role_generator
from ..data.splits import Split
from ..errors import MentorError, TrainingFault
from ..features import Tap, TappedStudent, TappedTeacher, tapped_shapes
from ..tasks import CLASSIFICATION
from ..updates import EMA, Frozen
from .accel import get_accelerator, release, uses_plain_step
from .checkpoint import check_resume_info, latest_state, load_state, save_state
from .evaluate import evaluate
from .objectives import Objective, probe_objectives
from .sampling import TwoStreams
from .telemetry import PseudoLabelMonitor
from .views import views_for

if TYPE_CHECKING:  # the recipe schema composes methods, which train on this loop
    from ..recipe import TrainSpec


@dataclass
class FitResult:
    """The trained student (best-on-validation weights loaded unless ``select='last'``)."""

    model: nn.Module
    history: dict[str, list] = field(default_factory=dict)
    best_epoch: int = -1
    best_val_accuracy: float = float("nan")
    steps: int = 0
    finished: bool = True
    teacher_cached: bool = False
    resumed_step: int = 0  # the checkpoint's step when ``resume`` continued one, else 0


def make_optimizer(params, spec: TrainSpec) -> torch.optim.Optimizer:
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    if spec.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)
    return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum,
                           weight_decay=spec.weight_decay)


def make_scheduler(optimizer, spec: TrainSpec, total_steps: int):
    if spec.schedule == "constant":
        return None
    total = max(total_steps, 1)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total)))


class TeacherSignal:
    """Teacher logits for a batch: looked up from outputs computed once for the whole
    training split (frozen teacher, un-augmented inputs) or computed for the batch.

    A teacher that needs to know which samples it sees (e.g. a privileged-input teacher
    reading extra per-sample data) provides ``logits_at(x, index)``; ``index`` are positions
    in the training split.
    """

    def __init__(self, teacher, x: Tensor, cache: bool, chunk: int = 4096,
                 positions: Tensor | None = None):
        self.hooks = TeacherHooks(teacher)
        self.positions = positions  # row i of x is row positions[i] of the teacher's split
        self.cached: Tensor | dict[str, Tensor] | None = None
        if cache:
            with torch.no_grad():
                parts = [self._compute(x[i:i + chunk],
                                       torch.arange(i, min(i + chunk, len(x)), device=x.device))
                         for i in range(0, len(x), chunk)]
            self.cached = ({k: torch.cat([p[k] for p in parts]) for k in parts[0]}
                           if isinstance(parts[0], dict) else torch.cat(parts))

    def _compute(self, x: Tensor, index: Tensor) -> Tensor | dict[str, Tensor]:
        """Teacher outputs for rows ``index`` of the training split (``x`` are their inputs,
        or views of them); the teacher is asked for the rows' source positions."""
        pos = self.positions[index] if self.positions is not None else index
        if self.hooks.outputs is not None:  # logits + tapped features, when it has them
            return self.hooks.outputs(x, pos)
        return self.hooks.logits(x, pos)

    def __call__(self, x: Tensor, index: Tensor,
                 view: Tensor | None = None) -> Tensor | dict[str, Tensor]:
        cached = self.cached
        if cached is not None and view is None:
            if type(cached) is dict:
                return {k: v[index] for k, v in cached.items()}
            return cached[index]
        with torch.no_grad():
            at_view = self.hooks.logits_at_view
            if view is not None and at_view is not None:  # a store looks the view up
                pos = self.positions[index] if self.positions is not None else index
                return at_view(x, pos, view)
            return self._compute(x, index)  # x is the (augmented) input


def fit(student: nn.Module, train: Split, val: Split, *, taps: Sequence[Tap] = (),
        teacher=None, **kwargs) -> FitResult:
    """Train ``student`` with the given objectives; return the selected weights and history.

    Keyword arguments: ``objectives``, ``spec`` (a :class:`mentor.recipe.TrainSpec`),
    ``seed``, ``num_classes``, and optionally ``teacher``, ``refiners``, ``updater``,
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
        tapped_student = TappedStudent(student, list(taps),
                                       tapped_shapes(tapped_teacher, train.x[:2], first),
                                       train.x[:2])
        result = _fit(tapped_student, train, val, teacher=tapped_teacher, **kwargs)
    finally:
        tapped_teacher.remove()
        if tapped_student is not None:
            tapped_student.remove()
    result.model = student.eval()
    return result


def _fit(student: nn.Module, train: Split, val: Split, *, objectives: Sequence[Objective],
        spec: TrainSpec, seed: int, num_classes: int, teacher=None,
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
    if not objectives:
        raise MentorError("a method needs at least one objective, got none")
    updater = UpdaterHooks(updater or Frozen())
    refiners = [RefinerHooks(r) for r in refiners]
    needs_teacher = any(o.needs_teacher for o in objectives)
    own_teacher = teacher is None and updater.from_student
    if needs_teacher and teacher is None and not own_teacher:
        names = [o.loss for o in objectives if o.needs_teacher]
        raise MentorError(f"objective {names[0]!r} needs a teacher, but none was given")
    acc = get_accelerator(spec.mixed_precision)
    device = acc.device
    task.check(student, teacher if needs_teacher and not own_teacher else None, train.x,
               num_classes)
    probe_objectives(objectives, num_classes)

    # a model that reads the labels as privileged input (a label-assisted teacher being
    # trained) is called model(x, y), with y = -1 on rows whose label it may not see
    with_labels = takes_labels(student)
    plain = uses_plain_step(acc)
    student.to(device)
    model = acc.prepare_model(student)
    raw_model = acc.unwrap_model(model)
    optimizer = make_optimizer(model.parameters(), spec)
    opt_step = optimizer if plain else acc.prepare_optimizer(optimizer)
    world, rank = acc.num_processes, acc.process_index
    n = len(train)
    g_batch = spec.batch_size * world
    steps_per_epoch = n // g_batch + (1 if n % g_batch >= world else 0)
    sampler = None
    if spec.unlabeled_ratio and not bool(train.labeled.all()):
        if not bool(train.labeled.any()):
            raise MentorError("train.unlabeled_ratio needs labeled rows, but the training split "
                              "has none; expected data.labeled_fraction > 0 or "
                              "unlabeled_ratio 0")
        sampler = TwoStreams(train.labeled, spec.batch_size, spec.unlabeled_ratio, seed, world,
                             draw_unlabeled=any(o.rows != "labeled" for o in objectives))
        steps_per_epoch = sampler.steps_per_epoch
        augment = views_for(augment, semi_supervised=True)  # a baseline sees the presets' views
    if steps_per_epoch == 0:
        raise MentorError(f"train.batch_size {spec.batch_size} x {world} processes leaves no "
                          f"batch from {n} training samples")
    total_steps = steps_per_epoch * spec.epochs
    updater.bind_steps(steps_per_epoch)  # updaters that act per round
    observe_gradients = updater.observe_gradients
    scheduler = make_scheduler(optimizer, spec, total_steps)

    x = train.x.to(device)
    # a subset (data selection) asks position-aware teachers and views for its source rows
    positions = train.source_index.to(device) if train.source_index is not None else None
    labeled = train.labeled.to(device)
    all_labeled = bool(labeled.all())
    y = torch.where(labeled, train.y.to(device), torch.full_like(train.y.to(device), -1))
    lab_mask = None if all_labeled else labeled
    x_val, y_val = val.x.to(device), val.y.to(device)
    weak_y = train.weak_y.to(device) if train.weak_y is not None else None

    signal = None
    teacher_module = None
    samples = None  # rows of a label store teacher
    build = updater.build_teacher
    if needs_teacher and build is not None and (own_teacher or updater.needs_external):
        # teachers of several models (static + EMA, EMA + reviewer)
        teacher = build(teacher, copy.deepcopy(raw_model), num_classes)
    elif needs_teacher and own_teacher:  # mean teacher: a copy of the student, or itself
        from ..teachers import LiveTeacher, ModuleTeacher
        teacher = (LiveTeacher(raw_model, num_classes) if updater.live
                   else ModuleTeacher(copy.deepcopy(raw_model), num_classes,
                                      "a moving average of the student"))
    if needs_teacher:
        hooks = TeacherHooks(teacher)
        hooks.to(device)
        teacher_module = hooks.module
        if not updater.frozen and teacher_module is None:
            raise MentorError(f"teacher updater {updater.name} needs a module teacher")
        cacheable = hooks.cacheable  # False: outputs change as we train
        cache = spec.cache_teacher == "always" or (spec.cache_teacher == "auto"
                                                    and updater.frozen and cacheable)
        if spec.cache_teacher == "always" and not updater.frozen:
            raise MentorError("train.cache_teacher 'always' needs a frozen teacher; the teacher "
                              f"updater is {updater.name}")
        if spec.cache_teacher == "always" and not cacheable:
            raise MentorError("train.cache_teacher 'always' cannot cache teacher "
                              f"{hooks.description}: its "
                              "outputs change during training; expected 'auto' or 'never'")
        if views is None:  # a label store made with views: train on its stored views
            views = hooks.views
        samples = hooks.store_samples
        if samples is not None and samples != n and train.source_index is None:
            raise MentorError(f"the label store holds {samples} samples but the training split "
                              f"has {n} rows; expected the store made from this training split")
        teacher_view = augment is not None and bool(augment.get("teacher"))
        if teacher_view and views is not None:
            raise MentorError("weak/strong views cannot be combined with a label store's "
                              "stored views; expected one of them")
        if views is not None or teacher_view:
            if spec.cache_teacher == "always":
                raise MentorError("train.cache_teacher 'always' cannot cache a teacher on "
                                  "augmented views; expected 'auto' or 'never'")
            cache = False  # outputs depend on the view: looked up (store), or a fresh weak
            #                view computed per batch
        signal = TeacherSignal(teacher, x, cache, positions=positions)
    # the views' random table must cover every source row (its rows do not depend on its size)
    views_n = int(positions.max()) + 1 if positions is not None else n
    if mixer is not None and (views is None or signal is None):
        raise MentorError(f"{type(mixer).__name__} mixes two views of each sample, but this run "
                          "has no views; expected a label store made with --views/--augment "
                          "as the teacher (or fit(..., views=...)) and a teacher objective")
    for refiner in refiners:  # stateful refiners start afresh with each run
        refiner.reset()
        refiner.bind(labeled, train.y.to(device), num_classes)  # pool-sized state
        refiner.bind_inputs(train.x)  # e.g. clusters of the inputs
    pipes = _pipelines(augment, spec, input_shape or tuple(train.x.shape[1:]))
    monitor = None
    if signal is not None and lab_mask is not None:  # pseudo-label quality on hidden labels
        judged = bool(refiners) or own_teacher  # collapse needs an admission or a self-teacher
        monitor = PseudoLabelMonitor(train.y.to(device), num_classes, refiners,
                                     spec.collapse_steps if judged else 0)
    # unlabeled rows take the teacher's arg-max as label when a loss or the monitor reads it
    need_pseudo = lab_mask is not None and (monitor is not None or any(
        o.needs_labels and o.rows != "labeled" for o in objectives))
    local = None  # this process's positions in the global batch (several processes)
    ahead = updater.ahead if signal is not None else 0
    if ahead and (batch_mixer is not None or mixer is not None):
        raise MentorError(f"{updater.name} peeks ahead with virtual steps on plain "
                          "batches; it cannot be combined with a batch mixer or SelfMix")
    averaged = None  # an EMA of the student's weights, validated and returned (eval_ema)
    if spec.eval_ema > 0:
        averaged = copy.deepcopy(raw_model).eval()
        averager = EMA(spec.eval_ema, warmup=True)

    gen = torch.Generator().manual_seed(seed)
    history: dict[str, list] = {"epoch": [], "train_loss": [], "val_accuracy": []}
    best_val, best_epoch, best_state = -1.0, -1, None
    step, start_epoch, start_b = 0, 0, 0
    order = None
    resumed_running, resumed_step = 0.0, 0
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if resume and ckpt is not None and latest_state(ckpt) is not None:
        info, order, extra = load_state(ckpt, model=raw_model, optimizer=optimizer,
                                        scheduler=scheduler, generator=gen)
        check_resume_info(info, epochs=spec.epochs, steps_per_epoch=steps_per_epoch,
                          directory=ckpt)
        step, start_epoch, start_b = info["step"], info["epoch"], info["batch"]
        resumed_step = step
        history, best_val, best_epoch = info["history"], info["best_val"], info["best_epoch"]
        if info.get("has_best"):
            best_state = {k[5:]: v.to(device) for k, v in extra.items() if k.startswith("best.")}
        if teacher_module is not None and not updater.frozen and teacher_module is not raw_model:
            teacher_module.load_state_dict({k[8:]: v.to(device) for k, v in extra.items()
                                            if k.startswith("teacher.")})
        _load_component_state(refiners, updater, extra)
        if monitor is not None and "monitor.sums" in extra:
            monitor.load_state_dict({k[8:]: v for k, v in extra.items()
                                     if k.startswith("monitor.")})
        if averaged is not None:
            averaged.load_state_dict({k[9:]: v.to(device) for k, v in extra.items()
                                      if k.startswith("averaged.")})
        resumed_running = float(info.get("running_loss", 0.0))
        if start_b == 0:
            order = None

    def checkpoint(epoch: int, b: int, order_now: Tensor, running_sum: float = 0.0) -> None:
        if ckpt is None or not acc.is_main_process:
            return
        extra = {}
        if best_state is not None:
            extra.update({f"best.{k}": v for k, v in best_state.items()})
        if teacher_module is not None and not updater.frozen and teacher_module is not raw_model:
            extra.update({f"teacher.{k}": v for k, v in teacher_module.state_dict().items()})
        extra.update(_component_state(refiners, updater))
        if monitor is not None:
            extra.update({f"monitor.{k}": v for k, v in monitor.state_dict().items()})
        if averaged is not None:
            extra.update({f"averaged.{k}": v for k, v in averaged.state_dict().items()})
        save_state(ckpt, model=raw_model, optimizer=optimizer, scheduler=scheduler,
                   generator=gen, order=order_now, extra_tensors=extra,
                   info={"step": step, "epoch": epoch, "batch": b, "history": history,
                         "best_val": best_val, "best_epoch": best_epoch,
                         "has_best": best_state is not None, "seed": seed,
                         "running_loss": running_sum})

    autocast = acc.autocast if spec.mixed_precision != "no" else None
    model.train()
    stopped = False
    for epoch in range(start_epoch, spec.epochs):
        if order is None:
            order = torch.randperm(n, generator=gen)
        order_dev = order.to(device)
        running = resumed_running
        resumed_running = 0.0
        for b in range(start_b, steps_per_epoch):
            if sampler is not None:
                idx = sampler.batch(step).to(device)
            else:
                idx = order_dev[b * g_batch:(b + 1) * g_batch]
            view = mixing = None
            size = len(idx)  # rows of the global batch
            if world > 1:
                local = (sampler.local(rank) if sampler is not None
                         else torch.arange(size).tensor_split(world)[rank]).to(device)
            if views is not None:  # one stored view per row, a pure function of (seed, step)
                view = _draw_views(views.views, len(idx), seed, step)
                if mixer is not None:  # (rows that mix, their second view, box draws)
                    mixing = mixer.draw(views.views, len(idx), seed, step, view)
            if world > 1:
                idx = idx[local]
                view = view.tensor_split(world)[rank] if view is not None else None
                if mixing is not None:
                    mixing = tuple(m.tensor_split(world)[rank] for m in mixing)
            source = positions[idx] if positions is not None else idx
            if view is not None:
                xb = views.apply(x[idx], source, view, views_n)
            else:
                xb = x[idx]
            batch = Batch(xb, y[idx], idx, None if lab_mask is None else lab_mask[idx],
                          epoch, step, None if weak_y is None else weak_y[idx])
            x_teacher = xb
            if pipes:  # weak / strong views, a pure function of (seed, step, role)
                x_teacher, xb = _ssl_views(pipes, x[idx], batch.labeled, seed, step,
                                           local if world > 1 else None)
                batch = replace(batch, x=xb)
            if ahead:  # future-peek EMA (FST): K virtual student steps advance the teacher
                _peek_ahead(ahead, updater, teacher_module, raw_model, model, optimizer,
                            opt_step, plain, acc, refiners, objectives, signal, x_teacher, idx,
                            view, xb, batch, need_pseudo, epoch, step, with_labels)
            targets = None
            if signal is not None:
                targets, labels = _teacher_targets(signal, x_teacher, idx, view, batch,
                                                   need_pseudo, refiners)
                if monitor is not None:
                    monitor.observe(targets, batch, epoch, step)
                if batch_mixer is not None:  # e.g. BCP: labeled <-> unlabeled copy-paste
                    xb, batch, targets = batch_mixer.mix(
                        xb, batch, targets, role_generator(seed, step, 5),
                        input_shape or tuple(train.x.shape[1:]))
                if mixing is not None:  # SelfMix: paste a second view, mix its target in
                    on, view2, u = mixing
                    x2 = views.apply(x[idx], source, view2, views_n)
                    targets2 = Targets(signal(x2, idx, view2), labels)
                    for refine in refiners:
                        targets2 = refine(targets2, batch)
                    xb, targets = mixer.mix(xb, x2, targets, targets2, on, u, views.input_shape)
                    batch = replace(batch, x=xb)
            inputs = (xb, batch.y) if with_labels else (xb,)
            if autocast is None:
                logits = model(*inputs)
                total = _weighted_sum(objectives, logits, targets, batch, epoch)
            else:
                with autocast():
                    logits = model(*inputs)
                    total = _weighted_sum(objectives, logits, targets, batch, epoch)
            value = total.item()  # one read per step: exact step of a NaN/inf, cheap on CPU
            if not math.isfinite(value):
                _raise_fault(objectives, logits, targets, batch, epoch, step, raw_model)
            optimizer.zero_grad(set_to_none=True)
            if plain:
                total.backward()
            else:
                acc.backward(total)
            if observe_gradients is not None:  # e.g. a Fisher-masked EMA reads g^2
                observe_gradients(raw_model)
            opt_step.step()
            if scheduler is not None:
                scheduler.step()
            step += 1
            if not updater.frozen:
                updater.update(teacher_module, raw_model, step)
            if averaged is not None:
                averager.update(averaged, raw_model, step)
            running += value
            if max_steps is not None and step >= max_steps:
                stopped = True
                checkpoint(epoch, b + 1, order, running)
                break
            if (ckpt is not None and spec.checkpoint_every and step % spec.checkpoint_every == 0
                    and b + 1 < steps_per_epoch):
                checkpoint(epoch, b + 1, order, running)
        _check_weights(raw_model, step)  # an update of the epoch's last step made them NaN
        if stopped:
            break
        done = steps_per_epoch
        start_b = 0
        order = None
        judged = model if averaged is None else averaged
        val = evaluate(judged, x_val, y_val, acc, task=task, labels_as_input=with_labels)
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(running / max(done, 1))
        history["val_accuracy"].append(val["accuracy"])
        if monitor is not None:
            for k, v in monitor.epoch_summary().items():
                history.setdefault(k, []).append(v)
        if spec.select == "best_val" and val["accuracy"] > best_val:
            best_val, best_epoch = val["accuracy"], epoch + 1
            source = raw_model if averaged is None else averaged
            best_state = {k: v.detach().clone() for k, v in source.state_dict().items()}
        if on_epoch is not None:
            on_epoch(epoch + 1, {k: v[-1] for k, v in history.items() if k != "epoch"})
        if ckpt is not None:  # at each epoch end, whatever checkpoint_every says
            checkpoint(epoch + 1, 0, torch.empty(0, dtype=torch.long))
    if not stopped:
        if spec.select == "best_val" and best_state is not None:
            raw_model.load_state_dict(best_state)
        else:
            if averaged is not None:  # the last averaged weights
                raw_model.load_state_dict(averaged.state_dict())
            best_val = history["val_accuracy"][-1] if history["val_accuracy"] else float("nan")
            best_epoch = history["epoch"][-1] if history["epoch"] else -1
    release(acc)
    raw_model.eval()
    return FitResult(raw_model, history, best_epoch, best_val, step, not stopped,
                     signal is not None and signal.cached is not None, resumed_step)


_ROLES = {"teacher": 1, "student": 2, "labeled": 3}


def _pipelines(augment, spec: TrainSpec, input_shape) -> dict[str, Augment]:
    """Role -> augmentation pipeline for a method's weak/strong views ({} without views)."""
    if not augment or not any(augment.values()):
        return {}
    chosen = spec.augment.pipelines() if spec.augment is not None else {}
    defaults = default_views(input_shape)
    out = {}
    for role, kind in augment.items():
        if role not in _ROLES:
            raise MentorError(f"augment role {role!r} is unknown; expected one of "
                              f"{', '.join(_ROLES)}")
        if kind is None:
            continue
        if kind not in ("weak", "strong"):
            raise MentorError(f"augment.{role} must be 'weak', 'strong' or None, got {kind!r}")
        ops = chosen.get(kind) if chosen.get(kind) is not None else defaults[kind]
        out[role] = Augment(ops, input_shape, where=f"train.augment.{kind}")
    return out


def _ssl_views(pipes: dict[str, Augment], rows: Tensor, labeled: Tensor | None, seed: int,
               step: int, local: Tensor | None) -> tuple[Tensor, Tensor]:
    """(teacher input, student input) of a batch. The student sees the ``labeled`` view on
    labeled rows and the ``student`` view on the others; a role without a pipeline sees the
    rows as they are. Each role's draws come from its own generator, by position in the
    global batch (this process holds positions ``local``), so the views do not depend on the
    number of processes."""
    def view(role: str) -> Tensor:
        pipe = pipes.get(role)
        if pipe is None:
            return rows
        g = role_generator(seed, step, _ROLES[role])
        return pipe(rows, g, positions=local)
    x_lab, x_unl = view("labeled"), view("student")
    x_student = x_lab if labeled is None else torch.where(labeled[:, None], x_lab, x_unl)
    return view("teacher"), x_student


def _teacher_targets(signal, x_teacher: Tensor, idx: Tensor, view, batch: Batch,
                     need_pseudo: bool, refiners) -> tuple[Targets, Tensor]:
    """The refined teacher targets of a batch, and the labels before refinement: the true
    label where the student may see it, else (``need_pseudo``) the teacher's arg-max."""
    zt = signal(x_teacher, idx, view)
    extra = None
    if type(zt) is dict:  # logits plus other outputs (features, members, a reviewer)
        extra, zt = zt, zt["logits"]
    labels = torch.where(batch.labeled, batch.y, zt.argmax(-1)) if need_pseudo else batch.y
    targets = Targets(zt, labels, extra=extra)
    for refine in refiners:
        targets = refine(targets, batch)
    return targets, labels


def _peek_ahead(k: int, updater, teacher_module, raw_model, model, optimizer, opt_step,
                plain: bool, acc, refiners, objectives, signal, x_teacher, idx, view, xb,
                batch: Batch, need_pseudo: bool, epoch: int, step: int,
                with_labels: bool) -> None:
    """FST-D's virtual future (METHODS.md §5): ``k`` times, move the teacher towards the
    student and take an optimizer step on this batch with the teacher's targets; move the
    teacher once more, then restore the student, the optimizer state and the refiners' state,
    so only the teacher keeps what the virtual steps taught it."""
    saved_model = {n: v.detach().clone() for n, v in raw_model.state_dict().items()}
    saved_opt = copy.deepcopy(optimizer.state_dict())
    saved_ref = [copy.deepcopy(r.state_dict()) for r in refiners]
    inputs = (xb, batch.y) if with_labels else (xb,)
    for _ in range(k):
        updater.peek(teacher_module, raw_model, step + 1)
        targets, _ = _teacher_targets(signal, x_teacher, idx, view, batch, need_pseudo,
                                      refiners)
        loss = _weighted_sum(objectives, model(*inputs), targets, batch, epoch)
        optimizer.zero_grad(set_to_none=True)
        if plain:
            loss.backward()
        else:
            acc.backward(loss)
        opt_step.step()
    updater.peek(teacher_module, raw_model, step + 1)
    with torch.no_grad():
        raw_model.load_state_dict(saved_model)
    optimizer.load_state_dict(saved_opt)
    for r, state in zip(refiners, saved_ref):
        if state is not None:
            r.load_state_dict(state)


def _component_state(refiners: Sequence[RefinerHooks],
                     updater: UpdaterHooks) -> dict[str, Tensor]:
    """Refiner and updater state as checkpoint tensors (``refiner.<i>.<key>``)."""
    out = {}
    for i, r in enumerate(refiners):
        state = r.state_dict()
        if state is not None:
            out.update({f"refiner.{i}.{k}": v for k, v in state.items()})
    state = updater.state_dict()
    if state is not None:
        out.update({f"updater.{k}": v for k, v in state.items()})
    return out


def _load_component_state(refiners: Sequence[RefinerHooks], updater: UpdaterHooks,
                          extra: dict[str, Tensor]) -> None:
    for i, r in enumerate(refiners):
        pre = f"refiner.{i}."
        r.load_state_dict({k[len(pre):]: v for k, v in extra.items() if k.startswith(pre)})
    updater.load_state_dict({k[8:]: v for k, v in extra.items() if k.startswith("updater.")})


def _draw_views(n_views: int, size: int, seed: int, step: int) -> Tensor:
    """View ids for a global batch: a pure function of (seed, step), so resuming a run draws
    the same views without any saved generator state."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + step) % (2**63 - 1))
    return torch.randint(n_views, (size,), generator=g)


def _weighted_sum(objectives: Sequence[Objective], logits: Tensor, targets: Targets | None,
                  batch: Batch, epoch: int) -> Tensor:
    total = None
    for obj in objectives:
        w = obj.weight_at(epoch)
        if w == 0.0:
            continue
        term = w * obj(logits, targets, batch)
        total = term if total is None else total + term
    if total is None:
        total = (logits["logits"] if type(logits) is dict else logits).sum() * 0.0
    return total


def _check_weights(model: nn.Module, step: int) -> None:
    """Raise a :class:`TrainingFault` if a weight is NaN/inf, naming the update that made it
    so (``step`` updates done) and why: a non-finite gradient (checked here, not every step:
    the weights it poisons make the next loss non-finite, and the gradients of the last
    update are still in place then), or a finite gradient times a huge learning rate."""
    params = list(model.parameters())
    if not params or bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
        return  # one host sync for all parameters: the common case, every epoch
    bad = [n for n, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
    if step == 0:
        raise TrainingFault(f"the student's initial weights are non-finite (parameter "
                            f"{bad[0]!r}) before training step 1; expected finite weights")
    grads = [n for n, p in model.named_parameters()
             if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
    if grads:
        raise TrainingFault(f"parameter {grads[0]!r} got a non-finite gradient at training "
                            f"step {step} while the loss was finite, and the update made the "
                            "weights non-finite; check the learning rate, the inputs and the "
                            "model's operations")
    raise TrainingFault(f"the update of training step {step} made parameter {bad[0]!r} "
                        "non-finite although every gradient was finite; check the learning "
                        "rate (too large?)")


def _raise_fault(objectives, logits, targets, batch, epoch, step, model=None) -> None:
    if model is not None:  # poisoned weights: the fault is the previous update's
        _check_weights(model, step)
    for obj in objectives:
        value = obj(logits, targets, batch)
        if not torch.isfinite(value):
            raise TrainingFault(f"objective {obj.describe()} gave a non-finite loss "
                                f"({float(value.detach())}) at training step {step + 1} (epoch "
                                f"{epoch + 1}); check the learning rate and the inputs")
    raise TrainingFault(f"the loss became non-finite at training step {step + 1} "
                        f"(epoch {epoch + 1})")
