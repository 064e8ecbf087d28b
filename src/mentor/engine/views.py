"""Which view of its rows each role of a training sees, and the rule that keeps a
supervised baseline on the same views as the semi-supervised methods it is compared with.

A method's plan names views per role -- ``teacher`` (the teacher's input), ``student`` (the
student's input on unlabeled rows) and ``labeled`` (the student's input on labeled rows) --
as ``"weak"``, ``"strong"`` or ``None`` (the row as it is). Every semi-supervised preset
trains its labeled rows on the weak view. In the semi-supervised regime (labeled and
unlabeled streams, ``train.unlabeled_ratio > 0``) a method that names no views -- the
supervised baseline ``scratch``, or a distillation method -- gets that same weak view on its
labeled rows, so a comparison never pits the presets against a baseline that sees fewer
views (``views_for``). A method that names its views keeps them; the runner refuses a
comparison whose methods' labeled rows see different views unless the recipe allows it
(``train.allow_unequal``) and labels the rows on the leaderboard.

The views themselves: :func:`pipelines` builds each role's augmentation, :func:`role_views`
draws them for a batch, :func:`draw_stored_views` picks a label store's stored views.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch
from torch import Tensor

from ..data.augment import Augment, default_views, role_generator
from ..errors import MentorError

if TYPE_CHECKING:  # the recipe schema composes methods, which train on this engine
    from ..recipe import TrainSpec

# the labeled-row view of every semi-supervised preset, given to methods that name none
SUPERVISED_VIEWS: dict[str, str | None] = {"teacher": None, "student": None, "labeled": "weak"}


def views_for(augment: dict[str, str | None] | None, semi_supervised: bool
              ) -> dict[str, str | None] | None:
    """The views a training uses: the plan's own, or -- in the semi-supervised regime, for a
    plan that names none -- the weak view on labeled rows (see the module docstring)."""
    if augment is None and semi_supervised:
        return dict(SUPERVISED_VIEWS)
    return augment


def labeled_view(augment: dict[str, str | None] | None, semi_supervised: bool) -> str | None:
    """The view a training's labeled rows see (``None``: the rows as they are)."""
    views = views_for(augment, semi_supervised)
    return (views or {}).get("labeled")


# each role draws its views from its own generator (role_generator(seed, step, id))
ROLES = {"teacher": 1, "student": 2, "labeled": 3}


def pipelines(augment: dict[str, str | None] | None, spec: TrainSpec,
              input_shape: Sequence[int], inputs: str = "rows") -> dict[str, Augment]:
    """Role -> augmentation pipeline for a method's weak/strong views ({} without views).
    The pipelines are ``spec.augment``'s or the defaults for ``input_shape`` and what the
    views read (``inputs``: :func:`mentor.data.augment.view_inputs`)."""
    if not augment or not any(augment.values()):
        return {}
    chosen = spec.augment.pipelines() if spec.augment is not None else {}
    defaults = default_views(input_shape, inputs)
    out = {}
    for role, kind in augment.items():
        if role not in ROLES:
            raise MentorError(f"augment role {role!r} is unknown; expected one of "
                              f"{', '.join(ROLES)}")
        if kind is None:
            continue
        if kind not in ("weak", "strong"):
            raise MentorError(f"augment.{role} must be 'weak', 'strong' or None, got {kind!r}")
        ops = chosen.get(kind) if chosen.get(kind) is not None else defaults[kind]
        out[role] = Augment(ops, input_shape, where=f"train.augment.{kind}")
    return out


def role_views(pipes: dict[str, Augment], rows: Tensor, labeled: Tensor | None, seed: int,
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
        g = role_generator(seed, step, ROLES[role])
        return pipe(rows, g, positions=local)
    x_lab, x_unl = view("labeled"), view("student")
    if labeled is None:
        return view("teacher"), x_lab
    if type(x_lab) is dict:  # named token tensors: each one row by row
        return view("teacher"), {k: torch.where(labeled[:, None], x_lab[k], x_unl[k])
                                  for k in x_lab}
    return view("teacher"), torch.where(labeled[:, None], x_lab, x_unl)


def draw_stored_views(n_views: int, size: int, seed: int, step: int) -> Tensor:
    """View ids (of a label store's stored views) for a global batch: a pure function of
    (seed, step), so resuming a run draws the same views without any saved generator state."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + step) % (2**63 - 1))
    return torch.randint(n_views, (size,), generator=g)
