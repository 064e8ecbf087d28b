"""Fair comparisons: every method of a setting gets the same data, views and steps.

The recipe's ``train`` section (epochs, batch size, optimizer, selection on the validation
split) is shared by every method of a setting, so those are equal by construction. What a
method's plan can still change is checked here, before anything trains:

- ``views``: the view its labeled rows see (:func:`mentor.engine.views.labeled_view`; in the
  semi-supervised regime a method naming no views gets the presets' weak view);
- ``rows``: a method that trains on a subset of the training rows it selects itself (data
  pruning) takes fewer steps than the others.

A setting whose methods differ in either is refused unless its ``train.allow_unequal`` lists
the difference; then the leaderboard row of each method that got something else than
most methods says what it saw.
"""

from __future__ import annotations

from typing import Any

from .engine.views import labeled_view
from .errors import MentorError

ASPECTS = ("views", "rows")


def exposure(plan: Any, semi_supervised: bool) -> dict[str, str]:
    """What one method's training is given, per aspect, in words."""
    view = labeled_view(plan.augment, semi_supervised)
    return {"views": f"labeled rows on the {view} view" if view else "labeled rows un-augmented",
            "rows": ("trains on a subset of the rows it selects"
                     if plan.select_train is not None else "trains on every training row")}


def budget_notes(setting: str, methods: list[tuple[str, Any]], semi_supervised: bool,
                 allowed: list[str]) -> dict[str, str]:
    """``{label: note}`` for a setting's methods ``[(label, plan)]``: empty notes when every
    method gets the same views and rows; otherwise a :class:`MentorError` unless the unequal
    aspects are in ``allowed``, and the note of each method that got something else than
    most methods says what it saw."""
    seen = {label: exposure(plan, semi_supervised) for label, plan in methods}
    unequal = [a for a in ASPECTS if len({e[a] for e in seen.values()}) > 1]
    refused = [a for a in unequal if a not in allowed]
    if refused:
        a = refused[0]
        groups: dict[str, list[str]] = {}
        for label, e in seen.items():
            groups.setdefault(e[a], []).append(repr(label))
        who = "; ".join(f"{_names(labels)}: {what}" for what, labels in groups.items())
        raise MentorError(
            f"setting {setting!r}: its methods are compared on unequal {a} ({who}); expected "
            f"every method of a comparison to get the same {a} (to compare them anyway, set "
            f"train.allow_unequal: [{a}] and the leaderboard labels each row)")
    common = {}  # what most methods got, per unequal aspect
    for a in unequal:
        vals = [e[a] for e in seen.values()]
        common[a] = max(vals, key=vals.count)
    return {label: "; ".join(e[a] for a in unequal if e[a] != common[a])
            for label, e in seen.items()}


def _names(labels: list[str]) -> str:
    return ", ".join(labels) if len(labels) <= 3 else f"{', '.join(labels[:2])} and " \
        f"{len(labels) - 2} more"
