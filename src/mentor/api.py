"""Python API: distill any teacher into your own ``torch.nn.Module``.

>>> import mentor, torch
>>> splits = mentor.load_data("iris")
>>> from sklearn.linear_model import LogisticRegression
>>> teacher = LogisticRegression(max_iter=500).fit(splits.train.x.numpy(), splits.train.y.numpy())
>>> d = mentor.Distiller(lambda: torch.nn.Linear(4, 3), teacher, method="kd", temperature=2.0,
...                      epochs=5, seed=1)
>>> result = d.fit(splits)
>>> 0.0 <= d.evaluate(splits)["accuracy"] <= 1.0
True
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable

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

    ``student``: a zero-argument callable that builds the student (a factory: ``MyNet``,
    ``lambda: MyNet(width=32)``), called under ``torch.manual_seed(seed)`` at each
    :meth:`fit` -- as ``mentor run`` builds its students -- so fits with the same ``seed``
    start from the same weights and a mean over seeds covers the initialisation (the
    caller's torch RNG state is left as it was); or a ``torch.nn.Module``, trained from the
    weights it has (they are yours, pretrained or not: ``seed`` does not set them, and a
    warning says so for a ``seed`` other than 0; a second :meth:`fit` continues from the
    weights the first one left, with a warning).
    ``teacher``: a ``torch.nn.Module``, an object with ``predict_proba`` (a fitted
    scikit-learn classifier), a list of those (ensemble, averaged probabilities) or a
    mentor teacher; ``None`` for methods that need none (``scratch``).
    ``teacher_inputs``: the preprocessing your teacher (module or ``predict_proba`` model)
    was trained with, when the splits are standardized: ``"raw"`` (it is given each row as
    ``x * std + mean``, the features before standardization) or ``"standardized"`` (the
    splits' rows as they are). ``None`` (default): the splits say -- ``"raw"`` for
    :func:`mentor.data.from_arrays` (you hold the raw arrays), ``"standardized"`` for
    :func:`mentor.load_data` (you trained on ``splits.train.x``). Mentor teachers (a label
    store, a checkpoint teacher) always take the splits' rows.
    ``task``: the registered task the student's outputs are for (``"classification"``:
    class logits per row; ``"tagging"``: tag logits per token, :mod:`mentor.tasks.tagging`).
    Training options are those of the recipe's ``train`` section (``epochs``, ``lr``, ...);
    every other keyword is a parameter of the method (``temperature``, ``alpha``, ...).
    ``refiners`` and ``updater`` add parts to the method's plan: part objects, or registered
    parts by name (``"threshold"``) or as a recipe writes them (``{"name": "threshold",
    "tau": 0.9}``). For ``method="compose"``, whose own parameters are ``refiners`` and
    ``updater``, names and dicts are the composition's parts, as in a recipe.
    """

    def __init__(self, student: nn.Module | Callable[[], nn.Module], teacher: Any = None,
                 method: str = "kd", *, seed: int = 0, refiners=(), updater=None,
                 teacher_inputs: str | None = None, task: str = "classification",
                 **options: Any):
        from .registry import TASKS
        if teacher_inputs not in (None, "raw", "standardized"):
            raise MentorError(f"teacher_inputs must be 'raw', 'standardized' or None, got "
                              f"{teacher_inputs!r}")
        if not isinstance(student, nn.Module) and not callable(student):
            raise MentorError(f"student of type {type(student).__name__} is not supported; "
                              "expected a torch.nn.Module or a zero-argument callable that "
                              "builds one")
        train_fields = set(TrainSpec.model_fields) - {"seeds"}
        train_opts = {k: v for k, v in options.items() if k in train_fields}
        method_params = {k: v for k, v in options.items() if k not in train_fields}
        self.spec = TrainSpec(**train_opts, seeds=[seed])
        self.task = TASKS.get(task)
        self.method = get_method(method)
        refiners, updater = _named_parts(self.method, refiners, updater, method_params)
        self.plan = self.method.plan(**method_params)
        self.factory = None if isinstance(student, nn.Module) else student
        if self.factory is None and seed != 0:
            warnings.warn(f"Distiller: seed={seed} does not set the weights of the student "
                          f"module you passed (they are trained as they are); pass a factory, "
                          f"e.g. student=lambda: {type(student).__name__}(...), to build the "
                          f"student under the seed", UserWarning, stacklevel=_stacklevel(self))
        self.student = None if self.factory is not None else student  # built by fit
        self.model = self.student  # what is trained and predicts; a method may wrap it in fit
        self.teacher_source = teacher
        self.teacher_inputs = teacher_inputs
        self.seed = seed
        self.refiners = refiners
        self.updater = updater
        self.result: FitResult | None = None

    def teacher_for(self, data: Splits) -> Any:
        """The teacher as training calls it on ``data``'s rows: your model wrapped as a mentor
        teacher (:func:`mentor.teachers.as_teacher`), in a
        :class:`~mentor.teachers.RawInputTeacher` when it takes raw inputs
        (``teacher_inputs``) and the splits are standardized; ``None`` without a teacher."""
        return None if self.teacher_source is None else self._teacher(data)

    def _teacher(self, data: Splits) -> Any:
        inputs = self.teacher_inputs or getattr(data, "teacher_inputs", "standardized")
        stats = ((data.mean, data.std) if inputs == "raw" and data.mean is not None
                 else None)
        return as_teacher(self.teacher_source, data.num_classes, unstandardize=stats)

    def fit(self, data: Splits, *, checkpoint_dir: str | Path | None = None,
            resume: bool = False, max_steps: int | None = None) -> FitResult:
        """Train the student on ``data`` (train split; validation split for model selection).
        A factory student is built afresh after ``torch.manual_seed(seed)``, as ``mentor run``
        does, and a method's new heads (DHO's, USKD's) and the dropout draws follow from the
        same stream, so the same fit repeats exactly; a module student continues the caller's
        stream (seed it before building it, as ``mentor run`` does). The caller's RNG state is
        restored afterwards."""
        teacher = None
        if self.plan.needs_teacher:
            teacher = self._teacher(data)
        if self.factory is None and self.result is not None and not resume:
            warnings.warn("Distiller.fit: the student module was trained by an earlier fit "
                          "and continues from those weights; pass a factory (e.g. "
                          f"student=lambda: {type(self.student).__name__}(...)) to start each "
                          "fit from fresh weights", UserWarning, stacklevel=2)
        # as `mentor run`: torch's RNG seeded, the student built, then the method's new heads
        # and every dropout draw from the same stream. A factory is built after seeding with
        # ``seed``, so its fit repeats exactly whatever the caller's RNG did; a module was
        # built by the caller, whose stream (seed, build) goes on. The caller's RNG state is
        # left as it was either way.
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            if self.factory is not None:
                torch.manual_seed(self.seed)
                self.student = _built(self.factory)
            self.result = self.plan.fit(
                self.student, data.train, data.val, spec=self.spec, seed=self.seed,
                num_outputs=data.num_classes, teacher=teacher, input_shape=data.input_shape,
                refiners=self.refiners, updater=self.updater,
                checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None,
                resume=resume, max_steps=max_steps, task=self.task)
        self.model = self.result.model
        return self.result

    def evaluate(self, data: Splits, split: str = "test") -> dict[str, float]:
        """The task's metric of the trained student on one split (classification:
        ``accuracy``; tagging: ``span_f1``), gathered over processes."""
        self._check_trained("evaluate")
        acc = get_accelerator(self.spec.mixed_precision)
        part = getattr(data, split)
        return evaluate(self.model, part.x.to(acc.device), part.y.to(acc.device), acc,
                        task=self.task)

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities of the trained student for inputs ``x``."""
        self._check_trained("predict_proba")
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
        self._check_trained("save")
        saved, wrapper = for_export(self.model)
        meta = {"mentor.method": self.method.name, "mentor.method_description":
                self.plan.description, "mentor.seed": self.seed,
                "mentor.val_accuracy": self.result.best_val_accuracy}
        if wrapper is not None:
            meta["mentor.wrapper"] = wrapper
        save_weights(Path(path), saved, meta)
        return Path(path)

    def _check_trained(self, what: str) -> None:
        if self.model is None or (what == "save" and self.result is None):
            raise MentorError(f"{what}: the student is not trained yet; call fit(data) first")


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

    def __init__(self, student: nn.Module | Callable[[], nn.Module], method: str = "fixmatch",
                 *, teacher: Any = None, **options: Any):
        super().__init__(student, teacher, method, **options)


def _stacklevel(distiller: Distiller) -> int:
    """The warning's stack level that names the caller's line (one more through
    :class:`SemiSupervised`)."""
    return 3 if isinstance(distiller, SemiSupervised) else 2


def _built(factory: Callable[[], nn.Module]) -> nn.Module:
    """``factory()``, checked to be a module (the caller seeds torch's RNG first)."""
    student = factory()
    if not isinstance(student, nn.Module):
        raise MentorError(f"student: the factory returned a {type(student).__name__}; expected "
                          "a torch.nn.Module")
    return student


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
