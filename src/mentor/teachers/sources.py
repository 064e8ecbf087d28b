"""Built-in teacher sources."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import CheckpointError, MentorError
from ..models.call import call_model
from .committee import CommitteeTeacher

_LOG_FLOOR = math.log(1e-8)


class ModuleTeacher:
    """A frozen ``torch.nn.Module`` teacher, always evaluated in eval mode; called on a
    tensor, or with named tensors as keyword arguments (:func:`~mentor.models.call.call_model`)."""

    def __init__(self, module: nn.Module, num_classes: int, description: str = "module"):
        self.module = module.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.num_classes = int(num_classes)
        self.description = description

    def logits(self, x: Tensor | dict[str, Tensor]) -> Tensor:
        with torch.no_grad():
            return call_model(self.module, x)

    def to(self, device) -> "ModuleTeacher":
        self.module.to(device)
        return self

    def train(self, mode: bool = True):  # a teacher stays in eval mode
        return self


class LiveTeacher:
    """The student itself as its own teacher (FixMatch-style self-training): outputs are
    computed without gradient, in whatever mode the student is in, and change as it learns."""

    cacheable = False

    def __init__(self, module: nn.Module, num_classes: int):
        self.module = module
        self.num_classes = int(num_classes)
        self.description = "the student itself (no gradient)"

    def logits(self, x: Tensor | dict[str, Tensor]) -> Tensor:
        with torch.no_grad():
            return call_model(self.module, x)


class EnsembleTeacher(CommitteeTeacher):
    """Average of several teachers: of probabilities (``combine='probs'``, returned as the log
    of the mean probability) or of logits (``combine='logits'``). A committee with fixed,
    equal weights; see :class:`mentor.teachers.CommitteeTeacher` for weighted and
    confidence-weighted fusion."""

    def __init__(self, members: Sequence[Any], combine: Literal["probs", "logits"] = "probs"):
        if combine not in ("probs", "logits"):
            raise MentorError(f"teacher.combine must be 'probs' or 'logits', got {combine!r}")
        super().__init__(members, fuse="mean" if combine == "probs" else "logits")
        self.combine = combine
        self.description = f"ensemble of {len(self.members)} ({combine} averaged)"


class ProbaTeacher:
    """Any object with ``predict_proba`` (e.g. a fitted scikit-learn classifier).

    Its ``classes_`` (when present) must be ``0..C-1`` in order so columns line up with
    labels. Probabilities are floored at 1e-8 before the log.
    """

    def __init__(self, model: Any, num_classes: int | None = None):
        if not callable(getattr(model, "predict_proba", None)):
            raise MentorError(f"teacher {type(model).__name__} has no predict_proba method; "
                              "expected a fitted classifier")
        classes = getattr(model, "classes_", None)
        if classes is not None:
            classes = np.asarray(classes)
            if not np.array_equal(classes, np.arange(len(classes))):
                raise MentorError(f"teacher classes_ are {classes.tolist()}; expected 0..C-1 in "
                                  "order so probability columns match labels")
            num_classes = num_classes or len(classes)
        if num_classes is None:
            raise MentorError("teacher has no classes_; pass num_classes")
        self.model = model
        self.num_classes = int(num_classes)
        self.description = f"{type(model).__name__} (predict_proba)"

    def logits(self, x: Tensor) -> Tensor:
        p = np.asarray(self.model.predict_proba(x.detach().cpu().numpy()), dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != self.num_classes:
            raise MentorError(f"teacher predict_proba returned shape {p.shape}; expected "
                              f"({len(x)}, {self.num_classes})")
        return torch.from_numpy(np.maximum(np.log(np.maximum(p, 1e-8)), _LOG_FLOOR)).to(
            device=x.device, dtype=x.dtype if x.is_floating_point() else torch.float32)

    def to(self, device) -> "ProbaTeacher":
        return self


class RawInputTeacher:
    """A teacher trained on raw features, fed the standardized rows of :class:`Splits`: each
    row is mapped back to the teacher's own preprocessing, ``x * std + mean`` (the training
    split's statistics, ``Splits.mean`` / ``Splits.std``), before ``teacher`` sees it.

    >>> import numpy as np, torch
    >>> class Sum:  # a "teacher" that reads its inputs as given
    ...     num_classes = 1
    ...     def logits(self, x): return x.sum(1, keepdim=True)
    >>> t = RawInputTeacher(Sum(), np.array([10.0, 20.0]), np.array([2.0, 4.0]))
    >>> t.logits(torch.tensor([[0.0, 0.0], [1.0, -1.0]])).flatten().tolist()
    [30.0, 28.0]
    """

    def __init__(self, teacher: Any, mean: np.ndarray, std: np.ndarray):
        self.teacher = teacher
        self.num_classes = teacher.num_classes
        self.mean = torch.as_tensor(np.asarray(mean, dtype=np.float32)).flatten()
        self.std = torch.as_tensor(np.asarray(std, dtype=np.float32)).flatten()
        self.cacheable = getattr(teacher, "cacheable", True)
        self.description = (f"{getattr(teacher, 'description', type(teacher).__name__)} "
                            "(on raw inputs)")

    def raw(self, x: Tensor) -> Tensor:
        """Standardized rows ``x`` (N, ...) as the raw rows they were made from."""
        flat = x.reshape(len(x), -1)
        if flat.shape[1] != len(self.mean):
            raise MentorError(f"teacher inputs have {flat.shape[1]} features; expected "
                              f"{len(self.mean)}, as many as the standardization statistics")
        mean, std = (t.to(device=x.device, dtype=x.dtype) for t in (self.mean, self.std))
        return (flat * std + mean).reshape(x.shape)

    def logits(self, x: Tensor) -> Tensor:
        return self.teacher.logits(self.raw(x))

    @property
    def module(self) -> nn.Module | None:
        return getattr(self.teacher, "module", None)

    def to(self, device) -> "RawInputTeacher":
        if callable(getattr(self.teacher, "to", None)):
            self.teacher.to(device)
        return self

    def train(self, mode: bool = True):  # a teacher stays in eval mode
        return self


def as_teacher(obj: Any, num_classes: int | None = None, *,
               unstandardize: tuple[np.ndarray, np.ndarray] | None = None) -> Any:
    """Wrap a module, a ``predict_proba`` model, a list (ensemble) or a teacher as a teacher.

    ``unstandardize``: ``(mean, std)`` of standardized splits whose raw features the user's
    own models (modules, ``predict_proba`` models, ensemble members) were trained on; each
    is wrapped in :class:`RawInputTeacher` so it sees the rows in its own preprocessing.
    Mentor teachers and label stores take the splits' rows as they are."""
    if hasattr(obj, "logits") and hasattr(obj, "num_classes"):
        return obj
    if callable(getattr(obj, "as_teacher", None)):  # a label store
        return obj.as_teacher()
    if isinstance(obj, (list, tuple)):
        return EnsembleTeacher([as_teacher(m, num_classes, unstandardize=unstandardize)
                                for m in obj])
    if isinstance(obj, nn.Module):
        if num_classes is None:
            raise MentorError("a module teacher needs num_classes")
        teacher = ModuleTeacher(obj, num_classes, type(obj).__name__)
    elif callable(getattr(obj, "predict_proba", None)):
        teacher = ProbaTeacher(obj, num_classes)
    else:
        raise MentorError(f"teacher of type {type(obj).__name__} is not supported; expected a "
                          "torch module, an object with predict_proba, a list of those, or a "
                          "mentor teacher")
    return teacher if unstandardize is None else RawInputTeacher(teacher, *unstandardize)


def load_checkpoint_teacher(path: str | Path, *, input_shape: Sequence[int],
                            num_classes: int, model_fields: dict[str, Any] | None = None,
                            field: str = "teacher.checkpoint") -> ModuleTeacher:
    """A teacher from a safetensors file written by mentor (architecture in its metadata) or
    any safetensors state dict with the architecture given in ``model_fields``."""
    from ..engine.checkpoint import load_weights, read_safetensors
    from ..models import build_model

    tensors, meta = read_safetensors(Path(path), field)
    if model_fields is None:
        arch = meta.get("mentor.model")
        if not isinstance(arch, dict) or "model" not in arch:
            raise CheckpointError(f"{field}: '{path}' carries no mentor architecture metadata; "
                                  "give the teacher's 'model' fields in the recipe")
        model_fields = _checked_arch(arch, path, field)
    ckpt_classes = meta.get("mentor.num_classes")
    if ckpt_classes is not None and ckpt_classes != num_classes:
        raise CheckpointError(f"{field}: '{path}' was trained for {ckpt_classes} classes but the "
                              f"data has {num_classes}; expected the same number of classes")
    ckpt_shape = meta.get("mentor.input_shape")
    try:
        ckpt_features = math.prod(int(n) for n in ckpt_shape)
    except (TypeError, ValueError):
        ckpt_features = None  # no usable shape metadata: the tensor shapes are checked below
    if ckpt_features is not None and ckpt_features != math.prod(input_shape):
        raise CheckpointError(f"{field}: '{path}' was trained on inputs of shape {ckpt_shape} "
                              f"but the data has shape {list(input_shape)}; expected the same")
    fields = dict(model_fields)
    name = fields.pop("model")
    vocab = meta.get("mentor.vocab_size")  # a text model's vocabulary
    module = build_model(name, input_shape, num_classes,
                         vocab_size=vocab if isinstance(vocab, int) else None, **fields)
    wrapper = meta.get("mentor.wrapper")  # a student saved with its inference head
    if isinstance(wrapper, dict) and wrapper.get("kind") == "pairs":
        held = {k.split(".")[1] for k in tensors if k.startswith("members.")}
        if wrapper.get("n") != len(held):  # before building n copies of the model
            raise CheckpointError(f"{field}: '{path}' has metadata mentor.wrapper with n "
                                  f"{wrapper.get('n')} paired students but holds the weights "
                                  f"of {len(held)}; expected the metadata mentor writes")
    if wrapper is not None:
        from ..models.heads import rebuild
        module = rebuild(module, wrapper, field)
        name = f"{name} ({wrapper.get('kind')})"
    load_weights(Path(path), module, field)
    return ModuleTeacher(module, num_classes, f"{name} from {Path(path).name}")


def _checked_arch(arch: dict, path, field: str) -> dict[str, Any]:
    """The ``mentor.model`` metadata of a checkpoint, checked like a recipe's model fields."""
    from pydantic import ValidationError

    from .._validation import format_errors
    from ..models.spec import ModelSpec
    try:
        spec = ModelSpec.model_validate({k: v for k, v in arch.items() if k != "num_classes"})
    except ValidationError as e:
        problems = "; ".join(format_errors(e, ("mentor.model",), ModelSpec))
        raise CheckpointError(f"{field}: '{path}' has an unusable architecture in its metadata "
                              f"({problems}); give the teacher's 'model' fields in the recipe"
                              ) from None
    return {"model": spec.model, **spec.build_kwargs()}
