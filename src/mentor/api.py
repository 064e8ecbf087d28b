"""Python API: distill any teacher into your own ``torch.nn.Module``.

>>> import mentor, torch
>>> splits = mentor.load_data("iris")
>>> student = torch.nn.Linear(4, 3)
>>> from sklearn.linear_model import LogisticRegression
>>> teacher = LogisticRegression(max_iter=500).fit(splits.train.x.numpy(), splits.train.y.numpy())
>>> d = mentor.Distiller(student, teacher, method="kd", temperature=2.0, epochs=5)
>>> result = d.fit(splits)
>>> 0.0 <= d.evaluate(splits)["accuracy"] <= 1.0
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .data.splits import Splits
from .engine import get_accelerator
from .engine.evaluate import evaluate
from .engine.loop import FitResult
from .errors import MentorError
from .methods import get_method
from .recipe import TrainSpec
from .teachers import as_teacher


class Distiller:
    """A student, a teacher, a registered method and its parameters.

    ``teacher``: a ``torch.nn.Module``, an object with ``predict_proba`` (a fitted
    scikit-learn classifier), a list of those (ensemble, averaged probabilities) or a
    mentor teacher; ``None`` for methods that need none (``scratch``).
    Training options are those of the recipe's ``train`` section (``epochs``, ``lr``, ...);
    every other keyword is a parameter of the method (``temperature``, ``alpha``, ...).
    ``refiners`` and ``updater`` add parts to the method's plan: part objects, or registered
    parts by name (``"threshold"``) or as a recipe writes them (``{"name": "threshold",
    "tau": 0.9}``). For ``method="compose"``, whose own parameters are ``refiners`` and
    ``updater``, names and dicts are the composition's parts, as in a recipe.
    """

    def __init__(self, student: nn.Module, teacher: Any = None, method: str = "kd", *,
                 seed: int = 0, refiners=(), updater=None, **options: Any):
        train_fields = set(TrainSpec.model_fields) - {"seeds"}
        train_opts = {k: v for k, v in options.items() if k in train_fields}
        method_params = {k: v for k, v in options.items() if k not in train_fields}
        self.spec = TrainSpec(**train_opts, seeds=[seed])
        self.method = get_method(method)
        refiners, updater = _named_parts(self.method, refiners, updater, method_params)
        self.plan = self.method.plan(**method_params)
        self.student = student
        self.model = student  # what is trained and predicts; a method may wrap it in fit
        self.teacher_source = teacher
        self.seed = seed
        self.refiners = refiners
        self.updater = updater
        self.result: FitResult | None = None

    def fit(self, data: Splits, *, checkpoint_dir: str | Path | None = None,
            resume: bool = False, max_steps: int | None = None) -> FitResult:
        """Train the student on ``data`` (train split; validation split for model selection)."""
        teacher = None
        if self.plan.needs_teacher:
            teacher = as_teacher(self.teacher_source, data.num_classes)
        self.result = self.plan.fit(
            self.student, data.train, data.val, spec=self.spec, seed=self.seed,
            num_outputs=data.num_classes, teacher=teacher, input_shape=data.input_shape,
            refiners=self.refiners, updater=self.updater,
            checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None,
            resume=resume, max_steps=max_steps)
        self.model = self.result.model
        return self.result

    def evaluate(self, data: Splits, split: str = "test") -> dict[str, float]:
        """Accuracy of the trained student on one split (gathered over processes)."""
        acc = get_accelerator(self.spec.mixed_precision)
        part = getattr(data, split)
        return evaluate(self.model, part.x.to(acc.device), part.y.to(acc.device), acc)

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities of the trained student for inputs ``x``."""
        self.model.eval()
        return torch.softmax(self.model(x), dim=-1)

    def save(self, path: str | Path) -> Path:
        """Write the trained student's weights to ``path`` as safetensors (atomically) and
        return the path. What is saved is what predicts: the bare student for methods whose
        extra parts only teach (an auxiliary head), the student with its second head for
        methods that predict with it. Load it into your module with
        ``safetensors.torch.load_model(module, path)``; the method, its description and the
        validation accuracy are in the file's metadata.

        >>> import mentor, tempfile, torch
        >>> from safetensors.torch import load_model
        >>> splits = mentor.load_data("iris")
        >>> d = mentor.Distiller(torch.nn.Linear(4, 3), None, method="scratch", epochs=2)
        >>> _ = d.fit(splits)
        >>> path = d.save(tempfile.mkdtemp() + "/student.safetensors")
        >>> fresh = torch.nn.Linear(4, 3)
        >>> _ = load_model(fresh, path)
        >>> torch.equal(fresh.weight, d.model.weight)
        True
        """
        from .engine.checkpoint import save_weights
        from .models.heads import for_export
        if self.result is None:
            raise MentorError("save: the student is not trained yet; call fit(data) first")
        saved, wrapper = for_export(self.model)
        meta = {"mentor.method": self.method.name, "mentor.method_description":
                self.plan.description, "mentor.seed": self.seed,
                "mentor.val_accuracy": self.result.best_val_accuracy}
        if wrapper is not None:
            meta["mentor.wrapper"] = wrapper
        save_weights(Path(path), saved, meta)
        return Path(path)


class SemiSupervised(Distiller):
    """A student that learns from a few labels and many unlabeled rows with a
    semi-supervised preset (``fixmatch``, ``flexmatch``, ``freematch``, ``softmatch``,
    ``mean-teacher``, ``pseudo-label``, ``gmm-teacher``); the teacher is built from the
    student (itself or a moving average), so none is given. Rows of ``data.train`` whose
    ``labeled`` flag is False are the unlabeled pool.

    >>> import mentor, torch
    >>> splits = mentor.load_data("digits", labeled_fraction=0.1)
    >>> net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(),
    ...                           torch.nn.Linear(64, 10))
    >>> ssl = mentor.SemiSupervised(net, "fixmatch", epochs=2, batch_size=16,
    ...                             unlabeled_ratio=7)
    >>> ssl.fit(splits).history["pl_coverage"][-1] >= 0
    True
    """

    def __init__(self, student: nn.Module, method: str = "fixmatch", *, teacher: Any = None,
                 **options: Any):
        super().__init__(student, teacher, method, **options)


def _named_parts(method, refiners, updater, method_params: dict) -> tuple[list, Any]:
    """``(refiner objects, updater object)``: names and recipe-style dicts built from the
    registries -- or, for a method whose own parameters are ``refiners`` / ``updater``
    (``compose``), moved into ``method_params`` as the recipe would give them."""
    from .methods.compose import PartSpec, build_part
    from .registry import REFINERS, UPDATERS

    def spec(part) -> dict | None:
        if isinstance(part, str):
            return {"name": part}
        return dict(part) if isinstance(part, dict) else None

    own = set(method.params.model_fields)
    specs = [spec(r) for r in refiners]
    if "refiners" in own and refiners and all(s is not None for s in specs):
        method_params["refiners"], refiners = specs, ()
    if "updater" in own and spec(updater) is not None:
        method_params["updater"], updater = spec(updater), None
    built = [r if s is None else build_part(REFINERS, _part(PartSpec, s, f"refiners[{i}]"),
                                            f"refiners[{i}]")
             for i, (r, s) in enumerate(zip(refiners, specs))]
    if spec(updater) is not None:
        updater = build_part(UPDATERS, _part(PartSpec, spec(updater), "updater"), "updater")
    return built, updater


def _part(cls, fields: dict, where: str):
    if "name" not in fields:
        raise MentorError(f"{where}: {fields!r} names no registered part; expected a name "
                          "or a dict with 'name' and the part's parameters")
    return cls(**fields)
