"""``compose``: a method built in a recipe from registered parts.

The presets are fixed compositions; ``compose`` lets a recipe write its own, validated like
the rest of the recipe (a name that is not registered, a parameter a part does not take or a
value out of range is one sentence naming the field)::

    methods:
      - name: compose
        label: fixmatch-with-curriculum
        objectives:
          - {loss: ce, rows: labeled}
          - {loss: pseudo_ce, rows: unlabeled, normalize: rows}
        refiners:
          - {name: curriculum, ramp_epochs: 10}
        updater: {name: live}
        views: {teacher: weak, student: strong, labeled: weak}

- ``objectives``: registered losses (:data:`mentor.registry.LOSSES`) with their weight,
  parameters and rows (:class:`mentor.engine.objectives.Objective`);
- ``refiners``: registered refiners (:data:`mentor.registry.REFINERS`), applied in order;
- ``updater``: a registered teacher updater (:data:`mentor.registry.UPDATERS`); ``live``
  or an EMA builds the teacher from the student, ``frozen`` (the default) keeps the recipe's
  teacher, ``static_ema`` pairs it with an EMA of the student;
- ``views``: which augmentation pipeline (``weak`` / ``strong`` / none) the teacher, the
  student on unlabeled rows and the student on labeled rows see;
- ``copy_paste``: BCP's labeled/unlabeled copy-paste batch mixer (:mod:`mentor.mix.batch`).
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..engine.objectives import Objective
from ..errors import MentorError
from ..registry import LOSSES, REFINERS, UPDATERS, Registry, suggest
from .plan import MethodPlan, _Params, register_method

_ROLES = ("teacher", "student", "labeled")


class ObjectiveSpec(BaseModel):
    """One weighted loss of a composed method."""

    model_config = ConfigDict(extra="forbid")
    loss: str
    weight: float = Field(1.0, ge=0)
    params: dict[str, Any] = Field(default_factory=dict)
    rows: Literal["labeled", "unlabeled", "all"] = "all"
    normalize: Literal["admitted", "rows"] = "admitted"
    warmup_epochs: int = Field(0, ge=0)
    standardize: bool = False

    def build(self) -> Objective:
        return Objective(self.loss, self.weight, dict(self.params), rows=self.rows,
                         standardize=self.standardize, warmup_epochs=self.warmup_epochs,
                         normalize=self.normalize)


class PartSpec(BaseModel):
    """A registered part: ``name`` and the parameters of its constructor."""

    model_config = ConfigDict(extra="allow")
    name: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class CopyPasteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ratio: float = Field(2 / 3, gt=0, le=1)
    u_weight: float = Field(0.5, ge=0)
    scales: Literal["single", "multi"] = "single"


def build_part(registry: Registry, spec: PartSpec, where: str) -> Any:
    """The registered part ``spec.name`` built with ``spec``'s parameters; one sentence
    naming ``where`` for an unknown name or parameter, or a value the part refuses."""
    if spec.name not in registry:
        raise MentorError(f"{where}.name: {spec.name!r} is not a registered {registry.kind}"
                          f"{suggest(spec.name, registry.names())}; expected one of: "
                          f"{', '.join(registry.names())}")
    cls = registry.get(spec.name)
    accepted = [p for p in inspect.signature(cls).parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    names = [p.name for p in accepted]
    for key in spec.params:
        if key not in names:
            raise MentorError(f"{where}.{key}: {registry.kind} {spec.name!r} has no parameter "
                              f"{key!r}{suggest(key, names)}; expected one of: "
                              f"{', '.join(names) or 'none'}")
    missing = [p.name for p in accepted if p.default is p.empty and p.name not in spec.params]
    if missing:
        raise MentorError(f"{where}.{missing[0]}: {registry.kind} {spec.name!r} needs "
                          f"parameter {missing[0]!r}")
    try:
        return cls(**spec.params)
    except MentorError as e:
        raise MentorError(f"{where}: {e}") from None
    except (TypeError, ValueError) as e:
        raise MentorError(f"{where}: {registry.kind} {spec.name!r} refuses parameters "
                          f"{spec.params} ({e})") from None


class ComposeParams(_Params):
    objectives: list[ObjectiveSpec] = Field(min_length=1, description="weighted registered "
                                            "losses")
    refiners: list[PartSpec] = Field(default_factory=list, description="registered refiners, "
                                     "in order")
    updater: PartSpec | None = Field(None, description="a registered teacher updater "
                                     "(default: frozen)")
    views: dict[Literal["teacher", "student", "labeled"],
                Literal["weak", "strong"] | None] | None = Field(
        None, description="augmentation pipeline per role (semi-supervised views)")
    copy_paste: CopyPasteSpec | None = Field(None, description="BCP's labeled/unlabeled "
                                             "copy-paste batch mixer")
    description: str = Field("", max_length=200)

    @model_validator(mode="after")
    def _parts_build(self):
        try:
            _parts(self)
        except MentorError as e:
            raise ValueError(str(e)) from None
        return self


def _parts(p: ComposeParams) -> tuple[list[Objective], list[Any], Any]:
    for i, o in enumerate(p.objectives):
        if o.loss not in LOSSES:
            raise MentorError(f"objectives[{i}].loss: {o.loss!r} is not a registered loss"
                              f"{suggest(o.loss, LOSSES.names())}")
    try:
        objectives = [o.build() for o in p.objectives]
    except MentorError as e:
        raise MentorError(f"objectives: {e}") from None
    refiners = [build_part(REFINERS, r, f"refiners[{i}]") for i, r in enumerate(p.refiners)]
    updater = build_part(UPDATERS, p.updater, "updater") if p.updater is not None else None
    return objectives, refiners, updater


def _describe(p: ComposeParams) -> str:
    if p.description:
        return p.description
    parts = [" + ".join(f"{o.weight:g}·{o.loss}({o.rows})" for o in p.objectives)]
    if p.refiners:
        parts.append("refiners " + " → ".join(r.name for r in p.refiners))
    if p.updater is not None:
        parts.append(f"updater {p.updater.name}")
    if p.views:
        parts.append("views " + ", ".join(f"{k} {v or 'none'}" for k, v in p.views.items()))
    if p.copy_paste is not None:
        parts.append("copy-paste")
    return "composed: " + "; ".join(parts)


@register_method("compose", ComposeParams,
                 description="a method composed in the recipe from registered parts: "
                 "objectives, refiners, a teacher updater, views, copy-paste")
def _compose(p: ComposeParams) -> MethodPlan:
    objectives, refiners, updater = _parts(p)
    batch_mixer = None
    if p.copy_paste is not None:
        from ..mix.batch import CopyPasteBatch
        batch_mixer = CopyPasteBatch(p.copy_paste.ratio, p.copy_paste.u_weight,
                                     p.copy_paste.scales)
    views = None
    if p.views is not None:
        views = {role: p.views.get(role) for role in _ROLES}
    return MethodPlan(objectives, refiners=refiners, updater=updater, augment=views,
                      batch_mixer=batch_mixer, description=_describe(p))
