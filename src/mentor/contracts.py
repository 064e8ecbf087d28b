"""The contracts of mentor's five parts. Read this file first.

Every method is the same training step with different parts plugged in
(DESIGN.md §1-2)::

    teacher(x) --> signal --> refiners --> Targets
    student(x) --> logits --> sum_i weight_i * objective_i(logits, Targets, Batch)
    optimizer step --> teacher updater --> metrics

Each part below is a small protocol. Built-in implementations register themselves by name
in :mod:`mentor.registry`; a method (:mod:`mentor.methods`) is a named composition of parts,
never a branch in the loop.

A part needs only its protocol's required members; every *optional* hook the engine calls is
declared below, once, with its default (:class:`TeacherHooks`, :class:`RefinerHooks`,
:class:`UpdaterHooks`, :class:`SelectorHooks`, :func:`takes_labels`). The engine reads parts
through these views and never looks for an attribute itself.

The loop itself (:mod:`mentor.engine.loop`) is task-agnostic: a :class:`StepFeed` says what
each optimizer step trains on -- the row feed of classification and the semi-supervised
presets (the step above), or the token feed of language-model distillation, whose regimes
draw dataset, teacher or student sequences -- and a :class:`TaskAdapter` names the
validation metric the loop selects by.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn


@dataclass
class Batch:
    """One training batch, as the task adapter (:class:`TaskAdapter`) reads it.

    ``x``: the model's inputs (a tensor, or named tensors: a dict the task's ``forward``
    passes as keyword arguments). ``y``: the task's labels of the rows (classification: a
    class per row; tokens: the next token per position), ``-1`` where the student may not see
    them; ``labeled`` is the matching boolean per row (``None``: every row). ``index``: the
    rows' stable sample ids, positions in the training split (the key under which cached
    teacher outputs, stored views and per-sample draws are found). ``weak_y``: weak labels of
    the rows (``-1`` where none), when the data has a weakly-labeled pool.
    """

    x: Tensor
    y: Tensor
    index: Tensor
    labeled: Tensor
    epoch: int = 0
    step: int = 0
    weak_y: Tensor | None = None


@dataclass
class Targets:
    """Supervision derived from the teacher for one batch.

    ``logits``: teacher logits ``(B, C)`` (log-probabilities for probability teachers).
    ``labels``: a hard class per row: the true label where the student may see it, else the
    teacher's arg-max. ``mask``: rows that carry a teacher target (``None`` = all rows).
    ``weight``: per-row weights (``None`` = 1). ``extra``: the teacher's other outputs by key
    (``"feat:<name>"`` for tapped features), when a method asks for them.
    """

    logits: Tensor
    labels: Tensor
    mask: Tensor | None = None
    weight: Tensor | None = None
    extra: dict[str, Tensor] | None = None

    def with_(self, **changes: Any) -> "Targets":
        return replace(self, **changes)


@runtime_checkable
class Teacher(Protocol):
    """Where supervision comes from. ``logits`` is called under ``torch.no_grad``.

    A teacher may also define ``logits_at(x, index)`` (``index``: the samples' positions in
    the training split); the engine then calls it instead of ``logits`` during training, so
    the teacher can use per-sample information the student never sees (privileged inputs).
    """

    num_classes: int

    def logits(self, x: Tensor) -> Tensor: ...


def teacher_logits(teacher: Teacher, x: Tensor, index: Tensor | None = None) -> Tensor:
    """How a teacher is asked: ``logits_at(x, index)`` when it has one and ``index`` is given
    (training rows), else ``logits(x)``."""
    at = _hook(teacher, "logits_at") if index is not None else None
    return at(x, index) if at is not None else teacher.logits(x)


def _hook(part: Any, name: str, default: Any = None) -> Any:
    """The part's optional hook ``name``, or ``default``: the one place the hooks below are
    looked up (when a part is bound, not per step)."""
    return getattr(part, name, default)


class TeacherHooks:
    """A teacher as the engine sees it: the required ``logits(x)`` plus every optional hook.

    - ``logits_at(x, index)``: outputs for training rows ``index`` (privileged inputs, label
      stores); default ``logits(x)``.
    - ``outputs(x, index)``: logits plus other outputs by key (tapped features, committee
      members), a dict with ``"logits"``; default none (logits only).
    - ``logits_at_view(x, index, view)``: outputs for stored view ids (a label store made with
      views); default none (the teacher is run on the view's inputs).
    - ``tapped(taps)``: the teacher with feature taps; default none (the engine hooks the
      teacher's module).
    - ``cacheable``: False when outputs change while the student trains; default True.
    - ``views``: the stored views a label store was made with; default none.
    - ``store``: the label store behind the teacher (its ``samples`` are checked against the
      training split); default none.
    - ``module``: the teacher's ``nn.Module`` (an updater moves it); default none.
    - ``to(device)``: moves the teacher; default: nothing to move.
    - ``description``: a few words for messages; default the class name.
    """

    def __init__(self, teacher: Any):
        self.part = teacher
        self._logits_at = _hook(teacher, "logits_at")
        self.outputs = _hook(teacher, "outputs")
        self.logits_at_view = _hook(teacher, "logits_at_view")
        self.tapped = _hook(teacher, "tapped")
        self.cacheable = bool(_hook(teacher, "cacheable", True))
        self.views = _hook(teacher, "views")
        store = _hook(teacher, "store")
        self.store_samples = _hook(store, "samples") if store is not None else None
        self.module = _hook(teacher, "module")
        self._to = _hook(teacher, "to")
        self.description = _hook(teacher, "description", type(teacher).__name__)

    def logits(self, x: Tensor, index: Tensor | None = None) -> Tensor:
        """``logits_at(x, index)`` for training rows when the teacher has it, else
        ``logits(x)`` (the rule of :func:`teacher_logits`)."""
        if index is not None and self._logits_at is not None:
            return self._logits_at(x, index)
        return self.part.logits(x)

    def to(self, device: Any) -> None:
        if self._to is not None:
            self._to(device)


class _StateHooks:
    """``state_dict()`` / ``load_state_dict(state)`` of a part, or stateless (``None``)."""

    def _bind_state(self, part: Any) -> None:
        self._state_dict = _hook(part, "state_dict")
        self._load_state_dict = _hook(part, "load_state_dict")

    def state_dict(self) -> dict[str, Tensor] | None:
        return self._state_dict() if self._state_dict is not None else None

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if self._load_state_dict is not None:
            self._load_state_dict(state)


class RefinerHooks(_StateHooks):
    """A refiner as the engine sees it: ``refiner(targets, batch)`` plus every optional hook.

    - ``reset()``: start afresh (called when a training run starts); default nothing.
    - ``bind(labeled, y, num_classes)``: pool-sized state (class-wise counts); default nothing.
    - ``bind_inputs(x)``: state computed from the training inputs (clusters); default nothing.
    - ``state_dict()`` / ``load_state_dict(state)``: tensors saved in checkpoints and restored
      on resume; default stateless (``state_dict()`` is ``None``).
    - ``thresholds``: per-class admission thresholds, reported as ``pl_thresholds``; default
      none.
    """

    def __init__(self, refiner: Any):
        self.part = refiner
        self._reset = _hook(refiner, "reset")
        self._bind = _hook(refiner, "bind")
        self._bind_inputs = _hook(refiner, "bind_inputs")
        self._bind_state(refiner)

    def __call__(self, targets: Targets, batch: Batch) -> Targets:
        return self.part(targets, batch)

    def reset(self) -> None:
        if self._reset is not None:
            self._reset()

    def bind(self, labeled: Tensor, y: Tensor, num_classes: int) -> None:
        if self._bind is not None:
            self._bind(labeled, y, num_classes)

    @property
    def reads_inputs(self) -> bool:
        """The refiner has ``bind_inputs``: it needs every training input in memory."""
        return self._bind_inputs is not None

    def bind_inputs(self, x: Tensor) -> None:
        if self._bind_inputs is not None:
            self._bind_inputs(x)


    @property
    def thresholds(self) -> Tensor | None:
        return _hook(self.part, "thresholds")


class UpdaterHooks(_StateHooks):
    """A teacher updater as the engine sees it: ``frozen`` and ``update(teacher, student,
    step)`` plus every optional hook.

    - ``from_student``: build the teacher from the student when none is given; default False.
    - ``live``: that teacher is the live student itself, not a copy; default False.
    - ``needs_external``: ``build_teacher`` also needs the given teacher; default False.
    - ``build_teacher(given, student_copy, num_classes)``: a teacher of several models (static
      + EMA, EMA + reviewer); default none (a copy of the student, or the given teacher).
    - ``bind_steps(steps_per_epoch)``: updaters that act per round; default nothing.
    - ``observe_gradients(student)``: called after each backward (a Fisher mask reads g²);
      default none.
    - ``ahead`` and ``peek(teacher, student, step)``: virtual future steps (FST); default 0.
    - ``state_dict()`` / ``load_state_dict(state)``: checkpointed state; default stateless.
    """

    def __init__(self, updater: Any):
        self.part = updater
        self.frozen = bool(updater.frozen)
        self.from_student = bool(_hook(updater, "from_student", False))
        self.live = bool(_hook(updater, "live", False))
        self.needs_external = bool(_hook(updater, "needs_external", False))
        self.build_teacher = _hook(updater, "build_teacher")
        self._bind_steps = _hook(updater, "bind_steps")
        self.observe_gradients = _hook(updater, "observe_gradients")
        self.ahead = int(_hook(updater, "ahead", 0) or 0)
        self._peek = _hook(updater, "peek")
        self._bind_state(updater)

    @property
    def name(self) -> str:
        return type(self.part).__name__

    def update(self, teacher: nn.Module | None, student: nn.Module, step: int) -> None:
        self.part.update(teacher, student, step)

    def peek(self, teacher: nn.Module | None, student: nn.Module, step: int) -> None:
        self._peek(teacher, student, step)

    def bind_steps(self, steps_per_epoch: int) -> None:
        if self._bind_steps is not None:
            self._bind_steps(steps_per_epoch)



def takes_labels(model: Any) -> bool:
    """True when ``model`` reads the labels as privileged input: the engine calls it
    ``model(x, y)`` with ``y = -1`` on rows whose label it may not see (a label-assisted
    teacher being trained). Default False: ``model(x)``."""
    return bool(_hook(model, "takes_labels", False))


@runtime_checkable
class Refiner(Protocol):
    """Turns teacher targets into the supervision the losses see: ``Targets -> Targets``.

    Refiners filter (``mask``), weight (``weight``) or transform (``logits``/``labels``)
    and compose in a chain, each seeing the previous one's output. A refiner with state
    (prototypes, class thresholds) may define ``reset()``; the engine calls it when a training
    run starts.
    """

    def __call__(self, targets: Targets, batch: Batch) -> Targets: ...


class Loss(Protocol):
    """A pure function returning one value per example, shape ``(B,)``; the caller reduces.

    ``loss(student_logits, teacher_logits, labels, **params)``. Losses that do not use the
    teacher or the labels accept and ignore them, so every loss has one signature.
    """

    def __call__(self, student_logits: Tensor, teacher_logits: Tensor | None,
                 labels: Tensor | None, **params: Any) -> Tensor: ...


@runtime_checkable
class TeacherUpdater(Protocol):
    """Says whether and how the teacher changes as the student learns (frozen, EMA, ...).

    ``frozen`` is True when the teacher never changes, which lets the engine compute teacher
    outputs for un-augmented inputs once and reuse them.
    """

    frozen: bool

    def update(self, teacher: nn.Module | None, student: nn.Module, step: int) -> None: ...


@dataclass
class Pool:
    """Candidate rows for a selector: inputs ``x``, their positions in the training split
    (``index``, what position-aware teachers are asked for) and the rows already labeled,
    ``labeled_x`` (for coverage-based selectors)."""

    x: Tensor
    index: Tensor
    labeled_x: Tensor | None = None

    def __len__(self) -> int:
        return len(self.x)


@runtime_checkable
class Selector(Protocol):
    """Chooses samples between epochs or rounds (active learning, pruning, coresets).

    ``score`` gives one score per pool row (higher = picked first); ``pick`` returns the
    positions of ``budget`` distinct rows. The optional hooks (``needs_teacher``, ``fit``,
    ``reseed``) are declared, with their defaults, by :class:`SelectorHooks`.
    """

    def score(self, pool: Pool, teacher: Teacher | None, student: nn.Module | None) -> Tensor:
        ...

    def pick(self, scores: Tensor, budget: int) -> Tensor: ...


class SelectorHooks:
    """A selector as the loops see it: the required ``score`` and ``pick`` plus every
    optional hook.

    - ``needs_teacher``: True when the scores read the teacher's outputs; default False.
    - ``fit(x, y, teacher, student, index=index)``: measure something on rows whose labels
      are known (``index``: their positions in the training split, what position-aware
      teachers are asked for) before ``score`` (the skill profile of STAT, METHODS.md §34);
      default none (``fits`` is False and :meth:`fit` does nothing).
    - ``reseed(seed)``: the selector's own random draws follow ``seed`` (one loop per seed);
      default nothing (a selector that draws nothing).
    """

    def __init__(self, selector: Any):
        if isinstance(selector, SelectorHooks):
            selector = selector.part
        self.part = selector
        self.needs_teacher = bool(_hook(selector, "needs_teacher", False))
        self._fit = _hook(selector, "fit")
        self._reseed = _hook(selector, "reseed")

    @property
    def name(self) -> str:
        return type(self.part).__name__

    @property
    def fits(self) -> bool:
        """The selector has ``fit``: it must see rows with known labels before scoring."""
        return self._fit is not None

    def score(self, pool: Pool, teacher: Teacher | None, student: nn.Module | None) -> Tensor:
        return self.part.score(pool, teacher, student)

    def pick(self, scores: Tensor, budget: int) -> Tensor:
        return self.part.pick(scores, budget)

    def fit(self, x: Tensor, y: Tensor, teacher: Teacher | None, student: nn.Module | None,
            index: Tensor | None = None) -> None:
        if self._fit is not None:
            self._fit(x, y, teacher, student, index=index)

    def reseed(self, seed: int) -> None:
        if self._reseed is not None:
            self._reseed(seed)


def selector_needs_teacher(selector: Any) -> bool:
    """True when ``selector`` scores with the teacher's outputs (declared optional hook,
    default False; :class:`SelectorHooks`)."""
    return SelectorHooks(selector).needs_teacher


class RowSource(Protocol):
    """A split's inputs by stable sample id ``0..len-1`` (:mod:`mentor.data.rows`: a tensor in
    memory, named tensors in memory, a map-style dataset read through a DataLoader, or a
    stream). The engine draws each step's ids itself (order, streams, views and resume index
    by id) and asks the source for their inputs; a source only reads. A batch's inputs are a
    tensor or named tensors (a dict), which the task adapter passes to the model."""

    def __len__(self) -> int: ...

    @property
    def input_shape(self) -> tuple[int, ...]: ...

    @property
    def in_memory(self) -> Tensor | None:
        """Every input as one tensor, or ``None`` when they are not held in memory (parts
        that read every input up front, e.g. a clustering refiner, refuse such a source)."""

    random_access: bool  # False: read front to back (a stream); samplers that draw rows from
    #                      anywhere (labeled and unlabeled streams) refuse it

    def to(self, device: Any) -> "RowSource":
        """The same rows, delivered on ``device``."""

    def order(self, generator: Any) -> Tensor:
        """An epoch's row order, drawn with the training's ``generator``: a permutation of
        every row, or -- a stream without random access -- one that shuffles only within
        windows of consecutive rows, so reading in that order is one pass."""

    def take(self, ids: Tensor) -> Tensor | dict[str, Tensor]:
        """The inputs of rows ``ids``, stacked (each named tensor's rows, for named inputs)."""

    def batches(self, ids: Any) -> Any:
        """The inputs of each id batch of the iterable ``ids``, in order (an iterator; a
        DataLoader-fed source reads ahead of the batch being used)."""

    def subset(self, ids: Tensor) -> "RowSource":
        """Rows ``ids`` as a source of their own (row ``k`` is row ``ids[k]``): a teacher's
        labeled rows, a data selection. A stream, without random access, refuses."""


@runtime_checkable
class TaskAdapter(Protocol):
    """Says what a model output *is* for one task and how it is scored.

    ``metric`` names the validation metric (classification: ``"accuracy"``), the mean of
    :meth:`score` over a split; the engine records it per epoch as ``val_<metric>`` and keeps
    the best epoch's weights by it, higher or lower as ``higher_is_better`` says."""

    name: str
    metric: str
    higher_is_better: bool
    per_row_parts: bool  # views and mixers may transform its rows (False: tagging)
    # views of its rows must keep every position (a label per position): only augmentations
    # that rewrite a token in place (``fn.inputs == "ids"``, e.g. token_resample) -- tagging
    position_views: bool
    # the adapter of one element (:meth:`elements`): itself where a row is an element, the
    # classification adapter for a tagging token; the pseudo-label monitor scores with it
    element_task: "TaskAdapter"

    def num_outputs(self, model: nn.Module, example: Tensor) -> int:
        """The size of the model's output per element (classes, vocabulary), read from its
        outputs on two example rows; the engine passes it on and never interprets it."""

    def check(self, model: nn.Module, teacher: Teacher | None, example: Tensor,
              num_outputs: int) -> None:
        """Raise a one-sentence error unless student (and teacher) outputs fit the data."""

    def forward(self, model: nn.Module, x: Any, y: Any = None) -> Tensor:
        """How a model is called on a batch's inputs ``x`` (``y`` given: the model reads the
        labels as input); returns its outputs."""

    def take(self, y: Any, ids: Tensor | slice) -> Any:
        """The labels of rows ``ids`` (a batch's ``y``; or a slice, an evaluation shard) out
        of a split's labels ``y``."""

    def hide(self, y: Any, seen: Tensor) -> Any:
        """``y`` with the labels of rows not in ``seen`` (a boolean per row) hidden."""

    def known(self, y: Any) -> Tensor:
        """Per row: a label is known (seen) in ``y``."""

    def pseudo_labels(self, outputs: Tensor, batch: Batch) -> Any:
        """The batch's labels where seen, else the prediction from (teacher) ``outputs``.
        The engine labels unlabeled rows with it; it computes no arg-max itself."""

    def predict(self, logits: Tensor) -> Tensor:
        """One prediction per row from a model's outputs (classification: the arg-max class)."""

    def correct(self, logits: Tensor, y: Tensor) -> Tensor:
        """Per-row correctness against labels (or against another model's outputs)."""

    def same(self, labels: Any, truth: Any) -> Tensor:
        """Per row: ``labels`` (e.g. pseudo-labels) agree with ``truth`` where it is seen."""

    def score(self, logits: Tensor, y: Tensor) -> Tensor:
        """Per-row values of the validation metric, for a metric that is their mean
        (classification: 1 where the prediction is right; see :meth:`metric_state`)."""

    def metric_state(self, logits: Tensor | None, y: Any) -> Tensor:
        """How predictions are gathered over processes: one shard's validation metric as a
        1-D float64 tensor of sums (classification: ``[correct, rows]``; a detection mAP:
        per-class histograms of matched and unmatched scores), ``logits`` ``None`` for an
        empty shard. The engine sums every process's state (all-reduce) and asks
        :meth:`metric_value` for the metric, so it covers every row exactly once."""

    def metric_value(self, state: Tensor) -> float:
        """The validation metric from the summed states of every shard."""

    def example(self, num_outputs: int) -> tuple[Tensor, Any]:
        """Zero outputs and labels of two rows, on which the engine runs every objective once
        before training (a parameter that does not fit the outputs fails before any step)."""

    def label_name(self, label: Any) -> str:
        """A label in words, for messages (classification: ``"class 3"``)."""

    def elements(self, outputs: Tensor | dict[str, Tensor], targets: Targets | None,
                 batch: Batch) -> tuple[Tensor | dict[str, Tensor], Targets | None, Batch]:
        """What the objectives read: the step's outputs, teacher targets and batch as rows of
        elements, each a ``(C,)`` score vector with one label. Classification and tokens
        return them as they are (a row is an element; token losses read positions
        themselves); tagging gives one element per real token, so every classification loss
        applies per token."""


@runtime_checkable
class StepFeed(Protocol):
    """What one training's optimizer steps train on (:func:`mentor.engine.loop.run_training`).

    ``steps(progress, epoch)`` yields, for each step of the epoch from ``progress.batch`` on,
    the step's micro-batches: callables returning ``(loss, value, fault)`` -- the loss to
    differentiate, the value the step records (a 0-d tensor; the loop sums the micro-batches'
    values and, under several processes, the ranks'; so each gives its share) and a callable
    that raises the :class:`~mentor.errors.TrainingFault` naming a non-finite loss. The loop
    accumulates their gradients into one optimizer step. A feed draws everything from the
    training's generator (``tr.gen``, saved with each checkpoint) or from state it returns in
    ``state_dict``, so a resumed run is the uninterrupted one."""

    def steps_in(self, epoch: int) -> int:
        """Optimizer steps in ``epoch`` (an epoch ends with validation and a checkpoint)."""

    def new_history(self) -> dict[str, list]:
        """The history a fresh run starts with: ``epoch``, ``train_loss``, ``val_<metric>``."""

    def steps(self, progress: Any, epoch: int) -> Any: ...

    def validate(self, model: nn.Module) -> float | None:
        """The task's validation metric of ``model`` (``None``: no validation data; the loop
        then keeps the last weights)."""

    def epoch_summary(self, progress: Any) -> dict[str, float]:
        """Extra per-epoch history entries (e.g. pseudo-label quality)."""

    def state_dict(self) -> dict[str, Tensor]:
        """The feed's own state for a checkpoint (its draws beyond ``tr.gen``)."""

    def load_state_dict(self, state: dict[str, Tensor]) -> None: ...


class TokenTeacher(Protocol):
    """A language-model teacher of the token feed (:mod:`mentor.lm.signals`: a local model,
    stored top-k log-probabilities, a served model). ``queries`` counts the sequences it was
    asked about and ``cost_per_query`` prices each."""

    vocab_size: int
    queries: int
    cost_per_query: float

    def signal(self, ids: Tensor, rows: Tensor | None = None,
               attention: Tensor | None = None) -> Any:
        """Next-token targets aligned with the student's logits on ``ids`` ``(B, L)``: logits
        ``(B, L, V)`` or a :class:`~mentor.losses.tokens.TopKSignal`. ``rows`` are the dataset
        rows of ``ids`` (``None`` for sampled sequences); ``attention`` ``(B, L)`` marks real
        tokens of right-padded rows (``None``: all)."""

    def generate(self, batch: Any, new_tokens: int | None = None, *, greedy: bool = True,
                 temperature: float = 1.0, generator: Any = None) -> Any:
        """``batch``'s prompts (a :class:`~mentor.lm.token_data.TokenData`) with this teacher's
        completions, each cut after the data's end-of-sequence token, as ``TokenData`` (up to
        ``new_tokens`` new tokens; default the batch's longest completion). A teacher that
        cannot generate raises :class:`~mentor.errors.MentorError`."""
