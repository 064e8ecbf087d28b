"""Shared pieces of the distillation measurements: the digits teacher of the built-in
recipes and one student trained the way ``mentor run`` trains it."""

from __future__ import annotations

from contextlib import contextmanager
from unittest import mock

import torch

# the teacher of the built-in digits recipes (default, kd-family, data-efficient)
DIGITS_TEACHER = {"model": "mlp", "hidden": [256, 256], "seed": 0,
                  "train": {"epochs": 60, "batch_size": 64, "lr": 0.001,
                            "weight_decay": 0.0001, "seeds": [0]}}


def recipe_teacher(splits, spec: dict = DIGITS_TEACHER, epochs: int | None = None):
    """``(teacher, info)`` trained as ``mentor run`` trains the recipe teacher ``spec``
    (``epochs`` shortens it for quick forms)."""
    from mentor.recipe import TeacherSpec, TrainSpec
    from mentor.commands.run import train_teacher
    if epochs is not None:
        spec = {**spec, "train": {**spec["train"], "epochs": epochs}}
    return train_teacher(TeacherSpec(**spec), splits, TrainSpec(), None)


def student_accuracy(splits, method: str, params: dict | None = None, *, teacher=None,
                     seed: int = 0, epochs: int = 40, hidden=(32,), model: str = "mlp",
                     batch_size: int = 64, lr: float = 3e-3, views=None,
                     return_model: bool = False):
    """Test accuracy of one student (``model`` with ``hidden`` units) trained with preset
    ``method`` as ``mentor run`` trains it (seeded initialisation, the plan's subset, views
    and mixer; weights selected on the validation split)."""
    from mentor.engine.evaluate import evaluate
    from mentor.methods import get_method
    from mentor.models import build_model
    from mentor.recipe import TrainSpec
    plan = get_method(method).plan(**(params or {}))
    torch.manual_seed(seed)
    kwargs = {"hidden": list(hidden)} if model == "mlp" else {}
    student = build_model(model, splits.input_shape, splits.num_classes, **kwargs)
    res = plan.fit(student, splits.train, splits.val,
                   spec=TrainSpec(epochs=epochs, batch_size=batch_size, lr=lr), seed=seed,
                   num_outputs=splits.num_classes, teacher=teacher,
                   input_shape=splits.input_shape, views=views)
    acc = evaluate(res.model, splits.test.x, splits.test.y)["accuracy"]
    return (acc, res.model) if return_model else acc


@contextmanager
def generated_once():
    """Generate each MNIST-1D variant once in this block (the quick forms load the same
    generated data set several times; the generator is deterministic, so a cached copy is
    the same data)."""
    import mentor.data.sources as sources
    make, cache = sources._mnist1d_make, {}

    def cached(**changes):
        key = tuple(sorted(changes.items()))
        if key not in cache:
            cache[key] = make(**changes)
        return {k: v.copy() if hasattr(v, "copy") else v for k, v in cache[key].items()}
    with mock.patch.object(sources, "_mnist1d_make", cached):
        yield
