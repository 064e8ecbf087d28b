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
"""

from __future__ import annotations

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
