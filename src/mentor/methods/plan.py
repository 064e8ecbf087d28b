"""What a method is: a composition of registered parts (objectives, refiners, updater,
mixers, views) that :meth:`MethodPlan.fit` hands to the one training loop.

A method declares its parameters once as a pydantic model (ranges included) and builds a
:class:`MethodPlan`. The engine never branches on a method's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from ..contracts import UpdaterHooks
from ..losses.objective import Objective
from ..errors import MentorError
from ..registry import METHODS


@dataclass
class MethodPlan:
    """What a method plugs into the engine.

    ``taps``: feature taps (:class:`mentor.models.taps.Tap`) whose outputs objectives read as
    ``feat:<name>``. ``wrap_student(student, example_rows)``: turns the user's student into
    the trained module (e.g. a :class:`mentor.models.heads.DualHead`); the wrapped module is what
    inference uses.
    ``select_train``: ``(train split, seed) -> split``, the rows the student trains on.
    """

    objectives: list[Objective]
    refiners: list[Any] = field(default_factory=list)
    updater: Any = None
    description: str = ""
    taps: list[Any] = field(default_factory=list)
    wrap_student: Callable[[Any, Any], Any] | None = None
    select_train: Callable[[Any, int], Any] | None = None
    mixer: Any = None  # mixes two views of each sample (SelfMix); needs stored views
    # semi-supervised views: role -> "weak" / "strong" / None (teacher, student, labeled)
    augment: dict[str, str | None] | None = None
    batch_mixer: Any = None  # rebuilds batches from mixed labeled/unlabeled rows (BCP)

    def prepare_student(self, student, example):
        """The module to train; ``example``: a few input rows (to size new heads)."""
        return self.wrap_student(student, example) if self.wrap_student is not None else student

    def prepare_train(self, train, seed: int):
        """The training rows this method uses for ``seed`` (all of them unless it prunes)."""
        return self.select_train(train, seed) if self.select_train is not None else train

    def fit(self, student, train, val, *, spec, seed: int, num_outputs: int, teacher=None,
            input_shape=None, refiners=(), updater=None, **loop_options):
        """Train ``student`` with this plan: the one wiring from a plan to the training loop.

        The CLI, :class:`mentor.Distiller` / :class:`mentor.SemiSupervised`, the
        scikit-learn estimator and the benchmarks all call this, so every part of the plan
        (wrapped student, selected rows, objectives, refiners, updater, taps, view mixer,
        views, batch mixer) reaches the loop from every entry point. ``refiners`` run after
        the plan's own; ``updater`` replaces the plan's. ``teacher`` is passed on only when
        the plan learns from an external teacher. ``loop_options`` go to
        :func:`mentor.engine.fit` as they are (``checkpoint_dir``, ``resume``,
        ``max_steps``, ``on_epoch``, ``task``). Model initialisation is the caller's: seed
        before building ``student``. Returns the loop's :class:`mentor.engine.FitResult`,
        whose ``model`` is the prepared (possibly wrapped) student.

        >>> import mentor, torch
        >>> from mentor.methods import get_method
        >>> from mentor.recipe import TrainSpec
        >>> splits = mentor.load_data("iris")
        >>> plan = get_method("kd").plan(temperature=2.0)
        >>> teacher = mentor.teachers.ModuleTeacher(torch.nn.Linear(4, 3), 3)
        >>> _ = torch.manual_seed(0)
        >>> result = plan.fit(torch.nn.Linear(4, 3), splits.train, splits.val,
        ...                   spec=TrainSpec(epochs=2), seed=0, num_outputs=3, teacher=teacher)
        >>> result.history["epoch"], isinstance(result.model, torch.nn.Linear)
        ([1, 2], True)
        """
        from ..data.rows import as_rows
        from ..engine import fit as engine_fit
        rows = as_rows(train.x)
        if self.select_train is not None and rows.in_memory is None:
            raise MentorError(f"method {self.description!r} selects its training rows by "
                              "scoring every input up front, but the training rows are read "
                              "from a dataset; expected in-memory training inputs (a tensor)")
        module = self.prepare_student(student, rows.take(torch.arange(min(2, len(rows)))))
        return engine_fit(module, self.prepare_train(train, seed), val,
                          objectives=self.objectives, refiners=[*self.refiners, *refiners],
                          updater=updater if updater is not None else self.updater,
                          teacher=teacher if self.needs_teacher else None,
                          taps=self.taps, mixer=self.mixer, augment=self.augment,
                          batch_mixer=self.batch_mixer, input_shape=input_shape,
                          spec=spec, seed=seed, num_outputs=num_outputs, **loop_options)

    @property
    def needs_teacher(self) -> bool:
        """True when the method learns from an external teacher (not one it builds from the
        student, such as a mean teacher)."""
        from_student = self.updater is not None and UpdaterHooks(self.updater).from_student
        return any(o.needs_teacher for o in self.objectives) and not from_student


@dataclass(frozen=True)
class Claim:
    """What the method's paper predicts: ``method <relation> baseline`` in test accuracy."""

    baseline: str
    relation: str  # ">" (clearly better) or ">=" (at least as good)
    source: str


@dataclass(frozen=True)
class Method:
    name: str
    params: type[BaseModel]
    build: Callable[[BaseModel], MethodPlan]
    claim: Claim | None = None

    def plan(self, **params: Any) -> MethodPlan:
        from ..errors import RecipeError
        from .._validation import format_errors
        try:
            p = self.params.model_validate(params)
        except ValidationError as e:
            raise RecipeError(format_errors(e, ("method",)), source=f"method {self.name!r}") \
                from None
        return self.build(p)


def register_method(name: str, params: type[BaseModel] | None = None, *, description: str,
                    paper: str = "", claim: Claim | None = None):
    """Decorator: register ``build(params) -> MethodPlan`` as the method ``name``.

    ``params``: a pydantic model of the method's parameters with their ranges (``None``: no
    parameters); unknown parameters are errors, as for the built-in methods. Public as
    :func:`mentor.register_method` for plugins and user code; the entry's source is the
    plugin being loaded, or ``user code (module M)`` for ``build``'s module.

    >>> import mentor, torch
    >>> from pydantic import BaseModel, Field
    >>> from mentor.methods import METHODS, hinton
    >>> class Params(BaseModel):
    ...     alpha: float = Field(0.5, ge=0, le=1)
    >>> @mentor.register_method("doc-kd", Params, description="KD at T=2")
    ... def doc_kd(p):
    ...     return mentor.MethodPlan(hinton(p.alpha, temperature=2.0), description="doc KD")
    >>> mentor.methods.get_method("doc-kd").plan(alpha=0.7).description
    'doc KD'
    >>> mentor.methods.get_method("doc-kd").plan(alpah=0.7)
    Traceback (most recent call last):
    ...
    mentor.errors.RecipeError: ...alpah...
    >>> _ = METHODS.unregister("doc-kd")
    """
    params = _forbid_extra(params)

    def deco(build):
        METHODS.register(name, description=description, paper=paper,
                         module=getattr(build, "__module__", None))(
            Method(name, params, build, claim))
        return build
    return deco


def _forbid_extra(params: type[BaseModel] | None) -> type[BaseModel]:
    """``params`` refusing unknown keys (a subclass of it with ``extra='forbid'`` if needed)."""
    if params is None:
        return _Params
    if params.model_config.get("extra") == "forbid":
        return params
    return type(params.__name__, (params,), {
        "model_config": ConfigDict(**{**params.model_config, "extra": "forbid"}),
        "__module__": params.__module__, "__qualname__": params.__qualname__,
        "__doc__": params.__doc__})


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


def check_method_params(raw: dict[str, Any], loc: tuple) -> list[str]:
    """Problems with one ``method`` mapping of a recipe (unknown method or bad parameters)."""
    from .._validation import format_errors
    from ..registry import UnknownName
    name = raw.get("name")
    if not isinstance(name, str):
        return []  # reported by the recipe schema
    try:
        method: Method = METHODS.get(name)
    except UnknownName as e:  # (a plugin that fails to load is its own error)
        where = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc)
        return [f"{where}.name: {e}".replace(".[", "[")]
    params = {k: v for k, v in raw.items() if k not in ("name", "label")}
    try:
        method.params.model_validate(params)
    except ValidationError as e:
        return format_errors(e, loc)
    return []


def get_method(name: str) -> Method:
    return METHODS.get(name)
