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
  parameters and rows (:class:`mentor.losses.objective.Objective`);
- ``refiners``: registered refiners (:data:`mentor.registry.REFINERS`), applied in order;
- ``updater``: a registered teacher updater (:data:`mentor.registry.UPDATERS`); ``live``
  or an EMA builds the teacher from the student, ``frozen`` (the default) keeps the recipe's
  teacher, ``static_ema`` pairs it with an EMA of the student;
- ``views``: which augmentation pipeline (``weak`` / ``strong`` / none) the teacher, the
  student on unlabeled rows and the student on labeled rows see;
- ``copy_paste``: BCP's labeled/unlabeled copy-paste batch mixer (:mod:`mentor.mix.batch`);
- ``mixers``: registered mixers (:data:`mentor.registry.MIXERS`) with their parameters,
  applied in order (after ``copy_paste``) to each batch once the teacher's targets are
  refined::

      mixers:
        - {name: mixup, alpha: 0.75}            # or {name: cutmix, lam_min: 0, lam_max: 1}
        - {name: frequency_amplitude_switch, size: 0.1}

  ``mixup`` / ``cutmix`` mix the unlabeled rows (every row in distillation) in pairs drawn
  from the step's generator, and their targets: the teacher's probabilities at the
  objectives' temperature, ``lam``-weighted (:class:`mentor.mix.batch.MixBatch`);
  ``bidirectional_copy_paste`` / ``multiscale_patches`` are BCP's copy-paste, the batch mixer
  ``copy_paste:`` builds, with the mixer's own parameters and ``u_weight``;
  ``frequency_amplitude_switch`` swaps low-frequency amplitude between labeled and unlabeled
  rows and leaves the targets alone.

  A mixed row's target is a mixture, carried as a soft target with a row weight, which
  only losses linear in their target's probabilities read exactly (``kd``, ``prob_mse``):
  with ``mixup``, ``cutmix``, a copy-paste (or ``copy_paste:``), every objective that reads
  mixed rows (``rows: unlabeled`` or ``all``) must be one of those, at one temperature
  (``prob_mse`` reads 1); hard-label losses (``ce``, ``pseudo_ce``, ...) and other teacher
  losses go on ``rows: labeled``, whose rows stay unmixed. The engine calls a batch mixer
  only for a method with a teacher objective, so mixers without one are refused too.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..losses.objective import Objective
from ..errors import MentorError, check_param
from ..registry import LOSSES, MIXERS, REFINERS, UPDATERS, Registry, suggest
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
    mixers: list[PartSpec] = Field(default_factory=list, description="registered mixers, "
                                   "applied in order to each batch (after copy_paste)")
    description: str = Field("", max_length=200)

    @model_validator(mode="after")
    def _parts_build(self):
        try:
            _parts(self)
        except MentorError as e:
            raise ValueError(str(e)) from None
        return self


# teacher losses linear in their target's probabilities (up to a term the student does not
# change), so a mixed target gives the mixed loss's gradient; value: the temperature parameter
_MIXABLE = {"kd": "temperature", "prob_mse": None}
_COPY_PASTE = ("bidirectional_copy_paste", "multiscale_patches")


def _mixed_temperature(objectives: list[Objective], where: str, what: str) -> float:
    """The temperature at which ``what`` (a batch mixer that mixes targets, named by its
    field ``where``) carries its mixed targets; one sentence when an objective that reads
    mixed rows could not read a mixture exactly."""
    temperature, source, readers = None, None, 0
    for i, o in enumerate(objectives):
        if o.rows == "labeled":  # labeled rows stay unmixed
            continue
        field = f"objectives[{i}]"
        if o.needs_labels:
            raise MentorError(f"{where}: {what} makes the rows {field} reads (rows: {o.rows}) "
                              f"mixtures of two rows, and {o.loss!r} reads one hard label per "
                              "row, which a mixture does not have; put it on rows: labeled "
                              "(labeled rows stay unmixed) or read mixed rows with kd or "
                              "prob_mse")
        if not o.needs_teacher:
            continue
        if o.loss not in _MIXABLE:
            raise MentorError(f"{where}: {what} gives each mixed row the mixture of two "
                              f"targets, and {field}.loss {o.loss!r} is not linear in its "
                              "target's probabilities, so it would not learn the mixture of "
                              "the two losses; expected kd or prob_mse on rows unlabeled or "
                              "all (other losses on rows: labeled)")
        if o.standardize:
            raise MentorError(f"{where}: {what} mixes the targets' probabilities, which "
                              f"z-scored logits do not keep; expected {field}.standardize "
                              "false")
        param = _MIXABLE[o.loss]
        t = float(o.params[param]) if param is not None else 1.0
        if temperature is not None and t != temperature:
            raise MentorError(f"{where}: {what} carries one mixed target per row, but "
                              f"{source} reads it at temperature {temperature:g} and {field} "
                              f"at {t:g}; expected one temperature (prob_mse reads 1)")
        temperature, source, readers = t, field, readers + 1
    if not readers:
        raise MentorError(f"{where}: {what} mixes the rows that objectives on rows "
                          "unlabeled or all read, but no teacher objective reads them; "
                          "expected a kd or prob_mse objective on rows unlabeled or all")
    return temperature


def _batch_mixers(p: ComposeParams, objectives: list[Objective]) -> list[Any]:
    """The batch mixers of ``copy_paste`` and ``mixers``, in order."""
    from ..mix.batch import CopyPasteBatch, batch_mixer, mixes_targets
    if (p.copy_paste is not None or p.mixers) and not any(o.needs_teacher for o in objectives):
        where = "copy_paste" if p.copy_paste is not None else "mixers"
        raise MentorError(f"{where}: the engine calls a batch mixer only for a method with a "
                          "teacher objective, and none of the objectives reads a teacher; "
                          f"expected one of: {', '.join(_MIXABLE)} (or another teacher loss)")
    labeled = [o.loss for o in objectives if o.rows == "labeled"]
    out = []
    if p.copy_paste is not None:
        t = _mixed_temperature(objectives, "copy_paste", "copy-paste")
        out.append(CopyPasteBatch(p.copy_paste.ratio, p.copy_paste.u_weight,
                                  p.copy_paste.scales, temperature=t))
    for i, spec in enumerate(p.mixers):
        where = f"mixers[{i}]"
        params = spec.params
        u_weight = 0.5
        if spec.name in _COPY_PASTE and "u_weight" in params:
            u_weight = params.pop("u_weight")
            try:
                check_param(spec.name, "u_weight", u_weight, low=0)
            except MentorError as e:
                raise MentorError(f"{where}.u_weight: {e}") from None
        part = build_part(MIXERS, PartSpec(name=spec.name, **params), where)
        t = _mixed_temperature(objectives, where, spec.name) if mixes_targets(part) else 1.0
        try:
            out.append(batch_mixer(part, temperature=t, u_weight=u_weight,
                                   labeled_objectives=labeled))
        except MentorError as e:
            raise MentorError(f"{where}.name: {e}") from None
    return out


def _parts(p: ComposeParams) -> tuple[list[Objective], list[Any], Any, Any]:
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
    mixers = _batch_mixers(p, objectives)
    batch_mixer = None
    if len(mixers) == 1:
        batch_mixer = mixers[0]
    elif mixers:
        from ..mix.batch import BatchMixers
        batch_mixer = BatchMixers(mixers)
    return objectives, refiners, updater, batch_mixer


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
    if p.mixers:
        parts.append("mixers " + " → ".join(m.name for m in p.mixers))
    return "composed: " + "; ".join(parts)


@register_method("compose", ComposeParams,
                 description="a method composed in the recipe from registered parts: "
                 "objectives, refiners, a teacher updater, views, copy-paste, mixers")
def _compose(p: ComposeParams) -> MethodPlan:
    objectives, refiners, updater, batch_mixer = _parts(p)
    views = None
    if p.views is not None:
        views = {role: p.views.get(role) for role in _ROLES}
    return MethodPlan(objectives, refiners=refiners, updater=updater, augment=views,
                      batch_mixer=batch_mixer, description=_describe(p))
